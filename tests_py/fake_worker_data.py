"""Known zeno_metrics windows sent by fake_worker_locustfile.py, and the totals the
master must report. Plain data: importing it does not import Locust."""


def window(n, used, quota_b_used):
    return {
        "v": 1,
        "requests": {
            "quick_query": {
                "count": 2,
                "ttfb": {100: 1, 120: 1},
                "first_line": {300: 2},
                "ttfb_sum_ms": 220.0,
                "first_line_sum_ms": 600.0,
                "bytes": 200,
                "lines": 4,
            },
            "analysis_query": {
                "count": 1,
                "ttfb": {1500: 1},
                "first_line": {2000 + 100 * n: 1},
                "ttfb_sum_ms": 1500.0,
                "first_line_sum_ms": 2000.0 + 100 * n,
                "bytes": 1000,
                "lines": 10,
            },
        },
        "quota": {"zk_test_aaaa": {"used": used, "quota": 100}, "zk_test_bbbb": {"used": quota_b_used, "quota": 50}},
        "conversations": {"started": 1, "completed": 1, "continuity_failures": 0, "turns": {3: 1}},
        "status_429": 1,
    }


WINDOWS = [window(0, 5, 1), window(1, 9, 2), window(2, 7, 3)]
FINAL = {
    "v": 1,
    "requests": {"conversation_start": {"count": 1, "ttfb": {50: 1}, "first_line": {}, "ttfb_sum_ms": 50.0,
                                        "first_line_sum_ms": 0.0, "bytes": 10, "lines": 1}},
    "quota": {},
    "conversations": {"started": 1, "completed": 0, "continuity_failures": 1, "turns": {6: 1}},
    "status_429": 0,
}
MALFORMED = {"v": 1, "requests": "nope", "quota": {"zk_bad": {"used": "x"}}}

EXPECTED = {
    "quick_query": 6,
    "analysis_query": 3,
    "conversation_start": 1,
    "quota": {"zk_test_aaaa": (9, 100), "zk_test_bbbb": (3, 50)},
    "started": 4,
    "completed": 3,
    "continuity_failures": 1,
    "turns_max": 6,
    "status_429": 3,
}

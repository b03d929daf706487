"""Unit tests for zeno_metrics (no running master).

Run from the repository root with either interpreter:
    /tmp/setup/venv/bin/python -m unittest discover -s tests_py -v
    /usr/bin/python3 -m unittest discover -s tests_py -v
"""

import csv
import io
import logging
import os
import sys
import tempfile
import types
import unittest
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import zeno_metrics as zm  # noqa: E402


def req(count=1, ttfb=None, first_line=None, ttfb_sum=0.0, fl_sum=0.0, nbytes=0, lines=0):
    return {
        "count": count,
        "ttfb": ttfb or {},
        "first_line": first_line or {},
        "ttfb_sum_ms": ttfb_sum,
        "first_line_sum_ms": fl_sum,
        "bytes": nbytes,
        "lines": lines,
    }


def window(requests=None, quota=None, started=0, completed=0, failures=0, turns=None, s429=0):
    return {
        "v": 1,
        "requests": requests or {},
        "quota": quota or {},
        "conversations": {
            "started": started,
            "completed": completed,
            "continuity_failures": failures,
            "turns": turns or {},
        },
        "status_429": s429,
    }


class PercentileTest(unittest.TestCase):
    def test_matches_locust_algorithm(self):
        from locust.stats import calculate_response_time_percentile

        hists = [
            {10: 50, 20: 30, 30: 15, 1000: 5},
            {1: 1},
            {100: 3, 5: 7, 9000: 1, 12000: 2},
            {k: (k % 7) + 1 for k in range(0, 100)},
        ]
        for h in hists:
            total = sum(h.values())
            for p in (0.5, 0.95, 0.99, 1.0, 0.0):
                want = calculate_response_time_percentile(h, total, p)
                self.assertEqual(zm.percentile(h, p), want, (h, p))
                self.assertEqual(zm._percentile_fallback(h, total, p), want, (h, p))

    def test_known_values(self):
        # Locust's semantics: walk down from the top until at most int(n*p) samples remain below
        h = {10: 50, 20: 30, 30: 15, 1000: 5}  # 100 samples
        self.assertEqual(zm.percentile(h, 0.49), 10)
        self.assertEqual(zm.percentile(h, 0.5), 20)
        self.assertEqual(zm.percentile(h, 0.8), 30)
        self.assertEqual(zm.percentile(h, 0.94), 30)
        self.assertEqual(zm.percentile(h, 0.95), 1000)
        self.assertEqual(zm.percentile({100: 1, 120: 1}, 0.5), 120)

    def test_empty(self):
        self.assertIsNone(zm.percentile({}, 0.5))

    def test_bucket_like_locust(self):
        from locust import stats

        if hasattr(stats, "bucket_response_time"):  # 2.47
            ref = stats.bucket_response_time
        else:  # 2.12.1 does it inline in StatsEntry._log_response_time

            def ref(v):
                e = stats.StatsEntry(stats.RequestStats(), "x", "GET")
                e._log_response_time(v)
                return next(iter(e.response_times))

        for v in (0, 1, 49, 99, 100, 147, 994, 996, 1049, 3432, 9951, 12500, 58760):
            self.assertEqual(zm.bucket_ms(v), ref(v), v)


class AggregatorTest(unittest.TestCase):
    def setUp(self):
        self.agg = zm.ZenoAggregator()

    def test_delta_merge_sums_and_merges_histograms(self):
        a = window(
            {"quick_query": req(2, {100: 1, 120: 1}, {300: 2}, 220.0, 600.0, 200, 4)},
            started=1, completed=1, turns={3: 1}, s429=1,
        )  # fmt: skip
        b = window(
            {
                "quick_query": req(3, {120: 2, 2000: 1}, {300: 1}, 2240.0, 300.0, 300, 6),
                "analysis_query": req(1, {1500: 1}, {}, 1500.0, 0.0, 1000, 10),
            },
            started=2, completed=1, failures=1, turns={5: 1, 6: 1}, s429=2,
        )  # fmt: skip
        self.assertTrue(self.agg.merge(a, "w1"))
        self.assertTrue(self.agg.merge(b, "w2"))
        s = self.agg.snapshot()
        q = s["requests"]["quick_query"]
        self.assertEqual(q["count"], 5)
        self.assertEqual(self.agg.requests["quick_query"].ttfb, {100: 1, 120: 3, 2000: 1})
        self.assertEqual(q["ttfb"]["samples"], 5)
        self.assertEqual(q["ttfb"]["p50"], 120)
        self.assertEqual(q["ttfb"]["p99"], 2000)
        self.assertEqual(q["ttfb"]["avg"], round(2460.0 / 5, 1))
        self.assertEqual(q["first_line"]["samples"], 3)
        self.assertEqual(q["bytes"], 500)
        self.assertEqual(q["avg_bytes"], 100.0)
        self.assertEqual(q["avg_lines"], 2.0)
        self.assertEqual(s["requests"]["analysis_query"]["first_line"]["p50"], None)
        self.assertEqual(list(s["requests"]), ["quick_query", "analysis_query"])  # canonical order
        self.assertEqual(s["total"]["count"], 6)
        c = s["conversations"]
        self.assertEqual((c["started"], c["completed"], c["continuity_failures"]), (3, 2, 1))
        self.assertEqual((c["turns_p50"], c["turns_max"], c["finished"]), (5, 6, 3))
        self.assertEqual(s["status_429"], 3)
        self.assertEqual((s["messages"], s["workers"], s["malformed"]), (2, 2, 0))

    def test_percentiles_over_many_windows_equal_single_histogram(self):
        import random

        rnd = random.Random(7)
        values = [rnd.expovariate(1 / 800) for _ in range(3000)]
        whole = {}
        for v in values:
            whole[zm.bucket_ms(v)] = whole.get(zm.bucket_ms(v), 0) + 1
        for i in range(0, len(values), 100):  # 30 delta windows
            h = {}
            for v in values[i : i + 100]:
                h[zm.bucket_ms(v)] = h.get(zm.bucket_ms(v), 0) + 1
            self.agg.merge(window({"analysis_query": req(100, h)}))
        s = self.agg.snapshot()["requests"]["analysis_query"]["ttfb"]
        for p in (0.5, 0.95, 0.99):
            self.assertEqual(s[f"p{int(p * 100)}"], zm.percentile(whole, p))

    def test_quota_is_max_never_sum(self):
        self.agg.merge(window(quota={"zk_a": {"used": 5, "quota": 100}, "zk_b": {"used": 1, "quota": 50}}), "w1")
        self.agg.merge(window(quota={"zk_a": {"used": 9, "quota": 100}}), "w2")
        self.agg.merge(window(quota={"zk_a": {"used": 7, "quota": 100}, "zk_b": {"used": 3, "quota": 50}}), "w1")
        self.assertEqual(
            self.agg.snapshot()["quota"], {"zk_a": {"used": 9, "quota": 100}, "zk_b": {"used": 3, "quota": 50}}
        )

    def test_string_keys_and_float_ints_are_accepted(self):
        self.agg.merge(window({"quick_query": req(2.0, {"100": 1, "147": 1}, {"3000.0": 2})}, turns={"4": 2}))
        r = self.agg.requests["quick_query"]
        self.assertEqual(r.ttfb, {100: 1, 150: 1})  # re-bucketed like Locust
        self.assertEqual(r.first_line, {3000: 2})
        self.assertEqual(self.agg.turns, {4: 2})

    def test_malformed_never_raises_logs_once_and_skips(self):
        bad = [
            None,
            "x",
            [1, 2],
            {},
            {"v": 2},
            {"v": True},
            {"v": 1, "requests": "nope"},
            {"v": 1, "requests": {"quick_query": "nope"}},
            {"v": 1, "requests": {"quick_query": {"count": -1}}},
            {"v": 1, "requests": {"quick_query": {"count": "3"}}},
            {"v": 1, "requests": {"": {"count": 1}}},
            {"v": 1, "requests": {"quick_query": {"count": 1, "ttfb": {"abc": 1, 10: -1, 20: float("nan")}}}},
            {"v": 1, "quota": {"zk": {"used": "x"}}},
            {"v": 1, "quota": {"zk": 5}},
            {"v": 1, "conversations": {"started": None, "turns": []}},
            {"v": 1, "status_429": float("inf")},
            {"v": 1, "requests": {("tuple",): {}}},
        ]
        with self.assertLogs("zeno_metrics", level="DEBUG") as logs:
            for d in bad:
                self.assertFalse(self.agg.merge(d, "w1"), d)
        warnings = [r for r in logs.records if r.levelno >= logging.WARNING]
        self.assertEqual(len(warnings), 1, [r.getMessage() for r in warnings])
        self.assertEqual(self.agg.malformed, len(bad))
        # good parts of partially bad windows were kept, nothing crazy got in
        self.assertEqual(self.agg.requests["quick_query"].count, 1)
        self.assertEqual(self.agg.requests["quick_query"].ttfb, {})
        self.assertEqual(self.agg.quota, {})
        s = self.agg.snapshot()  # still renders
        zm.csv_rows(s), zm.render_html(s), zm.summary_lines(s), zm.webui_rows(s)
        # and a good window afterwards is fine
        self.assertTrue(self.agg.merge(window({"quick_query": req(1, {10: 1})})))
        self.assertEqual(self.agg.requests["quick_query"].count, 2)

    def test_unexpected_exception_inside_merge_is_contained(self):
        with mock.patch.object(self.agg, "_merge", side_effect=RuntimeError("boom")):
            with self.assertLogs("zeno_metrics", level="WARNING"):
                self.assertFalse(self.agg.merge(window()))

    def test_bounded_memory(self):
        self.agg.merge(window({"quick_query": req(1, {i * 0.37: 1 for i in range(200000)})}, turns={10**9: 1}))
        for i in range(zm.MAX_PREFIXES + 50):
            self.agg.merge(window(quota={f"zk_{i}": {"used": i, "quota": 10}}))
        for i in range(zm.MAX_REQUEST_NAMES + 10):
            self.agg.merge(window({f"name_{i}": req(1)}))
        self.assertEqual(len(self.agg.quota), zm.MAX_PREFIXES)
        self.assertEqual(len(self.agg.requests), zm.MAX_REQUEST_NAMES)
        self.assertLess(len(self.agg.requests["quick_query"].ttfb), 100 + 90 + 90 + 70)
        self.assertEqual(list(self.agg.turns), [zm.MAX_TURNS])
        self.assertEqual(self.agg.dropped, 50 + 11)

    def test_reset(self):
        self.agg.merge(window({"quick_query": req(1)}, quota={"zk": {"used": 1, "quota": 2}}, s429=1))
        self.agg.reset()
        s = self.agg.snapshot()
        self.assertEqual((s["messages"], s["requests"], s["quota"], s["status_429"]), (0, {}, {}, 0))


class OutputTest(unittest.TestCase):
    def setUp(self):
        self.agg = zm.ZenoAggregator()
        self.agg.merge(
            window(
                {
                    "quick_query": req(2, {100: 1, 120: 1}, {300: 2}, 220.0, 600.0, 200, 4),
                    "analysis_query": req(1, {1500: 1}, {2000: 1}, 1500.0, 2000.0, 1000, 10),
                },
                quota={"zk_<script>": {"used": 9, "quota": 100}},
                started=2, completed=1, failures=1, turns={3: 1, 5: 1}, s429=4,
            ),
            "w1",
        )  # fmt: skip
        self.snap = self.agg.snapshot()

    def read_csv(self, path):
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def test_csv_writing(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "run_zeno.csv")
            zm.write_csv(path, self.snap)
            zm.write_csv(path, self.snap)  # rewrite in place
            self.assertEqual(sorted(os.listdir(d)), ["run_zeno.csv"])  # no temp files left
            rows = self.read_csv(path)
        self.assertEqual(list(rows[0].keys()), zm.CSV_HEADER)
        self.assertTrue(all(None not in r and len(r) == len(zm.CSV_HEADER) for r in rows))
        by = {(r["Type"], r["Name"]): r for r in rows}
        q = by[("request", "quick_query")]
        self.assertEqual((q["Count"], q["TTFB 50%"], q["TTFB 99%"], q["First Line 95%"]), ("2", "120", "120", "300"))
        self.assertEqual((q["Total Bytes"], q["Avg Bytes"], q["Avg Lines"]), ("200", "100", "2"))
        self.assertEqual(by[("request", "Aggregated")]["Count"], "3")
        self.assertEqual((by[("quota", "zk_<script>")]["Value"], by[("quota", "zk_<script>")]["Limit"]), ("9", "100"))
        self.assertEqual(by[("conversations", "started")]["Value"], "2")
        self.assertEqual(by[("conversations", "turns_max")]["Value"], "5")
        self.assertEqual(by[("conversations", "continuity_failures")]["Value"], "1")
        self.assertEqual(by[("http", "status_429")]["Value"], "4")
        self.assertEqual(by[("meta", "messages")]["Value"], "1")

    def test_csv_empty(self):
        rows = list(csv.reader(io.StringIO(zm.csv_text(zm.ZenoAggregator().snapshot()))))
        self.assertEqual(rows[0], zm.CSV_HEADER)
        self.assertNotIn("request", [r[0] for r in rows])

    def test_html_is_escaped_and_complete(self):
        page = zm.render_html(self.snap)
        self.assertIn("zk_&lt;script&gt;", page)
        self.assertNotIn("<script>", page)
        for s in ("quick_query", "analysis_query", "Continuity failures", "Turns p50", "HTTP 429"):
            self.assertIn(s, page)

    def test_html_path(self):
        ns = types.SimpleNamespace(num_users=10, spawn_rate=2.0, run_time=300)
        self.assertEqual(zm.zeno_html_path("reports/run.html"), "reports/run_zeno.html")
        self.assertEqual(zm.zeno_html_path("report"), "report_zeno.html")
        self.assertEqual(zm.zeno_html_path("out/r_{u}_{r}_{t}.html", ns), "out/r_10_2_300_zeno.html")
        ns.spawn_rate = 0.5
        self.assertEqual(zm.zeno_html_path("r{r}.htm", ns), "r0.5_zeno.htm")

    def test_summary(self):
        text = "\n".join(zm.summary_lines(self.snap))
        for s in ("quick_query", "analysis_query", "Aggregated", "zk_<script>", "started 2, completed 1",
                  "continuity failures 1", "turns p50 5, max 5", "HTTP 429 responses: 4", "1st line p50"):  # fmt: skip
            self.assertIn(s, text)
        self.assertIn("No request metrics", "\n".join(zm.summary_lines(zm.ZenoAggregator().snapshot())))
        # Wide values keep their columns apart (a bench key once printed "279771000000000").
        wide = dict(self.snap, quota={"k" * 40: {"used": 27977, "quota": 1000000000}})
        line = [x for x in zm.summary_lines(wide) if x.startswith("k" * 32)][0]
        self.assertEqual(line.split(), ["k" * 32, "27977", "1000000000"])

    def test_webui_rows_match_structure(self):
        rows = zm.webui_rows(self.snap)
        keys = {c["key"] for c in zm.WEBUI_STRUCTURE}
        for r in rows:
            self.assertLessEqual(set(r), keys)
        self.assertEqual(rows[0]["metric"], "quick_query")
        self.assertEqual(rows[0]["ttfb_p50"], 120)
        self.assertIn({"metric": "quota zk_<script>", "value": "9 / 100"}, rows)
        # No "name" key: the web UI would sort the rows by it (see webui_rows).
        self.assertFalse(any("name" in r for r in rows))


class PluginTest(unittest.TestCase):
    """The Locust glue with a fake environment (no master process)."""

    def make_env(self, d, **opts):
        from locust.runners import MasterRunner

        runner = mock.MagicMock(spec=MasterRunner)
        options = types.SimpleNamespace(csv_prefix=None, html_file=None, num_users=1, spawn_rate=1, run_time=None)
        options.__dict__.update(opts)
        return types.SimpleNamespace(runner=runner, parsed_options=options, web_ui=None, reset_stats=False)

    def test_handler_registration_and_quit_outputs(self):
        with tempfile.TemporaryDirectory() as d:
            env = self.make_env(d, csv_prefix=os.path.join(d, "sub", "run"), html_file=os.path.join(d, "rep.html"))
            p = zm._Plugin()
            p.on_init(env)
            env.runner.register_message.assert_called_once_with("zeno_metrics", p.on_message)
            msg = types.SimpleNamespace(data=window({"quick_query": req(1, {10: 1})}), node_id="w1")
            p.on_message(environment=env, msg=msg)  # both versions call listener(environment=, msg=)
            with self.assertLogs("zeno_metrics", level="WARNING"):
                p.on_message(env, types.SimpleNamespace(data="garbage", node_id="w1"))
            self.assertEqual(p.agg.messages, 1)
            out = io.StringIO()
            with mock.patch("sys.stdout", out), mock.patch.object(logging.getLogger("locust.stats_logger"),
                                                                    "hasHandlers", return_value=False):  # fmt: skip
                p.on_quit(exit_code=0)
                p.on_quit(exit_code=0)  # second call: no duplicate output
            self.assertEqual(out.getvalue().count("Zeno metrics ("), 1)
            self.assertTrue(os.path.exists(os.path.join(d, "sub", "run_zeno.csv")))
            self.assertTrue(os.path.exists(os.path.join(d, "rep_zeno.html")))
            p.on_test_start(environment=env)
            self.assertTrue(p.agg.empty)
            p.on_message(environment=env, msg=msg)
            p.on_spawning_complete(user_count=1)  # no --reset-stats: keep
            self.assertFalse(p.agg.empty)
            env.reset_stats = True
            p.on_spawning_complete(user_count=1)
            self.assertTrue(p.agg.empty)

    def test_not_master_does_nothing(self):
        from locust.runners import LocalRunner

        env = types.SimpleNamespace(runner=mock.MagicMock(spec=LocalRunner), parsed_options=None, web_ui=None)
        p = zm._Plugin()
        p.on_init(env)
        env.runner.register_message.assert_not_called()
        p.on_quit(exit_code=0)  # silent
        self.assertFalse(p.active)


if __name__ == "__main__":
    unittest.main()

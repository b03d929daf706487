"""Locust Python worker for the zenoload benchmarks (bench/run.sh).

The same work as zeno-worker's quick_query task, written the way a Locust
user would: a FastHttpUser POSTs /api/chat with JSON {query, thread_id} and
a Bearer token, reads the NDJSON stream to its end, and reports one
"quick_query" row whose response time runs to the end of the stream.

It joins the same stock master as the Go worker (locustfile_master.py), so
the class is named ZenoChatUser: the master dispatches users by class name.
Time to first byte (headers) goes to the master's Zeno metrics as
``zeno_metrics`` messages, the format zeno-worker sends, so both workers'
TTFB percentiles come out of the same ``PREFIX_zeno.csv``.

Deliberately light: lines are counted, not JSON-decoded (zeno-worker decodes
every line), so this is the cheapest honest Python equivalent.
Wait time is zero: the benchmarks measure capacity, not pacing.
"""

import os
import random
import time
import uuid

from locust import FastHttpUser, constant, events, task

TOKEN = os.environ.get("ZENO_MACHINE_USER_TOKEN", "zeno-key:bench001:0123456789abcdef0123456789abcdef")
HEADERS = {
    "Authorization": "Bearer " + TOKEN,
    "Accept": "application/x-ndjson",
    "Content-Type": "application/json",
}
QUERIES = [
    "What is the forest cover in Brazil?",
    "Show tree cover loss in Indonesia",
    "How much primary forest does Peru have?",
    "Where are the recent deforestation alerts in Bolivia?",
    "What is the land cover of Kenya?",
]
NAME = "quick_query"


def bucket_ms(ms):
    """Locust's response-time bucketing (exact < 100 ms, then 2 sig. digits)."""
    if ms < 100:
        return int(round(ms))
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


class _Window:
    """TTFB / first-line histograms since the last report (zeno_metrics v1)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.count = 0
        self.ttfb = {}
        self.ttfb_sum = 0.0
        self.first = {}
        self.first_sum = 0.0
        self.bytes = 0
        self.lines = 0

    def add(self, ttfb, first, nbytes, nlines):
        self.count += 1
        if ttfb is not None:
            b = bucket_ms(ttfb)
            self.ttfb[b] = self.ttfb.get(b, 0) + 1
            self.ttfb_sum += ttfb
        if first is not None:
            b = bucket_ms(first)
            self.first[b] = self.first.get(b, 0) + 1
            self.first_sum += first
        self.bytes += nbytes
        self.lines += nlines

    def take(self):
        if not self.count:
            return None
        d = {
            "v": 1,
            "requests": {
                NAME: {
                    "count": self.count,
                    "ttfb": self.ttfb,
                    "ttfb_sum_ms": self.ttfb_sum,
                    "first_line": self.first,
                    "first_line_sum_ms": self.first_sum,
                    "bytes": self.bytes,
                    "lines": self.lines,
                }
            },
        }
        self.reset()
        return d


WINDOW = _Window()


@events.report_to_master.add_listener
def _send_zeno_metrics(client_id, data, **_kw):
    # Fired by the worker just before each stats report (every 3 s and at
    # stop): ship the TTFB window alongside it, as zeno-worker does.
    d = WINDOW.take()
    r = getattr(_send_zeno_metrics, "runner", None)
    if d and r is not None:
        r.send_message("zeno_metrics", d)


@events.init.add_listener
def _init(environment, **_kw):
    _send_zeno_metrics.runner = environment.runner


class ZenoChatUser(FastHttpUser):
    wait_time = constant(0)
    # One stream at a time per user, like zeno-worker (and like a browser tab).
    concurrency = 1
    network_timeout = 600.0
    connection_timeout = 60.0

    @task
    def quick_query(self):
        body = {"query": random.choice(QUERIES), "thread_id": str(uuid.uuid4())}
        t0 = time.perf_counter()
        with self.client.post(
            "/api/chat", json=body, headers=HEADERS, name=NAME, stream=True, catch_response=True
        ) as resp:
            ttfb = (time.perf_counter() - t0) * 1000
            nbytes = nlines = 0
            first = None
            ok = resp.status_code == 200
            if not resp.status_code:  # no response: keep Locust's own exception
                ok = None
            try:
                if resp._response is not None:
                    while True:
                        chunk = resp._response.read(65536)
                        if not chunk:
                            break
                        if first is None:
                            first = (time.perf_counter() - t0) * 1000
                        nbytes += len(chunk)
                        nlines += chunk.count(b"\n")
            except Exception as e:  # truncated stream, reset, timeout
                resp.failure(f"stream error: {type(e).__name__}")
                ok = None
            total = (time.perf_counter() - t0) * 1000
            resp.request_meta["response_time"] = total
            resp.request_meta["response_length"] = nbytes
            if ok is False:
                resp.failure(f"HTTP {resp.status_code}")
            elif ok and nlines == 0:
                resp.failure("empty stream")
            elif ok:
                resp.success()
        if resp.status_code:
            WINDOW.add(ttfb, first, nbytes, nlines)

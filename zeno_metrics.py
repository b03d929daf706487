"""Master-side aggregation of the Go workers' ``zeno_metrics`` custom messages.

Imported by ``locustfile_master.py``; call :func:`install` once (idempotent).
Works on a stock Locust master, tested with Locust 2.47.0 and Debian's 2.12.1.

Wire format (one DELTA window per message, sent by every ``zeno-worker``
about every 3 s and once at quit; see ``tasks/metrics.go``)::

    {"v": 1,
     "requests": {name: {"count": int,
                         "ttfb": {bucket_ms: count}, "first_line": {bucket_ms: count},
                         "ttfb_sum_ms": float, "first_line_sum_ms": float,
                         "bytes": int, "lines": int}},
     "quota": {key_prefix: {"used": int, "quota": int}},
     "conversations": {"started": int, "completed": int,
                       "continuity_failures": int, "turns": {turns: count}},
     "status_429": int}

Aggregation rules:

* counts, sums, bytes, lines, conversations and 429s are summed;
* histograms are merged bucket by bucket (keys re-bucketed the way Locust
  buckets response times, so memory stays bounded whatever a worker sends);
* quota is the MAX over all workers and windows per key prefix (``used`` is
  the highest ``X-Prompts-Used`` seen; it is never summed);
* malformed data never raises: the bad part is skipped and the first problem
  is logged once (then at DEBUG level), and counted in ``malformed``.

Outputs (master only):

* ``GET /zeno/stats`` -- JSON snapshot (see :meth:`ZenoAggregator.snapshot`),
  ``GET /zeno/csv`` -- the CSV below as a download;
* a "Zeno" tab in the 2.47 web UI (``extended_tabs``/``extended_tables`` +
  ``extended_stats`` injected into ``/stats/requests``); skipped with one
  log line on Locust versions without that mechanism (2.12.1);
* ``--csv PREFIX`` -> ``PREFIX_zeno.csv``, rewritten every 5 s and at quit;
* ``--html FILE`` -> ``<FILE stem>_zeno.html`` next to Locust's report;
* a summary table printed once at the end of the run (``quit`` event).

Resets: on ``test_start`` (each new run), on the web UI's "Reset stats", and
on ``spawning_complete`` when the master runs with ``--reset-stats``, so the
numbers cover the same period as Locust's own rows.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
import os
import time

logger = logging.getLogger("zeno_metrics")

MESSAGE_TYPE = "zeno_metrics"
SUPPORTED_VERSIONS = (1,)
REQUEST_NAMES = ("quick_query", "analysis_query", "conversation_start", "conversation_followup")
PERCENTILES = (0.50, 0.95, 0.99)

# Memory bounds: whatever the workers send, the aggregator stays small.
MAX_REQUEST_NAMES = 32
MAX_PREFIXES = 256
MAX_NAME_LEN = 100
MAX_TURNS = 10_000  # larger turn counts are clamped into this bucket
MAX_WORKERS_TRACKED = 10_000
CSV_INTERVAL_SEC = 5.0
TOTAL_NAME = "Aggregated"

CSV_HEADER = [
    "Type",
    "Name",
    "Count",
    "TTFB Samples",
    "TTFB Avg (ms)",
    "TTFB 50%",
    "TTFB 95%",
    "TTFB 99%",
    "First Line Samples",
    "First Line Avg (ms)",
    "First Line 50%",
    "First Line 95%",
    "First Line 99%",
    "Total Bytes",
    "Avg Bytes",
    "Total Lines",
    "Avg Lines",
    "Value",
    "Limit",
]

try:  # Locust's own percentile code (same in 2.12.1 and 2.47.0)
    from locust.stats import calculate_response_time_percentile as _locust_percentile
except Exception:  # pragma: no cover - only without Locust
    _locust_percentile = None


def _percentile_fallback(hist: dict, total: int, percent: float) -> int:
    """Locust's algorithm: walk the buckets from the highest key downwards."""
    num_of_request = int(total * percent)
    processed = 0
    for key in sorted(hist.keys(), reverse=True):
        processed += hist[key]
        if total - processed <= num_of_request:
            return key
    return 0


def percentile(hist: dict, percent: float):
    """Locust-style percentile of a ``{bucket: count}`` histogram; None if empty."""
    total = sum(hist.values())
    if total <= 0:
        return None
    fn = _locust_percentile or _percentile_fallback
    return fn(hist, total, percent)


def bucket_ms(value: float) -> int:
    """Round a millisecond value like Locust's ``StatsEntry`` does (147 -> 150, 3432 -> 3400)."""
    if value < 100:
        return int(round(value))
    if value < 1000:
        return int(round(value, -1))
    if value < 10000:
        return int(round(value, -2))
    return int(round(value, -3))


class Malformed(ValueError):
    pass


def _num(v, what: str, allow_float: bool = False):
    """A non-negative finite int (or float) or Malformed. bool is rejected."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Malformed(f"{what}: not a number: {v!r:.60}")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Malformed(f"{what}: not finite")
        if not allow_float:
            if v != int(v):
                raise Malformed(f"{what}: not an integer: {v!r}")
            v = int(v)
    if v < 0:
        raise Malformed(f"{what}: negative: {v!r}")
    return v


def _key(k, what: str) -> float:
    """Histogram keys are ints on the wire; tolerate numeric strings too."""
    if isinstance(k, str):
        try:
            k = float(k.strip())
        except ValueError:
            raise Malformed(f"{what}: bad key {k!r:.60}") from None
    return _num(k, what, allow_float=True)


def _name(v, what: str) -> str:
    if not isinstance(v, str) or not v or len(v) > MAX_NAME_LEN:
        raise Malformed(f"{what}: bad name {v!r:.60}")
    return v


def _ms(v):
    return None if v is None else round(v, 1)


class _Req:
    __slots__ = ("count", "ttfb", "first_line", "ttfb_sum", "first_line_sum", "bytes", "lines")

    def __init__(self):
        self.count = 0
        self.ttfb: dict[int, int] = {}
        self.first_line: dict[int, int] = {}
        self.ttfb_sum = 0.0
        self.first_line_sum = 0.0
        self.bytes = 0
        self.lines = 0

    def add(self, other: "_Req"):
        self.count += other.count
        _merge_hist(self.ttfb, other.ttfb)
        _merge_hist(self.first_line, other.first_line)
        self.ttfb_sum += other.ttfb_sum
        self.first_line_sum += other.first_line_sum
        self.bytes += other.bytes
        self.lines += other.lines

    def to_dict(self, name: str) -> dict:
        def lat(hist, total_ms):
            n = sum(hist.values())
            d = {"samples": n, "avg": _ms(total_ms / n) if n else None}
            for p in PERCENTILES:
                d[f"p{int(p * 100)}"] = percentile(hist, p)
            d["max"] = max(hist) if hist else None
            return d

        return {
            "name": name,
            "count": self.count,
            "ttfb": lat(self.ttfb, self.ttfb_sum),
            "first_line": lat(self.first_line, self.first_line_sum),
            "bytes": self.bytes,
            "lines": self.lines,
            "avg_bytes": round(self.bytes / self.count, 1) if self.count else None,
            "avg_lines": round(self.lines / self.count, 2) if self.count else None,
        }


def _merge_hist(into: dict, src: dict):
    for k, v in src.items():
        into[k] = into.get(k, 0) + v


class ZenoAggregator:
    """Accumulates delta windows. Not thread-safe by design: Locust's master runs
    everything in gevent greenlets of one thread and :meth:`merge` never yields."""

    def __init__(self):
        self._logged_malformed = False
        self.reset()

    # ---- state -------------------------------------------------------------
    def reset(self):
        self.requests: dict[str, _Req] = {}
        self.quota: dict[str, list[int]] = {}  # prefix -> [used, quota]
        self.started = 0
        self.completed = 0
        self.continuity_failures = 0
        self.turns: dict[int, int] = {}
        self.status_429 = 0
        self.messages = 0
        self.malformed = 0
        self.workers: set = set()
        self.dropped = 0  # names/prefixes refused because of the caps
        self.last_update = None

    @property
    def empty(self) -> bool:
        return self.messages == 0

    # ---- ingestion ---------------------------------------------------------
    def _bad(self, problem: str, node_id=None):
        self.malformed += 1
        if not self._logged_malformed:
            self._logged_malformed = True
            logger.warning(
                "Ignoring malformed zeno_metrics data from worker %s: %s "
                "(further problems are logged at DEBUG level and counted in 'malformed')",
                node_id,
                problem,
            )
        else:
            logger.debug("Ignoring malformed zeno_metrics data from worker %s: %s", node_id, problem)

    def merge(self, data, node_id=None) -> bool:
        """Merge one delta window. Never raises. Returns False if anything was skipped."""
        try:
            return self._merge(data, node_id)
        except Exception as e:  # defensive: nothing may escape into Locust's listener greenlet
            self._bad(f"unexpected {type(e).__name__}: {e}", node_id)
            return False

    def _merge(self, data, node_id) -> bool:
        if not isinstance(data, dict):
            self._bad(f"data is {type(data).__name__}, not a map", node_id)
            return False
        v = data.get("v")
        if isinstance(v, bool) or v not in SUPPORTED_VERSIONS:
            self._bad(f"unsupported version v={v!r:.20}", node_id)
            return False

        problems: list[str] = []
        reqs = self._parse_requests(data.get("requests"), problems)
        quota = self._parse_quota(data.get("quota"), problems)
        conv = self._parse_conversations(data.get("conversations"), problems)
        s429 = 0
        if data.get("status_429") is not None:
            try:
                s429 = _num(data["status_429"], "status_429")
            except Malformed as e:
                problems.append(str(e))

        # apply (nothing below can fail)
        for name, r in reqs.items():
            agg = self.requests.get(name)
            if agg is None:
                if len(self.requests) >= MAX_REQUEST_NAMES:
                    self.dropped += 1
                    continue
                agg = self.requests[name] = _Req()
            agg.add(r)
        for prefix, (used, q) in quota.items():
            cur = self.quota.get(prefix)
            if cur is None:
                if len(self.quota) >= MAX_PREFIXES:
                    self.dropped += 1
                    continue
                self.quota[prefix] = [used, q]
            else:
                cur[0] = max(cur[0], used)
                cur[1] = max(cur[1], q)
        started, completed, failures, turns = conv
        self.started += started
        self.completed += completed
        self.continuity_failures += failures
        _merge_hist(self.turns, turns)
        self.status_429 += s429
        self.messages += 1
        if node_id is not None and len(self.workers) < MAX_WORKERS_TRACKED:
            self.workers.add(node_id)
        self.last_update = time.time()

        if problems:
            self._bad("; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""), node_id)
            return False
        return True

    @staticmethod
    def _parse_hist(h, what: str, problems: list, turns: bool = False) -> dict:
        out: dict[int, int] = {}
        if h is None:
            return out
        if not isinstance(h, dict):
            problems.append(f"{what}: not a map")
            return out
        for k, v in h.items():
            try:
                key = _key(k, what)
                cnt = _num(v, what)
            except Malformed as e:
                problems.append(str(e))
                continue
            if cnt == 0:
                continue
            key = min(int(key), MAX_TURNS) if turns else bucket_ms(key)
            out[key] = out.get(key, 0) + cnt
        return out

    def _parse_requests(self, reqs, problems: list) -> dict:
        out: dict[str, _Req] = {}
        if reqs is None:
            return out
        if not isinstance(reqs, dict):
            problems.append("requests: not a map")
            return out
        for name, d in reqs.items():
            try:
                name = _name(name, "request name")
                if not isinstance(d, dict):
                    raise Malformed(f"requests[{name}]: not a map")
                r = _Req()
                r.count = _num(d.get("count", 0), f"{name}.count")
                r.bytes = _num(d.get("bytes", 0), f"{name}.bytes")
                r.lines = _num(d.get("lines", 0), f"{name}.lines")
                r.ttfb_sum = float(_num(d.get("ttfb_sum_ms", 0), f"{name}.ttfb_sum_ms", allow_float=True))
                r.first_line_sum = float(
                    _num(d.get("first_line_sum_ms", 0), f"{name}.first_line_sum_ms", allow_float=True)
                )
            except Malformed as e:
                problems.append(str(e))
                continue
            r.ttfb = self._parse_hist(d.get("ttfb"), f"{name}.ttfb", problems)
            r.first_line = self._parse_hist(d.get("first_line"), f"{name}.first_line", problems)
            out[name] = r
        return out

    @staticmethod
    def _parse_quota(quota, problems: list) -> dict:
        out: dict[str, tuple[int, int]] = {}
        if quota is None:
            return out
        if not isinstance(quota, dict):
            problems.append("quota: not a map")
            return out
        for prefix, d in quota.items():
            try:
                prefix = _name(prefix, "quota prefix")
                if not isinstance(d, dict):
                    raise Malformed(f"quota[{prefix}]: not a map")
                out[prefix] = (_num(d.get("used", 0), "quota.used"), _num(d.get("quota", 0), "quota.quota"))
            except Malformed as e:
                problems.append(str(e))
        return out

    def _parse_conversations(self, conv, problems: list):
        zero = (0, 0, 0, {})
        if conv is None:
            return zero
        if not isinstance(conv, dict):
            problems.append("conversations: not a map")
            return zero
        vals = []
        for k in ("started", "completed", "continuity_failures"):
            try:
                vals.append(_num(conv.get(k, 0), f"conversations.{k}"))
            except Malformed as e:
                problems.append(str(e))
                vals.append(0)
        turns = self._parse_hist(conv.get("turns"), "conversations.turns", problems, turns=True)
        return vals[0], vals[1], vals[2], turns

    # ---- views -------------------------------------------------------------
    def snapshot(self) -> dict:
        """JSON-serialisable view; this is what ``GET /zeno/stats`` returns."""
        total = _Req()
        for r in self.requests.values():
            total.add(r)
        return {
            "v": 1,
            "messages": self.messages,
            "workers": len(self.workers),
            "malformed": self.malformed,
            "dropped": self.dropped,
            "last_update": self.last_update,
            "requests": {name: self.requests[name].to_dict(name) for name in self._ordered_names()},
            "total": total.to_dict(TOTAL_NAME),
            "quota": {p: {"used": u, "quota": q} for p, (u, q) in sorted(self.quota.items())},
            "conversations": {
                "started": self.started,
                "completed": self.completed,
                "continuity_failures": self.continuity_failures,
                "finished": sum(self.turns.values()),
                "turns_p50": percentile(self.turns, 0.5),
                "turns_max": max(self.turns) if self.turns else None,
            },
            "status_429": self.status_429,
        }

    def _ordered_names(self):
        known = [n for n in REQUEST_NAMES if n in self.requests]
        return known + sorted(n for n in self.requests if n not in REQUEST_NAMES)


# ---- renderers (pure functions of a snapshot) ---------------------------------


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _request_rows(snap: dict):
    rows = list(snap["requests"].values())
    if rows:
        rows.append(snap["total"])
    return rows


def csv_rows(snap: dict) -> list:
    rows = [CSV_HEADER]
    pad = [""] * (len(CSV_HEADER) - 5)  # between Count and Value/Limit
    for r in _request_rows(snap):
        t, f = r["ttfb"], r["first_line"]
        rows.append(
            ["request", r["name"], r["count"]]
            + [_fmt(t["samples"]), _fmt(t["avg"]), _fmt(t["p50"]), _fmt(t["p95"]), _fmt(t["p99"])]
            + [_fmt(f["samples"]), _fmt(f["avg"]), _fmt(f["p50"]), _fmt(f["p95"]), _fmt(f["p99"])]
            + [r["bytes"], _fmt(r["avg_bytes"]), r["lines"], _fmt(r["avg_lines"]), "", ""]
        )
    for prefix, q in snap["quota"].items():
        rows.append(["quota", prefix, ""] + pad + [q["used"], q["quota"]])
    c = snap["conversations"]
    for k in ("started", "completed", "continuity_failures", "finished", "turns_p50", "turns_max"):
        rows.append(["conversations", k, ""] + pad + [_fmt(c[k]), ""])
    rows.append(["http", "status_429", ""] + pad + [snap["status_429"], ""])
    for k in ("messages", "workers", "malformed"):
        rows.append(["meta", k, ""] + pad + [snap[k], ""])
    assert all(len(r) == len(CSV_HEADER) for r in rows)
    return rows


def write_csv(path: str, snap: dict):
    """Atomically (re)write ``path``."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(csv_rows(snap))
    os.replace(tmp, path)


def csv_text(snap: dict) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(csv_rows(snap))
    return buf.getvalue()


def summary_lines(snap: dict) -> list:
    out = [f"Zeno metrics ({snap['messages']} reports from {snap['workers']} workers, times in ms)"]
    reqs = _request_rows(snap)
    if reqs:
        hdr = (
            f"{'Request':<24} {'# reqs':>8} |{'TTFB p50':>9}{'p95':>7}{'p99':>7} |"
            f"{'1st line p50':>13}{'p95':>7}{'p99':>7} |{'avg bytes':>10}{'avg lines':>10}"
        )
        out += [hdr, "-" * len(hdr)]
        for r in reqs:
            t, f = r["ttfb"], r["first_line"]
            out.append(
                f"{r['name'][:24]:<24} {r['count']:>8} |{_fmt(t['p50']):>9}{_fmt(t['p95']):>7}{_fmt(t['p99']):>7} |"
                f"{_fmt(f['p50']):>13}{_fmt(f['p95']):>7}{_fmt(f['p99']):>7} |"
                f"{_fmt(r['avg_bytes']):>10}{_fmt(r['avg_lines']):>10}"
            )
    else:
        out.append("No request metrics received from workers.")
    out.append("")
    if snap["quota"]:
        # A space between columns: wide numbers must not run together.
        out.append(f"{'Quota (key prefix)':<32} {'used':>10} {'quota':>10}")
        for p, q in snap["quota"].items():
            out.append(f"{p[:32]:<32} {q['used']:>10} {q['quota']:>10}")
    else:
        out.append("Quota: no X-Prompts-Used headers seen.")
    c = snap["conversations"]
    out.append(
        f"Conversations: started {c['started']}, completed {c['completed']}, "
        f"continuity failures {c['continuity_failures']}; turns p50 {_fmt(c['turns_p50']) or '-'}, "
        f"max {_fmt(c['turns_max']) or '-'}"
    )
    out.append(f"HTTP 429 responses: {snap['status_429']}")
    if snap["malformed"] or snap["dropped"]:
        out.append(f"(ignored: {snap['malformed']} malformed reports, {snap['dropped']} over-cap names/prefixes)")
    return out


def render_html(snap: dict, title: str = "Zeno metrics") -> str:
    e = lambda v: html.escape(_fmt(v))  # noqa: E731

    def table(headers, rows):
        h = "".join(f"<th>{html.escape(x)}</th>" for x in headers)
        b = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"

    req_rows = [
        [r["name"], r["count"], r["ttfb"]["avg"], r["ttfb"]["p50"], r["ttfb"]["p95"], r["ttfb"]["p99"],
         r["first_line"]["avg"], r["first_line"]["p50"], r["first_line"]["p95"], r["first_line"]["p99"],
         r["avg_bytes"], r["avg_lines"]]
        for r in _request_rows(snap)
    ]  # fmt: skip
    c = snap["conversations"]
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin-bottom:2em}}
th,td{{border:1px solid #ccc;padding:4px 10px;text-align:right}} th{{background:#eee}}
td:first-child,th:first-child{{text-align:left}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {html.escape(generated)} from {snap['messages']} worker reports ({snap['workers']} workers). Times in ms.</p>
<h2>Requests</h2>
{table(["Name", "Count", "TTFB avg", "TTFB p50", "TTFB p95", "TTFB p99", "First line avg", "First line p50",
        "First line p95", "First line p99", "Avg bytes", "Avg lines"], req_rows)}
<h2>Quota</h2>
{table(["Key prefix", "Used", "Quota"], [[p, q["used"], q["quota"]] for p, q in snap["quota"].items()])}
<h2>Conversations</h2>
{table(["Metric", "Value"], [["Started", c["started"]], ["Completed", c["completed"]],
       ["Continuity failures", c["continuity_failures"]], ["Turns p50", c["turns_p50"]],
       ["Turns max", c["turns_max"]], ["HTTP 429 responses", snap["status_429"]]])}
</body></html>
"""


def webui_rows(snap: dict) -> list:
    """Rows for the 2.47 "Zeno" tab (keys match :data:`WEBUI_STRUCTURE`).

    The row label's key is ``metric``, not ``name``: the web UI sorts a table's
    rows by their ``name`` field unless a column header is clicked, which would
    interleave the request, quota and conversation rows alphabetically (and put
    "Aggregated" first). Rows without ``name`` keep this order (a stable sort)."""
    rows = []
    for r in _request_rows(snap):
        t, f = r["ttfb"], r["first_line"]
        rows.append(
            {
                "metric": r["name"],
                "count": r["count"],
                "ttfb_p50": t["p50"],
                "ttfb_p95": t["p95"],
                "ttfb_p99": t["p99"],
                "first_line_p50": f["p50"],
                "first_line_p95": f["p95"],
                "first_line_p99": f["p99"],
                "avg_bytes": r["avg_bytes"],
                "avg_lines": r["avg_lines"],
                "value": "",
            }
        )
    for p, q in snap["quota"].items():
        rows.append({"metric": f"quota {p}", "value": f"{q['used']} / {q['quota']}"})
    c = snap["conversations"]
    rows.append({"metric": "conversations started / completed", "value": f"{c['started']} / {c['completed']}"})
    rows.append(
        {"metric": "conversation turns p50 / max", "value": f"{_fmt(c['turns_p50']) or '-'} / {_fmt(c['turns_max']) or '-'}"}
    )
    rows.append({"metric": "continuity failures", "value": str(c["continuity_failures"])})
    rows.append({"metric": "HTTP 429 responses", "value": str(snap["status_429"])})
    return rows


WEBUI_TAB_KEY = "zeno"
WEBUI_STRUCTURE = [
    {"key": "metric", "title": "Name"},
    {"key": "count", "title": "# Requests"},
    {"key": "ttfb_p50", "title": "TTFB p50 (ms)"},
    {"key": "ttfb_p95", "title": "TTFB p95 (ms)"},
    {"key": "ttfb_p99", "title": "TTFB p99 (ms)"},
    {"key": "first_line_p50", "title": "First line p50 (ms)"},
    {"key": "first_line_p95", "title": "First line p95 (ms)"},
    {"key": "first_line_p99", "title": "First line p99 (ms)"},
    {"key": "avg_bytes", "title": "Avg bytes"},
    {"key": "avg_lines", "title": "Avg lines"},
    {"key": "value", "title": "Value"},
]


def zeno_html_path(html_file: str, options=None) -> str:
    """``report.html`` -> ``report_zeno.html``. Resolves 2.47's ``{u}``/``{r}``/``{t}``
    placeholders the way ``locust.html.process_html_filename`` does if still present."""
    path = html_file
    if options is not None and "{" in path:
        for term, attr in (("{u}", "num_users"), ("{r}", "spawn_rate"), ("{t}", "run_time")):
            val = getattr(options, attr, None)
            if val is not None:
                try:
                    rep = str(int(val)) if float(val).is_integer() else str(val)
                except (TypeError, ValueError):
                    rep = str(val)
                path = path.replace(term, rep)
    root, ext = os.path.splitext(path)
    return f"{root}_zeno{ext or '.html'}"


# ---- Locust integration ------------------------------------------------------------


class _Plugin:
    def __init__(self):
        self.agg = ZenoAggregator()
        self.environment = None
        self.active = False
        self.csv_path = None
        self.csv_greenlet = None
        self.finished = False

    # message handler: 2.12.1 and 2.47.0 both call listener(environment=..., msg=...)
    def on_message(self, environment=None, msg=None, **_kw):
        try:
            data = getattr(msg, "data", None)
            node_id = getattr(msg, "node_id", None)
        except Exception:  # pragma: no cover
            data, node_id = None, None
        self.agg.merge(data, node_id)

    def on_init(self, environment, **_kw):
        try:
            from locust.runners import MasterRunner
        except Exception:  # pragma: no cover
            return
        if not isinstance(getattr(environment, "runner", None), MasterRunner):
            return
        self.environment = environment
        self.active = True
        self.finished = False
        environment.runner.register_message(MESSAGE_TYPE, self.on_message)
        options = environment.parsed_options
        prefix = getattr(options, "csv_prefix", None)
        if prefix:
            self.csv_path = f"{prefix}_zeno.csv"
            import gevent

            self.csv_greenlet = gevent.spawn(self._csv_loop)
        web_ui = getattr(environment, "web_ui", None)
        if web_ui is not None:
            try:
                self._install_web(web_ui)
            except Exception:
                logger.exception("Zeno metrics: could not extend the web UI (metrics still collected)")

    def _csv_loop(self):
        import gevent

        while True:
            gevent.sleep(CSV_INTERVAL_SEC)
            self.write_csv()

    def write_csv(self):
        if not self.csv_path:
            return
        try:
            if d := os.path.dirname(self.csv_path):
                os.makedirs(d, exist_ok=True)
            write_csv(self.csv_path, self.agg.snapshot())
        except Exception as e:
            logger.error("Zeno metrics: could not write %s: %s", self.csv_path, e)

    def _install_web(self, web_ui):
        from flask import Response, jsonify, request

        app = web_ui.app
        auth = getattr(web_ui, "auth_required_if_enabled", lambda f: f)

        def zeno_stats():
            return jsonify(self.agg.snapshot())

        def zeno_csv():
            return Response(
                csv_text(self.agg.snapshot()),
                mimetype="text/csv",
                headers={"Content-disposition": "attachment;filename=zeno_metrics.csv"},
            )

        app.add_url_rule("/zeno/stats", "zeno_stats", auth(zeno_stats))
        app.add_url_rule("/zeno/csv", "zeno_csv", auth(zeno_csv))

        if not self._webui_supports_tabs(web_ui):
            logger.info("Zeno metrics: this Locust web UI has no extension tabs; skipping the Zeno tab (JSON at /zeno/stats)")
            return
        web_ui.template_args["extended_tabs"] = [{"title": "Zeno", "key": WEBUI_TAB_KEY}]
        web_ui.template_args["extended_tables"] = [{"key": WEBUI_TAB_KEY, "structure": WEBUI_STRUCTURE}]
        web_ui.template_args["extended_csv_files"] = [{"href": "./zeno/csv", "title": "Download Zeno metrics CSV"}]

        @app.after_request
        def _zeno_extend_stats(response):
            try:
                if request.path.endswith("/stats/requests") and response.status_code == 200 and response.is_json:
                    body = response.get_json()
                    body["extended_stats"] = [{"key": WEBUI_TAB_KEY, "data": webui_rows(self.agg.snapshot())}]
                    response.set_data(json.dumps(body))
            except Exception as e:  # never break Locust's own UI
                logger.debug("Zeno metrics: could not extend /stats/requests: %s", e)
            return response

    @staticmethod
    def _webui_supports_tabs(web_ui) -> bool:
        """The React web UI (2.2x+) reads extended_tabs from template_args; the old
        jinja UI (2.12.1) has no such mechanism. Feature-detect, don't version-parse
        (Debian's 2.12.1 reports an empty __version__)."""
        try:
            import locust.web as lw

            build = getattr(lw, "DEFAULT_BUILD_PATH", None)
            if not build or not isinstance(getattr(web_ui, "template_args", None), dict):
                return False
            for root, _dirs, files in os.walk(os.path.join(build, "assets")):
                for fn in files:
                    if fn.endswith(".js"):
                        with open(os.path.join(root, fn), encoding="utf-8", errors="ignore") as fh:
                            if "extendedTabs" in fh.read():
                                return True
        except Exception:
            return False
        return False

    def on_test_start(self, environment=None, **_kw):
        if self.active:
            self.agg.reset()

    def on_reset_stats(self, **_kw):
        if self.active:
            self.agg.reset()

    def on_spawning_complete(self, **_kw):
        """Mirror --reset-stats: the master resets its own rows when spawning completes."""
        if self.active and getattr(self.environment, "reset_stats", False):
            logger.info("Zeno metrics: resetting (--reset-stats)")
            self.agg.reset()

    def on_quit(self, **_kw):
        """Fires after runner.quit() (which waits 0.5 s for the workers' final
        reports) in both versions, so the final windows are included."""
        if not self.active or self.finished:
            return
        self.finished = True
        if self.csv_greenlet is not None:
            self.csv_greenlet.kill(block=False)
        self.write_csv()
        snap = self.agg.snapshot()
        options = getattr(self.environment, "parsed_options", None)
        html_file = getattr(options, "html_file", None)
        if html_file:
            path = zeno_html_path(html_file, options)
            try:
                if d := os.path.dirname(path):
                    os.makedirs(d, exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(render_html(snap))
                logger.info("Zeno metrics report written to %s", path)
            except Exception as e:
                logger.error("Zeno metrics: could not write %s: %s", path, e)
        emit(summary_lines(snap))


def emit(lines):
    """Print through Locust's stats logger (stdout + --logfile) like its own tables;
    plain print if logging was not set up (--skip-log-setup)."""
    console = logging.getLogger("locust.stats_logger")
    if console.hasHandlers() and console.isEnabledFor(logging.INFO):
        for line in lines:
            console.info(line)
        console.info("")
    else:
        print("\n".join(lines) + "\n", flush=True)


PLUGIN = _Plugin()
_installed = False


def install(events=None):
    """Register the listeners on Locust's events (idempotent)."""
    global _installed
    if _installed:
        return PLUGIN
    if events is None:
        from locust import events
    events.init.add_listener(PLUGIN.on_init)
    events.test_start.add_listener(PLUGIN.on_test_start)
    events.reset_stats.add_listener(PLUGIN.on_reset_stats)
    events.spawning_complete.add_listener(PLUGIN.on_spawning_complete)
    events.quit.add_listener(PLUGIN.on_quit)
    _installed = True
    return PLUGIN

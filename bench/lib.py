#!/usr/bin/env python3
"""Helpers for bench/run.sh: free ports, a process runner that records the
child's CPU-seconds and RSS, result extraction from CSV/JSON files, and the
final table. Standard library only (run with the project's .venv python).

Subcommands
  ports N                      print N free loopback TCP ports
  run [opts] -- CMD ...        run CMD, write its rusage (and /proc samples)
  s1 / s2 / s3 / s4 ...        turn one run's files into a result record
  table RESULTS.jsonl          print the final table; exit 1 if a run broke
  check-smoke RESULTS.jsonl    exit non-zero unless every record is usable
"""

import argparse
import csv
import json
import statistics
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- ports


def cmd_ports(a):
    socks, out = [], []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(str(s.getsockname()[1]))
    for s in socks:
        s.close()
    print(" ".join(out))


# ---------------------------------------------------------------- runner


def proc_sample(pid):
    """(cpu_seconds, rss_bytes, peak_rss_bytes, threads) of a live pid, or None.

    The peak is VmHWM of the current image: ru_maxrss of a child would also
    count the Python parent's pages that the child had before exec."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    fields = st[st.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime=14, stime=15
    utime, stime = int(fields[11]), int(fields[12])
    kv = {}
    for line in status.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "Threads"):
            kv[k] = int(v.split()[0])
    return (utime + stime) / CLK_TCK, kv.get("VmRSS", 0) * 1024, kv.get("VmHWM", 0) * 1024, kv.get("Threads", 0)


def cmd_run(a):
    """Run a command, forward SIGTERM/SIGINT, sample /proc, write rusage."""
    t0 = time.monotonic()
    t0_epoch = time.time()
    child = subprocess.Popen(a.cmd)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(str(child.pid))

    def fwd(sig, _frm):
        try:
            child.send_signal(sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, fwd)
    signal.signal(signal.SIGINT, fwd)
    samples = []
    peak = 0
    status = None
    while True:
        try:
            pid, status, ru = os.wait4(child.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == child.pid:
            break
        s = proc_sample(child.pid)
        if s:
            samples.append([round(time.monotonic() - t0, 3), round(s[0], 3), s[1], s[3]])
            peak = max(peak, s[2])
        time.sleep(a.interval)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status) if status is not None else -1
    rec = {
        "cmd": a.cmd,
        "pid": child.pid,
        "t0_epoch": t0_epoch,
        "exit": code,
        "wall_s": round(wall, 3),
        "utime_s": ru.ru_utime,
        "stime_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "maxrss_bytes": peak,  # VmHWM, sampled
        "ru_maxrss_bytes": ru.ru_maxrss * 1024,
        "samples": samples,  # [t, cpu_s, rss_bytes, threads]
    }
    with open(a.out, "w") as f:
        json.dump(rec, f)
    sys.exit(code if code >= 0 else 128 - code)


# ---------------------------------------------------------------- readers


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def stats_row(prefix, name="Aggregated"):
    """A row of Locust's PREFIX_stats.csv (the request table)."""
    try:
        with open(f"{prefix}_stats.csv", newline="") as f:
            for r in csv.DictReader(f):
                if r.get("Name") == name:
                    return r
    except OSError:
        pass
    return None


def zeno_row(prefix, name):
    try:
        with open(f"{prefix}_zeno.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None, {}
    meta = {r["Name"]: r["Value"] for r in rows if r.get("Type") == "meta"}
    for r in rows:
        if r.get("Type") == "request" and r.get("Name") == name:
            return r, meta
    return None, meta


def failures_top(prefix, n=2):
    out = []
    try:
        with open(f"{prefix}_failures.csv", newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: -int(r.get("Occurrences") or 0))
        for r in rows[:n]:
            out.append(f'{r["Occurrences"]}x {r["Error"][:60]}')
    except OSError:
        pass
    return out


def num(v, default=None):
    try:
        x = float(v)
        return x if math.isfinite(x) else default
    except (TypeError, ValueError):
        return default


def fake_truth(path, lines=None):
    """Ground truth of one fakezeno run: header delay and stream schedule.

    With a fixed profile every stream is header delay + `lines` gaps (each
    line is preceded by one gap); the delays are the server's own means."""
    g = load_json(path, {}) or {}
    hd = g.get("injected_header_delay_ms", {}) or {}
    gp = g.get("injected_gap_ms", {}) or {}
    started = g.get("streams_started", 0) or 0
    gaps_per_stream = lines if lines else ((gp.get("count", 0) / started) if started else 0)
    return {
        "requests": g.get("chat_requests_total", 0),
        "status": g.get("by_status", {}),
        "streams_started": started,
        "streams_completed": g.get("streams_completed", 0),
        "client_gone": g.get("streams_client_gone", 0),
        "aborted_before_headers": g.get("aborted_before_headers", 0),
        "ttfb_ms": hd.get("mean_ms"),
        "ttfb_max_ms": hd.get("max_ms"),
        "gap_ms": gp.get("mean_ms"),
        "gaps_per_stream": gaps_per_stream,
        "total_ms": (hd.get("mean_ms") or 0) + (gp.get("mean_ms") or 0) * gaps_per_stream if started else None,
        "lines_sent": g.get("lines_sent", 0),
    }


def append(results, rec):
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")


def window_cpu(samples, t_from, t_to):
    """CPU-seconds and wall between the samples nearest t_from and t_to."""
    pts = [s for s in samples if t_from <= s[0] <= t_to]
    if len(pts) < 2:
        return None, None
    return pts[-1][1] - pts[0][1], pts[-1][0] - pts[0][0]


# ---------------------------------------------------------------- sections


def cmd_s1(a):
    """Throughput per CPU-second of one load generator."""
    ru = load_json(a.rusage, {}) or {}
    cpu = ru.get("cpu_s")
    rec = {"section": 1, "round": a.round, "label": a.label, "cpu_s": cpu, "wall_s": ru.get("wall_s"), "exit": ru.get("exit")}
    if a.kind == "wrk":
        txt = open(a.wrk_out).read() if os.path.exists(a.wrk_out) else ""
        m = re.search(r"(\d+) requests in", txt)
        reqs = int(m.group(1)) if m else None
        errs = 0
        for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
            mm = re.search(pat, txt)
            if mm:
                errs += sum(int(x) for x in mm.groups())
        rec.update(requests=reqs, failures=errs)
    else:
        row = stats_row(a.csv)
        reqs = int(row["Request Count"]) if row else None
        fails = int(row["Failure Count"]) if row else None
        if a.summary:
            s = load_json(a.summary, {}) or {}
            if s.get("num_requests") is not None:
                rec["worker_summary_requests"] = s["num_requests"]
        rec.update(requests=reqs, failures=fails, fail_examples=failures_top(a.csv))
        _, meta = zeno_row(a.csv, "Aggregated")
        rec["workers_seen"] = meta.get("workers")
    truth = fake_truth(a.fake) if a.fake else {}
    rec["server_requests"] = truth.get("requests")
    rec["rps_per_cpu"] = (rec["requests"] / cpu) if rec.get("requests") and cpu else None
    append(a.results, rec)


def cmd_s2(a):
    """go test -bench output -> events/s per core and allocs/event."""
    txt = open(a.bench_out).read() if os.path.exists(a.bench_out) else ""
    best = {}
    for m in re.finditer(
        r"^(BenchmarkRecord\S*?)(?:-(\d+))?\s+(\d+)\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op)?(?:\s+(\d+) allocs/op)?", txt, re.M
    ):
        name, procs, ns, allocs = m.group(1), int(m.group(2) or 1), float(m.group(4)), m.group(6)
        # ns/op of a RunParallel benchmark is wall time per op across all
        # procs: events/s per core = 1e9 / (ns/op * procs).
        per_core = 1e9 / (ns * procs)
        prev = best.get((name, procs))
        if prev is None or per_core > prev["per_core"]:
            best[(name, procs)] = {"name": name, "procs": procs, "ns_op": ns, "per_core": per_core,
                                   "allocs": int(allocs) if allocs is not None else None}
    for v in sorted(best.values(), key=lambda v: (v["name"], v["procs"])):
        append(a.results, {"section": 2, "label": f'{v["name"]} GOMAXPROCS={v["procs"]}', **v})
    if not best:
        append(a.results, {"section": 2, "label": "BenchmarkRecord", "error": "no benchmark output"})


def cmd_s3(a):
    """Concurrency hold: failures, RSS/stream, steady-state CPU."""
    ru = load_json(a.rusage, {}) or {}
    row = stats_row(a.csv)
    fails = int(row["Failure Count"]) if row else None
    reqs = int(row["Request Count"]) if row else None
    samples = ru.get("samples", [])
    # steady state: from hold_from seconds after the worker started until
    # hold_to, both given by run.sh (ramp done .. before stop).
    cpu, wall = window_cpu(samples, a.hold_from, a.hold_to)
    rss_hold = [s[2] for s in samples if a.hold_from <= s[0] <= a.hold_to]
    truth = fake_truth(a.fake, a.lines) if a.fake else {}
    p50 = num(row.get("50%")) if row else None
    p95 = num(row.get("95%")) if row else None
    rec = {
        "section": 3, "label": a.label, "users": a.users, "requests": reqs, "failures": fails,
        "fail_examples": failures_top(a.csv), "cpu_hold_s": cpu, "hold_wall_s": wall,
        "cpu_pct_core": (100 * cpu / wall) if cpu is not None and wall else None,
        "cpu_total_s": ru.get("cpu_s"), "wall_s": ru.get("wall_s"),
        "maxrss_bytes": ru.get("maxrss_bytes"),
        "rss_hold_max": max(rss_hold) if rss_hold else None,
        "rss_per_stream_kib": (ru.get("maxrss_bytes") or 0) / 1024 / a.users if ru.get("maxrss_bytes") else None,
        "p50_ms": p50, "p95_ms": p95, "truth_total_ms": truth.get("total_ms"),
        "server_started": truth.get("streams_started"), "server_completed": truth.get("streams_completed"),
        "server_client_gone": truth.get("client_gone"), "exit": ru.get("exit"),
    }
    act = load_json(a.csv + ".actual.json", {}) or {}
    rec["actual_total_p50"] = (act.get("total_ms") or {}).get("p50_ms")
    rec["actual_total_p95"] = (act.get("total_ms") or {}).get("p95_ms")
    # concurrent streams actually held: the server's in-flight count is not
    # exported, so estimate it from Little's law over the hold window.
    if truth.get("total_ms") and row and num(row.get("Requests/s")):
        rec["est_concurrent"] = num(row["Requests/s"]) * truth["total_ms"] / 1000
    _, meta = zeno_row(a.csv, "Aggregated")
    rec["workers_seen"] = meta.get("workers")
    # the other processes in the same window: is the worker the bottleneck?
    for who, path in (("server", a.csv + ".fake.rusage.json"), ("master", a.csv + ".master.rusage.json")):
        o = load_json(path, {}) or {}
        shift = (o.get("t0_epoch") or 0) - (ru.get("t0_epoch") or 0)  # other clock -> worker clock
        c, w = window_cpu(o.get("samples", []), a.hold_from - shift, a.hold_to - shift)
        rec[who + "_cpu_pct_core"] = (100 * c / w) if c is not None and w else None
    base = [s[2] for s in samples if s[0] <= 1.0]
    rec["rss_baseline"] = min(base) if base else None
    append(a.results, rec)


def cmd_s4(a):
    """Accuracy: master p50/p95 (requests, TTFB) vs fakezeno ground truth."""
    row = stats_row(a.csv, a.name)
    z, meta = zeno_row(a.csv, a.name)
    truth = fake_truth(a.fake, a.lines)
    rec = {
        "section": 4, "label": a.label, "users": a.users,
        "requests": int(row["Request Count"]) if row else None,
        "failures": int(row["Failure Count"]) if row else None,
        "req_p50": num(row.get("50%")) if row else None,
        "req_p95": num(row.get("95%")) if row else None,
        "ttfb_p50": num(z.get("TTFB 50%")) if z else None,
        "ttfb_p95": num(z.get("TTFB 95%")) if z else None,
        "truth_ttfb_ms": truth["ttfb_ms"], "truth_total_ms": truth["total_ms"],
        "gaps_per_stream": truth["gaps_per_stream"], "server_requests": truth["requests"],
        "workers_seen": meta.get("workers"), "fail_examples": failures_top(a.csv),
    }
    ru = load_json(a.rusage, {}) or {}
    rec["cpu_s"], rec["wall_s"] = ru.get("cpu_s"), ru.get("wall_s")
    # what the server really did (handler entry -> status line / last byte)
    act = load_json(a.csv + ".actual.json", {}) or {}
    for k, src in (("actual_total", "total_ms"), ("actual_ttfb", "header_ms")):
        d = act.get(src) or {}
        rec[k + "_p50"], rec[k + "_p95"] = d.get("p50_ms"), d.get("p95_ms")
    append(a.results, rec)


# ---------------------------------------------------------------- table


def f(v, fmt="{:,.0f}", none="n/a"):
    return none if v is None else fmt.format(v)


def within(v, truth, tol=0.05):
    return v is not None and truth and abs(v - truth) <= tol * truth


def build_rows(recs):
    rows = []  # (section, measurement, value, target, verdict)
    broken = []
    # Section 1: every round runs the three tools back to back; ratios are
    # taken within a round (same machine state), then the median is shown.
    s1 = [r for r in recs if r["section"] == 1]
    rounds = sorted({r.get("round", 1) for r in s1})
    by = {(r.get("round", 1), r["label"]): r for r in s1}
    labels = [l for l in ("zeno-worker", "locust-fasthttp", "wrk") if any(k[1] == l for k in by)]
    for lab in labels:
        rs = [by[(n, lab)] for n in rounds if (n, lab) in by]
        vals = [r["rps_per_cpu"] for r in rs if r.get("rps_per_cpu")]
        if len(vals) < len(rs) or not rs:
            broken.append(f"section 1 {lab}: no requests/CPU-second in some round")
        extra = "rounds: " + ", ".join(f(v) for v in vals) if len(rs) > 1 else \
            f'{f(rs[0].get("requests"))} req / {f(rs[0].get("cpu_s"), "{:.2f}")} CPU-s'
        fails = sum(r.get("failures") or 0 for r in rs)
        if fails:
            extra += f", {f(fails)} failed"
        rows.append(("1 throughput", f"{lab}: req per CPU-s" + (" (median)" if len(rs) > 1 else ""),
                     f(statistics.median(vals)) if vals else "n/a", extra, ""))

    def ratio_row(num, other, name, target):
        xs = [by[(n, num)]["rps_per_cpu"] / by[(n, other)]["rps_per_cpu"] for n in rounds
              if by.get((n, num), {}).get("rps_per_cpu") and by.get((n, other), {}).get("rps_per_cpu")]
        if not xs:
            return
        x = statistics.median(xs)
        per = " (rounds: " + ", ".join(f"{v:.2f}x" for v in xs) + ")" if len(xs) > 1 else ""
        med = " (median)" if len(xs) > 1 else ""
        if target is None:  # context, not a target
            detail, verdict = "context: the ceiling for the 10x target on this machine", ""
        else:
            detail, verdict = f">= {target:g}x", "MET" if x >= target else "MISSED"
        rows.append(("1 throughput", f"{num} / {name}{med}", f"{x:.2f}x", detail + per, verdict))

    ratio_row("zeno-worker", "locust-fasthttp", "FastHttpUser", 10)
    ratio_row("zeno-worker", "wrk", "wrk", 0.5)
    # wrk is the practical ceiling (C, one epoll loop): where it is itself
    # under 10x FastHttpUser, 10x needs zeno-worker to beat it.
    ratio_row("wrk", "locust-fasthttp", "FastHttpUser", None)
    go_fails = sum(r.get("failures") or 0 for r in s1 if r["label"] == "zeno-worker")
    if go_fails:
        rows.append(("1 throughput", "zeno-worker failures", f(go_fails), "0", "MISSED"))

    for r in (r for r in recs if r["section"] == 2):
        if r.get("error"):
            broken.append("section 2: " + r["error"])
            rows.append(("2 recording", r["label"], "n/a", "", "BROKEN"))
            continue
        ok = r["per_core"] >= 2e6 and r.get("allocs") == 0
        rows.append(("2 recording", f'{r["label"]}: events/s/core', f(r["per_core"]), ">= 2,000,000", "MET" if r["per_core"] >= 2e6 else "MISSED"))
        rows.append(("2 recording", f'{r["label"]}: allocs/event', f(r.get("allocs")), "0", "MET" if r.get("allocs") == 0 else "MISSED"))

    for r in (r for r in recs if r["section"] == 3):
        lab = f'{r["label"]} @ {r["users"]:,} users'
        if r.get("requests") is None:
            broken.append(f"section 3 {lab}: no master CSV")
        fails = r.get("failures")
        note = "; ".join(r.get("fail_examples") or [])
        is_go = r["label"] == "zeno-worker"
        rows.append(("3 concurrency", f"{lab}: failures / requests", f'{f(fails)} / {f(r.get("requests"))}',
                     "0" if is_go else "(report)", ("MET" if fails == 0 else "MISSED") if is_go else note[:60]))
        rss = r.get("rss_per_stream_kib")
        rows.append(("3 concurrency", f"{lab}: peak RSS per stream", f(rss, "{:.1f} KiB"),
                     "<= 64 KiB" if is_go else "", ("MET" if rss is not None and rss <= 64 else "MISSED") if is_go else
                     f'peak RSS {f((r.get("maxrss_bytes") or 0) / 2**20, "{:.0f}")} MiB'))
        cpu = r.get("cpu_pct_core")
        rows.append(("3 concurrency", f"{lab}: CPU in hold", f(cpu, "{:.0f}% of a core"),
                     "<= 50%" if is_go else "", ("MET" if cpu is not None and cpu <= 50 else "MISSED") if is_go else ""))
        if r.get("truth_total_ms"):
            rows.append(("3 concurrency", f"{lab}: request p50 / p95", f'{f(r.get("p50_ms"))} / {f(r.get("p95_ms"))} ms',
                         f'schedule {f(r["truth_total_ms"])} ms; server sent {f(r.get("actual_total_p50"))}/{f(r.get("actual_total_p95"))}',
                         f'~{f(r.get("est_concurrent"))} streams held'))
        rows.append(("3 concurrency", f"{lab}: other CPU in hold", f'server {f(r.get("server_cpu_pct_core"), "{:.0f}%")}, master {f(r.get("master_cpu_pct_core"), "{:.0f}%")}', "", ""))

    for r in (r for r in recs if r["section"] == 4):
        lab = f'{r["label"]} @ {r["users"]:,} users'
        tt, tot = r.get("truth_ttfb_ms"), r.get("truth_total_ms")
        if r.get("requests") is None or not tot:
            broken.append(f"section 4 {lab}: no data")
        is_go = r["label"] == "zeno-worker"
        # The verdict compares each percentile with the same percentile of
        # what the server measured it really did (handler entry to status
        # line / last byte, /_bench/truth), which is the server's ground
        # truth when the server itself runs late; the deviation from the
        # injected schedule is shown too.
        for what, keys, sched, act in (
            ("request p50/p95", ("req_p50", "req_p95"), tot, ("actual_total_p50", "actual_total_p95")),
            ("TTFB p50/p95", ("ttfb_p50", "ttfb_p95"), tt, ("actual_ttfb_p50", "actual_ttfb_p95")),
        ):
            a, b = r.get(keys[0]), r.get(keys[1])
            sa, sb = r.get(act[0]), r.get(act[1])
            if sa is None or sb is None:
                broken.append(f"section 4 {lab}: no server-side truth")
            ok = within(a, sa) and within(b, sb)
            dev = " ".join(f"{(v - t) / t * 100:+.1f}%" if v is not None and t else "n/a" for v, t in ((a, sa), (b, sb)))
            sdev = " ".join(f"{(v - sched) / sched * 100:+.1f}%" if v is not None and sched else "n/a" for v in (a, b))
            verdict = ("MET" if ok else "MISSED") if is_go else ("within 5%" if ok else "outside 5%")
            rows.append(("4 accuracy", f"{lab}: {what}", f"{f(a)} / {f(b)} ms ({dev})",
                         f"server sent {f(sa)}/{f(sb)} +-5%; schedule {f(sched)} ({sdev})", verdict))
        if r.get("failures"):
            rows.append(("4 accuracy", f"{lab}: failures", f(r["failures"]), "0", "; ".join(r.get("fail_examples") or [])[:60]))
    return rows, broken


def cmd_table(a):
    recs = [json.loads(l) for l in open(a.results) if l.strip()] if os.path.exists(a.results) else []
    rows, broken = build_rows(recs)
    hdr = ("Section", "Measurement", "Value", "Target / detail", "Verdict")
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(5)]
    line = "+".join("-" * (x + 2) for x in w)
    print(line)
    print(" | ".join(str(h).ljust(w[i]) for i, h in enumerate(hdr)))
    print(line)
    last = None
    for r in rows:
        if last is not None and r[0] != last:
            print(line)
        last = r[0]
        print(" | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    print(line)
    for b in broken:
        print("BROKEN:", b)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"rows": rows, "broken": broken, "records": recs}, fh, indent=1)
    sys.exit(1 if broken else 0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="sub", required=True)
    s = sub.add_parser("ports"); s.add_argument("n", type=int); s.set_defaults(fn=cmd_ports)
    s = sub.add_parser("run")
    s.add_argument("--out", required=True); s.add_argument("--pidfile")
    s.add_argument("--interval", type=float, default=0.5)
    s.add_argument("cmd", nargs=argparse.REMAINDER); s.set_defaults(fn=cmd_run)
    s = sub.add_parser("s1")
    for o in ("results", "label", "kind", "rusage"): s.add_argument("--" + o, required=True)
    for o in ("csv", "summary", "wrk-out", "fake"): s.add_argument("--" + o)
    s.add_argument("--round", type=int, default=1)
    s.set_defaults(fn=cmd_s1)
    s = sub.add_parser("s2"); s.add_argument("--results", required=True); s.add_argument("--bench-out", required=True)
    s.set_defaults(fn=cmd_s2)
    s = sub.add_parser("s3")
    for o in ("results", "label", "rusage", "csv", "fake"): s.add_argument("--" + o, required=True)
    s.add_argument("--users", type=int, required=True)
    s.add_argument("--lines", type=int)
    s.add_argument("--hold-from", type=float, required=True); s.add_argument("--hold-to", type=float, required=True)
    s.set_defaults(fn=cmd_s3)
    s = sub.add_parser("s4")
    for o in ("results", "label", "csv", "fake", "rusage"): s.add_argument("--" + o, required=True)
    s.add_argument("--users", type=int, required=True); s.add_argument("--name", default="quick_query")
    s.add_argument("--lines", type=int)
    s.set_defaults(fn=cmd_s4)
    s = sub.add_parser("table"); s.add_argument("results"); s.add_argument("--json"); s.set_defaults(fn=cmd_table)
    a = p.parse_args()
    if a.sub == "run" and a.cmd[:1] == ["--"]:
        a.cmd = a.cmd[1:]
    a.fn(a)


if __name__ == "__main__":
    main()

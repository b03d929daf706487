#!/usr/bin/env bash
# Soak test (issue 7; long-running, NOT in CI): steady load from Go workers,
# joined to a stock Locust 2.47.0 master, against the fake Zeno API with
# realistic-but-scaled delays, for SOAK_DURATION seconds (default 1800).
#
# It reports:
#   * worker RSS, sampled every SOAK_SAMPLE seconds, and its slope (KiB/min,
#     least-squares fit, whole run and after the warm-up);
#   * the size of every stats message on the wire (a small ZeroMQ proxy sits
#     between the workers and the master and records sizes per message type);
#   * the request counts at the end: master CSV vs the fake's ground truth
#     (every request the fake answered, minus the ones cut by the end of the
#     run) vs the workers' own totals. They must be equal.
#
# Usage: scripts/soak.sh            (or: make soak)
# Knobs (environment):
#   SOAK_DURATION=1800  seconds of load        SOAK_USERS=40       users
#   SOAK_WORKERS=2      Go workers             SOAK_TIME_SCALE=0.1 fake delay scale
#   SOAK_SAMPLE=10      RSS sample interval    SOAK_OUT=reports/soak-<time>  output folder
#   SOAK_MAX_SLOPE=64   fail above this RSS slope (KiB/min, after warm-up)
#   LOCUST_BIN          locust executable (default .venv/bin/locust)
#   ZENO_WORKER_BIN     use this worker binary instead of building one
# Exit status: 0 when counts are exact and the slope is under SOAK_MAX_SLOPE.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${SOAK_DURATION:-1800}
USERS=${SOAK_USERS:-40}
WORKERS=${SOAK_WORKERS:-2}
SCALE=${SOAK_TIME_SCALE:-0.1}
SAMPLE=${SOAK_SAMPLE:-10}
MAX_SLOPE=${SOAK_MAX_SLOPE:-64}
OUT=${SOAK_OUT:-reports/soak-$(date +%Y%m%d-%H%M%S)}
LOCUST=${LOCUST_BIN:-$ROOT/.venv/bin/locust}
PY=$ROOT/.venv/bin/python
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

[ -x "$LOCUST" ] || { echo "soak: $LOCUST not found (run make venv)"; exit 2; }
[ "$DURATION" -ge 60 ] 2>/dev/null || { echo "soak: SOAK_DURATION must be >= 60 seconds"; exit 2; }

if [ -n "${ZENO_WORKER_BIN:-}" ]; then
  BIN=$ZENO_WORKER_BIN
else
  BIN=$OUT/zeno-worker
  go build -o "$BIN" ./worker
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FAKE_PORT=$(free_port); MASTER_PORT=$(free_port); PROXY_PORT=$(free_port)

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# A soak token for the fake (any well-formed key is accepted there).
TOKEN="zeno-key:50a4beef:$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HARD=$((DURATION + 120)) # every process is bounded

echo "soak: ${DURATION}s, $USERS users on $WORKERS workers, fake time scale $SCALE, output $OUT"

timeout "$((HARD + 60))" "$BIN" fake-zeno --listen "127.0.0.1:$FAKE_PORT" --time-scale "$SCALE" \
  --quota 100000000 >"$OUT/fake.log" 2>&1 &
PIDS+=($!)

# The wire tap: workers -> ROUTER (proxy) -> one DEALER per worker identity -> master.
cat >"$OUT/wiretap.py" <<'PYEOF'
import json, signal, sys, time
import msgpack, zmq
listen, master, out = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER); front.bind(listen)
poller = zmq.Poller(); poller.register(front, zmq.POLLIN)
backs, by_sock, sizes = {}, {}, {}
running = True
def stop(*_):
    global running; running = False
signal.signal(signal.SIGTERM, stop); signal.signal(signal.SIGINT, stop)
def note(direction, payload):
    try:
        typ = msgpack.unpackb(payload, raw=False, strict_map_key=False)[0]
    except Exception:
        typ = "?"
    s = sizes.setdefault(f"{direction} {typ}", {"count": 0, "max": 0, "sum": 0, "last": 0})
    s["count"] += 1; s["sum"] += len(payload); s["last"] = len(payload); s["max"] = max(s["max"], len(payload))
last_dump = time.time()
def dump():
    with open(out + ".tmp", "w") as f: json.dump(sizes, f, indent=1, sort_keys=True)
    import os; os.replace(out + ".tmp", out)
while running:
    for sock, _ in poller.poll(200):
        if sock is front:
            ident, payload = front.recv_multipart()[:2]
            if ident not in backs:
                d = ctx.socket(zmq.DEALER); d.setsockopt(zmq.IDENTITY, ident); d.setsockopt(zmq.LINGER, 500)
                d.connect(master); backs[ident] = d; by_sock[d] = ident; poller.register(d, zmq.POLLIN)
            note("worker->master", payload); backs[ident].send(payload)
        else:
            payload = sock.recv()
            note("master->worker", payload); front.send_multipart([by_sock[sock], payload])
    if time.time() - last_dump > 5:
        dump(); last_dump = time.time()
dump()
PYEOF
timeout "$((HARD + 60))" "$PY" "$OUT/wiretap.py" "tcp://127.0.0.1:$PROXY_PORT" "tcp://127.0.0.1:$MASTER_PORT" \
  "$OUT/wire_sizes.json" >"$OUT/wiretap.log" 2>&1 &
TAP=$!; PIDS+=($TAP)

(cd "$OUT" && exec timeout "$HARD" "$LOCUST" -f "$ROOT/locustfile_master.py" --master --headless \
  -u "$USERS" -r 5 -t "${DURATION}s" --expect-workers "$WORKERS" \
  --master-bind-host 127.0.0.1 --master-bind-port "$MASTER_PORT" --host "http://127.0.0.1:$FAKE_PORT" \
  --csv "$OUT/soak" --html "$OUT/soak.html" \
  --zeno-wait-min 1 --zeno-wait-max 3 --zeno-think-min 0.5 --zeno-think-max 2 >"$OUT/master.log" 2>&1) &
MASTER=$!; PIDS+=($MASTER)
sleep 2

WPIDS=()
for i in $(seq 1 "$WORKERS"); do
  ZENO_MACHINE_USER_TOKEN=$TOKEN ZENO_MACHINE_USER_TOKENS= timeout "$HARD" "$BIN" \
    --master-host 127.0.0.1 --master-port "$PROXY_PORT" --summary-json "$OUT/worker$i.json" \
    >"$OUT/worker$i.log" 2>&1 &
  WPIDS+=($!); PIDS+=($!)
done

echo "t_s,$(for i in $(seq 1 "$WORKERS"); do printf 'worker%d_rss_kib,' "$i"; done | sed 's/,$//')" >"$OUT/rss.csv"
start=$(date +%s)
while kill -0 "$MASTER" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  row="$now"
  for p in "${WPIDS[@]}"; do
    # $p is the `timeout` wrapper; the worker is its child.
    c=$(pgrep -P "$p" | head -1 || true)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/${c:-0}/status" 2>/dev/null || true)
    row="$row,${rss:-}"
  done
  echo "$row" >>"$OUT/rss.csv"
  sleep "$SAMPLE"
done
wait "$MASTER" && MCODE=0 || MCODE=$?
for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
curl -sf "http://127.0.0.1:$FAKE_PORT/_fake/stats" >"$OUT/fake_stats.json" || echo '{}' >"$OUT/fake_stats.json"
kill "$TAP" 2>/dev/null || true; wait "$TAP" 2>/dev/null || true

"$PY" - "$OUT" "$WORKERS" "$MCODE" "$MAX_SLOPE" "$DURATION" <<'PYEOF'
import csv, json, sys
out, workers, mcode, max_slope, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ok = True
def slope(pts):
    n = len(pts)
    if n < 3: return float("nan")
    mx = sum(x for x, _ in pts) / n; my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else float("nan")
rows = list(csv.DictReader(open(f"{out}/rss.csv")))
warm = max(120, duration // 3)  # the Go heap and the stats maps settle first
report = {"rss": {}, "counts": {}, "wire": {}}
print(f"\n== soak results ({out})")
for i in range(1, workers + 1):
    pts = [(int(r["t_s"]) / 60, int(r[f"worker{i}_rss_kib"])) for r in rows if r.get(f"worker{i}_rss_kib")]
    if not pts: continue
    whole, after = slope(pts), slope([p for p in pts if p[0] * 60 >= warm])
    half = slope([p for p in pts if p[0] * 60 >= duration / 2])
    rss = [y for _, y in pts]
    report["rss"][f"worker{i}"] = {"samples": len(pts), "min_kib": min(rss), "max_kib": max(rss), "last_kib": rss[-1],
                                   "slope_kib_per_min": round(whole, 1), "slope_after_warmup_kib_per_min": round(after, 1),
                                   "slope_second_half_kib_per_min": round(half, 1), "warmup_s": warm}
    print(f"worker{i} RSS: {min(rss)/1024:.1f}..{max(rss)/1024:.1f} MiB over {len(pts)} samples; slope "
          f"{whole:+.1f} KiB/min (whole), {after:+.1f} KiB/min (after {warm}s warm-up), {half:+.1f} KiB/min (second half)")
    if after == after and after > max_slope:
        print(f"  FAIL: slope above {max_slope} KiB/min"); ok = False
try:
    wire = json.load(open(f"{out}/wire_sizes.json"))
except Exception:
    wire = {}
report["wire"] = wire
for k in sorted(wire):
    s = wire[k]
    print(f"wire {k:32s} n={s['count']:6d} max={s['max']:7d} B avg={s['sum']/max(1,s['count']):8.0f} B")
st = wire.get("worker->master stats")
if st: print(f"max stats message: {st['max']} bytes over {st['count']} messages")
agg = next((r for r in csv.DictReader(open(f"{out}/soak_stats.csv")) if r["Name"] in ("Aggregated", "Total")), None)
master_reqs = int(agg["Request Count"]) if agg else -1
master_fails = int(agg["Failure Count"]) if agg else -1
g = json.load(open(f"{out}/fake_stats.json"))
fake_total = g.get("chat_requests_total", -1)
cut = g.get("aborted_before_headers", 0) + g.get("streams_client_gone", 0)
fake_answered = fake_total - cut
wreq = wfail = 0
for i in range(1, workers + 1):
    try:
        s = json.load(open(f"{out}/worker{i}.json")); wreq += s["num_requests"]; wfail += s["num_failures"]
    except Exception as e:
        print(f"worker{i} summary missing: {e}"); ok = False
report["counts"] = {"master_csv_requests": master_reqs, "master_csv_failures": master_fails,
                    "fake_requests_total": fake_total, "fake_cut_by_end": cut, "fake_answered": fake_answered,
                    "fake_by_status": g.get("by_status"), "workers_requests": wreq, "workers_failures": wfail}
print(f"counts: master CSV {master_reqs} requests ({master_fails} failures); fake answered {fake_answered} "
      f"({fake_total} received, {cut} cut by the end of the run); workers recorded {wreq} ({wfail} failures)")
if not (master_reqs == fake_answered == wreq):
    print("  FAIL: counts differ"); ok = False
if mcode not in (0,):
    print(f"  FAIL: master exit code {mcode}"); ok = False
json.dump(report, open(f"{out}/soak_report.json", "w"), indent=1)
print("soak: " + ("PASS" if ok else "FAIL") + f" (report {out}/soak_report.json)")
sys.exit(0 if ok else 1)
PYEOF

#!/usr/bin/env bash
# End-to-end smoke: the README's scenario command, shortened to 20 s, against
# the embedded fake Zeno with a real Locust 2.47.0 master and two Go workers.
# Checks the scenario passes, the reports exist, and the master's CSV counts
# exactly what the workers recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
unset API_BASE_URL ZENO_MACHINE_USER_TOKEN ZENO_MACHINE_USER_TOKENS
timeout 180 ./bin/zeno-worker scenario smoke --duration 20s --users 3 --spawn-rate 3 --reports "$out" \
  -- --zeno-wait-min 0.3 --zeno-wait-max 0.8 --zeno-think-min 0.1 --zeno-think-max 0.3 | tee "$out/console.txt"
dir=$(ls -d "$out"/smoke-*)
for f in smoke_stats.csv smoke_stats_history.csv smoke_failures.csv smoke_zeno.csv report.html fake_zeno_stats.json worker-0.json worker-1.json; do
  test -s "$dir/$f" || { echo "e2e: missing report $f"; exit 1; }
done
.venv/bin/python - "$dir" <<'PY'
import csv, json, sys, glob
d = sys.argv[1]
rows = {r["Name"]: r for r in csv.DictReader(open(f"{d}/smoke_stats.csv"))}
master = int(rows["Aggregated"]["Request Count"])
workers = sum(json.load(open(p))["num_requests"] for p in glob.glob(f"{d}/worker-*.json"))
fake = json.load(open(f"{d}/fake_zeno_stats.json"))
# Requests the fake served minus those still in flight when the master quit
# (cancelled by the workers, never recorded) must equal what was recorded.
served = fake["chat_requests_total"] - fake["streams_client_gone"] - fake["aborted_before_headers"]
names = sorted(n for n in rows if n != "Aggregated")
print(f"e2e: master CSV {master} requests, workers {workers}, fake served {served} completed; names {names}")
assert master > 10, "too few requests"
assert master == workers, f"master {master} != workers {workers}"
assert master == served, f"master {master} != fake ground truth {served}"
PY
grep -q "PASS  analysis p95 < 30s" "$out/console.txt"
echo "e2e smoke: OK"

#!/usr/bin/env bash
# Browser test of the Locust 2.47 web UI's "Zeno" tab (issue 5), on loopback:
# the fake Zeno API, a Locust 2.47.0 master with its web UI (--autostart, 4
# users) and two zeno-worker processes; then e2e/browser/zeno-tab.js drives
# Debian's headless Chromium through playwright-core and checks the
# Statistics table (four request names with counts), the Workers tab (both
# workers) and the Zeno tab (TTFB and quota values).
#
# Screenshots and logs go to artifacts/browser/ (BROWSER_ARTIFACTS to change):
# zeno-tab.png, stats-table.png, workers-tab.png (failure.png on failure) and
# logs/. Exit status 0 only when every check passed. Everything it starts is
# bounded by `timeout` and killed on exit. About 20 s.
#
# Needs: /usr/bin/chromium (apt-get install chromium), node >= 20, .venv with
# Locust 2.47.0 (scripts/bootstrap.sh), Go. Runs `npm ci` in e2e/browser when
# playwright-core is not installed there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BROWSER_ARTIFACTS:-$ROOT/artifacts/browser}
LOCUST=${LOCUST_BIN:-$ROOT/.venv/bin/locust}
CHROMIUM=${CHROMIUM_BIN:-/usr/bin/chromium}
RUN_TIME=40s        # the master's -t: the load runs this long
CHECK_TIMEOUT_MS=45000 # per check in the browser script

die() { echo "browser-test: $*" >&2; exit 1; }
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (apt-get install chromium)"
command -v node >/dev/null || die "node not found"
[ -x "$LOCUST" ] || die "no Locust 2.47.0 at $LOCUST (run scripts/bootstrap.sh)"
if [ ! -f e2e/browser/node_modules/playwright-core/package.json ]; then
  echo "browser-test: npm ci in e2e/browser"
  (cd e2e/browser && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zeno-browser.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Only the processes this script started, by PID. `timeout` passes the
  # TERM on to its child; anything still alive after 10 s is killed.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      pkill -KILL -P "$p" 2>/dev/null || true
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  mkdir -p "$OUT/logs"
  cp "$WORK"/*.log "$OUT/logs/" 2>/dev/null || true
  rm -rf "$WORK"
  if [ "$rc" != 0 ]; then
    echo "browser-test: FAILED (exit $rc); logs and screenshots in $OUT" >&2
    tail -n 30 "$OUT/logs/master.log" >&2 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
rm -rf "$OUT"/*.png "$OUT/logs"

echo "browser-test: building zeno-worker"
timeout 300 go build -o "$WORK/zeno-worker" ./worker
BIN=$WORK/zeno-worker

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
FAKE_PORT=$(free_port)
MASTER_PORT=$(free_port)
WEB_PORT=$(free_port)

# Two keys, one prefix each; the workers share the pool.
PREFIXES=abcd1234,beef0001
TOKENS=zeno-key:abcd1234:0123456789abcdef0123456789abcdef,zeno-key:beef0001:fedcba9876543210fedcba9876543210

# Realistic latency profiles scaled to 5 %: answers take ~0.1-1.5 s.
timeout 150 "$BIN" fake-zeno --listen "127.0.0.1:$FAKE_PORT" --time-scale 0.05 --quota 100000 \
  >"$WORK/fake.log" 2>&1 &
pids+=($!)

# Short waits, 2-3 turns and short think times: all four request names show
# up within a few seconds.
timeout 150 "$LOCUST" -f "$ROOT/locustfile_master.py" --master \
  --web-host 127.0.0.1 --web-port "$WEB_PORT" \
  --master-bind-host 127.0.0.1 --master-bind-port "$MASTER_PORT" \
  --autostart -u 4 -r 4 -t "$RUN_TIME" --expect-workers 2 \
  --host "http://127.0.0.1:$FAKE_PORT" \
  --zeno-wait-min 0.1 --zeno-wait-max 0.3 --zeno-turns-min 2 --zeno-turns-max 3 \
  --zeno-think-min 0.1 --zeno-think-max 0.2 \
  >"$WORK/master.log" 2>&1 &
MASTER_PID=$!
pids+=($MASTER_PID)

for i in 1 2; do
  env ZENO_MACHINE_USER_TOKENS="$TOKENS" ZENO_MACHINE_USER_TOKEN= ZENO_MACHINE_USER_TOKENS_FILE= API_BASE_URL= \
    timeout 150 "$BIN" --master-host 127.0.0.1 --master-port "$MASTER_PORT" >"$WORK/worker$i.log" 2>&1 &
  pids+=($!)
done

echo "browser-test: waiting for the web UI on 127.0.0.1:$WEB_PORT"
for _ in $(seq 300); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$WEB_PORT/" 2>/dev/null && break
  kill -0 "$MASTER_PID" 2>/dev/null || die "master exited early"
  sleep 0.1
done
curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$WEB_PORT/" || die "web UI not up after 30 s"

echo "browser-test: Chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}'), playwright-core $(node -p 'require("./e2e/browser/node_modules/playwright-core/package.json").version')"
timeout 180 node e2e/browser/zeno-tab.js --url "http://127.0.0.1:$WEB_PORT" --out "$OUT" \
  --workers 2 --prefixes "$PREFIXES" --timeout-ms "$CHECK_TIMEOUT_MS" --chromium "$CHROMIUM"
echo "browser-test: screenshots in $OUT (zeno-tab.png, stats-table.png, workers-tab.png)"

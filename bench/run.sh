#!/usr/bin/env bash
# zenoload benchmarks (issue 6). Loopback only; every process runs under
# `timeout`. Prints progress on stderr and ONE table on stdout at the end.
#
#   bash bench/run.sh               # full run, ~9 min
#   bash bench/run.sh --smoke       # < 60 s: only checks the scripts work
#   bash bench/run.sh --only 1,4    # some sections
#
# Env: BENCH_OUT (output folder), ZENO_BIN (prebuilt zeno-worker),
#      BENCH_NO_PIN=1 (no taskset), BENCH_STRICT=1 (exit 1 on a missed target),
#      BENCH_S1_CANNED=1 (diagnostic: section 1 against a replayed answer),
#      BENCH_S4_USERS, BENCH_KINDS (narrow a run; see bench/common.sh).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
MODE=full
ONLY="1,2,3,4"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) MODE=smoke ;;
    --only) ONLY="$2"; shift ;;
    --only=*) ONLY="${1#--only=}" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/common.sh
source "$BENCH/common.sh"

T0=$(date +%s)
grep '^cpu[0-9]' /proc/stat >"$OUT/stat.before"
want 1 && section1
want 2 && section2
want 3 && section3
want 4 && section4
log "done in $(( $(date +%s) - T0 ))s; files in $OUT"

grep '^cpu[0-9]' /proc/stat >"$OUT/stat.after"
# Hypervisor steal per CPU over the whole run: on a shared VM this is the
# noise floor, and a reason a single pass can mislead.
STEAL=$(paste -d' ' "$OUT/stat.before" "$OUT/stat.after" | awk '{n=NF/2; t0=0; t1=0; for(i=2;i<=9;i++){t0+=$i; t1+=$(i+n)}; d=t1-t0; printf "%s%s %.1f%%", (NR>1?", ":""), $1, (d>0?100*($(9+n)-$9)/d:0)}' 2>/dev/null)
echo
echo "zenoload benchmarks ($MODE) -- $(date -Is) -- $NCPU CPUs, pinning: $PINNING; steal: ${STEAL:-n/a}$([ "${BENCH_S1_CANNED:-0}" = 1 ] && echo "; SECTION 1 TARGET: canned replay (BENCH_S1_CANNED=1), not fakezeno")"
"$PY" "$LIB" table "$RESULTS" --json "$OUT/table.json" | tee "$OUT/table.txt"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  log "some measurements are missing (BROKEN above)"
  exit 1
fi
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q 'MISSED' "$OUT/table.txt"; then
  exit 1
fi
exit 0

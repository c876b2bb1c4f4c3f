#!/usr/bin/env bash
# One-client rows on fresh AEGIS clusters before and after a 64-client burst, with and without
# extra raft settings, alternating. Per cluster: A (5 s, from an empty state), B (5 s, every key
# already written), the burst (BURST_S s, 64 clients), C and D (5 s each).
#   ROUNDS=8 CAND_CONFIG="  snapshot-logs-since-last: 10000000" before-after.sh
# prints one line per cluster; "cand" lines had CAND_CONFIG, "base" lines the defaults.
# CAND_PAUSE=N instead gives the "cand" clusters N s of idle between the burst and C.
set -uo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
B=$CARGO_TARGET_DIR/release/aegis-bench
row() {
  "$B" --endpoints "$E" --json put --clients 1 --conns 1 --duration 5 --total 1000000 |
    python3 -c "import json,sys;print(round(json.load(sys.stdin)['requests_per_sec']))"
}
one() {
  AEGIS_EXTRA_CONFIG=$2 scripts/aegis-cluster.sh up /tmp/aegis-bench/before-after >/dev/null
  E=$(scripts/aegis-cluster.sh endpoints); sleep 2
  local a b c d
  a=$(row); b=$(row)
  "$B" --endpoints "$E" put --clients 64 --conns 8 --duration "${BURST_S:-10}" >/dev/null
  sleep "$3"
  c=$(row); d=$(row)
  scripts/aegis-cluster.sh down /tmp/aegis-bench/before-after >/dev/null
  echo "$1 A $a B $b C $c D $d (C+D)/(A+B) $(awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN{printf "%.3f",(c+d)/(a+b)}')"
}
for i in $(seq 1 "${ROUNDS:-8}"); do
  if [[ -n ${CAND_CONFIG:-} || -n ${CAND_PAUSE:-} ]]; then
    one "cand $i" "${CAND_CONFIG:-}" "${CAND_PAUSE:-0}"
  fi
  one "base $i" "" 0
done

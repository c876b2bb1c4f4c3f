#!/usr/bin/env bash
# Failover rounds of two node builds, alternating: RUNS runs of 10 kill -9 rounds each per build,
# each run on a fresh cluster, the order swapped every run; timing from the environment
# (HEARTBEAT_MS, ELECTION_MS) as scripts/bench-compare.sh reads it.
#
#   BASE_BIN=/path/old/aegis-node CAND_BIN=/path/new/aegis-node RUNS=4 ab-failover.sh OUT
set -euo pipefail
OUT=$1 RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
mkdir -p "$OUT"
for k in $(seq 1 "$RUNS"); do
  order="base short-lease"; ((k % 2 == 0)) && order="short-lease base"
  for b in $order; do
    bin=$BASE_BIN; [[ $b == short-lease ]] && bin=$CAND_BIN
    AEGIS_NODE_BIN=$bin ONLY=aegis ROWS=20-failover "$ROOT/scripts/bench-compare.sh" "$OUT/$b-$k" >"$OUT/$b-$k.log" 2>&1
    grep -o '"write_median_ms":[0-9.]*' "$OUT/$b-$k/aegis/20-failover.json" | sed "s/^/$b-$k /"
  done
done

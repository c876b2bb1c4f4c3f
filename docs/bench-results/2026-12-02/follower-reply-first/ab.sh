#!/usr/bin/env bash
# usage: ab.sh OUT ROUNDS CLIENTS DURATION ; alternates env off/on, order alternating
set -uo pipefail
ROOT=/work/main; OUT=$1; N=$2; C=${3:-1}; D=${4:-10}
B=$HOME/.cache/aegis-target-exp/release
mkdir -p $OUT
export AEGIS_NODE_BIN=${BIN:-/tmp/bin/exp-y}
for i in $(seq 1 $N); do
  if (( i % 2 )); then order="off on"; else order="on off"; fi
  for m in $order; do
    if [[ $m == on ]]; then export ${VAR:-AEGIS_EXP_YIELD}=1; else unset ${VAR:-AEGIS_EXP_YIELD}; fi
    $ROOT/scripts/aegis-cluster.sh up $OUT/cluster >/dev/null
    EP=$($ROOT/scripts/aegis-cluster.sh endpoints)
    r=$($B/aegis-bench --endpoints $EP --json put --clients $C --conns $(( C < 64 ? 1 : 16 )) --duration $D --total 10000000 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["requests_per_sec"],1), round(d["p50_secs"]*1e6), round(d["p99_secs"]*1e6))' 2>&1)
    $ROOT/scripts/aegis-cluster.sh down $OUT/cluster >/dev/null
    echo "$i $m $r" | tee -a $OUT/ab.txt
  done
done

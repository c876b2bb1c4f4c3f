#!/bin/bash
# Alternating fresh-cluster rows, node A (OLD=dir with aegis-node) against node B (NEW=dir),
# order alternating between pairs; the load generator from NEW.
#   OLD=... NEW=... N=10 DUR=5 C=1 K=1 ab.sh OUT
source "$(dirname "$0")/../../2026-12-03/after-burst-2/common.sh"
OUT=$1; N=${N:-10}; DUR=${DUR:-5}; C=${C:-1}; K=${K:-1}
BIN=$NEW
for i in $(seq 1 $N); do
  for side in A B; do
    [[ $((i % 2)) == 0 ]] && side=$([[ $side == A ]] && echo B || echo A)
    if [[ $side == A ]]; then export AEGIS_NODE_BIN=$OLD/aegis-node; else export AEGIS_NODE_BIN=$NEW/aegis-node; fi
    cluster_up ${TMPDIR:-/tmp}/aegis-framed-ab
    "$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients $C --conns $K --duration 2 --total 10000000 >/dev/null 2>&1
    steal_mark
    r=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients $C --conns $K --duration $DUR --total 10000000 2>&1)
    st=$(steal_since)
    rps=$(echo "$r" | awk '/Requests\/sec/{print $2}'); p99=$(echo "$r" | awk '/99%/{print $3}' | head -1)
    echo "$i $side $rps p99=$p99 steal=$st c=$C" | tee -a "$OUT"
    "$ROOT/scripts/aegis-cluster.sh" down ${TMPDIR:-/tmp}/aegis-framed-ab >/dev/null 2>&1
  done
done

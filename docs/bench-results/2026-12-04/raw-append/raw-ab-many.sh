#!/bin/bash
# alternating fresh-cluster rows at C clients over K conns: gRPC AppendStream vs raw frames
source "$(dirname "$0")/../../2026-12-03/after-burst-2/common.sh"
OUT=$1; N=${N:-4}; DUR=${DUR:-5}; C=$2; K=$3
for i in $(seq 1 $N); do
  for mode in grpc raw; do
    [[ $((i % 2)) == 0 ]] && mode=$([[ $mode == grpc ]] && echo raw || echo grpc)
    if [[ $mode == raw ]]; then export AEGIS_RAW_APPEND=1; else unset AEGIS_RAW_APPEND; fi
    cluster_up ${TMPDIR:-/tmp}/aegis-raw-ab
    "$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients $C --conns $K --duration 2 --total 10000000 >/dev/null 2>&1
    steal_mark
    r=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients $C --conns $K --duration $DUR --total 10000000 2>&1)
    st=$(steal_since)
    rps=$(echo "$r" | awk '/Requests\/sec/{print $2}'); p99=$(echo "$r" | awk '/99%/{print $3}' | head -1)
    echo "$i $mode $rps p99=$p99 steal=$st c=$C" | tee -a $OUT
    "$ROOT/scripts/aegis-cluster.sh" down ${TMPDIR:-/tmp}/aegis-raw-ab >/dev/null 2>&1
  done
done

#!/bin/bash
# node CPU per put (task-clock of all five nodes) over a 5 s one-client row, grpc vs raw, alternating
source "$(dirname "$0")/../../2026-12-03/after-burst-2/common.sh"
OUT=$1; N=${N:-3}; CLIENTS=${CLIENTS:-1}; CONNS=${CONNS:-1}
for i in $(seq 1 $N); do
  for mode in grpc raw; do
    [[ $((i % 2)) == 0 ]] && mode=$([[ $mode == grpc ]] && echo raw || echo grpc)
    if [[ $mode == raw ]]; then export AEGIS_RAW_APPEND=1; else unset AEGIS_RAW_APPEND; fi
    cluster_up ${TMPDIR:-/tmp}/aegis-raw-ab
    pids=$(cat ${TMPDIR:-/tmp}/aegis-raw-ab/node-*/pid | paste -sd,)
    "$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients $CLIENTS --conns $CONNS --duration 2 --total 10000000 >/dev/null 2>&1
    perf stat -x, -e task-clock -p $pids -o ${TMPDIR:-/tmp}/aegis-raw-cpu.stat -- sleep 5 &
    sp=$!
    r=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients $CLIENTS --conns $CONNS --duration 5 --total 10000000 2>&1)
    wait $sp
    rps=$(echo "$r" | awk '/Requests\/sec/{print $2}')
    awk -F, -v r=$rps -v m=$mode -v i=$i '/task-clock/{printf "%s %s %.0f put/s node_cpu_us/put=%.1f\n", i, m, r, $1*1000/(r*5)}' ${TMPDIR:-/tmp}/aegis-raw-cpu.stat | tee -a $OUT
    "$ROOT/scripts/aegis-cluster.sh" down ${TMPDIR:-/tmp}/aegis-raw-ab >/dev/null 2>&1
  done
done

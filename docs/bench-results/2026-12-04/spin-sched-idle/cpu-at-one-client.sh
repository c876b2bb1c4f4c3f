#!/bin/bash
# CPU accounting during an 8 s one-client put row (node as built, BIN= a directory with
# aegis-node and aegis-bench): /proc/stat before and after (user nice system idle iowait irq
# softirq steal, in ticks of 10 ms), each node's utime+stime, and the load generator's.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../2026-12-03/after-burst-2/common.sh"
CLUSTER=${CLUSTER_DIR:-/tmp/aegis-cpu-cluster}
cluster_up $CLUSTER
pids=$(cat ${CLUSTER_DIR:-/tmp/aegis-cpu-cluster}/node-*/pid | tr '\n' ' ')
snap() { awk '/^cpu /{print $2,$3,$4,$5,$6,$7,$8,$9}' /proc/stat; for p in $pids; do awk '{print $14+$15}' /proc/$p/stat; done | tr '\n' ' '; echo; }
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 3 >/dev/null 2>&1
a=$(snap); t0=$(date +%s%N)
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 8 --total 10000000 > row.txt 2>&1 &
bp=$!; sleep 0.2; bt0=$(awk '{print $14+$15}' /proc/$bp/stat)
sleep 7.5; bt1=$(awk '{print $14+$15}' /proc/$bp/stat); wait $bp
b=$(snap); t1=$(date +%s%N)
echo "A $a"; echo "B $b"; echo "bench ticks $bt0 $bt1"; grep -E 'Requests/sec|Total' row.txt
"$ROOT/scripts/aegis-cluster.sh" down $CLUSTER >/dev/null 2>&1

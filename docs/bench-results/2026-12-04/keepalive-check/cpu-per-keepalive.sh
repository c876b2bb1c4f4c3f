#!/bin/bash
# Node CPU (task-clock of all five nodes) per keep-alive over an 8 s 64-client keep-alive row.
#   BIN=dir-with-aegis-bench NODE=path-to-aegis-node cpu-per-keepalive.sh LABEL
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../2026-12-03/after-burst-2/common.sh"
export AEGIS_NODE_BIN=$NODE
cluster_up ${CLUSTER_DIR:-/tmp/aegis-ka-cluster}
pids=$(cat ${CLUSTER_DIR:-/tmp/aegis-ka-cluster}/node-*/pid | paste -sd,)
"$BIN/aegis-bench" --target aegis --endpoints "$eps" keepalive --clients 64 --conns 8 --duration 2 >/dev/null 2>&1
perf stat -x, -e task-clock -p $pids -o ${TMPDIR:-/tmp}/kp-$1.stat -- sleep 8 &
sp=$!
out=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" keepalive --clients 64 --conns 8 --duration 8 2>&1)
wait $sp
n=$(echo "$out" | awk '/Requests\/sec/{print $2*8}')
awk -F, -v n=$n -v l=$1 '/task-clock/{c=$1} END{printf "%s keepalives=%d cpu_us/ka=%.2f\n", l, n, c*1000/n}' ${TMPDIR:-/tmp}/kp-$1.stat
"$ROOT/scripts/aegis-cluster.sh" down ${CLUSTER_DIR:-/tmp/aegis-ka-cluster} >/dev/null 2>&1

#!/bin/bash
# frac.sh BIN_DIR: fdatasync on the worker vs the flusher, a member and the leader, 1-client put
cd /work/main
export AEGIS_NODE_BIN=$1/aegis-node
scripts/aegis-cluster.sh up /tmp/s35/c >/dev/null 2>&1
export BENCH_ENDPOINTS=$(scripts/aegis-cluster.sh endpoints)
L=$($1/aegis-bench wait-leader 2>/dev/null)
$1/aegis-bench put --duration 9 --clients 1 > /tmp/s35/frac-put.txt 2>&1 & sleep 3
for i in 1 2 3 4 5; do perf stat --per-thread -e syscalls:sys_enter_fdatasync -p $(cat /tmp/s35/c/node-$i/pid) -x, -o /tmp/s35/fr-$i.txt sleep 4 & done; wait
echo "leader $L $(grep Requests/sec /tmp/s35/frac-put.txt)"
for i in 1 2 3 4 5; do echo "node $i: $(grep -v '^#' /tmp/s35/fr-$i.txt | awk -F, '$2>0 {printf "%s=%s ", $1, $2}')"; done
scripts/aegis-cluster.sh down /tmp/s35/c >/dev/null 2>&1

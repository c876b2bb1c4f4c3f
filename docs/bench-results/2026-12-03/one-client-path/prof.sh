#!/usr/bin/env bash
# one-client load on a fresh cluster; perf-record the busiest node (the leader) and one member
set -u
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd); BIN=${BIN:-$HOME/.cache/aegis-target-new/release}; OUT=$1
export AEGIS_NODE_BIN=$BIN/aegis-node
D=/tmp/aegis-bench/prof
$ROOT/scripts/aegis-cluster.sh up $D >/dev/null 2>&1
eps=$($ROOT/scripts/aegis-cluster.sh endpoints); sleep 2
$BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 30 --total 10000000 > $OUT.bench 2>&1 &
B=$!
sleep 4
declare -A t0; for i in 1 2 3 4 5; do p=$(cat $D/node-$i/pid); t0[$i]=$(awk '{print $14+$15}' /proc/$p/stat); done
sleep 2
best=0; bp=0; second=0; sp=0
for i in 1 2 3 4 5; do p=$(cat $D/node-$i/pid); t=$(( $(awk '{print $14+$15}' /proc/$p/stat) - t0[$i] )); echo "node $i pid $p ticks $t"
  if [ $t -gt $best ]; then second=$best; sp=$bp; best=$t; bp=$p; elif [ $t -gt $second ]; then second=$t; sp=$p; fi; done
echo "leader $bp member $sp"
perf record -F 2999 -g -p $bp -o $OUT.leader.data -- sleep 10 2>/dev/null &
perf record -F 2999 -g -p $sp -o $OUT.member.data -- sleep 10 2>/dev/null &
wait %2 %3 2>/dev/null; wait $B
tail -20 $OUT.bench | grep -E 'Requests/sec|99%'
$ROOT/scripts/aegis-cluster.sh down $D >/dev/null 2>&1

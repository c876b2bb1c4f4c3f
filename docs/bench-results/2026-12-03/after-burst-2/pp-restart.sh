#!/usr/bin/env bash
# fresh cluster; 3 one-client rows, 10 s 64-client burst, 2 rows, restart WHICH nodes on the same data, 3 rows
# WHICH: all | none
. "$(dirname "$0")/common.sh"
WHICH=$1; OUT=$2
cluster_up /tmp/aegis-bench/ppr
for k in 1 2 3; do row "$WHICH" pre$k "$OUT"; done
$BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration 10 >/dev/null 2>&1
for k in 1 2; do row "$WHICH" post$k "$OUT"; done
if [ "$WHICH" = all ]; then
  for i in 1 2 3 4 5; do kill -9 $(cat $D/node-$i/pid); done
  for i in 1 2 3 4 5; do while kill -0 $(cat $D/node-$i/pid) 2>/dev/null; do sleep 0.05; done; done
  for i in 1 2 3 4 5; do d=$D/node-$i; setsid sh -c "exec $(cat $d/cmd)" >>$d/node.log 2>&1 </dev/null & echo $! > $d/pid; done
fi
for _ in $(seq 1 150); do
  for i in 1 2 3 4 5; do curl -sf "http://127.0.0.1:$((32490 + i))/metrics" 2>/dev/null | grep -q '^aegis_raft_is_leader 1' && break 2; done; sleep 0.2; done
sleep 3
for k in 1 2 3; do row "$WHICH" after$k "$OUT"; done
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1

#!/usr/bin/env bash
# A fresh cluster with no automatic snapshot, the pairs' 10 s 64-client warm-up, then `aegisctl
# snapshot` on each node in turn: its wall time and the node's CPU time over the call.
. "$(dirname "$0")/../after-burst-2/common.sh"
export AEGIS_EXTRA_CONFIG="  snapshot-logs-since-last: 10000000"
cluster_up /tmp/aegis-bench/snapcost
burst64
sleep 1
n=0
for ep in ${eps//,/ }; do
  n=$((n+1)); p=$(cat $D/node-$n/pid)
  c0=$(awk '{print $14+$15}' /proc/$p/stat); t0=$(date +%s%N)
  "$BIN/aegisctl" --endpoints "$ep" snapshot
  t1=$(date +%s%N); c1=$(awk '{print $14+$15}' /proc/$p/stat)
  echo "node $n wall $(( (t1-t0)/1000000 )) ms cpu $(( (c1-c0)*10 )) ms size $(stat -c %s $D/node-$n/data/snapshot/snapshot.bin)"
done
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1

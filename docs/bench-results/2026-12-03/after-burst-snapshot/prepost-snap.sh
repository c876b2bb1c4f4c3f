#!/usr/bin/env bash
# The load-burst experiment of ../after-burst-2/prepost3.sh, with the snapshot threshold as
# given (`raft.snapshot-logs-since-last`, default 100000; the 10 s 64-client burst writes about
# that many entries, so whether a snapshot falls in it depends on the threshold): three 5 s
# one-client rows, the burst, four rows. After the rows before and after it: each node's thread
# count and whether it holds a snapshot.
#   prepost-snap.sh THRESHOLD OUT
. "$(dirname "$0")/../after-burst-2/common.sh"
TH=$1; OUT=$2
export AEGIS_EXTRA_CONFIG="  snapshot-logs-since-last: $TH"
state() {
  local s=""
  for i in 1 2 3 4 5; do
    local p; p=$(cat "$D/node-$i/pid")
    local snap=n; [ -s "$D/node-$i/data/snapshot/snapshot.bin" ] && snap=y
    s="$s n$i:threads=$(ls "/proc/$p/task" | wc -l),snap=$snap"
  done
  echo "th$TH $1$s" | tee -a "$OUT"
}
cluster_up /tmp/aegis-bench/ppsnap
for k in 1 2 3; do row "th$TH" pre$k "$OUT"; done
state before
burst64
for k in 1 2 3 4; do row "th$TH" post$k "$OUT"; done
state after
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1

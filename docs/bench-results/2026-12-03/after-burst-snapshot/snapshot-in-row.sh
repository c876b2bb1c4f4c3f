#!/usr/bin/env bash
# What one snapshot costs a one-client writer: a fresh cluster with no automatic snapshot,
# the pairs' 10 s 64-client warm-up (so the state is the warm pairs' ~8 MB), then 2 s
# one-client rows back to back; in every other row `aegisctl snapshot` asks one node (in turn
# 1..5) for a snapshot 0.5 s in. Prints each row's put/s, whether it had a snapshot, and
# which node was the leader.
#   snapshot-in-row.sh ROWS OUT
. "$(dirname "$0")/../after-burst-2/common.sh"
ROWS=$1; OUT=$2
export AEGIS_EXTRA_CONFIG="  snapshot-logs-since-last: 10000000"
cluster_up /tmp/aegis-bench/snaprow
leader=$(for n in 1 2 3 4 5; do curl -s "127.0.0.1:$((32490 + n))/metrics" | grep -q '^aegis_raft_is_leader 1' && echo "$n"; done)
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 1 >/dev/null 2>&1
burst64
eparr=(${eps//,/ })
k=0
for r in $(seq 1 "$ROWS"); do
  snap=-
  if ((r % 2 == 0)); then
    node=$((k % 5 + 1)); k=$((k + 1)); snap=$node
    (sleep 0.5; "$BIN/aegisctl" --endpoints "${eparr[$((node - 1))]}" snapshot >/dev/null) &
  fi
  v=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 2 --total 10000000 2>&1 | awk '/Requests\/sec/{print $2}')
  wait
  echo "row $r put/s $v snapshot_on $snap leader $leader" | tee -a "$OUT"
done
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1

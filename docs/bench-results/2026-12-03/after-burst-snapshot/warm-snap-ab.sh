#!/usr/bin/env bash
# AEGIS's side of a warm one-client pair (a fresh cluster, 10 s of 64-client puts as the pairs'
# warm-up, then one 10 s one-client row, as scripts/bench-compare.sh runs it) under variants
# taken in turn, the order rotating every round:
#   default  raft.snapshot-logs-since-last at its default (100,000 + 0-20 % by node id): the
#            warm-up's ~100,000 entries put every node's first snapshot in or just before the row
#   none     10,000,000: no snapshot
#   before   10,000,000, and after the warm-up `aegisctl snapshot` on each node in turn (it
#            returns once that node has built it), then 2 s idle: every snapshot done before the row
#   VARIANTS="default none" warm-snap-ab.sh ROUNDS OUT
. "$(dirname "$0")/../after-burst-2/common.sh"
ROUNDS=$1; OUT=$2
read -r -a VARS <<< "${VARIANTS:-default none}"
one() {
  local variant=$1 round=$2 th=10000000 r st snaps=0 n
  [ "$variant" = default ] && th=100000
  export AEGIS_EXTRA_CONFIG="  snapshot-logs-since-last: $th"
  cluster_up /tmp/aegis-bench/warmsnap
  burst64
  if [ "$variant" = before ]; then
    for ep in ${eps//,/ }; do "$BIN/aegisctl" --endpoints "$ep" snapshot >/dev/null; done
    sleep 2
  fi
  steal_mark
  r=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 10 --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} /99% in/{p99=$3} END{print rps, p99}')
  st=$(steal_since)
  for n in 1 2 3 4 5; do [ -s "$D/node-$n/data/snapshot/snapshot.bin" ] && snaps=$((snaps + 1)); done
  echo "round $round $variant $r steal=$st snapshots=$snaps" | tee -a "$OUT"
  "$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1
}
for round in $(seq 1 "$ROUNDS"); do
  k=${#VARS[@]}
  for j in $(seq 0 $((k - 1))); do one "${VARS[$(((j + round) % k))]}" "$round"; done
done

#!/bin/bash
# In place on one cluster (node as built; BIN= a directory with aegis-node and aegis-bench,
# default the release build): one-client rows with no busy loop beside them (off), a SCHED_IDLE
# busy loop pinned to vCPU 0 (one) or one pinned to each vCPU (both), order rotating.
#   burn.sh ROUNDS SECONDS OUT
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HOME/.cache/aegis-target-new/release}
source "$here/../../2026-12-03/after-burst-2/common.sh"
C=${CLUSTER_DIR:-/tmp/aegis-burn-cluster}
cluster_up $C
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 3 >/dev/null 2>&1
burners=()
start_burn() { for c in "$@"; do chrt -i 0 taskset -c $c bash -c 'while :; do :; done' & burners+=($!); done; }
stop_burn() { for p in "${burners[@]}"; do kill $p 2>/dev/null; done; wait "${burners[@]}" 2>/dev/null; burners=(); }
for r in $(seq 1 $1); do
  if ((r % 2)); then order="off both one"; else order="one both off"; fi
  for v in $order; do
    case $v in both) start_burn 0 1;; one) start_burn 0;; esac
    sleep 0.3
    steal_mark
    out=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration $2 --total 10000000 2>&1)
    st=$(steal_since)
    stop_burn
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}'); p99=$(echo "$out" | awk '/99% in/{print $3}')
    echo "$r $v $rps p99=$p99 steal=$st" | tee -a $3
  done
done
"$ROOT/scripts/aegis-cluster.sh" down $C >/dev/null 2>&1

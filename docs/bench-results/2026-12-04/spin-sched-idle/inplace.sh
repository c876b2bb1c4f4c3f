#!/bin/bash
# In place on one cluster: one-client rows alternating with the toggle file FLAG absent (A, as
# built) or present (B, the experiment on), order alternating. FLAG=/tmp/aegis-spin-idle for
# spin-sched-idle.patch (the default), /tmp/aegis-awake for awake-during-sync.patch.
#   inplace.sh PAIRS SECONDS OUT
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:?the experiment build (spin-sched-idle.patch or awake-during-sync.patch applied): a directory with aegis-node and aegis-bench}
source "$here/../../2026-12-03/after-burst-2/common.sh"
rm -f ${FLAG:-/tmp/aegis-spin-idle}
cluster_up ${CLUSTER_DIR:-/tmp/aegis-inplace-cluster}
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 3 >/dev/null 2>&1
for r in $(seq 1 $1); do
  if ((r % 2)); then order="A B"; else order="B A"; fi
  for v in $order; do
    if [ $v = B ]; then touch ${FLAG:-/tmp/aegis-spin-idle}; else rm -f ${FLAG:-/tmp/aegis-spin-idle}; fi
    sleep 0.3
    steal_mark
    out=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration $2 --total 10000000 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}'); p99=$(echo "$out" | awk '/99% in/{print $3}')
    echo "$r $v $rps p99=$p99 steal=$(steal_since)" | tee -a $3
  done
done
rm -f ${FLAG:-/tmp/aegis-spin-idle}
"$ROOT/scripts/aegis-cluster.sh" down ${CLUSTER_DIR:-/tmp/aegis-inplace-cluster} >/dev/null 2>&1

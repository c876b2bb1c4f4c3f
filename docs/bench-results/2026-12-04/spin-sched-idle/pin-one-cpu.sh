#!/bin/bash
# One-client rows on one cluster (node as built, BIN= a directory with aegis-node and
# aegis-bench) with every node and the load generator allowed on both vCPUs (0-1), on vCPU 1
# only (where the disk interrupt is served) or on vCPU 0 only, three rounds.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../2026-12-03/after-burst-2/common.sh"
cluster_up ${CLUSTER_DIR:-/tmp/aegis-pin-cluster}
pids=$(cat ${CLUSTER_DIR:-/tmp/aegis-pin-cluster}/node-*/pid)
setall() { for p in $pids; do taskset -a -p -c $1 $p >/dev/null; done; }
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 3 >/dev/null 2>&1
for r in 1 2 3; do
 for m in 0-1 1 0; do
  setall $m
  steal_mark
  x=$(taskset -c $m "$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 4 --total 10000000 2>&1 | awk '/Requests\/sec/{print $2}')
  echo "cpus=$m $x steal=$(steal_since)"
 done
done
"$ROOT/scripts/aegis-cluster.sh" down ${CLUSTER_DIR:-/tmp/aegis-pin-cluster} >/dev/null 2>&1

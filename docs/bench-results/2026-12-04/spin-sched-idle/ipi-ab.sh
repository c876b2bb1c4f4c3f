#!/bin/bash
# Interrupts and context switches per put, in place on one cluster: the spin as built (A) and
# the spinning worker at SCHED_IDLE (B, /tmp/aegis-spin-idle present), four 4 s one-client rows;
# then each node thread's scheduling policy (field 41 of its stat: 0 is SCHED_OTHER).
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:?the experiment build (spin-sched-idle.patch applied): a directory with aegis-node and aegis-bench}
source "$here/../../2026-12-03/after-burst-2/common.sh"
rm -f /tmp/aegis-spin-idle
cluster_up ${CLUSTER_DIR:-/tmp/aegis-spin-idle-cluster}
irq() { awk '/^ *(RES|CAL):/{printf "%s ", $2+$3}' /proc/interrupts; }
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 2 >/dev/null 2>&1
for v in A B A B; do
  if [ $v = B ]; then touch /tmp/aegis-spin-idle; else rm -f /tmp/aegis-spin-idle; fi; sleep 0.3
  a=($(irq)); t=$(date +%s%N); cs0=$(awk '/^ctxt/{print $2}' /proc/stat)
  rps=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 4 --total 10000000 2>&1 | awk '/Requests\/sec/{print $2}')
  b=($(irq)); cs1=$(awk '/^ctxt/{print $2}' /proc/stat)
  n=$(echo "$rps*4" | bc)
  echo "$v $rps RES/put $(echo "scale=2;(${b[0]}-${a[0]})/$n" | bc) CAL/put $(echo "scale=2;(${b[1]}-${a[1]})/$n" | bc) cs/put $(echo "scale=1;($cs1-$cs0)/$n" | bc)"
done
L=$(for p in ${CLUSTER_DIR:-/tmp/aegis-spin-idle-cluster}/node-*/pid; do cat $p; done)
for p in $L; do for t in /proc/$p/task/*; do echo "$p $(cat $t/comm) $(awk '{print $41}' $t/stat)"; done; done | sort | uniq -c | head -20
rm -f /tmp/aegis-spin-idle
"$ROOT/scripts/aegis-cluster.sh" down ${CLUSTER_DIR:-/tmp/aegis-spin-idle-cluster} >/dev/null 2>&1

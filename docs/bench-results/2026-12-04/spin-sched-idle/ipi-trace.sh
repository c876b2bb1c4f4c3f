#!/bin/bash
# Which threads send inter-processor interrupts during a one-client put row (node as built,
# BIN= a directory with aegis-node and aegis-bench): perf on the ipi tracepoints for 3 s.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../2026-12-03/after-burst-2/common.sh"
cluster_up ${CLUSTER_DIR:-/tmp/aegis-ipi-cluster}
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 3 >/dev/null 2>&1
"$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 8 --total 10000000 2>&1 | grep Requests/sec &
sleep 2
perf record -q -e ipi:ipi_send_cpu -e ipi:ipi_send_cpumask -a -o ipi.data -- sleep 3 2>/dev/null
wait
"$ROOT/scripts/aegis-cluster.sh" down ${CLUSTER_DIR:-/tmp/aegis-ipi-cluster} >/dev/null 2>&1
perf script -i ipi.data -F comm,cpu,event,trace 2>/dev/null | sed -E 's/callsite=([a-z_0-9]+)\+0x[0-9a-f\/]+/callsite=\1/' | awk '{$1=$1; print}' | sed -E 's/ +/ /g' | awk '{c=$0; sub(/^[^ ]+ /,"",c); print}' | sort | uniq -c | sort -rn | head -30

#!/usr/bin/env bash
# Alternating fresh local clusters, jemalloc's defaults against the configuration in $1
# (`_RJEM_MALLOC_CONF`, read by each node at start): N pairs, two 5 s one-client rows per
# cluster, then every node's RSS.
#   ab-env.sh CONF N OUT
. "$(dirname "$0")/../after-burst-2/common.sh"
A_CONF=$1; N=$2; OUT=$3
for i in $(seq 1 "$N"); do
  for v in def alt; do
    if [ "$v" = alt ]; then export _RJEM_MALLOC_CONF=$A_CONF; else unset _RJEM_MALLOC_CONF; fi
    cluster_up /tmp/aegis-bench/abenv
    row "$v" "p$i-a" "$OUT"; row "$v" "p$i-b" "$OUT"
    rss=$(for p in $(pgrep -f aegis-node); do awk '/VmRSS/{print $2}' "/proc/$p/status"; done | sort -n | tr '\n' ' ')
    echo "$v p$i rss_kib $rss" >> "$OUT"
    "$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1
  done
done

#!/usr/bin/env bash
# RSS per node after load, two node builds alternating on fresh clusters: 10 s of 64-client
# puts, 10 s of 1,000 clients over 100 connections (the full run's put rows), 2 s idle, then
# each node's VmRSS.
#   rss-ab.sh BIN_A BIN_B ROUNDS OUT
A=$1; B=$2; ROUNDS=$3; OUT=$4
. "$(dirname "$0")/../../2026-12-03/after-burst-2/common.sh"
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="A B"; else order="B A"; fi
  for v in $order; do
    [ "$v" = A ] && BIN=$A || BIN=$B
    export AEGIS_NODE_BIN=$BIN/aegis-node
    cluster_up /tmp/aegis-bench/rssab
    burst64
    "$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1000 --conns 100 --duration 10 >/dev/null 2>&1
    sleep 2
    rss=$(for n in 1 2 3 4 5; do awk '/VmRSS/{printf "%.1f ", $2/1024}' /proc/$(cat $D/node-$n/pid)/status; done)
    echo "$v round $round RSS MiB $rss" | tee -a "$OUT"
    "$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1
  done
done

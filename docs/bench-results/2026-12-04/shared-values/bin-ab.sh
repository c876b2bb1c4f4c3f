#!/usr/bin/env bash
# Two node builds, A and B, on the AEGIS side of a warm one-client pair with the snapshot
# threshold at its default (../../2026-12-03/after-burst-snapshot/warm-snap-ab.sh, variant
# `default`): fresh cluster, 10 s of 64 clients, one 10 s one-client row. The order of A and B
# alternates every round.
#   bin-ab.sh BIN_A BIN_B ROUNDS OUT
set -u
here=$(cd "$(dirname "$0")" && pwd)
A=$1; B=$2; ROUNDS=$3; OUT=$4
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="A B"; else order="B A"; fi
  for v in $order; do
    [ "$v" = A ] && bin=$A || bin=$B
    echo -n "$v " >> "$OUT"
    BIN=$bin VARIANTS=default bash "$here/../../2026-12-03/after-burst-snapshot/warm-snap-ab.sh" 1 "$OUT" | sed "s/^/$v /"
  done
done

#!/usr/bin/env bash
# The after-burst experiment (../after-burst-2/prepost3.sh load) for three jemalloc
# configurations in turn, two rounds; AnonHugePages sampled every 3 s beside each cluster.
#   prepost-conf.sh OUT_DIR
OUT=$1; mkdir -p "$OUT"
P=$(dirname "$0")/../after-burst-2/prepost3.sh
for round in 1 2; do
  for conf in default thp decayneg; do
    case $conf in
      default) unset _RJEM_MALLOC_CONF ;;
      thp) export _RJEM_MALLOC_CONF=thp:always,metadata_thp:always ;;
      decayneg) export _RJEM_MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 ;;
    esac
    echo "== $conf round $round" >> "$OUT/prepost.txt"
    ( while sleep 3; do grep AnonHuge /proc/meminfo; done ) > "$OUT/anon-$conf-$round.txt" &
    w=$!
    bash "$P" load "$OUT/prepost.txt"
    kill $w
  done
done

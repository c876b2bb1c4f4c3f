#!/usr/bin/env bash
# N fresh AEGIS clusters: 10 s of 64-client warm-up, then 10 s of 1,000-client puts; per row
# each node's CPU, metrics deltas, and the bench's CPU. With ALT set, every other cluster's nodes
# start with _RJEM_MALLOC_CONF=$ALT (variant "alt"); without it every row is "def".
#   [ALT=...] [N=8] ab.sh OUT
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
OUT=${1:?}
N=${N:-8}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
BENCH=$CARGO_TARGET_DIR/release/aegis-bench
CL=${CL:-/tmp/aegis-bench/spread}
mkdir -p "$OUT"
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
scrape() { # dir tag
  for i in 1 2 3 4 5; do
    pid=$(cat $CL/node-$i/pid)
    echo "cpu $(cpu $pid)" > "$1/n$i.$2"
    curl -sf "http://127.0.0.1:$((32490 + i))/metrics" >> "$1/n$i.$2" || true
  done
}
for r in $(seq 1 "$N"); do
  d=$OUT/$r; mkdir -p "$d"
  # pairs alternate which variant goes first: rows 1,2 = def,alt; 3,4 = alt,def; ...
  if [[ -z ${ALT:-} ]] || (( ( (r - 1) / 2 + r ) % 2 == 1 )); then
    v=def; unset _RJEM_MALLOC_CONF
  else
    v=alt; export _RJEM_MALLOC_CONF=$ALT
  fi
  echo $v > "$d/variant"
  "$ROOT/scripts/aegis-cluster.sh" up "$CL" > "$d/up.txt"
  EPS=$("$ROOT/scripts/aegis-cluster.sh" endpoints "$CL")
  "$BENCH" --endpoints "$EPS" put --clients 64 --conns 8 --duration 10 > /dev/null
  scrape "$d" before
  grep -h '^cpu ' /proc/stat > "$d/stat.before"
  /usr/bin/time -f "bench_cpu %U %S" -o "$d/bench.time" "$BENCH" --endpoints "$EPS" --out "$d/put.json" put --clients 1000 --conns 100 --duration 10 --total 10000000 > "$d/put.txt"
  grep -h '^cpu ' /proc/stat > "$d/stat.after"
  scrape "$d" after
  grep AnonHuge /proc/meminfo > "$d/anonhuge"
  for i in 1 2 3 4 5; do awk '/VmRSS/{print $2}' /proc/$(cat $CL/node-$i/pid)/status; done | tr '\n' ' ' > "$d/rss"
  "$ROOT/scripts/aegis-cluster.sh" down "$CL" > /dev/null
  echo "row $r $v: $(grep -m1 -i 'requests/sec\|Requests/sec' "$d/put.txt")"
done

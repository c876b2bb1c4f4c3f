#!/usr/bin/env bash
# Node CPU per put at 1,000 clients, two node builds on alternating fresh clusters (the order
# flips every pair): 10 s of 64-client warm-up, then a 10 s 1,000-client put row; each node's
# CPU time (/proc/PID/stat) around the row, divided by the puts the row made.
#   BASE_BIN=... CAND_BIN=... [N=8] cpu-ab.sh > OUT.txt
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
BENCH=$CARGO_TARGET_DIR/release/aegis-bench
CL=/tmp/aegis-bench/cpu-ab
TICK=$(getconf CLK_TCK)
cpu() { for i in 1 2 3 4 5; do awk '{print $14+$15}' "/proc/$(cat $CL/node-$i/pid)/stat"; done; }
echo "row variant put/s leader_node ldr_us/put fol_us/put(4 together) bench_us/put"
for r in $(seq 1 "${N:-8}"); do
  if (( ( (r - 1) / 2 + r ) % 2 == 1 )); then v=base bin=$BASE_BIN; else v=cand bin=$CAND_BIN; fi
  AEGIS_NODE_BIN=$bin "$ROOT/scripts/aegis-cluster.sh" up "$CL" > /tmp/cpu-ab-up.txt
  EPS=$("$ROOT/scripts/aegis-cluster.sh" endpoints "$CL")
  L=$(grep -o 'leader node [0-9]' /tmp/cpu-ab-up.txt | awk '{print $3}')
  "$BENCH" --endpoints "$EPS" put --clients 64 --conns 8 --duration 10 > /dev/null
  mapfile -t before < <(cpu)
  /usr/bin/time -f "%U %S" -o /tmp/cpu-ab-time "$BENCH" --endpoints "$EPS" --json put --clients 1000 --conns 100 \
    --duration 10 --total 10000000 > /tmp/cpu-ab-put.json
  mapfile -t after < <(cpu)
  "$ROOT/scripts/aegis-cluster.sh" down "$CL" > /dev/null
  puts=$(python3 -c "import json;print(json.load(open('/tmp/cpu-ab-put.json'))['requests'])")
  rps=$(python3 -c "import json;print(round(json.load(open('/tmp/cpu-ab-put.json'))['requests_per_sec']))")
  ldr=0 fol=0
  for i in 1 2 3 4 5; do
    d=$(( after[i-1] - before[i-1] ))
    if [[ $i == "$L" ]]; then ldr=$d; else fol=$(( fol + d )); fi
  done
  read -r u s < /tmp/cpu-ab-time
  awk -v r="$r" -v v="$v" -v rps="$rps" -v L="$L" -v ldr="$ldr" -v fol="$fol" -v p="$puts" -v t="$TICK" -v u="$u" -v s="$s" \
    'BEGIN{printf "%d %s %d %d %.1f %.1f %.1f\n", r, v, rps, L, ldr/t/p*1e6, fol/t/p*1e6, (u+s)/p*1e6}'
done

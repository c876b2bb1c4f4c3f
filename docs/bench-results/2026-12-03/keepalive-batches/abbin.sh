#!/usr/bin/env bash
# usage: abbin.sh ROUNDS ARGS... ; A_BIN / B_BIN node binaries, OUT
set -u
ROUNDS=$1; shift; ARGS=("$@")
ROOT=/work/main
BENCH=${BENCH:-$HOME/.cache/aegis-target-new/release/aegis-bench}
OUT=${OUT:-/tmp/ab/outbin.txt}
row() {
  local label=$1 bin=$2
  AEGIS_NODE_BIN=$bin $ROOT/scripts/aegis-cluster.sh up /tmp/aegis-bench/ab >/dev/null 2>&1
  local eps; eps=$($ROOT/scripts/aegis-cluster.sh endpoints)
  sleep 2
  [[ -n ${WARM:-} ]] && $BENCH --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration "$WARM" >/dev/null 2>&1
  local s0; s0=$(awk '/^cpu /{print $9}' /proc/stat); local t0; t0=$(date +%s%N)
  local r; r=$($BENCH --target aegis --endpoints "$eps" "${ARGS[@]}" --duration ${DUR:-8} --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} /99% in/{p99=$3} END{print rps, p99}')
  local st; st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$(($(date +%s%N) - t0))" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
  echo "round=$k $label $r steal=$st" | tee -a "$OUT"
  AEGIS_NODE_BIN=$bin $ROOT/scripts/aegis-cluster.sh down /tmp/aegis-bench/ab >/dev/null 2>&1
}
for k in $(seq 1 "$ROUNDS"); do
  if (( k % 2 )); then row A "$A_BIN"; row B "$B_BIN"; else row B "$B_BIN"; row A "$A_BIN"; fi
done

#!/usr/bin/env bash
# usage: ab3.sh ROUNDS ARGS... ; ARMS="0 200 400" (AEGIS_LEADER_SPIN_US values), OUT, BIN dir
set -u
ROUNDS=$1; shift; ARGS=("$@")
ROOT=/work/main
BIN=${BIN:-$HOME/.cache/aegis-target-new/release}
export AEGIS_NODE_BIN=$BIN/aegis-node
OUT=${OUT:-/tmp/ab/out3.txt}
read -r -a ARMS <<< "${ARMS:-0 200 400}"
row() {
  local us=$1
  AEGIS_LEADER_SPIN_AFTER_US=$us $ROOT/scripts/aegis-cluster.sh up /tmp/aegis-bench/ab >/dev/null 2>&1
  local eps; eps=$($ROOT/scripts/aegis-cluster.sh endpoints)
  sleep 2
  [[ -n ${WARM:-} ]] && $BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration "$WARM" >/dev/null 2>&1
  local s0; s0=$(awk '/^cpu /{print $9}' /proc/stat); local t0; t0=$(date +%s%N)
  local r; r=$($BIN/aegis-bench --target aegis --endpoints "$eps" "${ARGS[@]}" --duration ${DUR:-8} --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} /99% in/{p99=$3} END{print rps, p99}')
  local st; st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$(($(date +%s%N) - t0))" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
  echo "round=$k after=$us $r steal=$st" | tee -a "$OUT"
  $ROOT/scripts/aegis-cluster.sh down /tmp/aegis-bench/ab >/dev/null 2>&1
}
n=${#ARMS[@]}
for k in $(seq 1 "$ROUNDS"); do
  for j in $(seq 0 $((n-1))); do row "${ARMS[$(( (j + k) % n ))]}"; done
done

#!/usr/bin/env bash
# usage: inplace.sh ROUNDS ARGS... ; ARMS="0 300": values written to the after-file between rows of one cluster
set -u
ROUNDS=$1; shift; ARGS=("$@")
ROOT=/work/main
BIN=${BIN:-$HOME/.cache/aegis-target-exp/release}
export AEGIS_NODE_BIN=$BIN/aegis-node
export AEGIS_LEADER_SPIN_AFTER_FILE=/tmp/ab/after_us
OUT=${OUT:-/tmp/ab/inplace.txt}
read -r -a ARMS <<< "${ARMS:-0 300}"
echo 0 > $AEGIS_LEADER_SPIN_AFTER_FILE
$ROOT/scripts/aegis-cluster.sh up /tmp/aegis-bench/ab >/dev/null 2>&1
eps=$($ROOT/scripts/aegis-cluster.sh endpoints)
sleep 2
$BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration ${WARM:-5} >/dev/null 2>&1
n=${#ARMS[@]}
for k in $(seq 1 "$ROUNDS"); do
  for j in $(seq 0 $((n-1))); do
    us=${ARMS[$(( (j + k) % n ))]}
    echo $us > $AEGIS_LEADER_SPIN_AFTER_FILE; sleep 0.5
    s0=$(awk '/^cpu /{print $9}' /proc/stat); t0=$(date +%s%N)
    r=$($BIN/aegis-bench --target aegis --endpoints "$eps" "${ARGS[@]}" --duration ${DUR:-5} --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} /99% in/{p99=$3} END{print rps, p99}')
    st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$(($(date +%s%N) - t0))" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
    echo "round=$k after=$us $r steal=$st" | tee -a "$OUT"
  done
done
$ROOT/scripts/aegis-cluster.sh down /tmp/aegis-bench/ab >/dev/null 2>&1

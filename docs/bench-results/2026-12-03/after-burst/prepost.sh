#!/usr/bin/env bash
set -u
OUT=$1; ROOT=$(cd "$(dirname "$0")/../../../.." && pwd); BIN=${BIN:-$HOME/.cache/aegis-target-new/release}
export AEGIS_NODE_BIN=$BIN/aegis-node
D=/tmp/aegis-bench/prepost
$ROOT/scripts/aegis-cluster.sh up $D >/dev/null 2>&1
eps=$($ROOT/scripts/aegis-cluster.sh endpoints); sleep 2
cpu() { for i in 1 2 3 4 5; do p=$(cat $D/node-$i/pid); awk '{printf "%d ", $14+$15}' /proc/$p/stat; done; }
row() {
  c0=($(cpu))
  s0=$(awk '/^cpu /{print $9}' /proc/stat); t0=$(date +%s%N)
  r=$($BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration ${DUR:-5} --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} /99% in/{p99=$3} END{print rps, p99}')
  st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$(($(date +%s%N) - t0))" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
  c1=($(cpu)); cc=""; for i in 0 1 2 3 4; do cc="$cc $(( c1[i]-c0[i] ))"; done
  echo "$1 $r steal=$st cpu:$cc" | tee -a $OUT
}
for k in 1 2 3 4; do row pre$k; done
$BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration 10 >/dev/null 2>&1
for k in 1 2 3 4 5 6 7 8; do row post$k; done
$ROOT/scripts/aegis-cluster.sh down $D >/dev/null 2>&1

#!/usr/bin/env bash
# fresh cluster; three 5 s one-client rows, a 10 s "burst" of KIND, four rows more
# KIND: load (64-client puts), read (64-client linearizable gets), burn (two busy loops, no AEGIS
# work), idle (sleep), disk (five dd loops syncing 4 KiB writes, no AEGIS work), mem (300 MiB
# allocated, touched and freed in a loop: memory churn, no AEGIS work)
set -u
KIND=$1; OUT=$2; ROOT=$(cd "$(dirname "$0")/../../../.." && pwd); BIN=${BIN:-$HOME/.cache/aegis-target-new/release}
export AEGIS_NODE_BIN=$BIN/aegis-node
D=/tmp/aegis-bench/pp3
$ROOT/scripts/aegis-cluster.sh up $D >/dev/null 2>&1
eps=$($ROOT/scripts/aegis-cluster.sh endpoints); sleep 2
row() {
  s0=$(awk '/^cpu /{print $9}' /proc/stat); t0=$(date +%s%N)
  r=$($BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 5 --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} END{print rps}')
  st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$(($(date +%s%N) - t0))" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
  echo "$KIND $1 $r steal=$st" | tee -a $OUT
}
for k in 1 2 3; do row pre$k; done
case $KIND in
  load) $BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration 10 >/dev/null 2>&1 ;;
  burn) timeout 10 sh -c 'while :; do :; done' & timeout 10 sh -c 'while :; do :; done' & wait ;;
  idle) sleep 10 ;;
  mem) timeout 10 python3 -c "
while True:
    b = bytearray(300 * 2**20)
    for i in range(0, len(b), 4096): b[i] = 1
    del b
" ;;
  read) $BIN/aegis-bench --target aegis --endpoints "$eps" get --consistency l --clients 64 --conns 8 --duration 10 >/dev/null 2>&1 ;;
  disk) for n in 1 2 3 4 5; do timeout 10 sh -c "while :; do dd if=/dev/zero of=/var/tmp/burst$n bs=4k count=2000 oflag=dsync status=none; done" & done; wait; rm -f /var/tmp/burst? ;;
esac
for k in 1 2 3 4; do row post$k; done
$ROOT/scripts/aegis-cluster.sh down $D >/dev/null 2>&1

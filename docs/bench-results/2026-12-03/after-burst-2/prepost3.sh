#!/usr/bin/env bash
# fresh cluster; three 5 s one-client rows, a 10 s "burst" of KIND, four rows more
# KIND: load (64-client puts), read (64-client linearizable gets), burn (two busy loops, no AEGIS
# work), idle (sleep), disk (five dd loops syncing 4 KiB writes, no AEGIS work), mem (300 MiB
# allocated, touched and freed in a loop: memory churn, no AEGIS work)
. "$(dirname "$0")/common.sh"
KIND=$1; OUT=$2
cluster_up /tmp/aegis-bench/pp3
for k in 1 2 3; do row "$KIND" pre$k "$OUT"; done
case $KIND in
  load) burst64 ;;
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
for k in 1 2 3 4; do row "$KIND" post$k "$OUT"; done
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1

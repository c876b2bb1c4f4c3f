#!/usr/bin/env bash
# fresh cluster: one-client row with perf on leader+member, 64-client burst, the same again
. "$(dirname "$0")/common.sh"
OUT=$1
cluster_up /tmp/aegis-bench/pp
ticks() { for i in 1 2 3 4 5; do p=$(cat $D/node-$i/pid); echo "$p $(awk '{print $14+$15}' /proc/$p/stat)"; done; }
perf_row() { # $1 label
  $BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 9 --total 10000000 > $OUT.$1.bench 2>&1 &
  local B=$!; sleep 1
  local a; a=$(ticks); sleep 1; local b; b=$(ticks)
  read LP MP < <(paste <(echo "$a") <(echo "$b") | awk '{print $1, $4-$2}' | sort -k2 -n -r | awk 'NR==1{l=$1} NR==2{m=$1} END{print l, m}')
  echo "$1 leader $LP member $MP" >> $OUT.log
  perf record -F 1999 -g -p $LP -o $OUT.$1.leader.data -- sleep 6 >/dev/null 2>&1 &
  perf record -F 1999 -g -p $MP -o $OUT.$1.member.data -- sleep 6 >/dev/null 2>&1 &
  wait $B; wait
  grep -E 'Requests/sec' $OUT.$1.bench | sed "s/^/$1 /" >> $OUT.log
}
perf_row pre
$BIN/aegis-bench --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration 10 >/dev/null 2>&1
perf_row post
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1
cat $OUT.log

#!/usr/bin/env bash
# Is what a burst leaves in the node processes or in the kernel and on disk? Per fresh AEGIS
# cluster: A, B (5 s one-client rows), the burst (10 s, 64 clients), then either every node
# restarted on its own data (SIGTERM, the same command line) or as long a pause without it,
# then C, D. Alternating; prints (C + D) / (A + B) per cluster.
set -uo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
B=$CARGO_TARGET_DIR/release/aegis-bench
D=/tmp/aegis-bench/restart-after-burst
row() {
  "$B" --endpoints "$E" --json put --clients 1 --conns 1 --duration 5 --total 1000000 |
    python3 -c "import json,sys;print(round(json.load(sys.stdin)['requests_per_sec']))"
}
restart_all() {
  local n pid
  for n in "$D"/node-*; do
    pid=$(cat "$n/pid"); kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    setsid sh -c "exec $(cat "$n/cmd")" >>"$n/node.log" 2>&1 </dev/null &
    echo $! >"$n/pid"
  done
}
one() {
  scripts/aegis-cluster.sh up "$D" >/dev/null
  E=$(scripts/aegis-cluster.sh endpoints); sleep 2
  local a b c d t0
  a=$(row); b=$(row)
  "$B" --endpoints "$E" put --clients 64 --conns 8 --duration 10 >/dev/null
  t0=$(date +%s%N)
  if [[ $1 == restart ]]; then
    restart_all
    "$B" --endpoints "$E" wait-leader >/dev/null 2>&1 || sleep 3
  fi
  # both kinds resume 8 s after the burst
  sleep "$(awk -v t="$(( ($(date +%s%N) - t0) / 1000000 ))" 'BEGIN{w=8-t/1000; print (w>0?w:0)}')"
  c=$(row); d=$(row)
  scripts/aegis-cluster.sh down "$D" >/dev/null
  echo "$1 $2 A $a B $b C $c D $d (C+D)/(A+B) $(awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN{printf "%.3f",(c+d)/(a+b)}')"
}
for i in $(seq 1 "${ROUNDS:-8}"); do
  one restart "$i"
  one pause "$i"
done

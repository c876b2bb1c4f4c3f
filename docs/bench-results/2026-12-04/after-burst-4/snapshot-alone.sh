#!/usr/bin/env bash
# One-client rows on fresh AEGIS clusters before and after every node builds a snapshot
# (`aegisctl snapshot` on each), with no burst; alternating with clusters that build none.
# Per cluster: A, B (5 s each), the snapshots (or none), C, D. With FILE=1 a third kind of
# cluster alternates with them: an 8 MiB file written and fsynced in each node's data
# directory instead of a snapshot (what the disk and the page cache see of one, without the
# node doing anything).
set -uo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
B=$CARGO_TARGET_DIR/release/aegis-bench
CTL=$CARGO_TARGET_DIR/release/aegisctl
D=/tmp/aegis-bench/snapshot-alone
row() {
  "$B" --endpoints "$E" --json put --clients 1 --conns 1 --duration 5 --total 1000000 |
    python3 -c "import json,sys;print(round(json.load(sys.stdin)['requests_per_sec']))"
}
one() {
  scripts/aegis-cluster.sh up "$D" >/dev/null
  E=$(scripts/aegis-cluster.sh endpoints); sleep 2
  local a b c d ep
  a=$(row); b=$(row)
  if [[ $1 == snapshot ]]; then
    for ep in ${E//,/ }; do "$CTL" --endpoints "$ep" snapshot >/dev/null; done
  elif [[ $1 == file ]]; then
    for n in "$D"/node-*; do
      head -c 8388608 /dev/urandom >"$n/data/file" && sync -d "$n/data/file"
    done
  fi
  sleep 1
  c=$(row); d=$(row)
  scripts/aegis-cluster.sh down "$D" >/dev/null
  echo "$1 $2 A $a B $b C $c D $d (C+D)/(A+B) $(awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN{printf "%.3f",(c+d)/(a+b)}')"
}
for i in $(seq 1 "${ROUNDS:-8}"); do
  one snapshot "$i"
  [[ -n ${FILE:-} ]] && one file "$i"
  one none "$i"
done

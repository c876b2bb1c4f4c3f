#!/usr/bin/env bash
# In place on one cluster: burst (10 s, 64 clients) -> 1-client row "early" (4 s) -> idle -> 1-client row "late" (4 s); CYCLES times.
set -euo pipefail
cd /work/main
export CARGO_TARGET_DIR=$HOME/.cache/aegis-target-new
B=$CARGO_TARGET_DIR/release/aegis-bench
CYCLES=${CYCLES:-5}; IDLE=${IDLE:-20}; BURST=${BURST:-put}
scripts/aegis-cluster.sh up /tmp/aegis-bench/cyc >/dev/null
E=$(scripts/aegis-cluster.sh endpoints); sleep 2
r() { $B --endpoints $E --json put --clients 1 --conns 1 --duration 4 --total 1000000 | python3 -c "import json,sys;print(round(json.load(sys.stdin)['requests_per_sec']))"; }
for c in $(seq 1 $CYCLES); do
  case $BURST in
    put) $B --endpoints $E put --clients 64 --conns 8 --duration 10 > /dev/null ;;
    get) $B --endpoints $E get --consistency l --clients 64 --conns 8 --duration 10 > /dev/null ;;
    none) sleep 10 ;;
  esac
  e=$(r); sleep $IDLE; l=$(r)
  echo "cycle $c early $e late $l ratio $(awk -v e=$e -v l=$l 'BEGIN{printf "%.3f", e/l}')"
done
scripts/aegis-cluster.sh down /tmp/aegis-bench/cyc >/dev/null

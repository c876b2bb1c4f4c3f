#!/usr/bin/env bash
# A fresh AEGIS cluster, a 10 s 64-client burst, then N one-second one-client rows back to back
# (each a new aegis-bench process); prints put/s per row.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
B=$CARGO_TARGET_DIR/release/aegis-bench
scripts/aegis-cluster.sh up /tmp/aegis-bench/early-late >/dev/null
E=$(scripts/aegis-cluster.sh endpoints); sleep 2
"$B" --endpoints "$E" put --clients 64 --conns 8 --duration 10 >/dev/null
for _ in $(seq 1 "${N:-25}"); do
  "$B" --endpoints "$E" --json put --clients 1 --conns 1 --duration 1 --total 1000000 |
    python3 -c "import json,sys;print(round(json.load(sys.stdin)['requests_per_sec']))"
done
scripts/aegis-cluster.sh down /tmp/aegis-bench/early-late >/dev/null

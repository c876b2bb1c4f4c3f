#!/usr/bin/env bash
# One client's puts on a fresh local cluster while the lowest-id follower is stopped for
# STOP_MS every EVERY_MS. Usage (from the repository root, release binaries built):
#   AEGIS_NODE_BIN=target/release/aegis-node BENCH=target/release/aegis-bench \
#     docs/bench-results/2026-12-02/hiccup/run.sh LABEL SECS STOP_MS EVERY_MS
set -euo pipefail
LABEL=$1 S=$2 ST=$3 EV=$4
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
: "${AEGIS_NODE_BIN:?path to aegis-node}" "${BENCH:?path to aegis-bench}"
export AEGIS_NODE_BIN
D=$(mktemp -d)
"$ROOT/scripts/aegis-cluster.sh" up "$D" >/dev/null
trap '"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null; rm -rf "$D"' EXIT
sleep 1.5
L=""
for i in 1 2 3 4 5; do
  if curl -s "http://127.0.0.1:3249$i/metrics" | grep -q '^aegis_raft_is_leader 1'; then L=$i; fi
done
M=""
for i in 1 2 3 4 5; do if [ "$i" != "$L" ] && [ -z "$M" ]; then M=$i; fi; done
python3 "$HERE/stop-member.py" "$(cat "$D/node-$M/pid")" "$ST" "$EV" $((S + 1)) &
stopper=$!
"$BENCH" --target aegis --endpoints "$("$ROOT/scripts/aegis-cluster.sh" endpoints)" --out "$D/put.json" \
  put --clients 1 --conns 1 --duration "$S" --total 10000000 >/dev/null 2>&1
wait "$stopper" || true
fs=""
for i in 1 2 3 4 5; do
  fs="$fs $i:$(curl -s "http://127.0.0.1:3249$i/metrics" | awk '/^aegis_storage_fsync_seconds_count/{print $2}')"
done
python3 - "$LABEL" "$L" "$M" "$D/put.json" "$fs" <<'PY'
import json, sys
label, leader, stopped, path, fs = sys.argv[1:6]
j = json.load(open(path))
ms = lambda k: j[k] * 1e3
print(f"{label}: leader {leader} stopped {stopped}; rps={j['requests_per_sec']:.0f} "
      f"p50={ms('p50_secs'):.2f} p90={ms('p90_secs'):.2f} p99={ms('p99_secs'):.2f} "
      f"p999={ms('p999_secs'):.2f} max={ms('max_secs'):.1f} fsyncs:{fs}")
PY

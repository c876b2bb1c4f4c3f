#!/usr/bin/env bash
# How far each follower trails the leader during a put row: one fresh local AEGIS cluster, one
# `aegis-bench put` row, and `aegis_raft_log_lag` scraped from every node twice a second.
# Prints the rate and, per follower, the largest and median lag over the scrapes and how many
# were above the agent's slow-follower threshold (1,000 entries).
#
#   scripts/follower-lag.sh [CLIENTS] [CONNS] [SECONDS]      (default 1000 100 10)
#
# Environment: as scripts/aegis-cluster.sh (AEGIS_EXTRA_CONFIG for raft settings, for instance
# AEGIS_EXTRA_CONFIG="  spare-batch-ms: 5"); CARGO_TARGET_DIR for the release binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${1:-1000}
CONNS=${2:-100}
SECS=${3:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$CARGO_TARGET_DIR/release/aegis-bench
DIR=$(mktemp -d /tmp/aegis-follower-lag.XXXXXX)

(cd "$ROOT" && cargo build -q --release -p aegis-bench -p aegis-node)
trap '"$ROOT/scripts/aegis-cluster.sh" down "$DIR/cluster" >/dev/null 2>&1 || true' EXIT
"$ROOT/scripts/aegis-cluster.sh" up "$DIR/cluster" >/dev/null
eps=$("$ROOT/scripts/aegis-cluster.sh" endpoints)
metrics=$("$ROOT/scripts/aegis-cluster.sh" metrics-endpoints)
sleep 2

"$BENCH" --target aegis --endpoints "$eps" --out "$DIR/put.json" \
  put --clients "$CLIENTS" --conns "$CONNS" --duration "$SECS" --total 10000000 >/dev/null &
bench=$!
sleep 1
# Only the leader reports lag; scrape every node so a leader change is seen too.
for _ in $(seq 1 $((2 * (SECS > 2 ? SECS - 2 : 1)))); do
  for e in ${metrics//,/ }; do
    curl -s "http://$e/metrics" | grep '^aegis_raft_log_lag' >>"$DIR/lag.txt" || true
  done
  sleep 0.5
done
wait "$bench"

python3 - "$DIR/put.json" "$DIR/lag.txt" <<'PY'
import collections, json, re, sys
report = json.load(open(sys.argv[1]))
lags = collections.defaultdict(list)
for line in open(sys.argv[2]):
    m = re.match(r'aegis_raft_log_lag\{follower="(\d+)"\} (\S+)', line)
    if m:
        lags[m.group(1)].append(float(m.group(2)))
print(f"{report['requests_per_sec']:.0f} put/s")
for follower, v in sorted(lags.items()):
    v.sort()
    above = sum(x > 1000 for x in v)
    print(f"follower {follower}: max {v[-1]:.0f}, median {v[len(v) // 2]:.0f}, above 1,000 in {above} of {len(v)} scrapes")
PY
echo "raw scrapes in $DIR"

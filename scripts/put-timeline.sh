#!/usr/bin/env bash
# Where a one-client put spends its time: builds aegis-node with its `timeline` marks, runs
# the local 5-node cluster with them on, drives one client of puts, and prints each step's
# median time after the leader's handler got the put, how the time from one put's answer to
# the next put splits at the client port's socket, for each step of the two quorum members the
# earlier and the later of them (the commit waits for the later), and each follower's lag in
# applying entries (aegis-bench timeline).
#
#   scripts/put-timeline.sh [OUT_DIR]
#
# Environment: DURATION (6 s of puts), SKIP (100 warm-up puts left out), CARGO_TARGET_DIR,
# TASKS=1 (also mark every runtime task poll, AEGIS_TIMELINE_TASKS: the report then says which
# tasks each kind of node polled per put and for how long; the marks slow each hand-off a little).
# The instrumented binary is copied to OUT_DIR; the target directory's aegis-node is rebuilt
# without the marks afterwards, so later runs of the other scripts measure the real thing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/aegis-bench/timeline-$(date -u +%Y%m%dT%H%M%SZ)}
DURATION=${DURATION:-6}
SKIP=${SKIP:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release

mkdir -p "$OUT/marks"
rm -f "$OUT"/marks/*.tl
(cd "$ROOT" && cargo build --release -p aegis-bench && cargo build --release -p aegis-node --features timeline)
cp "$BIN/aegis-node" "$OUT/aegis-node-timeline"
(cd "$ROOT" && cargo build --release -p aegis-node)

CLUSTER=$OUT/cluster
export AEGIS_NODE_BIN=$OUT/aegis-node-timeline AEGIS_TIMELINE=$OUT/marks
if [[ ${TASKS:-0} == 1 ]]; then export AEGIS_TIMELINE_TASKS=1; fi
trap '"$ROOT/scripts/aegis-cluster.sh" down "$CLUSTER" >/dev/null 2>&1 || true' EXIT
"$ROOT/scripts/aegis-cluster.sh" up "$CLUSTER" >/dev/null
ENDPOINTS=$("$ROOT/scripts/aegis-cluster.sh" endpoints)
"$BIN/aegis-bench" --endpoints "$ENDPOINTS" --out "$OUT/put.json" \
  put --clients 1 --conns 1 --duration "$DURATION" --total 10000000
# The marks are written every 300 ms.
sleep 1
"$ROOT/scripts/aegis-cluster.sh" down "$CLUSTER" >/dev/null
"$BIN/aegis-bench" --out "$OUT/timeline.json" timeline --dir "$OUT/marks" --skip "$SKIP" | tee "$OUT/timeline.txt"
echo "results in $OUT"

#!/usr/bin/env bash
# Starts (or stops) a 5-node AEGIS cluster on loopback for benchmarks (release build).
#
#   scripts/aegis-cluster.sh up   [DIR]   # fresh data, waits until a leader is elected
#   scripts/aegis-cluster.sh down [DIR]
#   scripts/aegis-cluster.sh endpoints
#   scripts/aegis-cluster.sh metrics-endpoints
#
# Environment: HEARTBEAT_MS (50), ELECTION_MIN_MS and ELECTION_MAX_MS (250 and 500; or E and 2E
# from ELECTION_MS=E, as etcd-cluster.sh and the bench scripts read it),
# AEGIS_NODE_BIN (default: release build in CARGO_TARGET_DIR, built if missing),
# AEGIS_WORKER_THREADS (each node's share of the CPUs, at least 1: docs/adr/0015),
# AEGIS_CLIENT_BASE (32470), AEGIS_PEER_BASE (32480), AEGIS_METRICS_BASE (32490),
# KV_MAX_VERSIONS (2: versions of a key kept; etcd-cluster.sh compacts etcd to its last 1,000
# revisions, so both sides run with bounded history, AEGIS still keeping more old versions than
# etcd in these rows; the node's default is 100), AEGIS_EXTRA_CONFIG (YAML lines after the raft settings: indented ones are raft
# settings).
# Layout (what aegis-bench failover/mem read): DIR/node-N/{pid,cmd,node.log,data}, DIR/aegis.yaml.
set -euo pipefail

CMD=${1:-up}
DIR=${2:-${AEGIS_BENCH_DIR:-/tmp/aegis-bench/aegis}}
HEARTBEAT_MS=${HEARTBEAT_MS:-50}
ELECTION_MIN_MS=${ELECTION_MIN_MS:-${ELECTION_MS:-250}}
ELECTION_MAX_MS=${ELECTION_MAX_MS:-$((2 * ${ELECTION_MS:-250}))}
KV_MAX_VERSIONS=${KV_MAX_VERSIONS:-2}
CLIENT_BASE=${AEGIS_CLIENT_BASE:-32470}
PEER_BASE=${AEGIS_PEER_BASE:-32480}
METRICS_BASE=${AEGIS_METRICS_BASE:-32490}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
NODE_BIN=${AEGIS_NODE_BIN:-$TARGET_DIR/release/aegis-node}
N=5
WORKERS=${AEGIS_WORKER_THREADS:-$(( $(nproc) / N > 0 ? $(nproc) / N : 1 ))}

endpoints() {
  local out=()
  for i in $(seq 1 $N); do out+=("127.0.0.1:$((CLIENT_BASE + i))"); done
  (IFS=,; echo "${out[*]}")
}

# shellcheck source=lib/stop-members.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stop-members.sh"

up() {
  if [[ ! -x $NODE_BIN ]]; then
    (cd "$ROOT" && cargo build --release -p aegis-node)
  fi
  stop_all
  mkdir -p "$DIR"
  cat > "$DIR/aegis.yaml" <<YAML
raft:
  heartbeat-interval-ms: $HEARTBEAT_MS
  election-timeout-min-ms: $ELECTION_MIN_MS
  election-timeout-max-ms: $ELECTION_MAX_MS
${AEGIS_EXTRA_CONFIG:-}
kv:
  max-versions: $KV_MAX_VERSIONS
YAML
  local members=()
  for i in $(seq 1 $N); do members+=("$i=127.0.0.1:$((PEER_BASE + i))/127.0.0.1:$((CLIENT_BASE + i))"); done
  local m; m=$(IFS=,; echo "${members[*]}")
  for i in $(seq 1 $N); do
    local d="$DIR/node-$i"
    rm -rf "$d/data"
    mkdir -p "$d"
    echo "$NODE_BIN --id $i --data-dir $d/data --peer-addr 127.0.0.1:$((PEER_BASE + i)) \
--client-addr 127.0.0.1:$((CLIENT_BASE + i)) --metrics-addr 127.0.0.1:$((METRICS_BASE + i)) \
--config $DIR/aegis.yaml --worker-threads $WORKERS --members $m" > "$d/cmd"
    setsid sh -c "exec $(cat "$d/cmd")" >>"$d/node.log" 2>&1 < /dev/null &
    echo $! > "$d/pid"
  done
  for _ in $(seq 1 150); do
    for i in $(seq 1 $N); do
      if curl -sf "http://127.0.0.1:$((METRICS_BASE + i))/metrics" 2>/dev/null | grep -q '^aegis_raft_is_leader 1'; then
        echo "aegis up: $(endpoints) (dir $DIR, leader node $i, heartbeat ${HEARTBEAT_MS}ms, election ${ELECTION_MIN_MS}..${ELECTION_MAX_MS}ms)"
        return 0
      fi
    done
    sleep 0.2
  done
  echo "aegis cluster has no leader after 30s; logs under $DIR/node-*/node.log" >&2
  return 1
}

metrics_endpoints() {
  local out=()
  for i in $(seq 1 $N); do out+=("127.0.0.1:$((METRICS_BASE + i))"); done
  (IFS=,; echo "${out[*]}")
}

case "$CMD" in
  up) up ;;
  down) stop_all; echo "aegis down ($DIR)" ;;
  endpoints) endpoints ;;
  metrics-endpoints) metrics_endpoints ;;
  *) echo "usage: $0 up|down|endpoints|metrics-endpoints [DIR]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Starts (or stops) a 5-member etcd cluster on loopback for benchmarks, from the Debian
# package, with the same heartbeat and election settings as the AEGIS cluster under test.
#
#   scripts/etcd-cluster.sh up   [DIR]   # fresh data, waits until every member is healthy
#   scripts/etcd-cluster.sh down [DIR]
#   scripts/etcd-cluster.sh endpoints
#
# Environment: HEARTBEAT_MS (50), ELECTION_MS (250; etcd randomises in [E, 2E), like AEGIS's
# default 250..500), ETCD_CLIENT_BASE (32370), ETCD_PEER_BASE (32380).
# Layout (what aegis-bench failover/mem read): DIR/node-N/{pid,cmd,node.log,data}.
set -euo pipefail

CMD=${1:-up}
DIR=${2:-${ETCD_BENCH_DIR:-/tmp/aegis-bench/etcd}}
HEARTBEAT_MS=${HEARTBEAT_MS:-50}
ELECTION_MS=${ELECTION_MS:-250}
CLIENT_BASE=${ETCD_CLIENT_BASE:-32370}
PEER_BASE=${ETCD_PEER_BASE:-32380}
N=5

endpoints() {
  local out=()
  for i in $(seq 1 $N); do out+=("127.0.0.1:$((CLIENT_BASE + i))"); done
  (IFS=,; echo "${out[*]}")
}

ensure_etcd() {
  if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
    echo "etcd or etcdctl not found; installing the Debian packages etcd-server etcd-client" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
  fi
}

# shellcheck source=lib/stop-members.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stop-members.sh"

up() {
  ensure_etcd
  stop_all
  mkdir -p "$DIR"
  local cluster=()
  for i in $(seq 1 $N); do cluster+=("n$i=http://127.0.0.1:$((PEER_BASE + i))"); done
  local initial; initial=$(IFS=,; echo "${cluster[*]}")
  for i in $(seq 1 $N); do
    local d="$DIR/node-$i"
    rm -rf "$d/data"
    mkdir -p "$d"
    local c="http://127.0.0.1:$((CLIENT_BASE + i))" p="http://127.0.0.1:$((PEER_BASE + i))"
    # History is compacted continuously (keep 1000 revisions) and the backend quota raised,
    # so long runs are not penalised by a growing bbolt file or a space alarm.
    echo "etcd --name n$i --data-dir $d/data \
--listen-client-urls $c --advertise-client-urls $c \
--listen-peer-urls $p --initial-advertise-peer-urls $p \
--initial-cluster $initial --initial-cluster-state new --initial-cluster-token aegis-bench \
--heartbeat-interval $HEARTBEAT_MS --election-timeout $ELECTION_MS \
--auto-compaction-mode revision --auto-compaction-retention 1000 \
--quota-backend-bytes 8589934592 --logger zap --log-level warn" > "$d/cmd"
    setsid sh -c "exec $(cat "$d/cmd")" >>"$d/node.log" 2>&1 < /dev/null &
    echo $! > "$d/pid"
  done
  local eps; eps=$(endpoints)
  for _ in $(seq 1 150); do
    if ETCDCTL_API=3 etcdctl --endpoints="$eps" --command-timeout=1s endpoint health >/dev/null 2>&1; then
      echo "etcd up: $eps (dir $DIR, heartbeat ${HEARTBEAT_MS}ms, election ${ELECTION_MS}ms)"
      return 0
    fi
    sleep 0.2
  done
  echo "etcd cluster not healthy after 30s; logs under $DIR/node-*/node.log" >&2
  return 1
}

case "$CMD" in
  up) up ;;
  down) stop_all; echo "etcd down ($DIR)" ;;
  endpoints) endpoints ;;
  *) echo "usage: $0 up|down|endpoints [DIR]" >&2; exit 2 ;;
esac

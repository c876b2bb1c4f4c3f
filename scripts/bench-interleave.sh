#!/usr/bin/env bash
# Two clusters up at once, and each load row run in blocks that alternate between them: the
# first side then the second in odd blocks, the other way round in even ones. Both rows of a
# block run within a few seconds of each other, so they see the same host; fresh-cluster pairs
# (bench-compare.sh PAIRS=N) put a minute between a pair's two rows, and this host's speed
# drifts from minute to minute without counting it as steal (docs/BENCHMARKS.md).
#
#   scripts/bench-interleave.sh [RESULTS_DIR]
#
# Environment: BLOCKS (8), DURATION (5 s per row), ROWS (the three put rows), WARMUP (10 s of
# 64-client puts into each cluster before the first block; 0 for none), BASE (etcd) and CAND
# (aegis): a side is TARGET, NAME=TARGET or NAME=aegis:NODE_BIN (two builds of the node against
# each other), TARGET being etcd or aegis. The second side listens on ports 200 above the
# first's, so both sides may be of one system. BASE_CONFIG / CAND_CONFIG: YAML lines for that
# side's AEGIS cluster (AEGIS_EXTRA_CONFIG of aegis-cluster.sh; indented lines are raft
# settings), to run one build at two settings. HEARTBEAT_MS / ELECTION_MS as bench-compare.sh.
# Results: DIR/<block>/<name>/<row>.json and .steal, the layout `aegis-bench pairs` reads; its
# table (each block's ratio, their median and range) goes to DIR/interleave.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${1:-/tmp/aegis-bench/interleave-$(date -u +%Y%m%dT%H%M%SZ)}
BLOCKS=${BLOCKS:-8}
DURATION=${DURATION:-5}
ROWS=${ROWS:-01-put-c1 02-put-c64 03-put-c1000}
WARMUP=${WARMUP:-10}
# shellcheck source=lib/bench-rows.sh
source "$ROOT/scripts/lib/bench-rows.sh"

for row in $ROWS; do
  row_args "$row" >/dev/null || { echo "unknown row $row" >&2; exit 2; }
done

# Side I (0 or 1) from its spec: NAME, TARGET, NODE_BIN (may be empty), cluster script and dir,
# and the environment that puts its cluster on its own ports.
declare -a NAME TARGET NODE SCRIPT CDIR PORTS EPS CONF
parse_side() {
  local i=$1 spec=$2 name target node=""
  CONF[i]=$3
  if [[ $spec == *=* ]]; then name=${spec%%=*}; target=${spec#*=}; else name=$spec; target=$spec; fi
  if [[ $target == aegis:* ]]; then node=${target#aegis:}; target=aegis; fi
  case $target in
    etcd) SCRIPT[i]=etcd-cluster.sh ;;
    aegis) SCRIPT[i]=aegis-cluster.sh ;;
    *) echo "side '$spec': the target is etcd or aegis" >&2; exit 2 ;;
  esac
  [[ -z $node || -x $node ]] || { echo "side '$spec': $node is not an executable" >&2; exit 2; }
  NAME[i]=$name TARGET[i]=$target NODE[i]=$node CDIR[i]=/tmp/aegis-bench/interleave-$i
  local shift=$((200 * i))
  PORTS[i]="ETCD_CLIENT_BASE=$((32370 + shift)) ETCD_PEER_BASE=$((32380 + shift)) \
AEGIS_CLIENT_BASE=$((32470 + shift)) AEGIS_PEER_BASE=$((32480 + shift)) AEGIS_METRICS_BASE=$((32490 + shift))"
}
parse_side 0 "${BASE:-etcd}" "${BASE_CONFIG:-}"
parse_side 1 "${CAND:-aegis}" "${CAND_CONFIG:-}"
[[ ${NAME[0]} != "${NAME[1]}" ]] || { echo "the two sides need different names (NAME=...)" >&2; exit 2; }

# The cluster script of side I, run with that side's ports, node binary and settings.
cluster() {
  local i=$1; shift
  # shellcheck disable=SC2086 # PORTS is a list of assignments
  env ${PORTS[i]} ${NODE[i]:+AEGIS_NODE_BIN=${NODE[i]}} ${CONF[i]:+"AEGIS_EXTRA_CONFIG=${CONF[i]}"} \
    "$ROOT/scripts/${SCRIPT[i]}" "$@"
}

(cd "$ROOT" && cargo build --release -p aegis-bench -p aegis-node)
mkdir -p "$RESULTS"
trap 'cluster 0 down "${CDIR[0]}" >/dev/null 2>&1 || true; cluster 1 down "${CDIR[1]}" >/dev/null 2>&1 || true' EXIT

{
  machine_lines
  echo "sides: ${NAME[0]} (${TARGET[0]}${NODE[0]:+ $(sha256sum "${NODE[0]}" | cut -c1-12)}), ${NAME[1]} (${TARGET[1]}${NODE[1]:+ $(sha256sum "${NODE[1]}" | cut -c1-12)})"
  for i in 0 1; do [[ -z ${CONF[i]} ]] || echo "settings of ${NAME[i]}: $(tr '\n' ';' <<<"${CONF[i]}")"; done
  echo "heartbeat ${HEARTBEAT_MS} ms, election etcd ${ELECTION_MS} ms / aegis ${ELECTION_MIN_MS}..${ELECTION_MAX_MS} ms"
  echo "interleaved: ${BLOCKS} blocks of ${DURATION}s rows, rows: ${ROWS}, warm-up ${WARMUP}s per cluster"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS/machine.txt"

for i in 0 1; do
  cluster "$i" up "${CDIR[i]}" >/dev/null
  EPS[i]=$(cluster "$i" endpoints)
done
sleep 2
if ((WARMUP > 0)); then
  for i in 0 1; do
    "$BENCH" --target "${TARGET[i]}" --endpoints "${EPS[i]}" put --clients 64 --conns 8 --duration "$WARMUP" >/dev/null
  done
fi

for row in $ROWS; do
  args=$(row_args "$row")
  for b in $(seq 1 "$BLOCKS"); do
    order="0 1"
    ((b % 2 == 0)) && order="1 0"
    for i in $order; do
      dir=$RESULTS/$b/${NAME[i]}
      mkdir -p "$dir"
      echo "== block $b ${NAME[i]} $row"
      load_row "${TARGET[i]}" "${EPS[i]}" "$dir" "$row" "$args" | sed -n '/Requests\/sec/p;/^steal:/p'
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS/machine.txt"
"$BENCH" pairs --dir "$RESULTS" --base-name "${NAME[0]}" --cand-name "${NAME[1]}" | tee "$RESULTS/interleave.md"
echo "results in $RESULTS"

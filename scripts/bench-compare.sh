#!/usr/bin/env bash
# One command, one machine: the same load rows and the leader-failover benchmark against a
# 5-member etcd and a 5-node AEGIS cluster on loopback, one system at a time, then the
# side-by-side tables (markdown) with ratios.
#
#   scripts/bench-compare.sh [RESULTS_DIR]
#
# Environment: DURATION (10 s per load row), ROUNDS (10 failover rounds), ONLY (etcd|aegis to
# run one side), ROWS (space-separated row names to run, default all; ROWS=none runs none),
# HEARTBEAT_MS / ELECTION_MS / ELECTION_MIN_MS / ELECTION_MAX_MS (passed to both cluster
# scripts), PAIRS (0; N runs PAIR_ROWS, default the three put rows, N more times afterwards,
# each row on a fresh cluster of one system and then of the other, the order alternating from
# pair to pair; `aegis-bench pairs` then prints each pair's ratio and their median).
# PAIR_WARMUP (0; N: N seconds of puts at 64 clients into each fresh pair cluster before its row,
# not measured, so both systems are measured warm: files grown, caches and heaps sized).
# INTERLEAVE (0; N runs scripts/bench-interleave.sh with N blocks into DIR/interleave at the end:
# both clusters up, INTERLEAVE_ROWS, default the three put rows, alternating in blocks).
# STRICT (0; 1: fail, after the tables, unless every row this run asked for is there on both
# sides, without errors, every failover round saw a new leader and a write, and every node's
# memory was read: `aegis-bench compare --require`; the test command runs it so, one second a row).
# Each load row also records the host's steal time during it (DIR/ROW.steal).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${1:-/tmp/aegis-bench/results-$(date -u +%Y%m%dT%H%M%SZ)}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-10}
# shellcheck source=lib/bench-rows.sh
source "$ROOT/scripts/lib/bench-rows.sh"

(cd "$ROOT" && cargo build --release -p aegis-bench -p aegis-node)
mkdir -p "$RESULTS"

# Whether ROWS asks for a row; each row asked is remembered in ASKED, which STRICT=1 requires.
ASKED=()
want() {
  [[ -z ${ROWS:-} ]] || [[ " $ROWS " == *" $1 "* ]] || return 1
  [[ " ${ASKED[*]} " == *" $1 "* ]] || ASKED+=("$1")
}
PAIRS=${PAIRS:-0}
PAIR_ROWS=${PAIR_ROWS:-01-put-c1 02-put-c64 03-put-c1000}
PAIR_WARMUP=${PAIR_WARMUP:-0}

run_side() {
  local target=$1 script=$2 dir=$RESULTS/$1 cdir=/tmp/aegis-bench/$1
  mkdir -p "$dir"
  "$ROOT/scripts/$script" up "$cdir"
  local eps; eps=$("$ROOT/scripts/$script" endpoints)
  sleep 2
  want 30-mem-idle && "$BENCH" --target "$target" --out "$dir/30-mem-idle.json" mem --cluster-dir "$cdir" --label idle
  for spec in "${ROW_SPECS[@]}"; do
    local name=${spec%%|*} args=${spec#*|}
    want "$name" || continue
    echo "== $target $name: $args (${DURATION}s)"
    load_row "$target" "$eps" "$dir" "$name" "$args" | sed -n '/^Summary/,/Requests\/sec/p;/99% in/p;/^steal:/p;/Error distribution/,$p'
  done
  if want 10-watch-w16; then
    echo "== $target 10-watch-w16"
    "$BENCH" --target "$target" --endpoints "$eps" --out "$dir/10-watch-w16.json" watch --clients 16 --conns 4 --total 500 --put-rate 100 \
      | sed -n '/^Summary/,/Requests\/sec/p;/99% in/p'
  fi
  want 31-mem-after-load && "$BENCH" --target "$target" --out "$dir/31-mem-after-load.json" mem --cluster-dir "$cdir" --label "after load"
  if want 20-failover; then
    echo "== $target 20-failover ($ROUNDS rounds)"
    # AEGIS leadership is read from /metrics: Admin.Status hashes the whole state per call.
    local probe=()
    [[ $target == aegis ]] && probe=(--metrics-endpoints "$("$ROOT/scripts/$script" metrics-endpoints)")
    "$BENCH" --target "$target" --endpoints "$eps" --out "$dir/20-failover.json" failover --cluster-dir "$cdir" --rounds "$ROUNDS" "${probe[@]}"
  fi
  "$ROOT/scripts/$script" down "$cdir"
}

# One load row on a fresh cluster: results in DIR/NAME.json.
fresh_row() {
  local target=$1 script=$2 dir=$3 name=$4 args=$5 cdir=/tmp/aegis-bench/$1
  mkdir -p "$dir"
  "$ROOT/scripts/$script" up "$cdir" >/dev/null
  local eps; eps=$("$ROOT/scripts/$script" endpoints)
  sleep 2
  if ((PAIR_WARMUP > 0)); then
    "$BENCH" --target "$target" --endpoints "$eps" put --clients 64 --conns 8 --duration "$PAIR_WARMUP" >/dev/null
  fi
  load_row "$target" "$eps" "$dir" "$name" "$args" | sed -n '/Requests\/sec/p;/^steal:/p'
  "$ROOT/scripts/$script" down "$cdir" >/dev/null
}

run_pairs() {
  for k in $(seq 1 "$PAIRS"); do
    local order=("etcd etcd-cluster.sh" "aegis aegis-cluster.sh")
    ((k % 2 == 0)) && order=("${order[1]}" "${order[0]}")
    for spec in "${ROW_SPECS[@]}"; do
      local name=${spec%%|*} args=${spec#*|}
      [[ " $PAIR_ROWS " == *" $name "* ]] || continue
      for side in "${order[@]}"; do
        local target=${side% *} script=${side#* }
        echo "== pair $k $target $name"
        fresh_row "$target" "$script" "$RESULTS/pairs/$k/$target" "$name" "$args"
      done
    done
  done
  "$BENCH" pairs --dir "$RESULTS/pairs" | tee "$RESULTS/pairs.md"
}

trap '"$ROOT/scripts/aegis-cluster.sh" down >/dev/null 2>&1 || true; "$ROOT/scripts/etcd-cluster.sh" down >/dev/null 2>&1 || true' EXIT

{
  machine_lines
  echo "heartbeat ${HEARTBEAT_MS} ms, election etcd ${ELECTION_MS} ms / aegis ${ELECTION_MIN_MS}..${ELECTION_MAX_MS} ms, duration ${DURATION}s/row"
  echo "history: etcd compacted to its last 1000 revisions, aegis kv.max-versions ${KV_MAX_VERSIONS:-2}"
  echo "pairs: ${PAIRS}, warm-up before each pair row: ${PAIR_WARMUP}s"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS/machine.txt"

[[ ${ONLY:-etcd} == etcd || -z ${ONLY:-} ]] && run_side etcd etcd-cluster.sh
[[ ${ONLY:-aegis} == aegis || -z ${ONLY:-} ]] && run_side aegis aegis-cluster.sh
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS/machine.txt"

if [[ -d $RESULTS/etcd && -d $RESULTS/aegis ]]; then
  whole=()
  if [[ ${STRICT:-0} == 1 ]]; then
    whole=(--strict)
    if ((${#ASKED[@]} > 0)); then whole+=(--require "$(IFS=,; echo "${ASKED[*]}")"); fi
  fi
  "$BENCH" compare --base "$RESULTS/etcd" --cand "$RESULTS/aegis" "${whole[@]}" | tee "$RESULTS/compare.md"
elif [[ ${STRICT:-0} == 1 ]]; then
  echo "STRICT=1 compares both systems; ONLY=${ONLY:-} ran one" >&2
  exit 1
fi
if ((PAIRS > 0)); then
  run_pairs
  echo "load average at the end of the pairs: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS/machine.txt"
fi
if ((${INTERLEAVE:-0} > 0)); then
  BLOCKS=$INTERLEAVE ROWS=${INTERLEAVE_ROWS:-01-put-c1 02-put-c64 03-put-c1000} DURATION=5 \
    "$ROOT/scripts/bench-interleave.sh" "$RESULTS/interleave"
fi
echo "results in $RESULTS"

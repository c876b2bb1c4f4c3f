#!/usr/bin/env bash
# Flame graphs of the local 5-node cluster under a put row: where each node's CPU goes.
#
#   scripts/flamegraph.sh [OUT_DIR]
#   scripts/flamegraph.sh --summary OUT_DIR/folded.txt[.gz]   # top.txt again, from a stored run
#   scripts/flamegraph.sh --check [RESULTS_DIR]   # each stored flamegraphs-*/*/top.txt matches its stacks
#
# Starts the cluster (release build, scripts/aegis-cluster.sh), drives puts with aegis-bench,
# records every node with `perf record --call-graph dwarf` once the load is warm, and writes:
#   OUT/all.svg        every node, one tower per node (leader, member-N: the followers) and
#                      thread, widths in CPU samples, so the towers compare the nodes' CPU use
#   OUT/leader.svg     the leader alone
#   OUT/folded.txt     the collapsed stacks both are drawn from (role;thread;frames count)
#   OUT/top.txt        samples per node, their split by part of AEGIS, then the functions with
#                      the most samples of their own (self time) on the leader and the followers
#   OUT/put.json       the load's own report (aegis-bench --out)
#
# Environment: CLIENTS (1), CONNS (CLIENTS/10, at least 1), DURATION (8 s recorded), WARMUP (3 s
# of load before recording), FREQ (199 samples a second per CPU), CARGO_TARGET_DIR, and the
# cluster's own (HEARTBEAT_MS, AEGIS_EXTRA_CONFIG, ...). Needs perf (Debian linux-perf) and
# root or kernel.perf_event_paranoid <= 1; installs inferno (collapse and draw) with cargo into
# ~/.cache/aegis-tools when it is missing. Sampling with stack copies costs the nodes CPU, so a
# profiled row is slower than a measured one: read the shares, not the rate.
set -euo pipefail
# Sorting and number formats must not depend on the caller's locale: --check compares text.
export LC_ALL=C

# Where each node's samples go: per node, its share, the part in the kernel, and its samples by
# the part of AEGIS they were taken in (the first of these patterns a stack holds, so a log
# sync that openraft's core called counts as the log); then the functions with the most
# samples of their own on the leader and on the followers.
summary() {
  local sub=$2 who folded
  # The stacks are read several times, and may be gzipped (stored runs): one plain copy.
  folded=$(mktemp)
  zcat -f "$1" >"$folded"
  echo "# $sub"
  echo "## samples per node"
  echo "node        samples  share  in the kernel"
  awk '{ split($1, f, ";"); n[f[1]] += $NF; t += $NF; if ($(NF - 1) ~ /_\[k\]$/) k[f[1]] += $NF }
       END { for (w in n) printf "%-10s %7d  %5.1f %%  %5.1f %%\n", w, n[w], 100 * n[w] / t, 100 * k[w] / n[w] }' \
    "$folded" | sort
  echo "## samples by part (% of the node's own; followers together)"
  awk '
    BEGIN {
      np = split("client API handlers|tonic and hyper, per request|HTTP/2 connections|leader spin|log write and sync|state machine|replication stream|openraft core|runtime and idle", part, "|")
      pat[1] = "aegis_node::api::"; pat[2] = "H2Stream"; pat[3] = "h2::proto::connection|hyper::server"
      pat[4] = "aegis_node::leader_spin"; pat[5] = "aegis_wal::|log_store::"
      pat[6] = "aegis_state_machine::|raft::state_machine"; pat[7] = "append_stream|framed_append|peer_port"
      pat[8] = "openraft::"; pat[9] = "tokio::runtime"
    }
    {
      w = ($1 ~ /^leader;/) ? "leader" : "followers"; c = $NF; hit = "other"
      for (i = 1; i <= np; i++) if ($0 ~ pat[i]) { hit = part[i]; break }
      n[w SUBSEP hit] += c; t[w] += c
    }
    END {
      for (key in n) { split(key, kw, SUBSEP); printf "%-9s %5.1f %%  %s\n", kw[1], 100 * n[key] / t[kw[1]], kw[2] }
    }' "$folded" | sort -k1,1 -k2,2rn
  for who in leader member; do
    echo "## self samples, $who (top 25)"
    awk -v who="$who" '
      index($1, who) == 1 {
        c = $NF; s = substr($0, 1, length($0) - length(c) - 1)
        k = split(s, f, ";"); self[f[k]] += c; t += c
      }
      END { for (k in self) printf "%7d  %5.1f %%  %s\n", self[k], 100 * self[k] / t, k }' \
      "$folded" | sort -rn | awk 'NR <= 25'   # not head: its early exit fails the pipe
  done
  rm -f "$folded"
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Every stored run's top.txt is what its folded stacks give (scripts/test.sh runs this).
if [[ ${1:-} == --check ]]; then
  checked=0
  while IFS= read -r top; do
    d=$(dirname "$top")
    if ! diff <(summary "$d/folded.txt.gz" "$(sed -n '1s/^# //p' "$top")") "$top" >/dev/null; then
      echo "flamegraph: $top is not what $d/folded.txt.gz gives (scripts/flamegraph.sh --summary)" >&2
      exit 1
    fi
    checked=$((checked + 1))
  done < <(find "${2:-$ROOT/docs/bench-results}" -path '*flamegraphs-*' -name top.txt | sort)
  echo "flamegraph: $checked stored summaries match their stacks"
  exit 0
fi

if [[ ${1:-} == --summary ]]; then
  # Again from a stored run: scripts/flamegraph.sh --summary DIR/folded.txt[.gz]
  summary "$2" "${3:-$2}"
  exit 0
fi

OUT=${1:-/tmp/aegis-bench/flamegraph-$(date -u +%Y%m%dT%H%M%SZ)}
CLIENTS=${CLIENTS:-1}
CONNS=${CONNS:-$(( CLIENTS / 10 > 0 ? CLIENTS / 10 : 1 ))}
SECONDS_RECORDED=${DURATION:-8}
WARMUP=${WARMUP:-3}
FREQ=${FREQ:-199}
INFERNO_VERSION=0.12.3
TOOLS=${AEGIS_TOOLS_DIR:-$HOME/.cache/aegis-tools}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release

command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
if [[ ! -x $TOOLS/bin/inferno-flamegraph ]]; then
  cargo install --locked --root "$TOOLS" inferno --version "=$INFERNO_VERSION"
fi
(cd "$ROOT" && cargo build --release -p aegis-node -p aegis-bench)

mkdir -p "$OUT"
CLUSTER=$OUT/cluster
LOAD_PID=
cleanup() {
  if [[ -n $LOAD_PID ]]; then kill "$LOAD_PID" 2>/dev/null || true; fi
  "$ROOT/scripts/aegis-cluster.sh" down "$CLUSTER" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$ROOT/scripts/aegis-cluster.sh" up "$CLUSTER" | tee "$OUT/cluster.txt"
ENDPOINTS=$("$ROOT/scripts/aegis-cluster.sh" endpoints)

"$BIN/aegis-bench" --endpoints "$ENDPOINTS" --out "$OUT/put.json" \
  put --clients "$CLIENTS" --conns "$CONNS" --duration $(( WARMUP + SECONDS_RECORDED + 2 )) \
  --total 10000000 >"$OUT/put.txt" &
LOAD_PID=$!
sleep "$WARMUP"

# The leader is read after the warm-up, as the load found it: a fresh cluster may elect twice.
ROLES=()
PIDS=()
for i in 1 2 3 4 5; do
  pid=$(cat "$CLUSTER/node-$i/pid")
  metrics=$("$ROOT/scripts/aegis-cluster.sh" metrics-endpoints | cut -d, -f"$i")
  # Read whole before grep: with pipefail, grep -q closing the pipe early fails curl.
  body=$(curl -sf "http://$metrics/metrics" || true)
  if grep -q '^aegis_raft_is_leader 1' <<<"$body"; then
    ROLES+=("$pid=leader")
  else
    ROLES+=("$pid=member-$i")
  fi
  PIDS+=("$pid")
done
echo "roles (pid=role): ${ROLES[*]}" | tee "$OUT/roles.txt"

perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,32768 \
  -p "$(IFS=,; echo "${PIDS[*]}")" -o "$OUT/perf.data" -- sleep "$SECONDS_RECORDED"
wait "$LOAD_PID"
LOAD_PID=
cat "$OUT/put.txt"

# collapse-perf --pid names each stack "thread-PID"; the role replaces the pid, in front.
perf script -i "$OUT/perf.data" -F comm,pid,tid,time,event,ip,sym,dso 2>/dev/null |
  "$TOOLS/bin/inferno-collapse-perf" --pid --kernel |
  awk -v roles="${ROLES[*]}" '
    BEGIN { n = split(roles, r, " "); for (i = 1; i <= n; i++) { split(r[i], kv, "="); role[kv[1]] = kv[2] } }
    {
      semi = index($0, ";")
      head = semi ? substr($0, 1, semi - 1) : $0
      dash = match(head, /-[0-9]+$/)
      # Stacks the unwinder could not follow to their root start with [unknown]; dropped.
      gsub(/;\[unknown\]/, "")
      if (!dash) { print; next }
      pid = substr(head, RSTART + 1)
      who = (pid in role) ? role[pid] : "pid-" pid
      print who ";" substr(head, 1, RSTART - 1) (semi ? substr($0, semi) : "")
    }' >"$OUT/folded.txt"

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
SUB="$CLIENTS client(s) over $CONNS connection(s), $SECONDS_RECORDED s at $FREQ Hz per CPU, node $COMMIT"
"$TOOLS/bin/inferno-flamegraph" --title "AEGIS put: every node" --subtitle "$SUB" \
  --countname samples --minwidth 0.1 <"$OUT/folded.txt" >"$OUT/all.svg"
grep '^leader;' "$OUT/folded.txt" |
  "$TOOLS/bin/inferno-flamegraph" --title "AEGIS put: the leader" --subtitle "$SUB" \
    --countname samples --minwidth 0.1 >"$OUT/leader.svg"

summary "$OUT/folded.txt" "$SUB" >"$OUT/top.txt"
rm -f "$OUT/perf.data"
cat "$OUT/top.txt"
echo "flame graphs: $OUT/all.svg $OUT/leader.svg"

# What both comparison scripts share: the Raft timing both systems' clusters get, the load
# generator, the load rows and how one row is run. Sourced by bench-compare.sh and
# bench-interleave.sh; expects ROOT, and DURATION (seconds per row) by the time a row runs.

export HEARTBEAT_MS=${HEARTBEAT_MS:-50}
export ELECTION_MS=${ELECTION_MS:-250}
export ELECTION_MIN_MS=${ELECTION_MIN_MS:-$ELECTION_MS}
export ELECTION_MAX_MS=${ELECTION_MAX_MS:-$((2 * ELECTION_MS))}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$CARGO_TARGET_DIR/release/aegis-bench

# name | subcommand and its arguments
ROW_SPECS=(
  "01-put-c1|put --clients 1 --conns 1"
  "02-put-c64|put --clients 64 --conns 8"
  "03-put-c1000|put --clients 1000 --conns 100"
  "04-get-lin-c1|get --consistency l --clients 1 --conns 1"
  "05-get-lin-c64|get --consistency l --clients 64 --conns 8"
  "06-get-ser-c64-all|get --consistency s --clients 64 --conns 10 --to all"
  "07-txn-c64|txn --clients 64 --conns 8"
  "08-lock-c16|lock --clients 16 --conns 4"
  "09-keepalive-c64|keepalive --clients 64 --conns 8"
)

# The arguments of the row NAME, or nothing if there is no such row.
row_args() {
  local spec
  for spec in "${ROW_SPECS[@]}"; do
    [[ ${spec%%|*} == "$1" ]] && { echo "${spec#*|}"; return 0; }
  done
  return 1
}

# The first lines of a result set's machine.txt: the machine, its CPU (scripts/bench-history.sh
# reads the "cpu:" line to tell hosts apart), etcd's version and the guest's memory settings.
machine_lines() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "etcd: $(etcd --version 2>/dev/null | head -1 || echo missing)"
  echo "guest memory: $(guest_memory)"
}

# Settings of a virtual machine's kernel that decide what a first touch of memory costs: huge
# pages, and handing freed or cold memory back to the host (which then faults it in again).
# They go beside every result; parts the kernel lacks are left out.
guest_memory() {
  local parts=() thp part out=""
  local pr=/sys/module/page_reporting/parameters
  local damon=/sys/kernel/mm/damon/admin/kdamonds/0
  local scheme=$damon/contexts/0/schemes/0
  thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
  if [[ -n $thp ]]; then parts+=("transparent huge pages $thp"); fi
  if [[ -r $pr/page_reporting_order && -r $pr/min_free_ms ]]; then
    parts+=("free page reporting order $(cat "$pr/page_reporting_order"), after $(cat "$pr/min_free_ms") ms free")
  fi
  if [[ -r $damon/state && -r $scheme/action && -r $scheme/access_pattern/age/min ]]; then
    local aggr_us cold_s
    aggr_us=$(cat "$damon/contexts/0/monitoring_attrs/intervals/aggr_us" 2>/dev/null || echo 0)
    cold_s=$(($(cat "$scheme/access_pattern/age/min") * aggr_us / 1000000))
    parts+=("DAMON $(cat "$damon/state"), scheme $(cat "$scheme/action") after $cold_s s cold")
  fi
  for part in "${parts[@]}"; do out+="${out:+; }$part"; done
  echo "${out:-none found}"
}

# The host's steal time so far, in clock ticks summed over the vCPUs (/proc/stat).
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }

# One load row against a running cluster: results in DIR/NAME.json, the report on stdout, and
# the host's steal time during the row (percent of one vCPU) in DIR/NAME.steal: on a shared
# host it explains most of the swings between runs.
load_row() {
  local target=$1 eps=$2 dir=$3 name=$4 args=$5 s0 t0
  s0=$(steal_ticks)
  t0=$(date +%s%N)
  # shellcheck disable=SC2086 # args is a list of options
  "$BENCH" --target "$target" --endpoints "$eps" --out "$dir/$name.json" $args --duration "$DURATION" --total 10000000
  awk -v s="$(($(steal_ticks) - s0))" -v ns="$(($(date +%s%N) - t0))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "steal: %.1f%% of a vCPU\n", 100 * s / hz / (ns / 1e9) }' | tee "$dir/$name.steal"
}

# Sourced by the scripts here and in ../after-burst-snapshot/, ../jemalloc-thp/ and
# ../steal-vs-wakeups/: a fresh local cluster, the host's steal over a stretch (% of one vCPU),
# the warm pairs' 64-client burst, and one 5 s one-client row.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
BIN=${BIN:-$HOME/.cache/aegis-target-new/release}
export AEGIS_NODE_BIN=$BIN/aegis-node

# cluster_up DIR: sets D and eps.
cluster_up() {
  D=$1
  "$ROOT/scripts/aegis-cluster.sh" up "$D" >/dev/null 2>&1
  eps=$("$ROOT/scripts/aegis-cluster.sh" endpoints)
  sleep 2
}

# steal_mark: remembers the host's steal counter and the time (for steal_since).
steal_mark() {
  STEAL0=$(awk '/^cpu /{print $9}' /proc/stat); STEAL_T0=$(date +%s%N)
}

# steal_since: the share of one vCPU the host took since steal_mark, in %.
steal_since() {
  awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - STEAL0))" -v ns="$(($(date +%s%N) - STEAL_T0))" \
    'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}'
}

# burst64: 10 s of 64-client puts into the cluster at $eps (the warm pairs' warm-up).
burst64() {
  "$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 64 --conns 8 --duration 10 >/dev/null 2>&1
}

# row TAG LABEL OUT: prints and appends "TAG LABEL put/s steal=S".
row() {
  local r st
  steal_mark
  r=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 5 --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} END{print rps}')
  st=$(steal_since)
  echo "$1 $2 $r steal=$st" | tee -a "$3"
}

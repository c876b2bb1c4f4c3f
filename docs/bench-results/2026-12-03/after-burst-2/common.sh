# Sourced by the scripts here: a fresh local cluster, and one 5 s one-client row with the
# host's steal over it (% of one vCPU).
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

# row TAG LABEL OUT: prints and appends "TAG LABEL put/s steal=S".
row() {
  local s0 t0 r st
  s0=$(awk '/^cpu /{print $9}' /proc/stat); t0=$(date +%s%N)
  r=$("$BIN/aegis-bench" --target aegis --endpoints "$eps" put --clients 1 --conns 1 --duration 5 --total 10000000 2>&1 | awk '/Requests\/sec/{rps=$2} END{print rps}')
  st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$(($(date +%s%N) - t0))" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
  echo "$1 $2 $r steal=$st" | tee -a "$3"
}

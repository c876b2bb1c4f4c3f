#!/usr/bin/env bash
# One-client put rows on fresh etcd and AEGIS clusters, alternating, without warm-up: each
# row's put/s, the host's steal over it (% of one vCPU), and the rates of the guest's
# rescheduling and function-call IPIs (RES, CAL in /proc/interrupts: one vCPU waking another)
# and the guest's context switches (ctxt in /proc/stat), per second.
#   rows.sh ROUNDS OUT
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
BIN=${BIN:-$HOME/.cache/aegis-target-new/release}
export AEGIS_NODE_BIN=$BIN/aegis-node
ROUNDS=$1; OUT=$2
irq() { awk -v k="$1:" '$1 == k { s = 0; for (i = 2; i <= 3; i++) s += $i; print s }' /proc/interrupts; }
row() {
  local target=$1 script=$2 round=$3 eps s0 t0 r0 c0 x0 r st ns
  "$ROOT/scripts/$script" up "/tmp/aegis-bench/$target" >/dev/null 2>&1
  eps=$("$ROOT/scripts/$script" endpoints); sleep 2
  s0=$(awk '/^cpu /{print $9}' /proc/stat); t0=$(date +%s%N)
  r0=$(irq RES); c0=$(irq CAL); x0=$(awk '/^ctxt/{print $2}' /proc/stat)
  r=$("$BIN/aegis-bench" --target "$target" --endpoints "$eps" put --clients 1 --conns 1 --duration 10 --total 10000000 2>&1 | awk '/Requests\/sec/{print $2}')
  ns=$(($(date +%s%N) - t0))
  st=$(awk -v s="$(($(awk '/^cpu /{print $9}' /proc/stat) - s0))" -v ns="$ns" 'BEGIN{printf "%.1f", 100*s/100/(ns/1e9)}')
  awk -v t="$target" -v k="$round" -v r="$r" -v st="$st" -v ns="$ns" \
      -v res="$(($(irq RES) - r0))" -v cal="$(($(irq CAL) - c0))" -v cx="$(($(awk '/^ctxt/{print $2}' /proc/stat) - x0))" \
      'BEGIN{s = ns/1e9; printf "round %s %s put/s %s steal %s RES/s %.0f CAL/s %.0f ctxt/s %.0f\n", k, t, r, st, res/s, cal/s, cx/s}' | tee -a "$OUT"
  "$ROOT/scripts/$script" down "/tmp/aegis-bench/$target" >/dev/null 2>&1
}
for k in $(seq 1 "$ROUNDS"); do
  if ((k % 2)); then row etcd etcd-cluster.sh "$k"; row aegis aegis-cluster.sh "$k"
  else row aegis aegis-cluster.sh "$k"; row etcd etcd-cluster.sh "$k"; fi
done

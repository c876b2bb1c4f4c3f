#!/usr/bin/env bash
# One-client put rows on fresh etcd and AEGIS clusters, alternating, without warm-up: each
# row's put/s, the host's steal over it (% of one vCPU), and the rates of the guest's
# rescheduling and function-call IPIs (RES, CAL in /proc/interrupts: one vCPU waking another)
# and the guest's context switches (ctxt in /proc/stat), per second.
#   rows.sh ROUNDS OUT
. "$(dirname "$0")/../after-burst-2/common.sh"
ROUNDS=$1; OUT=$2
irq() { awk -v k="$1:" '$1 == k { s = 0; for (i = 2; i <= 3; i++) s += $i; print s }' /proc/interrupts; }
one_row() {
  local target=$1 script=$2 round=$3 eps r0 c0 x0 r st ns t0
  "$ROOT/scripts/$script" up "/tmp/aegis-bench/$target" >/dev/null 2>&1
  eps=$("$ROOT/scripts/$script" endpoints); sleep 2
  steal_mark; t0=$(date +%s%N)
  r0=$(irq RES); c0=$(irq CAL); x0=$(awk '/^ctxt/{print $2}' /proc/stat)
  r=$("$BIN/aegis-bench" --target "$target" --endpoints "$eps" put --clients 1 --conns 1 --duration 10 --total 10000000 2>&1 | awk '/Requests\/sec/{print $2}')
  ns=$(($(date +%s%N) - t0))
  st=$(steal_since)
  awk -v t="$target" -v k="$round" -v r="$r" -v st="$st" -v ns="$ns" \
      -v res="$(($(irq RES) - r0))" -v cal="$(($(irq CAL) - c0))" -v cx="$(($(awk '/^ctxt/{print $2}' /proc/stat) - x0))" \
      'BEGIN{s = ns/1e9; printf "round %s %s put/s %s steal %s RES/s %.0f CAL/s %.0f ctxt/s %.0f\n", k, t, r, st, res/s, cal/s, cx/s}' | tee -a "$OUT"
  "$ROOT/scripts/$script" down "/tmp/aegis-bench/$target" >/dev/null 2>&1
}
for k in $(seq 1 "$ROUNDS"); do
  if ((k % 2)); then one_row etcd etcd-cluster.sh "$k"; one_row aegis aegis-cluster.sh "$k"
  else one_row aegis aegis-cluster.sh "$k"; one_row etcd etcd-cluster.sh "$k"; fi
done

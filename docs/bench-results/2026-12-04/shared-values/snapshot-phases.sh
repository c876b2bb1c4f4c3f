#!/usr/bin/env bash
# Each snapshot phase's time as the node reports it (aegis_snapshot_seconds{phase}): a fresh
# cluster with automatic snapshots off, the warm pairs' 10 s 64-client warm-up, then
# `aegisctl snapshot` on each node in turn, ROUNDS times, 0.3 s apart. Prints each node's mean
# per phase in ms and the snapshot size.
#   BIN=... snapshot-phases.sh ROUNDS LABEL OUT
. "$(dirname "$0")/../../2026-12-03/after-burst-2/common.sh"
ROUNDS=$1; LABEL=$2; OUT=$3
export AEGIS_EXTRA_CONFIG="  snapshot-logs-since-last: 10000000"
cluster_up /tmp/aegis-bench/snapphases
burst64
sleep 1
for r in $(seq 1 "$ROUNDS"); do
  for ep in ${eps//,/ }; do "$BIN/aegisctl" --endpoints "$ep" snapshot >/dev/null; sleep 0.3; done
done
for n in 1 2 3 4 5; do
  curl -s "127.0.0.1:$((32490 + n))/metrics" | awk -v label="$LABEL" -v n="$n" '
    /^aegis_snapshot_seconds_sum/ { split($1, a, "\""); sum[a[2]] = $2 }
    /^aegis_snapshot_seconds_count/ { split($1, a, "\""); cnt[a[2]] = $2 }
    /^aegis_snapshot_bytes / { bytes = $2 }
    END { printf "%s node %d snapshots %d copy %.1f encode %.1f write %.1f ms bytes %d\n", label, n,
          cnt["copy"], 1000 * sum["copy"] / cnt["copy"], 1000 * sum["encode"] / cnt["encode"],
          1000 * sum["write"] / cnt["write"], bytes }'
done | tee -a "$OUT"
"$ROOT/scripts/aegis-cluster.sh" down "$D" >/dev/null 2>&1

#!/usr/bin/env bash
# Chaos soak: runs chaos epochs on a 5-node loopback cluster of real nodes for
# N minutes (each epoch: random kill -9 / SIGSTOP faults, then kill -9 of all
# nodes under load and a restart), checks every history, and prints totals.
#
#   scripts/chaos-soak.sh --minutes 30 [--out DIR] [--seed S] [--failpoints] [--timing HB,MIN,MAX]
#
# Histories, digests, per-epoch reports and summary.json stay in DIR
# (default chaos-out/). Exit status: 0 clean, 1 violations or lost writes,
# 2 harness error.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p aegis-chaos --bin aegis-chaos
bin="${CARGO_TARGET_DIR:-target}/debug/aegis-chaos"
exec "$bin" soak "$@"

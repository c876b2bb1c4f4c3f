#!/usr/bin/env bash
# Builds the node and aegisctl (release) and runs `aegisctl` with the given
# arguments. `scripts/dev.sh up` starts the local 5-node cluster; then e.g.
# `scripts/dev.sh put hello world`, `scripts/dev.sh status`,
# `scripts/dev.sh dev kill 3`, `scripts/dev.sh dev down`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}"
cargo build --release -q -p aegis-node -p aegis-client --bins
ctl="$CARGO_TARGET_DIR/release/aegisctl"
case "${1:-}" in
  up|down) exec "$ctl" dev "$@" ;;
  *) exec "$ctl" "$@" ;;
esac

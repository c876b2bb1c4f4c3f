#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test in the
# workspace (unit tests, real node clusters on loopback, the agent against
# a real Prometheus, chart and CRD checks) and the benchmark table's
# freshness. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The timeline marks (scripts/put-timeline.sh) are compiled only with their feature.
cargo clippy -p aegis-node --features timeline -- -D warnings
echo "== cargo test"
cargo test --workspace
# The comparison with etcd is one command (docs/BENCHMARKS.md); here it runs every row for one
# second and two failover rounds a side, to show it runs whole on a clean clone. It builds
# the release binaries; its numbers are not judged: performance is shown by the stored runs,
# never by a timed test.
echo "== the comparison with etcd, one second a row"
if command -v etcd >/dev/null 2>&1 || [ "$(id -u)" -eq 0 ]; then
  DURATION=1 ROUNDS=2 STRICT=1 scripts/bench-compare.sh "$(mktemp -d)/compare"
else
  echo "skipped: etcd is not installed and this user cannot install it"
fi
if [ -x scripts/chart-lint.sh ]; then
  echo "== chart lint"
  scripts/chart-lint.sh
fi
# The run table in docs/BENCHMARKS.md is generated from docs/bench-results.
echo "== benchmark history table"
scripts/bench-history.sh --self-test
scripts/bench-history.sh --check
# The stored flame graphs' summaries are what their stacks give.
scripts/flamegraph.sh --check

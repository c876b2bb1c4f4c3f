#!/usr/bin/env bash
# long.sh BIN OUT SECS CLIENTS: one long put row on a fresh cluster with the fsync prober alongside.
set -u
BIN=$1 OUT=$2 SECS=${3:-45} CL=${4:-64}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$(git -C "$HERE" rev-parse --show-toplevel)"
BENCH=${BENCH:-${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target-exp}/release/aegis-bench}
mkdir -p "$OUT"
AEGIS_NODE_BIN=$BIN scripts/aegis-cluster.sh up /tmp/dz/cl >/dev/null 2>&1
eps=$(scripts/aegis-cluster.sh endpoints)
mkdir -p /var/tmp/dz; python3 "$HERE/probe.py" "$OUT/probe.txt" "$SECS" &
PP=$!
"$BENCH" --target aegis --endpoints "$eps" --out "$OUT/row.json" put --clients "$CL" --conns 8 --duration "$SECS" --total 10000000 >/dev/null 2>"$OUT/row.err"
wait $PP
ls -la --time-style=full-iso -R /tmp/dz/cl/ > "$OUT/files.txt" 2>&1
scripts/aegis-cluster.sh down /tmp/dz/cl >/dev/null 2>&1
sleep 5
python3 - "$OUT" <<'PY'
import json,sys
out=sys.argv[1]
d=json.load(open(f"{out}/row.json"))
pr=[float(l.split()[2]) for l in open(f"{out}/probe.txt") if ' fsync ' in l]
n=[l for l in open(f"{out}/probe.txt") if l.startswith('done')]
print(f"{out}: {d['requests_per_sec']:.0f} put/s p99 {d['p99_secs']*1e3:.1f} p99.9 {d['p999_secs']*1e3:.1f} max {d['max_secs']*1e3:.1f} ms; probe stalls >=8ms: {len(pr)}, >=20ms: {sum(1 for x in pr if x>=20)}, worst {max(pr) if pr else 0:.1f}; {n[0].strip() if n else ''}")
PY

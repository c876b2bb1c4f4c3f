#!/usr/bin/env bash
# The load generator's CPU (user, sys) around one put row of each system, fresh clusters, R rounds
# alternating (etcd first): CL clients over CO connections, 10 s, after 10 s of 64-client warm-up.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
B=$CARGO_TARGET_DIR/release/aegis-bench
R=${R:-3}; CL=${CL:-1000}; CO=${CO:-100}
out=${OUT:-/dev/null}
for r in $(seq 1 $R); do
 for sys in etcd aegis; do
  if [[ $sys == etcd ]]; then scripts/etcd-cluster.sh up >/dev/null; EPS=$(scripts/etcd-cluster.sh endpoints); T="--target etcd";
  else scripts/aegis-cluster.sh up >/dev/null; EPS=$(scripts/aegis-cluster.sh endpoints); T=""; fi
  $B $T --endpoints "$EPS" put --clients 64 --conns 8 --duration 10 >/dev/null
  /usr/bin/time -f "%U %S" -o /tmp/lgcpu-time.txt $B $T --endpoints "$EPS" --json put --clients $CL --conns $CO --duration 10 --total 10000000 > /tmp/lgcpu-row.json
  rps=$(python3 -c "import json;d=json.load(open('/tmp/lgcpu-row.json'));print(round(d['requests_per_sec']),d['requests'])")
  read u s < /tmp/lgcpu-time.txt
  echo "$r $sys rps=$rps user=$u sys=$s" | tee -a $out
  if [[ $sys == etcd ]]; then scripts/etcd-cluster.sh down >/dev/null; else scripts/aegis-cluster.sh down >/dev/null; fi
 done
done

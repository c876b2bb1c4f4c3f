#!/usr/bin/env bash
set -u
cd /work/main
for i in 1 2 3; do
  for side in etcd aegis; do
    CARGO_TARGET_DIR=$HOME/.cache/aegis-target-new ONLY=$side ROWS="01-put-c1 02-put-c64" scripts/bench-compare.sh $OUT/$side-$i > $OUT/$side-$i.log 2>&1
  done
done
echo done

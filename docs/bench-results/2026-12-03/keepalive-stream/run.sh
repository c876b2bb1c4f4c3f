#!/usr/bin/env bash
set -u
for i in 1 2 3; do
  (cd $OLD_TREE && CARGO_TARGET_DIR=$HOME/.cache/aegis-target-exp ONLY=aegis ROWS=09-keepalive-c64 scripts/bench-compare.sh $OUT/ka-old-$i >$OUT/ka-old-$i.log 2>&1)
  (cd /work/main && CARGO_TARGET_DIR=$HOME/.cache/aegis-target-new ONLY=aegis ROWS=09-keepalive-c64 scripts/bench-compare.sh $OUT/ka-new-$i >$OUT/ka-new-$i.log 2>&1)
  (cd /work/main && CARGO_TARGET_DIR=$HOME/.cache/aegis-target-new ONLY=etcd ROWS=09-keepalive-c64 scripts/bench-compare.sh $OUT/ka-etcd-$i >$OUT/ka-etcd-$i.log 2>&1)
done
echo done

#!/usr/bin/env bash
set -u
cd /work/main
export CARGO_TARGET_DIR=$HOME/.cache/aegis-target-new
for i in 1 2 3 4; do
  for v in 0 200 etcd; do
    if [[ $v == etcd ]]; then
      ONLY=etcd ROWS="01-put-c1" scripts/bench-compare.sh $OUT/etcd-$i > $OUT/etcd-$i.log 2>&1
    else
      AEGIS_IDLE_SPIN_US=$v ONLY=aegis ROWS="01-put-c1" scripts/bench-compare.sh $OUT/spin$v-$i > $OUT/spin$v-$i.log 2>&1
    fi
  done
done
echo done

#!/usr/bin/env bash
# run.sh ROUNDS: alternate guest_halt_poll_ns 0 / 200000, AEGIS and etcd c1 rows (fresh clusters)
set -u
cd /work/main
P=/sys/module/haltpoll/parameters/guest_halt_poll_ns
for r in $(seq 1 $1); do
 for hp in 0 200000; do
  echo $hp > $P
  AEGIS_NODE_BIN=/tmp/bin/cur scripts/aegis-cluster.sh up /tmp/hp/cl >/dev/null 2>&1
  EP=$(scripts/aegis-cluster.sh endpoints)
  /tmp/bin/bench --endpoints "$EP" --json --out /tmp/hp/a-$hp-$r.json put --clients 1 --conns 1 --duration 8 >/dev/null 2>&1
  scripts/aegis-cluster.sh down /tmp/hp/cl >/dev/null 2>&1
  python3 /tmp/ab/show.py /tmp/hp/a-$hp-$r.json aegis-hp$hp $r -
  scripts/etcd-cluster.sh up /tmp/hp/ecl >/dev/null 2>&1
  EP=$(scripts/etcd-cluster.sh endpoints)
  /tmp/bin/bench --target etcd --endpoints "$EP" --json --out /tmp/hp/e-$hp-$r.json put --clients 1 --conns 1 --duration 8 >/dev/null 2>&1
  scripts/etcd-cluster.sh down /tmp/hp/ecl >/dev/null 2>&1
  python3 /tmp/ab/show.py /tmp/hp/e-$hp-$r.json etcd-hp$hp $r -
 done
done
echo 0 > $P

#!/usr/bin/env bash
# timeline-run.sh NODE_BIN OUT: a fresh cluster of the instrumented binary, 8 s (DURATION) of one-client puts, marks in OUT/marks
set -u
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd); BIN=$HOME/.cache/aegis-target-new/release
OUT=$2; mkdir -p $OUT/marks; rm -f $OUT/marks/*
export AEGIS_NODE_BIN=$1 AEGIS_TIMELINE=$OUT/marks
$ROOT/scripts/aegis-cluster.sh up $OUT/cluster >/dev/null
eps=$($ROOT/scripts/aegis-cluster.sh endpoints)
$BIN/aegis-bench --endpoints "$eps" put --clients 1 --conns 1 --duration ${DURATION:-6} --total 10000000 | grep Requests/sec
sleep 1
$ROOT/scripts/aegis-cluster.sh down $OUT/cluster >/dev/null

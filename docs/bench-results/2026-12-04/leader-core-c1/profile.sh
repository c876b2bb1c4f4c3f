#!/usr/bin/env bash
# A profile of the leader, with call stacks, inside a one-client put row after the warm-up;
# then: perf script -i $OUT/leader.data -F comm,tid,ip,sym --no-inline | python3 core-share.py
#   OUT=DIR profile.sh
# (The stored run recorded 8 s of a 16 s row; this records 12 s of a 22 s row.)
CLIENTS=1 CONNS=1 WHO=leader PERF_ARGS="-F 4999 --call-graph dwarf,16384" \
  exec "$(dirname "$0")/../c1000-spread/profile.sh"

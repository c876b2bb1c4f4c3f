#!/usr/bin/env bash
# Installs what the build and tests need beyond the Rust toolchain, only when
# missing: Debian's prometheus (the agent's live integration test scrapes real
# nodes), iproute2 (network-namespace fault tests), iptables (their delay
# and loss steps on kernels without the netem qdisc), etcd-server and etcd-client (the
# test command's short run of the comparison with etcd) and protobuf-compiler (the
# bench's etcd-client compiles etcd's protos with protoc; our own protos use
# protox and need no protoc), and a C compiler and make (the node's allocator,
# jemalloc, is built from source: docs/adr/0017-node-allocator.md).
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v make >/dev/null 2>&1 || need+=(make)
# etcd's protos import Google's well-known types, which Debian ships apart from protoc.
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]} and not root; tests that need them will skip" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

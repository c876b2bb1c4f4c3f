# Stopping the members of a local cluster; sourced by aegis-cluster.sh and etcd-cluster.sh.
# Expects DIR (the cluster's directory, with node-N/pid files) and N (the member count).

# Succeeds once none of the given processes is alive; gives up after 5 s.
wait_gone() {
  for _ in $(seq 1 50); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && return 0
    sleep 0.1
  done
  return 1
}

# Stops every member: a polite signal, up to 5 s, then kill -9.
stop_all() {
  local pids=()
  for i in $(seq 1 $N); do
    local f="$DIR/node-$i/pid"
    [[ -f $f ]] || continue
    local p; p=$(cat "$f")
    if [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; pids+=("$p"); fi
    rm -f "$f"
  done
  wait_gone "${pids[@]}" && return 0
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # Until they are gone their ports are bound, and a cluster started next would fail to listen.
  wait_gone "${pids[@]}" || true
}

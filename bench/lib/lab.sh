# Shared by the bench scripts that build pods: a Membrane agent in a node namespace, CNI calls
# for Membrane and the reference bridge plugin, servers with their pids remembered, sockperf
# ping-pong latency, and the cleanup of it all. The sourcing script calls lab_init PREFIX
# (which sets p, tmp, socket and bpf_root and traps EXIT), then uses the functions; it sets
# root and, for latency, secs.
bridge_dir=/usr/lib/cni
servers=()
agent_pid=

# lab_init PREFIX: names with a random suffix; everything is removed on exit, also on failure.
lab_init() {
    p=$1$(printf '%04x' $((RANDOM % 65536)))
    tmp=/tmp/$p
    socket=$tmp/membrane.sock
    bpf_root=/sys/fs/bpf/$p
    trap lab_cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$tmp"
}

lab_cleanup() {
    set +e
    stop_servers
    stop_agent
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-"); do ip netns del "$ns"; done
    rm -rf "$bpf_root" "$tmp"
}

# start_agent NODE_NS SOCKET BPF_ROOT POD_CIDR: the agent in NODE_NS, waited for until it answers.
# AGENT_ARGS adds flags, e.g. AGENT_ARGS="--pod-gso-max-size 65536" (BIG TCP off).
start_agent() {
    local node=$1 socket=$2 bpf_root=$3 cidr=$4
    local extra
    read -r -a extra <<<"${AGENT_ARGS:-}"
    ip netns add "$node"
    ip -n "$node" link set lo up
    nsenter --net="/run/netns/$node" "$root/bin/membrane" agent --state-dir "$tmp/agent" --socket "$socket" \
        --pod-cidr "$cidr" --node-name "$p" --bpf-root "$bpf_root" "${extra[@]}" 2>"$tmp/agent.log" &
    agent_pid=$!
    for _ in $(seq 100); do "$root/bin/membrane" --socket "$socket" status >/dev/null 2>&1 && break; sleep 0.1; done
    "$root/bin/membrane" --socket "$socket" status >/dev/null || { echo "failed to start the agent:" >&2; cat "$tmp/agent.log" >&2; exit 1; }
}

# stop_agent: SIGTERM, then SIGKILL after 5 s (for cleanup()).
stop_agent() {
    if [[ -n $agent_pid ]] && kill -0 "$agent_pid" 2>/dev/null; then
        kill -TERM "$agent_pid"
        for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
    fi
}

# cni PLUGIN NODE CONF COMMAND POD: one CNI call from inside NODE; prints the pod's IPv4 on ADD.
cni() {
    local plugin=$1 node=$2 conf=$3 cmd=$4 pod=$5 exe path out
    if [[ $plugin == membrane ]]; then exe=$root/bin/membrane-cni; path=$root/bin; else exe=$bridge_dir/bridge; path=$bridge_dir; fi
    if ! out=$(echo "$conf" | CNI_COMMAND=$cmd CNI_CONTAINERID=$pod CNI_NETNS=/run/netns/$pod CNI_IFNAME=eth0 CNI_PATH=$path \
        CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=$pod" timeout 30 nsenter --net="/run/netns/$node" "$exe"); then
        echo "failed to $cmd pod $pod with $plugin: $out" >&2
        exit 1
    fi
    if [[ $cmd == ADD ]]; then echo "$out" | tr -d ' \n' | grep -o '"address":"[0-9.]*/' | head -1 | cut -d'"' -f4 | cut -d/ -f1; fi
}

# start_server NS CMD...: a server in NS, its pid remembered for cleanup; waits until it listens.
# A function that runs in a command substitution ($(latency …)) has its own copy of the pids:
# it stops its server itself, also when it fails, since the script's cleanup never sees it.
start_server() {
    local ns=$1; shift
    ip netns exec "$ns" "$@" >"$tmp/server.log" 2>&1 &
    servers+=($!)
    sleep 0.5
}

stop_server() {
    local pid=${servers[-1]}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'servers[-1]'
}

stop_servers() {
    local pid
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    servers=()
}

# latency CLIENT_NS SERVER_NS IP PROTO: sockperf ping-pong for $secs s, both ends on CPU 0;
# prints "p50 p99" in µs (sockperf reports half the round trip).
latency() {
    local cns=$1 sns=$2 ip=$3 proto=$4 out flag=()
    [[ $proto == tcp ]] && flag=(--tcp)
    start_server "$sns" taskset -c 0 sockperf server "${flag[@]}" -i "$ip" -p 11111
    out=$(timeout $((secs + 20)) ip netns exec "$cns" taskset -c 0 sockperf ping-pong "${flag[@]}" -i "$ip" -p 11111 -t "$secs" 2>&1) ||
        { stop_server; echo "failed to run sockperf to $ip: $out" >&2; exit 1; }
    stop_server
    echo "$(echo "$out" | awk '/percentile 50.000/ {print $NF}') $(echo "$out" | awk '/percentile 99.000/ {print $NF}')"
}

#!/usr/bin/env bash
# CNI ADD and DEL latency: N (default 200) sequential pods through Membrane (bin/membrane-cni
# and a real agent in a node namespace) against the reference `bridge` plugin with host-local
# IPAM (Debian containernetworking-plugins, /usr/lib/cni) in a node namespace of its own, same
# run, same machine. Pods are namespaces made here (not timed). Each plugin is executed the way
# a runtime on that node would: from inside its node namespace (nsenter --net), config on
# stdin, the CNI_* environment. Median and p90 of the wall time of each call.
#   bench/cni-latency.sh             prints one markdown table, writes bench/results/cni-latency.md
#   N=50 bench/cni-latency.sh        fewer pods
# Everything carries the prefix mbcl<4 hex> and is removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${N:-200}
bridge_dir=/usr/lib/cni
for f in bin/membrane bin/membrane-cni; do [[ -x $f ]] || { echo "failed to find $f: run make build" >&2; exit 1; }; done
for f in bridge host-local; do [[ -x $bridge_dir/$f ]] || { echo "failed to find $bridge_dir/$f: apt-get install containernetworking-plugins (make deps)" >&2; exit 1; }; done
((n >= 1 && n <= 250)) || { echo "failed to run: N must be 1..250 (one /24 of pods)" >&2; exit 2; }

p=mbcl$(printf '%04x' $((RANDOM % 65536)))
tmp=/tmp/$p
mnode=$p-m        # Membrane's node namespace
bnode=$p-b        # the bridge plugin's node namespace
socket=$tmp/membrane.sock
bpf_root=/sys/fs/bpf/$p
agent_pid=

cleanup() {
    set +e
    if [[ -n $agent_pid ]] && kill -0 "$agent_pid" 2>/dev/null; then
        kill -TERM "$agent_pid"
        for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
    fi
    # Pod namespaces first (their veths go with them), then the node namespaces.
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-"); do ip netns del "$ns"; done
    rm -rf "$bpf_root" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp"

# --- Membrane: a node namespace and the agent (IPv4 pod CIDR, as the bridge network below) ---
ip netns add "$mnode"
ip -n "$mnode" link set lo up
# nsenter switches only the network namespace: the agent's pins land in the machine's bpffs.
nsenter --net="/run/netns/$mnode" "$root/bin/membrane" agent --state-dir "$tmp/agent" --socket "$socket" \
    --pod-cidr 198.18.0.0/24 --node-name "$p" --bpf-root "$bpf_root" 2>"$tmp/agent.log" &
agent_pid=$!
for _ in $(seq 100); do bin/membrane --socket "$socket" status >/dev/null 2>&1 && break; sleep 0.1; done
bin/membrane --socket "$socket" status >/dev/null || { echo "failed to start the agent:" >&2; cat "$tmp/agent.log" >&2; exit 1; }
membrane_conf=$(printf '{"cniVersion":"1.1.0","name":"%s-membrane","type":"membrane","socket":"%s","mtu":1500}' "$p" "$socket")

# --- bridge + host-local: a node namespace, the plugin makes the bridge in it on first ADD ---
ip netns add "$bnode"
ip -n "$bnode" link set lo up
bridge_conf=$(printf '{"cniVersion":"1.0.0","name":"%s-bridge","type":"bridge","bridge":"%sbr","isGateway":true,"mtu":1500,"ipam":{"type":"host-local","ranges":[[{"subnet":"198.19.0.0/24"}]],"dataDir":"%s/host-local"}}' "$p" "$p" "$tmp")

# call PLUGIN NODE CONF COMMAND POD: one CNI call from inside NODE; appends its wall time (µs)
# to $tmp/PLUGIN.COMMAND. $EPOCHREALTIME is read by bash itself, so no fork is timed but the call.
call() {
    local plugin=$1 node=$2 conf=$3 cmd=$4 pod=$5 exe path out t0 t1
    if [[ $plugin == membrane ]]; then exe=$root/bin/membrane-cni; path=$root/bin; else exe=$bridge_dir/bridge; path=$bridge_dir; fi
    t0=$EPOCHREALTIME
    if ! out=$(echo "$conf" | CNI_COMMAND=$cmd CNI_CONTAINERID=$pod CNI_NETNS=/run/netns/$pod CNI_IFNAME=eth0 CNI_PATH=$path \
        CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=$pod" timeout 30 nsenter --net="/run/netns/$node" "$exe"); then
        echo "failed to $cmd pod $pod with $plugin: $out" >&2
        exit 1
    fi
    t1=$EPOCHREALTIME
    echo $(( (${t1/./} - ${t0/./}) )) >>"$tmp/$plugin.$cmd"
}

run() { # run PLUGIN NODE CONF: N pods up one after the other, then down one after the other
    local plugin=$1 node=$2 conf=$3 i
    for ((i = 0; i < n; i++)); do ip netns add "$p-$plugin-$i"; done
    for ((i = 0; i < n; i++)); do call "$plugin" "$node" "$conf" ADD "$p-$plugin-$i"; done
    for ((i = 0; i < n; i++)); do call "$plugin" "$node" "$conf" DEL "$p-$plugin-$i"; done
    for ((i = 0; i < n; i++)); do ip netns del "$p-$plugin-$i"; done
}

# One warm-up pod each (page cache, the bridge device's creation), not counted.
for plugin in membrane bridge; do
    if [[ $plugin == membrane ]]; then node=$mnode conf=$membrane_conf; else node=$bnode conf=$bridge_conf; fi
    ip netns add "$p-warm-$plugin"
    call "$plugin" "$node" "$conf" ADD "$p-warm-$plugin"
    call "$plugin" "$node" "$conf" DEL "$p-warm-$plugin"
    ip netns del "$p-warm-$plugin"
    rm -f "$tmp/$plugin.ADD" "$tmp/$plugin.DEL"
done
echo "cni-latency: $n pods each through membrane and bridge ($(nproc) CPUs)" >&2
run membrane "$mnode" "$membrane_conf"
run bridge "$bnode" "$bridge_conf"

# quantile FILE Q: the nearest-rank quantile of the µs values in FILE, in ms with 2 decimals.
quantile() {
    sort -n "$1" | awk -v q="$2" '{v[NR]=$1} END {r=int(q*NR+0.999999); if (r<1) r=1; printf "%.2f", v[r]/1000}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
madd=$(quantile "$tmp/membrane.ADD" 0.5); badd=$(quantile "$tmp/bridge.ADD" 0.5)
mdel=$(quantile "$tmp/membrane.DEL" 0.5); bdel=$(quantile "$tmp/bridge.DEL" 0.5)
table=$(
    printf '| plugin (%d sequential pods, IPv4) | ADD median | ADD p90 | DEL median | DEL p90 |\n|---|---|---|---|---|\n' "$n"
    printf '| Membrane (membrane-cni + agent, eBPF) | %s ms | %s ms | %s ms | %s ms |\n' "$madd" "$(quantile "$tmp/membrane.ADD" 0.9)" "$mdel" "$(quantile "$tmp/membrane.DEL" 0.9)"
    printf '| reference bridge + host-local v1.1.1 | %s ms | %s ms | %s ms | %s ms |\n' "$badd" "$(quantile "$tmp/bridge.ADD" 0.9)" "$bdel" "$(quantile "$tmp/bridge.DEL" 0.9)"
    printf '| Membrane / bridge | %s× | | %s× | |\n' "$(ratio "$madd" "$badd")" "$(ratio "$mdel" "$bdel")"
)
mkdir -p bench/results
echo "$table" | tee bench/results/cni-latency.md

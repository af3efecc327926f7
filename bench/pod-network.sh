#!/usr/bin/env bash
# Pod-to-pod network: TCP throughput (iperf3, one stream) and request/response latency
# (sockperf ping-pong, UDP and TCP, client and server pinned to the same CPU with taskset) for
#   - two Membrane pods (bin/membrane-cni + agent in a node namespace: eBPF, bpf_redirect_peer),
#   - two pods of the reference bridge plugin (+ host-local) in a node namespace of its own,
#   - loopback: both ends in one namespace (the floor: no veth, no forwarding),
# in the same run. One markdown table, also written to bench/results/pod-network.md.
#   bench/pod-network.sh                 5 s per measurement, throughput median of 3 runs
#   SECONDS_PER_RUN=10 RUNS=5 bench/pod-network.sh
#   AGENT_ARGS="--pod-gso-max-size 65536" bench/pod-network.sh    Membrane without BIG TCP
# Everything carries the prefix mbpn<4 hex> and is removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${SECONDS_PER_RUN:-5}
runs=${RUNS:-3}
source bench/lib/lab.sh
for f in bin/membrane bin/membrane-cni; do [[ -x $f ]] || { echo "failed to find $f: run make build" >&2; exit 1; }; done
for f in $bridge_dir/bridge $bridge_dir/host-local "$(command -v iperf3 || true)" "$(command -v sockperf || true)"; do
    [[ -n $f && -x $f ]] || { echo "failed to find bridge, host-local, iperf3 or sockperf: make deps installs them" >&2; exit 1; }
done

lab_init mbpn

# --- Membrane node + 2 pods ---
start_agent "$p-m" "$socket" "$bpf_root" 198.18.0.0/24
mconf=$(printf '{"cniVersion":"1.1.0","name":"%s-membrane","type":"membrane","socket":"%s","mtu":1500}' "$p" "$socket")
for pod in ma mb; do ip netns add "$p-$pod"; done
cni membrane "$p-m" "$mconf" ADD "$p-ma" >/dev/null
mb_ip=$(cni membrane "$p-m" "$mconf" ADD "$p-mb")

# --- bridge node + 2 pods (198.19.0.0/24, inside the lab's 198.18.0.0/15) ---
ip netns add "$p-b"
ip -n "$p-b" link set lo up
bconf=$(printf '{"cniVersion":"1.0.0","name":"%s-bridge","type":"bridge","bridge":"%sbr","isGateway":true,"mtu":1500,"ipam":{"type":"host-local","ranges":[[{"subnet":"198.19.0.0/24"}]],"dataDir":"%s/host-local"}}' "$p" "$p" "$tmp")
for pod in ba bb; do ip netns add "$p-$pod"; done
cni bridge "$p-b" "$bconf" ADD "$p-ba" >/dev/null
bb_ip=$(cni bridge "$p-b" "$bconf" ADD "$p-bb")

# --- loopback: one namespace ---
ip netns add "$p-lo"
ip -n "$p-lo" link set lo up

# Sanity: each client reaches its server before anything is measured.
ip netns exec "$p-ma" ping -c 1 -W 2 "$mb_ip" >/dev/null || { echo "failed to reach $mb_ip from a Membrane pod" >&2; exit 1; }
ip netns exec "$p-ba" ping -c 1 -W 2 "$bb_ip" >/dev/null || { echo "failed to reach $bb_ip from a bridge pod" >&2; exit 1; }

# throughput CLIENT_NS SERVER_NS IP: median Gbit/s of $runs iperf3 runs of $secs s, one stream.
throughput() {
    local cns=$1 sns=$2 ip=$3 i out
    local results=()
    start_server "$sns" iperf3 -s -B "$ip" -p 15201
    for ((i = 0; i < runs; i++)); do
        out=$(timeout $((secs + 20)) ip netns exec "$cns" iperf3 -c "$ip" -p 15201 -t "$secs" -P 1 -J) ||
            { stop_server; echo "failed to run iperf3 to $ip: $(tail -5 "$tmp/server.log")" >&2; exit 1; }
        results+=("$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])')")
    done
    stop_server
    printf '%s\n' "${results[@]}" | sort -g | awk '{v[NR]=$1} END {printf "%.2f", v[int((NR+1)/2)]/1e9}'
}

echo "pod-network: iperf3 ${runs}x${secs}s and sockperf ${secs}s per setup ($(nproc) CPUs)" >&2
declare -A tput udp tcp
for setup in membrane bridge loopback; do
    case $setup in
        membrane) c=$p-ma s=$p-mb ip=$mb_ip ;;
        bridge) c=$p-ba s=$p-bb ip=$bb_ip ;;
        loopback) c=$p-lo s=$p-lo ip=127.0.0.1 ;;
    esac
    tput[$setup]=$(throughput "$c" "$s" "$ip")
    udp[$setup]=$(latency "$c" "$s" "$ip" udp)
    tcp[$setup]=$(latency "$c" "$s" "$ip" tcp)
    echo "  $setup: ${tput[$setup]} Gbit/s, udp p50/p99 ${udp[$setup]} µs, tcp p50/p99 ${tcp[$setup]} µs" >&2
done

row() {
    local name=$1 k=$2
    read -r u50 u99 <<<"${udp[$k]}"
    read -r t50 t99 <<<"${tcp[$k]}"
    printf '| %s | %s Gbit/s | %s µs | %s µs | %s µs | %s µs |\n' "$name" "${tput[$k]}" "$u50" "$u99" "$t50" "$t99"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
table=$(
    printf '| pod to pod | TCP throughput (iperf3, 1 stream, median of %d × %d s) | UDP RR p50 | UDP RR p99 | TCP RR p50 | TCP RR p99 |\n' "$runs" "$secs"
    printf '|---|---|---|---|---|---|\n'
    row "Membrane (eBPF, bpf_redirect_peer)" membrane
    row "reference bridge + host-local v1.1.1" bridge
    row "loopback (one namespace)" loopback
    printf '| Membrane / bridge | %s× | %s× | | %s× | |\n' "$(ratio "${tput[membrane]}" "${tput[bridge]}")" \
        "$(ratio "${udp[membrane]%% *}" "${udp[bridge]%% *}")" "$(ratio "${tcp[membrane]%% *}" "${tcp[bridge]%% *}")"
)
mkdir -p bench/results
echo "$table" | tee bench/results/pod-network.md

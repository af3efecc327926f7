#!/usr/bin/env bash
# Pod-to-pod latency with 10,000 policy rules in force, against the reference bridge plugin
# with 10,000 iptables rules in the FORWARD path, in the same run (issue 6):
#   - Membrane: a client and a server pod (bin/membrane-cni + agent); a CiliumNetworkPolicy
#     selects the server with RULES ingress rules (client -> port 20000+i/TCP) plus the one that
#     allows the measured port; the kernel's entries for the server are counted back.
#   - bridge: the reference bridge plugin, client and server on two bridges of one node
#     namespace so that their packets are routed through its FORWARD chain, which holds RULES
#     rules that do not match and then the ACCEPT of the measured port (policy DROP), loaded with
#     iptables-restore. Two variants: every packet walks the rules ("no conntrack shortcut"),
#     and the usual "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT" first, so only a
#     connection's first packet walks them.
# Measured: sockperf ping-pong UDP and TCP (p50/p99, one connection, both ends on CPU 0) and
# a new TCP connection per request (connect, 1-byte request, response, close; p50/p99 of
# CONNECTIONS, Python client: the same overhead in every row), which is where policy is judged.
#   bench/policy-latency.sh               RULES=10000, 5 s per sockperf run, 2000 connections
#   RULES=1000 SECONDS_PER_RUN=2 CONNECTIONS=500 bench/policy-latency.sh
# Writes bench/results/policy-latency.md. Everything carries the prefix mbpl<4 hex> and is
# removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${SECONDS_PER_RUN:-5}
rules=${RULES:-10000}
connections=${CONNECTIONS:-2000}
python=/usr/bin/python3
source bench/lib/lab.sh
for f in bin/membrane bin/membrane-cni $bridge_dir/bridge $bridge_dir/host-local; do [[ -x $f ]] || { echo "failed to find $f: run make deps build" >&2; exit 1; }; done
for t in sockperf iptables-restore taskset $python; do command -v "$t" >/dev/null || { echo "failed to find $t: make deps installs it" >&2; exit 1; }; done
((rules >= 1 && rules <= 40000)) || { echo "failed to run: RULES must be 1..40000" >&2; exit 2; }

lab_init mbpl

# --- Membrane: node, client and server pods, RULES + 1 rules ---
start_agent "$p-m" "$socket" "$bpf_root" 198.18.0.0/24
for pod in mc ms; do ip netns add "$p-$pod"; done
mconf() { printf '{"cniVersion":"1.1.0","name":"%s-membrane","type":"membrane","socket":"%s","mtu":1500,"args":{"cni":{"labels":[{"key":"app","value":"%s"}]}}}' "$p" "$socket" "$1"; }
cni membrane "$p-m" "$(mconf client)" ADD "$p-mc" >/dev/null
ms_ip=$(cni membrane "$p-m" "$(mconf server)" ADD "$p-ms")
{
    printf 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: server\n  namespace: bench\nspecs:\n'
    rule() { printf -- '- endpointSelector: {matchLabels: {app: server}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: client}}]\n    toPorts: [{ports: [{port: "%s", protocol: %s}]}]\n' "$1" "$2"; }
    rule 11111 TCP
    rule 11111 UDP
    rule 12345 TCP
    for ((i = 0; i < rules; i++)); do rule $((20000 + i)) TCP; done
} >"$tmp/policy.yaml"
echo "policy-latency: importing $((rules + 3)) rules" >&2
bin/membrane --socket "$socket" policy import "$tmp/policy.yaml" >/dev/null
server_id=$(bin/membrane --socket "$socket" endpoint list -o json | $python -c 'import json,sys; print(next(e["id"] for e in json.load(sys.stdin) if e["podName"].endswith("-ms")))')
entries=$(bin/membrane --socket "$socket" bpf policy get "$server_id" -o json | $python -c 'import json,sys; print(len(json.load(sys.stdin)["entries"]))')
((entries >= rules)) || { echo "failed to find the rules in the kernel: $entries entries for the server" >&2; exit 1; }

# --- bridge: node with two bridges (routed through FORWARD), client and server ---
ip netns add "$p-b"
ip -n "$p-b" link set lo up
bconf() { printf '{"cniVersion":"1.0.0","name":"%s-%s","type":"bridge","bridge":"%s%s","isDefaultGateway":true,"mtu":1500,"ipam":{"type":"host-local","ranges":[[{"subnet":"%s"}]],"dataDir":"%s/host-local"}}' "$p" "$1" "$p" "$1" "$2" "$tmp"; }
for pod in bc bs; do ip netns add "$p-$pod"; done
cni bridge "$p-b" "$(bconf c 198.19.0.0/24)" ADD "$p-bc" >/dev/null
bs_ip=$(cni bridge "$p-b" "$(bconf s 198.19.1.0/24)" ADD "$p-bs")
ip netns exec "$p-b" sysctl -qw net.ipv4.ip_forward=1

# forward_rules SHORTCUT: the node's FORWARD chain, RULES non-matching rules then the measured ports.
forward_rules() {
    {
        echo '*filter'
        echo ':INPUT ACCEPT [0:0]'
        echo ':FORWARD DROP [0:0]'
        echo ':OUTPUT ACCEPT [0:0]'
        [[ $1 == shortcut ]] && echo '-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
        for ((i = 0; i < rules; i++)); do echo "-A FORWARD -s 198.19.0.0/24 -d $bs_ip/32 -p tcp --dport $((20000 + i)) -j ACCEPT"; done
        echo "-A FORWARD -d $bs_ip/32 -p tcp -m multiport --dports 11111,12345 -j ACCEPT"
        echo "-A FORWARD -d $bs_ip/32 -p udp --dport 11111 -j ACCEPT"
        echo "-A FORWARD -s $bs_ip/32 -j ACCEPT"
        echo 'COMMIT'
    } | ip netns exec "$p-b" iptables-restore
}

ip netns exec "$p-mc" ping -c 1 -W 2 "$ms_ip" >/dev/null 2>&1 || true # ICMP is not allowed: only routes are warmed
forward_rules walk
ip netns exec "$p-bc" ping -c 1 -W 2 "$bs_ip" >/dev/null 2>&1 || true

# crr CLIENT_NS SERVER_NS IP: CONNECTIONS new TCP connections (1-byte request and response); "p50 p99" µs.
crr() {
    local cns=$1 sns=$2 ip=$3 out
    start_server "$sns" taskset -c 1 $python -c 'import socket, sys
s = socket.create_server((sys.argv[1], 12345), backlog=128)
while True:
    c, _ = s.accept(); c.sendall(c.recv(1)); c.close()' "$ip"
    out=$(ip netns exec "$cns" taskset -c 0 $python -c 'import socket, sys, time
ip, n = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(n):
    t = time.perf_counter_ns()
    c = socket.create_connection((ip, 12345), timeout=2)
    c.sendall(b"x"); c.recv(1); c.close()
    times.append((time.perf_counter_ns() - t) / 1000)
times.sort()
print(f"{times[len(times) // 2]:.1f} {times[int(len(times) * 0.99)]:.1f}")' "$ip" "$connections") ||
        { stop_server; echo "failed to run connections to $ip: $(tail -3 "$tmp/server.log")" >&2; exit 1; }
    stop_server
    echo "$out"
}

echo "policy-latency: $rules rules, sockperf ${secs}s, $connections connections per setup ($(nproc) CPUs)" >&2
declare -A udp tcp conn
measure() {
    local name=$1 c=$2 s=$3 ip=$4
    udp[$name]=$(latency "$c" "$s" "$ip" udp)
    tcp[$name]=$(latency "$c" "$s" "$ip" tcp)
    conn[$name]=$(crr "$c" "$s" "$ip")
    echo "  $name: udp ${udp[$name]}, tcp ${tcp[$name]}, new connection ${conn[$name]} µs (p50 p99)" >&2
}
measure membrane "$p-mc" "$p-ms" "$ms_ip"
measure walk "$p-bc" "$p-bs" "$bs_ip"
forward_rules shortcut
measure shortcut "$p-bc" "$p-bs" "$bs_ip"

row() {
    local name=$1 k=$2
    read -r u50 u99 <<<"${udp[$k]}"
    read -r t50 t99 <<<"${tcp[$k]}"
    read -r c50 c99 <<<"${conn[$k]}"
    printf '| %s | %s / %s µs | %s / %s µs | %s / %s µs |\n' "$name" "$u50" "$u99" "$t50" "$t99" "$c50" "$c99"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
table=$(
    printf '| %s rules in force | UDP RR p50 / p99 | TCP RR p50 / p99 | new TCP connection p50 / p99 |\n' "$rules"
    printf '|---|---|---|---|\n'
    row "Membrane ($entries kernel policy entries for the server)" membrane
    row "bridge, $rules iptables FORWARD rules walked by every packet" walk
    row "bridge, the same rules behind an ESTABLISHED accept" shortcut
    printf '| Membrane / bridge (walked) | %s× | %s× | %s× |\n' "$(ratio "${udp[membrane]%% *}" "${udp[walk]%% *}")" \
        "$(ratio "${tcp[membrane]%% *}" "${tcp[walk]%% *}")" "$(ratio "${conn[membrane]%% *}" "${conn[walk]%% *}")"
    printf '| Membrane / bridge (ESTABLISHED first) | %s× | %s× | %s× |\n' "$(ratio "${udp[membrane]%% *}" "${udp[shortcut]%% *}")" \
        "$(ratio "${tcp[membrane]%% *}" "${tcp[shortcut]%% *}")" "$(ratio "${conn[membrane]%% *}" "${conn[shortcut]%% *}")"
)
mkdir -p bench/results
echo "$table" | tee bench/results/policy-latency.md

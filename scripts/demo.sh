#!/usr/bin/env bash
# The local demo: a node (a network namespace, never this machine's own), the Membrane agent
# in it, and three pods (namespaces) wired by the real CNI plugin with labels app=web,
# app=api and app=db. Shows the endpoints, pod-to-pod traffic through the eBPF datapath and
# its counters, then removes everything. `scripts/demo.sh --clean` removes what a killed
# demo left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=mbdemo
state=$root/.demo
socket=$state/membrane.sock
bpf_root=/sys/fs/bpf/$demo
node=$demo-node
pods=(web api db)
config() {
    printf '{"cniVersion":"1.1.0","name":"membrane-demo","type":"membrane","socket":"%s","mtu":1500%s}' "$socket" "${1:-}"
}

cni() { # cni COMMAND POD [config-extra]
    echo "$(config "${3:-}")" | CNI_COMMAND=$1 CNI_CONTAINERID=$demo-$2 CNI_NETNS=/run/netns/$demo-$2 CNI_IFNAME=eth0 \
        CNI_PATH=$root/bin CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$2" "$root/bin/membrane-cni"
}

cleanup() {
    set +e
    if [[ -S $socket ]]; then
        for pod in "${pods[@]}"; do cni DEL "$pod" >/dev/null 2>&1; done
    fi
    if [[ -f $state/agent.pid ]]; then
        pid=$(cat "$state/agent.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    for pod in "${pods[@]}"; do ip netns del "$demo-$pod" 2>/dev/null; done
    ip netns del "$node" 2>/dev/null
    rm -rf "$bpf_root" "$state"
}

if [[ ${1:-} == --clean ]]; then
    cleanup
    echo "demo: cleaned"
    exit 0
fi

cleanup # whatever an earlier, killed demo left
trap cleanup EXIT
mkdir -p "$state"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a node: network namespace $node, agent with pod CIDRs 198.18.0.0/24 and fd00:198:18::/64"
ip netns add "$node"
ip -n "$node" link set lo up
# nsenter switches only the network namespace, so the agent's pins land in the machine's bpffs.
nsenter --net="/run/netns/$node" "$root/bin/membrane" agent --state-dir "$state/agent" --socket "$socket" \
    --pod-cidr 198.18.0.0/24,fd00:198:18::/64 --node-name "$demo" --bpf-root "$bpf_root" \
    --metrics-listen 127.0.0.1:9962 2>"$state/agent.log" &
echo $! >"$state/agent.pid"
for _ in $(seq 100); do
    bin/membrane --socket "$socket" status >/dev/null 2>&1 && break
    sleep 0.1
done
bin/membrane --socket "$socket" status

step "three pods through the CNI plugin (bin/membrane-cni ADD)"
for pod in "${pods[@]}"; do
    ip netns add "$demo-$pod"
    result=$(cni ADD "$pod" ",\"args\":{\"cni\":{\"labels\":[{\"key\":\"app\",\"value\":\"$pod\"}]}}")
    printf '%-4s %s\n' "$pod" "$(echo "$result" | tr -d ' \n' | grep -o '"ips":\[[^]]*\]')"
done

step "membrane endpoint list"
bin/membrane --socket "$socket" endpoint list

step "pod-to-pod traffic (through the from_pod eBPF program and bpf_redirect_peer)"
addr() { bin/membrane --socket "$socket" endpoint list -o json | python3 -c "import json,sys; print(next(e['$2'] for e in json.load(sys.stdin) if e['podName']=='$1'))"; }
for src in web api; do
    for dst in api db; do
        [[ $src == "$dst" ]] && continue
        for family in ipv4 ipv6; do
            to=$(addr "$dst" "$family")
            if ip netns exec "$demo-$src" ping -c 2 -i 0.2 -W 1 "$to" >/dev/null 2>&1; then verdict=ok; else verdict=FAILED; fi
            printf '%-4s -> %-4s %-16s %s\n' "$src" "$dst" "$to" "$verdict"
        done
    done
done

step "a TCP connection web -> db:5432, then the datapath's connection tracking table"
ip netns exec "$demo-db" python3 -c 'import socket; s = socket.create_server(("", 5432)); c, _ = s.accept(); c.sendall(c.recv(100)); c.close()' &
server=$!
sleep 0.5
ip netns exec "$demo-web" python3 -c 'import socket, sys; c = socket.create_connection((sys.argv[1], 5432), timeout=5); c.sendall(b"hello db"); print("web <- db:", c.recv(100).decode()); c.close()' "$(addr db ipv4)" || echo "web -> db:5432 FAILED"
wait "$server" 2>/dev/null || true
bin/membrane --socket "$socket" bpf ct list

step "network policy: only api may reach db, on 5432/TCP (membrane policy import)"
cat >"$state/db-policy.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: db-from-api
  namespace: demo
spec:
  endpointSelector:
    matchLabels:
      app: db
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: api
      toPorts:
        - ports:
            - port: "5432"
              protocol: TCP
YAML
cat "$state/db-policy.yaml"
bin/membrane --socket "$socket" policy import "$state/db-policy.yaml"
# db accepts two connections (or gives up after 6 s); each client tries for 2 s.
ip netns exec "$demo-db" python3 -c 'import socket
s = socket.create_server(("", 5432)); s.settimeout(6)
for _ in range(2):
    try:
        c, _ = s.accept(); c.sendall(c.recv(100)); c.close()
    except socket.timeout:
        break' &
server=$!
sleep 0.5
for src in api web; do
    if ip netns exec "$demo-$src" python3 -c 'import socket, sys; c = socket.create_connection((sys.argv[1], 5432), timeout=2); c.sendall(b"x"); c.recv(1)' "$(addr db ipv4)" 2>/dev/null; then
        verdict="connected (allowed by db-from-api)"
    else
        verdict="no connection (dropped: policy-denied)"
    fi
    printf '%-4s -> db:5432  %s\n' "$src" "$verdict"
done
wait "$server" 2>/dev/null || true
if ip netns exec "$demo-web" ping -c 1 -W 1 "$(addr api ipv4)" >/dev/null 2>&1; then echo "web  -> api (ping)  ok: no policy selects api"; else echo "web  -> api (ping)  FAILED"; fi
db_id=$(bin/membrane --socket "$socket" endpoint list -o json | python3 -c "import json,sys; print(next(e['id'] for e in json.load(sys.stdin) if e['podName']=='db'))")
echo; echo "\$ membrane bpf policy get $db_id    (the kernel's entries for db)"
bin/membrane --socket "$socket" bpf policy get "$db_id"

step "a spoofed source address from web is dropped by the datapath"
ip netns exec "$demo-web" ip addr add 198.18.0.250/32 dev eth0
if ip netns exec "$demo-web" ping -c 2 -i 0.2 -W 1 -I 198.18.0.250 "$(addr db ipv4)" >/dev/null 2>&1; then echo "web (spoofed 198.18.0.250) -> db: delivered?!"; else echo "web (spoofed 198.18.0.250) -> db: dropped"; fi

step "flows: what the datapath saw, like hubble observe (membrane observe)"
echo "\$ membrane observe --to-pod db --type policy-verdict --type drop --last 6"
bin/membrane --socket "$socket" observe --to-pod db --type policy-verdict --type drop --last 6 --no-color
echo; echo "\$ membrane observe --verdict DROPPED --from-pod web --last 1 -o json    (Hubble's field names)"
bin/membrane --socket "$socket" observe --verdict DROPPED --from-pod web --last 1 -o json
echo; echo "\$ membrane observe --pod db --last 20 --write $state/db.pcapng    (then tshark reads the comments)"
bin/membrane --socket "$socket" observe --pod db --last 20 -o table --write "$state/db.pcapng"
# One address column each for source and destination, IPv4 or IPv6.
tshark -r "$state/db.pcapng" -T fields -e frame.number -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst -e frame.comment -E occurrence=f 2>/dev/null \
    | awk -F'\t' -v OFS='\t' '{ print $1, $2 $3, $4 $5, $6 }' | head -6

step "membrane bpf metrics, and the same counters for Prometheus (--metrics-listen 127.0.0.1:9962)"
bin/membrane --socket "$socket" bpf metrics
echo; echo "\$ curl http://127.0.0.1:9962/metrics | grep drop_count    (inside the node's namespace)"
ip netns exec "$node" python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9962/metrics").read().decode())' | grep '^membrane_drop_count_total' || echo "metrics endpoint FAILED"

step "cleaning up (CNI DEL, agent stop, namespaces)"

#!/usr/bin/env bash
# Policy import to enforcement: the wall time of `membrane policy import FILE -o json` for
# CiliumNetworkPolicy files of 1, 100 and 1,000 rules in total, against a real agent in a node
# namespace (nsenter --net) with 10 real pods made by bin/membrane-cni (labels app=pod0..pod9,
# namespace bench). The agent answers an import after the store commit and the kernel writes,
# so the CLI's return is the moment the kernel enforces; the script fails unless the answer
# says "applied": true. Per size: a fresh import (after `policy delete --all`) and a re-import
# of the same file, REPS times each, median and p90 (nearest rank); the same request POSTed
# with curl straight to the agent's socket gives the agent's share without the CLI's start-up;
# the kernel entries are read back (`bpf policy get ID -o json`, summed over the pods); one
# allowed and one denied TCP connection prove enforcement.
#   bench/policy-import.sh              prints one markdown table, writes bench/results/policy-import.md
#   REPS=5 bench/policy-import.sh       fewer repetitions (default 9)
#   SIZES="1 100" bench/policy-import.sh
#   KEEP_LOG=/tmp/agent.log bench/policy-import.sh    keeps the agent's log (its per-request times)
# Everything carries the prefix mbpi<4 hex> and is removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
reps=${REPS:-9}
sizes=${SIZES:-"1 100 1000"}
npods=10
python=/usr/bin/python3
for f in bin/membrane bin/membrane-cni; do [[ -x $f ]] || { echo "failed to find $f: run make build" >&2; exit 1; }; done
for t in jq curl $python; do command -v "$t" >/dev/null || { echo "failed to find $t: make deps" >&2; exit 1; }; done
((reps >= 1 && reps <= 100)) || { echo "failed to run: REPS must be 1..100" >&2; exit 2; }

p=mbpi$(printf '%04x' $((RANDOM % 65536)))
tmp=/tmp/$p
node=$p-node
socket=$tmp/membrane.sock
bpf_root=/sys/fs/bpf/$p
agent_pid=
server_pid=

cleanup() {
    set +e
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; wait "$server_pid" 2>/dev/null; fi
    if [[ -n $agent_pid ]] && kill -0 "$agent_pid" 2>/dev/null; then
        kill -TERM "$agent_pid"
        for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
    fi
    # Pod namespaces first (their veths go with them), then the node namespace.
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-"); do ip netns del "$ns"; done
    if [[ -n ${KEEP_LOG:-} && -f $tmp/agent.log ]]; then cp "$tmp/agent.log" "$KEEP_LOG"; fi
    rm -rf "$bpf_root" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp"
fail() { echo "policy-import: $*" >&2; exit 1; }
mb() { "$root/bin/membrane" --socket "$socket" "$@"; }

# --- the node: a namespace and the agent in it ---
ip netns add "$node"
ip -n "$node" link set lo up
# nsenter switches only the network namespace: the agent's pins land in the machine's bpffs.
nsenter --net="/run/netns/$node" "$root/bin/membrane" agent --state-dir "$tmp/agent" --socket "$socket" \
    --pod-cidr 198.18.0.0/24 --node-name "$p" --bpf-root "$bpf_root" 2>"$tmp/agent.log" &
agent_pid=$!
for _ in $(seq 100); do mb status >/dev/null 2>&1 && break; sleep 0.1; done
mb status >/dev/null || { cat "$tmp/agent.log" >&2; fail "failed to start the agent"; }

# --- the pods: bin/membrane-cni ADD from inside the node, labels app=podN, namespace bench ---
for ((i = 0; i < npods; i++)); do
    pod=$p-pod$i
    ip netns add "$pod"
    conf=$(printf '{"cniVersion":"1.1.0","name":"%s","type":"membrane","socket":"%s","mtu":1500,"args":{"cni":{"labels":[{"key":"app","value":"pod%d"}]}}}' "$p" "$socket" "$i")
    echo "$conf" | CNI_COMMAND=ADD CNI_CONTAINERID=$pod CNI_NETNS=/run/netns/$pod CNI_IFNAME=eth0 CNI_PATH=$root/bin \
        CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod$i" timeout 30 \
        nsenter --net="/run/netns/$node" "$root/bin/membrane-cni" >"$tmp/cni-$i.json" || fail "failed to add pod $pod: $(cat "$tmp/cni-$i.json")"
done
mb endpoint list -o json >"$tmp/endpoints.json"
endpoint_ids=$(jq -r --arg p "$p" '.[] | select(.containerId | startswith($p)) | .id' "$tmp/endpoints.json")
[[ $(wc -w <<<"$endpoint_ids") -eq $npods ]] || fail "failed to find the $npods endpoints: $(cat "$tmp/endpoints.json")"
ipv4() { jq -r --arg n "pod$1" '.[] | select(.podName == $n) | .ipv4' "$tmp/endpoints.json"; }

# --- the policies: R rules in total over min(R, 10) CiliumNetworkPolicies ---
# Policy i selects app=pod<i>; its rule k admits, on TCP port 20000+k (distinct within the
# policy), app=pod<i+1+k mod 9> (even k, matchLabels: one peer identity) or the two pods
# pod<i+1+k mod 9>, pod<i+2+k mod 9> (odd k, matchExpressions In: two peer identities), so a
# rule resolves to one or two kernel entries and the entries grow with the rules. The check
# line names the last rule of the last policy: its destination, an allowed source, a source no
# rule of that policy admits on that port, and the port.
generate() { # generate RULES FILE CHECKFILE
    "$python" - "$1" "$2" "$3" "$npods" <<'PY'
import sys
rules, path, check_path, npods = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
policies = min(rules, npods)
per, extra = divmod(rules, policies)
docs = []
for i in range(policies):
    n = per + (1 if i < extra else 0)
    lines = [
        "apiVersion: cilium.io/v2",
        "kind: CiliumNetworkPolicy",
        "metadata:",
        f"  name: bench-{rules}-p{i}",
        "  namespace: bench",
        "spec:",
        "  endpointSelector:",
        "    matchLabels:",
        f"      app: pod{i}",
        "  ingress:",
    ]
    for k in range(n):
        a = (i + 1 + k % 9) % npods
        b = (i + 2 + k % 9) % npods
        if k % 2 == 0:
            peers = [a]
            lines += ["    - fromEndpoints:", "        - matchLabels:", f"            app: pod{a}"]
        else:
            peers = [a, b]
            lines += ["    - fromEndpoints:", "        - matchExpressions:", "            - key: app",
                      "              operator: In", f"              values: [pod{a}, pod{b}]"]
        lines += ["      toPorts:", "        - ports:", f'            - port: "{20000 + k}"', "              protocol: TCP"]
        last = (i, peers, 20000 + k)
    docs.append("\n".join(lines) + "\n")
with open(path, "w") as f:
    f.write("---\n".join(docs))
dst, peers, port = last
denied = next(j for j in range(npods) if j != dst and j not in peers)
with open(check_path, "w") as f:
    f.write(f"{dst} {peers[0]} {denied} {port}\n")
PY
}

# timed FILE CMD...: runs CMD, appends its wall time (µs, read by bash itself) to FILE, keeps
# its output in $out and fails unless the answer is a JSON object with "applied": true.
timed() {
    local file=$1 t0 t1
    shift
    t0=$EPOCHREALTIME
    out=$("$@") || fail "failed to import: $out"
    t1=$EPOCHREALTIME
    [[ $(jq -r '.applied' <<<"$out" 2>/dev/null) == true ]] || fail "failed to apply the import to the kernel (\"applied\" is not true): $out"
    echo $(( ${t1/./} - ${t0/./} )) >>"$file"
}
delete_all() {
    local answer
    answer=$(mb policy delete --all -o json) || fail "failed to delete the policies: $answer"
    [[ $(jq -r '.applied' <<<"$answer") == true ]] || fail "failed to apply the delete to the kernel: $answer"
}
post() { curl -sS --fail-with-body --unix-socket "$socket" -X POST -H 'Content-Type: application/json' --data-binary "@$1" http://membrane/v1/policies; }

# quantile FILE Q: the nearest-rank quantile of the µs values in FILE, in ms with 1 decimal.
quantile() { sort -n "$1" | awk -v q="$2" '{v[NR]=$1} END {r=int(q*NR+0.999999); if (r<1) r=1; printf "%.1f", v[r]/1000}'; }

# probe SRC DST PORT TIMEOUT: connected | timeout | error:...
probe() {
    ip netns exec "$p-pod$1" "$python" -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error:", e)' "$(ipv4 "$2")" "$3" "$4"
}

# check SIZE: sets $check_result; one connection the policy allows must connect, one it does not must be dropped
# (a timeout: the server is listening, so a refusal would mean the SYN got through).
check() {
    local dst allowed denied port a d
    read -r dst allowed denied port <"$tmp/check-$1"
    ip netns exec "$p-pod$dst" "$python" -c '
import socket, sys
s = socket.create_server(("", int(sys.argv[1]))); s.settimeout(10)
while True:
    c, _ = s.accept(); c.close()' "$port" 2>/dev/null &
    server_pid=$!
    for _ in $(seq 50); do ip netns exec "$p-pod$dst" ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.05; done
    a=$(probe "$allowed" "$dst" "$port" 2)
    d=$(probe "$denied" "$dst" "$port" 1)
    kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; server_pid=
    [[ $a == connected ]] || fail "$1 rules: pod$allowed -> pod$dst:$port/TCP should be allowed, got: $a"
    [[ $d == timeout ]] || fail "$1 rules: pod$denied -> pod$dst:$port/TCP should be dropped, got: $d"
    check_result="pod$allowed -> pod$dst:$port/TCP connected, pod$denied -> pod$dst:$port/TCP dropped"
}

for r in $sizes; do
    generate "$r" "$tmp/policy-$r.yaml" "$tmp/check-$r"
    jq -n --rawfile t "$tmp/policy-$r.yaml" --arg n "policy-$r.yaml" '{files: [{name: $n, text: $t}]}' >"$tmp/body-$r.json"
done

# One warm-up import of the largest file (the agent JITs its parser, resolver and map code on
# first use): reported, not counted.
largest=$(tr ' ' '\n' <<<"$sizes" | sort -n | tail -1)
timed "$tmp/cold" mb policy import "$tmp/policy-$largest.yaml" -o json
delete_all
echo "policy-import: $npods pods, sizes $sizes, $reps repetitions each ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2

declare -A entries rules checks
for r in $sizes; do
    f=$tmp/policy-$r.yaml
    # A fresh import: no policy before it, every entry is new.
    for ((k = 0; k < reps; k++)); do
        delete_all
        timed "$tmp/$r.fresh" mb policy import "$f" -o json
    done
    # A re-import of the same file: the policies are replaced by equal ones.
    for ((k = 0; k < reps; k++)); do timed "$tmp/$r.again" mb policy import "$f" -o json; done
    # The agent's share: the same requests without the CLI (curl on the unix socket).
    for ((k = 0; k < reps; k++)); do
        delete_all
        timed "$tmp/$r.fresh-curl" post "$tmp/body-$r.json"
    done
    for ((k = 0; k < reps; k++)); do timed "$tmp/$r.again-curl" post "$tmp/body-$r.json"; done
    rules[$r]=$(mb policy get -o json | jq '[.[].rules | length] | add')
    total=0
    for id in $endpoint_ids; do
        total=$((total + $(mb bpf policy get "$id" -o json | jq '[.entries[] | select(.rule != 0)] | length')))
    done
    entries[$r]=$total
    check "$r"
    checks[$r]=$check_result
    echo "policy-import: $r rules: ${rules[$r]} compiled, $total kernel entries; ${checks[$r]}" >&2
    delete_all
done

table=$(
    printf '| size | rules | kernel entries | import | median ms | p90 ms | agent only (curl) median ms | target met? |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    for r in $sizes; do
        for mode in fresh again; do
            med=$(quantile "$tmp/$r.$mode" 0.5)
            if ((r == 1000)); then
                met=$(awk -v m="$med" 'BEGIN {print (m <= 100) ? "yes (≤ 100 ms)" : "**no** (> 100 ms)"}')
            else
                met="–"
            fi
            label=$([[ $mode == fresh ]] && echo "fresh (after delete --all)" || echo "re-import (same file)")
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(printf "%'d" "$r")" "${rules[$r]}" "${entries[$r]}" "$label" \
                "$med" "$(quantile "$tmp/$r.$mode" 0.9)" "$(quantile "$tmp/$r.$mode-curl" 0.5)" "$met"
        done
    done
)
notes=$(
    printf '\n%d pods, %d repetitions a row; kernel entries: the policy rules'"'"' entries in the kernel maps summed over the pods (`bpf policy get`), without the allow-all of unenforced directions.\n' "$npods" "$reps"
    printf 'First import after the agent started (%s rules, cold: not counted): %s ms. CLI start-up alone (`membrane status`): see below.\n' "$largest" "$(quantile "$tmp/cold" 0.5)"
    for r in $sizes; do printf -- '- %s rules: %s\n' "$r" "${checks[$r]}"; done
)
# Where the time goes, for the largest file: the CLI's start-up (`membrane status`: a request
# that does no work), the HTTP round trip (curl GET /v1/status) and the agent's parse alone (the
# same file with one more, invalid, document: read, parsed and validated whole, then refused).
for ((k = 0; k < reps; k++)); do
    t0=$EPOCHREALTIME; mb status >/dev/null; t1=$EPOCHREALTIME; echo $(( ${t1/./} - ${t0/./} )) >>"$tmp/status"
    t0=$EPOCHREALTIME; curl -sS --unix-socket "$socket" http://membrane/v1/status >/dev/null; t1=$EPOCHREALTIME
    echo $(( ${t1/./} - ${t0/./} )) >>"$tmp/status-curl"
done
{ cat "$tmp/policy-$largest.yaml"; printf -- '---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: invalid\n  namespace: bench\nspec:\n  endpointSelector: {}\n  ingress:\n    - toPorts:\n        - ports:\n            - port: "80800"\n'; } >"$tmp/invalid.yaml"
jq -n --rawfile t "$tmp/invalid.yaml" '{files: [{name: "invalid.yaml", text: $t}]}' >"$tmp/body-invalid.json"
for ((k = 0; k < reps + 3; k++)); do # 3 warm-ups: the refusal path is cold
    t0=$EPOCHREALTIME
    answer=$(curl -sS --unix-socket "$socket" -X POST -H 'Content-Type: application/json' --data-binary "@$tmp/body-invalid.json" http://membrane/v1/policies)
    t1=$EPOCHREALTIME
    [[ $(jq -r '.code' <<<"$answer") == 102 ]] || fail "failed to get the invalid import refused: $answer"
    ((k < 3)) || echo $(( ${t1/./} - ${t0/./} )) >>"$tmp/refused"
done
notes=${notes/see below/$(quantile "$tmp/status" 0.5) ms median}
notes+=$(printf '\nAgent phases, %s rules (curl medians): HTTP round trip alone (GET /v1/status) %s ms; the same file with one invalid document more, read, parsed, validated and refused (nothing stored or resolved) %s ms.' \
    "$largest" "$(quantile "$tmp/status-curl" 0.5)" "$(quantile "$tmp/refused" 0.5)")
mkdir -p bench/results
printf '%s\n%s\n' "$table" "$notes" | tee bench/results/policy-import.md

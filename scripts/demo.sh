#!/usr/bin/env bash
# The local demo. Until the agent exists it generates a small capture of container
# traffic (scapy) and runs the pcap analyzer on it.
set -euo pipefail
cd "$(dirname "$0")/.."
demo_dir=.demo
if [[ ${1:-} == --clean ]]; then
    rm -rf "$demo_dir"
    echo "demo: cleaned"
    exit 0
fi
mkdir -p "$demo_dir"
pcap=$demo_dir/mix.pcap
echo "demo: generating 2,000 packets of container traffic into $pcap"
/usr/bin/python3 scripts/gen_demo_capture.py 2000 "$pcap"
echo
echo "== membrane pcap stats $pcap"
bin/membrane pcap stats "$pcap"
echo
echo "== membrane pcap decode $pcap --count 3"
bin/membrane pcap decode "$pcap" --count 3
echo
echo "== membrane seed demo"
bin/membrane seed demo

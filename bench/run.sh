#!/usr/bin/env bash
# Runs Membrane's benchmarks and writes their tables to bench/results/.
#   bench/run.sh            everything
#   bench/run.sh packets    the packet library against PacketDotNet (BenchmarkDotNet)
#   bench/run.sh cni        CNI plugin start-up (NativeAOT vs JIT)
#   bench/run.sh datapath   BPF_PROG_TEST_RUN, map operations, ring buffer (needs root)
#   bench/run.sh policy     policy import of 1, 100, 1,000 rules to enforcement, and pod-to-pod latency with
#                           10,000 rules against bridge + 10,000 iptables rules; real agent and pods (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
results=$root/bench/results
mkdir -p "$results"
what=${1:-all}

capture() {
    # The 1M-packet container mix (../shared/tools/gen_mix.py), made once and kept outside the repo.
    local pcap=${MEMBRANE_BENCH_PCAP:-/tmp/membrane-bench/mix.pcap}
    if [[ ! -s $pcap ]]; then
        mkdir -p "$(dirname "$pcap")"
        local gen=$root/../shared/tools/gen_mix.py
        if [[ -f $gen ]]; then
            echo "bench: generating 1,000,000 packets with gen_mix.py (about 30 s)" >&2
            /usr/bin/python3 "$gen" 1000000 40000 "$pcap" >&2
        else
            echo "bench: gen_mix.py not found; generating 200,000 packets with scripts/gen_demo_capture.py" >&2
            /usr/bin/python3 scripts/gen_demo_capture.py 200000 "$pcap" >&2
        fi
    fi
    echo "$pcap"
}

packets() {
    MEMBRANE_BENCH_PCAP=$(capture) dotnet run -c Release --project bench/Membrane.Benchmarks -- \
        --filter '*PacketBenchmarks*' --exporters github --artifacts "$results/bdn" "$@"
    cp "$results"/bdn/results/*-report-github.md "$results/" 2>/dev/null || true
}

cni() {
    bash bench/cni-startup.sh | tee "$results/cni-startup.md"
}

datapath() {
    dotnet run -c Release --project bench/Membrane.Benchmarks -- datapath | tee "$results/datapath.md"
}

policy() {
    # Write bench/results/policy-import.md and policy-latency.md themselves.
    bash bench/policy-import.sh
    bash bench/policy-latency.sh
}

case $what in
    packets) packets ;;
    cni) cni ;;
    datapath) datapath ;;
    policy) policy ;;
    all) packets; cni; datapath; policy ;;
    *) echo "usage: bench/run.sh [packets|cni|datapath|policy|all]" >&2; exit 2 ;;
esac

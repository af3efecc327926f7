#!/usr/bin/env bash
# CNI plugin start-up: 200 VERSION calls of the NativeAOT binary (bin/membrane-cni) against the
# same plugin started by the JIT (the framework-dependent build), same run. Prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-200}
aot=bin/membrane-cni
jit=src/Membrane.Cni/bin/Release/net10.0/membrane-cni
for f in "$aot" "$jit"; do [[ -x $f ]] || { echo "missing $f: run make build" >&2; exit 1; }; done
time_it() {
    local start end
    start=$(date +%s%N)
    for ((i = 0; i < n; i++)); do echo '{"cniVersion":"1.1.0"}' | CNI_COMMAND=VERSION "$1" >/dev/null; done
    end=$(date +%s%N)
    echo $(( (end - start) / n / 1000 ))
}
aot_us=$(time_it "$aot")
jit_us=$(time_it "$jit")
printf '| plugin build | size | VERSION call, mean of %d |\n|---|---|---|\n' "$n"
printf '| NativeAOT (bin/membrane-cni) | %s | %d.%03d ms |\n' "$(du -h "$aot" | cut -f1)" $((aot_us / 1000)) $((aot_us % 1000))
printf '| JIT, framework-dependent (+ the shared .NET runtime) | %s | %d.%03d ms |\n' "$(du -ch "$(dirname "$jit")"/*.dll | tail -1 | cut -f1)" $((jit_us / 1000)) $((jit_us % 1000))

#!/usr/bin/env bash
# Runs every test project, then prints one closing line summed over all of them:
# "N passed, N failed, N skipped".
set -uo pipefail
config=${1:-Release}
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for proj in tests/*.Tests/*.csproj; do
    echo "== $(basename "$proj" .csproj)"
    dotnet test "$proj" -c "$config" --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee -a "$log" \
        | grep -E '^\s+(Failed|Skipped) |Passed!|Failed!|error|Error Message|Assert|at Membrane' || true
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
done
# VSTest's per-assembly summary: "Passed!  - Failed:     0, Passed:    12, Skipped:     0, Total: ..."
read -r passed failed skipped < <(awk '
    /(Passed|Failed)! +- Failed:/ {
        gsub(",", ""); for (i = 1; i <= NF; i++) {
            if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1)
        }
    }
    END { print p+0, f+0, s+0 }' "$log")
if [[ $status -ne 0 && $failed -eq 0 ]]; then failed=1; fi  # a crashed test host counts as a failure
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

#!/usr/bin/env bash
# Runs every test project, one after the other (kernel tests must not overlap), then prints
# one closing line summed over all of them: "N passed, N failed, N skipped".
set -uo pipefail
config=${1:-Release}
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
passed=0 failed=0 skipped=0
for proj in tests/*.Tests/*.csproj; do
    name=$(basename "$proj" .csproj)
    start=$SECONDS
    dotnet test "$proj" -c "$config" --no-build -nologo --logger "console;verbosity=normal" >"$out" 2>&1
    code=$?
    # VSTest's summary at normal verbosity: "Total tests: N", "     Passed: N", "     Failed: N", "    Skipped: N".
    read -r p f s < <(awk '
        /^ +Passed: [0-9]+/ { p = $2 } /^ +Failed: [0-9]+/ { f = $2 } /^ +Skipped: [0-9]+/ { s = $2 }
        END { print p+0, f+0, s+0 }' "$out")
    if [[ $code -ne 0 && $f -eq 0 ]]; then
        f=1 # the run failed without a failed test: a crashed test host or a build problem
        tail -n 30 "$out"
    fi
    # Show what needs a reader: failures with their messages, and skips with their reasons.
    grep -E -A 12 '^\s+Failed [A-Za-z]' "$out" | grep -vE '^\s+at System\.' | head -n 200
    grep -E '^\s+Skipped [A-Za-z]' -A 2 "$out" | head -n 40
    printf '%-28s %4d passed, %d failed, %d skipped (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - start))
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    [[ $code -eq 0 ]] || status=1
done
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

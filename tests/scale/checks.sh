# checks.sh — sourced by the scale tests' scripts: KILN MODEL from their arguments, a temporary
# folder $tmp (removed on exit), `check DESCRIPTION COMMAND...` (one ok/FAIL line each) and
# `finish` (the "N passed, M failed" line; exit status 1 when any failed).
set -uo pipefail
kiln=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() {
    if "${@:2}"; then echo "ok   - $1"; passed=$((passed + 1)); else echo "FAIL - $1"; failed=$((failed + 1)); fi
}
finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

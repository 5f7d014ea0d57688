#!/bin/bash
# driver_cache.sh KILN MODEL — `kiln check --target cortex-m4` keeps the test driver's object in
# KILN_CACHE_DIR (compiled once per toolchain: compiler/emulate/driver_cache.c): the first check
# stores exactly one object, the second links it (the file is not rewritten), a damaged entry
# is replaced and the check still passes, and an empty KILN_CACHE_DIR stores nothing.
set -u
kiln=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

check() {   # check WHAT CONDITION-RESULT
    if [[ $2 == 0 ]]; then echo "ok   - $1"; passed=$((passed + 1))
    else echo "FAIL - $1"; failed=$((failed + 1)); fi
}
run_check() {   # run_check CACHE-DIR: kiln check passes on the model
    KILN_CACHE_DIR=$1 "$kiln" check "$model" --target cortex-m4 >"$tmp/log" 2>&1 &&
        tail -1 "$tmp/log" | grep -qx PASS
}

cache=$tmp/cache/kiln
run_check "$cache"; check "first check passes and creates the cache folder" $?
objects=("$cache"/driver-cortex-m4-*.o)
[[ ${#objects[@]} -eq 1 && -s ${objects[0]} ]]; check "one cached driver object" $?
object=${objects[0]}
touch -d '2000-01-01' "$object"
stamp=$(stat -c %Y "$object")
run_check "$cache"; check "second check passes" $?
[[ $(stat -c %Y "$object") -eq $stamp ]]; check "second check links the cached object without rewriting it" $?
echo "not an object" >"$object"
run_check "$cache"; check "a damaged cached object: the check still passes" $?
[[ $(head -c 4 "$object" | od -An -c | tr -d ' ') == 177ELF ]]; check "the damaged object was replaced by a good one" $?
run_check ""; check "KILN_CACHE_DIR empty: the check passes" $?
[[ $(find "$tmp" -name 'driver-*.o' | wc -l) -eq 1 ]]; check "KILN_CACHE_DIR empty: nothing stored" $?
echo "$passed passed, $failed failed"
((failed == 0))

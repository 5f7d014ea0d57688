#!/bin/bash
# nm_undefined.sh OBJECT... — a kiln-compiled object must be self-contained.
#
# runtime-min is linked into every object as bitcode, so the only symbols an object may leave
# for the linker to find are libc's memcpy and memset (which LLVM itself emits for copies and
# fills). Anything else (malloc, printf, expf, a runtime routine left undefined) would make the
# object unusable on bare-metal targets and break the "no runtime library" promise.
# Prints one line per object and "N passed, M failed"; exit status 1 if any failed.
set -u
allowed=" memcpy memset "
passed=0 failed=0
for object in "$@"; do
    name=$(basename "$object")
    if ! symbols=$(nm -u "$object" 2>&1); then
        echo "FAIL - $name: nm failed: $symbols"
        failed=$((failed + 1))
        continue
    fi
    # `nm -u` prints "                 U name"; keep the names.
    names=$(awk 'NF {print $NF}' <<<"$symbols" | sort -u | paste -sd' ' -)
    unexpected=""
    for symbol in $names; do
        [[ $allowed == *" $symbol "* ]] || unexpected+=" $symbol"
    done
    if [[ -z $unexpected ]]; then
        echo "ok   - $name: undefined symbols: ${names:-none}"
        passed=$((passed + 1))
    else
        echo "FAIL - $name: undefined symbols besides memcpy/memset:$unexpected"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]

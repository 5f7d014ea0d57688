#!/bin/bash
# check_object.sh OBJECT... — a kiln-compiled object is self-contained and holds no mutable state.
#
# 1. `nm -u`: runtime-min is linked into every object as bitcode, so the only symbols an object
#    may leave for the linker are libc's memcpy and memset (which LLVM emits for block copies
#    and fills). Anything else (malloc, printf, expf, a runtime routine left undefined) would
#    break the "no runtime library" promise and bare-metal targets.
# 2. writable sections: all mutable state lives in the caller's workspace (that is what makes
#    predict reentrant), so .data, .bss and every other writable section must be empty. The one
#    exception is .data.rel.ro*: the model table's pointers, written only by the dynamic loader
#    when relocating, read-only afterwards (RELRO).
# With --cuda first, the objects are CUDA models (codegen/cuda/host.c): they may also call the
# CUDA driver functions that load a module, look up and launch kernels, copy and wait, but no
# allocator (no malloc, no cuMemAlloc: device memory is the caller's).
# Prints one line per check and "N passed, M failed"; exit status 1 if any failed.
set -u
allowed_undefined=" memcpy memset "
if [[ ${1:-} == --cuda ]]; then
    shift
    allowed_undefined+="cuModuleLoadData cuModuleGetFunction cuModuleGetGlobal_v2 cuModuleUnload "
    allowed_undefined+="cuMemcpyHtoD_v2 cuMemcpyHtoDAsync_v2 cuMemcpyDtoHAsync_v2 cuLaunchKernel "
    allowed_undefined+="cuStreamSynchronize "
fi
passed=0 failed=0

pass() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }

check_undefined() {   # check_undefined OBJECT NAME
    local symbols names unexpected="" symbol
    if ! symbols=$(nm -u "$1" 2>&1); then
        fail "$2: nm failed: $symbols"
        return
    fi
    # `nm -u` prints "                 U name"; keep the names.
    names=$(awk 'NF {print $NF}' <<<"$symbols" | sort -u | paste -sd' ' -)
    for symbol in $names; do
        [[ $allowed_undefined == *" $symbol "* ]] || unexpected+=" $symbol"
    done
    if [[ -z $unexpected ]]; then
        pass "$2: undefined symbols: ${names:-none}"
    else
        fail "$2: undefined symbols besides the allowed ones:$unexpected"
    fi
}

check_writable() {   # check_writable OBJECT NAME
    local sections nonempty
    if ! sections=$(readelf -S -W "$1" 2>&1); then
        fail "$2: readelf failed: $sections"
        return
    fi
    # Section lines read "[Nr] Name Type Address Off Size ES Flg Lk Inf Al"; after the "]":
    # $1 name, $5 size (hex), $7 flags.
    nonempty=$(sed -n '/\]/s/^.*\] *//p' <<<"$sections" |
        awk '$7 ~ /W/ && $1 !~ /^\.data\.rel\.ro/ && $5 !~ /^0+$/ {printf " %s (0x%s bytes)", $1, $5}')
    if [[ -z $nonempty ]]; then
        pass "$2: no mutable data (.data/.bss empty)"
    else
        fail "$2: writable sections with contents:$nonempty"
    fi
}

for object in "$@"; do
    name=$(basename "$object")
    check_undefined "$object" "$name"
    check_writable "$object" "$name"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]

#!/bin/bash
# parts.sh KILN MODEL — a model of many kernels compiled in parts on several threads
# (codegen/llvm/parts.c): the parts' phase shows in --stats, the joined object holds every
# kernel once as a hidden symbol, keeps the x86 ISA-level note, and passes `kiln check`;
# KILN_PARTS=1 compiles one module.
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
have() { command -v "$1" >/dev/null; }
if ! have ld.bfd || ! have readelf; then
    echo "SKIP: ld.bfd and readelf (binutils) are needed"
    exit 77
fi

"$kiln" compile "$model" -o "$tmp/split.o" --name split --target x86-64-v4 --stats >"$tmp/split.txt"
KILN_PARTS=1 "$kiln" compile "$model" -o "$tmp/one.o" --name one --target x86-64-v4 --stats >"$tmp/one.txt"
check "--stats shows the parallel phase" grep -q "in parallel" "$tmp/split.txt"
check "KILN_PARTS=1: one module" bash -c "! grep -q 'in parallel' '$tmp/one.txt'"

kernels_of() { sed -n 's/^[^:]*: \([0-9]*\) kernels.*/\1/p' "$1"; }
hidden_kernels() {   # the part's kernels: global, hidden, defined, named split.*
    readelf -sW "$tmp/split.o" | awk '$5 == "GLOBAL" && $6 == "HIDDEN" && $7 != "UND" && $8 ~ /^split\./' | wc -l
}
some_hidden() {
    local n total
    n=$(hidden_kernels) total=$(kernels_of "$tmp/split.txt")
    ((n > 0 && n < total)) || { echo "  $n hidden kernel symbols of $total kernels" >&2; return 1; }
}
check "a part's kernels are hidden symbols of the joined object" some_hidden
check "no undefined kernel symbol" bash -c "! readelf -sW '$tmp/split.o' | awk '\$7 == \"UND\"' | grep -q 'split\\.'"
check "the x86 ISA-level note survives the join" bash -c "readelf -n '$tmp/split.o' | grep -q 'x86 ISA needed: x86-64-v4'"
same_code_size() {
    local a b
    a=$(awk '/^code/ {print $3}' "$tmp/split.txt") b=$(awk '/^code/ {print $3}' "$tmp/one.txt")
    # the runtime's functions that kernels call exist once per part: allow 1 KiB of them
    ((a >= b && a - b <= 1024)) || { echo "  code $a bytes in parts, $b in one module" >&2; return 1; }
}
check "the same code in parts as in one module" same_code_size
check "kiln check passes in parts" "$kiln" check "$model" --atol 1e-4

finish

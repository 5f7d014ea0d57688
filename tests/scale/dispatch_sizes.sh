#!/bin/bash
# dispatch_sizes.sh KILN MODEL — what a portable x86-64 object (--dispatch auto: baseline code
# plus x86-64-v4 and v3 variants, joined by ld -r) weighs, as --stats reports it and as
# binutils' `size` measures it:
#   - --stats counts the variants: its code, weights and other rodata add up to size's text
#     column (within 1%), and it says how many bytes are the variants' weights;
#   - the baseline holds each weight once: with --dispatch off the weights are no larger than
#     the model file (a contraction's remainder kernels read the main kernel's packed copy).
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
if ! command -v size >/dev/null; then
    echo "SKIP: size (binutils) is needed"
    exit 77
fi

"$kiln" compile "$model" -o "$tmp/auto.o" --target x86-64 --stats >"$tmp/auto.txt" || exit 1
"$kiln" compile "$model" -o "$tmp/off.o" --target x86-64 --dispatch off --stats >"$tmp/off.txt" ||
    exit 1

field() { awk -v key="$2" '$1 == key {print $2; exit}' "$1"; }
code_of() { awk '/^code \(text\)/ {print $3}' "$1"; }
rodata_of() { awk '/^other rodata/ {print $3}' "$1"; }

check "--stats names the ISA variants' weights" grep -q "are the weights of 2 ISA variants" "$tmp/auto.txt"
adds_up() {
    local stats text
    stats=$(($(code_of "$tmp/auto.txt") + $(field "$tmp/auto.txt" weights) + $(rodata_of "$tmp/auto.txt")))
    text=$(size "$tmp/auto.o" | awk 'NR == 2 {print $1}')
    ((stats * 100 >= text * 99 && stats <= text)) ||
        { echo "  --stats: $stats bytes of code and constants; size's text column: $text" >&2; return 1; }
}
check "--stats' code + weights + rodata = size's text column (within 1%)" adds_up
weights_once() {
    local w file
    w=$(field "$tmp/off.txt" weights) file=$(stat -c %s "$model")
    ((w <= file)) || { echo "  baseline weights $w bytes, model file $file bytes" >&2; return 1; }
}
check "--dispatch off: the weights held once (no larger than the model file)" weights_once
finish

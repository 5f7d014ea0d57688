#!/bin/bash
# phases.sh KILN MODEL — what a compilation reports about itself (issue 14):
#   --progress names every phase on stderr, in pipeline order; without it, a compilation
#   whose stderr is not a terminal prints nothing there; --stats has a row per phase and a
#   total whose peak is the largest phase's; the weights' section is named.
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
phases=(load "graph passes" lowering "kernel passes" "memory plan" "LLVM IR" "LLVM optimization"
        "object emission" header)

"$kiln" compile "$model" -o "$tmp/a.o" --progress 2>"$tmp/progress.txt" >/dev/null
in_order() {
    local line=0 p n
    for p in "${phases[@]}"; do
        n=$(grep -n "^kiln: [0-9.]* s: $p\$" "$tmp/progress.txt" | head -1 | cut -d: -f1)
        [[ -n $n && $n -gt $line ]] || { echo "  '$p' missing or out of order" >&2; return 1; }
        line=$n
    done
}
check "--progress names every phase in order" in_order

"$kiln" compile "$model" -o "$tmp/b.o" 2>"$tmp/quiet.txt" >/dev/null
check "without --progress, nothing on stderr (not a terminal)" test ! -s "$tmp/quiet.txt"

"$kiln" compile "$model" -o "$tmp/c.o" --stats >"$tmp/stats.txt" 2>&1
rows_present() {
    local p
    for p in "${phases[@]}" total; do
        grep -q "^  $p  *[0-9.]*  *[0-9]* MB\$" "$tmp/stats.txt" || { echo "  no row '$p'" >&2; return 1; }
    done
}
check "--stats has a row per phase and a total" rows_present
total_is_max() {
    local max total
    max=$(awk '/^  / && $NF == "MB" && $1 != "total" {if ($(NF-1) > m) m = $(NF-1)} END {print m}' "$tmp/stats.txt")
    total=$(awk '$1 == "total" && $NF == "MB" {print $(NF-1)}' "$tmp/stats.txt")
    [[ -n $total && $total -eq $max ]] || { echo "  total $total MB, largest phase $max MB" >&2; return 1; }
}
check "--stats: the total peak is the largest phase's" total_is_max
check "--stats names the weights' section" grep -q "^weights .*bytes (\.rodata" "$tmp/stats.txt"

finish

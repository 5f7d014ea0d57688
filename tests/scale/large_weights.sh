#!/bin/bash
# large_weights.sh KILN — weights past 2 GiB (issue 14): make_mlp.py writes 9 layers of
# 8192 x 8192 (2.4 GB of weights, external data) and its reference; kiln compiles it into an
# object (the weights in .lrodata, addressed with 64-bit offsets), a C program links it
# (link_check.c) and its predict must match the reference. Then the same for a 67 MB MLP,
# whose weights stay in .rodata (below 256 MiB). Prints kiln's --stats for both.
#
# PYTHON: a python3 with numpy and onnx (default python3). Needs about 5 GB of disk in $TMPDIR
# and 4 GB of memory; takes a minute or two.
set -euo pipefail
kiln=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-scale-XXXXXX")
trap 'rm -rf "$work"' EXIT
cc=${CC:-cc}

run_case() {   # run_case LABEL EXPECTED_SECTION make_mlp.py args...
    local label=$1 section=$2 dir=$work/$1
    shift 2
    "${PYTHON:-python3}" "$here/make_mlp.py" "$dir" "$@"
    "$kiln" compile "$dir/model.onnx" -o "$dir/big.o" --name big --stats | tee "$dir/stats.txt"
    grep -q "weights .*($section" "$dir/stats.txt" ||
        { echo "FAIL $label: --stats does not report the weights in $section"; return 1; }
    rm -f "$dir/weights.bin" "$dir/model.onnx"   # disk: at most two copies of the weights
    "$cc" -O1 -o "$dir/link_check" "$here/link_check.c" "$dir/big.o" -I "$dir" -I "$here/../../runtime-min" -lm
    rm -f "$dir/big.o"
    "$dir/link_check" "$dir/input.f32" "$dir/reference.f32" ||
        { echo "FAIL $label: outputs differ from the reference"; return 1; }
    echo "PASS $label"
}

run_case mlp-2.4GB .lrodata --layers 9 --width 8192
run_case mlp-67MB .rodata --layers 4 --width 2048

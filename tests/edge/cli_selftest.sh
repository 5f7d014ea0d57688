#!/bin/bash
# cli_selftest.sh KILN MODEL — the edge options refuse bad values with one clear message, exit
# status 1 and no output file: --optimize-for, --weights-section, an unknown target, a shared
# library for bare metal, and `kiln bench` on a target that only an emulator runs. And `kiln targets` lists every edge
# target with how it runs.
set -u
kiln=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

refuses() {   # refuses WHAT FRAGMENT ARGS...
    local what=$1 fragment=$2 err lines
    shift 2
    err=$("$kiln" "$@" 2>&1 >/dev/null)
    local rc=$?
    lines=$(grep -c . <<<"$err")
    if [[ $rc -eq 1 && $lines -eq 1 && $err == *"$fragment"* && -z $(ls "$tmp") ]]; then
        echo "ok   - $what: $err"
        passed=$((passed + 1))
    else
        echo "FAIL - $what: exit $rc, $lines lines, output files: $(ls "$tmp"): $err"
        failed=$((failed + 1))
    fi
}

refuses "--optimize-for fast" "bad --optimize-for (expected size or speed)" \
    compile "$model" -o "$tmp/m.o" --optimize-for fast
refuses "--weights-section with a space" "--weights-section must be a section name" \
    compile "$model" -o "$tmp/m.o" --weights-section "bad name"
refuses "unknown target" "unknown target" compile "$model" -o "$tmp/m.o" --target cortex-m99
refuses "a shared library for bare metal" "is bare metal, which has no shared libraries" \
    compile "$model" -o "$tmp/m.so" --target cortex-m4
refuses "bench on an emulated target" "only under an emulator" bench "$model" --target cortex-m4
refuses "check with a bad --optimize-for" "bad --optimize-for" check "$model" --optimize-for x

listing=$("$kiln" targets)
for t in aarch64-linux aarch64-linux-dotprod riscv64-linux riscv64-linux-v cortex-m4 cortex-m7 \
         cortex-m55 cortex-m0plus riscv32 riscv32-f; do
    if grep -q "^$t  " <<<"$listing"; then passed=$((passed + 1))
    else echo "FAIL - kiln targets does not list $t"; failed=$((failed + 1)); fi
done
if [[ $(grep -c "runs under: qemu" <<<"$listing") -eq 10 ]]; then
    echo "ok   - kiln targets lists 10 targets with their emulator"; passed=$((passed + 1))
else
    echo "FAIL - kiln targets: not every edge target names its emulator"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
((failed == 0))

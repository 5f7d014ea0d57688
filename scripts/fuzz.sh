#!/bin/bash
# fuzz.sh — run every libFuzzer target of kiln for SECONDS each, one after another.
#
#   bash scripts/fuzz.sh SECONDS [KIND...]      KIND: model, tensor, codegen (default: all)
#
# Configures build-fuzz/ once (CC=clang-19, -Dfuzz=enabled, -Db_sanitize=address,undefined:
# libFuzzer with ASan, UBSan and LeakSanitizer) and builds the targets of tests/fuzz/. Each
# target runs niced, one process on one core (libFuzzer's in-process mode, the same as
# -jobs=1 -workers=1; KILN_FUZZ_ARGS adds flags), from seeds made from
# ../shared/onnx-backend-tests plus the corpus kept in build-fuzz/corpus/KIND/ by earlier runs,
# which grows with every run. A crash, leak or sanitizer report stops that target; the input is
# kept in build-fuzz/artifacts/ and the script exits 1. At the end: executions and corpus size
# per target. A crash found becomes a regression input: copy it into
# tests/bad-inputs/fuzz/KIND/ and add its expected message to tests/bad-inputs/fuzz/expected.txt.
set -uo pipefail

[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || { echo "usage: $0 SECONDS [model|tensor|codegen]..." >&2; exit 2; }
seconds=$1
shift
kinds=("$@")
[[ ${#kinds[@]} -eq 0 ]] && kinds=(model tensor codegen)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_FUZZ_BUILD:-build-fuzz}
cd "$repo" || exit 1

if [[ ! -f $build/build.ninja ]]; then
    CC=${KILN_FUZZ_CC:-clang-19} meson setup -Dfuzz=enabled -Db_sanitize=address,undefined \
        -Db_lundef=false "$build" || exit 1
fi
ninja -C "$build" || exit 1

status=0
summary=()
for kind in "${kinds[@]}"; do
    echo "== fuzz_$kind for $seconds s"
    out=$(KILN_FUZZ_CORPUS=$build/corpus/$kind KILN_FUZZ_ARTIFACTS=$build/artifacts \
          nice -n 10 tests/fuzz/run.sh "$build/tests/fuzz/fuzz_$kind" "$kind" "$seconds" 2>&1)
    rc=$?
    echo "$out"
    [[ $rc -ne 0 ]] && status=1
    execs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -n 1)
    corpus=$(echo "$out" | sed -n 's/^corpus: //p' | tail -n 1)
    summary+=("fuzz_$kind: ${execs:-?} executions in $seconds s, corpus $corpus, exit $rc")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status

#!/bin/bash
# sanitize_predict.sh — predict under fire: every conformance test and every shared model runs
# once with AddressSanitizer in the generated code and ASan + UBSan in the harness.
#
#   bash scripts/sanitize_predict.sh
#
# build-sanitize/ (-Db_sanitize=address,undefined, as scripts/test.sh makes it) gives a `kiln`
# whose own code is checked; `kiln check --sanitize address` compiles each model with ASan's
# instrumentation in the generated object (codegen/llvm/module.c runs LLVM's asan pass), links
# it into the shared library `kiln check` loads, and runs it on the stored data sets: every load
# and store predict makes is checked against the inputs, outputs and workspace that check
# allocated, so an access outside them stops the run with ASan's report (the runtime-asan-probe
# test proves that it would). The conformance runner holds the results to
# tests/conformance/passing.txt, as the ordinary run does.
#
# It is the suite predict-asan-full of the sanitizer build (tests/meson.build):
# conformance-asan-full and models-asan-full. Measured on the 2-core machine while it was
# shared with other work: the 1942 backend tests in 841 s with one job, the 8 models in about
# 170 s. scripts/test.sh runs the suite predict-asan in its sanitizer step (the 346 tests of
# bare-metal.txt, every operator, and five models); with KILN_TEST_FULL=1 this one too.
# Environment: KILN_SANITIZE_BUILD (default build-sanitize), KILN_TIMEOUT_MULTIPLIER (default 2).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_SANITIZE_BUILD:-build-sanitize}
cd "$repo" || exit 1

if [[ ! -f $build/build.ninja ]]; then
    meson setup -Db_sanitize=address,undefined -Db_lundef=false "$build" || exit 1
fi
ninja -C "$build" || exit 1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$build" --suite predict-asan-full --print-errorlogs \
    --timeout-multiplier "${KILN_TIMEOUT_MULTIPLIER:-2}"

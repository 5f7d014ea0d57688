#!/bin/bash
# test.sh — build and run the whole test suite, then sum it up in one line.
#
#   1. build/ (as scripts/setup.sh made it; configured here if missing): every test, including
#      the conformance runner over the ONNX backend tests at every target and the real models,
#      but not the suite `full` (the slow repetitions: every passing test on riscv64-linux and
#      through the CUDA emulator, where the default runs the 346 of bare-metal.txt);
#   2. build-sanitize/ (-Db_sanitize=address,undefined): the fast suite (unit tests, run-time
#      contract, bad inputs, the example) again, so that memory errors and undefined behaviour
#      in kiln itself, or in the code it generates, fail the run, and the suite predict-asan:
#      bare-metal.txt's tests and five models through `kiln check --sanitize address`, the
#      generated code under ASan too (scripts/sanitize_predict.sh runs every test and model so);
#   3. build-fuzz/ (CC=clang-19, -Dfuzz=enabled, ASan + UBSan): the fuzz suite, each libFuzzer
#      target on a fixed number of inputs (60 s at most) from seeds and the regression
#      inputs (tests/fuzz/).
# Ends with `N passed, M failed` over the meson tests of both runs (scripts/test_summary.py);
# the exit status is 1 when any failed.
#
# Environment: KILN_BUILD (default build), KILN_TEST_FULL=1 to add the suite `full` to step 1
# and predict-asan-full (every passing test and model under ASan) to step 2, KILN_SANITIZE=0 to skip
# step 2 (KILN_SANITIZE_PREDICT=0: its fast suite only), KILN_FUZZ=0 to skip
# step 3 (KILN_FUZZ_SECONDS: the most each target runs, default 60),
# KILN_TIMEOUT_MULTIPLIER (default 2: CI machines have 2 cores; meson's timeouts are per test),
# KILN_TEST_ARGS (extra `meson test` arguments for step 1, e.g. "--suite fast").
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_BUILD:-build}
sanitize_build=${build}-sanitize
multiplier=${KILN_TIMEOUT_MULTIPLIER:-2}
cd "$repo" || exit 1

configure() {   # configure DIR [meson args...]
    local dir=$1
    shift
    [[ -f $dir/build.ninja ]] && return 0
    echo "== meson setup $dir $*"
    meson setup "$@" "$dir" || meson setup --wipe "$@" "$dir"
}

status=0
logs=()

run_suite() {   # run_suite LABEL DIR [meson test args...]
    local label=$1 dir=$2 started=$SECONDS
    shift 2
    echo "== $label: meson test -C $dir $*"
    if ! ninja -C "$dir"; then
        echo "== $label: build failed"
        status=1
        logs+=("$label=!")
        return
    fi
    echo "== $label: built in $((SECONDS - started)) s"
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs --timeout-multiplier "$multiplier" "$@" || status=1
    echo "== $label: done after $((SECONDS - started)) s"
    logs+=("$label=$dir/meson-logs/testlog.json")
}

full=${KILN_TEST_FULL:-0}
if configure "$build"; then
    skip_full=(--no-suite full)
    [[ $full == 1 ]] && skip_full=()
    # shellcheck disable=SC2086  # a list of arguments
    run_suite "suite" "$build" "${skip_full[@]}" ${KILN_TEST_ARGS:-}
else
    echo "== meson setup $build failed"
    status=1
    logs+=("suite=!")
fi

if [[ ${KILN_SANITIZE:-1} != 0 ]]; then
    if configure "$sanitize_build" -Db_sanitize=address,undefined -Db_lundef=false; then
        predict=()
        [[ ${KILN_SANITIZE_PREDICT:-1} != 0 ]] && predict=(--suite predict-asan)
        [[ ${KILN_SANITIZE_PREDICT:-1} != 0 && $full == 1 ]] &&
            predict+=(--suite predict-asan-full)
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
            run_suite "sanitize" "$sanitize_build" --suite fast "${predict[@]}"
    else
        echo "== meson setup $sanitize_build failed"
        status=1
        logs+=("sanitize=!")
    fi
fi

if [[ ${KILN_FUZZ:-1} != 0 ]]; then
    fuzz_build=${build}-fuzz
    if CC=${KILN_FUZZ_CC:-clang-19} configure "$fuzz_build" -Dfuzz=enabled \
            -Db_sanitize=address,undefined -Db_lundef=false; then
        run_suite "fuzz" "$fuzz_build" --suite fuzz
    else
        echo "== meson setup $fuzz_build failed"
        status=1
        logs+=("fuzz=!")
    fi
fi

echo "== summary"
python3 scripts/test_summary.py "${logs[@]}" || status=1
exit $status

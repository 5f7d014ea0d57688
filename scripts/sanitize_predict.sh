#!/bin/bash
# sanitize_predict.sh — predict under fire: every conformance test and every shared model runs
# once with AddressSanitizer in the generated code and ASan + UBSan in the harness.
#
#   bash scripts/sanitize_predict.sh [conformance|models]...   (default: both)
#
# build-sanitize/ (-Db_sanitize=address,undefined, as scripts/test.sh makes it) gives a `kiln`
# whose own code is checked; `kiln check --sanitize address` compiles each model with ASan's
# instrumentation in the generated object (codegen/llvm/module.c runs LLVM's asan pass), links
# it into the shared library `kiln check` loads, and runs it on the stored data sets: every load
# and store predict makes is checked against the inputs, outputs and workspace that check
# allocated, so an access outside them stops the run with ASan's report. The conformance runner
# then holds the results to tests/conformance/passing.txt, as the ordinary run does.
#
# Slow (about 3x the ordinary conformance run: roughly 15-20 min for the backend tests on 2
# cores, a few minutes for the models), so it is not part of scripts/test.sh; run it before a
# change to the code generator lands. Environment: KILN_SANITIZE_BUILD (default
# build-sanitize), KILN_JOBS (parallel checks, default 2).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_SANITIZE_BUILD:-build-sanitize}
cd "$repo" || exit 1
what=("$@")
[[ ${#what[@]} -eq 0 ]] && what=(conformance models)

if [[ ! -f $build/build.ninja ]]; then
    meson setup -Db_sanitize=address,undefined -Db_lundef=false "$build" || exit 1
fi
ninja -C "$build" kiln || exit 1

# leaks: kiln check exits through its own cleanup; LLVM keeps some global state on purpose
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for w in "${what[@]}"; do
    case $w in
    conformance)
        echo "== conformance under ASan/UBSan ($build/kiln check --sanitize address)"
        python3 tests/conformance/run.py "$build/kiln" --quiet --jobs "${KILN_JOBS:-2}" \
            --timeout 600 --kiln-arg=--sanitize --kiln-arg=address || status=1
        ;;
    models)
        echo "== models under ASan/UBSan"
        KILN_CHECK_ARGS="--sanitize address" tests/models/run.sh "$build/kiln" || status=1
        ;;
    *)
        echo "sanitize_predict.sh: unknown part '$w' (conformance or models)" >&2
        exit 2
        ;;
    esac
done
exit $status

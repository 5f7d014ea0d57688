#!/bin/bash
# run.sh — run one fuzz target for a while from fresh seeds and the regression inputs.
#
#   tests/fuzz/run.sh FUZZER KIND [SECONDS]     KIND: model, tensor or codegen
#
# Seeds come from scripts/fuzz_seeds.py (small files of ../shared/onnx-backend-tests); the
# regression inputs of tests/bad-inputs/fuzz/KIND/ run first, every time. New inputs go to the
# corpus folder KILN_FUZZ_CORPUS (default: a temporary one, removed afterwards), so that
# scripts/fuzz.sh can grow one corpus across runs. Exits 0 when libFuzzer found nothing, 1 with
# its report (the crashing input is kept as KILN_FUZZ_ARTIFACTS/crash-KIND-*, default
# $TMPDIR/kiln-fuzz-artifacts) otherwise; 77 (skip) without the backend tests to make seeds from.
# Environment: KILN_FUZZ_SECONDS (default 60), KILN_FUZZ_SEED (libFuzzer's -seed; the test
# suite fixes it so that a CI run explores what the previous one did), KILN_FUZZ_RUNS (stop
# after this many inputs, whichever of the two limits comes first; the test suite sets it so
# that the inputs tried do not depend on the machine's speed), KILN_FUZZ_ARGS (more libFuzzer flags, e.g.
# "-jobs=1 -workers=1"), KILN_REPO (the repository; default: two folders up from here).
set -uo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 FUZZER KIND [SECONDS]" >&2; exit 2; }
fuzzer=$1 kind=$2 seconds=${3:-${KILN_FUZZ_SECONDS:-60}}
repo=${KILN_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
shared=${KILN_SHARED:-$repo/../shared}

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-fuzz-$kind-XXXXXX")
trap 'rm -rf "$work"' EXIT
corpus=${KILN_FUZZ_CORPUS:-$work/corpus}
[[ $corpus == /* ]] || corpus=$PWD/$corpus
artifacts=${KILN_FUZZ_ARTIFACTS:-${TMPDIR:-/tmp}/kiln-fuzz-artifacts}
mkdir -p "$corpus" "$artifacts"

if [[ ! -d $shared/onnx-backend-tests ]]; then
    echo "SKIP: no $shared/onnx-backend-tests to make seeds from"
    exit 77
fi
python3 "$repo/scripts/fuzz_seeds.py" --kind "$kind" "$shared/onnx-backend-tests" "$work/seeds" ||
    exit 1
dirs=("$corpus" "$work/seeds")
[[ -d $repo/tests/bad-inputs/fuzz/$kind ]] && dirs+=("$repo/tests/bad-inputs/fuzz/$kind")

# -rss_limit_mb: kiln may take what a model needs, but no fuzz input should need much;
# -timeout: one input taking longer is a hang (an unbounded loop, a blocking read).
# Run inside the work folder: with -jobs=N libFuzzer writes each job's log as ./fuzz-K.log.
case $fuzzer in /*) ;; *) fuzzer=$PWD/$fuzzer ;; esac
for i in "${!dirs[@]}"; do [[ ${dirs[i]} == /* ]] || dirs[i]=$PWD/${dirs[i]}; done
[[ $artifacts == /* ]] || artifacts=$PWD/$artifacts
cd "$work" || exit 1
# shellcheck disable=SC2086  # KILN_FUZZ_ARGS is a list of flags
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
"$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/crash-$kind-" \
    ${KILN_FUZZ_SEED:+-seed=$KILN_FUZZ_SEED} ${KILN_FUZZ_RUNS:+-runs=$KILN_FUZZ_RUNS} \
    ${KILN_FUZZ_ARGS:-} \
    "${dirs[@]}" > "$work/log" 2>&1
status=$?
for job_log in "$work"/fuzz-*.log; do [[ -f $job_log ]] && cat "$job_log" >> "$work/log"; done
grep -E '^stat::(number_of_executed_units|peak_rss_mb)|INITED|DONE' "$work/log" | tail -n 4
# a crash found in a -jobs child leaves the parent's status 0: the report is what tells
grep -qE '^==[0-9]+==ERROR|^SUMMARY: |runtime error:|^fuzz: ' "$work/log" && status=1
echo "corpus: $(find "$corpus" -type f | wc -l) inputs, $(du -sk "$corpus" | cut -f1) KiB"
if [[ $status -ne 0 ]]; then
    tail -n 60 "$work/log"
    echo "fuzz-$kind: libFuzzer exited with $status (input kept under $artifacts)"
    exit 1
fi
echo "fuzz-$kind: no crash, leak or sanitizer report (${KILN_FUZZ_RUNS:+at most $KILN_FUZZ_RUNS inputs, }at most $seconds s)"

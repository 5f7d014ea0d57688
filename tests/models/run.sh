#!/bin/sh
# Real-model check: `kiln check` on the models in ../shared/models with the tolerance their
# README gives (rtol 1e-3, atol 1e-4), each model's max errors printed, then "N passed, M failed".
#
# Usage: tests/models/run.sh KILN [MODEL...]
#   KILN_MODELS   the models folder (default: ../shared/models beside the repository)
#   MODELS        the model names (default: every shared model kiln compiles; symbolic inputs
#                 are bound from each model's first data set, as `kiln check` does)
#   KILN_CHECK_ARGS  extra arguments for kiln check (e.g. -O1)
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 KILN [MODEL...]" >&2
    exit 2
fi
kiln=$1
shift
case $kiln in /*) ;; *) kiln=$(pwd)/$kiln ;; esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
models_dir=${KILN_MODELS:-$(dirname "$repo")/shared/models}
if [ $# -gt 0 ]; then
    models="$*"
else
    models=${MODELS:-"mlp squeezenet1_1 mobilenet_v2 shufflenet_v2 resnet18 transformer_encoder ppocr_cls ppocr_det lstm silero_vad_v5"}
fi

if [ ! -d "$models_dir" ]; then
    echo "no models folder $models_dir (set KILN_MODELS)" >&2
    exit 1
fi

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for name in $models; do
    model=$models_dir/$name/model.onnx
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # KILN_CHECK_ARGS is a list of words
    if "$kiln" check "$model" --rtol 1e-3 --atol 1e-4 ${KILN_CHECK_ARGS:-} >"$log" 2>&1; then
        status=PASS
        passed=$((passed + 1))
    else
        status=FAIL
        failed=$((failed + 1))
    fi
    secs=$(echo "$start $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')
    echo "== $name: $status ($secs s)"
    # Per-output lines and the compile summary; on failure everything kiln said.
    if [ $status = PASS ]; then
        grep -E '^(inputs bound|compiled|test_data_set)' "$log" | sed 's/^/   /'
    else
        sed 's/^/   /' "$log"
    fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]

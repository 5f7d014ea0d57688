#!/bin/bash
# gpu-check.sh — the CUDA back end on a machine with an NVIDIA GPU, in one run of under 8 minutes.
#
#   scripts/gpu-check.sh [BUILD]        (BUILD: a prepared build folder, default build/)
#
# Builds nothing: it takes BUILD/kiln as it is (configured and built elsewhere, with NVRTC) and
#   1. says what it runs on (kiln targets' CUDA lines, nvidia-smi -L);
#   2. kiln check --target T (default cuda-sm90; KILN_GPU_TARGET) on every shared model kiln
#      compiles, at rtol 1e-3 / atol 1e-4;
#   3. kiln check on every test of tests/conformance/passing.txt (the tests kiln passes on the
#      CPU), through tests/conformance/run.py --only-listed;
#   4. kiln bench at batch 1 on resnet18 and mobilenet_v2 (cuda_run + a stream synchronization
#      per call: the latency a caller sees), and, where python3 has onnxruntime with its CUDA
#      provider, ONNX Runtime's time for the same models on the same GPU.
# Every step has a time limit so that the whole stays within 8 minutes. Without a GPU or driver
# it says so and exits 77. The last line is `N passed, M failed` over steps 2 and 3.
#
# Environment: KILN_GPU_TARGET (cuda-sm90), KILN_GPU_JOBS (conformance jobs, default: cores),
# KILN_MODELS (../shared/models), KILN_BACKEND_TESTS (../shared/onnx-backend-tests),
# KILN_GPU_FILTER (a regex: only those conformance tests), KILN_GPU_ARGS (more kiln arguments;
# `--cuda-emulate` with KILN_LIBCUDA=build/tests/cuda/libkiln_fakecuda.so rehearses the whole
# script on a machine without a GPU, through the emulator).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
[[ $build == /* ]] || build=$repo/$build
kiln=$build/kiln
target=${KILN_GPU_TARGET:-cuda-sm90}
read -r -a extra <<<"${KILN_GPU_ARGS:-}"
# the backend tests of outputs whose length depends on the data (NonZero, Compress, Unique,
# NonMaxSuppression) and of string tensors are left out: the CUDA back end refuses them with a
# message, by design (the same expression as tests/cuda/meson.build)
filter=(--filter '^(?!.*/test_(nonzero|compress|unique|nonmaxsuppression)_)(?!.*/test_(equal_string|string_concat|string_split|regex_full_match|strnorm|ai_onnx_ml_label_encoder))(?!.*/test_(loop11|range_[a-z0-9_]+_expanded)(/|$))')
[[ -n ${KILN_GPU_FILTER:-} ]] && filter=(--filter "$KILN_GPU_FILTER")
jobs=${KILN_GPU_JOBS:-$(nproc)}
models_dir=${KILN_MODELS:-$(dirname "$repo")/shared/models}
started=$SECONDS
passed=0
failed=0

say() { echo "== $* ($((SECONDS - started)) s)"; }

if [[ ! -x $kiln ]]; then
    echo "gpu-check.sh: $kiln is not built (this script builds nothing)" >&2
    exit 1
fi

say "1. what this runs on"
"$kiln" targets | grep -A1 '^cuda-' || true
command -v nvidia-smi >/dev/null && nvidia-smi -L
if ! "$kiln" targets | grep -q 'available (NVRTC'; then
    echo "gpu-check.sh: $kiln was built without NVRTC: it cannot compile for $target" >&2
    exit 1
fi
probe=$("$kiln" check "$models_dir/mlp/model.onnx" --target "$target" "${extra[@]}" 2>&1)
if [[ $? -eq 77 ]]; then
    echo "$probe" | grep SKIP
    echo "gpu-check.sh: no GPU to run on; nothing checked"
    exit 77
fi
echo "$probe" | grep '^device:'

say "2. kiln check --target $target on the shared models (rtol 1e-3, atol 1e-4)"
# symbolic inputs (ppocr_det's) are bound from the model's first data set, as on the CPU
for name in mlp squeezenet1_1 mobilenet_v2 shufflenet_v2 resnet18 transformer_encoder \
        ppocr_cls ppocr_det; do
    if log=$(timeout 120 "$kiln" check "$models_dir/$name/model.onnx" --target "$target" \
            --rtol 1e-3 --atol 1e-4 "${extra[@]}" 2>&1); then
        passed=$((passed + 1))
        worst=$(grep -o 'max abs err [^,]*' <<<"$log" | sort -k4 -g | tail -1)
        echo "PASS $name: $(grep -c '^test_data_set.*PASS$' <<<"$log") outputs checked, $worst"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        tail -15 <<<"$log"
    fi
done

say "3. the passing conformance tests on $target ($jobs jobs)"
conf=$(mktemp)
timeout 300 python3 "$repo/tests/conformance/run.py" "$kiln" --quiet --only-listed \
    --jobs "$jobs" --timeout 60 --kiln-arg=--target "--kiln-arg=$target" "${filter[@]}" \
    "${extra[@]/#/--kiln-arg=}" >"$conf" 2>&1
grep -E '^(FAIL|REGRESSED|overall|passing list)' "$conf" | head -60
last=$(tail -1 "$conf")
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1] - BASH_REMATCH[2]))
    failed=$((failed + BASH_REMATCH[2]))
else
    echo "conformance run did not finish: $last"
    failed=$((failed + 1))
fi
rm -f "$conf"

say "4. batch-1 latency on $target"
for name in resnet18 mobilenet_v2; do
    timeout 120 "$kiln" bench "$models_dir/$name/model.onnx" --target "$target" --runs 50 \
        --warmup 10 "${extra[@]}" 2>&1 | grep -E '^(model|device|compile|time|speed):'
done
if python3 -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
    for name in resnet18 mobilenet_v2; do
        timeout 120 python3 - "$models_dir/$name/model.onnx" <<'EOF'
import sys, time, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CUDAExecutionProvider"])
feeds = {i.name: np.random.rand(*[d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
         for i in s.get_inputs()}
for _ in range(10): s.run(None, feeds)
t = []
for _ in range(50):
    t0 = time.perf_counter(); s.run(None, feeds); t.append((time.perf_counter() - t0) * 1e3)
t.sort()
print("onnxruntime %s CUDA EP: min %.4f ms, median %.4f ms" % (ort.__version__, t[0], t[len(t) // 2]))
EOF
    done
else
    echo "(no onnxruntime with CUDAExecutionProvider in python3: no ONNX Runtime comparison)"
fi

say "done"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

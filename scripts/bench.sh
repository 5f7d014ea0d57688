#!/bin/bash
# bench.sh — kiln's speed on the shared models, beside ONNX Runtime's, as one markdown table.
#
#   scripts/bench.sh [MODEL...]        (default: every shared model kiln compiles)
#
# For each model it runs `kiln bench` at --target native with 1 and 2 threads and at --target
# x86-64 with 1 thread (medians of kiln bench's timed runs), and, when ORT_NODE_MODULES names a
# node_modules folder holding onnxruntime-node 1.30.0, ONNX Runtime on the same models through
# ../shared/models/scripts/bench.js (intra-op threads 1 and 2, the same warm-up and run counts).
# bench.js also times session.run on a one-element Add: that is the Node binding's own cost per
# call, which a C caller of ORT would not pay, so it is subtracted from ORT's medians before the
# ratio. The ratio is ORT ms / kiln ms: above 1, kiln is faster. The table ends with the
# geometric mean of the 1-thread ratios. Times are minima over the timed runs of each engine
# (BENCH_STAT=median for medians): on a machine shared with other work the minimum is the run
# that was disturbed least, for both engines alike.
#
# Environment: KILN (default build/kiln), KILN_MODELS (default ../shared/models beside the
# repository), ORT_NODE_MODULES (optional), KILN_BENCH_OUT (folder, default build/bench),
# BENCH_STAT (min or median, default min), BENCH_MICROKERNELS=1 (a second table: each model at
# native, 1 thread, with --microkernels ir and libxsmm beside the default auto, to show where
# libxsmm's micro-kernels win and where kiln's own register blocks do).
# It writes OUT/bench-DATE.md and keeps every raw log in OUT/bench-DATE/; it says where first.
# Nothing in the test suite runs it: it takes minutes and its numbers depend on the machine.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kiln=${KILN:-$repo/build/kiln}
models_dir=${KILN_MODELS:-$(cd "$repo/.." && pwd)/shared/models}
out_dir=${KILN_BENCH_OUT:-$repo/build/bench}
stamp=$(date +%Y%m%d-%H%M%S)
table=$out_dir/bench-$stamp.md
logs=$out_dir/bench-$stamp

all_models=(mlp squeezenet1_1 mobilenet_v2 shufflenet_v2 resnet18 transformer_encoder ppocr_cls
            ppocr_det lstm silero_vad_v5)

# Operators kiln does not compile yet; these models are listed with a note instead of timed.
skip_reason() {
    case $1 in
        *) echo "" ;;
    esac
}

# The bindings the test data were made with, for models whose input dims are symbolic.
shape_args() {
    case $1 in
        ppocr_cls) echo "--shape x:1x3x48x192" ;;
        ppocr_det) echo "--shape x:1x3x320x320" ;;
        silero_vad_v5) echo "--shape input:1x512 --shape state:2x1x128" ;;
        *) echo "" ;;
    esac
}

# The value of a report line: field LOG KEY SED-EXPRESSION (empty when the run failed).
field() { sed -n "s/^$2: *$3/\\1/p" "$1" | head -1; }

stat=${BENCH_STAT:-min}
case $stat in min | median) ;; *) echo "bench.sh: BENCH_STAT must be min or median" >&2; exit 1 ;; esac

# kiln's time (min or median, as BENCH_STAT says) from a kiln bench log.
kiln_ms() {
    if [[ $stat == min ]]; then field "$1" time 'min \([0-9.]*\) ms,.*'
    else field "$1" time '.*median \([0-9.]*\) ms$'; fi
}

# A time in ms to about 4 significant digits, without an exponent (2417, 38.27, 0.0084).
fmt_ms() {
    awk -v v="$1" 'BEGIN {
        if (v == "") { print "-"; exit }
        d = v >= 1000 ? 0 : v >= 100 ? 1 : v >= 10 ? 2 : v >= 1 ? 3 : 4
        printf "%.*f\n", d, v }'
}

# kiln bench NAME TAG ARGS...: the log's path; a failed run leaves a log without a time line.
run_kiln() {
    local name=$1 tag=$2
    shift 2
    local log=$logs/$name-$tag.log
    # shellcheck disable=SC2046  # shape_args is a list of words
    if ! "$kiln" bench "$models_dir/$name/model.onnx" $(shape_args "$name") "$@" >"$log" 2>&1; then
        echo "  kiln bench $name ($tag) failed: see $log" >&2
    fi
    echo "$log"
}

human_bytes() {
    awk -v b="$1" 'BEGIN {
        if (b == "") print "-"
        else if (b >= 1048576) printf "%.1f MB\n", b / 1048576
        else if (b >= 1024) printf "%.1f KB\n", b / 1024
        else printf "%d B\n", b }'
}

# ONNX Runtime through bench.js, all models in one process; prints nothing without it.
run_ort() {
    local nm=${ORT_NODE_MODULES:-}
    if [[ -z $nm || ! -f $nm/onnxruntime-node/package.json ]]; then
        echo "== ONNX Runtime: skipped (ORT_NODE_MODULES is not a node_modules folder" \
             "with onnxruntime-node@1.30.0)" >&2
        return
    fi
    echo "== ONNX Runtime: node bench.js ${*}" >&2
    NODE_PATH=$nm node "$models_dir/scripts/bench.js" "$models_dir" "$@" \
        >"$logs/ort.md" 2>"$logs/ort.err" || echo "  bench.js failed: see $logs/ort.err" >&2
}

# ORT's min or median for a model and thread count (columns 4/5 or 6/7 of bench.js's table)
# minus the binding's overhead of the same statistic (its "Add float32[1] (N intra-op
# thread...)" row, in us).
ort_ms() {
    local name=$1 threads=$2 file=$logs/ort.md
    [[ -f $file ]] || return 0
    awk -F'|' -v m="$name" -v t="$threads" -v s="$stat" '
        function trim(x) { gsub(/^ +| +$/, "", x); return x }
        trim($2) == m { v = trim(t == 1 ? (s == "min" ? $4 : $5) : (s == "min" ? $6 : $7)) }
        $2 ~ "Add float32\\[1\\] \\(" t " intra-op" { over = trim(s == "min" ? $3 : $4) / 1000 }
        END { if (v != "") print v - over }' "$file"
}

ratio() {
    awk -v o="$1" -v k="$2" 'BEGIN {
        if (o == "" || k == "" || k <= 0) print "-"; else printf "%.2f\n", o / k }'
}
or_dash() { if [[ -n $1 ]]; then echo "$1"; else echo "-"; fi; }

# One row of the table for a model whose logs exist.
table_row() {
    local name=$1
    local n1=$logs/$name-native-1t.log n2=$logs/$name-native-2t.log x1=$logs/$name-x86-64-1t.log
    local k1 k2 kx o1 o2 gf pk cs ws
    k1=$(kiln_ms "$n1"); k2=$(kiln_ms "$n2"); kx=$(kiln_ms "$x1")
    o1=$(ort_ms "$name" 1); o2=$(ort_ms "$name" 2)
    if [[ $stat == min ]]; then
        gf=$(field "$n1" speed '\([0-9.]*\) GFLOP\/s at min,.*')
        pk=$(field "$n1" 'of peak' '\([0-9.]*\)% at min,.*')
    else
        gf=$(field "$n1" speed '.*, \([0-9.]*\) GFLOP\/s at median$')
        pk=$(field "$n1" 'of peak' '.*, \([0-9.]*\)% at median$')
    fi
    cs=$(field "$n1" compile '\([0-9.]*\) s,.*')
    ws=$(field "$n1" compile '.*workspace \([0-9]*\) bytes$')
    echo "| $name | $(fmt_ms "$k1") | $(fmt_ms "$o1") | $(ratio "$o1" "$k1") |" \
         "$(or_dash "$gf") | $(or_dash "$pk") | $(fmt_ms "$k2") | $(fmt_ms "$o2") |" \
         "$(ratio "$o2" "$k2") | $(fmt_ms "$kx") | $(or_dash "$cs") | $(human_bytes "$ws") |"
}

geomean_ratio() {
    local name o k r rs=()
    for name in "$@"; do
        o=$(ort_ms "$name" 1); k=$(kiln_ms "$logs/$name-native-1t.log")
        r=$(ratio "$o" "$k")
        [[ $r != - ]] && rs+=("$r")
    done
    [[ ${#rs[@]} -gt 0 ]] || { echo "-"; return; }
    printf '%s\n' "${rs[@]}" |
        awk '{ s += log($1); n++ } END { printf "%.2f (%d models)\n", exp(s / n), n }'
}

# Who computes the contractions (native, 1 thread): auto (the default), kiln's register blocks
# only, libxsmm wherever a block is a plain GEMM; the fastest in bold.
microkernels_table() {
    local name a i x best
    echo
    echo "Contractions by kiln's register blocks (ir) or libxsmm's micro-kernels (libxsmm),"
    echo "native, 1 thread, kiln ms ($stat); auto is the default choice (the first column above):"
    echo
    echo "| model | auto | ir | libxsmm | fastest |"
    echo "|---|---:|---:|---:|---|"
    for name in "${timed[@]}"; do
        a=$(kiln_ms "$logs/$name-native-1t.log"); i=$(kiln_ms "$logs/$name-ir-1t.log")
        x=$(kiln_ms "$logs/$name-libxsmm-1t.log")
        best=$(printf 'auto %s\nir %s\nlibxsmm %s\n' "$a" "$i" "$x" |
               awk 'NF == 2 && (b == "" || $2 < v) { b = $1; v = $2 } END { print b }')
        echo "| $name | $(fmt_ms "$a") | $(fmt_ms "$i") | $(fmt_ms "$x") | $(or_dash "$best") |"
    done
}

write_table() {
    local name peak cpu
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    echo "# kiln bench, $(date '+%Y-%m-%d %H:%M')"
    echo
    echo "kiln $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?');" \
         "$cpu, $(nproc) logical cores."
    for name in "${timed[@]}"; do
        peak=$(field "$logs/$name-native-1t.log" peak '\([0-9.]*\) GFLOP\/s for 1 thread.*')
        [[ -n $peak ]] && { echo "Measured peak (native, 1 thread): $peak GFLOP/s."; break; }
    done
    echo "Times in ms, the $stat over each engine's timed runs. ORT = onnxruntime-node"
    echo "1.30.0 minus its binding's per-call overhead; ratio = ORT ms / kiln ms (above 1: kiln"
    echo "is faster). GFLOP/s and % of the measured peak: kiln native, 1 thread, at the $stat."
    echo
    echo "| model | kiln ms (native, 1T) | ORT ms 1T | kiln/ORT speed ratio | GFLOP/s | % peak" \
         "| kiln ms 2T | ORT ms 2T | ratio 2T | kiln ms x86-64 | compile s | workspace |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for name in "${timed[@]}"; do table_row "$name"; done
    echo
    echo "Geometric mean of the 1-thread ratios: $(geomean_ratio "${timed[@]}")"
    for name in "${skipped[@]}"; do echo "- $name: skipped, $(skip_reason "$name")"; done
    [[ ${BENCH_MICROKERNELS:-0} == 1 ]] && microkernels_table
    if [[ -f $logs/ort.md ]]; then
        echo
        echo "ONNX Runtime's own report (bench.js; its last column is how busy other processes"
        echo "kept the machine meanwhile, in cores; the Add rows are the binding's overhead):"
        cat "$logs/ort.md"
    fi
}

main() {
    local models=("$@") name
    [[ ${#models[@]} -gt 0 ]] || models=("${all_models[@]}")
    [[ -x $kiln ]] || { echo "bench.sh: no kiln at $kiln (build it: ninja -C build)" >&2; exit 1; }
    mkdir -p "$logs"
    echo "bench.sh: writing $table (logs in $logs)"
    timed=() skipped=()
    for name in "${models[@]}"; do
        [[ -f $models_dir/$name/model.onnx ]] ||
            { echo "bench.sh: no model $models_dir/$name" >&2; exit 1; }
        if [[ -n $(skip_reason "$name") ]]; then skipped+=("$name"); continue; fi
        timed+=("$name")
        echo "== $name"
        run_kiln "$name" native-1t --target native >/dev/null
        run_kiln "$name" native-2t --target native --threads 2 >/dev/null
        run_kiln "$name" x86-64-1t --target x86-64 >/dev/null
        if [[ ${BENCH_MICROKERNELS:-0} == 1 ]]; then
            run_kiln "$name" ir-1t --target native --microkernels ir >/dev/null
            run_kiln "$name" libxsmm-1t --target native --microkernels libxsmm >/dev/null
        fi
    done
    [[ ${#timed[@]} -eq 0 ]] || run_ort "${timed[@]}"
    write_table >"$table"
    cat "$table"
    echo "bench.sh: wrote $table"
}

main "$@"

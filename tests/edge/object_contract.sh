#!/bin/bash
# object_contract.sh KILN DIGITS_ONNX MODELS_DIR — what a microcontroller build can count on.
#
# For the firmware model (digits) and mlp on every bare-metal target, and mobilenet_v2 on the
# Cortex-M4 (compiled with their default, size), measured with binutils' `size` and `nm` on the
# object, the way a firmware engineer would:
#   - code beyond the weights (size's text column less the weights, which --stats reports) is at
#     most 16 KiB for digits and mlp on the Cortex-M4 and 64 KiB for mobilenet_v2 (issue 11);
#   - no writable data: size's data and bss columns are 0 (all state is the caller's workspace);
#   - `nm -u` lists nothing but memcpy, memset and the compiler's support routines (libgcc /
#     compiler-rt: __aeabi_* on Arm, __addsf3-style soft float and 64-bit division on RISC-V):
#     no malloc, no libm, no OS call;
#   - --weights-section puts the weights in that section, and --optimize-for speed is never
#     smaller in workspace than size.
# Prints one line per check and "N passed, M failed"; exit 1 if any failed.
set -u
kiln=$1 digits=$2 models=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
pass() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }

# compile MODEL TARGET NAME [kiln args...]: object $tmp/NAME.o, --stats in $tmp/NAME.stats
compile() {
    local model=$1 target=$2 name=$3
    shift 3
    "$kiln" compile "$model" -o "$tmp/$name.o" --name "$name" --target "$target" --stats "$@" \
        >"$tmp/$name.stats" 2>&1 || { fail "$name: kiln compile failed: $(cat "$tmp/$name.stats")"; return 1; }
}

weights_of() { awk '/^weights/ {print $2}' "$tmp/$1.stats"; }
workspace_of() { awk '/^workspace \(RAM\)/ {print $3}' "$tmp/$1.stats"; }

check_object() {   # check_object NAME CODE_LIMIT
    local name=$1 limit=$2 text data bss weights beyond names symbol unexpected=""
    read -r text data bss _ < <(size "$tmp/$name.o" | awk 'NR == 2')
    weights=$(weights_of "$name")
    beyond=$((text - weights))
    if ((beyond <= limit)); then pass "$name: $beyond bytes beyond the weights (limit $limit)"
    else fail "$name: $beyond bytes beyond the weights, over $limit"; fi
    if ((data == 0 && bss == 0)); then pass "$name: no writable data"
    else fail "$name: data $data, bss $bss"; fi
    names=$(nm -u "$tmp/$name.o" | awk 'NF {print $NF}' | sort -u)
    for symbol in $names; do
        case $symbol in
        memcpy | memset | __aeabi_* | __*sf[23] | __*sf | __*df[23] | __*df | __*di[34] | \
            __*si[23] | __*sf[2]* | __*df[2]* | __extend* | __trunc* | __float* | __fix*) ;;
        *) unexpected+=" $symbol" ;;
        esac
    done
    if [[ -z $unexpected ]]; then pass "$name: undefined symbols only memcpy/memset/compiler support ($(echo $names | wc -w))"
    else fail "$name: undefined symbols outside the contract:$unexpected"; fi
}

for target in cortex-m4 cortex-m7 cortex-m0plus riscv32 riscv32-f; do
    limit=$((16 * 1024))
    compile "$digits" "$target" "digits_${target//-/_}" && check_object "digits_${target//-/_}" $limit
    compile "$models/mlp/model.onnx" "$target" "mlp_${target//-/_}" && check_object "mlp_${target//-/_}" $limit
done
if compile "$models/mobilenet_v2/model.onnx" cortex-m4 mobilenet_m4; then
    check_object mobilenet_m4 $((64 * 1024))
fi

# --weights-section: the weights are that section, whole
if compile "$digits" cortex-m4 digits_sec --weights-section .kiln_weights; then
    # two input sections of that name (the small constants from LLVM, the large ones appended
    # by kiln), which every linker merges: their sum
    sec=$(size -A "$tmp/digits_sec.o" | awk '$1 == ".kiln_weights" {s += $2} END {if (NR && s) print s}')
    if [[ -n $sec ]] && ((sec == $(weights_of digits_sec))); then pass "--weights-section: .kiln_weights holds the $sec bytes of weights"
    else fail "--weights-section: section .kiln_weights is '${sec:-missing}', weights $(weights_of digits_sec)"; fi
fi
# size versus speed on a convolution model: size needs no more workspace and no more code
if compile "$models/mobilenet_v2/model.onnx" cortex-m4 mobilenet_speed --optimize-for speed; then
    ws_size=$(workspace_of mobilenet_m4) ws_speed=$(workspace_of mobilenet_speed)
    code_size=$(awk '/^code/ {print $3}' "$tmp/mobilenet_m4.stats")
    code_speed=$(awk '/^code/ {print $3}' "$tmp/mobilenet_speed.stats")
    if ((ws_size <= ws_speed && code_size < code_speed)); then
        pass "mobilenet_v2 on cortex-m4: size $ws_size B workspace, $code_size B code; speed $ws_speed B, $code_speed B"
    else
        fail "mobilenet_v2 on cortex-m4: size ($ws_size B, $code_size B code) not below speed ($ws_speed B, $code_speed B)"
    fi
fi
echo "$passed passed, $failed failed"
((failed == 0))

#!/bin/sh
# Run-time ISA dispatch of a portable object (codegen/llvm/dispatch.c): tests/runtime/dispatch.c,
# linked with convnet compiled for the default target x86-64, runs here and under qemu-x86_64
# as a Nehalem (SSE4.2: the baseline code) and a Haswell (AVX2 + FMA: the x86-64-v3 variant).
# Each run must report the level its CPU has (here: from /proc/cpuinfo's flags) and outputs
# that agree with the other runs' (the variants round differently: FMA, other blockings).
#
# Usage: dispatch.sh PROGRAM
set -u
prog=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0

host_level() {
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
    if has avx512f avx512bw avx512cd avx512dq avx512vl avx2 fma bmi2; then echo 4
    elif has avx2 fma bmi1 bmi2 f16c movbe; then echo 3
    else echo 1; fi
}

run() {   # run LABEL EXPECTED_LEVEL COMMAND...
    label=$1 want=$2
    shift 2
    if ! "$@" >"$dir/$label" 2>"$dir/$label.err"; then
        echo "FAIL $label: exit status $? ($(cat "$dir/$label" "$dir/$label.err" | head -3))"
        failed=1
        return
    fi
    got=$(head -1 "$dir/$label")
    if [ "$got" != "level $want" ]; then
        echo "FAIL $label: $got, expected level $want"
        failed=1
    else
        echo "PASS $label: $got"
    fi
}

run host "$(host_level)" "$prog"
if command -v qemu-x86_64 >/dev/null; then
    run nehalem 1 qemu-x86_64 -cpu Nehalem "$prog"
    run haswell 3 qemu-x86_64 -cpu Haswell "$prog"
else
    echo "FAIL: qemu-x86_64 (Debian package qemu-user) is needed for the older CPUs"
    failed=1
fi

# Outputs: every run against the host's, rtol 1e-4, atol 1e-5.
for other in nehalem haswell; do
    [ -s "$dir/$other" ] || continue
    if paste "$dir/host" "$dir/$other" | awk 'NR > 1 {
            d = $1 - $2; if (d < 0) d = -d; a = $1 < 0 ? -$1 : $1
            if (d > 1e-5 + 1e-4 * a) { bad++; print "  output " NR - 2 ": " $1 " vs " $2 }
        } END { exit bad > 0 }'; then
        echo "PASS outputs: host and $other agree"
    else
        echo "FAIL outputs: host and $other differ"
        failed=1
    fi
done
[ $failed -eq 0 ] && echo "dispatch: all passed"
exit $failed

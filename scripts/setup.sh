#!/bin/bash
# setup.sh — from a fresh Debian 12 to a running example, as root:
#   1. install every package kiln, its example and its tests need (Debian's own, by name);
#   2. configure (once) and build everything in build/: kiln, the example, the tests;
#   3. run the examples: the digit classifier compiled by kiln, linked into examples/digits/main.c,
#      and the same model in the Cortex-M4 firmware (examples/firmware) under QEMU.
# Idempotent: packages already installed are not fetched again (no network needed then), an
# existing build folder is reused, and ninja rebuilds only what changed.
#
# Environment: KILN_BUILD (build folder, default build), KILN_MESON_ARGS (extra `meson setup`
# arguments for a new build folder).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KILN_BUILD:-build}
cd "$repo"

packages=(
    # build: C toolchain, meson, LLVM 19 (C API, clang for runtime-min bitcode, lld to link
    # shared libraries), protobuf-c with Debian's onnx.proto, libxsmm's code generator (GEMM
    # micro-kernels generated at compile time), Criterion for the unit tests
    gcc libc6-dev meson ninja-build pkg-config
    llvm-19-dev clang-19 lld-19
    libprotobuf-c-dev protobuf-c-compiler libonnx-dev libelf-dev
    libxsmm-dev
    libcriterion-dev
    # hardening: libFuzzer and clang's sanitizer run-times (ASan, UBSan, TSan) for the fuzz
    # targets (tests/fuzz/, scripts/fuzz.sh) and the sanitized predict runs
    libfuzzer-19-dev libclang-rt-19-dev
    # example and tests: training and export of the digits model, test models, nm
    python3 python3-numpy python3-onnx python3-torch python3-sklearn
    binutils
    # edge targets: emulators (qemu-user for Linux targets, qemu-system for boards), cross
    # compilers that link the test driver and the firmware (glibc for Linux targets, picolibc
    # for bare metal), cmake for the CMake integration (cmake/kiln.cmake)
    qemu-user qemu-system-arm qemu-system-misc
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
    gcc-arm-none-eabi picolibc-arm-none-eabi gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
    cmake
)

missing_packages() {
    local p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            echo "$p"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages)
    if [[ -z $missing ]]; then
        echo "== packages: all ${#packages[@]} already installed"
        return
    fi
    echo "== packages: installing" $missing
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup.sh: installing packages needs root (run it as root, or install:" $missing ")" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086  # one word per package
    apt-get install -y -q --no-install-recommends $missing
}

build_kiln() {
    if [[ ! -f $build/build.ninja ]]; then
        echo "== meson setup $build"
        # shellcheck disable=SC2086  # a list of arguments
        meson setup ${KILN_MESON_ARGS:-} "$build" || meson setup --wipe ${KILN_MESON_ARGS:-} "$build"
    fi
    echo "== ninja -C $build"
    ninja -C "$build"
}

run_example() {
    local example=$build/examples/digits
    if [[ ! -x $example ]]; then
        echo "setup.sh: $example was not built (python3 with torch, sklearn and onnx missing?)" >&2
        exit 1
    fi
    echo "== $example   (digits.onnx compiled by kiln into $build/examples/digits.o + digits.h)"
    "$example"
}

run_firmware() {
    local firmware=$build/examples/firmware/firmware-cortex-m4.elf
    if [[ ! -f $firmware ]]; then
        echo "setup.sh: $firmware was not built (arm-none-eabi-gcc missing?)" >&2
        exit 1
    fi
    echo "== $firmware under qemu-system-arm -M mps2-an386   (Cortex-M4, semihosting)"
    qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$firmware"
}

install_packages
build_kiln
run_example
run_firmware

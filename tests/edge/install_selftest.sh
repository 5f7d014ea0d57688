#!/bin/sh
# install_selftest.sh BUILD_DIR SOURCE_DIR DIGITS_DIR: what a user of an installed kiln gets.
#   1. `meson install --destdir` into a temporary folder: kiln, kiln.h, kiln_pool.h, kiln.pc and
#      the CMake package are there, and pkg-config answers for kiln;
#   2. the Cortex-M4 firmware (examples/firmware/CMakeLists.txt) configured as a cross build
#      with cmake/arm-none-eabi.cmake finds that kiln through find_package(kiln), compiles the
#      model with kiln_add_model, links, and runs under qemu-system-arm with a PASS.
# Exits 77 (skip) when cmake, pkg-config, arm-none-eabi-gcc or qemu-system-arm is missing.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
digits=$(cd "$3" && pwd)
for tool in cmake pkg-config arm-none-eabi-gcc qemu-system-arm; do
    command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; exit 1; }
prefix=$tmp/root$(meson introspect "$build" --buildoptions |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
for f in bin/kiln include/kiln.h include/kiln_pool.h; do
    [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
pc=$(find "$prefix" -name kiln.pc | head -1)
config=$(find "$prefix" -name kilnConfig.cmake | head -1)
[ -n "$pc" ] || { echo "FAIL: kiln.pc not installed"; exit 1; }
[ -n "$config" ] || { echo "FAIL: kilnConfig.cmake not installed"; exit 1; }
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$tmp/root pkg-config --cflags kiln)
echo "pkg-config --cflags kiln: $cflags"
case $cflags in *"$prefix/include"*) ;; *) echo "FAIL: kiln.pc does not point at $prefix/include"; exit 1 ;; esac

cmake -S "$src/examples/firmware" -B "$tmp/fw" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/arm-none-eabi.cmake" \
    -Dkiln_DIR="$(dirname "$config")" -DDIGITS_DIR="$digits" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/fw" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
out=$(qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$tmp/fw/firmware.elf" 2>&1) ||
    { echo "$out"; echo "FAIL: the CMake-built firmware failed"; exit 1; }
echo "$out" | tail -3
echo "$out" | grep -q '^PASS$'

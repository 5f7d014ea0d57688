/*
 * targets/x86_64.c — the x86-64 (Linux, SysV ABI) target descriptors, one per
 * microarchitecture level of the x86-64 psABI.
 *
 * Data only: everything the passes and back ends need to know about a target is here, so that
 * nothing outside targets/ is x86-specific. The baseline "x86-64" (SSE2) keeps objects runnable
 * on every x86-64 machine and stays the default; it is also why runtime-min provides
 * floor/ceil/round itself (the LLVM intrinsics would need SSE4.1 and otherwise become libm
 * calls). Objects of v2..v4 carry the ISA level they need in an ELF property note, so that the
 * loader refuses them on an older CPU instead of letting them fault (codegen/llvm/module.c).
 *
 * Cache sizes are the levels' usual minimum (32 KiB L1 data, 1 MiB L2); the tile pass only uses
 * them to keep a block's working set resident, so a conservative figure costs little.
 */
#include "kl.h"

const kl_target kl_target_x86_64 = {
    .name = "x86-64",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64",
    .features = "",
    .description = "baseline x86-64: SSE2, runs on every x86-64 CPU",
    .vector_bits = 128,
    .vector_registers = 16,
    .l1_bytes = 32768,
    .l2_bytes = 1048576,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 1,
    .fma = false,
    .float_bits = 64,
};

const kl_target kl_target_x86_64_v2 = {
    .name = "x86-64-v2",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64-v2",
    .features = "",
    .description = "x86-64-v2: SSE4.2, SSSE3, POPCNT (Nehalem and later)",
    .vector_bits = 128,
    .vector_registers = 16,
    .l1_bytes = 32768,
    .l2_bytes = 1048576,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 2,
    .fma = false,
    .float_bits = 64,
};

const kl_target kl_target_x86_64_v3 = {
    .name = "x86-64-v3",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64-v3",
    .features = "",
    .description = "x86-64-v3: AVX2, FMA, BMI2 (Haswell, Zen and later)",
    .vector_bits = 256,
    .vector_registers = 16,
    .l1_bytes = 32768,
    .l2_bytes = 1048576,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 3,
    .fma = true,
    .float_bits = 64,
};

/* 512-bit vectors are asked for explicitly: LLVM's generic tuning otherwise prefers 256-bit
 * ones for the loops its own vectorizer handles. */
const kl_target kl_target_x86_64_v4 = {
    .name = "x86-64-v4",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64-v4",
    .features = "-prefer-256-bit",
    .description = "x86-64-v4: AVX-512 F/BW/CD/DQ/VL (Skylake-SP, Zen 4 and later)",
    .vector_bits = 512,
    .vector_registers = 32,
    .l1_bytes = 32768,
    .l2_bytes = 1048576,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 4,
    .fma = true,
    .float_bits = 64,
};

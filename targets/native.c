/*
 * targets/native.c — "native": the CPU kiln itself runs on.
 *
 * The descriptor is a placeholder whose CPU and features read "native"; the driver resolves it,
 * before any pass reads the target, into a full descriptor with the host's CPU name and
 * features as LLVM reports them and the vector width, registers and caches they imply
 * (codegen/llvm/host.c). An object compiled for native is meant for the machine that compiled
 * it, or for identical ones.
 */
#include "kl.h"

const kl_target kl_target_native = {
    .name = "native",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = KL_TARGET_NATIVE,
    .features = KL_TARGET_NATIVE,
    .description = "the host CPU and all its features (resolved when compiling)",
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

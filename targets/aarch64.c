/*
 * targets/aarch64.c — 64-bit Arm Linux targets (phones, Raspberry Pi 3/4/5, Graviton, ...).
 *
 * Data only. NEON (Advanced SIMD) is part of every ARMv8-A core, so the baseline already has
 * 128-bit vectors, 32 vector registers and fused multiply-add; "generic" is LLVM's tuning for
 * no particular core. The dotprod variant targets ARMv8.2-A cores (Cortex-A55/A76 and later:
 * Pi 5, most phones since 2018) and also tunes scheduling for the A76.
 *
 * Caches: 32 KiB L1d and 512 KiB L2 are the small end of what these cores ship (Cortex-A53 in a
 * Pi 3); the tile pass only uses them to keep a block's working set resident.
 *
 * Tests build a static program with Debian's aarch64-linux-gnu-gcc and run it under qemu-user,
 * whose default CPU ("max") implements every feature either variant uses.
 */
#include "kl.h"

/* gold (binutils-aarch64-linux-gnu has it) links the static test program in half bfd's time */
#define AARCH64_LINK "aarch64-linux-gnu-gcc -O1 -static -fuse-ld=gold"
#define AARCH64_RUN "qemu-aarch64"

const kl_target kl_target_aarch64_linux = {
    .name = "aarch64-linux",
    .triple = "aarch64-unknown-linux-gnu",
    .cpu = "generic",
    .features = "+neon,+fp-armv8",
    .description = "64-bit Arm Linux, ARMv8-A baseline: NEON 128-bit, FMA",
    .vector_bits = 128,
    .vector_registers = 32,
    .l1_bytes = 32768,
    .l2_bytes = 524288,
    .float_abi = "hard",
    .hosted = true,
    .runtime_bitcode = "aarch64",
    .isa_level = 0,
    .fma = true,
    .abi = "",
    .float_bits = 64,
    .optimize_for = KL_FOR_SPEED,
    .link = AARCH64_LINK,
    .run = AARCH64_RUN,
};

const kl_target kl_target_aarch64_linux_dotprod = {
    .name = "aarch64-linux-dotprod",
    .triple = "aarch64-unknown-linux-gnu",
    .cpu = "cortex-a76",
    .features = "+neon,+fp-armv8,+dotprod,+fullfp16",
    .description = "64-bit Arm Linux, ARMv8.2-A: NEON with dot product and fp16 (A76 tuning)",
    .vector_bits = 128,
    .vector_registers = 32,
    .l1_bytes = 65536,
    .l2_bytes = 262144,
    .float_abi = "hard",
    .hosted = true,
    .runtime_bitcode = "aarch64",
    .isa_level = 0,
    .fma = true,
    .abi = "",
    .float_bits = 64,
    .optimize_for = KL_FOR_SPEED,
    .link = AARCH64_LINK,
    .run = AARCH64_RUN,
};

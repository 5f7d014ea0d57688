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

/* What the psABI levels need, as CPUID reports it (leaf 1: ecx; leaf 7: ebx; 0x80000001:
 * ecx), for the run-time dispatch of baseline objects. v2: SSE3, SSSE3, CX16, SSE4.1, SSE4.2,
 * POPCNT, LAHF/SAHF. v3 adds AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE and the OS's
 * XSAVE support (OSXSAVE, then XCR0: SSE and AVX state). v4 adds AVX-512 F, BW, CD, DQ, VL
 * and the opmask and ZMM state. */
enum { EAX, EBX, ECX, EDX };
#define V2_LEAF1_ECX ((1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 23))
#define V3_LEAF1_ECX (V2_LEAF1_ECX | (1u << 12) | (1u << 22) | (1u << 27) | (1u << 28) | (1u << 29))
#define V3_LEAF7_EBX ((1u << 3) | (1u << 5) | (1u << 8))
#define V4_LEAF7_EBX (V3_LEAF7_EBX | (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31))
#define EXT_LEAF1_ECX ((1u << 0) | (1u << 5)) /* LAHF/SAHF, LZCNT */

static const kl_cpuid_bits v3_needs[] = {
    {1, ECX, V3_LEAF1_ECX}, {7, EBX, V3_LEAF7_EBX}, {0x80000001u, ECX, EXT_LEAF1_ECX}};
static const kl_cpuid_bits v4_needs[] = {
    {1, ECX, V3_LEAF1_ECX}, {7, EBX, V4_LEAF7_EBX}, {0x80000001u, ECX, EXT_LEAF1_ECX}};

/* A baseline object for a model with enough work also carries the model compiled for v4 and
 * v3 and runs the best one the CPU has (codegen/llvm/dispatch.c). */
extern const kl_target kl_target_x86_64_v3, kl_target_x86_64_v4;
static const kl_target *const x86_64_dispatch[] = {&kl_target_x86_64_v4, &kl_target_x86_64_v3,
                                                   NULL};

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
    .dispatch = x86_64_dispatch,
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
    .cpuid_needs = v3_needs,
    .n_cpuid_needs = 3,
    .xcr0_needs = 0x6,
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
    .cpuid_needs = v4_needs,
    .n_cpuid_needs = 3,
    .xcr0_needs = 0xe6,
};

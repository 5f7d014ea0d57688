/*
 * targets/cuda.c — the NVIDIA GPU targets, one per compute capability kiln compiles for.
 *
 * Data only. The kernels of these targets are CUDA C that NVRTC compiles, when the model is
 * compiled, into a cubin for `sm` (plus PTX, which newer GPUs compile when the cubin does not
 * fit them); the host side that loads and launches them is ordinary LLVM code for x86-64, so
 * triple, cpu and isa_level describe that host code.
 *
 * How the kernel passes read the GPU fields:
 *  - vector_bits: 256, so a float VECTOR loop has 8 lanes. On the GPU those lanes are 8
 *    neighbouring threads, each reading the next element of the output's contiguous dimension:
 *    one 32-byte sector per group of 8, whatever the operands' strides elsewhere.
 *  - vector_registers: the registers one thread's register block (accumulators and operands)
 *    may take; 40 keeps a thread under 128 registers with its indices, so two blocks of 256
 *    threads fit on a multiprocessor.
 *  - sm_count x threads_per_sm: how many threads the grid needs before blocks may grow (tile.c
 *    keeps a quarter of the GPU's resident threads busy before it gives a thread more outputs).
 * Cache sizes are the reference GPU's L1 (shared with shared memory) and L2.
 */
#include "kl.h"

const kl_target kl_target_cuda_sm80 = {
    .name = "cuda-sm80",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64",
    .features = "",
    .description = "NVIDIA Ampere, sm_80 (A100; runs on sm_86 and sm_87 GPUs as well)",
    .vector_bits = 256,
    .vector_registers = 40,
    .l1_bytes = 196608,
    .l2_bytes = 41943040,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 1,
    .fma = true,
    .backend = KL_BACKEND_CUDA,
    .sm = 80,
    .shared_bytes = 49152,
    .sm_count = 108,
    .threads_per_sm = 2048,
};

const kl_target kl_target_cuda_sm89 = {
    .name = "cuda-sm89",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64",
    .features = "",
    .description = "NVIDIA Ada Lovelace, sm_89 (L40S, L4, RTX 40xx)",
    .vector_bits = 256,
    .vector_registers = 40,
    .l1_bytes = 131072,
    .l2_bytes = 50331648,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 1,
    .fma = true,
    .backend = KL_BACKEND_CUDA,
    .sm = 89,
    .shared_bytes = 49152,
    .sm_count = 142,
    .threads_per_sm = 1536,
};

const kl_target kl_target_cuda_sm90 = {
    .name = "cuda-sm90",
    .triple = "x86_64-unknown-linux-gnu",
    .cpu = "x86-64",
    .features = "",
    .description = "NVIDIA Hopper, sm_90 (H100, H200, GH200)",
    .vector_bits = 256,
    .vector_registers = 40,
    .l1_bytes = 262144,
    .l2_bytes = 52428800,
    .float_abi = "",
    .hosted = true,
    .runtime_bitcode = "x86_64",
    .isa_level = 1,
    .fma = true,
    .backend = KL_BACKEND_CUDA,
    .sm = 90,
    .shared_bytes = 49152,
    .sm_count = 132,
    .threads_per_sm = 2048,
};

/*
 * targets/riscv.c — RISC-V targets: 64-bit Linux (rv64gc, and rv64gcv with the vector
 * extension) and 32-bit bare metal (rv32imac without an FPU, rv32imafc with a single-precision
 * one).
 *
 * Data only. rv64gc has no SIMD: vector width 0 (one lane), so the tile pass leaves kernels as
 * they are and LLVM's scalar code does the work; its 32 float registers and fmadd serve the
 * scalar loops. With V, LLVM maps 128-bit fixed vectors onto RVV (VLEN >= 128 is what V
 * guarantees), so kernels are blocked as for NEON. QEMU 7.2 (Debian 12's) aborts on every
 * vfcvt/vfwcvt/vfncvt with the .rtz suffix (an assertion in its translator; a two-instruction
 * program reproduces it), which LLVM uses for float-to-integer conversions: tests that convert so are left out
 * of this target's conformance list (tests/conformance/riscv64-v.txt says which). The ABI comes from the descriptor: lp64d on
 * Linux, ilp32 (soft float) and ilp32f (floats in float registers) on bare metal, and must
 * match the toolchain's multilib that links the program.
 *
 * Bare metal: no OS, no threads, no libm; programs are linked with Debian's
 * riscv64-unknown-elf-gcc and picolibc (semihosting for I/O) and run on QEMU's virt board (RAM
 * at 0x80000000; `-bios none` starts the program directly). Code and constants go in the first
 * 64 MiB, data, heap and stack in the next.
 */
#include "kl.h"

#define RV64_LINK "riscv64-linux-gnu-gcc -O1 -static"
#define RV32_LINK(march, mabi)                                                                  \
    "riscv64-unknown-elf-gcc -march=" march " -mabi=" mabi " -O1 --specs=picolibc.specs "      \
    "--oslib=semihost --crt0=semihost -Wl,--defsym=__flash=0x80000000 "                         \
    "-Wl,--defsym=__flash_size=0x4000000 -Wl,--defsym=__ram=0x84000000 "                        \
    "-Wl,--defsym=__ram_size=0x4000000 -Wl,--defsym=__stack_size=0x10000"
#define RV32_RUN                                                                                \
    "qemu-system-riscv32 -M virt -bios none -m 256M -nographic -monitor none -serial none "      \
    "-semihosting-config enable=on,target=native -kernel"

const kl_target kl_target_riscv64_linux = {
    .name = "riscv64-linux",
    .triple = "riscv64-unknown-linux-gnu",
    .cpu = "generic-rv64",
    .features = "+m,+a,+f,+d,+c",
    .description = "64-bit RISC-V Linux, rv64gc: no SIMD, FMA, double-precision FPU",
    .vector_bits = 0,
    .vector_registers = 0,
    .l1_bytes = 32768,
    .l2_bytes = 1048576,
    .float_abi = "hard",
    .hosted = true,
    .runtime_bitcode = "riscv64",
    .isa_level = 0,
    .fma = true,
    .abi = "lp64d",
    .float_bits = 64,
    .optimize_for = KL_FOR_SPEED,
    .link = RV64_LINK,
    .run = "qemu-riscv64 -cpu rv64",
};

const kl_target kl_target_riscv64_linux_v = {
    .name = "riscv64-linux-v",
    .triple = "riscv64-unknown-linux-gnu",
    .cpu = "generic-rv64",
    .features = "+m,+a,+f,+d,+c,+v",
    .description = "64-bit RISC-V Linux, rv64gcv: RVV as 128-bit vectors (VLEN >= 128), FMA",
    .vector_bits = 128,
    .vector_registers = 32,
    .l1_bytes = 32768,
    .l2_bytes = 1048576,
    .float_abi = "hard",
    .hosted = true,
    .runtime_bitcode = "riscv64",
    .isa_level = 0,
    .fma = true,
    .abi = "lp64d",
    .float_bits = 64,
    .optimize_for = KL_FOR_SPEED,
    .link = RV64_LINK,
    .run = "qemu-riscv64 -cpu rv64,v=true,vlen=128,elen=64,vext_spec=v1.0",
};

const kl_target kl_target_riscv32 = {
    .name = "riscv32",
    .triple = "riscv32-unknown-unknown-elf",
    .cpu = "generic-rv32",
    .features = "+m,+a,+c",
    .description = "32-bit RISC-V bare metal, rv32imac: no FPU (soft float, ilp32)",
    .vector_bits = 0,
    .vector_registers = 0,
    .l1_bytes = 0,
    .l2_bytes = 0,
    .float_abi = "soft",
    .hosted = false,
    .runtime_bitcode = "riscv32",
    .isa_level = 0,
    .fma = false,
    .abi = "ilp32",
    .float_bits = 0,
    .optimize_for = KL_FOR_SIZE,
    .link = RV32_LINK("rv32imac", "ilp32"),
    .run = RV32_RUN,
};

const kl_target kl_target_riscv32_f = {
    .name = "riscv32-f",
    .triple = "riscv32-unknown-unknown-elf",
    .cpu = "generic-rv32",
    .features = "+m,+a,+f,+c",
    .description = "32-bit RISC-V bare metal, rv32imafc: single-precision FPU (ilp32f)",
    .vector_bits = 0,
    .vector_registers = 0,
    .l1_bytes = 0,
    .l2_bytes = 0,
    .float_abi = "hard",
    .hosted = false,
    .runtime_bitcode = "riscv32f",
    .isa_level = 0,
    .fma = true,
    .abi = "ilp32f",
    .float_bits = 32,
    .optimize_for = KL_FOR_SIZE,
    .link = RV32_LINK("rv32imafc", "ilp32f"),
    .run = RV32_RUN,
};

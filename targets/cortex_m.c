/*
 * targets/cortex_m.c — Arm Cortex-M microcontrollers, bare metal.
 *
 * Data only. No OS, threads or libm: predict runs on the calling thread and whatever float
 * work the FPU cannot do (doubles on FPv4-SP, everything on the M0+) is computed by
 * runtime-min in software or by the compiler's support library (libgcc's __aeabi_* helpers),
 * which every bare-metal toolchain links. The float ABI is in the triple: "eabihf" passes
 * floats in FPU registers (M4, M7, M55), "eabi" in integer ones (M0+). Apart from the M55's
 * Helium (MVE: eight 128-bit Q registers), none has SIMD for floats, so the vector width is 0
 * and the tile pass leaves their kernels alone. They default to optimizing for size: on a
 * microcontroller RAM and flash run out before cycles do.
 *
 * Running: Debian's arm-none-eabi-gcc with picolibc links the test driver (semihosting for
 * files and exit status), and qemu-system-arm runs it on an MPS2/MPS3 FPGA board model:
 * mps2-an386 (Cortex-M4), mps2-an500 (Cortex-M7), mps3-an547 (Cortex-M55) and, for the M0+,
 * mps2-an385: its Cortex-M3 executes the ARMv6-M instruction set unchanged (QEMU 7.2 has no
 * M0+ board with enough RAM; the micro:bit's 16 KiB hold no test data). Code and constants
 * sit in the 4 MiB at address 0 (the vector table must be there), data, heap and stack in the
 * 16 MiB PSRAM (at 0x21000000 on the AN385/AN386, 0x60000000 on the AN500); on the AN547 code
 * and constants have its 512 KiB ITCM (so only models whose weights fit run there) and data
 * 16 MiB of DDR at 0x60000000.
 */
#include "kl.h"

#define PICOLIBC_SEMIHOST "-O1 --specs=picolibc.specs --oslib=semihost --crt0=semihost "
#define MPS2_MEMORY                                                                             \
    "-Wl,--defsym=__flash=0x0 -Wl,--defsym=__flash_size=0x400000 "                              \
    "-Wl,--defsym=__ram=0x21000000 -Wl,--defsym=__ram_size=0x1000000 "                          \
    "-Wl,--defsym=__stack_size=0x10000"
#define QEMU_ARM(board)                                                                         \
    "qemu-system-arm -M " board " -nographic -monitor none -serial none "                       \
    "-semihosting-config enable=on,target=native -kernel"

const kl_target kl_target_cortex_m4 = {
    .name = "cortex-m4",
    .triple = "thumbv7em-unknown-none-eabihf",
    .cpu = "cortex-m4",
    .features = "",
    .description = "Arm Cortex-M4 (ARMv7E-M), FPv4-SP single-precision FPU, hard float",
    .vector_bits = 0,
    .vector_registers = 0,
    .l1_bytes = 0,
    .l2_bytes = 0,
    .float_abi = "hard",
    .hosted = false,
    .runtime_bitcode = "arm-hf",
    .isa_level = 0,
    .fma = true,
    .abi = "",
    .float_bits = 32,
    .optimize_for = KL_FOR_SIZE,
    .link = "arm-none-eabi-gcc -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 "
            PICOLIBC_SEMIHOST MPS2_MEMORY,
    .run = QEMU_ARM("mps2-an386"),
};

const kl_target kl_target_cortex_m7 = {
    .name = "cortex-m7",
    .triple = "thumbv7em-unknown-none-eabihf",
    .cpu = "cortex-m7",
    .features = "",
    .description = "Arm Cortex-M7 (ARMv7E-M), FPv5 double-precision FPU, hard float",
    .vector_bits = 0,
    .vector_registers = 0,
    .l1_bytes = 16384,
    .l2_bytes = 0,
    .float_abi = "hard",
    .hosted = false,
    .runtime_bitcode = "arm-hf",
    .isa_level = 0,
    .fma = true,
    .abi = "",
    .float_bits = 64,
    .optimize_for = KL_FOR_SIZE,
    .link = "arm-none-eabi-gcc -mcpu=cortex-m7 -mfloat-abi=hard -mfpu=fpv5-d16 "
            PICOLIBC_SEMIHOST "-Wl,--defsym=__flash=0x0 -Wl,--defsym=__flash_size=0x400000 "
            "-Wl,--defsym=__ram=0x60000000 -Wl,--defsym=__ram_size=0x1000000 "
            "-Wl,--defsym=__stack_size=0x10000",
    .run = QEMU_ARM("mps2-an500"),
};

const kl_target kl_target_cortex_m55 = {
    .name = "cortex-m55",
    .triple = "thumbv8.1m.main-unknown-none-eabihf",
    .cpu = "cortex-m55",
    .features = "",
    .description = "Arm Cortex-M55 (ARMv8.1-M), Helium (MVE) 128-bit vectors, FPU, hard float",
    .vector_bits = 128,
    .vector_registers = 8,
    .l1_bytes = 32768,
    .l2_bytes = 0,
    .float_abi = "hard",
    .hosted = false,
    .runtime_bitcode = "arm-hf",
    .isa_level = 0,
    .fma = true,
    .abi = "",
    .float_bits = 64,
    .optimize_for = KL_FOR_SIZE,
    .link = "arm-none-eabi-gcc -mcpu=cortex-m55 -mfloat-abi=hard " PICOLIBC_SEMIHOST
            "-Wl,--defsym=__flash=0x0 -Wl,--defsym=__flash_size=0x80000 "
            "-Wl,--defsym=__ram=0x60000000 -Wl,--defsym=__ram_size=0x1000000 "
            "-Wl,--defsym=__stack_size=0x10000",
    .run = QEMU_ARM("mps3-an547"),
};

const kl_target kl_target_cortex_m0plus = {
    .name = "cortex-m0plus",
    .triple = "thumbv6m-unknown-none-eabi",
    .cpu = "cortex-m0plus",
    .features = "",
    .description = "Arm Cortex-M0+ (ARMv6-M): no FPU, no hardware divide, soft float",
    .vector_bits = 0,
    .vector_registers = 0,
    .l1_bytes = 0,
    .l2_bytes = 0,
    .float_abi = "soft",
    .hosted = false,
    .runtime_bitcode = "arm-soft",
    .isa_level = 0,
    .fma = false,
    .abi = "",
    .float_bits = 0,
    .optimize_for = KL_FOR_SIZE,
    .link = "arm-none-eabi-gcc -mcpu=cortex-m0plus -mfloat-abi=soft " PICOLIBC_SEMIHOST
            MPS2_MEMORY,
    .run = QEMU_ARM("mps2-an385"),
};

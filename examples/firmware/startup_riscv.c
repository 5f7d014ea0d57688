/*
 * startup_riscv.c — what runs before main on a 32-bit RISC-V core, with no C library.
 *
 * QEMU's virt board started with `-bios none` jumps to the program's entry at 0x80000000 in
 * machine mode. _start (the only assembly) sets the stack pointer and the global pointer, then
 * reset copies initialized data, zeroes .bss, turns the FPU on when the core has one (mstatus.FS:
 * float instructions trap while it is off), calls main and reports its status through
 * semihosting. A trap ends the program with a message instead of hanging.
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
int main(void);

static void trap_handler(void) {
    semihost_write("firmware: trap (illegal instruction, misaligned or faulting access)\n");
    semihost_exit(3);
}

/* CSR instructions are the Zicsr extension, which binutils 2.40 wants named; naming it in
 * -march would miss the toolchain's rv32imac multilib, so only these lines enable it. */
#define WITH_ZICSR(insns) ".option push\n\t.option arch, +zicsr\n\t" insns "\n\t.option pop"

__attribute__((used)) void reset_handler(void) {
    __asm__ volatile(WITH_ZICSR("csrw mtvec, %0") ::"r"(trap_handler));
#if defined(__riscv_flen)
    __asm__ volatile(WITH_ZICSR("li t0, 0x2000\n\tcsrs mstatus, t0") ::: "t0"); /* FS: on */
#endif
    for (uint32_t *s = &__data_load, *d = &__data_start; d < &__data_end;) *d++ = *s++;
    for (uint32_t *d = &__bss_start; d < &__bss_end;) *d++ = 0;
    semihost_exit(main());
}

__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "  .option push\n"
        "  .option norelax\n"
        "  la gp, __global_pointer$\n"
        "  .option pop\n"
        "  la sp, __stack_top\n"
        "  j reset_handler\n");

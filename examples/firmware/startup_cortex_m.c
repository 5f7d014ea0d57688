/*
 * startup_cortex_m.c — what runs before main on a Cortex-M, with no C library underneath.
 *
 * The vector table goes first in flash (the linker script keeps `.vectors` at address 0, where
 * the core reads its initial stack pointer and reset address). Reset copies initialized data
 * from flash to RAM, zeroes .bss, turns the FPU on (the model's code uses it, and an access
 * with the FPU off faults), calls main and reports its status to the host through
 * semihosting. Every fault ends the program with a message instead of hanging, so a test run
 * under QEMU fails fast. The same file serves the M4 (FPv4 on) and the M0+ (no FPU: __ARM_FP
 * undefined).
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);

static void enable_fpu(void) {
#if defined(__ARM_FP)
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20; /* CP10 and CP11: full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

void reset_handler(void) {
    for (uint32_t *s = &__data_load, *d = &__data_start; d < &__data_end;) *d++ = *s++;
    for (uint32_t *d = &__bss_start; d < &__bss_end;) *d++ = 0;
    enable_fpu();
    semihost_exit(main());
}

static void fault_handler(void) {
    semihost_write("firmware: fault (HardFault, MemManage, BusFault or UsageFault)\n");
    semihost_exit(3);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, reset_handler,
    fault_handler, fault_handler, fault_handler, fault_handler, fault_handler, /* NMI..Usage */
};

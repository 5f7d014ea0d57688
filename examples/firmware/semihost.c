/*
 * semihost.c — the two semihosting calls the firmware uses (see semihost.h).
 *
 * The trap differs by architecture: BKPT 0xAB on Arm M-profile; on RISC-V an EBREAK between two
 * marker instructions (slli x0, x0, 0x1f and srai x0, x0, 7), so that a stray EBREAK is not
 * taken for a call. The operation goes in r0 / a0, its argument in r1 / a1. SYS_EXIT on 32-bit
 * targets takes a reason code, not a status: ADP_Stopped_ApplicationExit ends the run
 * successfully (QEMU exits 0); any other reason is a failure (QEMU exits 1).
 */
#include "semihost.h"

enum {
    SYS_WRITE0 = 0x04,
    SYS_EXIT = 0x18,
    ADP_STOPPED_APPLICATION_EXIT = 0x20026,
    ADP_STOPPED_RUNTIME_ERROR = 0x20023,
};

#if defined(__riscv)
static int semihost_call(int op, const void *arg) {
    register int a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    __asm__ volatile(".option push\n\t.option norvc\n\t.balign 16\n\t"
                     "slli x0, x0, 0x1f\n\tebreak\n\tsrai x0, x0, 7\n\t.option pop"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}
#else
static int semihost_call(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
#endif

void semihost_write(const char *s) { semihost_call(SYS_WRITE0, s); }

_Noreturn void semihost_exit(int status) {
    semihost_call(SYS_EXIT, (const void *)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                       : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}

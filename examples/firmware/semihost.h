/*
 * semihost.h — output and exit through Arm semihosting (a debugger or QEMU on the other side).
 *
 * Semihosting is a breakpoint instruction (BKPT 0xAB on M-profile) with an operation number in
 * r0 and its argument in r1; the host performs the operation. It needs no UART driver, which
 * keeps the example's only dependency the model itself.
 */
#ifndef FIRMWARE_SEMIHOST_H
#define FIRMWARE_SEMIHOST_H

void semihost_write(const char *s);          /* SYS_WRITE0: a NUL-terminated string */
_Noreturn void semihost_exit(int status);    /* SYS_EXIT: 0 = success, else failure */

#endif

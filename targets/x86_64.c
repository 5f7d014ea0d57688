/*
 * targets/x86_64.c — the x86-64 (Linux, SysV ABI) target descriptor.
 *
 * Data only: everything the back ends need to know about the target is here, so that nothing
 * outside targets/ is x86-specific. The baseline CPU "x86-64" (SSE2) keeps objects runnable on
 * every x86-64 machine; it is also why runtime-min provides floor/ceil/round itself (the LLVM
 * intrinsics would need SSE4.1 and otherwise become libm calls).
 */
#include "kl.h"

const kl_target kl_target_x86_64 = {
    "x86-64",                    /* name */
    "x86_64-unknown-linux-gnu",  /* LLVM triple */
    "x86-64",                    /* CPU */
    "",                          /* features */
    128,                         /* vector bits (SSE2) */
    16,                          /* vector registers */
    32768,                       /* L1 data cache */
    1048576,                     /* L2 cache */
    "",                          /* float ABI: default */
    true,                        /* hosted */
    "x86_64",                    /* runtime-min bitcode name */
};

/*
 * kernel/passes.c — the kernel pass list, as data: the driver runs it in order between
 * lowering and the memory plan, and `--dump-ir NAME` prints the kernels after the pass of that
 * name.
 */
#include "kl.h"

const kl_kernel_pass kl_kernel_passes[] = {
    {"fold", kpass_fold},
    {"fuse", kpass_fuse},
    {"halo", kpass_halo},
    {"tile", kpass_tile},
    {"tasks", kpass_tasks},
    {NULL, NULL},
};

/*
 * kernel/passes.c — the kernel pass list, as data: the driver runs it in order between
 * lowering and the memory plan, and `--dump-ir NAME` prints the kernels after the pass of that
 * name. When optimizing for size the driver skips the passes marked speed-only: halo's padded
 * copies take workspace, and tile's register blocks, unrolled remainders, region kernels and
 * packed weight copies multiply code and constants.
 */
#include "kl.h"

const kl_kernel_pass kl_kernel_passes[] = {
    {"fold", kpass_fold},
    {"fuse", kpass_fuse},
    {"halo", kpass_halo, .speed_only = true},
    {"tile", kpass_tile, .speed_only = true},
    {"tasks", kpass_tasks},
    {NULL, NULL},
};

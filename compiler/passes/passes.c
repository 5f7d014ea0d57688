/*
 * passes.c — the pass list, as data: the driver runs it in order and `--dump-ir NAME` prints the
 * graph after the pass of that name. When optimizing for size the driver skips the passes marked
 * speed-only: layout's channels-last convolutions need transposed copies of their activations
 * (workspace), which a microcontroller has less of than time.
 */
#include "kl.h"

const kl_pass kl_passes[] = {
    {"resolve", pass_resolve_ops},
    {"infer", pass_infer_shapes},
    {"bnfold", pass_fold_batchnorm},
    {"layout", pass_layout, .speed_only = true},
    {"dce", pass_dead_nodes},
    {NULL, NULL},
};

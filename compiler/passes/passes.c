/*
 * passes.c — the pass list, as data: the driver runs it in order and `--dump-ir NAME` prints the
 * graph after the pass of that name.
 */
#include "kl.h"

const kl_pass kl_passes[] = {
    {"resolve", pass_resolve_ops},
    {"infer", pass_infer_shapes},
    {"bnfold", pass_fold_batchnorm},
    {"layout", pass_layout},
    {"dce", pass_dead_nodes},
    {NULL, NULL},
};

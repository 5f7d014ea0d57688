/*
 * table.c — the op table: every operator kiln supports, looked up by (domain, name, opset).
 *
 * The families live in their own files (see ops.h); this file only joins them, so adding an
 * operator never touches more than its family's file.
 */
#include <string.h>

#include "ops.h"

static const kl_op *const families[] = {
    kl_ops_elementwise, kl_ops_activation, kl_ops_matmul, kl_ops_conv, kl_ops_conv_variants,
    kl_ops_pool,
    kl_ops_norm,        kl_ops_reduce,     kl_ops_reshape, kl_ops_dropout, kl_ops_random,
    kl_ops_bernoulli,   kl_ops_multinomial, kl_ops_movement,
    kl_ops_indexing,    kl_ops_resize,     kl_ops_loss,       kl_ops_recurrent, kl_ops_attention,
    kl_ops_linear_attention, kl_ops_tfidf, kl_ops_trees, kl_ops_trees_legacy, kl_ops_center_crop_pad,
    kl_ops_gridsample,  kl_ops_einsum,     kl_ops_dft,        kl_ops_roialign,
    kl_ops_quantize,    kl_ops_training,   kl_ops_gradient,   kl_ops_ml,         kl_ops_det,
    kl_ops_control,     kl_ops_topk,       kl_ops_signal,     kl_ops_col2im,
    kl_ops_affine_grid, kl_ops_ml_linear, kl_ops_ml_features, kl_ops_ml_svm, kl_ops_sequence,
    kl_ops_strings,     kl_ops_string_split, kl_ops_regex_full_match, kl_ops_encoders,
    kl_ops_nonzero,     kl_ops_unique,     kl_ops_nms,
    NULL,
};

static bool same_domain(const char *a, const char *b) {
    /* "ai.onnx" and "" name the same default domain */
    if (!a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

const kl_op *kl_op_find(const char *domain, const char *name, int opset) {
    for (int f = 0; families[f]; f++)
        for (const kl_op *op = families[f]; op->name; op++)
            if (same_domain(op->domain, domain) && !strcmp(op->name, name) &&
                opset >= op->since && opset <= op->until)
                return op;
    return NULL;
}

bool kl_op_known(const char *domain, const char *name) {
    for (int f = 0; families[f]; f++)
        for (const kl_op *op = families[f]; op->name; op++)
            if (same_domain(op->domain, domain) && !strcmp(op->name, name)) return true;
    return false;
}

/*
 * ml_encode.c — OneHotEncoder (ai.onnx.ml, opset 1): a category per element to a row of
 * indicators.
 *
 * Y has X's shape plus one axis of len(cats_int64s): Y[..., k] = 1 where X's element is
 * category k, else 0. As in ONNX Runtime, a float or double element is truncated toward zero
 * before the comparison (2.7 is category 2). With zeros = 0 an element of no category is an
 * error: predict returns KILN_E_INDEX_OUT_OF_RANGE (a check kernel sets the flag, as Gather's
 * index checks do), where ONNX Runtime fails the run. cats_strings needs string tensors, which
 * kiln does not hold yet.
 */
#include "arith_util.h"
#include "kiln.h"

#define ML "ai.onnx.ml"

static const char *const one_hot_encoder_attrs[] = {"cats_int64s", "cats_strings", "zeros", NULL};

static bool infer_one_hot_encoder(kl_node *n, kl_diag *d) {
    if (!kl_arith_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (!kl_dtype_is_float(x->dtype) && x->dtype != KL_I32 && x->dtype != KL_I64)
        return kl_error(d, n, "X must be int64, int32, float or double, not %s",
                        kl_dtype_name(x->dtype));
    if (kl_attr_find(n, "cats_strings"))
        return kl_error(d, n, "cats_strings: string categories need string tensors, which kiln "
                        "does not support yet (use cats_int64s)");
    const int64_t *cats;
    int k = kl_attr_ints(n, "cats_int64s", &cats);
    if (k < 1) return kl_error(d, n, "cats_int64s is missing or empty");
    if (x->shape.rank >= KL_MAX_RANK)
        return kl_error(d, n, "X has rank %d; Y would need rank %d", x->shape.rank,
                        x->shape.rank + 1);
    kl_shape s = x->shape;
    s.dim[s.rank++] = k;
    return kl_infer_set(n, 0, KL_F32, &s);
}

/* X's element, compared as ONNX Runtime does: integers as they are, floats truncated. */
static kl_expr *category_key(kl_arena *a, kl_expr *x) {
    if (!kl_dtype_is_float(x->dtype)) return kl_e_cast(a, KL_I64, x);
    kl_expr *v = kl_e_cast(a, KL_F64, x);
    kl_expr *neg = kl_e_binary(a, KL_LT, v, kl_e_const_f(a, KL_F64, 0));
    return kl_e_select(a, neg, kl_e_unary(a, KL_CEIL, v), kl_e_unary(a, KL_FLOOR, v));
}

static kl_expr *category_value(kl_arena *a, const kl_expr *key, kl_expr *cat) {
    return key->dtype == KL_F64 ? kl_e_cast(a, KL_F64, cat) : cat;
}

/* 1 where X's element (loops 0..rank-1) is category `loop rank` of the table, else 0. */
static kl_expr *is_category(kl_lower *L, kl_buffer *x, kl_buffer *cats, kl_dtype t) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    kl_expr *key = category_key(a, kl_e_load(a, x, kl_lower_ivs(L, rank)));
    kl_expr *ci = kl_e_iv(a, rank);
    kl_expr *hit = kl_e_binary(a, KL_EQ, key, category_value(a, key, kl_e_load(a, cats, &ci)));
    return kl_e_select(a, hit, kl_arith_const(a, t, 1), kl_arith_const(a, t, 0));
}

/* With zeros = 0: the number of categories each element matches, then a flag set when some
 * element matches none, which makes predict return KILN_E_INDEX_OUT_OF_RANGE. */
static void no_category_check(kl_lower *L, const kl_node *n, kl_buffer *x, kl_buffer *cats) {
    kl_arena *a = L->arena;
    int rank = x->shape.rank;
    kl_buffer *matches = kl_lower_temp(L, "matches", KL_I32, &x->shape);
    kl_kernel *m = kl_kernel_new(L->prog, n, "matches");
    m->n_par = rank;
    m->n_loops = rank + 1;
    for (int i = 0; i < rank; i++) m->extent[i] = x->shape.dim[i];
    m->extent[rank] = cats->shape.dim[0];
    m->out = matches;
    m->out_idx = kl_lower_ivs(L, rank);
    m->reduce = KL_RED_SUM;
    m->acc_dtype = KL_I32;
    m->value = is_category(L, x, cats, KL_I32);
    kl_program_add_kernel(L->prog, m);

    kl_shape scalar = {.rank = 0};
    kl_kernel *c = kl_kernel_new(L->prog, n, "no_category");
    c->n_par = 0;
    c->n_loops = rank;
    for (int i = 0; i < rank; i++) c->extent[i] = x->shape.dim[i];
    c->reduce = KL_RED_MAX;
    c->acc_dtype = KL_I32;
    c->init = kl_e_const_i(a, KL_I32, 0);
    kl_expr *none = kl_e_binary(a, KL_EQ, kl_e_load(a, matches, kl_lower_ivs(L, rank)),
                                kl_e_const_i(a, KL_I32, 0));
    c->value = kl_e_select(a, none, kl_e_const_i(a, KL_I32, 1), kl_e_const_i(a, KL_I32, 0));
    c->out = kl_lower_temp(L, "no_category", KL_I32, &scalar);
    c->out_idx = kl_lower_ivs(L, 0);
    c->error_code = KILN_E_INDEX_OUT_OF_RANGE;
    kl_program_add_kernel(L->prog, c);
}

static bool lower_one_hot_encoder(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    const int64_t *cat_values;
    int k = kl_attr_ints(n, "cats_int64s", &cat_values);
    int64_t *data = kl_alloc_array(a, (size_t)k, sizeof *data);
    for (int i = 0; i < k; i++) data[i] = cat_values[i];
    kl_shape cs = {.rank = 1, .dim = {k}};
    kl_buffer *cats = kl_program_buffer(L->prog, kl_sprintf(a, "%s_cats", n->name), KL_BUF_CONST,
                                        KL_I64, &cs);
    cats->data = cats->host = data;
    if (kl_attr_int(n, "zeros", 1) == 0) no_category_check(L, n, x, cats);
    kl_arith_map(L, n, NULL, y, is_category(L, x, cats, KL_F32));
    return true;
}

const kl_op kl_ops_ml_encode[] = {
    {ML, "OneHotEncoder", 1, 1, one_hot_encoder_attrs, infer_one_hot_encoder,
     lower_one_hot_encoder},
    {0},
};

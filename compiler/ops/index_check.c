/*
 * index_check.c — run-time index checks: KILN_E_INDEX_OUT_OF_RANGE instead of a silent clamp.
 *
 * Gather and its relatives read positions from index data that arrives with the inputs. The
 * kernels that read with them clamp each index into its axis, so that no input can make
 * compiled code read outside a buffer; but a clamped index computes a wrong answer, and
 * ONNX Runtime reports such data as an error. So the lowering adds a check kernel first: a
 * reduction over every index that yields 1 when one lies outside [-limit, limit) (negative
 * indices count from the end), into a one-element workspace flag. The kernel's error_code
 * tells the back end to test the flag right after it and return KILN_E_INDEX_OUT_OF_RANGE
 * from predict; the interpreter (constant folding) reports it as a diagnostic instead.
 */
#include "kiln.h"
#include "kl.h"

/* The limit of the index at iv_last along the last axis of the indices: the one limit, or the
 * element of a constant table of limits (index tuples: GatherND, ScatterND). */
static kl_expr *limit_expr(kl_lower *L, const int64_t *limits, int n_limits, int last_loop) {
    kl_arena *a = L->arena;
    if (n_limits == 1) return kl_e_idx(a, limits[0]);
    kl_shape s = {.rank = 1, .dim = {n_limits}};
    kl_buffer *table = kl_program_buffer(L->prog, "index_limits", KL_BUF_CONST, KL_I64, &s);
    int64_t *data = kl_alloc_array(a, (size_t)n_limits, sizeof *data);
    for (int i = 0; i < n_limits; i++) data[i] = limits[i];
    table->data = data;
    kl_expr *idx[1] = {kl_e_iv(a, last_loop)};
    return kl_e_load(a, table, idx);
}

/* Constant indices are checked now: a model that holds a bad one does not compile. */
static bool check_constant(const kl_node *n, const kl_buffer *ind, const int64_t *limits,
                           int n_limits, kl_diag *d) {
    const void *data = kl_buffer_root((kl_buffer *)ind)->data;
    for (int64_t i = 0, count = kl_shape_numel(&ind->shape); i < count; i++) {
        int64_t v = ind->dtype == KL_I32 ? ((const int32_t *)data)[i] : ((const int64_t *)data)[i];
        int64_t limit = limits[n_limits == 1 ? 0 : i % n_limits];
        if (v < -limit || v >= limit)
            return kl_error(d, n, "index %lld (element %lld of '%s') is out of range [-%lld, %lld)",
                            (long long)v, (long long)i, ind->name, (long long)limit,
                            (long long)limit);
    }
    return true;
}

void kl_lower_check_any(kl_lower *L, const kl_node *n, const char *tag, const char *flag_name,
                        const kl_shape *over, kl_expr *bad, int error_code) {
    kl_arena *a = L->arena;
    kl_shape scalar = {.rank = 0};
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_loops = over->rank;
    k->n_par = 0;
    for (int i = 0; i < over->rank; i++) k->extent[i] = over->dim[i];
    k->reduce = KL_RED_MAX;
    k->acc_dtype = KL_I32;
    k->init = kl_e_const_i(a, KL_I32, 0);
    k->value = kl_e_select(a, bad, kl_e_const_i(a, KL_I32, 1), kl_e_const_i(a, KL_I32, 0));
    k->out = kl_lower_temp(L, flag_name, KL_I32, &scalar);
    k->out_idx = kl_lower_ivs(L, 0);
    k->error_code = error_code;
    kl_program_add_kernel(L->prog, k);
}

bool kl_lower_index_check(kl_lower *L, const kl_node *n, kl_buffer *ind, const int64_t *limits,
                          int n_limits, kl_diag *d) {
    kl_arena *a = L->arena;
    int rank = ind->shape.rank;
    if (kl_shape_numel(&ind->shape) == 0 || n_limits < 1 ||
        (ind->dtype != KL_I32 && ind->dtype != KL_I64) ||
        (n_limits > 1 && (rank == 0 || ind->shape.dim[rank - 1] != n_limits)))
        return true;
    const kl_buffer *root = kl_buffer_root(ind);
    if (root->kind == KL_BUF_CONST && root->data && ind == root)
        return check_constant(n, ind, limits, n_limits, d);
    kl_expr *x = kl_e_cast(a, KL_I64, kl_e_load(a, ind, kl_lower_ivs(L, rank)));
    kl_expr *limit = limit_expr(L, limits, n_limits, rank - 1);
    /* x < -limit (never x + limit, which a huge index would overflow) */
    kl_expr *low = kl_e_binary(a, KL_LT, x, kl_e_binary(a, KL_SUB, kl_e_idx(a, 0), limit));
    kl_expr *high = kl_e_binary(a, KL_GE, x, limit);
    kl_lower_check_any(L, n, "index_check", "index_out_of_range", &ind->shape,
                       kl_e_binary(a, KL_OR, low, high), KILN_E_INDEX_OUT_OF_RANGE);
    return true;
}

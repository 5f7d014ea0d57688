/*
 * data_dependent.c — outputs whose length depends on the input *data* (NonZero, Compress,
 * Unique): what their operators share.
 *
 * Such an output is compiled at an upper bound of the varying dim (NonZero: the input's element
 * count), so its buffer and the workspace are planned at the bound. The node's kernels compute
 * the actual length into a one-element int64 workspace buffer (the "count"), and write the data
 * densely at the actual shape: the loop over the varying dim runs to the count (a run-time
 * extent, kl_kernel.extent_expr), and a store whose dims after the varying one are not all 1
 * goes through a flat view of the output at an offset computed with the count (dense_offset).
 * NAME_predict_dynamic reports the length from the count (codegen/llvm/module.c).
 *
 * The length flows on through the nodes that read such a value (data_dependent_flow.c). Such
 * an intermediate value keeps the padded layout of the bound; a graph output gets the dense
 * one (kl_lower_dd_store). A node whose inputs are all constant is folded, and the fold gives
 * the output its exact static shape (passes/fold.c).
 *
 * The positions of the true elements of a condition come from prefix counts, without a serial
 * scan (every kernel is a loop nest): with c[i] = #{j <= i : cond[j]}, the k-th true position
 * (from 0) is #{i : c[i] <= k}. Both are reductions, taken in blocks of sqrt(n) positions:
 * O(n^1.5) (kl_lower_true_positions).
 */
#include "kl.h"

bool kl_infer_data_dependent(kl_node *n, int out, kl_dtype t, const kl_shape *bound, int dim) {
    if (!kl_infer_set(n, out, t, bound)) return false;
    kl_value *v = n->outputs[out];
    v->data_dependent = true;
    v->dd_dim = dim;
    v->dd_source = v;
    return true;
}

static kl_buffer *new_count(kl_lower *L, const char *name) {
    kl_shape one = {.rank = 1, .dim = {1}};
    kl_buffer *count = kl_lower_temp(L, kl_sprintf(L->arena, "%s_count", name), KL_I64, &one);
    count->is_count = true;
    return count;
}

kl_buffer *kl_lower_dd_count(kl_lower *L, const kl_node *n) { return new_count(L, n->name); }

kl_buffer *kl_lower_dd_set_length(kl_lower *L, const kl_node *n, kl_value *v, kl_expr *length) {
    kl_buffer *count = new_count(L, v->name);
    kl_kernel *k = kl_kernel_new(L->prog, n, "length");
    k->n_loops = k->n_par = 1;
    k->extent[0] = 1;
    k->out = count;
    k->out_idx = kl_lower_ivs(L, 1);
    k->value = length;
    kl_program_add_kernel(L->prog, k);
    kl_lower_dd_mark(L, v, count);
    return count;
}

void kl_lower_dd_mark(kl_lower *L, kl_value *v, kl_buffer *count) {
    if (!v) return;
    kl_buffer *b = kl_buffer_root(kl_lower_buffer(L, v));
    b->dd_count = count;
    b->dd_dim = v->dd_dim;
}

kl_expr *kl_lower_dd_length(kl_lower *L, kl_buffer *count) {
    kl_expr *zero = kl_e_idx(L->arena, 0);
    return kl_e_load(L->arena, count, &zero);
}

kl_expr *kl_lower_dd_length_of(kl_lower *L, kl_value *v) {
    return kl_lower_dd_length(L, kl_buffer_root(kl_lower_buffer(L, v))->dd_count);
}

kl_kernel *kl_lower_dd_count_kernel(kl_lower *L, const kl_node *n, kl_buffer *count,
                                    int64_t extent, kl_expr *cond) {
    kl_arena *a = L->arena;
    kl_kernel *k = kl_kernel_new(L->prog, n, "count");
    k->n_par = 1;
    k->n_loops = 2;
    k->extent[0] = 1;
    k->extent[1] = extent;
    k->out = count;
    k->out_idx = kl_lower_ivs(L, 1);
    k->value = kl_e_select(a, cond, kl_e_idx(a, 1), kl_e_idx(a, 0));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
    return k;
}

/* An int64 [len] kernel (loop 0) whose reduction loop 1 of `red` sums `value` from `init`. */
static kl_buffer *summed(kl_lower *L, const kl_node *n, const char *tag, int64_t len, int64_t red,
                         kl_expr *init, kl_expr *value) {
    kl_shape s = {.rank = 1, .dim = {len}};
    kl_buffer *b = kl_lower_temp(L, kl_sprintf(L->arena, "%s_%s", n->name, tag), KL_I64, &s);
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_par = 1;
    k->n_loops = 2;
    k->extent[0] = len;
    k->extent[1] = red;
    k->out = b;
    k->out_idx = kl_lower_ivs(L, 1);
    k->init = init;
    k->value = value;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_program_add_kernel(L->prog, k);
    return b;
}

static kl_expr *count_if(kl_arena *a, kl_expr *cond) {
    return kl_e_select(a, cond, kl_e_idx(a, 1), kl_e_idx(a, 0));
}

static kl_expr *min_of(kl_arena *a, kl_expr *x, int64_t bound) {
    return kl_e_binary(a, KL_MIN, x, kl_e_idx(a, bound));
}

static kl_expr *load1(kl_arena *a, kl_buffer *b, kl_expr *i) { return kl_e_load(a, b, &i); }

/* In blocks of S = ceil(sqrt(len)) positions, so that each count is two short reductions:
 *   prefix[i] = (the true ones in the blocks before i's) + (those of i's block up to i)
 *   positions[k] = S * (the blocks whose last prefix is <= k) + (those of the next block)
 * (the prefix never decreases, so the positions with prefix <= k are the first ones).
 * O(len^1.5) in all, where counting over every position would be O(len^2). A read past the
 * end is clamped into range and its term masked. */
kl_buffer *kl_lower_true_positions(kl_lower *L, const kl_node *n, int64_t len, kl_cond_fn cond,
                                   void *ctx) {
    kl_arena *a = L->arena;
    int64_t S = 1;
    while (S * S < len) S++;
    int64_t blocks = (len + S - 1) / S, last = len > 0 ? len - 1 : 0;
    kl_expr *iv0 = kl_e_iv(a, 0), *iv1 = kl_e_iv(a, 1);
    /* true ones per block: j = b * S + t */
    kl_expr *j = kl_e_add(a, kl_e_mulc(a, iv0, S), iv1);
    kl_buffer *block_sum = summed(L, n, "block_sum", blocks, S, NULL,
                                  count_if(a, kl_e_and(a, kl_e_binary(a, KL_LT, j, kl_e_idx(a, len)),
                                                       cond(ctx, a, min_of(a, j, last)))));
    /* and in the blocks before: b2 < b */
    kl_buffer *block_before = summed(L, n, "block_before", blocks, blocks, NULL,
                                     kl_e_select(a, kl_e_binary(a, KL_LT, iv1, iv0),
                                                 load1(a, block_sum, iv1), kl_e_idx(a, 0)));
    /* prefix[i]: from the blocks before i's, then j = (i / S) * S + t up to i */
    kl_expr *block = kl_e_binary(a, KL_DIV, iv0, kl_e_idx(a, S));
    kl_expr *start = kl_e_mulc(a, block, S);
    kl_expr *at = kl_e_add(a, start, iv1);
    kl_expr *upto = kl_e_binary(a, KL_LE, at, iv0);
    kl_buffer *prefix = summed(L, n, "prefix", len, S, load1(a, block_before, block),
                               count_if(a, kl_e_and(a, upto, cond(ctx, a, kl_e_binary(a, KL_MIN, at, iv0)))));
    /* whole blocks before the k-th true position: their last prefix is <= k */
    kl_expr *block_last = min_of(a, kl_e_addc(a, kl_e_mulc(a, iv1, S), S - 1), last);
    kl_buffer *whole = summed(L, n, "whole_blocks", len, blocks, NULL,
                              count_if(a, kl_e_binary(a, KL_LE, load1(a, prefix, block_last), iv0)));
    /* then the positions of the next block: i = whole * S + t */
    kl_expr *first = kl_e_mulc(a, load1(a, whole, iv0), S);
    kl_expr *i = kl_e_add(a, first, iv1);
    kl_expr *in = kl_e_binary(a, KL_LT, i, kl_e_idx(a, len));
    kl_expr *below = kl_e_binary(a, KL_LE, load1(a, prefix, min_of(a, i, last)), iv0);
    return summed(L, n, "positions", len, S, min_of(a, first, len), count_if(a, kl_e_and(a, in, below)));
}

/* The row-major offset of idx in a tensor of shape `bound` whose dim `dim` is `length` at run
 * time (Horner's rule: the dims after the varying one scale by the run-time length). */
static kl_expr *dense_offset(kl_arena *a, const kl_shape *bound, int dim, kl_expr *length,
                             kl_expr *const *idx) {
    kl_expr *off = kl_e_idx(a, 0);
    for (int d = 0; d < bound->rank; d++) {
        off = d == dim ? kl_e_binary(a, KL_MUL, off, length) : kl_e_mulc(a, off, bound->dim[d]);
        off = kl_e_add(a, off, idx[d]);
    }
    return off;
}

void kl_lower_dd_store(kl_lower *L, kl_kernel *k, kl_buffer *out, int dim, kl_buffer *count,
                       kl_expr *const *idx) {
    kl_arena *a = L->arena;
    /* the padded layout is the dense one when every dim before is 1; a value read by other
       nodes (not a graph output) keeps the padded one, which they read */
    bool leads = true;
    for (int d = 0; d < dim; d++) leads = leads && out->shape.dim[d] == 1;
    if (leads || kl_buffer_root(out)->kind != KL_BUF_OUTPUT) {
        k->out = out;
        k->out_idx = kl_alloc_array(a, (size_t)out->shape.rank + 1, sizeof *k->out_idx);
        for (int d = 0; d < out->shape.rank; d++) k->out_idx[d] = idx[d];
        return;
    }
    kl_shape flat = {.rank = 1, .dim = {kl_shape_numel(&out->shape)}};
    k->out = kl_program_view(L->prog, out, &flat);
    k->out_idx = kl_alloc_array(a, 1, sizeof *k->out_idx);
    k->out_idx[0] = dense_offset(a, &out->shape, dim, kl_lower_dd_length(L, count), idx);
}

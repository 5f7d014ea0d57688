/*
 * col2im.c — Col2Im (opset 18): the inverse of im2col, columns of sliding blocks summed back
 * into an image [N, C, D1..Dk].
 *
 * Input [N, C * B, L]: for each of the L block positions (a grid of L1 x .. x Lk, row-major),
 * the B = b1 x .. x bk elements of a block of each channel. Output pixel o receives, for every
 * block offset b whose tap lands on it, the element of the block position l with
 *     o + pad_begin = l * stride + b * dilation     (per spatial dim)
 * so one kernel over the output with one reduction loop over the B offsets (flattened): the
 * offset's coordinates, the position l (a whole number in range, else the tap adds nothing).
 *
 * image_shape and block_shape are inputs. The image shape is the output's: a constant, or
 * given at run time where the model declares the output. The block shape may be given at run
 * time too: only its product B is fixed by the input, so the kernel reads its entries and
 * computes the coordinates from them, and a check (KILN_E_SHAPE) makes sure the shapes given
 * fit the input (product B, L positions) and the declared output.
 */
#include "arith_util.h"

typedef struct col2im {
    int k;                          /* spatial dims */
    int64_t channels, block_elems, positions;
    int64_t dil[KL_MAX_RANK], stride[KL_MAX_RANK], pad_begin[KL_MAX_RANK], pad_end[KL_MAX_RANK];
    kl_shape out;
    bool image_at_run_time;
} col2im;

/* An INTS attribute of k values >= min, or def everywhere when absent. */
static bool ints_attr(const kl_node *n, const char *name, int count, int64_t min, int64_t def,
                      int64_t *dst, kl_diag *d) {
    const int64_t *v;
    int got = kl_attr_ints(n, name, &v);
    for (int i = 0; i < count; i++) dst[i] = def;
    if (got < 0) return true;
    if (got != count)
        return kl_error(d, n, "attribute %s has %d values, expected %d", name, got, count);
    for (int i = 0; i < count; i++) {
        if (v[i] < min || v[i] > KL_MAX_BYTES)
            return kl_error(d, n, "attribute %s[%d] = %lld is out of range", name, i,
                            (long long)v[i]);
        dst[i] = v[i];
    }
    return true;
}

static bool shape_input(kl_node *n, int i, const char *what, int64_t *count, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    const kl_value *v = n->inputs[i];
    if (v->dtype != KL_I64 || v->shape.rank != 1 || v->shape.dim[0] < 1 ||
        v->shape.dim[0] > KL_MAX_RANK - 2)
        return kl_error(d, n, "%s must be a 1-D int64 tensor of 1 to %d entries", what,
                        KL_MAX_RANK - 2);
    *count = v->shape.dim[0];
    return true;
}

/* A constant block shape: the block positions in the padded image are the input's columns
 * (a block shape given at run time is checked by the kernel of lower_col2im). */
static bool positions_fit(kl_node *n, const col2im *c, kl_diag *d) {
    int64_t l = 1;
    for (int i = 0; i < c->k; i++) {
        int64_t b = kl_value_const_int(n->inputs[2], i);
        int64_t padded = c->out.dim[2 + i] + c->pad_begin[i] + c->pad_end[i];
        int64_t room = padded - (b - 1) * c->dil[i] - 1;
        if (!kl_mul_checked(l, room < 0 ? 0 : room / c->stride[i] + 1, &l))
            return kl_error(d, n, "the block positions overflow");
    }
    if (l != c->positions)
        return kl_error(d, n, "the blocks fit %lld times into the padded image, but the input "
                        "has %lld columns", (long long)l, (long long)c->positions);
    return true;
}

static bool col2im_plan(kl_node *n, col2im *c, kl_diag *d) {
    int64_t k, kb;
    if (!kl_arith_need_input(n, 0, d) || !shape_input(n, 1, "image_shape", &k, d) ||
        !shape_input(n, 2, "block_shape", &kb, d))
        return false;
    if (k != kb)
        return kl_error(d, n, "image_shape has %lld entries but block_shape %lld", (long long)k,
                        (long long)kb);
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank != 3) return kl_error(d, n, "input must be [N, C * block size, L], not rank %d",
                                      x->rank);
    c->k = (int)k;
    if (!ints_attr(n, "dilations", c->k, 1, 1, c->dil, d) ||
        !ints_attr(n, "strides", c->k, 1, 1, c->stride, d))
        return false;
    int64_t pads[2 * KL_MAX_RANK];
    if (!ints_attr(n, "pads", 2 * c->k, 0, 0, pads, d)) return false;
    for (int i = 0; i < c->k; i++) c->pad_begin[i] = pads[i], c->pad_end[i] = pads[c->k + i];
    c->image_at_run_time = kl_input_at_run_time(n, 1);
    c->out.rank = 2 + c->k;
    c->out.dim[0] = x->dim[0];
    if (c->image_at_run_time) {
        const kl_value *y = n->outputs[0];
        if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 1, d);
        if (y->shape.rank != c->out.rank || y->shape.dim[0] != x->dim[0] || y->shape.dim[1] < 1)
            return kl_error(d, n, "the declared output is not [N, C, %d image dims]", c->k);
        c->out = y->shape;
    } else {
        for (int i = 0; i < c->k; i++) {
            c->out.dim[2 + i] = kl_value_const_int(n->inputs[1], i);
            if (c->out.dim[2 + i] < 1 || c->out.dim[2 + i] > KL_MAX_BYTES)
                return kl_error(d, n, "image_shape[%d] = %lld is out of range", i,
                                (long long)c->out.dim[2 + i]);
        }
    }
    if (!kl_input_at_run_time(n, 2)) {
        int64_t b = 1;
        for (int i = 0; i < c->k; i++) {
            int64_t bi = kl_value_const_int(n->inputs[2], i);
            if (bi < 1 || !kl_mul_checked(b, bi, &b) || b > KL_MAX_BYTES)
                return kl_error(d, n, "block_shape[%d] = %lld is out of range", i, (long long)bi);
        }
        if (x->dim[1] % b)
            return kl_error(d, n, "input dim 1 (%lld) is not a multiple of the block size %lld",
                            (long long)x->dim[1], (long long)b);
        if (!c->image_at_run_time) c->out.dim[1] = x->dim[1] / b;
    } else if (!c->image_at_run_time) {
        /* the channels come from the declared output, the image from image_shape */
        const kl_value *y = n->outputs[0];
        if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 2, d);
        for (int i = 0; i < c->k; i++)
            if (y->shape.rank != c->out.rank || y->shape.dim[2 + i] != c->out.dim[2 + i])
                return kl_error(d, n, "the declared output is not [N, C] and image_shape");
        c->out.dim[1] = y->shape.dim[1];
    }
    c->channels = c->out.dim[1];
    if (c->channels < 1 || x->dim[1] % c->channels)
        return kl_error(d, n, "input dim 1 (%lld) is no multiple of %lld channels",
                        (long long)x->dim[1], (long long)c->channels);
    c->block_elems = x->dim[1] / c->channels;
    c->positions = x->dim[2];
    return kl_input_at_run_time(n, 2) || positions_fit(n, c, d);
}

static bool infer_col2im(kl_node *n, kl_diag *d) {
    col2im c;
    return col2im_plan(n, &c, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &c.out);
}

/* block_shape[i]: its constant, or the value read at run time. */
static kl_expr *block_dim(kl_lower *L, kl_node *n, int i) {
    if (!kl_input_at_run_time(n, 2))
        return kl_e_idx(L->arena, kl_value_const_int(n->inputs[2], i));
    return kl_lower_int_at(L, n, 2, i);
}

/* The number of block positions along dim i for a block of `b` elements there. */
static kl_expr *positions_along(kl_arena *a, const col2im *c, int i, kl_expr *b) {
    /* (D + pads - ((b - 1) * dilation + 1)) / stride + 1 */
    kl_expr *span = kl_e_addc(a, kl_e_mulc(a, kl_e_addc(a, b, -1), c->dil[i]), 1);
    kl_expr *room = kl_e_binary(a, KL_SUB,
                                kl_e_idx(a, c->out.dim[2 + i] + c->pad_begin[i] + c->pad_end[i]),
                                span);
    kl_expr *fits = kl_e_binary(a, KL_GE, room, kl_e_idx(a, 0));
    kl_expr *count = kl_e_addc(a, kl_e_binary(a, KL_DIV, room, kl_e_idx(a, c->stride[i])), 1);
    return kl_e_select(a, fits, count, kl_e_idx(a, 0));
}

/* 1 <= f and f divides q (both int64 expressions) */
static kl_expr *divides(kl_arena *a, kl_expr *f, kl_expr *q) {
    kl_expr *positive = kl_e_binary(a, KL_GE, f, kl_e_idx(a, 1));
    return kl_e_binary(a, KL_AND, positive, kl_e_binary(a, KL_EQ, kl_e_binary(a, KL_MOD, q, f),
                                                        kl_e_idx(a, 0)));
}

static bool lower_col2im(kl_lower *L, kl_node *n, kl_diag *d) {
    col2im c;
    if (!col2im_plan(n, &c, d)) return false;
    kl_arena *a = L->arena;
    /* the block's entries as given, and kept in [1, B] for the arithmetic (a value outside
       fails the check below before any kernel uses it) */
    kl_expr *given[KL_MAX_RANK], *blk[KL_MAX_RANK], *len[KL_MAX_RANK];
    for (int i = 0; i < c.k; i++) {
        given[i] = blk[i] = block_dim(L, n, i);
        if (kl_input_at_run_time(n, 2))
            blk[i] = kl_e_select(a, kl_e_in_range(a, kl_e_addc(a, given[i], -1), c.block_elems),
                                 given[i], kl_e_idx(a, 1));
        len[i] = positions_along(a, &c, i, blk[i]);
    }
    if (kl_input_at_run_time(n, 1) || kl_input_at_run_time(n, 2)) {
        /* the products of the block's entries and of the positions must be the input's B and
           L: divided out one factor at a time, so that no product of given values overflows */
        kl_expr *ok = NULL, *b = kl_e_idx(a, c.block_elems), *l = kl_e_idx(a, c.positions);
        for (int i = 0; i < c.k; i++) {
            if (kl_input_at_run_time(n, 1))
                ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 1, i),
                                                 kl_e_idx(a, c.out.dim[2 + i])));
            ok = kl_e_and(a, ok, divides(a, given[i], b));
            ok = kl_e_and(a, ok, divides(a, len[i], l));
            b = kl_e_binary(a, KL_DIV, b, given[i]);
            l = kl_e_binary(a, KL_DIV, l, len[i]);
        }
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, b, kl_e_idx(a, 1)));
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, l, kl_e_idx(a, 1)));
        kl_lower_shape_check(L, n, ok);
    }
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    int r = c.out.rank, off = r; /* loop r: the flat block offset */
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_par = r;
    k->n_loops = r + 1;
    for (int i = 0; i < r; i++) k->extent[i] = c.out.dim[i];
    k->extent[off] = c.block_elems;
    k->out = y;
    k->out_idx = kl_lower_ivs(L, r);
    kl_expr *rest = kl_e_iv(a, off), *inside = NULL, *col = kl_e_idx(a, 0);
    kl_expr *pos[KL_MAX_RANK];
    for (int i = c.k - 1; i >= 0; i--) {
        kl_expr *bi = kl_e_binary(a, KL_MOD, rest, blk[i]);
        rest = kl_e_binary(a, KL_DIV, rest, blk[i]);
        kl_expr *t = kl_e_binary(a, KL_SUB, kl_e_addc(a, kl_e_iv(a, 2 + i), c.pad_begin[i]),
                                 kl_e_mulc(a, bi, c.dil[i]));
        kl_expr *whole = kl_e_binary(a, KL_EQ, kl_e_binary(a, KL_MOD, t, kl_e_idx(a, c.stride[i])),
                                     kl_e_idx(a, 0));
        pos[i] = kl_e_binary(a, KL_DIV, t, kl_e_idx(a, c.stride[i]));
        inside = kl_e_and(a, inside, kl_e_and(a, kl_e_binary(a, KL_GE, t, kl_e_idx(a, 0)), whole));
        inside = kl_e_and(a, inside, kl_e_binary(a, KL_LT, pos[i], len[i]));
    }
    for (int i = 0; i < c.k; i++) col = kl_e_add(a, kl_e_mul(a, col, len[i]), pos[i]);
    kl_expr *idx[3] = {kl_e_iv(a, 0),
                       kl_e_add(a, kl_e_mulc(a, kl_e_iv(a, 1), c.block_elems), kl_e_iv(a, off)),
                       col};
    kl_dtype u = kl_arith_compute_dtype(x->dtype);
    k->value = kl_e_select(a, inside, kl_e_cast(a, u, kl_e_load(a, x, idx)),
                           kl_arith_const(a, u, 0));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = u;
    k->result = kl_e_cast(a, x->dtype, kl_e_acc(a, u));
    kl_program_add_kernel(L->prog, k);
    return true;
}

static const char *const col2im_attrs[] = {"dilations", "pads", "strides", NULL};

const kl_op kl_ops_col2im[] = {
    {"", "Col2Im", 18, KL_OPSET_LATEST, col2im_attrs, infer_col2im, lower_col2im},
    {0},
};

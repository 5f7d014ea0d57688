/*
 * dft.c — DFT (opset 17; from opset 20 the axis is an input, which must be a constant).
 *
 * The transform is written as what it is, a contraction: along the signal axis,
 *     Y[k] = sum over m < M of x[m] * w^(k m),   w = exp(-+2 pi i / L)
 * for the transform length L (dft_length, else the axis' size), M = min(L, the axis' size)
 * (a longer L pads the signal with zeros, a shorter one truncates it), and k < L, or
 * k <= L / 2 when onesided. The inverse conjugates w and divides by L. One kernel: its parallel
 * loops are the output's (the last one picks the real or the imaginary part), its reduction
 * loop is m. The factor w^(k m) only depends on (k m) mod L, so it is read from two constant
 * tables of L cosines and sines. Sums run in float64, as the reference's numpy FFT does, so
 * that components that cancel to nearly 0 come out as small as the reference's.
 * The onesided inverse (irfft) takes the half spectrum X[0..L/2] of a real signal and returns
 * that signal, [..., L, ..., 1] with L = 2 (n - 1) by default: the missing half is the
 * conjugate mirror, so y[m] = (X_0 + sum over 0 < k of c_k Re(X_k w^(-k m))) / L with c_k = 2,
 * or 1 for k = L / 2.
 * This is O(L^2) per signal, not an FFT: right for the short transforms models use as
 * features, slow for long ones.
 */
#include <math.h>

#include "arith_util.h"

static const char *const dft_attrs[] = {"axis", "inverse", "onesided", NULL};

typedef struct dft {
    int axis;                  /* of X (whose last dimension is 1 or 2: real, complex) */
    int64_t len, used, out;    /* L, M, output size along the axis */
    bool inverse, onesided;
} dft;

/* The transform's plan along `forced` (an axis given at run time), or along the axis the node
 * names when forced < 0. */
static bool dft_shape_along(kl_node *n, int forced, dft *f, kl_shape *os, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    int r = x->rank;
    if (r < 2 || (x->dim[r - 1] != 1 && x->dim[r - 1] != 2))
        return kl_error(d, n, "input must be [..., 1] (real) or [..., 2] (complex)");
    int64_t axis = kl_attr_int(n, "axis", 1);
    if (n->opset >= 20) {
        axis = -2;
        if (forced >= 0) {
            axis = forced;
        } else if (kl_node_input(n, 2)) {
            if (!kl_infer_need_const(n, 2, d)) return false;
            axis = kl_value_const_int(n->inputs[2], 0);
        }
    }
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r - 1)
        return kl_error(d, n, "axis %lld is not a signal dimension of rank-%d input",
                        (long long)axis, r);
    f->axis = (int)axis;
    f->len = x->dim[f->axis];
    f->inverse = kl_attr_int(n, "inverse", 0) != 0;
    f->onesided = kl_attr_int(n, "onesided", 0) != 0;
    bool irfft = f->inverse && f->onesided;
    if (irfft) f->len = 2 * (x->dim[f->axis] - 1);
    if (kl_node_input(n, 1)) {
        if (!kl_infer_need_const(n, 1, d)) return false;
        f->len = kl_value_const_int(n->inputs[1], 0);
    }
    if (f->len <= 0) return kl_error(d, n, "dft_length %lld is not positive", (long long)f->len);
    if (f->len > (int64_t)1 << 24)
        return kl_error(d, n, "dft_length %lld is too long for a direct transform",
                        (long long)f->len);
    /* the signal's samples (the half spectrum's bins, for irfft) the sum reads */
    int64_t avail = irfft ? f->len / 2 + 1 : f->len;
    f->used = avail < x->dim[f->axis] ? avail : x->dim[f->axis];
    f->out = f->onesided && !f->inverse ? f->len / 2 + 1 : f->len;
    *os = *x;
    os->dim[f->axis] = f->out;
    os->dim[r - 1] = irfft ? 1 : 2;
    return true;
}

static bool dft_shape(kl_node *n, dft *f, kl_shape *os, kl_diag *d) {
    return dft_shape_along(n, -1, f, os, d);
}

static bool axis_at_run_time(kl_node *n) { return n->opset >= 20 && kl_input_at_run_time(n, 2); }

/* The axis given at run time: the signal axes along which the transform gives the declared
 * shape (a bit per axis; 0 with a diagnostic when none does). */
static unsigned candidate_axes(kl_node *n, kl_diag *d) {
    const kl_value *y = n->outputs[0];
    if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 2, d), 0u;
    unsigned axes = 0;
    for (int a = 0; a < n->inputs[0]->shape.rank - 1; a++) {
        dft f;
        kl_shape os;
        kl_diag scratch;
        kl_diag_init(&scratch, d->file);
        if (dft_shape_along(n, a, &f, &os, &scratch) && kl_shape_equal(&os, &y->shape))
            axes |= 1u << a;
        kl_diag_free(&scratch);
    }
    if (!axes) kl_error(d, n, "no axis gives the declared output shape");
    return axes;
}

static bool infer_dft(kl_node *n, kl_diag *d) {
    dft f;
    kl_shape os;
    if (axis_at_run_time(n)) {
        if (!kl_arith_need_float(n, 0, d) || kl_shape_numel(&n->inputs[2]->shape) != 1)
            return kl_error(d, n, "axis must be a scalar");
        kl_shape declared = n->outputs[0]->shape;
        return candidate_axes(n, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &declared);
    }
    return dft_shape(n, &f, &os, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &os);
}

/* cos or sin of -+2 pi j / L for j < L, in type u (float32 or float64). */
static kl_buffer *twiddles(kl_lower *L, const kl_node *n, const dft *f, kl_dtype u, bool sine) {
    kl_shape s = {.rank = 1, .dim = {f->len}};
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->outputs[0]->name,
                                                         sine ? "sin" : "cos"),
                                     KL_BUF_CONST, u, &s);
    void *data = kl_alloc(L->arena, (size_t)kl_buffer_bytes(b) + 1);
    double sign = f->inverse ? 1 : -1;
    for (int64_t j = 0; j < f->len; j++) {
        double t = sign * 2 * 3.14159265358979323846 * (double)j / (double)f->len;
        double v = sine ? sin(t) : cos(t);
        if (u == KL_F64) ((double *)data)[j] = v;
        else ((float *)data)[j] = (float)v;
    }
    b->data = data;
    b->host = data; /* the interpreter reads constants through `host` */
    return b;
}

static void lower_dft_into(kl_lower *L, kl_node *n, dft f, kl_shape os, kl_buffer *out) {
    kl_arena *a = L->arena;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_dtype u = KL_F64;
    bool irfft = f.inverse && f.onesided;
    int r = os.rank, m = r; /* loop r: the signal position m */
    kl_buffer *cs = twiddles(L, n, &f, u, false), *sn = twiddles(L, n, &f, u, true);
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_par = r;
    k->n_loops = r + 1;
    for (int i = 0; i < r; i++) k->extent[i] = os.dim[i];
    k->extent[m] = f.used;
    k->out = out;
    k->out_idx = kl_lower_ivs(L, r);
    /* x[..., m, ..., part] */
    kl_expr *idx[KL_MAX_RANK];
    for (int i = 0; i < r - 1; i++) idx[i] = kl_e_iv(a, i);
    idx[f.axis] = kl_e_iv(a, m);
    idx[r - 1] = kl_e_idx(a, 0);
    kl_expr *re = kl_e_cast(a, u, kl_e_load(a, x, idx)), *im = kl_arith_const(a, u, 0);
    if (x->shape.dim[r - 1] == 2) {
        idx[r - 1] = kl_e_idx(a, 1);
        im = kl_e_cast(a, u, kl_e_load(a, x, idx));
    }
    kl_expr *j = kl_e_binary(a, KL_MOD, kl_e_mul(a, kl_e_iv(a, f.axis), kl_e_iv(a, m)),
                             kl_e_idx(a, f.len));
    kl_expr *c = kl_e_load(a, cs, &j), *s = kl_e_load(a, sn, &j);
    /* (re + i im)(c + i s) */
    kl_expr *real = kl_e_binary(a, KL_SUB, kl_e_binary(a, KL_MUL, re, c),
                                kl_e_binary(a, KL_MUL, im, s));
    kl_expr *imag = kl_e_binary(a, KL_ADD, kl_e_binary(a, KL_MUL, re, s),
                                kl_e_binary(a, KL_MUL, im, c));
    if (irfft) {
        /* bins other than 0 and L / 2 stand for their mirror image too */
        kl_expr *bin = kl_e_iv(a, m);
        kl_expr *single = kl_e_binary(a, KL_OR, kl_e_binary(a, KL_EQ, bin, kl_e_idx(a, 0)),
                                      kl_e_binary(a, KL_EQ, kl_e_mulc(a, bin, 2),
                                                  kl_e_idx(a, f.len)));
        k->value = kl_e_binary(a, KL_MUL, real, kl_e_select(a, single, kl_arith_const(a, u, 1),
                                                           kl_arith_const(a, u, 2)));
    } else {
        kl_expr *is_real = kl_e_binary(a, KL_EQ, kl_e_iv(a, r - 1), kl_e_idx(a, 0));
        k->value = kl_e_select(a, is_real, real, imag);
    }
    k->reduce = KL_RED_SUM;
    k->acc_dtype = u;
    kl_expr *y = kl_e_acc(a, u);
    if (f.inverse) y = kl_e_binary(a, KL_DIV, y, kl_arith_const(a, u, (double)f.len));
    k->result = kl_e_cast(a, x->dtype, y);
    kl_program_add_kernel(L->prog, k);
}

/* The axis given at run time: the transform along every axis that gives the declared shape,
 * the given one chosen (any other: KILN_E_SHAPE). */
static bool lower_dft_any_axis(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    unsigned axes = candidate_axes(n, d);
    if (!axes) return false;
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    int r = n->inputs[0]->shape.rank, count = __builtin_popcount(axes);
    kl_expr *given = kl_lower_int_at(L, n, 2, 0);
    kl_expr *axis = kl_e_select(a, kl_e_binary(a, KL_LT, given, kl_e_idx(a, 0)),
                                kl_e_addc(a, given, r), given);
    kl_expr *ok = NULL, *v = NULL;
    for (int ax = r - 2; ax >= 0; ax--) {
        if (!((axes >> ax) & 1u)) continue;
        dft f;
        kl_shape os;
        if (!dft_shape_along(n, ax, &f, &os, d)) return false;
        kl_buffer *along = count == 1 ? out : kl_lower_temp(L, "dft", out->dtype, &out->shape);
        lower_dft_into(L, n, f, os, along);
        kl_expr *is = kl_e_binary(a, KL_EQ, axis, kl_e_idx(a, ax));
        ok = ok ? kl_e_binary(a, KL_OR, ok, is) : is;
        kl_expr *load = kl_e_load(a, along, kl_lower_ivs(L, out->shape.rank));
        v = v ? kl_e_select(a, is, load, v) : load;
    }
    kl_lower_shape_check(L, n, ok);
    if (count > 1) kl_arith_map(L, n, "dft_axis", out, v);
    return true;
}

static bool lower_dft(kl_lower *L, kl_node *n, kl_diag *d) {
    if (axis_at_run_time(n)) return lower_dft_any_axis(L, n, d);
    dft f;
    kl_shape os;
    if (!dft_shape(n, &f, &os, d)) return false;
    lower_dft_into(L, n, f, os, kl_lower_buffer(L, n->outputs[0]));
    return true;
}

const kl_op kl_ops_dft[] = {
    {"", "DFT", 17, KL_OPSET_LATEST, dft_attrs, infer_dft, lower_dft},
    {0},
};

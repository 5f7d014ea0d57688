/*
 * signal.c — the window functions HannWindow, HammingWindow, BlackmanWindow, and STFT (opset 17).
 *
 * Each is a sum of cosines over n < size,
 *     w[n] = a0 - a1 cos(2 pi n / D) + a2 cos(4 pi n / D)
 * with D = size (periodic, the default) or size - 1 (symmetric), computed in float64 and
 * rounded once to output_datatype (any numeric type; float32 by default). One kernel over the
 * output. The size is input 0, a scalar: a constant, or given at run time where the model
 * declares the output's shape, and a kernel checks that the size that arrives is that length
 * (KILN_E_SHAPE).
 *
 * STFT (opset 17): the DFT of overlapping frames of a signal [batch, length, 1 or 2],
 *     Y[b, f, k] = sum over m < L of x[b, f * step + m] w[m] exp(-2 pi i k m / L)
 * for frames f < (length - L) / step + 1 and bins k < L (L / 2 + 1 when onesided, the
 * default), written as the contraction it is, like DFT (dft.c): one kernel, its last parallel
 * loop picks the real or the imaginary part, its reduction loop is m; sums in float64. The
 * frame length L is the window's length, else the frame_length input. frame_step and
 * frame_length may be given at run time where the model declares the output: the kernel then
 * reads them (positions f * step + m, the angle 2 pi ((k m) mod L) / L computed per term), and
 * a check (KILN_E_SHAPE) makes sure they give the declared frames and bins. A run-time L can
 * be one of two lengths for the declared onesided bins (2 (bins - 1) or one more): the
 * reduction runs to the longer and drops the terms past L.
 *
 * MelWeightMatrix (opset 17): the [dft_length / 2 + 1, num_mel_bins] matrix of triangular
 * filters between mel-spaced points, as ONNX's reference computes it: the edges' mel values and
 * the mel step in float32 (the reference's float32 inputs keep them there), each point's
 * spectrogram bin floor((dft_length + 1) hz / sample_rate) in float64. Element (j, i) is the
 * closed form of the reference's two loops over bins: the rising edge (j - l) / (c - l) for
 * l <= j <= c (1 at c when l == c), overwritten by the falling edge (h - j) / (h - c) for
 * c <= j < h, where l, c, h are the bins of points i, i + 1, i + 2. One kernel over the matrix
 * reads every input where it is; num_mel_bins and dft_length may come at run time where the
 * model declares the output's shape (checked, KILN_E_SHAPE).
 */
#include <string.h>

#include "arith_util.h"

static const double two_pi = 2 * 3.14159265358979323846;
static const double ln10 = 2.302585092994045684;

typedef struct window_fn {
    double a0, a1, a2;
} window_fn;

/* The coefficients, as ONNX defines them (Hamming's a0 is 25/46, not 0.54). */
static window_fn window_coefficients(const kl_node *n) {
    if (!strcmp(n->op_type, "HannWindow")) return (window_fn){0.5, 0.5, 0};
    if (!strcmp(n->op_type, "HammingWindow")) return (window_fn){25.0 / 46, 21.0 / 46, 0};
    return (window_fn){0.42, 0.5, 0.08}; /* BlackmanWindow */
}

typedef struct window_plan {
    int64_t size;
    kl_dtype out;
    bool at_run_time;
} window_plan;

/* Attribute output_datatype (float32 by default): any numeric element type. */
static bool output_datatype(const kl_node *n, kl_dtype *out, kl_diag *d) {
    int64_t t = kl_attr_int(n, "output_datatype", KL_F32);
    if (t < 0 || t > INT32_MAX || !kl_arith_is_numeric((kl_dtype)t) || (kl_dtype)t == KL_BOOL)
        return kl_error(d, n, "output_datatype %lld is not a numeric element type",
                        (long long)t);
    *out = (kl_dtype)t;
    return true;
}

static bool window_plan_of(kl_node *n, window_plan *w, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    const kl_value *size = n->inputs[0];
    if ((size->dtype != KL_I32 && size->dtype != KL_I64) || kl_shape_numel(&size->shape) != 1)
        return kl_error(d, n, "size must be an int32 or int64 scalar");
    if (!output_datatype(n, &w->out, d)) return false;
    w->at_run_time = kl_input_at_run_time(n, 0);
    if (w->at_run_time) {
        const kl_value *y = n->outputs[0];
        if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 0, d);
        if (y->shape.rank != 1)
            return kl_error(d, n, "the declared output must be 1-D, not rank %d", y->shape.rank);
        w->size = y->shape.dim[0];
    } else {
        w->size = kl_value_const_int(size, 0);
    }
    if (w->size < 0 || w->size > KL_MAX_BYTES)
        return kl_error(d, n, "size %lld is out of range", (long long)w->size);
    return true;
}

static bool infer_window(kl_node *n, kl_diag *d) {
    window_plan w;
    if (!window_plan_of(n, &w, d)) return false;
    kl_shape s = {.rank = 1, .dim = {w.size}};
    return kl_infer_set(n, 0, w.out, &s);
}

static bool lower_window(kl_lower *L, kl_node *n, kl_diag *d) {
    window_plan w;
    if (!window_plan_of(n, &w, d)) return false;
    kl_arena *a = L->arena;
    if (w.at_run_time)
        kl_lower_check_int_input(L, n, 0, w.size);
    window_fn c = window_coefficients(n);
    bool periodic = kl_attr_int(n, "periodic", 1) != 0;
    /* a symmetric window of one sample divides 0 by 0, as the definition does (NaN) */
    double span = (double)(periodic ? w.size : w.size - 1);
    kl_expr *m = kl_e_cast(a, KL_F64, kl_e_iv(a, 0));
    kl_expr *angle = kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_MUL, m,
                                                        kl_e_const_f(a, KL_F64, two_pi)),
                                 kl_e_const_f(a, KL_F64, span));
    kl_expr *v = kl_e_binary(a, KL_SUB, kl_e_const_f(a, KL_F64, c.a0),
                             kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F64, c.a1),
                                         kl_e_unary(a, KL_COS, angle)));
    if (c.a2 != 0) {
        kl_expr *twice = kl_e_binary(a, KL_MUL, angle, kl_e_const_f(a, KL_F64, 2));
        v = kl_e_binary(a, KL_ADD, v, kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F64, c.a2),
                                                  kl_e_unary(a, KL_COS, twice)));
    }
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]), kl_e_cast(a, w.out, v));
    return true;
}

static const char *const window_attrs[] = {"output_datatype", "periodic", NULL};

typedef struct stft {
    int64_t frames, bins;
    int64_t len;          /* L when known when compiling, else 0 */
    int64_t len_max;      /* the reduction's extent: L, or the longest L the bins allow */
    int64_t step;         /* when known when compiling, else 0 */
    bool onesided;
    kl_shape out;
} stft;

/* A scalar integer input: present, one element, int32 or int64. */
static bool scalar_int_input(kl_node *n, int i, const char *what, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    const kl_value *v = n->inputs[i];
    if ((v->dtype != KL_I32 && v->dtype != KL_I64) || kl_shape_numel(&v->shape) != 1)
        return kl_error(d, n, "%s must be an int32 or int64 scalar", what);
    return true;
}

/* The frame count and bins of the declared output, for what is given at run time. */
static bool stft_declared(kl_node *n, stft *s, int input, kl_diag *d) {
    const kl_value *y = n->outputs[0];
    if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, input, d);
    if (!kl_shape_equal(&y->shape, &(kl_shape){.rank = 4, .dim = {s->out.dim[0], y->shape.dim[1],
                                                                  y->shape.dim[2], 2}}))
        return kl_error(d, n, "the declared output is not [batch, frames, bins, 2]");
    s->frames = y->shape.dim[1];
    s->bins = y->shape.dim[2];
    return true;
}

static bool stft_plan(kl_node *n, stft *s, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d) || !scalar_int_input(n, 1, "frame_step", d)) return false;
    const kl_shape *x = &n->inputs[0]->shape;
    if (x->rank != 3 || (x->dim[2] != 1 && x->dim[2] != 2))
        return kl_error(d, n, "signal must be [batch, length, 1] (real) or [batch, length, 2]");
    s->onesided = kl_attr_int(n, "onesided", 1) != 0;
    s->out = (kl_shape){.rank = 4, .dim = {x->dim[0], 0, 0, 2}};
    const kl_value *window = kl_node_input(n, 2);
    if (window && (window->shape.rank != 1 || !kl_dtype_is_float(window->dtype)))
        return kl_error(d, n, "window must be a 1-D floating-point tensor");
    if (!window && !kl_node_input(n, 3))
        return kl_error(d, n, "either a window or frame_length is required");
    if (kl_node_input(n, 3) && !scalar_int_input(n, 3, "frame_length", d)) return false;
    s->len = window ? window->shape.dim[0] : 0;
    if (kl_node_input(n, 3) && !kl_input_at_run_time(n, 3)) {
        int64_t given = kl_value_const_int(n->inputs[3], 0);
        if (window && given != s->len)
            return kl_error(d, n, "frame_length %lld differs from the window's length %lld",
                            (long long)given, (long long)s->len);
        s->len = given;
    }
    /* a frame length known now (the window's, or a constant frame_length) must be one: 0 would
     * read as "given at run time" below */
    bool len_known = window || (kl_node_input(n, 3) && !kl_input_at_run_time(n, 3));
    if (len_known && (s->len < 1 || s->len > x->dim[1]))
        return kl_error(d, n, "frame length %lld is not in [1, %lld], the signal's length",
                        (long long)s->len, (long long)x->dim[1]);
    s->step = kl_input_at_run_time(n, 1) ? 0 : kl_value_const_int(n->inputs[1], 0);
    if (kl_input_at_run_time(n, 1) && !stft_declared(n, s, 1, d)) return false;
    if (!s->len && !stft_declared(n, s, 3, d)) return false;
    if (s->step < 0 || (!kl_input_at_run_time(n, 1) && s->step == 0))
        return kl_error(d, n, "frame_step %lld must be positive", (long long)s->step);
    if (s->len) {
        if (s->len < 1 || s->len > x->dim[1])
            return kl_error(d, n, "frame length %lld is not in [1, %lld], the signal's length",
                            (long long)s->len, (long long)x->dim[1]);
        s->bins = s->onesided ? s->len / 2 + 1 : s->len;
        s->len_max = s->len;
    } else {
        s->len_max = s->onesided ? 2 * s->bins - 1 : s->bins;
        if (s->bins < 1 || s->len_max > x->dim[1])
            return kl_error(d, n, "the declared %lld bins need frames longer than the signal",
                            (long long)s->bins);
    }
    if (s->step) s->frames = s->len ? (x->dim[1] - s->len) / s->step + 1 : s->frames;
    s->out.dim[1] = s->frames;
    s->out.dim[2] = s->bins;
    const kl_value *y = n->outputs[0];
    if ((y->shape_declared || y->has_shape) && !kl_shape_equal(&y->shape, &s->out))
        return kl_error(d, n, "the declared output shape differs from the frames and bins the "
                        "inputs give");
    return true;
}

static bool infer_stft(kl_node *n, kl_diag *d) {
    stft s;
    return stft_plan(n, &s, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &s.out);
}

/* Input i as an int64 expression: its constant, or the value read at run time. */
static kl_expr *int_input(kl_lower *L, kl_node *n, int i, int64_t known) {
    return known ? kl_e_idx(L->arena, known) : kl_lower_int_at(L, n, i, 0);
}

static bool lower_stft(kl_lower *L, kl_node *n, kl_diag *d) {
    stft s;
    if (!stft_plan(n, &s, d)) return false;
    kl_arena *a = L->arena;
    kl_expr *step = int_input(L, n, 1, s.step), *len = int_input(L, n, 3, s.len);
    if (!s.step || !s.len) {
        kl_expr *ok = NULL;
        if (!s.step) ok = kl_e_binary(a, KL_GE, step, kl_e_idx(a, 1));
        if (!s.len) {
            kl_expr *fits = kl_e_binary(a, KL_EQ, len, kl_e_idx(a, s.len_max));
            if (s.onesided)
                fits = kl_e_binary(a, KL_OR, fits,
                                   kl_e_binary(a, KL_EQ, len, kl_e_idx(a, s.len_max - 1)));
            ok = kl_e_and(a, ok, fits);
        } else if (kl_node_input(n, 3) && kl_input_at_run_time(n, 3)) {
            ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 3, 0),
                                             kl_e_idx(a, s.len)));
        }
        /* (length - L) / step + 1 frames; a zero step was refused above */
        kl_expr *rest = kl_e_binary(a, KL_SUB, kl_e_idx(a, n->inputs[0]->shape.dim[1]), len);
        kl_expr *frames = kl_e_addc(a, kl_e_binary(a, KL_DIV, rest, step), 1);
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, frames, kl_e_idx(a, s.frames)));
        kl_lower_shape_check(L, n, ok);
    } else if (kl_node_input(n, 3) && kl_input_at_run_time(n, 3)) {
        kl_lower_check_int_input(L, n, 3, s.len);
    }
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    int m = 4; /* loops: batch, frame, bin, part; m the sample within the frame */
    k->n_par = 4;
    k->n_loops = 5;
    for (int i = 0; i < 4; i++) k->extent[i] = s.out.dim[i];
    k->extent[m] = s.len_max;
    k->out = kl_lower_buffer(L, n->outputs[0]);
    k->out_idx = kl_lower_ivs(L, 4);
    kl_dtype u = KL_F64;
    kl_expr *pos = kl_e_add(a, kl_e_mul(a, kl_e_iv(a, 1), step), kl_e_iv(a, m));
    kl_expr *idx[3] = {kl_e_iv(a, 0), pos, kl_e_idx(a, 0)};
    kl_expr *re = kl_e_cast(a, u, kl_e_load(a, x, idx)), *im = kl_e_const_f(a, u, 0);
    if (x->shape.dim[2] == 2) {
        idx[2] = kl_e_idx(a, 1);
        im = kl_e_cast(a, u, kl_e_load(a, x, idx));
    }
    if (kl_node_input(n, 2)) {
        kl_expr *tap = kl_e_iv(a, m);
        kl_expr *w = kl_e_cast(a, u, kl_e_load(a, kl_lower_buffer(L, n->inputs[2]), &tap));
        re = kl_e_binary(a, KL_MUL, re, w);
        im = kl_e_binary(a, KL_MUL, im, w);
    }
    /* exp(-2 pi i j / L), j = (k m) mod L keeps the angle below 2 pi */
    kl_expr *j = kl_e_binary(a, KL_MOD, kl_e_mul(a, kl_e_iv(a, 2), kl_e_iv(a, m)), len);
    kl_expr *angle = kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_MUL, kl_e_cast(a, u, j),
                                                        kl_e_const_f(a, u, -two_pi)),
                                 kl_e_cast(a, u, len));
    kl_expr *c = kl_e_unary(a, KL_COS, angle), *sn = kl_e_unary(a, KL_SIN, angle);
    kl_expr *real = kl_e_binary(a, KL_SUB, kl_e_binary(a, KL_MUL, re, c),
                                kl_e_binary(a, KL_MUL, im, sn));
    kl_expr *imag = kl_e_binary(a, KL_ADD, kl_e_binary(a, KL_MUL, re, sn),
                                kl_e_binary(a, KL_MUL, im, c));
    kl_expr *is_real = kl_e_binary(a, KL_EQ, kl_e_iv(a, 3), kl_e_idx(a, 0));
    kl_expr *v = kl_e_select(a, is_real, real, imag);
    if (!s.len) /* the terms past a run-time L shorter than the loop */
        v = kl_e_select(a, kl_e_binary(a, KL_LT, kl_e_iv(a, m), len), v, kl_e_const_f(a, u, 0));
    k->value = v;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = u;
    k->result = kl_e_cast(a, x->dtype, kl_e_acc(a, u));
    kl_program_add_kernel(L->prog, k);
    return true;
}

static const char *const stft_attrs[] = {"onesided", NULL};

/* ---------------------------------------------------------------- MelWeightMatrix */

typedef struct mel_plan {
    int64_t bins, mels; /* the output: [bins, mels] */
    kl_dtype out;
} mel_plan;

static bool mel_plan_of(kl_node *n, mel_plan *m, kl_diag *d) {
    if (!scalar_int_input(n, 0, "num_mel_bins", d) || !scalar_int_input(n, 1, "dft_length", d) ||
        !scalar_int_input(n, 2, "sample_rate", d))
        return false;
    for (int i = 3; i < 5; i++) {
        if (!kl_infer_need_input(n, i, d)) return false;
        const kl_value *v = n->inputs[i];
        if (!kl_dtype_is_float(v->dtype) || kl_shape_numel(&v->shape) != 1)
            return kl_error(d, n, "%s must be a float scalar",
                            i == 3 ? "lower_edge_hertz" : "upper_edge_hertz");
    }
    if (!output_datatype(n, &m->out, d)) return false;
    if (kl_input_at_run_time(n, 0) || kl_input_at_run_time(n, 1)) {
        const kl_value *y = n->outputs[0];
        if (!y->shape_declared && !y->has_shape)
            return kl_infer_declared(n, kl_input_at_run_time(n, 0) ? 0 : 1, d);
        if (y->shape.rank != 2)
            return kl_error(d, n, "the declared output must be 2-D, not rank %d", y->shape.rank);
        m->bins = y->shape.dim[0];
        m->mels = y->shape.dim[1];
    } else {
        int64_t dft = kl_value_const_int(n->inputs[1], 0);
        if (dft < 0) return kl_error(d, n, "dft_length %lld is negative", (long long)dft);
        m->bins = dft / 2 + 1;
        m->mels = kl_value_const_int(n->inputs[0], 0);
    }
    if (m->mels < 0 || m->mels > KL_MAX_BYTES || m->bins * m->mels > KL_MAX_BYTES)
        return kl_error(d, n, "num_mel_bins %lld is out of range", (long long)m->mels);
    return true;
}

static bool infer_mel(kl_node *n, kl_diag *d) {
    mel_plan m;
    if (!mel_plan_of(n, &m, d)) return false;
    kl_shape s = {.rank = 2, .dim = {m.bins, m.mels}};
    return kl_infer_set(n, 0, m.out, &s);
}

/* A float scalar input as float32, and 2595 log10(1 + hz / 700) of it in float32. */
static kl_expr *mel_of_hertz(kl_lower *L, kl_node *n, int input) {
    kl_arena *a = L->arena;
    kl_buffer *b = kl_lower_buffer(L, n->inputs[input]);
    kl_expr *hz = kl_e_cast(a, KL_F32, kl_lower_load_broadcast(L, b, 0));
    kl_expr *t = kl_e_binary(a, KL_ADD, kl_e_const_f(a, KL_F32, 1),
                             kl_e_binary(a, KL_DIV, hz, kl_e_const_f(a, KL_F32, 700)));
    kl_expr *log10 = kl_e_binary(a, KL_DIV, kl_e_unary(a, KL_LOG, kl_e_cast(a, KL_F64, t)),
                                 kl_e_const_f(a, KL_F64, ln10));
    return kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F32, 2595), kl_e_cast(a, KL_F32, log10));
}

/* The spectrogram bin of mel point k (an int64 expression), as a float64 integer. */
static kl_expr *mel_point_bin(kl_lower *L, kl_expr *k, kl_expr *low, kl_expr *step,
                              kl_expr *dft1, kl_expr *rate) {
    kl_arena *a = L->arena;
    kl_expr *mel = kl_e_binary(a, KL_ADD, kl_e_binary(a, KL_MUL, kl_e_cast(a, KL_F64, k), step), low);
    kl_expr *pow10 = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_MUL, mel,
                                                       kl_e_const_f(a, KL_F64, ln10 / 2595)));
    kl_expr *hz = kl_e_binary(a, KL_MUL, kl_e_const_f(a, KL_F64, 700),
                              kl_e_binary(a, KL_SUB, pow10, kl_e_const_f(a, KL_F64, 1)));
    return kl_e_unary(a, KL_FLOOR, kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_MUL, dft1, hz), rate));
}

static bool lower_mel(kl_lower *L, kl_node *n, kl_diag *d) {
    mel_plan m;
    if (!mel_plan_of(n, &m, d)) return false;
    kl_arena *a = L->arena;
    kl_expr *mels = kl_lower_int_at(L, n, 0, 0), *dft = kl_lower_int_at(L, n, 1, 0);
    if (kl_input_at_run_time(n, 0) || kl_input_at_run_time(n, 1)) {
        kl_expr *ok = kl_e_binary(a, KL_EQ, mels, kl_e_idx(a, m.mels));
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_GE, dft, kl_e_idx(a, 0)));
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_e_addc(a, kl_e_binary(a, KL_DIV, dft, kl_e_idx(a, 2)), 1),
                                         kl_e_idx(a, m.bins)));
        kl_lower_shape_check(L, n, ok);
    }
    kl_expr *low = mel_of_hertz(L, n, 3), *high = mel_of_hertz(L, n, 4);
    kl_expr *step = kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_SUB, high, low),
                                kl_e_const_f(a, KL_F32, (double)(m.mels + 2)));
    kl_expr *low64 = kl_e_cast(a, KL_F64, low), *step64 = kl_e_cast(a, KL_F64, step);
    kl_expr *dft1 = kl_e_cast(a, KL_F64, kl_e_addc(a, dft, 1));
    kl_expr *rate = kl_e_cast(a, KL_F64, kl_lower_int_at(L, n, 2, 0));
    kl_expr *i = kl_e_iv(a, 1), *j = kl_e_cast(a, KL_F64, kl_e_iv(a, 0));
    kl_expr *l = mel_point_bin(L, i, low64, step64, dft1, rate);
    kl_expr *c = mel_point_bin(L, kl_e_addc(a, i, 1), low64, step64, dft1, rate);
    kl_expr *h = mel_point_bin(L, kl_e_addc(a, i, 2), low64, step64, dft1, rate);
    kl_expr *zero = kl_e_const_f(a, KL_F64, 0), *one = kl_e_const_f(a, KL_F64, 1);
    kl_expr *rise = kl_e_select(a, kl_e_binary(a, KL_EQ, c, l), one,
                                kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_SUB, j, l),
                                            kl_e_binary(a, KL_SUB, c, l)));
    kl_expr *fall = kl_e_binary(a, KL_DIV, kl_e_binary(a, KL_SUB, h, j), kl_e_binary(a, KL_SUB, h, c));
    kl_expr *on_rise = kl_e_and(a, kl_e_binary(a, KL_GE, j, l), kl_e_binary(a, KL_LE, j, c));
    kl_expr *on_fall = kl_e_and(a, kl_e_binary(a, KL_GE, j, c), kl_e_binary(a, KL_LT, j, h));
    kl_expr *v = kl_e_select(a, on_fall, fall, kl_e_select(a, on_rise, rise, zero));
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]), kl_e_cast(a, m.out, v));
    return true;
}

static const char *const mel_attrs[] = {"output_datatype", NULL};

const kl_op kl_ops_signal[] = {
    {"", "HannWindow", 17, KL_OPSET_LATEST, window_attrs, infer_window, lower_window},
    {"", "HammingWindow", 17, KL_OPSET_LATEST, window_attrs, infer_window, lower_window},
    {"", "BlackmanWindow", 17, KL_OPSET_LATEST, window_attrs, infer_window, lower_window},
    {"", "STFT", 17, KL_OPSET_LATEST, stft_attrs, infer_stft, lower_stft},
    {"", "MelWeightMatrix", 17, KL_OPSET_LATEST, mel_attrs, infer_mel, lower_mel},
    {0},
};

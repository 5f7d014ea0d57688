/*
 * window.h — sliding-window geometry shared by Conv, ConvTranspose and the pools (ops-B family).
 *
 * Conv and every pool slide a kernel over the spatial dims of an [N, C, D1..Dk] input and read
 * the same attributes: kernel_shape, strides, dilations, pads (all begins, then all ends) and
 * auto_pad, plus ceil_mode for pools. kl_window_resolve() checks them once and computes the
 * explicit pads and the output sizes, so each operator only builds its loop nest.
 * kl_window_input_index() gives the input coordinate read by output o at kernel tap k, and
 * whether it may fall outside the input (then the caller guards the load with a select); the
 * guard is omitted where no window reaches the padding, which keeps padding-free convolutions
 * free of selects. The transposed direction (an output gathering the inputs whose windows cover
 * it) comes as kl_window_source_index, a division per tap (MaxUnpool), or split by output phase
 * (kl_window_phase_of: ConvTranspose), where every index is affine again.
 *
 * Activations come in two layouts: ONNX's [N, C, D1..Dk] and the channels-last [N, D1..Dk, C] of
 * kiln's internal *NHWC operators (passes/layout.c), so the channels are the innermost,
 * contiguous dimension. The window only depends on where the spatial dims sit.
 *
 * Static functions in a header because only the three files of the family use them and the build
 * lists sources by hand: the family stays self-contained.
 */
#ifndef KIL_OPS_WINDOW_H
#define KIL_OPS_WINDOW_H
#include <string.h>

#include "kl.h"

typedef enum kl_layout {
    KL_LAYOUT_NCHW,   /* [N, C, D1..Dk] (ONNX) */
    KL_LAYOUT_NHWC,   /* [N, D1..Dk, C] (kiln's ConvNHWC, MaxPoolNHWC, AveragePoolNHWC) */
} kl_layout;

/* The axis of the channels, and of spatial dim i, in an activation of rank `rank`. */
static inline int kl_layout_channel_axis(kl_layout l, int rank) {
    return l == KL_LAYOUT_NHWC ? rank - 1 : 1;
}
static inline int kl_layout_spatial_axis(kl_layout l, int i) {
    return l == KL_LAYOUT_NHWC ? 1 + i : 2 + i;
}

typedef struct kl_window {
    int nsp;                          /* number of spatial dims */
    int64_t in[KL_MAX_RANK];          /* input spatial sizes */
    int64_t kernel[KL_MAX_RANK];
    int64_t stride[KL_MAX_RANK];
    int64_t dilation[KL_MAX_RANK];
    int64_t pad_begin[KL_MAX_RANK];
    int64_t pad_end[KL_MAX_RANK];
    int64_t out[KL_MAX_RANK];         /* output spatial sizes */
} kl_window;

/* An INTS attribute of exactly `count` values >= `min` into `dst`, or `def` everywhere when the
 * attribute is absent. */
static inline bool kl_window_ints(const kl_node *n, const char *name, int count, int64_t min,
                                  int64_t def, int64_t *dst, kl_diag *d) {
    const int64_t *v;
    int got = kl_attr_ints(n, name, &v);
    if (got < 0) {
        for (int i = 0; i < count; i++) dst[i] = def;
        return true;
    }
    if (got != count)
        return kl_error(d, n, "attribute %s has %d values, expected %d", name, got, count);
    for (int i = 0; i < count; i++) {
        if (v[i] < min)
            return kl_error(d, n, "attribute %s[%d] = %lld must be >= %lld", name, i,
                            (long long)v[i], (long long)min);
        /* a window larger than any tensor kiln holds is a broken model; the bound also keeps
           the geometry below (spans, padded sizes) from overflowing */
        if (v[i] > KL_MAX_BYTES)
            return kl_error(d, n, "attribute %s[%d] = %lld is out of range (at most %lld)", name,
                            i, (long long)v[i], (long long)KL_MAX_BYTES);
        dst[i] = v[i];
    }
    return true;
}

/* The window's span (kernel-1)*dilation+1 in dim i, or false when it overflows. */
static inline bool kl_window_span_checked(const kl_window *w, int i, int64_t *span) {
    return kl_mul_checked(w->kernel[i] - 1, w->dilation[i], span) && span[0] < KL_MAX_BYTES &&
           kl_add_checked(*span, 1, span);
}

static inline int64_t kl_window_span(const kl_window *w, int i) {
    return (w->kernel[i] - 1) * w->dilation[i] + 1;
}

/* a / b rounded toward minus infinity (splitting negative total paddings) */
static inline int64_t kl_div_floor(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Fill `w` from the node's attributes and the input shape `x` ([N, C, spatial...], or
 * [N, spatial..., C] in the channels-last layout).
 * `kernel_from`: the spatial dims of the weights (Conv) used when kernel_shape is absent, or
 * NULL when kernel_shape is required (pools). `with_ceil`: the op has ceil_mode.
 */
static inline bool kl_window_resolve(const kl_node *n, const kl_shape *x, kl_layout layout,
                                     const int64_t *kernel_from, bool with_ceil, kl_window *w,
                                     kl_diag *d) {
    memset(w, 0, sizeof *w);
    if (x->rank < 3)
        return kl_error(d, n, "input X has rank %d; expected %s (rank >= 3)", x->rank,
                        layout == KL_LAYOUT_NHWC ? "[N, D1, ..., C]" : "[N, C, D1, ...]");
    w->nsp = x->rank - 2;
    for (int i = 0; i < w->nsp; i++) w->in[i] = x->dim[kl_layout_spatial_axis(layout, i)];

    const int64_t *ks;
    int nk = kl_attr_ints(n, "kernel_shape", &ks);
    if (nk < 0 && !kernel_from) return kl_error(d, n, "attribute kernel_shape is required");
    if (nk < 0) {
        for (int i = 0; i < w->nsp; i++) w->kernel[i] = kernel_from[i];
    } else if (!kl_window_ints(n, "kernel_shape", w->nsp, 1, 1, w->kernel, d)) {
        return false;
    }
    if (kernel_from)
        for (int i = 0; i < w->nsp; i++)
            if (w->kernel[i] != kernel_from[i])
                return kl_error(d, n, "kernel_shape[%d] = %lld but W has %lld there", i,
                                (long long)w->kernel[i], (long long)kernel_from[i]);
    if (!kl_window_ints(n, "strides", w->nsp, 1, 1, w->stride, d) ||
        !kl_window_ints(n, "dilations", w->nsp, 1, 1, w->dilation, d))
        return false;
    int64_t pads[2 * KL_MAX_RANK];
    if (!kl_window_ints(n, "pads", 2 * w->nsp, 0, 0, pads, d)) return false;
    bool ceil_mode = with_ceil && kl_attr_int(n, "ceil_mode", 0) != 0;

    const char *auto_pad = kl_attr_string(n, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(auto_pad, "SAME_UPPER");
    bool same_lower = !strcmp(auto_pad, "SAME_LOWER");
    bool valid = !strcmp(auto_pad, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") && auto_pad[0])
        return kl_error(d, n, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID",
                        auto_pad);

    for (int i = 0; i < w->nsp; i++) {
        int64_t span, s = w->stride[i];
        if (!kl_window_span_checked(w, i, &span))
            return kl_error(d, n, "window of kernel %lld and dilation %lld in spatial dim %d is "
                            "too large", (long long)w->kernel[i], (long long)w->dilation[i], i);
        if (same_upper || same_lower) {
            w->out[i] = (w->in[i] + s - 1) / s;
            int64_t total; /* (out-1)*s < in + s: no overflow with both below KL_MAX_BYTES */
            total = (w->out[i] - 1) * s + span - w->in[i];
            if (total < 0) total = 0;
            w->pad_begin[i] = same_upper ? total / 2 : total - total / 2;
            w->pad_end[i] = total - w->pad_begin[i];
            continue;
        }
        if (!valid) {
            w->pad_begin[i] = pads[i];
            w->pad_end[i] = pads[i + w->nsp];
        }
        int64_t room = w->in[i] + w->pad_begin[i] + w->pad_end[i] - span;
        if (room < 0)
            return kl_error(d, n,
                            "window of %lld (kernel %lld, dilation %lld) is larger than the "
                            "padded input %lld in spatial dim %d",
                            (long long)span, (long long)w->kernel[i], (long long)w->dilation[i],
                            (long long)(w->in[i] + w->pad_begin[i] + w->pad_end[i]), i);
        w->out[i] = (ceil_mode && !valid ? (room + s - 1) / s : room / s) + 1;
        /* ceil_mode: the last window must start inside the input or its begin padding */
        if (ceil_mode && !valid && (w->out[i] - 1) * s >= w->in[i] + w->pad_begin[i])
            w->out[i]--;
    }
    return true;
}

/* Input coordinate read by output position `o` (an expression) at kernel tap `k` (an
 * expression) in spatial dim i: o*stride + k*dilation - pad_begin. */
static inline kl_expr *kl_window_input_index(kl_arena *a, const kl_window *w, int i, kl_expr *o,
                                             kl_expr *k) {
    return kl_e_addc(a, kl_e_add(a, kl_e_mulc(a, o, w->stride[i]), kl_e_mulc(a, k, w->dilation[i])),
                     -w->pad_begin[i]);
}

/* The transposed direction (ConvTranspose, MaxUnpool): the input coordinate whose window covers
 * output position `o` at tap `k` in spatial dim i, (o + pad_begin - k*dilation) / stride, valid
 * when the division is exact and the result lies in [0, in); that condition is and-ed into
 * *valid. */
static inline kl_expr *kl_window_source_index(kl_arena *a, const kl_window *w, int i, kl_expr *o,
                                              kl_expr *k, kl_expr **valid) {
    kl_expr *t = kl_e_add(a, kl_e_addc(a, o, w->pad_begin[i]), kl_e_mulc(a, k, -w->dilation[i]));
    if (w->stride[i] > 1) {
        kl_expr *s = kl_e_idx(a, w->stride[i]);
        *valid = kl_e_and(a, *valid,
                          kl_e_binary(a, KL_EQ, kl_e_binary(a, KL_MOD, t, s), kl_e_idx(a, 0)));
        t = kl_e_binary(a, KL_DIV, t, s);
    }
    *valid = kl_e_and(a, *valid, kl_e_in_range(a, t, w->in[i]));
    return t;
}

/*
 * One phase of the transposed direction in spatial dim i (ConvTranspose): the outputs
 * o = q*stride + r, q in [0, q_count). Output o takes tap k from input (o + pad_begin - k*d) / s
 * when that division is exact, so of all the taps only k = k0 + j*step (j in [0, taps)) reach a
 * phase, with step = s / gcd(s, d), and they read input q + shift - j*back, affine in q and j.
 * taps == 0: no tap reaches the phase (it is the bias alone); q_count == 0: the output has no
 * position of this phase.
 */
typedef struct kl_window_phase {
    int64_t r, q_count;
    int64_t k0, taps, step;
    int64_t shift, back;
} kl_window_phase;

static inline int64_t kl_gcd(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static inline kl_window_phase kl_window_phase_of(const kl_window *w, int i, int64_t r) {
    int64_t s = w->stride[i], d = w->dilation[i], p = w->pad_begin[i];
    kl_window_phase ph = {.r = r, .step = s / kl_gcd(s, d)};
    ph.q_count = r < w->out[i] ? (w->out[i] - r + s - 1) / s : 0;
    ph.back = ph.step * d / s;
    for (int64_t k = 0; k < w->kernel[i] && ph.taps == 0; k++) {
        int64_t t = r + p - k * d; /* exact multiple of s: k is the phase's first tap */
        if (t % s != 0) continue;
        ph.k0 = k;
        ph.taps = (w->kernel[i] - 1 - k) / ph.step + 1;
        ph.shift = t / s;
    }
    return ph;
}

/* Whether a phase of spatial dim i reads outside [0, in) at some q and tap. */
static inline bool kl_window_phase_needs_guard(const kl_window *w, int i,
                                               const kl_window_phase *ph) {
    int64_t lowest = ph->shift - (ph->taps - 1) * ph->back, highest = ph->q_count - 1 + ph->shift;
    return lowest < 0 || highest >= w->in[i];
}

/* Whether some window of spatial dim i reads outside [0, in). */
static inline bool kl_window_needs_guard(const kl_window *w, int i) {
    int64_t last = (w->out[i] - 1) * w->stride[i] + (w->kernel[i] - 1) * w->dilation[i] -
                   w->pad_begin[i];
    return w->pad_begin[i] > 0 || last >= w->in[i];
}

#endif

/*
 * size.c — checked size arithmetic: every size kiln computes from an untrusted model goes
 * through here before it is trusted.
 *
 * A model file states dims, attributes and lengths as int64, so a product of a few of them (an
 * element count, a byte size, a workspace) can overflow int64 — undefined behaviour in C, and a
 * tiny allocation followed by a huge write in practice. The rule the compiler keeps: every value
 * (graph input, initializer, inferred output) and every buffer it plans is at most KL_MAX_BYTES,
 * checked where it is made. Below that bound, element counts, strides and byte sizes of any one
 * tensor fit int64 with room to spare, so code past the checks may compute them plainly. Loop
 * trip counts of a whole kernel (a product over every loop) are not bounded by that and go
 * through kl_mul_checked where they are multiplied.
 */
#include "kl.h"

bool kl_mul_checked(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

bool kl_add_checked(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

int64_t kl_mul_saturate(int64_t a, int64_t b) {
    int64_t r;
    if (!__builtin_mul_overflow(a, b, &r)) return r;
    return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
}

bool kl_dim_from_double(double x, int64_t *out) {
    if (!(x >= 0 && x <= (double)KL_MAX_BYTES)) return false; /* NaN fails both */
    *out = (int64_t)x;
    return true;
}

int64_t kl_index_from_double(double x) {
    const double bound = (double)((int64_t)1 << 62);
    if (x != x) return 0;
    return x >= bound ? (int64_t)1 << 62 : x <= -bound ? -((int64_t)1 << 62) : (int64_t)x;
}

bool kl_shape_bytes_checked(const kl_shape *s, kl_dtype t, int64_t *bytes) {
    if (s->rank < 0 || s->rank > KL_MAX_RANK) return false;
    int64_t size = (int64_t)kl_dtype_size(t), n = size ? size : 1; /* unknown types: by name */
    /* A zero dim makes the tensor empty whatever the other dims are, but they still become loop
       extents, strides and table sizes: the product of the nonzero dims must fit too, so that
       no partial product of a tensor's dims can overflow anywhere. */
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] < 0 || !kl_mul_checked(n, s->dim[i] ? s->dim[i] : 1, &n) ||
            n > KL_MAX_BYTES)
            return false;
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] == 0) n = 0;
    *bytes = n;
    return true;
}

bool kl_check_tensor_size(kl_arena *a, const kl_shape *s, kl_dtype t, const kl_node *node,
                          const char *what, kl_diag *d) {
    int64_t bytes;
    if (s->rank < 0 || s->rank > KL_MAX_RANK)
        return kl_error(d, node, "%s has rank %d; kiln supports at most %d", what, s->rank,
                        KL_MAX_RANK);
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] < 0)
            return kl_error(d, node, "%s has a negative dimension (%lld in shape %s)", what,
                            (long long)s->dim[i], kl_shape_str(a, s));
    if (!kl_shape_bytes_checked(s, t, &bytes))
        return kl_error(d, node, "%s is too large: shape %s of %s needs more than %lld bytes, "
                        "the most kiln compiles for one tensor", what, kl_shape_str(a, s),
                        kl_dtype_name(t), (long long)KL_MAX_BYTES);
    return true;
}

/*
 * move_util.h — small helpers shared by the data-movement families (reshape.c, movement.c).
 *
 * Data movement is the same for every element type, so these helpers only check that kiln can
 * hold the type, read integer lists that ONNX passes either as an attribute (old opsets) or as a
 * constant input (new opsets), and build the "one loop per output dimension" kernel that every
 * movement operator starts from. Header-only (static inline) so that the family files stay the
 * only translation units of their families.
 */
#ifndef KIL_MOVE_UTIL_H
#define KIL_MOVE_UTIL_H

#include <inttypes.h>
#include <stdio.h>

#include "ops.h"

/* An integer list read from an INTS attribute or from a constant integer input. `n` is -1 when
 * the list was not given at all. */
typedef struct kl_int_list {
    const int64_t *attr;
    const kl_value *value;
    int64_t n;
} kl_int_list;

static inline int64_t kl_int_list_at(const kl_int_list *l, int64_t i) {
    return l->attr ? l->attr[i] : kl_value_const_int(l->value, i);
}

/* Input i holds a list of integers: present, constant, integer, rank 0 or 1. Absent: n = -1. */
static inline bool kl_int_list_from_input(kl_node *n, int i, const char *what, kl_int_list *out,
                                          kl_diag *d) {
    *out = (kl_int_list){.n = -1};
    kl_value *v = kl_node_input(n, i);
    if (!v) return true;
    if (!kl_infer_need_const(n, i, d)) return false;
    if (!kl_dtype_is_signed_int(v->dtype) && !kl_dtype_is_unsigned_int(v->dtype))
        return kl_error(d, n, "input %d (%s) must be an integer tensor, not %s", i, what,
                        kl_dtype_name(v->dtype));
    if (v->shape.rank > 1)
        return kl_error(d, n, "input %d (%s) must be a 1-D tensor, not rank %d", i, what,
                        v->shape.rank);
    out->value = v;
    out->n = kl_shape_numel(&v->shape);
    return true;
}

/* The INTS attribute `name`; absent: n = -1. */
static inline kl_int_list kl_int_list_from_attr(const kl_node *n, const char *name) {
    const int64_t *ints = NULL;
    int count = kl_attr_ints(n, name, &ints);
    return (kl_int_list){.attr = ints, .n = count};
}

/* Movement operators copy elements without looking at them: any type with a size will do. */
static inline bool kl_move_need_data(kl_node *n, int i, kl_diag *d) {
    if (!kl_infer_need_input(n, i, d)) return false;
    kl_dtype t = n->inputs[i]->dtype;
    if (kl_dtype_size(t) == 0)
        return kl_error(d, n, "input %d has element type %s, which kiln cannot hold", i,
                        kl_dtype_name(t));
    return true;
}

/* "[2,3,4]" into a caller's buffer (inference has no arena at hand; messages are short). */
static inline const char *kl_move_shape_text(const kl_shape *s, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", s->dim[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}
#define KL_SHAPE_TEXT(s) kl_move_shape_text((s), (char[160]){0}, 160)

/* A kernel with one parallel loop per dimension of `out`, storing at out[iv0, iv1, ...]; the
 * caller sets `value` (loads indexed by kl_e_iv) and adds it with kl_move_add_kernel. */
static inline kl_kernel *kl_move_kernel(kl_lower *L, const kl_node *n, const char *tag,
                                        kl_buffer *out) {
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_loops = k->n_par = out->shape.rank;
    for (int i = 0; i < out->shape.rank; i++) k->extent[i] = out->shape.dim[i];
    k->out = out;
    k->out_idx = kl_lower_ivs(L, out->shape.rank);
    return k;
}

/* Add a kernel unless one of its loops is empty (zero-size tensors need no code). */
static inline void kl_move_add_kernel(kl_lower *L, kl_kernel *k) {
    for (int i = 0; i < k->n_loops; i++)
        if (k->extent[i] == 0) return;
    kl_program_add_kernel(L->prog, k);
}

/* The typed constant `v` (a float or an integer stored as double / int64) of element type t. */
static inline kl_expr *kl_move_const(kl_arena *a, kl_dtype t, double f, int64_t i) {
    return kl_dtype_is_float(t) ? kl_e_const_f(a, t, f) : kl_e_const_i(a, t, i);
}

#endif

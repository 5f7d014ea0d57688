/*
 * sequence_positions.c — SequenceAt, SequenceInsert and SequenceErase at a position computed at
 * run time.
 *
 * kiln compiles sequences away (ops/sequence.c): a sequence is a compile-time list of tensor
 * values. A position given at run time cannot pick a value of that list when compiling, but
 * where every tensor the position may pick has one element type and shape, the result's shapes
 * do not depend on it, and the choice becomes tensor operators: the tensors are stacked along a
 * new leading axis, and each result is a Gather of that stack at an index computed from the
 * position. Gather checks its indices at run time, so a position out of range makes predict
 * return KILN_E_INDEX_OUT_OF_RANGE (the index is then forced out of the stack's range), as
 * ONNX Runtime fails such a call.
 */
#include <string.h>

#include "move_util.h"
#include "ops.h"
#include "sequence_util.h"

/* A fresh value that op computes from in (a node of n's guard). */
static kl_value *computed(kl_graph *g, kl_node *n, const char *op, int n_in, kl_value **in,
                          kl_diag *d) {
    kl_value *out = kl_seq_fresh_value(g, n->outputs[0]->name);
    return kl_seq_add_node(g, n, op, n_in, in, 1, &out, d) ? out : NULL;
}

static kl_value *binary(kl_graph *g, kl_node *n, const char *op, kl_value *a, kl_value *b,
                        kl_diag *d) {
    if (!a || !b) return NULL;
    kl_value *in[2] = {a, b};
    return computed(g, n, op, 2, in, d);
}

static kl_value *where(kl_graph *g, kl_node *n, kl_value *cond, kl_value *x, kl_value *y,
                       kl_diag *d) {
    if (!cond || !x || !y) return NULL;
    kl_value *in[3] = {cond, x, y};
    return computed(g, n, "Where", 3, in, d);
}

static kl_value *i64(kl_graph *g, const kl_node *n, int64_t x) {
    return kl_seq_const_scalar(g, n, KL_I64, x);
}

/* The tensors a run-time position chooses among must agree, or the result's shape would
 * depend on the position. */
static bool uniform(kl_node *n, kl_value *const *items, int64_t count, const kl_value *position,
                    kl_diag *d) {
    for (int64_t i = 1; i < count; i++) {
        const kl_value *a = items[0], *b = items[i];
        if (a->dtype == b->dtype && kl_shape_equal(&a->shape, &b->shape)) continue;
        char hint[512];
        kl_value_binding_hint(d, position, hint, sizeof hint);
        return kl_error(d, n, "position '%s' is computed at run time, so the tensors it picks "
                        "from must share one type and shape, but '%s' is %s %s and '%s' is %s "
                        "%s%s", position->name, a->name, kl_dtype_name(a->dtype),
                        KL_SHAPE_TEXT(&a->shape), b->name, kl_dtype_name(b->dtype),
                        KL_SHAPE_TEXT(&b->shape), hint);
    }
    return true;
}

/* The position as an int64 scalar: ONNX allows int32, and models give a [1] tensor too. */
static kl_value *position_scalar(kl_graph *g, kl_node *n, kl_value *p, kl_diag *d) {
    if ((p->dtype != KL_I64 && p->dtype != KL_I32) || kl_shape_numel(&p->shape) != 1) {
        kl_error(d, n, "position '%s' must be one int32 or int64 element, not %s %s", p->name,
                 kl_dtype_name(p->dtype), KL_SHAPE_TEXT(&p->shape));
        return NULL;
    }
    kl_value *x = p;
    if (x->dtype != KL_I64) {
        x = computed(g, n, "Cast", 1, &p, d);
        if (!x) return NULL;
        kl_node_set_attr_int(g, x->producer, "to", KL_I64);
    }
    if (p->shape.rank == 0) return x;
    return binary(g, n, "Reshape", x, kl_seq_const_i64_list(g, n, NULL, 0), d);
}

/* items stacked along a new leading axis: stack[i] is items[i]. */
static kl_value *stacked(kl_graph *g, kl_node *n, kl_value *const *items, int64_t count,
                         kl_diag *d) {
    kl_value **parts = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *parts);
    int64_t zero = 0;
    for (int64_t i = 0; i < count; i++) {
        parts[i] = binary(g, n, "Unsqueeze", items[i], kl_seq_const_i64_list(g, n, &zero, 1), d);
        if (!parts[i]) return NULL;
    }
    kl_value *stack = computed(g, n, "Concat", (int)count, parts, d);
    if (stack) kl_node_set_attr_int(g, stack->producer, "axis", 0);
    return stack;
}

/* The position made non-negative (a negative one counts from the end of `len` tensors), and
 * whether it lies in [-len, last]. */
static kl_value *normalized(kl_graph *g, kl_node *n, kl_value *p, int64_t len, kl_diag *d) {
    kl_value *negative = binary(g, n, "Less", p, i64(g, n, 0), d);
    return where(g, n, negative, binary(g, n, "Add", p, i64(g, n, len), d), p, d);
}

static kl_value *in_range(kl_graph *g, kl_node *n, kl_value *p, int64_t len, int64_t last,
                          kl_diag *d) {
    return binary(g, n, "And", binary(g, n, "GreaterOrEqual", p, i64(g, n, -len), d),
                  binary(g, n, "LessOrEqual", p, i64(g, n, last), d), d);
}

/* 0, 1, .., count - 1 */
static kl_value *iota(kl_graph *g, const kl_node *n, int64_t count) {
    int64_t *x = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *x);
    for (int64_t i = 0; i < count; i++) x[i] = i;
    return kl_seq_const_i64_list(g, n, x, (int)count);
}

/* out[i] = stack[index[i]] for each of the count indices; an index past the stack fails the
 * call at run time (Gather's check). */
static bool gathered(kl_graph *g, kl_node *n, kl_value *stack, kl_value *index, int64_t count,
                     kl_value **out, kl_diag *d) {
    for (int64_t i = 0; i < count; i++) {
        kl_value *at = binary(g, n, "Gather", index, i64(g, n, i), d);
        out[i] = binary(g, n, "Gather", stack, at, d);
        if (!out[i]) return false;
    }
    return true;
}

bool kl_sequence_at_run_time(kl_graph *g, kl_node *n, kl_value **items, int64_t count,
                             kl_value *position, kl_diag *d) {
    if (count == 0) return kl_error(d, n, "the sequence is empty: no tensor to read");
    if (!uniform(n, items, count, position, d)) return false;
    kl_value *p = position_scalar(g, n, position, d);
    kl_value *stack = p ? stacked(g, n, items, count, d) : NULL;
    if (!stack) return false;
    /* Gather takes [-count, count - 1], as SequenceAt does */
    kl_value *in[2] = {stack, p}, *out = n->outputs[0];
    kl_node_kill(n);
    return kl_seq_add_node(g, n, "Gather", 2, in, 1, &out, d) != NULL;
}

bool kl_sequence_insert_at_run_time(kl_graph *g, kl_node *n, kl_value **items, int64_t count,
                                    kl_value *tensor, kl_value *position, kl_value **out,
                                    kl_diag *d) {
    kl_value **all = kl_alloc_array(g->arena, (size_t)count + 2, sizeof *all);
    if (count) memcpy(all, items, (size_t)count * sizeof *all);
    all[count] = tensor; /* the stack's last entry */
    if (!uniform(n, all, count + 1, position, d)) return false;
    kl_value *p = position_scalar(g, n, position, d);
    kl_value *stack = p ? stacked(g, n, all, count + 1, d) : NULL;
    if (!stack) return false;
    /* result i: items[i] before the position, the tensor at it, items[i - 1] after it */
    kl_value *at = normalized(g, n, p, count, d), *i = iota(g, n, count + 1);
    kl_value *after = where(g, n, binary(g, n, "Equal", i, at, d), i64(g, n, count),
                            binary(g, n, "Sub", i, i64(g, n, 1), d), d);
    kl_value *index = where(g, n, binary(g, n, "Less", i, at, d), i, after, d);
    index = where(g, n, in_range(g, n, p, count, count, d), index, i64(g, n, count + 1), d);
    return index && gathered(g, n, stack, index, count + 1, out, d);
}

bool kl_sequence_erase_at_run_time(kl_graph *g, kl_node *n, kl_value **items, int64_t count,
                                   kl_value *position, kl_value **out, kl_diag *d) {
    if (!uniform(n, items, count, position, d)) return false;
    kl_value *p = position_scalar(g, n, position, d);
    kl_value *stack = p ? stacked(g, n, items, count, d) : NULL;
    if (!stack) return false;
    /* result i: items[i] before the position, items[i + 1] from it on. Erasing the one tensor
       of a sequence gathers nothing, so no position is checked then: any gives the empty
       sequence. */
    kl_value *at = normalized(g, n, p, count, d), *i = iota(g, n, count - 1);
    kl_value *index = where(g, n, binary(g, n, "Less", i, at, d), i,
                            binary(g, n, "Add", i, i64(g, n, 1), d), d);
    index = where(g, n, in_range(g, n, p, count, count - 1, d), index, i64(g, n, count), d);
    return index && gathered(g, n, stack, index, count - 1, out, d);
}

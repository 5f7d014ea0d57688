/*
 * sequence.c — sequences and optionals, compiled away.
 *
 * In the models kiln meets, the structure of a sequence (how many tensors, which position
 * SequenceAt / SequenceInsert / SequenceErase use) and of an optional (whether it holds a value)
 * is known when compiling. So no sequence ever reaches the generated code: shape inference
 * calls each operator's `settle` in place of `infer`, with every input already inferred (and
 * folded), and the operator either records its output's structure (kl_value.compound: the
 * tensors held) or becomes tensor operators:
 *   SequenceEmpty / SequenceConstruct / SequenceInsert / SequenceErase / Optional
 *                                  a new list of the tensor values (no node is left);
 *   SequenceAt                     Identity of the tensor at the (constant) position;
 *                                  a Gather of the stacked tensors at a run-time one;
 *   SequenceLength                 Identity of a constant (folded);
 *   SplitToSequence                Split (+ Squeeze for keepdims=0), built when a piece is read;
 *   ConcatFromSequence             Concat (new_axis=1: Unsqueeze each, then Concat);
 *   OptionalHasElement             Identity of a constant bool;
 *   OptionalGetElement             Identity of the tensor (or the sequence it holds).
 * An If whose branches give sequences or optionals becomes an If over their tensors, when both
 * branches agree on the structure; an Identity of one (Loop and Scan unrolled by the loader
 * carry values through them) passes the structure on (kl_sequence_settle_carrier).
 * A position computed at run time picks among tensors of one shape through a Gather
 * (ops/sequence_positions.c). What is not known when compiling (a sequence's length, branches
 * giving sequences of different lengths) is refused with a message naming the node and value.
 * A sequence or optional as a graph input or output is refused (the generated interface takes
 * and gives tensors only).
 */
#include <string.h>

#include "move_util.h"
#include "ops.h"
#include "sequence_util.h"

/* Pieces of one SplitToSequence: each is a node of the generated code. */
enum { MAX_PIECES = 4096 };


static const char *const no_attrs[] = {NULL};
static const char *const sequence_empty_attrs[] = {"dtype", NULL};
static const char *const split_to_sequence_attrs[] = {"axis", "keepdims", NULL};
static const char *const concat_from_sequence_attrs[] = {"axis", "new_axis", NULL};
static const char *const optional_attrs[] = {"type", NULL};

/* ---- values and nodes made here ----------------------------------------------------------- */

kl_value *kl_seq_const_scalar(kl_graph *g, const kl_node *n, kl_dtype t, int64_t x) {
    kl_shape scalar = {0};
    void *data = kl_alloc(g->arena, 8);
    if (t == KL_BOOL)
        *(uint8_t *)data = (uint8_t)(x != 0);
    else
        *(int64_t *)data = x;
    return kl_value_make(g, kl_sprintf(g->arena, "%s_const", n->name), t, &scalar, data);
}

kl_value *kl_seq_const_i64_list(kl_graph *g, const kl_node *n, const int64_t *x, int count) {
    kl_shape s = {.rank = 1, .dim = {count}};
    int64_t *data = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *data);
    if (count) memcpy(data, x, (size_t)count * sizeof *data);
    return kl_value_make(g, kl_sprintf(g->arena, "%s_const", n->name), KL_I64, &s, data);
}

kl_value *kl_seq_fresh_value(kl_graph *g, const char *base) {
    return kl_value_new(g, kl_sprintf(g->arena, "%s__%d", base, g->values.n));
}

kl_node *kl_seq_add_node(kl_graph *g, const kl_node *like, const char *op_type, int n_in,
                         kl_value *const *in, int n_out, kl_value *const *out, kl_diag *d) {
    kl_node *m = kl_node_add(g, "", op_type, KL_SEQ_TENSOR_OPSET,
                             kl_sprintf(g->arena, "%s/%s", like->name, op_type), n_in, in, n_out,
                             out);
    if (!m) {
        kl_error(d, like, "internal error: no %s in the op table", op_type);
        return NULL;
    }
    m->guard = like->guard;
    return m;
}

/* n's output 0 becomes Identity(x). */
static bool becomes_identity(kl_graph *g, kl_node *n, kl_value *x, kl_diag *d) {
    kl_value *out = n->outputs[0];
    kl_node_kill(n);
    return kl_seq_add_node(g, n, "Identity", 1, &x, 1, &out, d) != NULL;
}

/* ---- reading operands ------------------------------------------------------------------- */

static const char *kind_name(const kl_compound *c) {
    return c->optional ? "an optional" : "a sequence";
}

/* Input i, which must be a sequence whose structure is known. */
static kl_compound *sequence_input(kl_node *n, int i, kl_diag *d) {
    kl_value *v = kl_node_input(n, i);
    if (!v) {
        kl_error(d, n, "input %d (a sequence) is missing", i);
        return NULL;
    }
    if (!v->compound || v->compound->optional) {
        kl_error(d, n, "input '%s' is not a sequence whose structure is known when compiling",
                 v->name);
        return NULL;
    }
    return v->compound;
}

/* Input i, which must be a tensor (not a sequence or optional). */
static kl_value *tensor_input(kl_node *n, int i, kl_diag *d) {
    kl_value *v = kl_node_input(n, i);
    if (!v) {
        kl_error(d, n, "input %d is missing", i);
        return NULL;
    }
    if (v->compound) {
        kl_error(d, n, "input '%s' is %s; this input takes a tensor", v->name,
                 kind_name(v->compound));
        return NULL;
    }
    if (!v->has_shape) {
        kl_error(d, n, "input '%s' has no known shape", v->name);
        return NULL;
    }
    return v;
}

/* Input i is a position computed at run time (ops/sequence_positions.c takes it). */
static bool at_run_time(const kl_node *n, int i) {
    const kl_value *p = kl_node_input(n, i);
    return p && !p->compound && p->has_shape && !p->data;
}

/* A position operand known when compiling: an integer scalar in [-len, len - 1], or
 * [-len, len] when it may name the end (SequenceInsert); made non-negative in *out. */
static bool position_input(kl_node *n, int i, int64_t len, bool end_allowed, int64_t *out,
                           kl_diag *d) {
    kl_value *p = tensor_input(n, i, d);
    if (!p) return false;
    if ((p->dtype != KL_I64 && p->dtype != KL_I32) || kl_shape_numel(&p->shape) != 1)
        return kl_error(d, n, "position '%s' must be one int32 or int64 element, not %s %s",
                        p->name, kl_dtype_name(p->dtype), KL_SHAPE_TEXT(&p->shape));
    int64_t pos = kl_value_const_int(p, 0);
    int64_t last = end_allowed ? len : len - 1;
    if (pos < -len || pos > last)
        return kl_error(d, n, "position %lld ('%s') is out of range for a sequence of %lld "
                        "tensors", (long long)pos, p->name, (long long)len);
    *out = pos < 0 ? pos + len : pos;
    return true;
}

static kl_compound *new_compound(kl_graph *g, bool optional, int64_t n, kl_dtype elem) {
    kl_compound *c = kl_alloc(g->arena, sizeof *c);
    c->optional = optional;
    c->n = n;
    c->elem = elem;
    c->items = kl_alloc_array(g->arena, (size_t)n + 1, sizeof *c->items);
    return c;
}

/* n's outputs: output 0 gets c, and n is done. */
static bool records(kl_node *n, kl_compound *c) {
    if (n->outputs[0]) n->outputs[0]->compound = c;
    kl_node_kill(n);
    return true;
}

static bool need_output(kl_node *n, kl_diag *d) {
    if (n->n_outputs < 1 || !n->outputs[0]) return kl_error(d, n, "output 0 is missing");
    return true;
}

/* A tensor joining a sequence of element type `elem` (KL_UNDEFINED: any). */
static bool element_fits(kl_node *n, const kl_value *t, kl_dtype elem, kl_diag *d) {
    if (elem != KL_UNDEFINED && t->dtype != elem)
        return kl_error(d, n, "tensor '%s' is %s but the sequence holds %s", t->name,
                        kl_dtype_name(t->dtype), kl_dtype_name(elem));
    return true;
}

/* ---- SplitToSequence's pieces ----------------------------------------------------------- */

/* The axis of a SplitToSequence (normalized against x's rank). */
static bool split_axis(kl_node *n, const kl_value *x, int *axis, kl_diag *d) {
    int64_t given = kl_attr_int(n, "axis", 0);
    if (!kl_axis_normalize(given, x->shape.rank, axis))
        return kl_error(d, n, "axis %lld is out of range for input '%s' %s", (long long)given,
                        x->name, KL_SHAPE_TEXT(&x->shape));
    return true;
}

/* The sizes of the pieces (count of them), or false with a message. */
static bool split_sizes(kl_graph *g, kl_node *n, int64_t count, int64_t **sizes, kl_diag *d) {
    const kl_value *x = n->inputs[0], *split = kl_node_input(n, 1);
    int axis;
    if (!split_axis(n, x, &axis, d)) return false;
    int64_t dim = x->shape.dim[axis];
    *sizes = kl_alloc_array(g->arena, (size_t)count + 1, sizeof **sizes);
    if (!split) {
        for (int64_t i = 0; i < count; i++) (*sizes)[i] = 1;
        return true;
    }
    if (split->shape.rank == 0) {
        int64_t s = kl_value_const_int(split, 0);
        for (int64_t i = 0; i < count; i++) (*sizes)[i] = i < count - 1 ? s : dim - s * i;
        return true;
    }
    int64_t total = 0;
    for (int64_t i = 0; i < count; i++) {
        (*sizes)[i] = kl_value_const_int(split, i);
        if ((*sizes)[i] < 0)
            return kl_error(d, n, "split[%lld] = %lld is negative", (long long)i,
                            (long long)(*sizes)[i]);
        if (!kl_add_checked(total, (*sizes)[i], &total) || total > dim) break;
    }
    if (total != dim)
        return kl_error(d, n, "split sizes in '%s' do not add up to %lld, the size of axis %d",
                        split->name, (long long)dim, axis);
    return true;
}

/* Build the Split (and Squeezes) of a pending SplitToSequence: c's items. */
static bool build_pieces(kl_graph *g, kl_compound *c, kl_diag *d) {
    kl_node *n = c->split;
    if (c->n > MAX_PIECES)
        return kl_error(d, n, "the sequence has %lld tensors; kiln compiles at most %d of a "
                        "SplitToSequence", (long long)c->n, MAX_PIECES);
    int count = (int)c->n;
    kl_value *split = kl_node_input(n, 1), *sizes_value = split;
    if (!split || split->data) { /* sizes given at run time: pieces of data-dependent length */
        int64_t *sizes;
        if (!split_sizes(g, n, c->n, &sizes, d)) return false;
        sizes_value = kl_seq_const_i64_list(g, n, sizes, count);
    }
    int axis;
    if (!split_axis(n, n->inputs[0], &axis, d)) return false;
    bool squeeze = !split && kl_attr_int(n, "keepdims", 1) == 0;
    kl_value **pieces = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *pieces);
    for (int i = 0; i < count; i++) pieces[i] = kl_seq_fresh_value(g, n->outputs[0]->name);
    kl_value *in[2] = {n->inputs[0], sizes_value};
    kl_node *s = kl_seq_add_node(g, n, "Split", 2, in, count, pieces, d);
    if (!s) return false;
    kl_node_set_attr_int(g, s, "axis", axis);
    for (int i = 0; i < count; i++) {
        if (!squeeze) {
            c->items[i] = pieces[i];
            continue;
        }
        int64_t ax = axis;
        kl_value *sq_in[2] = {pieces[i], kl_seq_const_i64_list(g, n, &ax, 1)};
        c->items[i] = kl_seq_fresh_value(g, n->outputs[0]->name);
        if (!kl_seq_add_node(g, n, "Squeeze", 2, sq_in, 1, &c->items[i], d)) return false;
    }
    c->split = NULL;
    return true;
}

/* The tensors of a sequence, built first if they are still pending. */
static kl_value **items_of(kl_graph *g, kl_compound *c, kl_diag *d) {
    if (c->split && !build_pieces(g, c, d)) return NULL;
    return c->items;
}

kl_value **kl_sequence_items(kl_graph *g, kl_compound *c, kl_diag *d) {
    return items_of(g, c, d);
}

/* ---- the operators ---------------------------------------------------------------------- */

static bool sequence_empty_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_dtype elem = (kl_dtype)kl_attr_int(n, "dtype", KL_F32);
    if (kl_dtype_size(elem) == 0)
        return kl_error(d, n, "dtype %d is not an element type kiln supports", (int)elem);
    return records(n, new_compound(g, false, 0, elem));
}

static bool sequence_construct_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    if (n->n_inputs < 1) return kl_error(d, n, "SequenceConstruct needs at least one tensor");
    kl_compound *c = new_compound(g, false, n->n_inputs, KL_UNDEFINED);
    for (int i = 0; i < n->n_inputs; i++) {
        kl_value *t = tensor_input(n, i, d);
        if (!t || !element_fits(n, t, c->elem, d)) return false;
        c->elem = t->dtype;
        c->items[i] = t;
    }
    return records(n, c);
}

static bool sequence_insert_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_compound *s = sequence_input(n, 0, d);
    kl_value *t = s ? tensor_input(n, 1, d) : NULL;
    if (!t || !element_fits(n, t, s->elem, d)) return false;
    kl_value **items = items_of(g, s, d);
    if (!items) return false;
    kl_compound *c = new_compound(g, false, s->n + 1, t->dtype);
    if (at_run_time(n, 2))
        return kl_sequence_insert_at_run_time(g, n, items, s->n, t, n->inputs[2], c->items, d) &&
               records(n, c);
    int64_t pos = s->n;
    if (kl_node_input(n, 2) && !position_input(n, 2, s->n, true, &pos, d)) return false;
    for (int64_t i = 0, k = 0; i < c->n; i++) c->items[i] = i == pos ? t : items[k++];
    return records(n, c);
}

static bool sequence_erase_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_compound *s = sequence_input(n, 0, d);
    if (!s) return false;
    if (s->n == 0) return kl_error(d, n, "the sequence is empty: nothing to erase");
    kl_value **items = items_of(g, s, d);
    if (!items) return false;
    kl_compound *c = new_compound(g, false, s->n - 1, s->elem);
    if (at_run_time(n, 1))
        return kl_sequence_erase_at_run_time(g, n, items, s->n, n->inputs[1], c->items, d) &&
               records(n, c);
    int64_t pos = s->n - 1;
    if (kl_node_input(n, 1) && !position_input(n, 1, s->n, false, &pos, d)) return false;
    for (int64_t i = 0, k = 0; i < s->n; i++)
        if (i != pos) c->items[k++] = items[i];
    return records(n, c);
}

static bool sequence_at_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_compound *s = sequence_input(n, 0, d);
    if (!s) return false;
    if (!kl_node_input(n, 1)) return kl_error(d, n, "input 1 (the position) is missing");
    if (at_run_time(n, 1)) {
        kl_value **items = items_of(g, s, d);
        return items && kl_sequence_at_run_time(g, n, items, s->n, n->inputs[1], d);
    }
    int64_t pos;
    if (!position_input(n, 1, s->n, false, &pos, d)) return false;
    kl_value **items = items_of(g, s, d);
    return items && becomes_identity(g, n, items[pos], d);
}

static bool sequence_length_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_compound *s = sequence_input(n, 0, d);
    return s && becomes_identity(g, n, kl_seq_const_scalar(g, n, KL_I64, s->n), d);
}

/* How many tensors: the count of split's sizes, or the pieces of the axis. */
static bool split_count(kl_node *n, const kl_value *x, int64_t *count, kl_diag *d) {
    int axis;
    if (!split_axis(n, x, &axis, d)) return false;
    int64_t dim = x->shape.dim[axis];
    kl_value *split = kl_node_input(n, 1);
    if (!split) {
        *count = dim;
        return true;
    }
    if (split->compound || !split->has_shape)
        return kl_error(d, n, "split '%s' must be a tensor", split->name);
    if (split->dtype != KL_I64 && split->dtype != KL_I32)
        return kl_error(d, n, "split '%s' must be int32 or int64, not %s", split->name,
                        kl_dtype_name(split->dtype));
    if (split->shape.rank == 1) {
        *count = split->shape.dim[0];
        return true;
    }
    if (split->shape.rank != 0)
        return kl_error(d, n, "split '%s' must be a scalar or 1-D, not %s", split->name,
                        KL_SHAPE_TEXT(&split->shape));
    if (!split->data) {
        char hint[512];
        kl_value_binding_hint(d, split, hint, sizeof hint);
        return kl_error(d, n, "split '%s' is computed at run time; the sequence's length "
                        "depends on it, so it must be a constant%s", split->name, hint);
    }
    int64_t s = kl_value_const_int(split, 0);
    if (s <= 0) return kl_error(d, n, "split = %lld must be positive", (long long)s);
    *count = dim / s + (dim % s != 0);
    return true;
}

static bool split_to_sequence_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_value *x = tensor_input(n, 0, d);
    int64_t count = 0;
    if (!x || !split_count(n, x, &count, d)) return false;
    kl_compound *c = new_compound(g, false, count > MAX_PIECES ? 0 : count, x->dtype);
    c->n = count;
    c->split = n; /* built when a piece is read: SequenceLength alone needs none */
    return records(n, c);
}

static bool concat_from_sequence_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_compound *s = sequence_input(n, 0, d);
    if (!s) return false;
    const kl_attr *axis_attr = kl_attr_find(n, "axis");
    if (!axis_attr) return kl_error(d, n, "attribute 'axis' is required");
    if (s->n == 0) return kl_error(d, n, "the sequence is empty: nothing to concatenate");
    kl_value **items = items_of(g, s, d);
    if (!items) return false;
    int count = (int)s->n;
    int64_t axis = axis_attr->i;
    kl_value **parts = items;
    if (kl_attr_int(n, "new_axis", 0) != 0) {
        /* each tensor gets the new axis (of size 1), then they join along it */
        int rank = items[0]->shape.rank, a;
        if (!kl_axis_normalize(axis, rank + 1, &a))
            return kl_error(d, n, "axis %lld is out of range for new_axis=1 on tensors of rank "
                            "%d", (long long)axis, rank);
        axis = a;
        parts = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *parts);
        for (int i = 0; i < count; i++) {
            int64_t ax = a;
            kl_value *in[2] = {items[i], kl_seq_const_i64_list(g, n, &ax, 1)};
            parts[i] = kl_seq_fresh_value(g, n->outputs[0]->name);
            if (!kl_seq_add_node(g, n, "Unsqueeze", 2, in, 1, &parts[i], d)) return false;
        }
    }
    kl_value *out = n->outputs[0];
    kl_node_kill(n);
    kl_node *c = kl_seq_add_node(g, n, "Concat", count, parts, 1, &out, d);
    if (!c) return false;
    kl_node_set_attr_int(g, c, "axis", axis);
    return true;
}

static bool optional_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_value *x = kl_node_input(n, 0);
    if (!x) return records(n, new_compound(g, true, 0, KL_UNDEFINED));
    if (x->compound && x->compound->optional)
        return kl_error(d, n, "input '%s' is an optional; an optional holds a tensor or a "
                        "sequence", x->name);
    if (!x->compound && !x->has_shape)
        return kl_error(d, n, "input '%s' has no known shape", x->name);
    kl_compound *c = new_compound(g, true, 1, x->compound ? x->compound->elem : x->dtype);
    c->items[0] = x;
    return records(n, c);
}

static bool optional_has_element_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_value *x = kl_node_input(n, 0);
    /* no input: empty; a tensor or a sequence: present */
    bool has = x && (!x->compound || !x->compound->optional || x->compound->n == 1);
    return becomes_identity(g, n, kl_seq_const_scalar(g, n, KL_BOOL, has), d);
}

static bool optional_get_element_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    if (!need_output(n, d)) return false;
    kl_value *x = kl_node_input(n, 0);
    if (!x) return kl_error(d, n, "input 0 is missing");
    if (x->compound && x->compound->optional) {
        if (x->compound->n == 0)
            return kl_error(d, n, "optional '%s' is empty (known when compiling): it has no "
                            "element to get", x->name);
        x = x->compound->items[0];
    }
    if (x->compound) return records(n, x->compound); /* a sequence: the same one */
    if (!x->has_shape) return kl_error(d, n, "input '%s' has no known shape", x->name);
    return becomes_identity(g, n, x, d);
}

/* ---- If over sequences and optionals ---------------------------------------------------- */

/* The new If being built: its outputs and each side's values. */
typedef struct if_parts {
    kl_value **out, **then_v, **else_v;
    int n;
} if_parts;

static void if_parts_add(if_parts *p, kl_value *out, kl_value *t, kl_value *e) {
    p->out[p->n] = out;
    p->then_v[p->n] = t;
    p->else_v[p->n] = e;
    p->n++;
}

/* One branch value's tensors, flattened (an optional's sequence gives its tensors); count -1
 * when the optional is empty. */
static kl_value **flat_items(kl_graph *g, kl_value *v, int64_t *count, kl_diag *d) {
    kl_compound *c = v->compound;
    if (c->optional) {
        if (c->n == 0) {
            *count = -1;
            return c->items;
        }
        if (!c->items[0]->compound) {
            *count = 1;
            return c->items;
        }
        c = c->items[0]->compound;
    }
    *count = c->n;
    return items_of(g, c, d);
}

/* An optional that holds a sequence, where the other branch gives a bare sequence: the
 * sequence (a Loop that carries an optional into a body returning what it holds). */
static kl_value *unwrap_present(kl_value *v, const kl_value *other) {
    const kl_compound *c = v->compound, *o = other->compound;
    if (c && o && c->optional && !o->optional && c->n == 1 && c->items[0]->compound)
        return c->items[0];
    return v;
}

/* The structure of output `out` given, when the condition is decided at run time, by
 * then-value t and else-value e: new If outputs for each tensor, and out->compound over them. */
static bool join_branches(kl_graph *g, kl_node *n, int i, kl_value *t, kl_value *e,
                          if_parts *p, kl_diag *d) {
    kl_value *out = n->outputs[i];
    t = unwrap_present(t, e);
    e = unwrap_present(e, t);
    if (!t->compound || !e->compound || t->compound->optional != e->compound->optional)
        return kl_error(d, n, "output %d ('%s') is not %s in both branches", i,
                        out ? out->name : "", kind_name(t->compound ? t->compound : e->compound));
    int64_t nt = 0, ne = 0;
    kl_value **ti = flat_items(g, t, &nt, d), **ei = ti ? flat_items(g, e, &ne, d) : NULL;
    if (!ti || !ei) return false;
    bool opt = t->compound->optional;
    char hint[512];
    if (opt && (nt < 0) != (ne < 0)) {
        kl_value_binding_hint(d, n->inputs[0], hint, sizeof hint);
        return kl_error(d, n, "output %d ('%s') is an optional that is empty in %s but not in "
                        "%s: whether it holds a value would be known only at run time (the "
                        "condition '%s'%s)", i, out ? out->name : "",
                        nt < 0 ? "then_branch" : "else_branch",
                        nt < 0 ? "else_branch" : "then_branch", n->inputs[0]->name, hint);
    }
    bool seq_in_opt = opt && nt >= 0 && t->compound->items[0]->compound;
    if (seq_in_opt != (opt && ne >= 0 && e->compound->items[0]->compound))
        return kl_error(d, n, "output %d ('%s') holds a tensor in one branch and a sequence "
                        "in the other", i, out ? out->name : "");
    if (nt != ne) {
        kl_value_binding_hint(d, n->inputs[0], hint, sizeof hint);
        return kl_error(d, n, "output %d ('%s') is a sequence of %lld tensors in then_branch "
                        "but %lld in else_branch: its length would be known only at run time "
                        "(the condition '%s'%s)", i, out ? out->name : "", (long long)nt,
                        (long long)ne, n->inputs[0]->name, hint);
    }
    int64_t count = nt < 0 ? 0 : nt;
    kl_value **joined = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *joined);
    for (int64_t k = 0; k < count; k++) {
        joined[k] = kl_seq_fresh_value(g, out ? out->name : n->name);
        if (!element_fits(n, ei[k], ti[k]->dtype, d)) return false;
        if (out) if_parts_add(p, joined[k], ti[k], ei[k]);
    }
    if (!out) return true;
    kl_compound *seq = new_compound(g, false, count, ti && count ? ti[0]->dtype : KL_UNDEFINED);
    memcpy(seq->items, joined, (size_t)count * sizeof *joined);
    if (!opt) {
        out->compound = seq;
    } else if (nt < 0) {
        out->compound = new_compound(g, true, 0, KL_UNDEFINED);
    } else {
        out->compound = new_compound(g, true, 1, seq->elem);
        if (seq_in_opt) {
            kl_value *inner = kl_seq_fresh_value(g, out->name);
            inner->compound = seq;
            out->compound->items[0] = inner;
        } else {
            out->compound->items[0] = joined[0];
        }
    }
    return true;
}

/* An Identity of a sequence or optional (the loader's unrolled Loops and Scans pass their
 * carried values through one): the same structure. */
static bool settle_identity(kl_node *n) {
    kl_value *x = kl_node_input(n, 0);
    if (!x || !x->compound || n->n_outputs < 1 || !n->outputs[0]) return true;
    return records(n, x->compound);
}

static bool settle_if(kl_graph *g, kl_node *n, kl_diag *d) {
    int k = n->n_outputs;
    if (n->n_inputs != 1 + 2 * k || !n->inputs[0]) return true; /* if_infer says what is wrong */
    bool any = false;
    for (int i = 1; i < n->n_inputs; i++)
        if (n->inputs[i] && n->inputs[i]->compound) any = true;
    if (!any) return true;
    const kl_value *c = n->inputs[0];
    int taken = c->data && c->has_shape && kl_shape_numel(&c->shape) == 1
                    ? kl_value_const_int(c, 0) != 0
                    : -1;
    /* at most every output's tensors: the size of the flattened structure */
    int64_t room = 0;
    for (int i = 1; i < n->n_inputs; i++) {
        kl_compound *cc = n->inputs[i] ? n->inputs[i]->compound : NULL;
        if (cc && cc->optional && cc->n == 1 && cc->items[0]->compound)
            cc = cc->items[0]->compound;
        room += cc ? cc->n + 1 : 1;
    }
    if_parts p = {kl_alloc_array(g->arena, (size_t)room + 1, sizeof(kl_value *)),
                  kl_alloc_array(g->arena, (size_t)room + 1, sizeof(kl_value *)),
                  kl_alloc_array(g->arena, (size_t)room + 1, sizeof(kl_value *)), 0};
    for (int i = 0; i < k; i++) {
        kl_value *t = n->inputs[1 + i], *e = n->inputs[1 + k + i], *out = n->outputs[i];
        kl_value *chosen = taken < 0 ? NULL : taken ? t : e;
        if (taken >= 0 && chosen && chosen->compound) {
            if (out) out->compound = chosen->compound; /* decided: the taken side's */
        } else if (taken < 0 && ((t && t->compound) || (e && e->compound))) {
            if (!t || !e) return kl_error(d, n, "output %d is missing in a branch", i);
            if (!join_branches(g, n, i, t, e, &p, d)) return false;
        } else {
            if_parts_add(&p, out, t, e);
        }
    }
    kl_node_kill(n);
    if (p.n == 0) return true;
    kl_value **in = kl_alloc_array(g->arena, 2 * (size_t)p.n + 2, sizeof *in);
    in[0] = n->inputs[0];
    memcpy(in + 1, p.then_v, (size_t)p.n * sizeof *in);
    memcpy(in + 1 + p.n, p.else_v, (size_t)p.n * sizeof *in);
    kl_node *m = kl_node_add(g, "", "If", n->opset, n->name, 1 + 2 * p.n, in, p.n, p.out);
    if (!m) return kl_error(d, n, "internal error: no If in the op table");
    m->guard = n->guard;
    m->n_attrs = n->n_attrs;
    m->attrs = n->attrs;
    return true;
}

bool kl_sequence_settle_carrier(kl_graph *g, kl_node *n, kl_diag *d) {
    if (*n->domain) return true;
    if (!strcmp(n->op_type, "Identity")) return settle_identity(n);
    if (!strcmp(n->op_type, "If")) return settle_if(g, n, d);
    return true;
}

/* Never called: shape inference settles these operators instead. */
static bool settled_instead(kl_node *n, kl_diag *d) {
    return kl_error(d, n, "internal error: %s is compiled away, not inferred", n->op_type);
}

const kl_op kl_ops_sequence[] = {
    {"", "SequenceEmpty", 11, KL_OPSET_LATEST, sequence_empty_attrs, settled_instead, NULL,
     .settle = sequence_empty_settle},
    {"", "SequenceConstruct", 11, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = sequence_construct_settle},
    {"", "SequenceInsert", 11, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = sequence_insert_settle},
    {"", "SequenceErase", 11, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = sequence_erase_settle},
    {"", "SequenceAt", 11, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = sequence_at_settle},
    {"", "SequenceLength", 11, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = sequence_length_settle},
    {"", "SplitToSequence", 11, KL_OPSET_LATEST, split_to_sequence_attrs, settled_instead, NULL,
     .settle = split_to_sequence_settle},
    {"", "ConcatFromSequence", 11, KL_OPSET_LATEST, concat_from_sequence_attrs, settled_instead,
     NULL, .settle = concat_from_sequence_settle},
    {"", "Optional", 15, KL_OPSET_LATEST, optional_attrs, settled_instead, NULL,
     .settle = optional_settle},
    {"", "OptionalHasElement", 15, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = optional_has_element_settle},
    {"", "OptionalGetElement", 15, KL_OPSET_LATEST, no_attrs, settled_instead, NULL,
     .settle = optional_get_element_settle},
    {NULL, NULL, 0, 0, NULL, NULL, NULL},
};

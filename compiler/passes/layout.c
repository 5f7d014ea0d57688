/*
 * layout.c — pass `layout`: convolutions and pools in channels-last layout, with the transposes
 * that layout needs pushed down the graph until they cancel, so that only the graph's edges
 * convert.
 *
 * Why: the kernel passes vectorize a reduction kernel along the parallel loop that indexes the
 * output's innermost (contiguous) dim and block another one in registers. For a convolution that
 * loop must be the output channel, i.e. activations must be [N, H, W, C] (oneDNN and ONNX
 * Runtime's NCHWc keep activations blocked between layers for the same reason).
 *
 * 1. Convert. Every float Conv with constant weights becomes
 *        Transpose(X, to channels-last) -> kiln.ConvNHWC -> Transpose(back)
 *    and ConvTranspose likewise kiln.ConvTransposeNHWC (a decoder's upsampling stays
 *    channels-last between the convolutions around it), MaxPool (without Indices) /
 *    AveragePool kiln.MaxPoolNHWC / AveragePoolNHWC (ops/conv.c, ops/conv_variants.c,
 *    ops/pool.c). Global{Average,Max}Pool become ReduceMean / ReduceMax over the
 *    spatial axes with keepdims=1: a reduction is layout-agnostic through its axes, so it lets
 *    the transposes through where a global pool would stop them. A graph without convolutions or
 *    pools is left exactly as it was.
 *
 * 2. Sink. A Transpose t = T(x, p) read by a node that computes element by element, or along
 *    axes it names, is moved below it: op(T(x, p), ...) = T(op'(x, ...), p), where op' reads the
 *    other operands in x's order (a constant is transposed at compile time after numpy's
 *    unsqueeze to full rank; a one-element operand needs nothing; any other operand must itself
 *    be T(., p)) and names axes through p. Two transposes in a row compose; when the composition
 *    is the identity both go, which is how the Transpose(back) of one convolution meets the
 *    Transpose(to channels-last) of the next and both disappear.
 *
 *    Sinking is exact but not always profitable (a transpose read by two nodes, sunk through
 *    one of them, becomes two), and whether it pays often shows only a few nodes further down,
 *    where inverse transposes meet. So the pass tries each transpose as a seed: it sinks it and
 *    everything the move enables, then counts the transposes that still move data (one that only
 *    moves size-1 dims is a view, free at run time: ops/lower.c aliases it) and the elements
 *    they move. If that cost went up, the graph snapshot taken before the try is put back
 *    (ir/edit.c), so the pass never adds a transpose in total. Rounds repeat until no seed
 *    changes anything.
 *
 *    Graph outputs keep their layout and name: a rewritten node gets new output values and the
 *    original values are produced by the transposes placed after it.
 *
 *    Reshape, Flatten, Squeeze and Unsqueeze let a transpose through when the blocks of dims
 *    they split or merge stay whole in x (see "reshapes" below); a channel shuffle (Reshape ->
 *    Transpose -> Reshape) keeps one transpose, the shuffle itself done channels-last.
 *
 *    A node whose other operands are not yet transposed (the Concat of a feature pyramid, the
 *    Mul of a squeeze-and-excitation block) pulls the transposes feeding those operands into the
 *    same try, since only all of them together pay.
 *
 * Operators that read layout in ways not listed here (MatMul, Gemm, LSTM, ...)
 * stop the sinking: the transpose in front of them is where the graph converts back.
 */
#include <string.h>

#include "kl.h"

enum {
    MAX_ROUNDS = 16,          /* rounds of seeds; each accepted round only moves transposes down */
    MAX_STEPS = 1 << 20,      /* per seed: a guard, never reached on real graphs */
};

/* perm[i] = the input axis that becomes output axis i (ONNX Transpose's attribute). */
typedef struct perm {
    int rank;
    int p[KL_MAX_RANK];
} perm;

typedef struct layout_pass {
    kl_graph *g;
    kl_diag *d;
    kl_ptrvec scratch;        /* consumers lists */
    kl_graph_snapshot snap;
    int opset;                /* of the Transpose nodes the pass adds */
    int counter;              /* unique names */
    kl_ptrvec queue;          /* transposes to look at during one seed's try */
    bool pulling;             /* this try also pulls in the transposes feeding a blocked node */
    kl_ptrvec visited;        /* nodes the pulls of this try went through */
} layout_pass;

/* ---- permutations ---------------------------------------------------------------------------- */

static bool perm_is_identity(const perm *p) {
    for (int i = 0; i < p->rank; i++)
        if (p->p[i] != i) return false;
    return true;
}

static bool perm_equal(const perm *a, const perm *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->p[i] != b->p[i]) return false;
    return true;
}

/* T(T(x, first), then) = T(x, r) with r[i] = first[then[i]]. */
static perm perm_compose(const perm *first, const perm *then) {
    perm r = {.rank = then->rank};
    for (int i = 0; i < then->rank; i++) r.p[i] = first->p[then->p[i]];
    return r;
}

static perm perm_inverse(const perm *p) {
    perm r = {.rank = p->rank};
    for (int i = 0; i < p->rank; i++) r.p[p->p[i]] = i;
    return r;
}

static kl_shape perm_shape(const perm *p, const kl_shape *in) {
    kl_shape s = {.rank = p->rank};
    for (int i = 0; i < p->rank; i++) s.dim[i] = in->dim[p->p[i]];
    return s;
}

/* [0, 2, .., r-1, 1]: ONNX's [N, C, D..] to channels-last [N, D.., C]. */
static perm to_channels_last(int rank) {
    perm r = {.rank = rank};
    r.p[0] = 0;
    for (int i = 1; i < rank - 1; i++) r.p[i] = i + 1;
    r.p[rank - 1] = 1;
    return r;
}

/* A transpose of `in` that keeps every dim of size > 1 in order moves no data: a reshape. */
static bool perm_is_view(const perm *p, const kl_shape *in) {
    int last = -1;
    for (int i = 0; i < p->rank; i++) {
        if (in->dim[p->p[i]] == 1) continue;
        if (p->p[i] < last) return false;
        last = p->p[i];
    }
    return true;
}

/* ---- transposes in the graph --------------------------------------------------------------- */

static bool is_op(const kl_node *n, const char *op) { return !*n->domain && !strcmp(n->op_type, op); }

/* The operators that keep the bytes and only change the shape. */
static bool is_reshape(const kl_node *n) {
    return is_op(n, "Reshape") || is_op(n, "Flatten") || is_op(n, "Squeeze") ||
           is_op(n, "Unsqueeze");
}

/* The perm of a Transpose node (reversed axes when the attribute is absent). */
static bool transpose_perm(const kl_node *n, perm *p) {
    const kl_value *x = kl_node_input(n, 0);
    if (!x || !x->has_shape) return false;
    p->rank = x->shape.rank;
    const int64_t *given;
    int count = kl_attr_ints(n, "perm", &given);
    if (count < 0) {
        for (int i = 0; i < p->rank; i++) p->p[i] = p->rank - 1 - i;
        return true;
    }
    if (count != p->rank) return false;
    bool seen[KL_MAX_RANK] = {0};
    for (int i = 0; i < count; i++) {
        if (given[i] < 0 || given[i] >= count || seen[given[i]]) return false;
        seen[given[i]] = true;
        p->p[i] = (int)given[i];
    }
    return true;
}

/* A live Transpose computed at run time, with its perm. */
static bool live_transpose(const kl_node *n, perm *p) {
    return n && kl_node_live(n) && is_op(n, "Transpose") && n->n_outputs >= 1 && n->outputs[0] &&
           transpose_perm(n, p);
}

/* The Transpose producing v (and its perm), or NULL. */
static kl_node *transposed_by(kl_value *v, perm *p) {
    kl_node *t = v ? v->producer : NULL;
    return t && t->outputs[0] == v && live_transpose(t, p) ? t : NULL;
}

static bool is_graph_output(const kl_value *v) { return v->output_index >= 0; }

/* A Transpose of x by p into `out` (a new value when NULL). */
static kl_node *add_transpose(layout_pass *lp, kl_value *x, const perm *p, kl_value *out,
                              const char *base) {
    kl_shape s = perm_shape(p, &x->shape);
    if (!out) out = kl_value_make(lp->g, x->name, x->dtype, &s, NULL);
    kl_node *t = kl_node_add(lp->g, "", "Transpose", lp->opset,
                             kl_sprintf(lp->g->arena, "%s_t%d", base, lp->counter++), 1, &x, 1,
                             &out);
    if (!t) return NULL;
    int64_t ints[KL_MAX_RANK];
    for (int i = 0; i < p->rank; i++) ints[i] = p->p[i];
    kl_node_set_attr_ints(lp->g, t, "perm", p->rank, ints);
    return t;
}

/* Shape inference of a node the pass made, into a private diagnostic: a failure means the
 * rewrite does not apply (the caller backs out), never an error of the model. */
static bool infer_quietly(layout_pass *lp, kl_node *n) {
    kl_diag quiet;
    kl_diag_init(&quiet, lp->g->file);
    bool ok = n->op->infer(n, &quiet) && !kl_diag_failed(&quiet);
    kl_diag_free(&quiet);
    return ok;
}

/* Kill t if nothing reads its output any more. */
static void drop_if_unused(layout_pass *lp, kl_node *t) {
    if (!t || t->dead || is_graph_output(t->outputs[0])) return;
    kl_value_consumers(lp->g, t->outputs[0], &lp->scratch);
    if (lp->scratch.n == 0) kl_node_kill(t);
}

/* ---- constants through a permutation ---------------------------------------------------------- */

/* The constant c' with T(c', p) = c after unsqueezing c to rank p->rank (numpy broadcasting:
 * leading 1s). */
static kl_value *permute_constant(layout_pass *lp, const kl_value *c, const perm *p) {
    int rank = p->rank, lead = rank - c->shape.rank;
    kl_shape full = {.rank = rank};
    for (int i = 0; i < rank; i++) full.dim[i] = i < lead ? 1 : c->shape.dim[i - lead];
    perm inv = perm_inverse(p);
    kl_shape out = perm_shape(&inv, &full);
    size_t es = kl_dtype_size(c->dtype);
    int64_t count = kl_shape_numel(&full);
    unsigned char *data = kl_alloc_array(lp->g->arena, (size_t)count + 1, es);
    int64_t out_stride[KL_MAX_RANK];
    kl_shape_strides(&out, out_stride);
    int64_t idx[KL_MAX_RANK] = {0};
    for (int64_t e = 0; e < count; e++) {
        /* c[idx] lands at c'[j] with j[p[i]] = idx[i] */
        int64_t at = 0;
        for (int i = 0; i < rank; i++) at += idx[i] * out_stride[p->p[i]];
        memcpy(data + at * (int64_t)es, (const unsigned char *)c->data + e * (int64_t)es, es);
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < full.dim[i]) break;
            idx[i] = 0;
        }
    }
    return kl_value_make(lp->g, c->name, c->dtype, &out, data);
}

/* An int64 constant list. */
static kl_value *int_list(layout_pass *lp, const char *base, int n, const int64_t *v) {
    int64_t *data = kl_alloc_array(lp->g->arena, (size_t)n + 1, sizeof *data);
    if (n) memcpy(data, v, (size_t)n * sizeof *data);
    kl_shape s = {.rank = 1, .dim = {n}};
    return kl_value_make(lp->g, base, KL_I64, &s, data);
}

/* A 1-D constant of any type with its elements rearranged: out[to[i]] = in[i] (i < count). For
 * per-axis lists such as Resize's scales. */
static kl_value *scatter_list(layout_pass *lp, const kl_value *in, int count, const int *to) {
    size_t es = kl_dtype_size(in->dtype);
    unsigned char *data = kl_alloc_array(lp->g->arena, (size_t)count + 1, es);
    for (int i = 0; i < count; i++)
        memcpy(data + (size_t)to[i] * es, (const unsigned char *)in->data + (size_t)i * es, es);
    return kl_value_make(lp->g, in->name, in->dtype, &in->shape, data);
}

/* ---- 1. convert -------------------------------------------------------------------------------- */

static bool float_type(kl_dtype t) {
    return t == KL_F32 || t == KL_F64 || t == KL_F16 || t == KL_BF16;
}

static bool window_rank(const kl_value *x) {
    return x && x->has_shape && x->shape.rank >= 3 && x->shape.rank <= 5;
}

/* The channels-last op for n, or NULL when n stays as it is. */
static const char *channels_last_op(const kl_node *n) {
    const kl_value *x = kl_node_input(n, 0);
    if (!kl_node_live(n) || *n->domain || !window_rank(x) || n->n_outputs < 1 || !n->outputs[0])
        return NULL;
    if (is_op(n, "Conv") || is_op(n, "ConvTranspose")) {
        const kl_value *w = kl_node_input(n, 1);
        if (!float_type(x->dtype) || !w || !w->data || w->shape.rank != x->shape.rank)
            return NULL;
        return is_op(n, "Conv") ? "ConvNHWC" : "ConvTransposeNHWC";
    }
    bool no_indices = n->n_outputs < 2 || !n->outputs[1];
    if (is_op(n, "MaxPool") && no_indices) return "MaxPoolNHWC";
    if (is_op(n, "AveragePool") && no_indices && float_type(x->dtype)) return "AveragePoolNHWC";
    return NULL;
}

/* X -> Transpose -> kiln.OpNHWC -> Transpose -> Y; one transpose per converted input value. */
static bool convert_window_op(layout_pass *lp, kl_node *n, const char *op, kl_value **cl_of) {
    kl_graph *g = lp->g;
    kl_value *x = n->inputs[0], *y = n->outputs[0];
    perm to_cl = to_channels_last(x->shape.rank), back = perm_inverse(&to_cl);
    if (!cl_of[x->id]) {
        kl_node *t = add_transpose(lp, x, &to_cl, NULL, n->name);
        if (!t) return kl_error(lp->d, n, "internal error: no Transpose in the op table");
        cl_of[x->id] = t->outputs[0];
    }
    kl_value **in = kl_alloc_array(g->arena, (size_t)n->n_inputs + 1, sizeof *in);
    memcpy(in, n->inputs, (size_t)n->n_inputs * sizeof *in);
    in[0] = cl_of[x->id];
    kl_shape ys = perm_shape(&to_cl, &y->shape);
    kl_value *y_cl = kl_value_make(g, y->name, y->dtype, &ys, NULL);
    kl_node *c = kl_node_add(g, "kiln", op, 1, n->name, n->n_inputs, in, 1, &y_cl);
    if (!c) return kl_error(lp->d, n, "internal error: no kiln.%s in the op table", op);
    c->guard = n->guard; /* an If's branch: still skipped with it */
    c->attrs = n->attrs; /* same attributes; never written in place (ir/edit.c) */
    c->n_attrs = n->n_attrs;
    if (!c->op->infer(c, lp->d)) return false;
    kl_shape back_shape = perm_shape(&back, &y_cl->shape);
    if (!kl_shape_equal(&back_shape, &y->shape) || y_cl->dtype != y->dtype)
        return kl_error(lp->d, n, "internal error: kiln.%s does not give %s's shape", op,
                        n->op_type);
    kl_node_kill(n);
    if (!add_transpose(lp, y_cl, &back, y, n->name))
        return kl_error(lp->d, n, "internal error: no Transpose in the op table");
    return true;
}

/* GlobalAveragePool / GlobalMaxPool -> ReduceMean / ReduceMax over the spatial axes, keepdims. */
static bool convert_global_pool(layout_pass *lp, kl_node *n) {
    kl_graph *g = lp->g;
    kl_value *x = n->inputs[0], *y = n->outputs[0];
    const char *op = is_op(n, "GlobalAveragePool") ? "ReduceMean" : "ReduceMax";
    int64_t axes[KL_MAX_RANK];
    int count = x->shape.rank - 2;
    for (int i = 0; i < count; i++) axes[i] = i + 2;
    /* axes became an input of ReduceMean and ReduceMax in opset 18 */
    bool axes_input = n->opset >= 18;
    kl_value *in[2] = {x, axes_input ? int_list(lp, "axes", count, axes) : NULL};
    kl_node *r = kl_node_add(g, "", op, n->opset, n->name, axes_input ? 2 : 1, in, 1, &y);
    if (!r) return kl_error(lp->d, n, "internal error: no %s in the op table", op);
    r->guard = n->guard;
    if (!axes_input) kl_node_set_attr_ints(g, r, "axes", count, axes);
    kl_node_set_attr_int(g, r, "keepdims", 1);
    kl_node_kill(n);
    return true;
}

static bool convert(layout_pass *lp, bool *any) {
    kl_graph *g = lp->g;
    kl_value **cl_of = kl_alloc_array(g->arena, (size_t)g->values.n + 1, sizeof *cl_of);
    int count = g->nodes.n;
    *any = false;
    for (int i = 0; i < count; i++) {
        kl_node *n = g->nodes.items[i];
        const char *op = channels_last_op(n);
        if (!op) continue;
        if (!convert_window_op(lp, n, op, cl_of)) return false;
        *any = true;
    }
    if (!*any) return true;
    for (int i = 0; i < count; i++) {
        kl_node *n = g->nodes.items[i];
        if (!kl_node_live(n) || !(is_op(n, "GlobalAveragePool") || is_op(n, "GlobalMaxPool")))
            continue;
        const kl_value *x = n->inputs[0];
        if (!window_rank(x) || !float_type(x->dtype)) continue;
        if (!convert_global_pool(lp, n)) return false;
    }
    return kl_graph_sort(g, lp->d);
}

/* ---- 2. sink: what each operator needs ---------------------------------------------------------- */

typedef enum sink_kind {
    SINK_NONE,
    SINK_UNARY,    /* input 0 carries the layout; the others (Clip's bounds, Dropout's ratio,
                      CastLike's target) do not */
    SINK_NARY,     /* every input broadcasts against the others (numpy) */
    SINK_REDUCE,   /* axes (attribute or input 1), keepdims */
    SINK_CONCAT,   /* axis */
    SINK_SPLIT,    /* axis */
    SINK_SLICE,    /* axes (attribute before opset 10, input 3 after) */
    SINK_RESIZE,   /* roi, scales, sizes per axis (or the axes attribute) */
    SINK_PAD,      /* pads per axis (or the axes input) */
    SINK_SOFTMAX,  /* axis, opset 13 on (before, the input was flattened at the axis) */
} sink_kind;

static const struct {
    const char *op;
    sink_kind kind;
} sink_rules[] = {
    {"Relu", SINK_UNARY}, {"LeakyRelu", SINK_UNARY}, {"Sigmoid", SINK_UNARY},
    {"Tanh", SINK_UNARY}, {"HardSigmoid", SINK_UNARY}, {"HardSwish", SINK_UNARY},
    {"Elu", SINK_UNARY}, {"Selu", SINK_UNARY}, {"Celu", SINK_UNARY}, {"Gelu", SINK_UNARY},
    {"Mish", SINK_UNARY}, {"Softplus", SINK_UNARY}, {"Softsign", SINK_UNARY},
    {"ThresholdedRelu", SINK_UNARY}, {"Shrink", SINK_UNARY}, {"Swish", SINK_UNARY},
    {"Clip", SINK_UNARY}, {"Neg", SINK_UNARY}, {"Abs", SINK_UNARY}, {"Sqrt", SINK_UNARY},
    {"Exp", SINK_UNARY}, {"Log", SINK_UNARY}, {"Erf", SINK_UNARY}, {"Reciprocal", SINK_UNARY},
    {"Floor", SINK_UNARY}, {"Ceil", SINK_UNARY}, {"Round", SINK_UNARY}, {"Sin", SINK_UNARY},
    {"Cos", SINK_UNARY}, {"Tan", SINK_UNARY}, {"Not", SINK_UNARY}, {"Sign", SINK_UNARY},
    {"BitwiseNot", SINK_UNARY}, {"Sinh", SINK_UNARY}, {"Cosh", SINK_UNARY},
    {"Asinh", SINK_UNARY}, {"Acosh", SINK_UNARY}, {"Atanh", SINK_UNARY}, {"IsNaN", SINK_UNARY},
    {"IsInf", SINK_UNARY}, {"Cast", SINK_UNARY}, {"CastLike", SINK_UNARY},
    {"Identity", SINK_UNARY}, {"Dropout", SINK_UNARY},
    {"Add", SINK_NARY}, {"Sub", SINK_NARY}, {"Mul", SINK_NARY}, {"Div", SINK_NARY},
    {"Pow", SINK_NARY}, {"Mod", SINK_NARY}, {"Equal", SINK_NARY}, {"Less", SINK_NARY},
    {"Greater", SINK_NARY}, {"LessOrEqual", SINK_NARY}, {"GreaterOrEqual", SINK_NARY},
    {"And", SINK_NARY}, {"Or", SINK_NARY}, {"Xor", SINK_NARY}, {"BitwiseAnd", SINK_NARY},
    {"BitwiseOr", SINK_NARY}, {"BitwiseXor", SINK_NARY}, {"BitShift", SINK_NARY},
    {"Sum", SINK_NARY}, {"Mean", SINK_NARY}, {"Max", SINK_NARY}, {"Min", SINK_NARY},
    {"Where", SINK_NARY}, {"PRelu", SINK_NARY},
    {"ReduceSum", SINK_REDUCE}, {"ReduceMean", SINK_REDUCE}, {"ReduceMax", SINK_REDUCE},
    {"ReduceMin", SINK_REDUCE}, {"ReduceProd", SINK_REDUCE}, {"ReduceL1", SINK_REDUCE},
    {"ReduceL2", SINK_REDUCE}, {"ReduceLogSum", SINK_REDUCE}, {"ReduceLogSumExp", SINK_REDUCE},
    {"ReduceSumSquare", SINK_REDUCE},
    {"Concat", SINK_CONCAT}, {"Split", SINK_SPLIT}, {"Slice", SINK_SLICE},
    {"Resize", SINK_RESIZE}, {"Pad", SINK_PAD},
    {"Softmax", SINK_SOFTMAX}, {"LogSoftmax", SINK_SOFTMAX}, {"Hardmax", SINK_SOFTMAX},
};

static sink_kind kind_of(const kl_node *n) {
    if (*n->domain) return SINK_NONE;
    for (size_t i = 0; i < sizeof sink_rules / sizeof sink_rules[0]; i++)
        if (!strcmp(sink_rules[i].op, n->op_type)) return sink_rules[i].kind;
    return SINK_NONE;
}

/* The node being rewritten: the original, and what replaces it. */
typedef struct rewrite {
    kl_node *c;
    perm p;                           /* of the transposes it reads */
    int n_in;
    kl_value **in;                    /* the new node's inputs */
    kl_node **absorbed;               /* transposes read through (may die afterwards) */
    int n_absorbed;
    perm out_perm[KL_MAX_RANK];       /* per output: the transpose that restores it (identity:
                                         op' gives that output as it is) */
    kl_node *made;                    /* the new node, attributes still to remap */
    kl_value *blocker;                /* the operand that is neither T(., p) nor a constant */
} rewrite;

/* A normalized axis of the rewritten node, mapped to x's order. */
static bool map_axis(const rewrite *r, int64_t axis, int64_t *out) {
    int a;
    if (!kl_axis_normalize(axis, r->p.rank, &a)) return false;
    *out = r->p.p[a];
    return true;
}

/* Operand i read in x's order: through its transpose, a transposed constant, or unchanged when
 * it holds one element. `exact_rank`: it must have the full rank (Concat). */
static bool take_operand(layout_pass *lp, rewrite *r, int i, bool exact_rank) {
    kl_value *v = r->c->inputs[i];
    perm q;
    if (!v) return true;
    if (!v->has_shape || v->shape.rank > r->p.rank || (exact_rank && v->shape.rank != r->p.rank))
        return false;
    kl_node *t = transposed_by(v, &q);
    if (t && perm_equal(&q, &r->p)) {
        r->in[i] = t->inputs[0];
        r->absorbed[r->n_absorbed++] = t;
        return true;
    }
    if (kl_shape_numel(&v->shape) == 1) return true; /* the same in every order */
    if (v->data) {
        r->in[i] = permute_constant(lp, v, &r->p);
        return true;
    }
    r->blocker = v;
    return false;
}

/* keepdims=0: the reduced axes are gone; the surviving axes of op'(x) appear in x's order, the
 * original ones in t's. out_perm maps one to the other. */
static perm reduce_out_perm(const perm *p, const bool *reduced_t) {
    int pos_in_x[KL_MAX_RANK], n = 0;
    bool reduced_x[KL_MAX_RANK] = {0};
    for (int i = 0; i < p->rank; i++)
        if (reduced_t[i]) reduced_x[p->p[i]] = true;
    for (int a = 0; a < p->rank; a++) pos_in_x[a] = reduced_x[a] ? -1 : n++;
    perm q = {.rank = n};
    int j = 0;
    for (int i = 0; i < p->rank; i++)
        if (!reduced_t[i]) q.p[j++] = pos_in_x[p->p[i]];
    return q;
}

/* Remap the axes of a Reduce*. */
static bool rewrite_reduce(layout_pass *lp, rewrite *r) {
    kl_node *c = r->c, *m = r->made;
    int rank = r->p.rank;
    bool reduced[KL_MAX_RANK] = {0};
    const int64_t *attr;
    int count = kl_attr_ints(c, "axes", &attr);
    kl_value *axes_in = count < 0 ? kl_node_input(c, 1) : NULL;
    if (axes_in && (!axes_in->data || axes_in->shape.rank > 1)) return false;
    if (axes_in) count = (int)kl_shape_numel(&axes_in->shape);
    if (count > rank) return false;
    int64_t mapped[KL_MAX_RANK];
    for (int k = 0; k < count; k++) {
        int64_t axis = axes_in ? kl_value_const_int(axes_in, k) : attr[k];
        int a;
        if (!kl_axis_normalize(axis, rank, &a)) return false;
        reduced[a] = true;
        mapped[k] = r->p.p[a];
    }
    if (count <= 0) {
        /* no axes: all of them, or the input unchanged with noop_with_empty_axes */
        bool noop = kl_attr_int(c, "noop_with_empty_axes", 0) != 0;
        for (int a = 0; a < rank; a++) reduced[a] = !noop;
    }
    if (count > 0 && axes_in) kl_node_set_input(lp->g, m, 1, int_list(lp, "axes", count, mapped));
    if (count > 0 && !axes_in) kl_node_set_attr_ints(lp->g, m, "axes", count, mapped);
    if (kl_attr_int(c, "keepdims", 1) == 0) r->out_perm[0] = reduce_out_perm(&r->p, reduced);
    return true;
}

/* Remap Slice's axes (given, or 0..k-1). */
static bool rewrite_slice(layout_pass *lp, rewrite *r) {
    kl_node *c = r->c, *m = r->made;
    int64_t mapped[KL_MAX_RANK];
    if (c->opset < 10) {
        const int64_t *starts, *axes;
        int count = kl_attr_ints(c, "starts", &starts), given = kl_attr_ints(c, "axes", &axes);
        if (count < 0 || count > r->p.rank || (given >= 0 && given != count)) return false;
        for (int k = 0; k < count; k++)
            if (!map_axis(r, given >= 0 ? axes[k] : k, &mapped[k])) return false;
        kl_node_set_attr_ints(lp->g, m, "axes", count, mapped);
        return true;
    }
    kl_value *starts = kl_node_input(c, 1), *axes = kl_node_input(c, 3);
    if (!starts || !starts->data || (axes && !axes->data)) return false;
    int64_t count = kl_shape_numel(&starts->shape);
    if (count > r->p.rank || (axes && kl_shape_numel(&axes->shape) != count)) return false;
    for (int k = 0; k < count; k++)
        if (!map_axis(r, axes ? kl_value_const_int(axes, k) : k, &mapped[k])) return false;
    kl_node_set_input(lp->g, m, 3, int_list(lp, "axes", (int)count, mapped));
    return true;
}

/* Resize: with the axes attribute (opset 18) remap it; else scales, sizes and roi are one entry
 * (roi: two) per axis of t, moved to x's order. */
static bool rewrite_resize(layout_pass *lp, rewrite *r) {
    kl_node *c = r->c, *m = r->made;
    int rank = r->p.rank;
    const int64_t *axes;
    int count = kl_attr_ints(c, "axes", &axes);
    if (count >= 0) {
        int64_t mapped[KL_MAX_RANK];
        if (count > rank) return false;
        for (int k = 0; k < count; k++)
            if (!map_axis(r, axes[k], &mapped[k])) return false;
        kl_node_set_attr_ints(lp->g, m, "axes", count, mapped);
        return true;
    }
    /* Resize-10: X, scales; 11 on: X, roi, scales, sizes */
    int to[2 * KL_MAX_RANK];
    for (int i = 1; i < c->n_inputs && i <= 3; i++) {
        kl_value *v = c->inputs[i];
        if (!v || kl_shape_numel(&v->shape) == 0) continue;
        if (!v->data || v->shape.rank != 1) return false;
        bool roi = c->opset >= 11 && i == 1;
        if (kl_shape_numel(&v->shape) != (roi ? 2 * rank : rank)) return false;
        for (int k = 0; k < rank; k++) {
            to[k] = r->p.p[k];
            to[k + rank] = rank + r->p.p[k];
        }
        kl_node_set_input(lp->g, m, i, scatter_list(lp, v, roi ? 2 * rank : rank, to));
    }
    return true;
}

/* Pad: the axes input (opset 18) remapped, or pads [begins.., ends..] moved to x's order. */
static bool rewrite_pad(layout_pass *lp, rewrite *r) {
    kl_node *c = r->c, *m = r->made;
    int rank = r->p.rank;
    int64_t v[2 * KL_MAX_RANK];
    if (c->opset < 11) {
        const char *name = c->opset < 2 ? "paddings" : "pads";
        const int64_t *pads;
        if (kl_attr_ints(c, name, &pads) != 2 * rank) return false;
        for (int k = 0; k < rank; k++) {
            v[r->p.p[k]] = pads[k];
            v[rank + r->p.p[k]] = pads[rank + k];
        }
        kl_node_set_attr_ints(lp->g, m, name, 2 * rank, v);
        return true;
    }
    kl_value *pads = kl_node_input(c, 1), *axes = kl_node_input(c, 3);
    if (!pads || !pads->data || (axes && !axes->data)) return false;
    if (axes) {
        int64_t count = kl_shape_numel(&axes->shape);
        if (count > rank) return false;
        for (int k = 0; k < count; k++)
            if (!map_axis(r, kl_value_const_int(axes, k), &v[k])) return false;
        kl_node_set_input(lp->g, m, 3, int_list(lp, "axes", (int)count, v));
        return true;
    }
    if (kl_shape_numel(&pads->shape) != 2 * rank) return false;
    for (int k = 0; k < rank; k++) {
        v[r->p.p[k]] = kl_value_const_int(pads, k);
        v[rank + r->p.p[k]] = kl_value_const_int(pads, rank + k);
    }
    kl_node_set_input(lp->g, m, 1, int_list(lp, "pads", 2 * rank, v));
    return true;
}

/* An `axis` attribute remapped (default `def`, as the op defines it). */
static bool rewrite_axis(layout_pass *lp, rewrite *r, int64_t def) {
    int64_t mapped;
    if (!map_axis(r, kl_attr_int(r->c, "axis", def), &mapped)) return false;
    kl_node_set_attr_int(lp->g, r->made, "axis", mapped);
    return true;
}

/* Which inputs carry the layout, and whether the node can be rewritten at all. */
static bool take_operands(layout_pass *lp, rewrite *r, sink_kind kind) {
    kl_node *c = r->c;
    switch (kind) {
    case SINK_NARY:
        /* before opset 7 broadcasting followed the op's own axis/broadcast attributes */
        if (c->opset < 7 || kl_attr_find(c, "broadcast") || kl_attr_find(c, "axis")) return false;
        for (int i = 0; i < c->n_inputs; i++)
            if (!take_operand(lp, r, i, false)) return false;
        return true;
    case SINK_CONCAT:
        for (int i = 0; i < c->n_inputs; i++)
            if (!take_operand(lp, r, i, true)) return false;
        return true;
    case SINK_SOFTMAX:
        if (c->opset < 13) return false;
        return take_operand(lp, r, 0, true);
    default:
        return take_operand(lp, r, 0, true);
    }
}

/* Outputs that a rewrite keeps: Dropout's mask only while nobody reads it. */
static bool outputs_allowed(layout_pass *lp, const kl_node *c, sink_kind kind) {
    for (int j = 0; j < c->n_outputs; j++) {
        kl_value *v = c->outputs[j];
        if (!v) continue;
        if (j > 0 && kind != SINK_SPLIT) {
            if (is_graph_output(v)) return false;
            kl_value_consumers(lp->g, v, &lp->scratch);
            if (lp->scratch.n) return false;
        }
        if (j >= KL_MAX_RANK) return false;
    }
    return true;
}

enum { MAX_PULL_NODES = 512 };

static bool visited(layout_pass *lp, kl_node *n) {
    for (int i = 0; i < lp->visited.n; i++)
        if (lp->visited.items[i] == n) return true;
    if (lp->visited.n >= MAX_PULL_NODES) return true;
    kl_ptrvec_push(lp->g->arena, &lp->visited, n);
    return false;
}

/* A node is blocked because operand v is not T(., p). If v comes, through nodes that transposes
 * sink through, from transposes by p, queue those: once they have sunk down to the blocked node
 * it can move too. (A merge point such as the Concat of a feature pyramid only pays when every
 * branch comes along, and no branch alone would.) */
static void pull_sources(layout_pass *lp, kl_value *v, const perm *p) {
    if (!v || v->data || !v->has_shape || kl_shape_numel(&v->shape) == 1) return;
    kl_node *n = v->producer;
    perm q;
    if (!n || !kl_node_live(n) || visited(lp, n)) return;
    if (live_transpose(n, &q)) {
        /* p == NULL: found above a reshape, whose perm changes on the way down */
        if (!p || perm_equal(&q, p)) kl_ptrvec_push(lp->g->arena, &lp->queue, n);
        return;
    }
    if (is_reshape(n)) {
        pull_sources(lp, n->inputs[0], NULL);
        return;
    }
    if (kind_of(n) == SINK_NONE) return;
    for (int i = 0; i < n->n_inputs; i++) pull_sources(lp, n->inputs[i], p);
}

/* Rewrite c (which reads at least one transpose by `p`) as op'(x..) followed by transposes.
 * New transposes go to the queue. False: c stays as it is (nothing changed in the graph that
 * matters; stray values and constants made on the way are never read). */
static bool sink_through(layout_pass *lp, kl_node *c, const perm *p) {
    kl_graph *g = lp->g;
    sink_kind kind = kind_of(c);
    if (kind == SINK_NONE || !outputs_allowed(lp, c, kind)) return false;
    rewrite r = {.c = c, .p = *p, .n_in = c->n_inputs};
    r.in = kl_alloc_array(g->arena, (size_t)c->n_inputs + 1, sizeof *r.in);
    r.absorbed = kl_alloc_array(g->arena, (size_t)c->n_inputs + 1, sizeof *r.absorbed);
    memcpy(r.in, c->inputs, (size_t)c->n_inputs * sizeof *r.in);
    if (!take_operands(lp, &r, kind)) {
        if (r.blocker && lp->pulling) pull_sources(lp, r.blocker, p);
        return false;
    }
    if (r.n_absorbed == 0) return false;

    /* the new node: new output values (their shapes from inference) */
    int n_out = kind == SINK_SPLIT ? c->n_outputs : 1;
    if (n_out > KL_MAX_RANK) return false;
    kl_value *outs[KL_MAX_RANK] = {0};
    for (int j = 0; j < n_out; j++) {
        r.out_perm[j] = *p;
        if (c->outputs[j])
            outs[j] = kl_value_make(g, c->outputs[j]->name, c->outputs[j]->dtype,
                                    &c->outputs[j]->shape, NULL);
    }
    r.made = kl_node_add(g, "", c->op_type, c->opset, c->name, r.n_in, r.in, n_out, outs);
    if (!r.made) return false;
    r.made->guard = c->guard;
    r.made->attrs = c->attrs; /* shared until a remap gives the new node its own copy */
    r.made->n_attrs = c->n_attrs;
    bool ok = true;
    switch (kind) {
    case SINK_REDUCE: ok = rewrite_reduce(lp, &r); break;
    case SINK_CONCAT: ok = rewrite_axis(lp, &r, 1); break;
    case SINK_SPLIT: ok = rewrite_axis(lp, &r, 0); break;
    case SINK_SLICE: ok = rewrite_slice(lp, &r); break;
    case SINK_RESIZE: ok = c->opset >= 10 && rewrite_resize(lp, &r); break;
    case SINK_PAD: ok = rewrite_pad(lp, &r); break;
    case SINK_SOFTMAX: ok = rewrite_axis(lp, &r, -1); break;
    default: break;
    }
    if (!ok || !infer_quietly(lp, r.made)) {
        kl_node_kill(r.made);
        return false;
    }
    /* every output, put back in t's order, must be what c computed */
    for (int j = 0; j < n_out; j++) {
        kl_value *o = c->outputs[j], *o2 = outs[j];
        if (!o) continue;
        kl_shape back = perm_shape(&r.out_perm[j], &o2->shape);
        if (o2->dtype != o->dtype || !kl_shape_equal(&back, &o->shape)) {
            kl_node_kill(r.made);
            return false;
        }
    }
    kl_node_kill(c);
    for (int j = 0; j < n_out; j++) {
        kl_value *o = c->outputs[j];
        if (!o) continue;
        if (perm_is_identity(&r.out_perm[j])) {
            kl_node_set_output(g, r.made, j, o); /* op' gives o itself: no transpose */
            continue;
        }
        kl_node *t = add_transpose(lp, outs[j], &r.out_perm[j], o, c->name);
        if (!t) return false;
        kl_ptrvec_push(g->arena, &lp->queue, t);
    }
    for (int i = 0; i < r.n_absorbed; i++) drop_if_unused(lp, r.absorbed[i]);
    return true;
}

/* ---- 2. sink: reshapes ------------------------------------------------------------------------- */

/*
 * Reshape, Flatten, Squeeze and Unsqueeze keep the bytes in row-major order. T(x, p) followed by
 * a reshape to S splits and merges t's dims in blocks: the t dims of one block (size-1 dims left
 * out) hold the same elements as the S dims of that block. The reshape can happen on x instead
 * when the t dims of every block that merges several are neighbours in x, in the same order:
 * x is reshaped to x'' (every block's S dims where the block sits in x), and a transpose q puts
 * x'''s dims back in S's order. That is how a transpose gets through the reshapes of a channel
 * shuffle: [N,C,H,W] -> [N,2,C/2,H,W] only splits C, which is one dim of x = [N,H,W,C].
 *
 * When a merging block's dims are out of order in x (the shuffle's second reshape merges
 * [.., C/2, 2, ..] after the transpose swapped them), the transpose is split in two: T(x, r)
 * that brings each such block into t's order and so moves data (the shuffle itself, now in
 * channels-last), and T(., p') that does the rest and goes through the reshape.
 */

typedef struct reshape_blocks {
    int n;
    int t_from[KL_MAX_RANK], t_to[KL_MAX_RANK];   /* [from, to) in `td`, the t dims > 1 */
    int s_from[KL_MAX_RANK], s_to[KL_MAX_RANK];   /* [from, to) in `sd`, the S dims > 1 */
    int td[KL_MAX_RANK], sd[KL_MAX_RANK];
    int block_of_t[KL_MAX_RANK];                   /* per t dim > 1 */
} reshape_blocks;

static bool make_blocks(const kl_shape *t, const kl_shape *s, reshape_blocks *b) {
    int nt = 0, ns = 0;
    for (int i = 0; i < t->rank; i++)
        if (t->dim[i] != 1) b->td[nt++] = i;
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] != 1) b->sd[ns++] = i;
    b->n = 0;
    int i = 0, j = 0;
    while (i < nt || j < ns) {
        if (i >= nt || j >= ns) return false;
        int k = b->n++;
        b->t_from[k] = i;
        b->s_from[k] = j;
        int64_t pt = t->dim[b->td[i++]], ps = s->dim[b->sd[j++]];
        while (pt != ps) {
            if (pt < ps) {
                if (i >= nt) return false;
                pt *= t->dim[b->td[i++]];
            } else {
                if (j >= ns) return false;
                ps *= s->dim[b->sd[j++]];
            }
        }
        b->t_to[k] = i;
        b->s_to[k] = j;
        for (int m = b->t_from[k]; m < i; m++) b->block_of_t[b->td[m]] = k;
    }
    return true;
}

/* Whether every merging block's x dims are neighbours in x (size-1 dims aside), in order. */
static bool blocks_in_order(const reshape_blocks *b, const perm *p, const kl_shape *x) {
    int pos[KL_MAX_RANK], n = 0;
    for (int a = 0; a < x->rank; a++) pos[a] = x->dim[a] == 1 ? -1 : n++;
    for (int k = 0; k < b->n; k++)
        for (int m = b->t_from[k] + 1; m < b->t_to[k]; m++)
            if (pos[p->p[b->td[m]]] != pos[p->p[b->td[m - 1]]] + 1) return false;
    return true;
}

/* x's dims reordered so that each merging block's dims come together, in t's order, where its
 * first dim is in x; everything else keeps its place. Returns r (T(x, r) is that order). */
static perm order_blocks(const reshape_blocks *b, const perm *p, const kl_shape *x) {
    perm r = {.rank = x->rank};
    perm inv = perm_inverse(p);
    bool placed[KL_MAX_RANK] = {0};
    int n = 0;
    for (int a = 0; a < x->rank; a++) {
        if (placed[a]) continue;
        if (x->dim[a] == 1) {
            r.p[n++] = a;
            placed[a] = true;
            continue;
        }
        int k = b->block_of_t[inv.p[a]];
        for (int m = b->t_from[k]; m < b->t_to[k]; m++) {
            r.p[n++] = p->p[b->td[m]];
            placed[p->p[b->td[m]]] = true;
        }
    }
    return r;
}

/* x'' (as the S dims it holds, in order) and q with T(reshape(x, x''), q) = reshape(t, S). */
static void reshaped_order(const reshape_blocks *b, const perm *p, const kl_shape *x,
                           const kl_shape *s, kl_shape *xs, perm *q) {
    int order[KL_MAX_RANK], n = 0;
    bool done[KL_MAX_RANK] = {0};
    perm inv = perm_inverse(p);
    for (int a = 0; a < x->rank; a++) {
        if (x->dim[a] == 1) continue;
        int k = b->block_of_t[inv.p[a]];
        if (done[k]) continue;
        done[k] = true;
        for (int m = b->s_from[k]; m < b->s_to[k]; m++) order[n++] = b->sd[m];
    }
    /* size-1 dims of S go right after the S dim before them (first if none), so that q stays
     * the identity wherever it can */
    for (int i = 0; i < s->rank; i++) {
        if (s->dim[i] != 1) continue;
        int at = 0;
        if (i > 0)
            while (order[at] != i - 1) at++;
        if (i > 0) at++;
        memmove(order + at + 1, order + at, (size_t)(n - at) * sizeof order[0]);
        order[at] = i;
        n++;
    }
    xs->rank = n;
    q->rank = n;
    for (int k = 0; k < n; k++) {
        xs->dim[k] = s->dim[order[k]];
        q->p[order[k]] = k;
    }
}

/* c reshapes T(x, p) (t): reshape x instead, transposing after (see above). 1: done; 0: c
 * stays, nothing changed; -1: failed half-way (the caller rolls the graph back). */
static int sink_through_reshape(layout_pass *lp, kl_node *c, kl_node *t, const perm *p) {
    kl_graph *g = lp->g;
    kl_value *x = t->inputs[0], *o = c->outputs[0];
    if (c->inputs[0] != t->outputs[0] || !o || !o->has_shape || kl_shape_numel(&o->shape) == 0)
        return 0;
    for (int j = 1; j < c->n_outputs; j++)
        if (c->outputs[j]) return 0;
    reshape_blocks b;
    if (!make_blocks(&t->outputs[0]->shape, &o->shape, &b)) return 0;
    perm pp = *p;
    if (!blocks_in_order(&b, p, &x->shape)) {
        perm r = order_blocks(&b, p, &x->shape), rinv = perm_inverse(&r);
        for (int i = 0; i < p->rank; i++) pp.p[i] = rinv.p[p->p[i]];
        if (!blocks_in_order(&b, &pp, &x->shape)) return 0;
        kl_node *first = add_transpose(lp, x, &r, NULL, c->name);
        if (!first) return -1;
        x = first->outputs[0];
    }
    kl_shape xs;
    perm q;
    reshaped_order(&b, &pp, &x->shape, &o->shape, &xs, &q);
    int64_t dims[KL_MAX_RANK];
    for (int i = 0; i < xs.rank; i++) dims[i] = xs.dim[i];
    kl_value *in[2] = {x, int_list(lp, "shape", xs.rank, dims)};
    bool plain = perm_is_identity(&q);
    kl_value *y = plain ? o : kl_value_make(g, o->name, o->dtype, &xs, NULL);
    kl_node_kill(c);
    kl_node *r = kl_node_add(g, "", "Reshape", 13, c->name, 2, in, 1, &y);
    if (r) r->guard = c->guard;
    if (!r || !infer_quietly(lp, r) || !kl_shape_equal(&y->shape, plain ? &o->shape : &xs))
        return -1;
    if (!plain) {
        kl_node *back = add_transpose(lp, y, &q, o, c->name);
        if (!back) return -1;
        kl_ptrvec_push(g->arena, &lp->queue, back);
    }
    drop_if_unused(lp, t);
    return 1;
}

/* ---- 2. sink: one seed ------------------------------------------------------------------------- */

/* t reads another transpose: compose them. True when the graph changed. */
static bool fold_pair(layout_pass *lp, kl_node *t, const perm *p) {
    perm q;
    kl_node *u = transposed_by(t->inputs[0], &q);
    kl_value *out = t->outputs[0];
    if (!u) {
        if (!perm_is_identity(p) || is_graph_output(out)) return false;
        kl_value_replace_uses(lp->g, out, t->inputs[0]); /* a transpose that does nothing */
        kl_node_kill(t);
        return true;
    }
    perm r = perm_compose(&q, p);
    kl_value *x = u->inputs[0];
    if (perm_is_identity(&r) && !is_graph_output(out)) {
        kl_value_replace_uses(lp->g, out, x);
        kl_node_kill(t);
        kl_value_consumers(lp->g, x, &lp->scratch);
        for (int i = 0; i < lp->scratch.n; i++)
            if (is_op(lp->scratch.items[i], "Transpose"))
                kl_ptrvec_push(lp->g->arena, &lp->queue, lp->scratch.items[i]);
    } else {
        int64_t ints[KL_MAX_RANK];
        for (int i = 0; i < r.rank; i++) ints[i] = r.p[i];
        kl_node_set_input(lp->g, t, 0, x);
        kl_node_set_attr_ints(lp->g, t, "perm", r.rank, ints);
        kl_ptrvec_push(lp->g->arena, &lp->queue, t);
    }
    drop_if_unused(lp, u);
    return true;
}

/* Sink `seed` and every transpose its moves bring along, as far as they go (with `pulling`, also
 * the transposes feeding a node that stops them). Returns the number of rewrites; -1 when a step
 * cannot be completed (the caller rolls back). */
static int sink_seed(layout_pass *lp, kl_node *seed, bool pulling) {
    int moves = 0, steps = 0;
    kl_ptrvec readers = {0};
    lp->pulling = pulling;
    lp->visited.n = 0;
    lp->queue.n = 0;
    kl_ptrvec_push(lp->g->arena, &lp->queue, seed);
    while (lp->queue.n > 0) {
        if (++steps > MAX_STEPS) return -1;
        kl_node *t = lp->queue.items[--lp->queue.n];
        perm p;
        if (!live_transpose(t, &p)) continue;
        if (fold_pair(lp, t, &p)) {
            moves++;
            continue;
        }
        kl_value *out = t->outputs[0];
        kl_value_consumers(lp->g, out, &readers);
        int n_readers = readers.n;
        kl_node **list = kl_alloc_array(lp->g->arena, (size_t)n_readers + 1, sizeof *list);
        if (n_readers) /* items is NULL when there are none */
            memcpy(list, readers.items, (size_t)n_readers * sizeof *list);
        for (int i = 0; i < n_readers; i++) {
            kl_node *c = list[i];
            perm q;
            if (!kl_node_live(c)) continue;
            if (live_transpose(c, &q)) {
                if (c->inputs[0] == out && fold_pair(lp, c, &q)) moves++;
                continue;
            }
            /* an identity transpose is only left in front of a graph output */
            if (perm_is_identity(&p)) continue;
            if (is_reshape(c)) {
                int done = sink_through_reshape(lp, c, t, &p);
                if (done < 0) return -1;
                moves += done;
                continue;
            }
            bool reads = false;
            for (int k = 0; k < c->n_inputs; k++) reads = reads || c->inputs[k] == out;
            if (reads && sink_through(lp, c, &p)) moves++;
        }
    }
    return moves;
}

/* ---- 2. sink: cost and rounds ------------------------------------------------------------------- */

typedef struct cost {
    int count;                /* transposes that move data */
    int64_t elements;         /* elements they move */
} cost;

static cost graph_cost(const kl_graph *g) {
    cost c = {0, 0};
    for (int i = 0; i < g->nodes.n; i++) {
        const kl_node *n = g->nodes.items[i];
        perm p;
        if (!live_transpose(n, &p) || perm_is_view(&p, &n->inputs[0]->shape)) continue;
        c.count++;
        c.elements += kl_shape_numel(&n->inputs[0]->shape);
    }
    return c;
}

static bool cost_worse(cost after, cost before) {
    return after.count > before.count ||
           (after.count == before.count && after.elements > before.elements);
}

static bool sink_all(layout_pass *lp) {
    kl_graph *g = lp->g;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        bool changed = false;
        int count = g->nodes.n;
        kl_node **seeds = kl_alloc_array(g->arena, (size_t)count + 1, sizeof *seeds);
        int n_seeds = 0;
        for (int i = 0; i < count; i++) {
            perm p;
            if (live_transpose(g->nodes.items[i], &p)) seeds[n_seeds++] = g->nodes.items[i];
        }
        for (int i = 0; i < n_seeds; i++) {
            perm p;
            if (!live_transpose(seeds[i], &p)) continue;
            cost before = graph_cost(g);
            kl_graph_snapshot_take(g, &lp->snap);
            /* first with the branches that join the seed's path, then, if that did not pay and
             * did pull some in, the seed alone */
            int moves = sink_seed(lp, seeds[i], true);
            if (moves != 0 && (moves < 0 || cost_worse(graph_cost(g), before))) {
                kl_graph_snapshot_restore(g, &lp->snap);
                moves = lp->visited.n ? sink_seed(lp, seeds[i], false) : 0;
                if (moves != 0 && (moves < 0 || cost_worse(graph_cost(g), before))) {
                    kl_graph_snapshot_restore(g, &lp->snap);
                    moves = 0;
                }
            }
            if (moves == 0) continue;
            /* a cycle would be a bug in a rewrite: back out of it rather than fail the model */
            kl_diag quiet;
            kl_diag_init(&quiet, g->file);
            bool sorted = kl_graph_sort(g, &quiet);
            kl_diag_free(&quiet);
            if (!sorted) {
                kl_graph_snapshot_restore(g, &lp->snap);
                continue;
            }
            changed = true;
        }
        if (!changed) break;
    }
    return true;
}

bool pass_layout(kl_graph *g, kl_diag *d) {
    /* Transpose has meant the same in every opset; its nodes say 13 whatever the model imports */
    layout_pass lp = {.g = g, .d = d, .opset = 13};
    bool any;
    if (!convert(&lp, &any)) return false;
    if (!any) return true;
    return sink_all(&lp) && kl_graph_sort(g, d);
}

/*
 * gradient.c — Gradient (ai.onnx.preview.training, opset 1): the derivatives of the value the
 * attribute `y` names with respect to the values `xs` names, by reverse-mode differentiation of
 * the graph while the model compiles.
 *
 * The node is settled during shape inference, when the forward values have their shapes: the
 * nodes on a path from an x to y are walked from y back, each one's vector-Jacobian product is
 * written as ordinary tensor operators (Mul, ReduceSum, MatMul, ...), contributions to one value
 * are added, and the node becomes an Identity of each x's total (zeros where y does not depend
 * on x). The seed is ones of y's shape: for a y that is not a scalar, the derivatives are those
 * of the sum of its elements, as ONNX's reference computes them. An operand that broadcast is
 * summed back to its own shape.
 *
 * Differentiated: Add Sub Mul Div Neg Identity Exp Log Sqrt Tanh Sigmoid Relu, and MatMul of two
 * matrices, in float and double. Any other operator on a path from an x to y is refused with a
 * message naming it. `zs` (inputs held constant) need no work: only the xs are differentiated.
 */
#include <string.h>

#include "kl.h"
#include "ops.h"

#define TRAINING "ai.onnx.preview.training"

enum { TENSOR_OPSET = 13 };

typedef struct grad {
    kl_graph *g;
    kl_node *n;          /* the Gradient node */
    kl_diag *d;
    int n_values;        /* values that existed before: the forward graph's */
    bool *from_x;        /* by value id: depends on one of the xs */
    kl_value **adjoint;  /* by value id: d(sum y) / d(value), or NULL (none yet) */
} grad;

static const char *const gradient_attrs[] = {"xs", "zs", "y", NULL};

static kl_value *value_named(const kl_graph *g, const char *name) {
    for (int i = 0; i < g->values.n; i++) {
        kl_value *v = g->values.items[i];
        if (v->name && !strcmp(v->name, name)) return v;
    }
    return NULL;
}

/* ---- values and nodes made here ----------------------------------------------------------- */

static kl_value *fresh(grad *G) {
    return kl_value_new(G->g, kl_sprintf(G->g->arena, "%s_grad__%d", G->n->name, G->g->values.n));
}

/* A float or double scalar constant. */
static kl_value *scalar(grad *G, kl_dtype t, double x) {
    kl_shape s = {.rank = 0};
    void *data = kl_alloc(G->g->arena, 8);
    if (t == KL_F64) *(double *)data = x;
    else *(float *)data = (float)x;
    return kl_value_make(G->g, kl_sprintf(G->g->arena, "%s_const", G->n->name), t, &s, data);
}

static kl_value *i64_list(grad *G, const int64_t *x, int count) {
    kl_shape s = {.rank = 1, .dim = {count}};
    int64_t *data = kl_alloc_array(G->g->arena, (size_t)count + 1, sizeof *data);
    memcpy(data, x, (size_t)count * sizeof *data);
    return kl_value_make(G->g, kl_sprintf(G->g->arena, "%s_const", G->n->name), KL_I64, &s, data);
}

/* op(in[0], ..., in[n_in - 1]) as a new node; NULL (with a diagnostic when the table has no
 * such operator) when it fails or an operand is missing. */
static kl_value *emit_n(grad *G, const char *op, int n_in, kl_value *const *in) {
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return NULL;
    kl_value *out = fresh(G);
    kl_node *m = kl_node_add(G->g, "", op, TENSOR_OPSET,
                             kl_sprintf(G->g->arena, "%s/%s", G->n->name, op), n_in, in, 1, &out);
    if (!m) {
        kl_error(G->d, G->n, "internal error: no %s in the op table", op);
        return NULL;
    }
    m->guard = G->n->guard;
    return out;
}

/* op(a, b), or op(a) when b is NULL. */
static kl_value *emit(grad *G, const char *op, kl_value *a, kl_value *b) {
    kl_value *in[2] = {a, b};
    return emit_n(G, op, b ? 2 : 1, in);
}

/* A tensor of shape s, every element x (float or double): Expand of a scalar, so that no
 * constant of y's size is built while compiling. */
static kl_value *filled(grad *G, kl_dtype t, const kl_shape *s, double x) {
    return emit(G, "Expand", scalar(G, t, x), i64_list(G, s->dim, s->rank));
}

/* g (of shape `from`) summed over the dims along which a value of shape `to` was broadcast. */
static kl_value *unbroadcast(grad *G, kl_value *g, const kl_shape *from, const kl_shape *to) {
    if (!g || kl_shape_equal(from, to)) return g;
    int64_t axes[KL_MAX_RANK];
    int n_axes = 0, lead = from->rank - to->rank;
    for (int i = 0; i < from->rank; i++)
        if (i < lead || (to->dim[i - lead] == 1 && from->dim[i] != 1)) axes[n_axes++] = i;
    kl_value *sum = n_axes ? emit(G, "ReduceSum", g, i64_list(G, axes, n_axes)) : g;
    return emit(G, "Reshape", sum, i64_list(G, to->dim, to->rank));
}

/* ---- the derivatives ---------------------------------------------------------------------- */

/* Adds g to the adjoint of input i of node p (if it depends on an x). */
static bool contribute(grad *G, const kl_node *p, int i, kl_value *g) {
    kl_value *v = p->inputs[i];
    if (!G->from_x[v->id]) return true;
    if (!g) return false;
    g = unbroadcast(G, g, &p->outputs[0]->shape, &v->shape);
    kl_value *sum = G->adjoint[v->id] ? emit(G, "Add", G->adjoint[v->id], g) : g;
    if (!sum) return false;
    G->adjoint[v->id] = sum;
    return true;
}

static bool is_op(const kl_node *p, const char *op) { return !strcmp(p->op_type, op); }

/* Elementwise binary operators: the two operands' shares of dc. */
static bool binary_adjoints(grad *G, const kl_node *p, kl_value *dc) {
    kl_value *a = p->inputs[0], *b = p->inputs[1], *c = p->outputs[0];
    if (is_op(p, "Add")) return contribute(G, p, 0, dc) && contribute(G, p, 1, dc);
    if (is_op(p, "Sub"))
        return contribute(G, p, 0, dc) && contribute(G, p, 1, emit(G, "Neg", dc, NULL));
    if (is_op(p, "Mul"))
        return contribute(G, p, 0, emit(G, "Mul", dc, b)) &&
               contribute(G, p, 1, emit(G, "Mul", dc, a));
    /* Div: d(a/b)/da = 1/b, d(a/b)/db = -c/b */
    return contribute(G, p, 0, emit(G, "Div", dc, b)) &&
           contribute(G, p, 1, emit(G, "Neg", emit(G, "Mul", dc, emit(G, "Div", c, b)), NULL));
}

/* Elementwise unary operators: dc times the derivative, from the input a or the result c. */
static kl_value *unary_adjoint(grad *G, const kl_node *p, kl_value *dc) {
    kl_value *a = p->inputs[0], *c = p->outputs[0];
    kl_dtype t = c->dtype;
    if (is_op(p, "Identity")) return dc;
    if (is_op(p, "Neg")) return emit(G, "Neg", dc, NULL);
    if (is_op(p, "Exp")) return emit(G, "Mul", dc, c);
    if (is_op(p, "Log")) return emit(G, "Div", dc, a);
    if (is_op(p, "Sqrt")) return emit(G, "Div", dc, emit(G, "Mul", c, scalar(G, t, 2)));
    if (is_op(p, "Tanh"))
        return emit(G, "Mul", dc, emit(G, "Sub", scalar(G, t, 1), emit(G, "Mul", c, c)));
    if (is_op(p, "Sigmoid"))
        return emit(G, "Mul", dc, emit(G, "Mul", c, emit(G, "Sub", scalar(G, t, 1), c)));
    kl_error(G->d, G->n, "internal error: no derivative of %s", p->op_type);
    return NULL;
}

static bool relu_adjoint(grad *G, const kl_node *p, kl_value *dc) {
    kl_value *a = p->inputs[0];
    kl_value *in[3] = {emit(G, "Greater", a, scalar(G, a->dtype, 0)), dc, scalar(G, a->dtype, 0)};
    return contribute(G, p, 0, emit_n(G, "Where", 3, in));
}

/* MatMul of two matrices: da = dc b^T, db = a^T dc. */
static bool matmul_adjoints(grad *G, const kl_node *p, kl_value *dc) {
    kl_value *a = p->inputs[0], *b = p->inputs[1];
    if (a->shape.rank != 2 || b->shape.rank != 2)
        return kl_error(G->d, G->n, "differentiating MatMul '%s' of ranks %d and %d: kiln "
                        "differentiates MatMul of two matrices only", p->name, a->shape.rank,
                        b->shape.rank);
    return contribute(G, p, 0, emit(G, "MatMul", dc, emit(G, "Transpose", b, NULL))) &&
           contribute(G, p, 1, emit(G, "MatMul", emit(G, "Transpose", a, NULL), dc));
}

static bool adjoints_of(grad *G, const kl_node *p, kl_value *dc) {
    static const char *const binary[] = {"Add", "Sub", "Mul", "Div", NULL};
    static const char *const unary[] = {"Identity", "Neg", "Exp", "Log", "Sqrt", "Tanh",
                                        "Sigmoid", NULL};
    bool onnx = !*p->domain && p->n_outputs == 1;
    for (int i = 0; onnx && binary[i]; i++)
        if (is_op(p, binary[i]) && p->n_inputs == 2) return binary_adjoints(G, p, dc);
    for (int i = 0; onnx && unary[i]; i++)
        if (is_op(p, unary[i])) return contribute(G, p, 0, unary_adjoint(G, p, dc));
    if (onnx && is_op(p, "Relu")) return relu_adjoint(G, p, dc);
    if (onnx && is_op(p, "MatMul")) return matmul_adjoints(G, p, dc);
    return kl_error(G->d, G->n, "node '%s' (%s) lies between an x and y: kiln differentiates "
                    "Add Sub Mul Div Neg Identity Exp Log Sqrt Tanh Sigmoid Relu and MatMul of "
                    "two matrices", p->name, p->op_type);
}

/* ---- the walk ----------------------------------------------------------------------------- */

/* Which forward values depend on an x (nodes before the Gradient node, in order). */
static void mark_from_x(grad *G, int upto) {
    for (int i = 0; i < upto; i++) {
        const kl_node *p = G->g->nodes.items[i];
        if (p->dead) continue;
        bool any = false;
        for (int k = 0; k < p->n_inputs; k++)
            any = any || (p->inputs[k] && G->from_x[p->inputs[k]->id]);
        for (int k = 0; any && k < p->n_outputs; k++)
            if (p->outputs[k]) G->from_x[p->outputs[k]->id] = true;
    }
}

/* From y back to the xs: each node whose output has an adjoint passes it to its inputs. */
static bool walk_back(grad *G, int upto) {
    for (int i = upto - 1; i >= 0; i--) {
        const kl_node *p = G->g->nodes.items[i];
        if (p->dead) continue;
        kl_value *dc = NULL; /* the adjoint of an output (any: a second output is refused) */
        for (int k = 0; k < p->n_outputs && !dc; k++)
            if (p->outputs[k] && p->outputs[k]->id < G->n_values)
                dc = G->adjoint[p->outputs[k]->id];
        if (!dc) continue;
        bool depends = false;
        for (int k = 0; k < p->n_inputs; k++)
            depends = depends || (p->inputs[k] && G->from_x[p->inputs[k]->id]);
        if (depends && !adjoints_of(G, p, dc)) return false;
    }
    return true;
}

static bool float_type(kl_dtype t) { return t == KL_F32 || t == KL_F64; }

static bool gradient_settle(kl_graph *g, kl_node *n, kl_diag *d) {
    const kl_attr *xs = kl_attr_find(n, "xs");
    const kl_attr *zs = kl_attr_find(n, "zs");
    const char *y_name = kl_attr_string(n, "y", NULL);
    if (!xs || xs->type != KL_ATTR_STRINGS || !y_name)
        return kl_error(d, n, "attributes xs (strings) and y (a string) are required");
    int n_zs = zs && zs->type == KL_ATTR_STRINGS ? zs->n : 0;
    if (n->n_inputs != xs->n + n_zs || n->n_outputs != xs->n)
        return kl_error(d, n, "%d inputs and %d outputs for %d xs and %d zs: one input per x and "
                        "z, one output per x", n->n_inputs, n->n_outputs, xs->n, n_zs);
    kl_value *y = value_named(g, y_name);
    if (!y || !y->has_shape || !float_type(y->dtype))
        return kl_error(d, n, "y '%s' must be a float or double tensor computed by a node listed "
                        "before this one (an attribute names y, so the node order is what says "
                        "it comes first)", y_name);
    int at = 0;
    while (at < g->nodes.n && g->nodes.items[at] != n) at++;
    grad G = {g, n, d, g->values.n, NULL, NULL};
    G.from_x = kl_alloc_array(g->arena, (size_t)G.n_values + 1, sizeof *G.from_x);
    G.adjoint = kl_alloc_array(g->arena, (size_t)G.n_values + 1, sizeof *G.adjoint);
    kl_value **x = kl_alloc_array(g->arena, (size_t)xs->n + 1, sizeof *x);
    for (int i = 0; i < xs->n; i++) {
        x[i] = value_named(g, xs->strings[i]);
        if (!x[i] || !x[i]->has_shape || x[i]->dtype != y->dtype)
            return kl_error(d, n, "x '%s' must be a tensor of y's type %s", xs->strings[i],
                            kl_dtype_name(y->dtype));
        G.from_x[x[i]->id] = true;
    }
    mark_from_x(&G, at);
    G.adjoint[y->id] = filled(&G, y->dtype, &y->shape, 1.0);
    if (!G.adjoint[y->id] || !walk_back(&G, at)) return false;
    kl_value **outputs = kl_alloc_array(g->arena, (size_t)xs->n + 1, sizeof *outputs);
    memcpy(outputs, n->outputs, (size_t)xs->n * sizeof *outputs);
    kl_node_kill(n);
    for (int i = 0; i < xs->n; i++) {
        if (!outputs[i]) continue;
        kl_value *total = G.adjoint[x[i]->id] ? G.adjoint[x[i]->id]
                                              : filled(&G, y->dtype, &x[i]->shape, 0.0);
        if (!total) return false;
        kl_value *in[1] = {total}, *out[1] = {outputs[i]};
        kl_node *m = kl_node_add(g, "", "Identity", TENSOR_OPSET, n->name, 1, in, 1, out);
        if (!m) return kl_error(d, n, "internal error: no Identity in the op table");
        m->guard = n->guard;
    }
    return true;
}

static bool gradient_infer(kl_node *n, kl_diag *d) {
    return kl_error(d, n, "internal error: Gradient is settled before inference");
}

const kl_op kl_ops_gradient[] = {
    {TRAINING, "Gradient", 1, 1, gradient_attrs, gradient_infer, NULL, .settle = gradient_settle},
    {0},
};

/*
 * infer_shapes.c — shape inference and constant folding, node by node in topological order.
 *
 * The two run together because each needs the other: Reshape's output shape is only known once
 * the Shape -> Gather -> Concat chain feeding it has been folded to a constant, and folding a
 * node needs its inferred output shapes.
 */
#include <string.h>

#include "kl.h"

/* Folding runs in the interpreter; beyond this many output elements the node is left for the
 * compiled code, which is always correct, just not precomputed. */
#define FOLD_MAX_ELEMENTS (1 << 24)

/* Also true for a node without inputs: every supported such operator (Constant's forms, and
 * RandomUniform / RandomNormal, whose draws kiln fixes at compile time: ops/random.c) is
 * deterministic, so computing it at compile time is exact. */
static bool all_inputs_constant(const kl_node *n) {
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && !n->inputs[i]->data) return false;
    return true;
}

static bool outputs_known(kl_arena *a, const kl_node *n, bool *all_const, int64_t *elements,
                          kl_diag *d) {
    *all_const = true;
    *elements = 0;
    for (int i = 0; i < n->n_outputs; i++) {
        kl_value *v = n->outputs[i];
        if (!v) continue;
        if (!v->has_shape) return kl_error(d, n, "output %d ('%s') has no inferred shape", i, v->name);
        if (!kl_dtype_supported(v->dtype))
            return kl_error(d, n, "output '%s' has element type %s, which kiln does not support",
                            v->name, kl_dtype_name(v->dtype));
        /* the one place every inferred shape passes: nothing downstream sees a size that
           overflows or exceeds what kiln compiles */
        int64_t bytes;
        if (!kl_shape_bytes_checked(&v->shape, v->dtype, &bytes))
            return kl_check_tensor_size(a, &v->shape, v->dtype, n,
                                        kl_sprintf(a, "output '%s'", v->name), d);
        if (!v->data) *all_const = false;
        *elements += kl_shape_numel(&v->shape);
    }
    return true;
}

/* A node whose guard is decided at run time may never run, so folding it must not fail the
 * compilation (a Gather of the branch the condition rules out may index out of range): when it
 * does, the node stays for the generated code, which skips it or clamps. */
static bool fold_guarded(kl_graph *g, kl_node *n, const kl_diag *d) {
    kl_diag scratch;
    kl_diag_init(&scratch, d->file);
    kl_fold_node(g, n, &scratch); /* outputs get their data only when it succeeds */
    kl_diag_free(&scratch);
    return true;
}

static bool infer_node(kl_graph *g, kl_node *n, kl_diag *d);

/* A node of a branch chosen at run time: when it cannot be inferred for the bound shapes (the
 * branch of silero_vad's If meant for the other sample rate), its branch is left out (the
 * nearest level of its guard decided at run time is marked broken) instead of failing the
 * whole model, as ONNX Runtime fails only when it runs that branch. */
static void leave_out_branch(kl_graph *g, kl_node *n, const kl_diag *scratch) {
    kl_guard *gd = n->guard;
    while (gd->cond->data) gd = gd->outer; /* state 0: some level is decided at run time */
    size_t len = scratch->len;
    while (len && scratch->text[len - 1] == '\n') len--;
    char *why = kl_strndup(g->arena, scratch->text ? scratch->text : "", len);
    for (char *c = why; *c; c++) /* one line, for the message that may quote it */
        if (*c == '\n') *c = ' ';
    gd->broken = why;
    kl_ptrvec_push(g->arena, &g->broken_guards, gd);
    kl_node_kill(n);
}

static bool infer_guarded(kl_graph *g, kl_node *n, const kl_diag *d) {
    kl_diag scratch;
    kl_diag_init(&scratch, d->file);
    if (!infer_node(g, n, &scratch)) leave_out_branch(g, n, &scratch);
    kl_diag_free(&scratch);
    return true;
}

static bool infer_upstream(kl_graph *g, kl_value *v, int depth, kl_diag *d);

/* Operators whose output 0 has the shape of input 0, whatever else they read. */
static bool keeps_input_shape(const kl_node *n) {
    static const char *const ops[] = {"Identity", "Cast", "CastLike", "Log", "Exp", "Sqrt",
                                      "Abs", "Neg", "Relu", "Sigmoid", "Tanh", "Reciprocal",
                                      "Floor", "Ceil", "Erf", NULL};
    if (*n->domain || n->n_inputs < 1 || n->n_outputs != 1) return false;
    for (int i = 0; ops[i]; i++)
        if (!strcmp(n->op_type, ops[i])) return true;
    return false;
}

/* Operators whose output has the shape of the one input that is not a scalar: the unary ones
 * above, and arithmetic with scalars. */
static bool keeps_shape_with_scalars(const kl_node *n) {
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Cos",
                                      "Sin", NULL};
    if (*n->domain || n->dead || n->n_outputs < 1 || !n->outputs[0]) return false;
    if (keeps_input_shape(n)) return true;
    for (int i = 0; ops[i]; i++)
        if (!strcmp(n->op_type, ops[i])) return true;
    return false;
}

/* x is a scalar: rank 0, inferred now where it was not yet. */
static bool is_scalar(kl_graph *g, kl_value *x) {
    kl_diag scratch;
    kl_diag_init(&scratch, NULL);
    bool ok = infer_upstream(g, x, 0, &scratch) && x->has_shape && x->shape.rank == 0;
    kl_diag_free(&scratch);
    return ok;
}

/* The shape the model declares for a value that y becomes through operators that keep its
 * shape, whose other operands are scalars or values of y's shape themselves: what a window
 * function's expansion does with a Range of run-time length on its way to the declared
 * output. Values are marked as they are found to have y's shape, in the graph's (topological)
 * order. false: none found. */
static bool shape_from_consumers(kl_graph *g, kl_value *y, kl_shape *s) {
    bool *same = kl_alloc_array(g->arena, (size_t)g->values.n + 1, sizeof *same);
    same[y->id] = true;
    int at = y->producer ? y->producer->id + 1 : 0;
    for (int i = at; i < g->nodes.n; i++) {
        kl_node *c = g->nodes.items[i];
        if (!keeps_shape_with_scalars(c)) continue;
        bool reads = false, ok = true;
        for (int k = 0; ok && k < c->n_inputs; k++) {
            kl_value *x = c->inputs[k];
            if (!x) continue;
            if (same[x->id]) reads = true;
            else ok = is_scalar(g, x);
        }
        if (!reads || !ok) continue;
        kl_value *z = c->outputs[0];
        if (z->shape_declared && z->shape.rank >= y->shape.rank) {
            *s = z->shape;
            return true;
        }
        same[z->id] = true;
    }
    return false;
}

/* n's operator infers its outputs; when that fails for want of a declared shape of output 0
 * (a shape operand given at run time), a shape found downstream (shape_from_consumers) is
 * declared and inference tried again, which then checks the operand against it at run time.
 * When none is found, it is tried again with output 0 marked none_declared: an operator that
 * can make that length depend on the data does so then (its message otherwise). */
static bool infer_op(kl_graph *g, kl_node *n, kl_diag *d) {
    kl_diag first;
    kl_diag_init(&first, d->file);
    if (n->op->infer(n, &first)) return true;
    kl_value *y = n->outputs[0];
    kl_shape s;
    bool found = false;
    if (!y->shape_declared && !y->has_shape && y->output_index < 0 && !g->looking_downstream) {
        g->looking_downstream = true; /* the others' operands may come from y: no second search */
        found = shape_from_consumers(g, y, &s);
        g->looking_downstream = false;
    }
    if (found) {
        y->shape = s;
        y->shape_declared = true;
        kl_diag_free(&first);
        return n->op->infer(n, d);
    }
    if (!y->shape_declared && !y->has_shape && !y->none_declared && !g->looking_downstream) {
        y->none_declared = true;
        kl_diag second;
        kl_diag_init(&second, d->file);
        if (n->op->infer(n, &second)) {
            kl_diag_free(&first);
            kl_diag_free(&second);
            return true;
        }
        kl_diag_free(&second);
    }
    kl_diag_take(d, &first);
    return false;
}

static bool infer_node(kl_graph *g, kl_node *n, kl_diag *d) {
    /* every operator kiln has defines output 0 (later outputs may be optional); checked once
       here, so that no operator reads an omitted one */
    if ((n->n_outputs < 1 || !n->outputs[0]) && !n->op->out0_optional)
        return kl_error(d, n, "output 0 is missing (the operator requires it)");
    if (n->n_outputs < 1 || !n->outputs[0]) { /* omitted where allowed: an unread value */
        kl_shape none = {0};
        kl_node_set_output(g, n, 0, kl_value_make(g, kl_sprintf(g->arena, "%s_out0", n->name),
                                                  KL_UNDEFINED, &none, NULL));
    }
    for (int i = 0; i < n->n_inputs; i++) {
        const kl_value *x = n->inputs[i];
        if (x && x->compound)
            return kl_error(d, n, "input '%s' is %s; %s takes tensors (kiln compiles sequences "
                            "and optionals away: only their operators read them)", x->name,
                            x->compound->optional ? "an optional" : "a sequence", n->op_type);
        if (x && !x->has_shape)
            return kl_error(d, n, "input '%s' has no known shape", x->name);
    }
    if (!infer_op(g, n, d)) {
        if (!kl_diag_failed(d)) kl_error(d, n, "shape inference failed");
        return false;
    }
    if (!kl_follow_data_dependent(n, d)) return false;
    bool all_const;
    int64_t elements;
    if (!outputs_known(g->arena, n, &all_const, &elements, d)) return false;
    if (!all_const && all_inputs_constant(n) && elements <= FOLD_MAX_ELEMENTS && n->op->lower)
        return kl_guard_state(n->guard) == 0 ? fold_guarded(g, n, d) : kl_fold_node(g, n, d);
    return true;
}

/* The nodes computing v, inferred (and folded) ahead of the pass, deepest first; a sequence's
 * operators settled (ops/sequence.c: the nodes a settle adds go after the others, and the
 * loader's topological sort puts them in place). */
static bool infer_upstream(kl_graph *g, kl_value *v, int depth, kl_diag *d) {
    if (!v || v->has_shape || v->data || v->compound) return true;
    kl_node *n = v->producer;
    if (!n || n->dead || n->guard || depth > 4096) return false;
    for (int i = 0; i < n->n_inputs; i++)
        if (!infer_upstream(g, n->inputs[i], depth + 1, d)) return false;
    if (!n->op) n->op = kl_op_find(n->domain, n->op_type, n->opset);
    if (n->op && n->op->settle) {
        if (!n->op->settle(g, n, d)) return false;
        if (v->producer != n) return infer_upstream(g, v, depth + 1, d); /* a replacement */
        return v->compound || v->has_shape;
    }
    return n->op && infer_node(g, n, d) && v->has_shape;
}

bool kl_infer_value_now(kl_graph *g, kl_value *v, kl_diag *d) {
    return infer_upstream(g, v, 0, d);
}

/* A value n reads that no node computed, because a left-out branch is known by now to be taken
 * whatever the inputs (a Loop whose constant condition ends it before its scan outputs are
 * complete): that branch's reason is the error, not the missing shape it leads to. */
static bool left_out_for_sure(const kl_graph *g, const kl_node *n, kl_diag *d) {
    for (int i = 0; i < n->n_inputs; i++) {
        if (!n->inputs[i] || n->inputs[i]->has_shape) continue;
        for (int k = 0; k < g->broken_guards.n; k++) {
            const kl_guard *gd = g->broken_guards.items[k];
            if (kl_guard_state(gd) == 1) {
                kl_error(d, NULL, "%s", gd->broken);
                return true;
            }
        }
    }
    return false;
}

/* A declared output shape holds also for the value a chain of shape-keeping operators takes
 * it from (ReduceL2's expansion: ReduceSum -> Sqrt -> CastLike -> output), so that a shape
 * operand given at run time there can be checked against it (ops/shape_check.c). */
static void declare_back_through_unary(kl_graph *g) {
    for (int o = 0; o < g->outputs.n; o++) {
        const kl_value *y = g->outputs.items[o];
        if (!y->shape_declared) continue;
        for (kl_node *p = y->producer; p && !p->dead && keeps_input_shape(p);) {
            kl_value *x = p->inputs[0];
            if (!x || x->data || x->input_index >= 0 || x->shape_declared || x->n_uses != 1 ||
                !x->producer)
                break;
            x->shape = y->shape;
            x->shape_declared = true;
            p = x->producer;
        }
    }
}

/* Nodes a settle step appended (positions from..end) move to position `at`, before the node
 * settled, so that the loop infers them next and in order; ids follow positions again. */
static void bring_forward(kl_graph *g, int at, int from) {
    int added = g->nodes.n - from;
    if (added <= 0) return;
    void **items = g->nodes.items;
    void **moved = kl_alloc_array(g->arena, (size_t)added, sizeof *moved);
    memcpy(moved, items + from, (size_t)added * sizeof *moved);
    memmove(items + at + added, items + at, (size_t)(from - at) * sizeof *items);
    memcpy(items + at, moved, (size_t)added * sizeof *moved);
    for (int i = at; i < g->nodes.n; i++) ((kl_node *)items[i])->id = i;
}

/* Sequences and optionals (ops/sequence.c): an operator of theirs, or an If or Identity
 * carrying them, is settled before inference; *again: n was replaced, and position i must be
 * visited anew. */
static bool settle_compound(kl_graph *g, kl_node *n, int i, bool *again, kl_diag *d) {
    int before = g->nodes.n;
    *again = false;
    /* a node of a branch chosen at run time that cannot be settled leaves its branch out, as
       one that cannot be inferred does (infer_guarded) */
    bool guarded = kl_guard_state(n->guard) == 0;
    kl_diag scratch;
    kl_diag_init(&scratch, d->file);
    kl_diag *to = guarded ? &scratch : d;
    bool ok = n->op->settle ? n->op->settle(g, n, to) : kl_sequence_settle_carrier(g, n, to);
    if (!ok && guarded) leave_out_branch(g, n, &scratch);
    kl_diag_free(&scratch);
    if (!ok && !guarded) return false;
    *again = n->dead;
    bring_forward(g, i, before);
    return true;
}

/* Nodes from position `from` on, in order. */
static bool infer_nodes(kl_graph *g, int from, kl_diag *d) {
    for (int i = from; i < g->nodes.n; i++) {
        kl_node *n = g->nodes.items[i];
        if (n->dead) continue;
        /* a branch its If's (folded) condition rules out, or one left out: never computed */
        int state = kl_guard_state(n->guard);
        if (state < 0 || kl_guard_broken(n->guard)) {
            kl_node_kill(n);
            continue;
        }
        bool again;
        if (!settle_compound(g, n, i, &again, d)) return false;
        if (again) {
            i--;
            continue;
        }
        if (!strcmp(n->op_type, "If") && !*n->domain && !kl_if_settle(g, n, d)) return false;
        if (left_out_for_sure(g, n, d)) return false;
        if (!(state == 0 ? infer_guarded(g, n, d) : infer_node(g, n, d))) return false;
    }
    return true;
}

bool pass_infer_shapes(kl_graph *g, kl_diag *d) {
    declare_back_through_unary(g);
    if (!infer_nodes(g, 0, d)) return false;
    /* sequence and optional outputs become their tensors (passes/seqio.c); the nodes that
       makes (a pending split's pieces, an Identity a tensor) are inferred in turn */
    int before = g->nodes.n;
    return kl_flatten_compound_outputs(g, d) && infer_nodes(g, before, d);
}

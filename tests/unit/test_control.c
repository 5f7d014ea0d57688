/*
 * test_control.c — If with its branches inlined under guards (the form the loader makes): the
 * kernels of the branch not taken are skipped, fusion keeps work under its guard, a folded
 * condition keeps one branch, and a branch that cannot be compiled becomes a run-time error.
 *
 * The graphs are y = If(c, then: Gather(x, [k]), else: Gather(x, [0])) over x float[4] with c a
 * run-time input. The interpreter (the reference every back end agrees with) fails on an index
 * out of range, which is how a skipped kernel shows.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph_fixture.h"

typedef struct if_graph {
    fixture f;
    kl_value *c, *x, *i, *y;
    kl_guard on_true, on_false;
} if_graph;

/* The If node choosing between a (then) and b (else). */
static void add_if(if_graph *t, kl_value *a, kl_value *b) {
    kl_value *in[3] = {t->c, a, b};
    t->y = node(&t->f, "If", 13, 3, in, 1)->outputs[0];
}

static kl_value *guarded(if_graph *t, const char *op, kl_value *a, kl_value *b, kl_guard *g) {
    kl_value *in[2] = {a, b};
    kl_node *n = inner_node(&t->f, op, 13, 2, in, 1);
    n->guard = g;
    return n->outputs[0];
}

/* then: Gather(x, [then_index]) (a constant index: read as it is, never clamped) */
static void build(if_graph *t, const bool *constant_cond, int64_t then_index) {
    t->f = fx();
    kl_shape scalar = {0}, four = {1, {4}}, one = {1, {1}};
    t->c = constant_cond ? constant(&t->f, "c", KL_BOOL, scalar, constant_cond)
                         : input(&t->f, "c", KL_BOOL, scalar);
    t->x = input(&t->f, "x", KL_F32, four);
    t->i = input(&t->f, "i", KL_I64, one);
    static const int64_t zero[1] = {0};
    kl_value *k0 = constant(&t->f, "k0", KL_I64, one, zero);
    int64_t *ti = kl_alloc(t->f.a, sizeof *ti);
    *ti = then_index;
    kl_value *kt = constant(&t->f, "kt", KL_I64, one, ti);
    t->on_true = (kl_guard){t->c, true, NULL, NULL};
    t->on_false = (kl_guard){t->c, false, NULL, NULL};
    kl_value *a = guarded(t, "Gather", t->x, kt, &t->on_true);
    kl_value *b = guarded(t, "Gather", t->x, k0, &t->on_false);
    add_if(t, a, b);
}

/* Memory for every buffer (inputs from the arguments), the program interpreted: whether it ran,
 * with y's value in *y. */
static bool run(kl_program *p, bool c, int64_t i, float *y, kl_diag *d) {
    static const float x[4] = {10, 11, 12, 13};
    for (int k = 0; k < p->buffers.n; k++) {
        kl_buffer *b = p->buffers.items[k];
        if (b->view_of) continue;
        b->host = b->kind == KL_BUF_CONST ? (void *)b->data
                                          : kl_alloc(p->arena, (size_t)kl_buffer_bytes(b) + 1);
        if (b->kind != KL_BUF_INPUT) continue;
        const void *from = !strcmp(b->name, "c") ? (const void *)&c
                         : !strcmp(b->name, "x") ? (const void *)x
                                                 : (const void *)&i;
        memcpy(b->host, from, (size_t)kl_buffer_bytes(b));
    }
    bool ok = kl_interp_program(p, d);
    kl_buffer *out = p->outputs.items[0];
    *y = *(float *)kl_buffer_root(out)->host;
    return ok;
}

static kl_program *compile(if_graph *t) {
    cr_assert(run_passes(&t->f), "%s", t->f.d.text);
    kl_program *p = kl_lower_graph(t->f.a, t->f.g, &t->f.d);
    cr_assert(p, "%s", t->f.d.text);
    kl_kernel_opts o = {.target = kl_target_default(), .optimize_for = KL_FOR_SPEED};
    cr_assert(kpass_fuse(p, &o, &t->f.d));
    return p;
}

/* y[0] = x[7] over x[4], guarded by c: the interpreter fails on the read, unless skipped */
Test(control, guarded_kernel_is_skipped) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_shape one = {1, {1}}, four = {1, {4}}, scalar = {0};
    kl_buffer *c = kl_program_buffer(p, "c", KL_BUF_WORKSPACE, KL_BOOL, &scalar);
    kl_buffer *x = kl_program_buffer(p, "x", KL_BUF_WORKSPACE, KL_F32, &four);
    kl_buffer *y = kl_program_buffer(p, "y", KL_BUF_WORKSPACE, KL_F32, &one);
    bool cond = false;
    float xs[4] = {1, 2, 3, 4}, ys[1] = {-1};
    c->host = &cond;
    x->host = xs;
    y->host = ys;
    kl_kernel *k = kl_kernel_new(p, NULL, "bad_read");
    k->n_loops = k->n_par = 1;
    k->extent[0] = 1;
    kl_expr *at = kl_e_addc(a, kl_e_iv(a, 0), 7);
    k->value = kl_e_load(a, x, &at);
    k->out = y;
    k->out_idx = kl_alloc_array(a, 1, sizeof *k->out_idx);
    k->out_idx[0] = kl_e_iv(a, 0);
    kl_kernel_guard g = {c, true, NULL};
    k->guard = &g;
    kl_program_add_kernel(p, k);
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_expect(kl_interp_program(p, &d), "%s", d.text);
    cr_expect_eq(ys[0], -1.0f);
    cond = true;
    cr_expect_not(kl_interp_program(p, &d));
    cr_expect(d.text && strstr(d.text, "index out of range"), "%s", d.text ? d.text : "");
    kl_diag_free(&d);
    kl_arena_free(a);
}

/* Gather's constant index 7 fails inference: the then-branch is left out, and taking it is an
 * error at run time, not at compile time. */
Test(control, branch_failing_inference_is_left_out) {
    if_graph t;
    build(&t, NULL, 7);
    kl_program *p = compile(&t);
    cr_assert_eq(p->traps.n, 1);
    float y = 0;
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_expect(run(p, false, 0, &y, &d), "%s", d.text);
    cr_expect_eq(y, 10.0f);
    cr_expect_not(run(p, true, 0, &y, &d));
    cr_expect(d.text && strstr(d.text, "index 7 is out of range"), "%s", d.text ? d.text : "");
    kl_diag_free(&d);
    done(&t.f);
}

Test(control, fusion_keeps_work_under_its_guard) {
    if_graph t;
    build(&t, NULL, 2);
    kl_program *p = compile(&t);
    float y = 0;
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_expect(run(p, true, 0, &y, &d), "%s", d.text);
    cr_expect_eq(y, 12.0f);
    kl_diag_free(&d);
    kl_buffer *x = NULL;
    for (int k = 0; k < p->buffers.n; k++) {
        kl_buffer *b = p->buffers.items[k];
        if (b->kind == KL_BUF_INPUT && !strcmp(b->name, "x")) x = b;
    }
    cr_assert(x);
    int unguarded = 0;
    for (int k = 0; k < p->kernels.n; k++) {
        const kl_kernel *kn = p->kernels.items[k];
        if (kn->guard) {
            cr_expect(kl_buffer_root(kn->guard->cond)->kind == KL_BUF_INPUT);
            continue;
        }
        unguarded++; /* the select: it reads the branches' results, never x itself */
        cr_expect_not(kl_kernel_reads(kn, x), "kernel %s reads x unguarded", kn->name);
    }
    cr_expect_eq(unguarded, 1);
    done(&t.f);
}

Test(control, constant_condition_keeps_one_branch) {
    static const bool yes = true;
    if_graph t;
    build(&t, &yes, 3);
    kl_program *p = compile(&t);
    for (int k = 0; k < p->kernels.n; k++)
        cr_expect_null(((const kl_kernel *)p->kernels.items[k])->guard);
    cr_expect_eq(p->traps.n, 0);
    float y = 0;
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_expect(run(p, false, 3, &y, &d), "%s", d.text); /* c is the constant, not the input */
    cr_expect_eq(y, 13.0f);
    kl_diag_free(&d);
    done(&t.f);
}

/* else: Add(x[4], w[3]) fails shape inference: the branch is left out, and taking it is a
 * run-time error (KILN_E_UNCOMPILED_BRANCH in the generated code). */
Test(control, branch_that_cannot_compile_is_a_runtime_error) {
    if_graph t;
    t.f = fx();
    kl_shape scalar = {0}, four = {1, {4}}, three = {1, {3}};
    static const float w[3] = {1, 2, 3};
    t.c = input(&t.f, "c", KL_BOOL, scalar);
    t.x = input(&t.f, "x", KL_F32, four);
    t.i = input(&t.f, "i", KL_I64, (kl_shape){1, {1}});
    kl_value *wv = constant(&t.f, "w", KL_F32, three, w);
    t.on_true = (kl_guard){t.c, true, NULL, NULL};
    t.on_false = (kl_guard){t.c, false, NULL, NULL};
    kl_value *a = guarded(&t, "Add", t.x, t.x, &t.on_true);
    kl_value *b = guarded(&t, "Add", t.x, wv, &t.on_false);
    add_if(&t, a, b);
    kl_program *p = compile(&t);
    cr_assert_eq(p->traps.n, 1);
    cr_expect(strstr(((const kl_trap *)p->traps.items[0])->why, "Add"));
    float y = 0;
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_expect(run(p, true, 0, &y, &d), "%s", d.text);
    cr_expect_eq(y, 20.0f);
    cr_expect_not(run(p, false, 0, &y, &d));
    cr_expect(d.text && strstr(d.text, "left out"), "%s", d.text ? d.text : "");
    kl_diag_free(&d);
    done(&t.f);
}

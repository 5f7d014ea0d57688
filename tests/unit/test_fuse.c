/*
 * test_fuse.c — the fuse pass on hand-built programs: what merges, what must not, and that
 * the merged program computes exactly what the separate kernels did (kernel interpreter).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kl.h"

typedef struct prog {
    kl_arena *a;
    kl_program *p;
} prog;

static prog new_prog(void) {
    prog g;
    g.a = kl_arena_new();
    g.p = kl_program_new(g.a);
    return g;
}

static kl_shape shape2(int64_t a, int64_t b) { return (kl_shape){.rank = 2, .dim = {a, b}}; }

static kl_buffer *buf(prog *g, const char *name, kl_buffer_kind kind, kl_shape s) {
    kl_buffer *b = kl_program_buffer(g->p, name, kind, KL_F32, &s);
    float *data = kl_alloc(g->a, (size_t)kl_shape_numel(&s) * sizeof *data);
    for (int64_t i = 0; i < kl_shape_numel(&s); i++) data[i] = (float)((i * 37 + b->id * 11) % 19) / 7.0f - 1.2f;
    b->host = data;
    if (kind == KL_BUF_CONST) b->data = data;
    if (kind == KL_BUF_INPUT) {
        b->index = g->p->inputs.n;
        kl_ptrvec_push(g->a, &g->p->inputs, b);
    }
    if (kind == KL_BUF_OUTPUT) {
        b->index = g->p->outputs.n;
        kl_ptrvec_push(g->a, &g->p->outputs, b);
    }
    return b;
}

static kl_expr **ivs(prog *g, int n) {
    kl_expr **v = kl_alloc_array(g->a, (size_t)n, sizeof *v);
    for (int i = 0; i < n; i++) v[i] = kl_e_iv(g->a, i);
    return v;
}

/* out[i, j] = f(loads) over out's dims */
static kl_kernel *elementwise(prog *g, kl_buffer *out, kl_expr *value) {
    kl_kernel *k = kl_kernel_new(g->p, NULL, "ew");
    k->n_loops = k->n_par = 2;
    k->extent[0] = out->shape.dim[0];
    k->extent[1] = out->shape.dim[1];
    k->out = out;
    k->out_idx = ivs(g, 2);
    k->value = value;
    kl_program_add_kernel(g->p, k);
    return k;
}

/* y[i, j] = sum_k a[i, k] * w[k, j] + b[j] */
static kl_kernel *matmul(prog *g, kl_buffer *a, kl_buffer *w, kl_buffer *b, kl_buffer *y) {
    kl_kernel *k = kl_kernel_new(g->p, NULL, "mm");
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = y->shape.dim[0];
    k->extent[1] = y->shape.dim[1];
    k->extent[2] = a->shape.dim[1];
    kl_expr *ai[2] = {kl_e_iv(g->a, 0), kl_e_iv(g->a, 2)}, *wi[2] = {kl_e_iv(g->a, 2), kl_e_iv(g->a, 1)};
    k->value = kl_e_binary(g->a, KL_MUL, kl_e_load(g->a, a, ai), kl_e_load(g->a, w, wi));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F32;
    kl_expr *bi[1] = {kl_e_iv(g->a, 1)};
    k->result = kl_e_binary(g->a, KL_ADD, kl_e_acc(g->a, KL_F32), kl_e_load(g->a, b, bi));
    k->out = y;
    k->out_idx = ivs(g, 2);
    kl_program_add_kernel(g->p, k);
    return k;
}

static kl_expr *at(prog *g, kl_buffer *b) { return kl_e_load(g->a, b, ivs(g, 2)); }

static float *run(prog *g, kl_buffer *out) {
    for (int i = 0; i < g->p->buffers.n; i++) {
        kl_buffer *b = g->p->buffers.items[i];
        if (b->kind == KL_BUF_WORKSPACE || b->kind == KL_BUF_OUTPUT)
            memset(b->host, 0, (size_t)kl_buffer_bytes(b));
    }
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_interp_program(g->p, &d));
    kl_diag_free(&d);
    int64_t n = kl_shape_numel(&out->shape);
    float *copy = kl_alloc(g->a, (size_t)n * sizeof *copy);
    memcpy(copy, out->host, (size_t)n * sizeof *copy);
    return copy;
}

static void fuse(prog *g) {
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kpass_fuse(g->p, &(kl_kernel_opts){kl_target_default(), KL_MICRO_AUTO}, &d));
    kl_diag_free(&d);
}

static void same(const float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) cr_assert_float_eq(x[i], y[i], 1e-6, "element %lld", (long long)i);
}

/* matmul -> add residual -> relu: one kernel, same numbers. */
Test(fuse, epilogue_chain) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(3, 4));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(4, 5));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {5}});
    kl_buffer *r = buf(&g, "r", KL_BUF_INPUT, shape2(3, 5));
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(3, 5));
    kl_buffer *s = buf(&g, "s", KL_BUF_WORKSPACE, shape2(3, 5));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(3, 5));
    matmul(&g, a, w, b, y);
    elementwise(&g, s, kl_e_binary(g.a, KL_ADD, at(&g, y), at(&g, r)));
    elementwise(&g, o, kl_e_binary(g.a, KL_MAX, at(&g, s), kl_e_const_f(g.a, KL_F32, 0)));
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 1);
    const kl_kernel *k = g.p->kernels.items[0];
    cr_assert_eq(k->out, o);
    same(run(&g, o), want, 15);
    kl_arena_free(g.a);
}

/* x * sigmoid(x): the sigmoid kernel is inlined into the product, which becomes an epilogue. */
Test(fuse, swish_inlined_then_epilogue) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(2, 3));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(3, 6));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {6}});
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(2, 6));
    kl_buffer *s = buf(&g, "s", KL_BUF_WORKSPACE, shape2(2, 6));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(2, 6));
    matmul(&g, a, w, b, y);
    elementwise(&g, s, kl_e_unary(g.a, KL_SIGMOID, at(&g, y)));
    elementwise(&g, o, kl_e_binary(g.a, KL_MUL, at(&g, y), at(&g, s)));
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 1);
    same(run(&g, o), want, 12);
    kl_arena_free(g.a);
}

/* Two readers of the matmul's output: it stays a buffer; the readers stay correct. */
Test(fuse, shared_result_stays) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(2, 3));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(3, 4));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {4}});
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(2, 4));
    kl_buffer *o1 = buf(&g, "o1", KL_BUF_OUTPUT, shape2(2, 4));
    kl_buffer *o2 = buf(&g, "o2", KL_BUF_OUTPUT, shape2(2, 4));
    matmul(&g, a, w, b, y);
    elementwise(&g, o1, kl_e_unary(g.a, KL_EXP, at(&g, y)));
    elementwise(&g, o2, kl_e_unary(g.a, KL_TANH, at(&g, y)));
    float *want1 = run(&g, o1), *want2 = run(&g, o2);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 3);
    float *got1 = run(&g, o1), *got2 = run(&g, o2);
    same(got1, want1, 8);
    same(got2, want2, 8);
    kl_arena_free(g.a);
}

/* A consumer reading the result transposed is not an epilogue (it needs other elements). */
Test(fuse, transposed_reader_is_not_an_epilogue) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(3, 3));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(3, 3));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {3}});
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(3, 3));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(3, 3));
    matmul(&g, a, w, b, y);
    kl_expr *ti[2] = {kl_e_iv(g.a, 1), kl_e_iv(g.a, 0)};
    elementwise(&g, o, kl_e_unary(g.a, KL_NEG, kl_e_load(g.a, y, ti)));
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 2);
    same(run(&g, o), want, 9);
    kl_arena_free(g.a);
}

/* Two kernels writing halves of one buffer (a Concat): each half takes the consumer. */
Test(fuse, partial_writers_each_take_the_consumer) {
    prog g = new_prog();
    kl_buffer *x = buf(&g, "x", KL_BUF_INPUT, shape2(2, 2));
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(2, 4));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(2, 4));
    for (int half = 0; half < 2; half++) {
        kl_kernel *k = kl_kernel_new(g.p, NULL, "part");
        k->n_loops = k->n_par = 2;
        k->extent[0] = 2;
        k->extent[1] = 2;
        k->out = y;
        k->out_idx = kl_alloc_array(g.a, 2, sizeof *k->out_idx);
        k->out_idx[0] = kl_e_iv(g.a, 0);
        k->out_idx[1] = kl_e_addc(g.a, kl_e_iv(g.a, 1), 2 * half);
        k->value = kl_e_binary(g.a, KL_MUL, at(&g, x), kl_e_const_f(g.a, KL_F32, half + 2.0));
        kl_program_add_kernel(g.p, k);
    }
    elementwise(&g, o, kl_e_unary(g.a, KL_ABS, at(&g, y)));
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 2);
    for (int i = 0; i < 2; i++) cr_expect_eq(((kl_kernel *)g.p->kernels.items[i])->out, o);
    same(run(&g, o), want, 8);
    kl_arena_free(g.a);
}

/* y[i, 2j + phase] = sum_k a[i, k] * w[k, j] (+ phase): two reductions writing the even and
 * the odd columns, as ConvTranspose's phases do. */
static void phase_matmuls(prog *g, kl_buffer *a, kl_buffer *w, kl_buffer *y) {
    for (int phase = 0; phase < 2; phase++) {
        kl_kernel *k = kl_kernel_new(g->p, NULL, "phase");
        k->n_par = 2;
        k->n_loops = 3;
        k->extent[0] = y->shape.dim[0];
        k->extent[1] = y->shape.dim[1] / 2;
        k->extent[2] = a->shape.dim[1];
        kl_expr *ai[2] = {kl_e_iv(g->a, 0), kl_e_iv(g->a, 2)};
        kl_expr *wi[2] = {kl_e_iv(g->a, 2), kl_e_iv(g->a, 1)};
        k->value = kl_e_binary(g->a, KL_MUL, kl_e_load(g->a, a, ai), kl_e_load(g->a, w, wi));
        k->reduce = KL_RED_SUM;
        k->acc_dtype = KL_F32;
        k->init = kl_e_const_f(g->a, KL_F32, phase);
        k->out = y;
        k->out_idx = kl_alloc_array(g->a, 2, sizeof *k->out_idx);
        k->out_idx[0] = kl_e_iv(g->a, 0);
        k->out_idx[1] = kl_e_addc(g->a, kl_e_mulc(g->a, kl_e_iv(g->a, 1), 2), phase);
        kl_program_add_kernel(g->p, k);
    }
}

/* Phases -> Relu with a residual: both phases take it, each at its own columns. */
Test(fuse, phases_each_take_the_epilogue) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(3, 4));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(4, 3));
    kl_buffer *r = buf(&g, "r", KL_BUF_INPUT, shape2(3, 6));
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(3, 6));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(3, 6));
    phase_matmuls(&g, a, w, y);
    elementwise(&g, o, kl_e_binary(g.a, KL_MAX, kl_e_binary(g.a, KL_ADD, at(&g, y), at(&g, r)),
                                   kl_e_const_f(g.a, KL_F32, 0)));
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 2);
    for (int i = 0; i < 2; i++) cr_expect_eq(((kl_kernel *)g.p->kernels.items[i])->out, o);
    same(run(&g, o), want, 18);
    kl_arena_free(g.a);
}

/* A kernel between the phases reads what the first wrote: the buffer must stay. */
Test(fuse, reader_between_phases_keeps_the_buffer) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(2, 3));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(3, 2));
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(2, 4));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(2, 4));
    kl_buffer *o2 = buf(&g, "o2", KL_BUF_OUTPUT, shape2(2, 4));
    phase_matmuls(&g, a, w, y);
    kl_kernel *peek = elementwise(&g, o2, kl_e_unary(g.a, KL_NEG, at(&g, y)));
    /* move the reader between the two phases */
    g.p->kernels.items[2] = g.p->kernels.items[1];
    g.p->kernels.items[1] = peek;
    elementwise(&g, o, kl_e_unary(g.a, KL_ABS, at(&g, y)));
    float *want = run(&g, o), *want2 = run(&g, o2);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 4);
    same(run(&g, o), want, 8);
    same(run(&g, o2), want2, 8);
    kl_arena_free(g.a);
}

/* The consumer reads a buffer that a kernel between producer and consumer writes: moving the
 * consumer up would read it too early. */
Test(fuse, operand_written_in_between) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(2, 3));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(3, 2));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {2}});
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(2, 2));
    kl_buffer *z = buf(&g, "z", KL_BUF_WORKSPACE, shape2(2, 2));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(2, 2));
    matmul(&g, a, w, b, y);
    matmul(&g, a, w, b, z); /* z is written after y */
    elementwise(&g, o, kl_e_binary(g.a, KL_SUB, at(&g, y), at(&g, z)));
    float *want = run(&g, o);
    fuse(&g);
    /* the subtraction may join z's kernel (it reads y, written before) but not y's */
    cr_assert_eq(g.p->kernels.n, 2);
    const kl_kernel *first = g.p->kernels.items[0];
    cr_assert_eq(first->out, y);
    same(run(&g, o), want, 4);
    kl_arena_free(g.a);
}

/* Concat: two matmuls each copied into one half of the output. The copies become the
 * matmuls writing their halves directly. */
Test(fuse, concat_copies_become_slices) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(3, 4));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(4, 5));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {5}});
    kl_buffer *y1 = buf(&g, "y1", KL_BUF_WORKSPACE, shape2(3, 5));
    kl_buffer *y2 = buf(&g, "y2", KL_BUF_WORKSPACE, shape2(3, 5));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(3, 10));
    matmul(&g, a, w, b, y1);
    matmul(&g, a, w, b, y2);
    for (int half = 0; half < 2; half++) {
        kl_kernel *k = kl_kernel_new(g.p, NULL, "concat");
        k->n_loops = k->n_par = 2;
        k->extent[0] = 3;
        k->extent[1] = 5;
        k->out = o;
        k->out_idx = kl_alloc_array(g.a, 2, sizeof *k->out_idx);
        k->out_idx[0] = kl_e_iv(g.a, 0);
        k->out_idx[1] = kl_e_addc(g.a, kl_e_iv(g.a, 1), 5 * half);
        k->value = kl_e_unary(g.a, KL_NEG, at(&g, half ? y2 : y1));
        kl_program_add_kernel(g.p, k);
    }
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 2);
    for (int i = 0; i < 2; i++) cr_assert_eq(((kl_kernel *)g.p->kernels.items[i])->out, o);
    same(run(&g, o), want, 30);
    kl_arena_free(g.a);
}

/* Phases -> Sigmoid (a runtime call): the phases may stay unvectorized, where a call per point
 * costs more than its own pass, so the Sigmoid keeps its kernel. */
Test(fuse, phases_leave_a_runtime_call_alone) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(2, 3));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(3, 2));
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(2, 4));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, shape2(2, 4));
    phase_matmuls(&g, a, w, y);
    elementwise(&g, o, kl_e_unary(g.a, KL_SIGMOID, at(&g, y)));
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 3);
    same(run(&g, o), want, 8);
    kl_arena_free(g.a);
}

/* A consumer that stores into a row of a buffer of higher rank (a recurrence writing step s of
 * its state [steps, rows, cols]) becomes the matmul's epilogue with every index of its own
 * output kept: the row index is not dropped. */
Test(fuse, epilogue_into_higher_rank_output) {
    prog g = new_prog();
    kl_buffer *a = buf(&g, "a", KL_BUF_INPUT, shape2(3, 4));
    kl_buffer *w = buf(&g, "w", KL_BUF_CONST, shape2(4, 5));
    kl_buffer *b = buf(&g, "b", KL_BUF_CONST, (kl_shape){.rank = 1, .dim = {5}});
    kl_buffer *y = buf(&g, "y", KL_BUF_WORKSPACE, shape2(3, 5));
    kl_buffer *o = buf(&g, "o", KL_BUF_OUTPUT, (kl_shape){.rank = 3, .dim = {2, 3, 5}});
    memset(o->host, 0, (size_t)kl_buffer_bytes(o));
    matmul(&g, a, w, b, y);
    kl_kernel *k = elementwise(&g, o, kl_e_unary(g.a, KL_TANH, at(&g, y)));
    k->extent[0] = 3; /* walks y, not o */
    k->extent[1] = 5;
    k->out_idx = kl_alloc_array(g.a, 3, sizeof *k->out_idx);
    k->out_idx[0] = kl_e_idx(g.a, 1);
    k->out_idx[1] = kl_e_iv(g.a, 0);
    k->out_idx[2] = kl_e_iv(g.a, 1);
    float *want = run(&g, o);
    fuse(&g);
    cr_assert_eq(g.p->kernels.n, 1);
    const kl_kernel *f = g.p->kernels.items[0];
    cr_assert_eq(f->out, o);
    for (int d = 0; d < 3; d++) cr_assert_not_null(f->out_idx[d], "index %d", d);
    cr_assert_eq(f->out_idx[0]->kind, KL_E_CONST);
    cr_assert_eq(f->out_idx[0]->i, 1);
    same(run(&g, o), want, 30);
    kl_arena_free(g.a);
}

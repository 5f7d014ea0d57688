/*
 * test_views.c — lowering of the operators that keep the bytes as they are (Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, Dropout, a Transpose of size-1 dims): their output is a view of
 * the input's storage, a graph output takes its producer's result in place, and a copy is left
 * only where neither is legal. Every program also runs in the interpreter, and the planner must
 * keep a view's storage alive until the view's last reader.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

static kl_node *op1(fixture *f, const char *op, kl_value *x) {
    kl_value *in[1] = {x};
    return inner_node(f, op, 13, 1, in, 1);
}

static kl_value *reshape(fixture *f, kl_value *x, int n, const int64_t *dims) {
    kl_value *in[2] = {x, constant(f, "shape", KL_I64, (kl_shape){1, {n}}, dims)};
    return inner_node(f, "Reshape", 13, 2, in, 1)->outputs[0];
}

static kl_program *lower(fixture *f) {
    cr_assert(run_passes(f), "%s", f->d.text);
    kl_program *p = kl_lower_graph(f->a, f->g, &f->d);
    cr_assert(p, "%s", f->d.text);
    return p;
}

static int kernels_tagged(const kl_program *p, const char *tag) {
    int c = 0;
    for (int i = 0; i < p->kernels.n; i++)
        if (strstr(((kl_kernel *)p->kernels.items[i])->name, tag)) c++;
    return c;
}

/* Interpret with x = 0, 1, 2, ... minus 3 (so Relu has something to do); outputs into out[k]. */
static void run(fixture *f, kl_program *p, float **out) {
    for (int i = 0; i < p->buffers.n; i++) {
        kl_buffer *b = p->buffers.items[i];
        if (b->view_of) continue;
        b->host = kl_alloc(f->a, (size_t)kl_buffer_bytes(b) + 1);
        if (b->kind == KL_BUF_CONST) b->host = (void *)b->data;
        if (b->kind == KL_BUF_INPUT)
            for (int64_t e = 0; e < kl_shape_numel(&b->shape); e++)
                ((float *)b->host)[e] = (float)e - 3;
        if (b->kind == KL_BUF_OUTPUT) out[b->index] = b->host;
    }
    cr_assert(kl_interp_program(p, &f->d), "%s", f->d.text);
}

static void expect_relu_of_ramp(const float *y, int n) {
    for (int i = 0; i < n; i++) cr_expect_eq(y[i], i < 3 ? 0.0f : (float)i - 3, "element %d", i);
}

Test(views, reshape_between_kernels_is_a_view) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){2, {2, 6}});
    kl_value *a = op1(&f, "Relu", x)->outputs[0];
    kl_value *b = reshape(&f, a, 3, (int64_t[]){3, 2, 2});
    kl_value *y = op1(&f, "Neg", op1(&f, "Neg", b)->outputs[0])->outputs[0];
    mark_output(&f, y);
    kl_program *p = lower(&f);
    cr_expect_eq(p->kernels.n, 3); /* Relu, Neg, Neg: no copy */
    cr_expect_eq(kernels_tagged(p, "copy"), 0);
    const kl_kernel *neg = p->kernels.items[1];
    const kl_buffer *read = neg->value->a->buf;
    cr_expect(read->view_of != NULL);
    cr_expect_eq(read->view_of, kl_buffer_root(((kl_kernel *)p->kernels.items[0])->out));
    float *out[1];
    run(&f, p, out);
    expect_relu_of_ramp(out[0], 12);
    done(&f);
}

Test(views, graph_output_takes_the_producer_in_place) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 2}});
    kl_value *a = op1(&f, "Relu", x)->outputs[0];
    kl_value *b = reshape(&f, a, 2, (int64_t[]){6, 2});
    kl_node *sq = op1(&f, "Flatten", b);
    mark_output(&f, sq->outputs[0]);
    kl_program *p = lower(&f);
    cr_assert_eq(p->kernels.n, 1); /* Relu writes the output argument; both views vanish */
    const kl_kernel *relu = p->kernels.items[0];
    cr_expect_eq(kl_buffer_root(relu->out)->kind, KL_BUF_OUTPUT);
    float *out[1];
    run(&f, p, out);
    expect_relu_of_ramp(out[0], 12);
    done(&f);
}

Test(views, input_to_output_stays_a_copy) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){2, {3, 4}});
    mark_output(&f, op1(&f, "Identity", x)->outputs[0]);
    kl_program *p = lower(&f);
    cr_expect_eq(p->kernels.n, 1);
    cr_expect_eq(kernels_tagged(p, "copy"), 1);
    done(&f);
}

/* One intermediate read by two reshapes that are both graph outputs: one takes it in place,
 * the other copies it. */
Test(views, two_outputs_of_one_value) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {12}});
    kl_value *a = op1(&f, "Relu", x)->outputs[0];
    mark_output(&f, reshape(&f, a, 2, (int64_t[]){3, 4}));
    mark_output(&f, reshape(&f, a, 2, (int64_t[]){4, 3}));
    kl_program *p = lower(&f);
    cr_expect_eq(p->kernels.n, 2);
    cr_expect_eq(kernels_tagged(p, "copy"), 1);
    float *out[2];
    run(&f, p, out);
    expect_relu_of_ramp(out[0], 12);
    expect_relu_of_ramp(out[1], 12);
    done(&f);
}

Test(views, transpose_of_size_one_dims_is_a_view) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){4, {1, 1, 1, 12}});
    kl_value *a = op1(&f, "Relu", x)->outputs[0];
    kl_node *t = op1(&f, "Transpose", a);
    attr_ints(&f, t, "perm", 4, (int64_t[]){0, 3, 1, 2});
    kl_node *t2 = op1(&f, "Transpose", op1(&f, "Relu", x)->outputs[0]);
    attr_ints(&f, t2, "perm", 4, (int64_t[]){3, 1, 2, 0});
    kl_value *in[2] = {t->outputs[0], t2->outputs[0]};
    kl_node *sum = inner_node(&f, "Add", 13, 2, in, 1);
    mark_output(&f, sum->outputs[0]);
    kl_program *p = lower(&f);
    /* Relu, Relu, Add: [1,1,1,12] -> [1,12,1,1] and -> [12,1,1,1] keep the order of the 12 */
    cr_expect_eq(p->kernels.n, 3);
    cr_expect_eq(kernels_tagged(p, "transpose"), 0);
    done(&f);
}

Test(views, transpose_that_moves_data_stays_a_kernel) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){2, {3, 4}});
    kl_node *t = op1(&f, "Transpose", op1(&f, "Relu", x)->outputs[0]);
    mark_output(&f, op1(&f, "Neg", t->outputs[0])->outputs[0]);
    kl_program *p = lower(&f);
    cr_expect_eq(kernels_tagged(p, "transpose"), 1);
    done(&f);
}

/* The planner gives a view's storage the lifetime of its last reader: a is read through the
 * reshape by the last kernel, so nothing may be placed over it before then. */
Test(views, planner_keeps_the_root_alive_for_its_views) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {64}});
    kl_value *a = op1(&f, "Relu", x)->outputs[0];
    kl_value *b = reshape(&f, a, 2, (int64_t[]){8, 8});
    kl_value *c = op1(&f, "Exp", x)->outputs[0];
    kl_value *d = op1(&f, "Neg", c)->outputs[0];
    kl_value *d2 = reshape(&f, d, 2, (int64_t[]){8, 8});
    kl_value *in[2] = {b, d2};
    kl_node *sum = inner_node(&f, "Add", 13, 2, in, 1);
    mark_output(&f, sum->outputs[0]);
    kl_program *p = lower(&f);
    cr_assert(kl_plan_memory(p, &f.d));
    const kl_kernel *relu = p->kernels.items[0];
    kl_buffer *ra = kl_buffer_root(relu->out);
    cr_expect_eq(ra->first_kernel, 0);
    cr_expect_eq(ra->last_kernel, p->kernels.n - 1);
    float *out[1];
    run(&f, p, out);
    done(&f);
}

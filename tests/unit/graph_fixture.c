/*
 * graph_fixture.c — see graph_fixture.h.
 */
#include "graph_fixture.h"

#include <criterion/criterion.h>
#include <string.h>

fixture fx(void) {
    fixture f = {.a = kl_arena_new()};
    f.g = kl_graph_new(f.a, "t.onnx");
    kl_diag_init(&f.d, "t.onnx");
    return f;
}

void done(fixture *f) {
    kl_diag_free(&f->d);
    kl_arena_free(f->a);
}

kl_value *input(fixture *f, const char *name, kl_dtype t, kl_shape s) {
    kl_value *v = kl_value_new(f->g, name);
    v->dtype = t;
    v->shape = s;
    v->has_shape = true;
    v->input_index = f->g->inputs.n;
    kl_ptrvec_push(f->a, &f->g->inputs, v);
    return v;
}

kl_value *constant(fixture *f, const char *name, kl_dtype t, kl_shape s, const void *values) {
    kl_value *v = kl_value_new(f->g, name);
    v->dtype = t;
    v->shape = s;
    v->has_shape = true;
    size_t bytes = (size_t)kl_shape_numel(&s) * kl_dtype_size(t);
    void *data = kl_alloc(f->a, bytes + 1);
    memcpy(data, values, bytes);
    v->data = data;
    return v;
}

void mark_output(fixture *f, kl_value *v) {
    v->output_index = f->g->outputs.n;
    kl_ptrvec_push(f->a, &f->g->outputs, v);
}

kl_node *inner_node(fixture *f, const char *op, int opset, int n_in, kl_value **in, int n_out) {
    kl_node *n = kl_node_new(f->g, op, "", opset);
    n->n_inputs = n_in;
    n->inputs = kl_alloc(f->a, sizeof(kl_value *) * (size_t)(n_in + 1));
    for (int i = 0; i < n_in; i++) {
        n->inputs[i] = in[i];
        if (in[i]) in[i]->n_uses++;
    }
    n->n_outputs = n_out;
    n->outputs = kl_alloc(f->a, sizeof(kl_value *) * (size_t)n_out);
    for (int i = 0; i < n_out; i++) {
        n->outputs[i] = kl_value_new(f->g, kl_sprintf(f->a, "%s_%d_y%d", op, n->id, i));
        n->outputs[i]->producer = n;
    }
    return n;
}

kl_node *node(fixture *f, const char *op, int opset, int n_in, kl_value **in, int n_out) {
    kl_node *n = inner_node(f, op, opset, n_in, in, n_out);
    for (int i = 0; i < n_out; i++) mark_output(f, n->outputs[i]);
    return n;
}

kl_attr *attr(fixture *f, kl_node *n, const char *name, kl_attr_type t) {
    kl_attr *old = n->attrs;
    n->attrs = kl_alloc(f->a, sizeof(kl_attr) * (size_t)(n->n_attrs + 1));
    if (old) memcpy(n->attrs, old, sizeof(kl_attr) * (size_t)n->n_attrs);
    kl_attr *at = &n->attrs[n->n_attrs++];
    at->name = name;
    at->type = t;
    return at;
}

void attr_int(fixture *f, kl_node *n, const char *name, int64_t v) {
    attr(f, n, name, KL_ATTR_INT)->i = v;
}

void attr_float(fixture *f, kl_node *n, const char *name, double v) {
    attr(f, n, name, KL_ATTR_FLOAT)->f = v;
}

void attr_ints(fixture *f, kl_node *n, const char *name, int count, const int64_t *v) {
    kl_attr *at = attr(f, n, name, KL_ATTR_INTS);
    at->n = count;
    at->ints = kl_alloc(f->a, sizeof(int64_t) * (size_t)(count + 1));
    memcpy(at->ints, v, sizeof(int64_t) * (size_t)count);
}

void attr_str(fixture *f, kl_node *n, const char *name, const char *s) {
    attr(f, n, name, KL_ATTR_STRING)->s = s;
}

bool run_passes(fixture *f) {
    return pass_resolve_ops(f->g, &f->d) && pass_infer_shapes(f->g, &f->d) &&
           pass_dead_nodes(f->g, &f->d);
}

void expect_shape(const kl_value *v, kl_shape want) {
    cr_expect(kl_shape_equal(&v->shape, &want), "rank %d dims %lld %lld %lld %lld", v->shape.rank,
              (long long)v->shape.dim[0], (long long)v->shape.dim[1], (long long)v->shape.dim[2],
              (long long)v->shape.dim[3]);
}

void expect_error(fixture *f, const char *text) {
    cr_assert_not(run_passes(f));
    cr_expect(strstr(f->d.text, text) != NULL, "%s", f->d.text);
}

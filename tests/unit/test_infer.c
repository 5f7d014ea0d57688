/*
 * test_infer.c — shape inference and constant folding through the real passes and op table,
 * on graphs built by hand.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph_fixture.h"
#include "kl.h"

static kl_value *const_i64(fixture *f, const char *name, int n, const int64_t *vals) {
    return constant(f, name, KL_I64, (kl_shape){1, {n}}, vals);
}

Test(infer, add_broadcasts) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){2, {3, 1}}),
                       input(&f, "b", KL_F32, (kl_shape){3, {2, 1, 4}})};
    kl_node *n = inner_node(&f, "Add", 14, 2, in, 1);
    mark_output(&f, n->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    kl_shape want = {3, {2, 3, 4}};
    cr_expect(kl_shape_equal(&n->outputs[0]->shape, &want));
    cr_expect_eq(n->outputs[0]->dtype, KL_F32);
    kl_arena_free(f.a);
}

Test(infer, incompatible_broadcast_names_node_and_shapes) {
    fixture f = fx();
    kl_value *in[2] = {input(&f, "a", KL_F32, (kl_shape){2, {2, 3}}),
                       input(&f, "b", KL_F32, (kl_shape){2, {4, 5}})};
    kl_node *n = inner_node(&f, "Add", 14, 2, in, 1);
    n->name = "add_bad";
    mark_output(&f, n->outputs[0]);
    cr_expect_not(run_passes(&f));
    cr_expect(strstr(f.d.text, "t.onnx: node 'add_bad' (Add, opset 14)") != NULL, "%s", f.d.text);
    cr_expect(strstr(f.d.text, "[2,3]") && strstr(f.d.text, "[4,5]"), "%s", f.d.text);
    kl_arena_free(f.a);
}

/* The exporter idiom: Shape -> Gather -> Unsqueeze -> Concat -> Reshape must fold to a constant
 * shape at compile time, leaving only the Reshape. */
Test(infer, shape_arithmetic_folds_to_constants) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){3, {2, 3, 4}});
    kl_node *shape = inner_node(&f, "Shape", 13, 1, &x, 1);
    int64_t zero = 0, minus1 = -1, axes0 = 0;
    kl_value *gin[2] = {shape->outputs[0], const_i64(&f, "i0", 1, &zero)};
    gin[1]->shape.rank = 0; /* scalar index: Gather removes the axis */
    kl_node *gather = inner_node(&f, "Gather", 13, 2, gin, 1);
    kl_value *uin[2] = {gather->outputs[0], const_i64(&f, "axes", 1, &axes0)};
    kl_node *unsq = inner_node(&f, "Unsqueeze", 13, 2, uin, 1);
    kl_value *cin[2] = {unsq->outputs[0], const_i64(&f, "m1", 1, &minus1)};
    kl_node *concat = inner_node(&f, "Concat", 13, 2, cin, 1);
    static int64_t axis0 = 0;
    static kl_attr cattr = {.name = "axis", .type = KL_ATTR_INT};
    cattr.i = axis0;
    concat->attrs = &cattr;
    concat->n_attrs = 1;
    kl_value *rin[2] = {x, concat->outputs[0]};
    kl_node *reshape = inner_node(&f, "Reshape", 14, 2, rin, 1);
    mark_output(&f, reshape->outputs[0]);
    cr_assert(run_passes(&f), "%s", f.d.text);
    kl_shape want = {2, {2, 12}};
    cr_expect(kl_shape_equal(&reshape->outputs[0]->shape, &want));
    cr_expect_not_null(concat->outputs[0]->data);
    cr_expect_eq(((int64_t *)concat->outputs[0]->data)[0], 2);
    cr_expect_eq(((int64_t *)concat->outputs[0]->data)[1], -1);
    cr_expect(shape->dead && gather->dead && unsq->dead && concat->dead);
    cr_expect_not(reshape->dead);
    kl_arena_free(f.a);
}

Test(infer, unsupported_operators_are_listed_together) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {4}});
    kl_node *a = inner_node(&f, "FrobnicateA", 13, 1, &x, 1);
    kl_value *ax = a->outputs[0];
    kl_node *b = inner_node(&f, "FrobnicateB", 13, 1, &ax, 1);
    mark_output(&f, b->outputs[0]);
    cr_expect_not(pass_resolve_ops(f.g, &f.d));
    cr_expect_eq(f.d.n_errors, 1);
    cr_expect(strstr(f.d.text, "unsupported operators: FrobnicateA") != NULL, "%s", f.d.text);
    cr_expect(strstr(f.d.text, "FrobnicateB") != NULL, "%s", f.d.text);
    kl_arena_free(f.a);
}

Test(infer, unknown_attribute_is_rejected) {
    fixture f = fx();
    kl_value *x = input(&f, "x", KL_F32, (kl_shape){1, {4}});
    kl_node *n = inner_node(&f, "Relu", 14, 1, &x, 1);
    static kl_attr bogus = {.name = "bogus", .type = KL_ATTR_INT, .i = 1};
    n->attrs = &bogus;
    n->n_attrs = 1;
    mark_output(&f, n->outputs[0]);
    cr_expect_not(pass_resolve_ops(f.g, &f.d));
    cr_expect(strstr(f.d.text, "attribute 'bogus'") != NULL, "%s", f.d.text);
    kl_arena_free(f.a);
}

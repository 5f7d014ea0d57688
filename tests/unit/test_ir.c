/*
 * test_ir.c — graph IR, shapes, diagnostics, names.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kl.h"

Test(shape, broadcast_numpy_rules) {
    kl_shape a = {2, {3, 1}}, b = {3, {2, 1, 4}}, r;
    cr_assert(kl_shape_broadcast(&a, &b, &r));
    cr_expect_eq(r.rank, 3);
    cr_expect_eq(r.dim[0], 2);
    cr_expect_eq(r.dim[1], 3);
    cr_expect_eq(r.dim[2], 4);
    kl_shape c = {2, {2, 3}}, e = {2, {4, 5}};
    cr_expect_not(kl_shape_broadcast(&c, &e, &r));
    kl_shape scalar = {0, {0}};
    cr_assert(kl_shape_broadcast(&scalar, &c, &r));
    cr_expect(kl_shape_equal(&r, &c));
}

Test(shape, zero_sized_dims_broadcast_to_zero) {
    kl_shape a = {2, {0, 3}}, b = {1, {1}}, r;
    cr_assert(kl_shape_broadcast(&a, &b, &r));
    cr_expect_eq(r.dim[0], 0);
    cr_expect_eq(kl_shape_numel(&r), 0);
}

Test(shape, strides_and_axes) {
    kl_shape s = {4, {2, 3, 4, 5}};
    int64_t st[KL_MAX_RANK];
    kl_shape_strides(&s, st);
    cr_expect_eq(st[0], 60);
    cr_expect_eq(st[3], 1);
    int ax;
    cr_expect(kl_axis_normalize(-1, 4, &ax));
    cr_expect_eq(ax, 3);
    cr_expect_not(kl_axis_normalize(4, 4, &ax));
    cr_expect_not(kl_axis_normalize(-5, 4, &ax));
}

Test(graph, attributes_and_optional_inputs) {
    kl_arena *a = kl_arena_new();
    kl_graph *g = kl_graph_new(a, "m.onnx");
    kl_node *n = kl_node_new(g, "Conv", "", 13);
    static int64_t strides[] = {2, 2};
    kl_attr attrs[] = {{.name = "group", .type = KL_ATTR_INT, .i = 4},
                       {.name = "strides", .type = KL_ATTR_INTS, .n = 2, .ints = strides},
                       {.name = "alpha", .type = KL_ATTR_FLOAT, .f = 0.5}};
    n->attrs = attrs;
    n->n_attrs = 3;
    cr_expect_eq(kl_attr_int(n, "group", 1), 4);
    cr_expect_eq(kl_attr_int(n, "absent", 7), 7);
    cr_expect_float_eq(kl_attr_float(n, "alpha", 0), 0.5, 1e-12);
    const int64_t *s;
    cr_expect_eq(kl_attr_ints(n, "strides", &s), 2);
    cr_expect_eq(s[1], 2);
    cr_expect_eq(kl_attr_ints(n, "pads", &s), -1);
    kl_value *x = kl_value_new(g, "x");
    kl_value *in[3] = {x, NULL, NULL};
    n->inputs = in;
    n->n_inputs = 2;
    cr_expect_eq(kl_node_input(n, 0), x);
    cr_expect_null(kl_node_input(n, 1));
    cr_expect_null(kl_node_input(n, 5));
    cr_expect_eq(x->input_index, -1);
    cr_expect_eq(x->id, 0);
    cr_expect_str_eq(n->name, "Conv_0");
    kl_arena_free(a);
}

Test(graph, constant_readers_convert_types) {
    kl_arena *a = kl_arena_new();
    kl_graph *g = kl_graph_new(a, "m.onnx");
    kl_value *v = kl_value_new(g, "c");
    int32_t data[] = {-3, 7};
    v->dtype = KL_I32;
    v->shape = (kl_shape){1, {2}};
    v->data = data;
    cr_expect_eq(kl_value_const_int(v, 0), -3);
    cr_expect_float_eq(kl_value_const_float(v, 1), 7.0, 1e-12);
    cr_expect_eq(kl_value_bytes(v), 8);
    kl_arena_free(a);
}

Test(diag, messages_name_file_node_op_and_opset) {
    kl_arena *a = kl_arena_new();
    kl_graph *g = kl_graph_new(a, "m.onnx");
    kl_node *n = kl_node_new(g, "Reshape", "", 14);
    n->name = "reshape_7";
    kl_diag d;
    kl_diag_init(&d, "models/m.onnx");
    cr_expect_not(kl_error(&d, n, "shape has %d entries", 3));
    cr_expect(kl_diag_failed(&d));
    cr_expect_str_eq(d.text, "models/m.onnx: node 'reshape_7' (Reshape, opset 14): shape has 3 entries\n");
    kl_error(&d, NULL, "second");
    cr_expect_eq(d.n_errors, 2);
    cr_expect(strstr(d.text, "models/m.onnx: second\n") != NULL);
    kl_diag_free(&d);
    kl_arena_free(a);
}

Test(names, c_prefix_from_file_name) {
    kl_arena *a = kl_arena_new();
    cr_expect_str_eq(kl_c_name_from_path(a, "models/ResNet-18.onnx"), "resnet_18");
    cr_expect_str_eq(kl_c_name_from_path(a, "/x/3d.onnx"), "_3d");
    cr_expect_str_eq(kl_c_name_from_path(a, "mnist"), "mnist");
    kl_arena_free(a);
}

Test(arena, zeroed_aligned_and_large_blocks) {
    kl_arena *a = kl_arena_new();
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = kl_alloc(a, (size_t)i + 1);
        cr_assert_eq((uintptr_t)p % 64, 0);
        for (int j = 0; j <= i; j++) cr_assert_eq(p[j], 0);
        p[i] = 0xff;
    }
    unsigned char *big = kl_alloc(a, 8u << 20);
    cr_expect_eq(big[(8u << 20) - 1], 0);
    cr_expect_str_eq(kl_sprintf(a, "%s-%d", "k", 3), "k-3");
    kl_arena_free(a);
}

/*
 * test_loader.c — the ONNX front end: what a model becomes in the graph IR, and every way a
 * broken model is refused (each error message must name the file and, where there is one,
 * the node).
 *
 * Each test builds its model with model_builder, writes it into a fresh temporary folder
 * (Criterion runs every test in its own process) and loads it back.
 */
#define _DEFAULT_SOURCE
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl.h"
#include "model_builder.h"

/* ---- fixture: a temporary folder, an arena and a diagnostic per test ------------------ */

static char tmp_dir[64];
static kl_arena *arena;
static kl_diag diag;

static void setup(void)
{
    strcpy(tmp_dir, "/tmp/kiln-loader-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    arena = kl_arena_new();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    kl_diag_free(&diag);
    kl_arena_free(arena);
    nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(loader, .init = setup, .fini = teardown);

static char *path_in_tmp(const char *name) { return kl_sprintf(arena, "%s/%s", tmp_dir, name); }

/* Write the model as NAME in the temporary folder and load it (diag initialised on the path). */
static kl_graph *load_as(mb_model *m, const char *name, const kl_shape_binding *b, int n_b)
{
    char *path = path_in_tmp(name);
    cr_assert(mb_write(m, path));
    mb_free(m);
    kl_diag_init(&diag, path);
    return kl_onnx_load(arena, path, b, n_b, &diag);
}

static kl_graph *load(mb_model *m) { return load_as(m, "model.onnx", NULL, 0); }

static const char *messages(void) { return diag.text ? diag.text : ""; }

/* The load failed and the diagnostic holds every fragment given (NULL-terminated). */
static void expect_failure(kl_graph *g, const char *fragment, ...)
{
    cr_expect_null(g, "the load should fail");
    cr_expect(kl_diag_failed(&diag));
    cr_expect(strstr(messages(), diag.file) != NULL, "message does not name the file: %s",
              messages());
    va_list ap;
    va_start(ap, fragment);
    for (const char *f = fragment; f; f = va_arg(ap, const char *))
        cr_expect(strstr(messages(), f) != NULL, "'%s' not in: %s", f, messages());
    va_end(ap);
}

static kl_value *value_named(const kl_graph *g, const char *name)
{
    for (int i = 0; i < g->values.n; i++)
        if (strcmp(((kl_value *)g->values.items[i])->name, name) == 0)
            return g->values.items[i];
    return NULL;
}

static kl_node *node_at(const kl_graph *g, int i) { return g->nodes.items[i]; }

/* x[2,3] + W[2,3] -> y, with W an initializer: the smallest useful model. */
static mb_model *add_model(void)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "2,3");
    mb_tensor *w = mb_tensor_new(m, "W", KL_F32, "2,3");
    float data[6] = {1, 2, 3, 4, 5, 6};
    mb_tensor_floats(m, w, 6, data);
    mb_initializer(m, w);
    mb_node_add(m, "Add", "add0", "x,W", "y");
    mb_output(m, "y", KL_F32, "2,3");
    return m;
}

/* ---- what a model becomes ------------------------------------------------------------- */

Test(loader, simple_model_values_and_node)
{
    kl_graph *g = load(add_model());
    cr_assert_not_null(g, "%s", messages());
    cr_expect_eq(g->inputs.n, 1);
    cr_expect_eq(g->outputs.n, 1);
    cr_expect_eq(g->nodes.n, 1);
    kl_value *x = g->inputs.items[0], *y = g->outputs.items[0], *w = value_named(g, "W");
    cr_expect_str_eq(x->name, "x");
    cr_expect_eq(x->input_index, 0);
    cr_expect_eq(x->dtype, KL_F32);
    cr_expect(x->has_shape);
    cr_expect_eq(x->shape.rank, 2);
    cr_expect_eq(x->shape.dim[1], 3);
    cr_expect_null(x->data);
    cr_expect_eq(x->n_uses, 1);
    cr_assert_not_null(w);
    cr_expect_eq(w->input_index, -1);
    cr_expect_eq(w->dtype, KL_F32);
    cr_assert_not_null(w->data);
    cr_expect_float_eq(((float *)w->data)[5], 6.0f, 0);
    kl_node *n = node_at(g, 0);
    cr_expect_str_eq(n->name, "add0");
    cr_expect_str_eq(n->op_type, "Add");
    cr_expect_str_eq(n->domain, "");
    cr_expect_eq(n->opset, 13);
    cr_expect_eq(n->n_inputs, 2);
    cr_expect_eq(n->inputs[0], x);
    cr_expect_eq(n->inputs[1], w);
    cr_expect_eq(y->producer, n);
    cr_expect_eq(y->output_index, 0);
    cr_expect_eq(y->dtype, KL_F32);
}

Test(loader, metadata_and_opsets)
{
    mb_model *m = add_model();
    mb_producer(m, "pytorch", "2.1");
    mb_doc(m, "adds things");
    mb_metadata(m, "author", "kiln");
    mb_opset(m, "ai.onnx.ml", 3);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_str_eq(g->meta.producer_name, "pytorch");
    cr_expect_str_eq(g->meta.producer_version, "2.1");
    cr_expect_str_eq(g->meta.doc_string, "adds things");
    cr_expect_str_eq(g->meta.graph_name, "test_graph");
    cr_expect_eq(g->meta.ir_version, 8);
    cr_assert_eq(g->meta.n_opsets, 2);
    cr_expect_str_eq(g->meta.opsets[0].domain, "");
    cr_expect_eq(g->meta.opsets[0].version, 13);
    cr_expect_str_eq(g->meta.opsets[1].domain, "ai.onnx.ml");
    cr_assert_eq(g->meta.n_props, 1);
    cr_expect_str_eq(g->meta.props[0].key, "author");
    cr_expect_str_eq(g->meta.props[0].value, "kiln");
}

Test(loader, nodes_are_sorted_topologically)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node_add(m, "Relu", "c", "b", "y");
    mb_node_add(m, "Neg", "b", "a", "b");
    mb_node_add(m, "Abs", "a", "x", "a");
    mb_node_add(m, "Exp", "unrelated", "x", "z");
    mb_output(m, "y", KL_F32, NULL);
    mb_output(m, "z", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    const char *want[] = {"a", "b", "c", "unrelated"};
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(node_at(g, i)->name, want[i]);
        cr_expect_eq(node_at(g, i)->id, i);
    }
}

Test(loader, sorted_model_keeps_its_order)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node_add(m, "Exp", "e", "x", "p");
    mb_node_add(m, "Abs", "a", "x", "q");
    mb_node_add(m, "Add", "s", "p,q", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_str_eq(node_at(g, 0)->name, "e");
    cr_expect_str_eq(node_at(g, 1)->name, "a");
    cr_expect_str_eq(node_at(g, 2)->name, "s");
    cr_expect_eq(value_named(g, "x")->n_uses, 2);
}

Test(loader, unnamed_nodes_get_op_and_index)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node_add(m, "Relu", "", "x", "r");
    mb_node_add(m, "Neg", NULL, "r", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_str_eq(node_at(g, 0)->name, "Relu_0");
    cr_expect_str_eq(node_at(g, 1)->name, "Neg_1");
}

Test(loader, omitted_optional_inputs_and_outputs_are_null)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_input(m, "hi", KL_F32, "");
    mb_node_add(m, "Clip", "clip", "x,,hi", "y");
    mb_node_add(m, "Dropout", "drop", "y", "z,");
    mb_output(m, "z", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    kl_node *clip = node_at(g, 0), *drop = node_at(g, 1);
    cr_expect_eq(clip->n_inputs, 3);
    cr_expect_null(clip->inputs[1]);
    cr_expect_null(kl_node_input(clip, 1));
    cr_expect_not_null(clip->inputs[2]);
    cr_expect_eq(drop->n_outputs, 2);
    cr_expect_null(drop->outputs[1]);
    cr_expect_eq(value_named(g, "hi")->shape.rank, 0);
}

Test(loader, attributes_of_every_type)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node *n = mb_node_add(m, "Custom", "n", "x", "y");
    mb_attr_int(m, n, "i", -7);
    mb_attr_float(m, n, "f", 0.25f);
    mb_attr_string(m, n, "s", "same_upper");
    int64_t ints[] = {1, 2, 3};
    mb_attr_ints(m, n, "is", 3, ints);
    float floats[] = {0.5f, 1.5f};
    mb_attr_floats(m, n, "fs", 2, floats);
    const char *strs[] = {"a", "bc"};
    mb_attr_strings(m, n, "ss", 2, strs);
    mb_tensor *t = mb_tensor_new(m, "", KL_I64, "2");
    int64_t tv[] = {10, 20};
    mb_tensor_int64s(m, t, 2, tv);
    mb_attr_tensor(m, n, "t", t);
    mb_attr_graph(m, n, "body");
    mb_output(m, "y", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    kl_node *k = node_at(g, 0);
    cr_expect_eq(k->n_attrs, 8);
    cr_expect_eq(kl_attr_int(k, "i", 0), -7);
    cr_expect_float_eq(kl_attr_float(k, "f", 0), 0.25, 1e-9);
    cr_expect_str_eq(kl_attr_string(k, "s", ""), "same_upper");
    const int64_t *is;
    cr_expect_eq(kl_attr_ints(k, "is", &is), 3);
    cr_expect_eq(is[2], 3);
    const kl_attr *fs = kl_attr_find(k, "fs");
    cr_expect_eq(fs->type, KL_ATTR_FLOATS);
    cr_expect_float_eq(fs->floats[1], 1.5, 1e-9);
    const kl_attr *ss = kl_attr_find(k, "ss");
    cr_expect_eq(ss->n, 2);
    cr_expect_str_eq(ss->strings[1], "bc");
    const kl_attr *ta = kl_attr_find(k, "t");
    cr_assert_eq(ta->type, KL_ATTR_TENSOR);
    cr_assert_not_null(ta->t);
    cr_expect_eq(ta->t->dtype, KL_I64);
    cr_expect_eq(ta->t->shape.dim[0], 2);
    cr_expect_eq(((int64_t *)ta->t->data)[1], 20);
    for (int i = 0; i < g->values.n; i++)
        cr_expect_neq(g->values.items[i], ta->t, "a TENSOR attribute is not a graph value");
    const kl_attr *body = kl_attr_find(k, "body");
    cr_expect_eq(body->type, KL_ATTR_GRAPH);
    cr_expect_null(body->g);
}

Test(loader, initializer_encodings)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "2");
    float raw[2] = {1.5f, -2.0f};
    mb_tensor *r = mb_tensor_new(m, "raw", KL_F32, "2");
    mb_tensor_raw(m, r, raw, sizeof raw);
    mb_initializer(m, r);
    mb_tensor *i8 = mb_tensor_new(m, "i8", KL_I8, "3");
    int32_t i8v[] = {-1, 2, -128};
    mb_tensor_int32s(m, i8, 3, i8v);
    mb_initializer(m, i8);
    mb_tensor *b = mb_tensor_new(m, "b", KL_BOOL, "2");
    int32_t bv[] = {0, 5};
    mb_tensor_int32s(m, b, 2, bv);
    mb_initializer(m, b);
    mb_tensor *s = mb_tensor_new(m, "scalar", KL_I64, "");
    int64_t sv = 42;
    mb_tensor_int64s(m, s, 1, &sv);
    mb_initializer(m, s);
    mb_tensor *e = mb_tensor_new(m, "empty", KL_F32, "0,3");
    mb_initializer(m, e);
    mb_node_add(m, "Add", "a", "x,raw", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_float_eq(((float *)value_named(g, "raw")->data)[1], -2.0f, 0);
    int8_t *i8d = value_named(g, "i8")->data;
    cr_expect_eq(i8d[0], -1);
    cr_expect_eq(i8d[2], -128);
    uint8_t *bd = value_named(g, "b")->data;
    cr_expect_eq(bd[1], 1);
    kl_value *sc = value_named(g, "scalar");
    cr_expect_eq(sc->shape.rank, 0);
    cr_expect_eq(kl_value_const_int(sc, 0), 42);
    kl_value *ev = value_named(g, "empty");
    cr_expect_not_null(ev->data, "an empty constant still has data");
    cr_expect_eq(kl_shape_numel(&ev->shape), 0);
    cr_expect_eq(value_named(g, "b")->n_uses, 0);
}

Test(loader, input_that_is_also_an_initializer_is_a_constant)
{
    mb_model *m = add_model();
    mb_input(m, "W", KL_F32, "2,3"); /* old exporters list weights as inputs too */
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_eq(g->inputs.n, 1);
    kl_value *w = value_named(g, "W");
    cr_expect_eq(w->input_index, -1);
    cr_expect_not_null(w->data);
}

Test(loader, value_info_gives_dtypes)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node_add(m, "Cast", "c", "x", "i");
    mb_node_add(m, "Neg", "n", "i", "y");
    mb_value_info(m, "i", KL_I64, "4");
    mb_output(m, "y", KL_I64, "N");
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_eq(value_named(g, "i")->dtype, KL_I64);
    kl_value *y = value_named(g, "y");
    cr_expect_eq(y->dtype, KL_I64);
    cr_expect_str_eq(y->dim_param[0], "N");
}

Test(loader, binding_fixes_symbolic_dims)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "N,3,?");
    mb_node_add(m, "Relu", "r", "x", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_shape_binding b = {"x", {3, {5, 3, 7}}};
    kl_graph *g = load_as(m, "model.onnx", &b, 1);
    cr_assert_not_null(g, "%s", messages());
    kl_value *x = g->inputs.items[0];
    cr_expect(x->has_shape);
    cr_expect_eq(x->shape.dim[0], 5);
    cr_expect_eq(x->shape.dim[2], 7);
    cr_expect_str_eq(x->dim_param[0], "N");
    cr_expect_null(x->dim_param[1]);
}

Test(loader, binding_an_input_without_declared_shape)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, NULL);
    mb_node_add(m, "Relu", "r", "x", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_shape_binding b = {"x", {2, {2, 2}}};
    kl_graph *g = load_as(m, "model.onnx", &b, 1);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_eq(((kl_value *)g->inputs.items[0])->shape.rank, 2);
}

Test(loader, external_data_inside_the_folder)
{
    float w[6] = {1, 2, 3, 4, 5, 6};
    char pad[8] = {0};
    char *data_path = path_in_tmp("weights.bin");
    FILE *f = fopen(data_path, "wb");
    cr_assert_not_null(f);
    fwrite(pad, 1, sizeof pad, f);
    fwrite(w, 1, sizeof w, f);
    fclose(f);
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "2,3");
    mb_tensor *t = mb_tensor_new(m, "W", KL_F32, "2,3");
    mb_tensor_external(m, t, "./weights.bin", 8, sizeof w);
    mb_initializer(m, t);
    mb_node_add(m, "Add", "add0", "x,W", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    cr_expect_float_eq(((float *)value_named(g, "W")->data)[4], 5.0f, 0);
}

Test(loader, tensor_file_round_trip)
{
    mb_model *m = mb_new(13);
    mb_tensor *t = mb_tensor_new(m, "input_0", KL_F32, "1,2");
    float v[2] = {3.5f, -1};
    mb_tensor_floats(m, t, 2, v);
    char *path = path_in_tmp("input_0.pb");
    cr_assert(mb_write_tensor(t, path));
    mb_free(m);
    kl_diag_init(&diag, path);
    kl_value *x = kl_onnx_load_tensor_file(arena, path, &diag);
    cr_assert_not_null(x, "%s", messages());
    cr_expect_str_eq(x->name, "input_0");
    cr_expect_eq(x->shape.rank, 2);
    cr_expect_float_eq(((float *)x->data)[0], 3.5f, 0);
}

/* ---- broken models: every error path -------------------------------------------------- */

Test(loader, not_a_protobuf)
{
    char *path = path_in_tmp("garbage.onnx");
    const char text[] = "this is plainly not a protobuf \xff\xff\xff\xff";
    cr_assert(mb_write_file(path, text, sizeof text));
    kl_diag_init(&diag, path);
    expect_failure(kl_onnx_load(arena, path, NULL, 0, &diag), "not an ONNX model", NULL);
}

Test(loader, empty_file)
{
    char *path = path_in_tmp("empty.onnx");
    cr_assert(mb_write_file(path, "", 0));
    kl_diag_init(&diag, path);
    expect_failure(kl_onnx_load(arena, path, NULL, 0, &diag), "empty", NULL);
}

Test(loader, missing_file)
{
    char *path = path_in_tmp("absent.onnx");
    kl_diag_init(&diag, path);
    expect_failure(kl_onnx_load(arena, path, NULL, 0, &diag), "cannot open", NULL);
}

Test(loader, truncated_file_at_every_length)
{
    /* Every cut of a real model must be refused cleanly, whatever byte it falls on. */
    mb_model *m = add_model();
    size_t len;
    uint8_t *bytes = mb_bytes(m, &len);
    mb_free(m);
    char *path = path_in_tmp("cut.onnx");
    for (size_t keep = 0; keep < len; keep++) {
        cr_assert(mb_write_file(path, bytes, keep));
        kl_diag d;
        kl_diag_init(&d, path);
        kl_graph *g = kl_onnx_load(arena, path, NULL, 0, &d);
        cr_expect_null(g, "a file cut to %zu of %zu bytes loaded", keep, len);
        cr_expect(d.text && strstr(d.text, path), "cut at %zu: no message naming the file",
                  keep);
        kl_diag_free(&d);
    }
    free(bytes);
}

Test(loader, missing_initializers_all_reported)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "2,3");
    mb_node_add(m, "Add", "add_w", "x,W", "t");
    mb_node_add(m, "Mul", "mul_s", "t,S", "y");
    mb_output(m, "y", KL_F32, NULL);
    expect_failure(load(m), "node 'add_w' (Add, opset 13)", "input 'W' of this node is not "
                   "produced by any node, graph input or initializer", "node 'mul_s' (Mul",
                   "input 'S'", NULL);
    cr_expect_eq(diag.n_errors, 2);
}

Test(loader, cycle_is_reported_with_its_nodes)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node_add(m, "Add", "first", "x,c", "a");
    mb_node_add(m, "Relu", "second", "a", "b");
    mb_node_add(m, "Neg", "third", "b", "c");
    mb_node_add(m, "Exp", "after", "c", "y");
    mb_output(m, "y", KL_F32, NULL);
    expect_failure(load(m), "graph has a cycle", "'first' (Add)", "'second' (Relu)",
                   "'third' (Neg)", NULL);
    cr_expect(strstr(messages(), "'after'") == NULL, "a node downstream of the cycle is not "
              "part of it: %s", messages());
}

Test(loader, self_loop)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node_add(m, "Add", "loop", "x,a", "a");
    mb_output(m, "a", KL_F32, NULL);
    expect_failure(load(m), "graph has a cycle", "'loop' (Add)", NULL);
}

Test(loader, unbound_symbolic_dims_all_inputs_reported)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "N,3,224,224");
    mb_input(m, "mask", KL_F32, "B,?");
    mb_node_add(m, "Relu", "r", "x", "y");
    mb_node_add(m, "Relu", "s", "mask", "z");
    mb_output(m, "y", KL_F32, NULL);
    mb_output(m, "z", KL_F32, NULL);
    expect_failure(load(m), "input 'x' dimension 0 ('N') is symbolic: bind it with --shape x:",
                   "--shape x:1x3x224x224", "input 'mask' dimensions 0 ('B'), 1 (unnamed) are "
                   "symbolic", NULL);
    cr_expect_eq(diag.n_errors, 2);
}

Test(loader, binding_rank_mismatch)
{
    mb_model *m = add_model();
    kl_shape_binding b = {"x", {3, {1, 2, 3}}};
    expect_failure(load_as(m, "model.onnx", &b, 1), "shape mismatch", "input 'x'", "[1,2,3]",
                   "[2,3]", NULL);
}

Test(loader, binding_contradicts_fixed_dim)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "N,3");
    mb_node_add(m, "Relu", "r", "x", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_shape_binding b = {"x", {2, {8, 4}}};
    expect_failure(load_as(m, "model.onnx", &b, 1), "shape mismatch", "[8,4]", "[N,3]", NULL);
}

Test(loader, binding_names_no_input)
{
    mb_model *m = add_model();
    kl_shape_binding b[] = {{"nope", {1, {1}}}, {"W", {2, {2, 3}}}};
    expect_failure(load_as(m, "model.onnx", b, 2), "--shape names 'nope', which is not an input",
                   "'x'", "--shape names 'W'", "initializer", NULL);
}

static mb_model *external_model(const char *location, int64_t length)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "2,3");
    mb_tensor *t = mb_tensor_new(m, "W", KL_F32, "2,3");
    mb_tensor_external(m, t, location, 0, length);
    mb_initializer(m, t);
    mb_node_add(m, "Add", "add0", "x,W", "y");
    mb_output(m, "y", KL_F32, NULL);
    return m;
}

Test(loader, external_data_escaping_with_dotdot)
{
    expect_failure(load(external_model("../secret.bin", 24)), "initializer 'W'",
                   "external data location '../secret.bin' escapes the model's folder", NULL);
}

Test(loader, external_data_escaping_inside_then_out)
{
    expect_failure(load(external_model("a/../../b/x.bin", 24)), "escapes the model's folder",
                   NULL);
}

Test(loader, external_data_absolute_path)
{
    expect_failure(load(external_model("/etc/passwd", 24)),
                   "external data location '/etc/passwd' escapes the model's folder", NULL);
}

Test(loader, external_data_symlink_out_of_the_folder)
{
    char *link = path_in_tmp("link.bin");
    cr_assert_eq(symlink("/etc/hostname", link), 0);
    expect_failure(load(external_model("link.bin", -1)),
                   "external data location 'link.bin' escapes the model's folder", NULL);
}

Test(loader, external_data_missing)
{
    expect_failure(load(external_model("weights.bin", 24)), "initializer 'W'",
                   "external data file 'weights.bin'", "No such file", NULL);
}

Test(loader, external_data_too_short)
{
    float w[3] = {1, 2, 3};
    cr_assert(mb_write_file(path_in_tmp("weights.bin"), w, sizeof w));
    expect_failure(load(external_model("weights.bin", -1)), "initializer 'W'",
                   "'weights.bin' is too short", NULL);
}

Test(loader, initializer_size_mismatch)
{
    mb_model *m = add_model();
    mb_tensor *t = mb_tensor_new(m, "B", KL_F32, "4,5");
    float v[3] = {1, 2, 3};
    mb_tensor_floats(m, t, 3, v);
    mb_initializer(m, t);
    expect_failure(load(m), "initializer 'B' holds 3 values, its shape [4,5] needs 20", NULL);
}

Test(loader, raw_data_size_mismatch)
{
    mb_model *m = add_model();
    mb_tensor *t = mb_tensor_new(m, "B", KL_I64, "2");
    int64_t v[3] = {1, 2, 3};
    mb_tensor_raw(m, t, v, sizeof v);
    mb_initializer(m, t);
    expect_failure(load(m), "initializer 'B' holds 3 values, its shape [2] needs 2", NULL);
}

/* A string tensor holds one `const char *` an element: NUL-terminated copies. */
Test(loader, string_tensor_loaded)
{
    mb_model *m = add_model();
    mb_tensor *t = mb_tensor_new(m, "names", KL_STRING, "3");
    const char *v[3] = {"cat", "", "\xe7\x9a\x84"};
    size_t lens[3] = {3, 0, 3};
    mb_tensor_strings(m, t, 3, v, lens);
    mb_initializer(m, t);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    kl_value *names = value_named(g, "names");
    cr_assert_not_null(names);
    cr_expect_eq(names->dtype, KL_STRING);
    cr_expect_eq(kl_value_bytes(names), 3 * sizeof(const char *));
    const char *const *s = names->data;
    cr_expect_str_eq(s[0], "cat");
    cr_expect_str_eq(s[1], "");
    cr_expect_str_eq(s[2], "\xe7\x9a\x84");
}

Test(loader, string_tensor_count_mismatch)
{
    mb_model *m = add_model();
    mb_tensor *t = mb_tensor_new(m, "names", KL_STRING, "2");
    const char *v[1] = {"a"};
    size_t lens[1] = {1};
    mb_tensor_strings(m, t, 1, v, lens);
    mb_initializer(m, t);
    expect_failure(load(m), "initializer 'names' holds 1 values, its shape [2] needs 2", NULL);
}

Test(loader, string_with_nul_refused)
{
    mb_model *m = add_model();
    mb_tensor *t = mb_tensor_new(m, "names", KL_STRING, "2");
    const char *v[2] = {"ok", "a\0b"};
    size_t lens[2] = {2, 3};
    mb_tensor_strings(m, t, 2, v, lens);
    mb_initializer(m, t);
    expect_failure(load(m), "initializer 'names': string element 1 holds a NUL byte", NULL);
}

Test(loader, string_in_raw_data_refused)
{
    mb_model *m = add_model();
    mb_tensor *t = mb_tensor_new(m, "names", KL_STRING, "1");
    mb_tensor_raw(m, t, "abcdefgh", 8);
    mb_initializer(m, t);
    expect_failure(load(m), "initializer 'names': a string tensor keeps its values in "
                   "string_data", NULL);
}

Test(loader, sparse_initializer_refused)
{
    mb_model *m = add_model();
    mb_sparse_initializer(m, "sp");
    expect_failure(load(m), "sparse initializer 'sp' is not supported", NULL);
}

Test(loader, sequence_input_needs_its_length)
{
    mb_model *m = add_model();
    mb_input_sequence(m, "seq", KL_F32);
    expect_failure(load(m), "input 'seq' is a sequence: bind its length with --sequence seq:N",
                   NULL);
}

Test(loader, domain_without_opset_import)
{
    mb_model *m = mb_new(13);
    mb_input(m, "x", KL_F32, "4");
    mb_node *n = mb_node_add(m, "FusedGemm", "fg", "x", "y");
    mb_node_domain(m, n, "com.microsoft");
    mb_output(m, "y", KL_F32, NULL);
    expect_failure(load(m), "node 'fg' (com.microsoft.FusedGemm",
                   "imports no opset for domain 'com.microsoft'", NULL);
}

Test(loader, value_defined_twice)
{
    mb_model *m = add_model();
    mb_node_add(m, "Neg", "again", "x", "W");
    expect_failure(load(m), "node 'again' (Neg", "value 'W' is defined twice: by an "
                   "initializer and by node 'again' (Neg)", NULL);
}

Test(loader, graph_output_not_produced)
{
    mb_model *m = add_model();
    mb_output(m, "ghost", KL_F32, NULL);
    expect_failure(load(m), "graph output 'ghost' is not produced", NULL);
}

Test(loader, no_graph)
{
    mb_model *m = mb_new(13);
    size_t len;
    uint8_t *bytes = mb_bytes(m, &len);
    mb_free(m);
    /* a ModelProto holding only ir_version: what a file cut before its graph looks like */
    char *path = path_in_tmp("nograph.onnx");
    cr_assert(mb_write_file(path, bytes, 2));
    free(bytes);
    kl_diag_init(&diag, path);
    expect_failure(kl_onnx_load(arena, path, NULL, 0, &diag), "no graph", NULL);
}

Test(loader, tensor_file_that_is_not_a_tensor)
{
    char *path = path_in_tmp("output_0.pb");
    cr_assert(mb_write_file(path, "\x0a\x03seq\x10\x01", 7)); /* a SequenceProto header */
    kl_diag_init(&diag, path);
    cr_expect_null(kl_onnx_load_tensor_file(arena, path, &diag));
    cr_expect(strstr(messages(), "not a serialized ONNX tensor") != NULL, "%s", messages());
}

/* A data file holding a SequenceProto (onnx/data_file.c): its tensors, named seq[K], and the
 * bindings it implies; an OptionalProto with no value (elem_type 0): no tensor. */
Test(loader, data_file_sequence_and_empty_optional)
{
    /* SequenceProto "seq", elem_type 1, two float tensors (raw_data): [2] = {1, 2}, [1] = {3} */
    static const char seq[] = "\x0a\x03seq\x10\x01"
                              "\x1a\x0e\x08\x02\x10\x01\x4a\x08\x00\x00\x80\x3f\x00\x00\x00\x40"
                              "\x1a\x0a\x08\x01\x10\x01\x4a\x04\x00\x00\x40\x40";
    char *path = path_in_tmp("input_0.pb");
    cr_assert(mb_write_file(path, seq, sizeof seq - 1));
    kl_diag_init(&diag, path);
    kl_ptrvec out = {0}, structure = {0};
    cr_assert(kl_onnx_load_data_file(arena, path, &out, &structure, &diag), "%s", messages());
    cr_assert_eq(out.n, 2);
    const kl_value *t0 = out.items[0], *t1 = out.items[1];
    cr_expect_str_eq(t0->name, "seq[0]");
    cr_expect_str_eq(t1->name, "seq[1]");
    cr_expect(t0->shape.rank == 1 && t0->shape.dim[0] == 2 && t1->shape.dim[0] == 1);
    cr_expect(((const float *)t0->data)[1] == 2.0f && ((const float *)t1->data)[0] == 3.0f);
    bool length_bound = false;
    for (int i = 0; i < structure.n; i++) {
        const kl_shape_binding *b = structure.items[i];
        if (b->kind == KL_BIND_SEQUENCE) length_bound = b->count == 2 && !strcmp(b->input, "seq");
    }
    cr_expect(length_bound, "the file binds seq's length to 2");

    cr_assert(mb_write_file(path, "\x0a\x01o\x10\x00", 5)); /* OptionalProto "o", empty */
    kl_ptrvec none = {0};
    cr_expect(kl_onnx_load_data_file(arena, path, &none, NULL, &diag), "%s", messages());
    cr_expect_eq(none.n, 0);

    cr_assert(mb_write_file(path, "", 0)); /* neither message says what it holds */
    cr_expect(!kl_onnx_load_data_file(arena, path, &none, NULL, &diag));
    cr_expect(strstr(messages(), "not a serialized ONNX tensor, sequence or optional") != NULL,
              "%s", messages());
}

/* The sub-byte types arrive packed (two 4-bit / four 2-bit values a byte, the first in the low
 * bits) in raw_data, int32_data (one byte an entry) and external data, and are held one a byte:
 * int4/int2 sign extended, uint4 as is. float8 in int32_data is one value an entry. A byte
 * count that does not fit the shape is one error. */
Test(loader, packed_small_types_in_every_encoding)
{
    uint8_t ext[2] = {0x9c, 0x03}; /* int2: 0, -1, 1, -2, -1 */
    char *data_path = path_in_tmp("small.bin");
    FILE *f = fopen(data_path, "wb");
    cr_assert_not_null(f);
    fwrite(ext, 1, sizeof ext, f);
    fclose(f);
    mb_model *m = mb_new(25);
    mb_input(m, "x", KL_F32, "2");
    uint8_t raw[2] = {0x8f, 0x07}; /* int4: -1, -8, 7 */
    mb_tensor *r = mb_tensor_new(m, "i4", KL_I4, "3");
    mb_tensor_raw(m, r, raw, sizeof raw);
    mb_initializer(m, r);
    int32_t packed[2] = {0xf1, 0x0a}; /* uint4: 1, 15, 10 */
    mb_tensor *u = mb_tensor_new(m, "u4", KL_U4, "3");
    mb_tensor_int32s(m, u, 2, packed);
    mb_initializer(m, u);
    int32_t codes[2] = {0x38, 0xfe}; /* float8e4m3fn: 1.0, -448 */
    mb_tensor *e = mb_tensor_new(m, "f8", KL_F8E4M3FN, "2");
    mb_tensor_int32s(m, e, 2, codes);
    mb_initializer(m, e);
    mb_tensor *x = mb_tensor_new(m, "i2", KL_I2, "5");
    mb_tensor_external(m, x, "small.bin", 0, 2);
    mb_initializer(m, x);
    mb_node_add(m, "Identity", "id0", "x", "y");
    mb_output(m, "y", KL_F32, NULL);
    kl_graph *g = load(m);
    cr_assert_not_null(g, "%s", messages());
    int8_t *i4 = value_named(g, "i4")->data;
    cr_expect(i4[0] == -1 && i4[1] == -8 && i4[2] == 7, "int4 %d %d %d", i4[0], i4[1], i4[2]);
    uint8_t *u4 = value_named(g, "u4")->data;
    cr_expect(u4[0] == 1 && u4[1] == 15 && u4[2] == 10, "uint4 %d %d %d", u4[0], u4[1], u4[2]);
    uint8_t *f8 = value_named(g, "f8")->data;
    cr_expect(f8[0] == 0x38 && f8[1] == 0xfe);
    int8_t *i2 = value_named(g, "i2")->data;
    cr_expect(i2[0] == 0 && i2[1] == -1 && i2[2] == 1 && i2[3] == -2 && i2[4] == -1,
              "int2 %d %d %d %d %d", i2[0], i2[1], i2[2], i2[3], i2[4]);
}

Test(loader, packed_small_type_with_too_few_bytes)
{
    mb_model *m = mb_new(25);
    mb_input(m, "x", KL_F32, "2");
    uint8_t raw[1] = {0x21};
    mb_tensor *r = mb_tensor_new(m, "W", KL_U4, "3"); /* 3 values need 2 bytes */
    mb_tensor_raw(m, r, raw, sizeof raw);
    mb_initializer(m, r);
    mb_node_add(m, "Identity", "id0", "x", "y");
    mb_output(m, "y", KL_F32, NULL);
    expect_failure(load(m), "initializer 'W'", "holds 2 values", "needs 3", NULL);
}

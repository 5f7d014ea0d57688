/*
 * graph_fixture.h — graphs built by hand for the unit tests of shape inference and folding:
 * a fixture (arena, graph, diagnostics), inputs, constants, nodes, attributes, and the passes
 * run in the driver's order.
 */
#ifndef KIL_TEST_GRAPH_FIXTURE_H
#define KIL_TEST_GRAPH_FIXTURE_H
#include "kl.h"

typedef struct fixture {
    kl_arena *a;
    kl_graph *g;
    kl_diag d;
} fixture;

fixture fx(void);                 /* a graph of file "t.onnx" */
void done(fixture *f);
kl_value *input(fixture *f, const char *name, kl_dtype t, kl_shape s);
kl_value *constant(fixture *f, const char *name, kl_dtype t, kl_shape s, const void *values);
/* A node with n_out fresh outputs, all of them graph outputs. */
kl_node *node(fixture *f, const char *op, int opset, int n_in, kl_value **in, int n_out);
/* The same, outputs not marked (mark the graph's outputs with mark_output). */
kl_node *inner_node(fixture *f, const char *op, int opset, int n_in, kl_value **in, int n_out);
void mark_output(fixture *f, kl_value *v);
/* Attributes are appended one by one (the node's array grows from the arena). */
kl_attr *attr(fixture *f, kl_node *n, const char *name, kl_attr_type t);
void attr_int(fixture *f, kl_node *n, const char *name, int64_t v);
void attr_float(fixture *f, kl_node *n, const char *name, double v);
void attr_ints(fixture *f, kl_node *n, const char *name, int count, const int64_t *v);
void attr_str(fixture *f, kl_node *n, const char *name, const char *s);
bool run_passes(fixture *f);      /* resolve, infer (+fold), dce */
void expect_shape(const kl_value *v, kl_shape want);
void expect_error(fixture *f, const char *text); /* the passes fail with `text` in the message */

#endif

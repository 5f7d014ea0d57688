/*
 * affine_grid.c — AffineGrid (opset 20): the sampling grid of an affine transform, for
 * GridSample.
 *
 * For size [N, C, H, W] (2-D) or [N, C, D, H, W] (3-D) and theta [N, 2, 3] or [N, 3, 4], the
 * grid [N, H, W, 2] or [N, D, H, W, 3] holds theta[n] times the homogeneous base point
 * (x, y[, z], 1), whose coordinates span [-1, 1] along W, H (and D): the pixel centres
 * (-1 + (2 i + 1) / S) by default, the corner pixels at -1 and 1 with align_corners (a single
 * pixel sits at -1 there, as the reference's arange gives). One kernel over the grid; the last
 * loop picks theta's row. Computed in float64, rounded once to theta's type.
 *
 * size is input 1: a constant, or given at run time where the model declares the grid's shape
 * (then a kernel checks the size that arrives against it: KILN_E_SHAPE; its C is free).
 */
#include "arith_util.h"

typedef struct affine_grid {
    int nsp;           /* spatial dims: 2 or 3 */
    kl_shape out;      /* [N, (D,) H, W, nsp] */
    bool at_run_time;
} affine_grid;

static bool affine_grid_plan(kl_node *n, affine_grid *g, kl_diag *d) {
    if (!kl_arith_need_float(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_shape *theta = &n->inputs[0]->shape;
    const kl_value *size = n->inputs[1];
    if (size->dtype != KL_I64 || size->shape.rank != 1 ||
        (size->shape.dim[0] != 4 && size->shape.dim[0] != 5))
        return kl_error(d, n, "size must be a 1-D int64 tensor [N, C, H, W] or [N, C, D, H, W]");
    g->nsp = (int)size->shape.dim[0] - 2;
    if (theta->rank != 3 || theta->dim[1] != g->nsp || theta->dim[2] != g->nsp + 1)
        return kl_error(d, n, "theta must be [N, %d, %d] for a %d-D size", g->nsp, g->nsp + 1,
                        g->nsp);
    g->at_run_time = kl_input_at_run_time(n, 1);
    g->out.rank = g->nsp + 2;
    g->out.dim[0] = theta->dim[0];
    g->out.dim[g->nsp + 1] = g->nsp;
    if (g->at_run_time) {
        const kl_value *y = n->outputs[0];
        if (!y->shape_declared && !y->has_shape) return kl_infer_declared(n, 1, d);
        for (int i = 1; i <= g->nsp; i++) g->out.dim[i] = y->shape.dim[i];
        if (!kl_shape_equal(&y->shape, &g->out))
            return kl_error(d, n, "the declared grid is not [N, spatial dims, %d] for theta's N",
                            g->nsp);
        return true;
    }
    if (kl_value_const_int(size, 0) != theta->dim[0])
        return kl_error(d, n, "size[0] = %lld but theta holds %lld transforms",
                        (long long)kl_value_const_int(size, 0), (long long)theta->dim[0]);
    for (int i = 1; i <= g->nsp; i++) {
        int64_t s = kl_value_const_int(size, i + 1);
        if (s < 0 || s > KL_MAX_BYTES)
            return kl_error(d, n, "size[%d] = %lld is out of range", i + 1, (long long)s);
        g->out.dim[i] = s;
    }
    return true;
}

static bool infer_affine_grid(kl_node *n, kl_diag *d) {
    affine_grid g;
    return affine_grid_plan(n, &g, d) && kl_infer_set(n, 0, n->inputs[0]->dtype, &g.out);
}

/* The base coordinate of position iv along a dim of `s` pixels, in [-1, 1]. */
static kl_expr *base_coordinate(kl_arena *a, kl_expr *iv, int64_t s, bool align_corners) {
    kl_expr *i = kl_e_cast(a, KL_F64, iv);
    if (align_corners) {
        if (s <= 1) return kl_e_const_f(a, KL_F64, -1);
        kl_expr *step = kl_e_const_f(a, KL_F64, 2.0 / (double)(s - 1));
        return kl_e_binary(a, KL_ADD, kl_e_const_f(a, KL_F64, -1), kl_e_binary(a, KL_MUL, i, step));
    }
    kl_expr *centre = kl_e_binary(a, KL_ADD, kl_e_binary(a, KL_MUL, i, kl_e_const_f(a, KL_F64, 2)),
                                  kl_e_const_f(a, KL_F64, 1));
    return kl_e_binary(a, KL_ADD, kl_e_const_f(a, KL_F64, -1),
                       kl_e_binary(a, KL_DIV, centre, kl_e_const_f(a, KL_F64, (double)s)));
}

static bool lower_affine_grid(kl_lower *L, kl_node *n, kl_diag *d) {
    affine_grid g;
    if (!affine_grid_plan(n, &g, d)) return false;
    kl_arena *a = L->arena;
    if (g.at_run_time) {
        kl_expr *ok = kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 1, 0), kl_e_idx(a, g.out.dim[0]));
        for (int i = 1; i <= g.nsp; i++)
            ok = kl_e_and(a, ok, kl_e_binary(a, KL_EQ, kl_lower_int_at(L, n, 1, i + 1),
                                             kl_e_idx(a, g.out.dim[i])));
        kl_lower_shape_check(L, n, ok);
    }
    bool align = kl_attr_int(n, "align_corners", 0) != 0;
    kl_buffer *theta = kl_lower_buffer(L, n->inputs[0]);
    int row = g.nsp + 1; /* the loop that picks the output component, theta's row */
    kl_expr *idx[3] = {kl_e_iv(a, 0), kl_e_iv(a, row), kl_e_idx(a, g.nsp)};
    kl_expr *sum = kl_e_cast(a, KL_F64, kl_e_load(a, theta, idx)); /* times the 1 */
    for (int c = 0; c < g.nsp; c++) {
        int dim = g.nsp - c; /* x runs along the last spatial dim (W), y along H, z along D */
        idx[2] = kl_e_idx(a, c);
        kl_expr *t = kl_e_cast(a, KL_F64, kl_e_load(a, theta, idx));
        kl_expr *base = base_coordinate(a, kl_e_iv(a, dim), g.out.dim[dim], align);
        sum = kl_e_binary(a, KL_ADD, sum, kl_e_binary(a, KL_MUL, t, base));
    }
    kl_arith_map(L, n, NULL, kl_lower_buffer(L, n->outputs[0]), kl_e_cast(a, theta->dtype, sum));
    return true;
}

static const char *const affine_grid_attrs[] = {"align_corners", NULL};

const kl_op kl_ops_affine_grid[] = {
    {"", "AffineGrid", 20, KL_OPSET_LATEST, affine_grid_attrs, infer_affine_grid,
     lower_affine_grid},
    {0},
};

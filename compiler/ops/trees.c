/*
 * trees.c — ai.onnx.ml TreeEnsemble (opset 5): a forest of decision trees, X [N, F] -> [N, T].
 *
 * Interior nodes (the nodes_* attributes) test one feature against a split (<=, <, >=, >, ==,
 * != or membership in a set; NaN goes the true way where nodes_missing_value_tracks_true says
 * so) and name their true and false successors, each a node or a leaf; leaves (leaf_*) carry a
 * weight and a target. Each tree (tree_roots) sends a row to one leaf; the leaves' weights are
 * aggregated per target (SUM, AVERAGE over the trees, MIN, MAX).
 *
 * The model is data, and untrusted: every index in it is checked here (roots, successors,
 * leaves, features, targets, the membership sets), and the walk from each root must end (a
 * cycle is an error, not a hang). Since the whole forest is known when compiling, the walk
 * becomes tables: every root-to-leaf path (the trees unfolded, so shared subtrees are fine) is
 * a row listing the nodes it passes and the way it leaves each, and the one kernel is
 *   Y[n, t] = aggregate over paths p to a leaf of target t, reached by row n, of weight(p)
 * where "reached" is the conjunction of the path's tests. Exactly one path of each tree is
 * reached, so the sum runs over the trees in order, as ONNX's reference adds them. Tests
 * compare in double (the splits' own precision); sums run in X's type (float32 for 16-bit
 * floats). post_transform other than NONE is refused (the reference applies none).
 *
 * The forest (trees.h) is also what the legacy TreeEnsembleRegressor/Classifier are read into
 * (trees_legacy.c); a leaf there may carry several (target, weight) entries, so a path is
 * made per entry of its leaf.
 */
#include <math.h>
#include <string.h>

#include "trees.h"

#define ML "ai.onnx.ml"

#define MODE_MEMBER KL_TREE_MEMBER
#define N_MODES KL_TREE_N_MODES
#define AGG_AVERAGE KL_TREE_AVERAGE
#define AGG_SUM KL_TREE_SUM
#define AGG_MIN KL_TREE_MIN
#define AGG_MAX KL_TREE_MAX
typedef kl_forest forest;

static const char *tree_attrs[] = {"aggregate_function", "leaf_targetids", "leaf_weights",
                                   "membership_values", "n_targets", "nodes_falseleafs",
                                   "nodes_falsenodeids", "nodes_featureids", "nodes_hitrates",
                                   "nodes_missing_value_tracks_true", "nodes_modes",
                                   "nodes_splits", "nodes_trueleafs", "nodes_truenodeids",
                                   "post_transform", "tree_roots", NULL};

/* A bound on the unfolded forest (paths x depth), so a small model cannot ask for huge tables. */
#define MAX_PATH_CELLS (KL_MAX_BUILT_BYTES / 16)
/* The walk recurses once per level: deeper trees than any real model has are refused. */
#define MAX_DEPTH 1024

static const kl_value *tensor_attr(kl_node *n, const char *name) {
    const kl_attr *a = kl_attr_find(n, name);
    return a && a->type == KL_ATTR_TENSOR ? a->t : NULL;
}

static bool ints_of_len(kl_node *n, const char *name, int64_t want, const int64_t **out,
                        kl_diag *d) {
    int64_t got = kl_attr_ints(n, name, out);
    if (got != want)
        return kl_error(d, n, "%s has %lld entries, not %lld", name, (long long)got,
                        (long long)want);
    return true;
}

static bool check_index(kl_node *n, const char *name, int64_t i, int64_t v, int64_t bound,
                        kl_diag *d) {
    if (v < 0 || v >= bound)
        return kl_error(d, n, "%s[%lld] = %lld is not in [0, %lld)", name, (long long)i,
                        (long long)v, (long long)bound);
    return true;
}

/* The opset-5 attributes as a forest: every leaf one entry. */
static bool read_forest(kl_node *n, kl_arena *a, forest *f, kl_diag *d) {
    memset(f, 0, sizeof *f);
    f->n_features = n->inputs[0]->shape.dim[1];
    f->n_nodes = kl_attr_ints(n, "nodes_featureids", &f->feature);
    const int64_t *target;
    f->n_leaves = kl_attr_ints(n, "leaf_targetids", &target);
    f->n_trees = kl_attr_ints(n, "tree_roots", &f->roots);
    f->n_targets = kl_attr_int(n, "n_targets", 0);
    const kl_value *splits = tensor_attr(n, "nodes_splits");
    const kl_value *modes = tensor_attr(n, "nodes_modes");
    const kl_value *weights = tensor_attr(n, "leaf_weights");
    f->members = tensor_attr(n, "membership_values");
    f->agg = (int)kl_attr_int(n, "aggregate_function", AGG_SUM);
    if (f->n_targets < 1 || f->n_targets > KL_MAX_BUILT_BYTES)
        return kl_error(d, n, "n_targets must be given and >= 1");
    if (f->n_trees < 1) return kl_error(d, n, "tree_roots must name at least one tree");
    if (f->agg < AGG_AVERAGE || f->agg > AGG_MAX)
        return kl_error(d, n, "aggregate_function %d is not 0..3", f->agg);
    if (kl_attr_int(n, "post_transform", 0) != 0)
        return kl_error(d, n, "post_transform %lld is not supported (only NONE)",
                        (long long)kl_attr_int(n, "post_transform", 0));
    if (!splits || !modes || !weights)
        return kl_error(d, n, "nodes_splits, nodes_modes and leaf_weights are required tensors");
    if (f->n_nodes < 0 || kl_shape_numel(&splits->shape) != f->n_nodes ||
        kl_shape_numel(&modes->shape) != f->n_nodes)
        return kl_error(d, n, "nodes_splits and nodes_modes must have one entry per node (%lld)",
                        (long long)f->n_nodes);
    if (f->n_leaves < 0 || kl_shape_numel(&weights->shape) != f->n_leaves)
        return kl_error(d, n, "leaf_weights must have one entry per leaf (%lld)",
                        (long long)f->n_leaves);
    if (!kl_dtype_is_float(splits->dtype) || !kl_dtype_is_float(weights->dtype) ||
        (modes->dtype != KL_U8 && modes->dtype != KL_I32 && modes->dtype != KL_I64))
        return kl_error(d, n, "nodes_splits and leaf_weights must be floats, nodes_modes uint8");
    if (!ints_of_len(n, "nodes_truenodeids", f->n_nodes, &f->truenode, d) ||
        !ints_of_len(n, "nodes_falsenodeids", f->n_nodes, &f->falsenode, d) ||
        !ints_of_len(n, "nodes_trueleafs", f->n_nodes, &f->trueleaf, d) ||
        !ints_of_len(n, "nodes_falseleafs", f->n_nodes, &f->falseleaf, d))
        return false;
    if (kl_attr_find(n, "nodes_missing_value_tracks_true") &&
        !ints_of_len(n, "nodes_missing_value_tracks_true", f->n_nodes, &f->missing_true, d))
        return false;
    f->mode = kl_alloc_array(a, (size_t)f->n_nodes + 1, sizeof *f->mode);
    f->split = kl_alloc_array(a, (size_t)f->n_nodes + 1, sizeof *f->split);
    for (int64_t i = 0; i < f->n_nodes; i++) {
        f->mode[i] = kl_value_const_int(modes, i);
        f->split[i] = kl_value_const_float(splits, i);
    }
    size_t nl = (size_t)f->n_leaves + 1;
    f->leaf_first = kl_alloc_array(a, nl, sizeof *f->leaf_first);
    f->leaf_count = kl_alloc_array(a, nl, sizeof *f->leaf_count);
    f->entry_target = kl_alloc_array(a, nl, sizeof *f->entry_target);
    f->entry_weight = kl_alloc_array(a, nl, sizeof *f->entry_weight);
    f->n_entries = f->n_leaves;
    for (int64_t i = 0; i < f->n_leaves; i++) {
        f->leaf_first[i] = i;
        f->leaf_count[i] = 1;
        f->entry_target[i] = target[i];
        f->entry_weight[i] = kl_value_const_float(weights, i);
    }
    return kl_forest_check(n, f, d);
}

bool kl_forest_check(kl_node *n, forest *f, kl_diag *d) {
    for (int64_t i = 0; i < f->n_nodes; i++) {
        if (!check_index(n, "nodes_modes", i, f->mode[i], N_MODES, d) ||
            !check_index(n, "nodes_featureids", i, f->feature[i], f->n_features, d) ||
            !check_index(n, "nodes_truenodeids", i, f->truenode[i],
                         f->trueleaf[i] ? f->n_leaves : f->n_nodes, d) ||
            !check_index(n, "nodes_falsenodeids", i, f->falsenode[i],
                         f->falseleaf[i] ? f->n_leaves : f->n_nodes, d))
            return false;
    }
    for (int64_t i = 0; i < f->n_entries; i++)
        if (!check_index(n, "leaf_targetids", i, f->entry_target[i], f->n_targets, d))
            return false;
    for (int64_t i = 0; i < f->n_trees; i++)
        if (!check_index(n, "tree_roots", i, f->roots[i], f->n_nodes, d)) return false;
    return true;
}

/* ---- unfolding the trees into paths ---- */

typedef struct walk {
    forest *f;
    kl_node *n;
    kl_diag *d;
    kl_arena *a;
    bool fill;                /* second pass: write the tables (first: count) */
    int64_t *stack_node, *stack_dir;
    bool *on_stack;
    int64_t next_set;         /* membership sets in the order the walk meets their nodes */
    const double *set_starts; /* membership_values */
    int64_t n_member_values, member_pos;
} walk;

/* The next NaN-terminated set of membership_values, for MEMBER node i (on its first visit). */
static bool take_set(walk *w, int64_t i) {
    forest *f = w->f;
    if (f->set_of[i] >= 0) return true;
    int64_t begin = w->member_pos, end = begin;
    while (end < w->n_member_values && !isnan(kl_value_const_float(f->members, end))) end++;
    if (end >= w->n_member_values)
        return kl_error(w->d, w->n, "membership_values has no NaN-terminated set left for "
                        "node %lld", (long long)i);
    f->set_of[i] = w->next_set++;
    if (end - begin > f->set_size) f->set_size = end - begin;
    if (w->fill)
        for (int64_t k = begin; k < end; k++)
            f->set_values[f->set_of[i] * f->set_size + (k - begin)] =
                kl_value_const_float(f->members, k);
    w->member_pos = end + 1;
    return true;
}

/* One path per entry of `leaf`, through the `len` nodes on the stack. */
static bool add_paths(walk *w, int64_t len, int64_t leaf) {
    forest *f = w->f;
    if (len > f->depth && !w->fill) f->depth = len;
    for (int64_t e = 0; e < f->leaf_count[leaf]; e++) {
        int64_t p = f->n_paths++, cells;
        if (!kl_mul_checked(f->n_paths, f->depth ? f->depth : 1, &cells) ||
            cells > MAX_PATH_CELLS)
            return kl_error(w->d, w->n, "the trees unfold into more than %lld path steps",
                            (long long)MAX_PATH_CELLS);
        if (w->fill) {
            memcpy(f->path_node + p * f->depth, w->stack_node, (size_t)len * sizeof(int64_t));
            memcpy(f->path_dir + p * f->depth, w->stack_dir, (size_t)len * sizeof(int64_t));
            f->path_len[p] = len;
            f->path_entry[p] = f->leaf_first[leaf] + e;
        }
    }
    return true;
}

static bool visit(walk *w, int64_t i, int64_t depth) {
    forest *f = w->f;
    if (w->on_stack[i])
        return kl_error(w->d, w->n, "the trees have a cycle through node %lld", (long long)i);
    if (depth >= MAX_DEPTH)
        return kl_error(w->d, w->n, "a tree is deeper than %d nodes", MAX_DEPTH);
    if (f->mode[i] == MODE_MEMBER && !take_set(w, i)) return false;
    f->used_mode[f->mode[i]] = true;
    w->on_stack[i] = true;
    w->stack_node[depth] = i;
    for (int dir = 1; dir >= 0; dir--) {
        w->stack_dir[depth] = dir;
        bool leaf = dir ? f->trueleaf[i] : f->falseleaf[i];
        int64_t next = dir ? f->truenode[i] : f->falsenode[i];
        if (!leaf) {
            if (!visit(w, next, depth + 1)) return false;
            continue;
        }
        if (!add_paths(w, depth + 1, next)) return false;
    }
    w->on_stack[i] = false;
    return true;
}

/* Two walks: one to size the tables, one to fill them. */
bool kl_forest_unfold(kl_node *n, kl_arena *a, forest *f, kl_diag *d) {
    walk w = {.f = f, .n = n, .d = d, .a = a};
    w.stack_node = kl_alloc_array(a, MAX_DEPTH, sizeof *w.stack_node);
    w.stack_dir = kl_alloc_array(a, MAX_DEPTH, sizeof *w.stack_dir);
    w.on_stack = kl_alloc_array(a, (size_t)f->n_nodes + 1, sizeof *w.on_stack);
    f->set_of = kl_alloc_array(a, (size_t)f->n_nodes + 1, sizeof *f->set_of);
    w.n_member_values = f->members ? kl_shape_numel(&f->members->shape) : 0;
    for (int pass = 0; pass < 2; pass++) {
        w.fill = pass == 1;
        f->n_sets = w.next_set; /* what the counting pass met */
        w.next_set = w.member_pos = 0;
        for (int64_t i = 0; i < f->n_nodes; i++) f->set_of[i] = -1;
        if (w.fill) {
            int64_t cells = (f->n_paths + 1) * (f->depth ? f->depth : 1);
            f->path_node = kl_alloc_array(a, (size_t)cells, sizeof *f->path_node);
            f->path_dir = kl_alloc_array(a, (size_t)cells, sizeof *f->path_dir);
            f->path_len = kl_alloc_array(a, (size_t)f->n_paths + 1, sizeof *f->path_len);
            f->path_entry = kl_alloc_array(a, (size_t)f->n_paths + 1, sizeof *f->path_entry);
            int64_t sc = f->n_sets * (f->set_size ? f->set_size : 1) + 1;
            f->set_values = kl_alloc_array(a, (size_t)sc, sizeof *f->set_values);
            for (int64_t k = 0; k < sc; k++) f->set_values[k] = NAN;
            f->n_paths = 0;
        }
        for (int64_t t = 0; t < f->n_trees; t++) {
            int64_t r = f->roots[t];
            /* a tree that is one leaf: both ways lead to it */
            if (f->trueleaf[r] && f->falseleaf[r] && f->truenode[r] == f->falsenode[r]) {
                if (!add_paths(&w, 0, f->truenode[r])) return false;
                continue;
            }
            if (!visit(&w, r, 0)) return false;
        }
    }
    int64_t want_sets = 0;
    for (int64_t i = 0; i < f->n_nodes; i++) want_sets += f->mode[i] == MODE_MEMBER;
    int64_t nans = 0;
    for (int64_t k = 0; k < w.n_member_values; k++)
        nans += isnan(kl_value_const_float(f->members, k));
    if (nans != want_sets)
        return kl_error(d, n, "membership_values holds %lld sets for %lld membership nodes",
                        (long long)nans, (long long)want_sets);
    return true;
}

static bool tree_input(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    kl_value *x = n->inputs[0];
    if (!kl_dtype_is_float(x->dtype))
        return kl_error(d, n, "X is %s; TreeEnsemble takes floating-point features",
                        kl_dtype_name(x->dtype));
    if (x->shape.rank != 2) return kl_error(d, n, "X must be [N, F], not rank %d", x->shape.rank);
    return true;
}

static bool build_forest(kl_node *n, kl_arena *a, forest *f, kl_diag *d) {
    if (!tree_input(n, d)) return false;
    if (!read_forest(n, a, f, d)) return false;
    return kl_forest_unfold(n, a, f, d);
}

static bool infer_tree_ensemble(kl_node *n, kl_diag *d) {
    kl_arena *a = kl_arena_new();
    forest f = {0};
    bool ok = build_forest(n, a, &f, d);
    int64_t targets = f.n_targets;
    kl_arena_free(a);
    if (!ok) return false;
    kl_shape s = {.rank = 2, .dim = {n->inputs[0]->shape.dim[0], targets}};
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &s);
}

/* ---- lowering ---- */

static kl_buffer *const_table(kl_lower *L, const kl_node *n, const char *what, kl_dtype t,
                              void *data, kl_shape s) {
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->name, what),
                                     KL_BUF_CONST, t, &s);
    b->data = data;
    b->host = data; /* the interpreter reads it when folding */
    return b;
}

typedef struct tree_tables {
    kl_buffer *feature, *mode, *split, *missing, *set_of, *sets;
} tree_tables;

/* Whether row `row` of X goes the true way at the node loaded as `node` (an int64 expr). */
static kl_expr *node_test(kl_arena *a, const forest *f, const tree_tables *tt, kl_buffer *x,
                          kl_expr *row, kl_expr *node) {
    kl_expr *feat = kl_e_load(a, tt->feature, &node);
    kl_expr *at[2] = {row, feat};
    kl_expr *v = kl_e_cast(a, KL_F64, kl_e_load(a, x, at));
    kl_expr *s = kl_e_load(a, tt->split, &node);
    kl_expr *mode = kl_e_load(a, tt->mode, &node);
    static const kl_binop cmp[N_MODES] = {KL_LE, KL_LT, KL_GE, KL_GT, KL_EQ, KL_NE, KL_EQ};
    kl_expr *test = NULL;
    for (int m = N_MODES - 1; m >= 0; m--) {
        if (!f->used_mode[m]) continue;
        kl_expr *t;
        if (m == MODE_MEMBER) {
            kl_expr *set = kl_e_binary(a, KL_MAX, kl_e_load(a, tt->set_of, &node),
                                       kl_e_idx(a, 0));
            t = kl_e_const_i(a, KL_BOOL, 0);
            for (int64_t k = 0; k < f->set_size; k++)
                t = kl_e_binary(a, KL_OR, t, kl_e_binary(a, KL_EQ, v,
                                kl_e_load(a, tt->sets, (kl_expr *[]){set, kl_e_idx(a, k)})));
        } else {
            t = kl_e_binary(a, cmp[m], v, s);
        }
        test = test ? kl_e_select(a, kl_e_binary(a, KL_EQ, mode, kl_e_idx(a, m)), t, test) : t;
    }
    if (f->missing_true) {
        kl_expr *nan = kl_e_binary(a, KL_NE, v, v);
        kl_expr *tracks = kl_e_binary(a, KL_NE, kl_e_load(a, tt->missing, &node), kl_e_idx(a, 0));
        test = kl_e_binary(a, KL_OR, test, kl_e_and(a, tracks, nan));
    }
    return test;
}

void kl_forest_kernel(kl_lower *L, const kl_node *n, const forest *fp, kl_buffer *x,
                      kl_buffer *out, kl_dtype u, kl_forest_value what) {
    kl_arena *a = L->arena;
    forest f = *fp;
    int64_t nn = f.n_nodes ? f.n_nodes : 1, depth = f.depth ? f.depth : 1;
    /* per node: feature, mode, split (double), NaN-goes-true, membership set */
    int64_t *feat = kl_alloc_array(a, (size_t)nn, sizeof *feat);
    int64_t *mode = kl_alloc_array(a, (size_t)nn, sizeof *mode);
    int64_t *miss = kl_alloc_array(a, (size_t)nn, sizeof *miss);
    int64_t *set_of = kl_alloc_array(a, (size_t)nn, sizeof *set_of);
    double *split = kl_alloc_array(a, (size_t)nn, sizeof *split);
    for (int64_t i = 0; i < f.n_nodes; i++) {
        feat[i] = f.feature[i];
        mode[i] = f.mode[i];
        miss[i] = f.missing_true ? f.missing_true[i] != 0 : 0;
        set_of[i] = f.set_of[i];
        split[i] = f.split[i];
    }
    kl_shape ns = {.rank = 1, .dim = {nn}};
    tree_tables tt = {
        .feature = const_table(L, n, "features", KL_I64, feat, ns),
        .mode = const_table(L, n, "modes", KL_I64, mode, ns),
        .split = const_table(L, n, "splits", KL_F64, split, ns),
        .missing = const_table(L, n, "missing_true", KL_I64, miss, ns),
        .set_of = const_table(L, n, "set_of", KL_I64, set_of, ns),
        .sets = const_table(L, n, "sets", KL_F64, f.set_values,
                            (kl_shape){2, {f.n_sets ? f.n_sets : 1,
                                           f.set_size ? f.set_size : 1}}),
    };
    /* per path: its entry's weight (in u; divided by the tree count for AVERAGE) and target;
     * a forest of empty leaves gets one path of no target */
    int64_t np_ = f.n_paths ? f.n_paths : 1;
    size_t es = kl_dtype_size(u);
    unsigned char *w = kl_alloc_array(a, (size_t)np_, es);
    int64_t *target = kl_alloc_array(a, (size_t)np_, sizeof *target);
    target[0] = -1;
    for (int64_t p = 0; p < f.n_paths; p++) {
        double v = f.entry_weight[f.path_entry[p]];
        if (f.agg == AGG_AVERAGE && what == KL_FOREST_AGGREGATE) v /= (double)f.n_trees;
        if (what == KL_FOREST_REACHED) v = 1;
        if (u == KL_F64) ((double *)w)[p] = v;
        else ((float *)w)[p] = (float)v;
        target[p] = f.entry_target[f.path_entry[p]];
    }
    kl_shape ps = {.rank = 1, .dim = {np_}}, pd = {.rank = 2, .dim = {np_, depth}};
    kl_buffer *wb = const_table(L, n, "path_weights", u, w, ps);
    kl_buffer *tb = const_table(L, n, "path_targets", KL_I64, target, ps);
    kl_buffer *lb = const_table(L, n, "path_lengths", KL_I64, f.path_len, ps);
    kl_buffer *nb = const_table(L, n, "path_nodes", KL_I64, f.path_node, pd);
    kl_buffer *db = const_table(L, n, "path_ways", KL_I64, f.path_dir, pd);

    kl_kernel *k = kl_kernel_new(L->prog, n, what == KL_FOREST_REACHED ? "reached" : NULL);
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = out->shape.dim[0];
    k->extent[1] = f.n_targets;
    k->extent[2] = np_;
    k->out = out;
    k->out_idx = kl_lower_ivs(L, 2);
    kl_expr *row = kl_e_iv(a, 0), *t = kl_e_iv(a, 1), *p = kl_e_iv(a, 2);
    kl_expr *reached = kl_e_binary(a, KL_EQ, kl_e_load(a, tb, &p), t);
    kl_expr *plen = kl_e_load(a, lb, &p);
    for (int64_t j = 0; j < f.depth; j++) {
        kl_expr *at[2] = {p, kl_e_idx(a, j)};
        kl_expr *node = kl_e_load(a, nb, at);
        kl_expr *way = kl_e_binary(a, KL_NE, kl_e_load(a, db, at), kl_e_idx(a, 0));
        kl_expr *ok = kl_e_binary(a, KL_EQ, node_test(a, &f, &tt, x, row, node), way);
        reached = kl_e_and(a, reached, kl_e_binary(a, KL_OR, kl_e_binary(a, KL_LE, plen,
                                                                          kl_e_idx(a, j)), ok));
    }
    kl_expr *wp = kl_e_load(a, wb, &p);
    k->acc_dtype = u;
    if (what != KL_FOREST_REACHED && (f.agg == AGG_MIN || f.agg == AGG_MAX)) {
        /* a target no tree reaches keeps the extreme finite value, as the reference starts */
        double far = u == KL_F64 ? 1.7976931348623157e308 : 3.4028234663852886e38;
        k->reduce = f.agg == AGG_MIN ? KL_RED_MIN : KL_RED_MAX;
        k->value = kl_e_select(a, reached, wp, kl_e_const_f(a, u, f.agg == AGG_MIN ? far : -far));
    } else {
        k->reduce = KL_RED_SUM;
        k->value = kl_e_select(a, reached, wp, kl_e_const_f(a, u, 0));
    }
    k->result = kl_e_cast(a, out->dtype, kl_e_acc(a, u));
    kl_program_add_kernel(L->prog, k);
}

static bool lower_tree_ensemble(kl_lower *L, kl_node *n, kl_diag *d) {
    forest f;
    if (!build_forest(n, L->arena, &f, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    kl_forest_kernel(L, n, &f, x, y, kl_arith_compute_dtype(x->dtype), KL_FOREST_AGGREGATE);
    return true;
}

const kl_op kl_ops_trees[] = {
    {ML, "TreeEnsemble", 5, 5, tree_attrs, infer_tree_ensemble, lower_tree_ensemble},
    {0},
};

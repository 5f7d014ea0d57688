/*
 * trees_legacy.c — ai.onnx.ml TreeEnsembleRegressor and TreeEnsembleClassifier (opset 1; opset 3
 * adds the *_as_tensor forms of the float attributes), as ONNX Runtime computes them.
 *
 * Their attributes spell the forest as one list of nodes, each named by (tree id, node id),
 * interior (BRANCH_*) or LEAF, the successors named by node id inside the node's tree; the
 * leaves' weights are a separate list of (tree id, node id, target or class, weight). They are
 * read here into the forest of trees.h (interior nodes become nodes, LEAF nodes leaves holding
 * their weights), which trees.c checks, unfolds and evaluates; only what follows the
 * aggregation lives here. As in ONNX Runtime:
 *   - the root of a tree is its first node in the list; a tree's nodes are contiguous;
 *   - X is [N, F] (a 1-D X is refused: ONNX Runtime 1.30 reads it as one row, yet checks the
 *     feature ids against one feature); float or double, and for the classifier also int32 or
 *     int64 (ONNX Runtime has no integer regressor); splits compare in double (ONNX Runtime
 *     compares an integer feature with a float split in float: they differ only above 2^24);
 *     weights are summed in float32, in double for double X (ONNX Runtime's threshold type
 *     follows X);
 *   - Regressor: Y[n, t] = aggregate (SUM, AVERAGE = SUM / trees, MIN, MAX) + base_values[t],
 *     then post_transform over the targets; with two or more targets, a target no reached
 *     leaf names is 0 (base value or not); one target: the base value, and only PROBIT
 *     applies;
 *   - Classifier: the scores are summed per class; a class no reached leaf names "has no
 *     score". Three or more classes: base_values are added (giving every class a score), the
 *     label is the first highest of the classes with a score, Z = post_transform(scores).
 *     Two classes follow ONNX Runtime's binary rules, see binary_outputs().
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trees.h"

#define LEAF (-1)

typedef struct legacy {
    kl_forest f;
    kl_ml_transform pt;
    double *base;
    int64_t n_base;
    /* classifier */
    const int64_t *labels;
    bool binary_case;   /* two classes, and the weights name only one of them */
    bool all_positive;  /* no weight is negative */
} legacy;

#define COMMON_ATTRS                                                                        \
    "base_values", "base_values_as_tensor", "nodes_falsenodeids", "nodes_featureids",          \
        "nodes_hitrates", "nodes_hitrates_as_tensor", "nodes_missing_value_tracks_true",       \
        "nodes_modes", "nodes_nodeids", "nodes_treeids", "nodes_truenodeids", "nodes_values",  \
        "nodes_values_as_tensor", "post_transform"

static const char *const regressor_attrs[] = {
    COMMON_ATTRS, "aggregate_function", "n_targets", "target_ids", "target_nodeids",
    "target_treeids", "target_weights", "target_weights_as_tensor", NULL};
static const char *const classifier_attrs[] = {
    COMMON_ATTRS, "class_ids", "class_nodeids", "class_treeids", "class_weights",
    "class_weights_as_tensor", "classlabels_int64s", "classlabels_strings", NULL};

/* A float list given as NAME (floats) or NAME_as_tensor; count -1 when neither is there. */
static bool floats_attr(kl_node *n, kl_arena *a, const char *name, double **out, int64_t *count,
                        kl_diag *d) {
    const kl_attr *fl = kl_attr_find(n, name);
    const kl_attr *t = kl_attr_find(n, kl_sprintf(a, "%s_as_tensor", name));
    *out = NULL;
    *count = -1;
    if (fl && t) return kl_error(d, n, "%s is given twice (also as %s_as_tensor)", name, name);
    if (fl) {
        if (fl->type != KL_ATTR_FLOATS) return kl_error(d, n, "%s must be floats", name);
        *count = fl->n;
        *out = kl_alloc_array(a, (size_t)fl->n + 1, sizeof **out);
        memcpy(*out, fl->floats, (size_t)fl->n * sizeof **out);
    } else if (t) {
        if (t->type != KL_ATTR_TENSOR || !kl_dtype_is_float(t->t->dtype))
            return kl_error(d, n, "%s_as_tensor must be a float tensor", name);
        *count = kl_shape_numel(&t->t->shape);
        *out = kl_alloc_array(a, (size_t)*count + 1, sizeof **out);
        for (int64_t i = 0; i < *count; i++) (*out)[i] = kl_value_const_float(t->t, i);
    }
    return true;
}

/* An INTS attribute that must hold `want` entries (0 entries when absent and `optional`). */
static bool ints_attr(kl_node *n, const char *name, int64_t want, bool optional,
                      const int64_t **out, kl_diag *d) {
    int64_t got = kl_attr_ints(n, name, out);
    if (got < 0 && optional) {
        *out = NULL;
        return true;
    }
    if (got != want)
        return kl_error(d, n, "%s has %lld entries, not %lld", name, (long long)(got < 0 ? 0 : got),
                        (long long)want);
    return true;
}

/* ---- (tree id, node id) -> position in the node list ---- */

typedef struct node_key {
    int64_t tree, node, at;
} node_key;

static int cmp_key(const void *pa, const void *pb) {
    const node_key *a = pa, *b = pb;
    if (a->tree != b->tree) return a->tree < b->tree ? -1 : 1;
    if (a->node != b->node) return a->node < b->node ? -1 : 1;
    return 0;
}

static int64_t find_node(const node_key *keys, int64_t count, int64_t tree, int64_t node) {
    node_key k = {tree, node, 0};
    const node_key *hit = bsearch(&k, keys, (size_t)count, sizeof k, cmp_key);
    return hit ? hit->at : -1;
}

static int parse_mode(const char *s) {
    static const char *const names[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT",
                                        "BRANCH_EQ", "BRANCH_NEQ"};
    for (int m = 0; m < 6; m++)
        if (!strcmp(s, names[m])) return m;
    return strcmp(s, "LEAF") ? -2 : LEAF;
}

typedef struct node_list {
    int64_t count;
    const int64_t *tree, *id, *feature, *truenode, *falsenode, *missing;
    const char **modes;
    double *values;
    int *mode;
    int64_t *slot; /* interior: its forest node; LEAF: its forest leaf */
    node_key *keys;
} node_list;

static bool read_node_list(kl_node *n, kl_arena *a, node_list *l, kl_diag *d) {
    l->count = kl_attr_ints(n, "nodes_treeids", &l->tree);
    if (l->count < 1) return kl_error(d, n, "nodes_treeids must list at least one node");
    const kl_attr *modes = kl_attr_find(n, "nodes_modes");
    if (!modes || modes->type != KL_ATTR_STRINGS || modes->n != l->count)
        return kl_error(d, n, "nodes_modes must be strings, one per node (%lld)",
                        (long long)l->count);
    l->modes = modes->strings;
    int64_t nv;
    if (!ints_attr(n, "nodes_nodeids", l->count, false, &l->id, d) ||
        !ints_attr(n, "nodes_featureids", l->count, false, &l->feature, d) ||
        !ints_attr(n, "nodes_truenodeids", l->count, false, &l->truenode, d) ||
        !ints_attr(n, "nodes_falsenodeids", l->count, false, &l->falsenode, d) ||
        !ints_attr(n, "nodes_missing_value_tracks_true", l->count, true, &l->missing, d) ||
        !floats_attr(n, a, "nodes_values", &l->values, &nv, d))
        return false;
    if (nv != l->count)
        return kl_error(d, n, "nodes_values must have one value per node (%lld)",
                        (long long)l->count);
    l->mode = kl_alloc_array(a, (size_t)l->count, sizeof *l->mode);
    l->slot = kl_alloc_array(a, (size_t)l->count, sizeof *l->slot);
    l->keys = kl_alloc_array(a, (size_t)l->count, sizeof *l->keys);
    for (int64_t i = 0; i < l->count; i++) {
        l->mode[i] = parse_mode(l->modes[i]);
        if (l->mode[i] == -2)
            return kl_error(d, n, "nodes_modes[%lld] = '%s' is not BRANCH_LEQ, BRANCH_LT, "
                            "BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ or LEAF",
                            (long long)i, l->modes[i]);
        l->keys[i] = (node_key){l->tree[i], l->id[i], i};
    }
    qsort(l->keys, (size_t)l->count, sizeof *l->keys, cmp_key);
    for (int64_t i = 1; i < l->count; i++)
        if (!cmp_key(&l->keys[i - 1], &l->keys[i]))
            return kl_error(d, n, "node %lld of tree %lld is listed twice",
                            (long long)l->keys[i].node, (long long)l->keys[i].tree);
    return true;
}

/* The roots: the first node of each run of one tree id (a tree's nodes must be contiguous). */
static bool find_roots(kl_node *n, kl_arena *a, const node_list *l, int64_t **roots,
                       int64_t *n_trees, kl_diag *d) {
    *roots = kl_alloc_array(a, (size_t)l->count, sizeof **roots);
    *n_trees = 0;
    int64_t distinct = 1;
    for (int64_t i = 1; i < l->count; i++) distinct += l->keys[i].tree != l->keys[i - 1].tree;
    for (int64_t i = 0; i < l->count; i++)
        if (i == 0 || l->tree[i] != l->tree[i - 1]) (*roots)[(*n_trees)++] = i;
    if (*n_trees != distinct)
        return kl_error(d, n, "the nodes of each tree must be listed together (nodes_treeids "
                        "has %lld runs for %lld trees)", (long long)*n_trees, (long long)distinct);
    return true;
}

/* Where node `i` goes when its test is `dir`: a forest node or leaf, by (tree, id). */
static bool successor(kl_node *n, const node_list *l, int64_t i, int dir, int64_t *to,
                      int64_t *is_leaf, kl_diag *d) {
    int64_t id = dir ? l->truenode[i] : l->falsenode[i];
    int64_t j = find_node(l->keys, l->count, l->tree[i], id);
    if (j < 0)
        return kl_error(d, n, "%s[%lld] = %lld: tree %lld has no such node",
                        dir ? "nodes_truenodeids" : "nodes_falsenodeids", (long long)i,
                        (long long)id, (long long)l->tree[i]);
    *is_leaf = l->mode[j] == LEAF;
    *to = l->slot[j];
    return true;
}

/* The weight list (PREFIX_treeids, _nodeids, _ids, _weights) as the leaves' entries. */
static bool read_weights(kl_node *n, kl_arena *a, const char *prefix, const node_list *l,
                         kl_forest *f, kl_diag *d) {
    const int64_t *trees, *nodes, *ids;
    double *w;
    int64_t count;
    const char *wn = kl_sprintf(a, "%s_weights", prefix);
    if (!floats_attr(n, a, wn, &w, &count, d)) return false;
    if (count < 0) count = 0;
    if (!ints_attr(n, kl_sprintf(a, "%s_treeids", prefix), count, count == 0, &trees, d) ||
        !ints_attr(n, kl_sprintf(a, "%s_nodeids", prefix), count, count == 0, &nodes, d) ||
        !ints_attr(n, kl_sprintf(a, "%s_ids", prefix), count, count == 0, &ids, d))
        return false;
    int64_t *leaf_of = kl_alloc_array(a, (size_t)count + 1, sizeof *leaf_of);
    for (int64_t e = 0; e < count; e++) {
        int64_t j = find_node(l->keys, l->count, trees[e], nodes[e]);
        if (j < 0 || l->mode[j] != LEAF)
            return kl_error(d, n, "%s_nodeids[%lld]: node %lld of tree %lld is %s", prefix,
                            (long long)e, (long long)nodes[e], (long long)trees[e],
                            j < 0 ? "not in the node list" : "not a LEAF");
        if (ids[e] < 0 || ids[e] >= f->n_targets)
            return kl_error(d, n, "%s_ids[%lld] = %lld is not in [0, %lld)", prefix, (long long)e,
                            (long long)ids[e], (long long)f->n_targets);
        leaf_of[e] = l->slot[j];
        f->leaf_count[leaf_of[e]]++;
    }
    for (int64_t k = 1; k < f->n_leaves; k++)
        f->leaf_first[k] = f->leaf_first[k - 1] + f->leaf_count[k - 1];
    int64_t *fill = kl_alloc_array(a, (size_t)f->n_leaves + 1, sizeof *fill);
    f->n_entries = count;
    f->entry_target = kl_alloc_array(a, (size_t)count + 1, sizeof *f->entry_target);
    f->entry_weight = kl_alloc_array(a, (size_t)count + 1, sizeof *f->entry_weight);
    for (int64_t e = 0; e < count; e++) { /* in list order within each leaf, as ORT adds */
        int64_t at = f->leaf_first[leaf_of[e]] + fill[leaf_of[e]]++;
        f->entry_target[at] = ids[e];
        f->entry_weight[at] = w[e];
    }
    return true;
}

/* The node list as a forest (a tree that is one LEAF gets a node leading to it both ways). */
static bool read_legacy_forest(kl_node *n, kl_arena *a, const char *prefix, kl_forest *f,
                               kl_diag *d) {
    node_list l = {0};
    int64_t *roots, n_roots;
    if (!read_node_list(n, a, &l, d) || !find_roots(n, a, &l, &roots, &n_roots, d)) return false;
    int64_t interior = 0, leaves = 0;
    for (int64_t i = 0; i < l.count; i++) l.slot[i] = l.mode[i] == LEAF ? leaves++ : interior++;
    int64_t leaf_roots = 0;
    for (int64_t t = 0; t < n_roots; t++) leaf_roots += l.mode[roots[t]] == LEAF;
    f->n_nodes = interior + leaf_roots;
    f->n_leaves = leaves;
    f->n_trees = n_roots;
    size_t nn = (size_t)f->n_nodes + 1, nl = (size_t)leaves + 1;
    int64_t *feature = kl_alloc_array(a, nn, sizeof *feature);
    int64_t *tnode = kl_alloc_array(a, nn, sizeof *tnode), *fnode = kl_alloc_array(a, nn, 8);
    int64_t *tleaf = kl_alloc_array(a, nn, sizeof *tleaf), *fleaf = kl_alloc_array(a, nn, 8);
    int64_t *missing = kl_alloc_array(a, nn, sizeof *missing);
    int64_t *froots = kl_alloc_array(a, (size_t)n_roots, sizeof *froots);
    f->mode = kl_alloc_array(a, nn, sizeof *f->mode);
    f->split = kl_alloc_array(a, nn, sizeof *f->split);
    f->leaf_first = kl_alloc_array(a, nl, sizeof *f->leaf_first);
    f->leaf_count = kl_alloc_array(a, nl, sizeof *f->leaf_count);
    for (int64_t i = 0; i < l.count; i++) {
        if (l.mode[i] == LEAF) continue;
        int64_t k = l.slot[i];
        if (l.feature[i] < 0 || l.feature[i] >= f->n_features)
            return kl_error(d, n, "nodes_featureids[%lld] = %lld is not in [0, %lld)",
                            (long long)i, (long long)l.feature[i], (long long)f->n_features);
        feature[k] = l.feature[i];
        f->mode[k] = l.mode[i];
        f->split[k] = l.values[i];
        missing[k] = l.missing ? l.missing[i] == 1 : 0;
        if (!successor(n, &l, i, 1, &tnode[k], &tleaf[k], d) ||
            !successor(n, &l, i, 0, &fnode[k], &fleaf[k], d))
            return false;
    }
    int64_t extra = interior;
    for (int64_t t = 0; t < n_roots; t++) {
        int64_t r = roots[t];
        if (l.mode[r] != LEAF) {
            froots[t] = l.slot[r];
            continue;
        }
        froots[t] = extra;
        tleaf[extra] = fleaf[extra] = 1;
        tnode[extra] = fnode[extra] = l.slot[r];
        extra++;
    }
    f->feature = feature;
    f->truenode = tnode;
    f->falsenode = fnode;
    f->trueleaf = tleaf;
    f->falseleaf = fleaf;
    f->missing_true = l.missing ? missing : NULL;
    f->roots = froots;
    return read_weights(n, a, prefix, &l, f, d);
}

static bool read_legacy(kl_node *n, kl_arena *a, bool classifier, legacy *m, kl_diag *d) {
    memset(m, 0, sizeof *m);
    kl_forest *f = &m->f;
    if (!kl_ml_need_features(n, d)) return false;
    const kl_value *x = n->inputs[0];
    if (!classifier && !kl_dtype_is_float(x->dtype))
        return kl_error(d, n, "X is %s; TreeEnsembleRegressor takes float or double (as ONNX "
                        "Runtime does)", kl_dtype_name(x->dtype));
    if (x->shape.rank != 2) /* ONNX Runtime 1.30 reads [F] as one row but checks 1 feature */
        return kl_error(d, n, "X must be [N, F], not rank 1 (ONNX Runtime reads a 1-D X "
                        "inconsistently)");
    f->n_features = x->shape.dim[1];
    if (f->n_features < 1) return kl_error(d, n, "X has no features");
    if (classifier) {
        if (kl_attr_find(n, "classlabels_strings"))
            return kl_error(d, n, "classlabels_strings: string labels need string tensors, "
                            "which kiln does not support yet (use classlabels_int64s)");
        f->n_targets = kl_attr_ints(n, "classlabels_int64s", &m->labels);
        if (f->n_targets < 2) return kl_error(d, n, "classlabels_int64s needs two or more classes");
        f->agg = KL_TREE_SUM;
    } else {
        f->n_targets = kl_attr_int(n, "n_targets", 0);
        if (f->n_targets < 1 || f->n_targets > KL_MAX_BUILT_BYTES)
            return kl_error(d, n, "n_targets must be given and >= 1");
        static const char *const aggs[] = {"AVERAGE", "SUM", "MIN", "MAX"};
        const char *s = kl_attr_string(n, "aggregate_function", "SUM");
        f->agg = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(s, aggs[i])) f->agg = i;
        if (f->agg < 0)
            return kl_error(d, n, "aggregate_function '%s' is not AVERAGE, SUM, MIN or MAX", s);
    }
    if (!kl_ml_parse_transform(n, &m->pt, d) ||
        !floats_attr(n, a, "base_values", &m->base, &m->n_base, d) ||
        !read_legacy_forest(n, a, classifier ? "class" : "target", f, d) ||
        !kl_forest_check(n, f, d))
        return false;
    if (m->n_base < 0) m->n_base = 0;
    bool binary = classifier && f->n_targets == 2;
    if (m->n_base != 0 && m->n_base != f->n_targets && !(binary && m->n_base == 1))
        return kl_error(d, n, "base_values has %lld values, not one per %s (%lld)",
                        (long long)m->n_base, classifier ? "class" : "target",
                        (long long)f->n_targets);
    m->all_positive = true;
    bool one_class = true;
    for (int64_t e = 0; e < f->n_entries; e++) {
        m->all_positive &= f->entry_weight[e] >= 0;
        one_class &= f->entry_target[e] == f->entry_target[0];
    }
    m->binary_case = binary && f->n_entries > 0 && one_class;
    return kl_forest_unfold(n, a, f, d);
}

/* ---- inference ---- */

static bool infer_regressor(kl_node *n, kl_diag *d) {
    kl_arena *a = kl_arena_new();
    legacy m;
    bool ok = read_legacy(n, a, false, &m, d);
    int64_t targets = m.f.n_targets;
    kl_arena_free(a);
    if (!ok) return false;
    kl_shape s = {.rank = 2, .dim = {n->inputs[0]->shape.dim[0], targets}};
    return kl_infer_set(n, 0, KL_F32, &s);
}

static bool infer_classifier(kl_node *n, kl_diag *d) {
    kl_arena *a = kl_arena_new();
    legacy m;
    bool ok = read_legacy(n, a, true, &m, d);
    int64_t classes = m.f.n_targets;
    kl_arena_free(a);
    if (!ok) return false;
    int64_t rows = n->inputs[0]->shape.dim[0];
    kl_shape ls = {.rank = 1, .dim = {rows}}, zs = {.rank = 2, .dim = {rows, classes}};
    return kl_infer_set(n, 0, KL_I64, &ls) && kl_infer_set(n, 1, KL_F32, &zs);
}

/* ---- lowering ---- */

/* The type scores are summed in: X's when double, else float32. */
static kl_dtype score_type(const kl_value *x) { return x->dtype == KL_F64 ? KL_F64 : KL_F32; }

typedef struct sums {
    kl_buffer *score;   /* [N, T] the aggregate (AVERAGE: the plain sum) */
    kl_buffer *reached; /* [N, T] how many reached entries name the target (0: no score) */
} sums;

static sums forest_sums(kl_lower *L, const kl_node *n, const legacy *m, kl_buffer *x) {
    kl_shape s = {.rank = 2, .dim = {n->inputs[0]->shape.dim[0], m->f.n_targets}};
    kl_dtype u = score_type(n->inputs[0]);
    sums r = {kl_lower_temp(L, "scores", u, &s), kl_lower_temp(L, "reached", KL_F32, &s)};
    kl_forest_kernel(L, n, &m->f, x, r.score, u, KL_FOREST_TOTAL);
    kl_forest_kernel(L, n, &m->f, x, r.reached, KL_F32, KL_FOREST_REACHED);
    return r;
}

static kl_expr *at2(kl_arena *a, kl_buffer *b, kl_expr *i, kl_expr *j) {
    return kl_e_load(a, b, (kl_expr *[]){i, j});
}

/* A summed score as float32 (the outputs' type; a double sum is rounded once, here). */
static kl_expr *score_at(kl_arena *a, const sums *s, kl_expr *i, kl_expr *j) {
    return kl_e_cast(a, KL_F32, at2(a, s->score, i, j));
}

static kl_expr *has_score(kl_arena *a, const sums *s, kl_expr *i, kl_expr *j) {
    return kl_e_binary(a, KL_GT, at2(a, s->reached, i, j), kl_e_const_f(a, KL_F32, 0.5));
}

static kl_expr *f32(kl_arena *a, double v) { return kl_e_const_f(a, KL_F32, v); }

static bool lower_regressor(kl_lower *L, kl_node *n, kl_diag *d) {
    kl_arena *a = L->arena;
    legacy m;
    if (!read_legacy(n, a, false, &m, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]), *y = kl_lower_buffer(L, n->outputs[0]);
    sums s = forest_sums(L, n, &m, x);
    kl_expr *i = kl_e_iv(a, 0), *t = kl_e_iv(a, 1);
    kl_expr *v = score_at(a, &s, i, t);
    if (m.f.agg == KL_TREE_AVERAGE)
        v = kl_e_binary(a, KL_DIV, v, f32(a, (double)m.f.n_trees));
    else if (m.f.agg == KL_TREE_MIN || m.f.agg == KL_TREE_MAX)
        v = kl_e_select(a, has_score(a, &s, i, t), v, f32(a, 0));
    if (m.n_base) {
        kl_buffer *base = kl_ml_const_floats(L, n, "base_values", m.base, m.n_base,
                                             (kl_shape){1, {m.n_base}});
        v = kl_e_binary(a, KL_ADD, v, kl_e_load(a, base, &t));
    }
    if (m.f.n_targets > 1) /* a target without a score is written as 0, base or not */
        v = kl_e_select(a, has_score(a, &s, i, t), v, f32(a, 0));
    if (m.f.n_targets == 1) { /* ONNX Runtime applies only PROBIT to a single score */
        kl_arith_map(L, n, "finish", y, m.pt == KL_ML_PT_PROBIT ? kl_ml_probit(a, v) : v);
        return true;
    }
    kl_buffer *z = kl_lower_temp(L, "total", KL_F32, &y->shape);
    kl_arith_map(L, n, "total", z, v);
    kl_ml_transform_rows(L, n, m.pt, z, y);
    return true;
}

/* Three or more classes: base values join every score; the label is the first highest score
 * among the classes that have one. */
static void multiclass_outputs(kl_lower *L, const kl_node *n, const legacy *m, const sums *s,
                               kl_buffer *y, kl_buffer *z) {
    kl_arena *a = L->arena;
    kl_expr *i = kl_e_iv(a, 0), *c = kl_e_iv(a, 1);
    kl_expr *v = score_at(a, s, i, c), *has = has_score(a, s, i, c);
    if (m->n_base) {
        kl_buffer *base = kl_ml_const_floats(L, n, "base_values", m->base, m->n_base,
                                             (kl_shape){1, {m->n_base}});
        v = kl_e_binary(a, KL_ADD, v, kl_e_load(a, base, &c));
        has = kl_e_const_i(a, KL_BOOL, 1);
    }
    kl_buffer *total = kl_lower_temp(L, "total", KL_F32, &z->shape);
    kl_buffer *ranked = kl_lower_temp(L, "ranked", KL_F32, &z->shape);
    kl_arith_map(L, n, "total", total, v);
    kl_arith_map(L, n, "ranked", ranked,
                 kl_e_select(a, has, at2(a, total, i, c), f32(a, -INFINITY)));
    kl_ml_argmax_labels(L, n, ranked, kl_ml_const_ints(L, n, "labels", m->labels, m->f.n_targets),
                        y);
    kl_ml_transform_rows(L, n, m->pt, total, z);
}

/*
 * Two classes, as ONNX Runtime's classifier aggregator finishes them (s0, s1 the class sums,
 * h0, h1 whether they have a score, b the base values):
 *   2 base values: h1 ? (a1 = b1 + s0, a0 = -a1) : (a0 = s0 + b0, a1 = s1 + b1), two scores;
 *   1 base value:  a0 = s0 + b0, a1 = s1; two scores if h1, else one (a0);
 *   none:          a0 = s0, a1 = s1; two scores if h1, else one.
 * A score that has none is written as 0 (a0 where !h0, a1 where !h1), before post_transform.
 * The positive weight p = h1 ? a1 : h0 ? a0 : 0. When the weights name one class only
 * ("binary case"): label = p > 0.5 (all weights >= 0) or p > 0 (some negative) ? labels[1] :
 * labels[0]; otherwise label = p > 0 ? 1 : 0 (ONNX Runtime's default labels). Z: two scores go
 * through post_transform; one score a0 becomes [probit(a0), 0] (PROBIT), [a0, 0] (not the
 * binary case, one base value), [logistic(-a0), logistic(a0)] (LOGISTIC), [1 - a0, a0]
 * (binary case, weights >= 0) or [-a0, a0].
 */
typedef struct binary_row {
    kl_expr *a0, *a1, *h0, *h1, *two;
} binary_row;

/* Fresh expressions (one set per kernel) for row `i`. */
static binary_row binary_scores(kl_arena *a, const legacy *m, const sums *s, kl_expr *i) {
    kl_expr *c0 = kl_e_idx(a, 0), *c1 = kl_e_idx(a, 1);
    kl_expr *s0 = score_at(a, s, i, c0);
    binary_row r = {.a0 = s0, .a1 = score_at(a, s, i, c1), .h0 = has_score(a, s, i, c0),
                    .h1 = has_score(a, s, i, c1)};
    r.two = r.h1;
    if (m->n_base == 2) {
        kl_expr *b0 = f32(a, m->base[0]), *b1 = f32(a, m->base[1]);
        kl_expr *sum1 = kl_e_binary(a, KL_ADD, b1, s0);
        r.a1 = kl_e_select(a, r.h1, sum1, kl_e_binary(a, KL_ADD, score_at(a, s, i, c1), b1));
        r.a0 = kl_e_select(a, has_score(a, s, i, c1), kl_e_unary(a, KL_NEG, sum1),
                           kl_e_binary(a, KL_ADD, score_at(a, s, i, c0), b0));
        r.two = kl_e_const_i(a, KL_BOOL, 1);
    } else if (m->n_base == 1) {
        r.a0 = kl_e_binary(a, KL_ADD, s0, f32(a, m->base[0]));
    }
    return r;
}

static void binary_outputs(kl_lower *L, const kl_node *n, const legacy *m, const sums *s,
                           kl_buffer *y, kl_buffer *z) {
    kl_arena *a = L->arena;
    /* the pair [a0, a1] per row, and its transform (used where there are two scores) */
    kl_shape ps = {.rank = 2, .dim = {z->shape.dim[0], 2}};
    kl_buffer *pair = kl_lower_temp(L, "pair", KL_F32, &ps);
    kl_buffer *pair_t = kl_lower_temp(L, "pair_transformed", KL_F32, &ps);
    binary_row r = binary_scores(a, m, s, kl_e_iv(a, 0));
    kl_arith_map(L, n, "pair", pair,
                 kl_e_select(a, kl_e_binary(a, KL_EQ, kl_e_iv(a, 1), kl_e_idx(a, 0)),
                             kl_e_select(a, r.h0, r.a0, f32(a, 0)),
                             kl_e_select(a, r.h1, r.a1, f32(a, 0))));
    kl_ml_transform_rows(L, n, m->pt, pair, pair_t);
    /* label from the positive weight */
    kl_expr *i = kl_e_iv(a, 0);
    r = binary_scores(a, m, s, i);
    kl_expr *p0 = at2(a, pair, i, kl_e_idx(a, 0)), *p1 = at2(a, pair, i, kl_e_idx(a, 1));
    kl_expr *pos = kl_e_select(a, r.h1, p1, kl_e_select(a, r.h0, p0, f32(a, 0)));
    int64_t yes = 1, no = 0;
    double threshold = 0;
    if (m->binary_case) {
        yes = m->labels[1];
        no = m->labels[0];
        threshold = m->all_positive ? 0.5 : 0;
    }
    kl_arith_map(L, n, "label", y, kl_e_select(a, kl_e_binary(a, KL_GT, pos, f32(a, threshold)),
                                                  kl_e_const_i(a, KL_I64, yes),
                                                  kl_e_const_i(a, KL_I64, no)));
    /* scores: the transformed pair, or the one score written out as two */
    i = kl_e_iv(a, 0);
    r = binary_scores(a, m, s, i);
    kl_expr *v = at2(a, pair, i, kl_e_idx(a, 0)), *one0, *one1;
    if (m->pt == KL_ML_PT_PROBIT) {
        one0 = kl_ml_probit(a, v);
        one1 = f32(a, 0);
    } else if (!m->binary_case && m->n_base == 1) { /* ONNX Runtime writes the score alone */
        one0 = v;
        one1 = f32(a, 0);
    } else if (m->pt == KL_ML_PT_LOGISTIC) {
        one0 = kl_e_unary(a, KL_SIGMOID, kl_e_unary(a, KL_NEG, v));
        one1 = kl_e_unary(a, KL_SIGMOID, at2(a, pair, i, kl_e_idx(a, 0)));
    } else if (m->binary_case && m->all_positive) {
        one0 = kl_e_binary(a, KL_SUB, f32(a, 1), v);
        one1 = at2(a, pair, i, kl_e_idx(a, 0));
    } else {
        one0 = kl_e_unary(a, KL_NEG, v);
        one1 = at2(a, pair, i, kl_e_idx(a, 0));
    }
    kl_expr *first = kl_e_binary(a, KL_EQ, kl_e_iv(a, 1), kl_e_idx(a, 0));
    kl_arith_map(L, n, "scores", z,
                 kl_e_select(a, r.two, at2(a, pair_t, i, kl_e_iv(a, 1)),
                             kl_e_select(a, first, one0, one1)));
}

static bool lower_classifier(kl_lower *L, kl_node *n, kl_diag *d) {
    legacy m;
    if (!read_legacy(n, L->arena, true, &m, d)) return false;
    kl_buffer *x = kl_lower_buffer(L, n->inputs[0]);
    kl_buffer *y = kl_lower_buffer(L, n->outputs[0]), *z = kl_lower_buffer(L, n->outputs[1]);
    sums s = forest_sums(L, n, &m, x);
    if (m.f.n_targets > 2) multiclass_outputs(L, n, &m, &s, y, z);
    else binary_outputs(L, n, &m, &s, y, z);
    return true;
}

const kl_op kl_ops_trees_legacy[] = {
    {KL_ML_DOMAIN, "TreeEnsembleRegressor", 1, 4, regressor_attrs, infer_regressor,
     lower_regressor},
    {KL_ML_DOMAIN, "TreeEnsembleClassifier", 1, 4, classifier_attrs, infer_classifier,
     lower_classifier},
    {0},
};

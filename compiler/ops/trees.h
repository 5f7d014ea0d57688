/*
 * trees.h — the forest every tree operator of ai.onnx.ml reads its model into (trees.c:
 * TreeEnsemble, opset 5; trees_legacy.c: TreeEnsembleRegressor / TreeEnsembleClassifier), and
 * the one kernel that evaluates it (trees.c). The operators differ in how their attributes
 * spell the forest and in what follows the aggregation, never in how a tree is walked.
 */
#ifndef KIL_TREES_H
#define KIL_TREES_H

#include "ml_util.h"

enum { KL_TREE_LEQ, KL_TREE_LT, KL_TREE_GTE, KL_TREE_GT, KL_TREE_EQ, KL_TREE_NEQ,
       KL_TREE_MEMBER, KL_TREE_N_MODES };
enum { KL_TREE_AVERAGE, KL_TREE_SUM, KL_TREE_MIN, KL_TREE_MAX };

typedef struct kl_forest {
    int64_t n_nodes, n_leaves, n_trees, n_targets, n_features;
    /* interior nodes: a successor is a leaf number where trueleaf/falseleaf says so */
    const int64_t *feature, *truenode, *falsenode, *trueleaf, *falseleaf, *roots;
    int64_t *mode;                 /* [n_nodes] KL_TREE_* */
    double *split;                 /* [n_nodes] */
    const int64_t *missing_true;   /* [n_nodes]; NULL: never */
    const kl_value *members;       /* membership_values (KL_TREE_MEMBER nodes) */
    /* leaves: each a run of (target, weight) entries, possibly empty */
    int64_t *leaf_first, *leaf_count;
    int64_t n_entries;
    int64_t *entry_target;
    double *entry_weight;
    int agg;
    /* filled by kl_forest_unfold: every root-to-leaf path, one per entry of its leaf */
    int64_t n_paths, depth;        /* depth: the longest path's node count */
    int64_t *path_node, *path_dir, *path_len, *path_entry;
    int64_t *set_of;               /* [n_nodes]: membership set number, -1 */
    int64_t n_sets, set_size;      /* sets, the largest */
    double *set_values;            /* [n_sets, set_size], NaN padded */
    bool used_mode[KL_TREE_N_MODES];
} kl_forest;

/* Checks every node's mode, feature and successors, and every entry's target and root. */
bool kl_forest_check(kl_node *n, kl_forest *f, kl_diag *d);
/* Unfolds the checked forest into paths (a cycle or an over-deep tree is an error). */
bool kl_forest_unfold(kl_node *n, kl_arena *a, kl_forest *f, kl_diag *d);

/* What the forest kernel computes per (row, target). */
typedef enum kl_forest_value {
    KL_FOREST_AGGREGATE,    /* the aggregate of the reached weights (AVERAGE: each / trees) */
    KL_FOREST_TOTAL,        /* the same, but AVERAGE's sum is left undivided (divided later) */
    KL_FOREST_REACHED,      /* how many entries of the target the row reaches */
} kl_forest_value;

/* out[N, n_targets] (type of out) from X [N, F] or [F]; sums and extremes in `acc`. */
void kl_forest_kernel(kl_lower *L, const kl_node *n, const kl_forest *f, kl_buffer *x,
                      kl_buffer *out, kl_dtype acc, kl_forest_value what);

#endif

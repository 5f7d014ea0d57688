/*
 * nms.c — NonMaxSuppression (opsets 10, 11): per batch and class, the boxes taken greedily by
 * descending score, each unless it overlaps (IoU above the threshold) a box taken before, at
 * most max_output_boxes_per_class of them; the output [num_selected, 3] lists (batch, class,
 * box) of the boxes taken, batch by batch, class by class, in the order taken. Its length
 * depends on the data (ops/data_dependent.c): the bound is batches * classes * min(max, boxes)
 * (boxes instead of min(max, boxes) when max is given at run time).
 *
 * As ONNX Runtime does it: a box is a candidate when its score is above score_threshold (every
 * box without one), ties in score go to the lower index, and two boxes overlap unless their
 * intersection or either area is empty; IoU in float32.
 *
 * The greedy pass decides box after box, so it lowers to one kernel per position in the score
 * order ("round" r): keep[b, c, r] = the box at position r is a candidate and, of the boxes
 * kept before it, none overlaps it and fewer than max were kept. A round's reduction over the
 * r earlier positions counts those kept, and counts an overlapping one as boxes + 1, so one
 * sum below min(max, boxes + 1) says both. The rounds make the program grow with the number of
 * boxes: more than MAX_BOXES is refused. The order itself is topk.c's count: rank[i] = #{j
 * before i}, order[r] = the i whose rank is r.
 */
#include "arith_util.h"

enum { MAX_BOXES = 256 };

static const char *const nms_attrs[] = {"center_point_box", NULL};

typedef struct nms {
    int64_t batches, classes, boxes;
    int64_t max;            /* per class, at most boxes; -1: given at run time */
    bool center;            /* center_point_box: [x_center, y_center, width, height] */
} nms;

static bool scalar_input(kl_node *n, int i, kl_dtype want, const char *what, kl_diag *d) {
    const kl_value *v = kl_node_input(n, i);
    if (!v) return true;
    if (!v->has_shape || kl_shape_numel(&v->shape) != 1 || v->shape.rank > 1 ||
        (want == KL_I64 ? v->dtype != KL_I64 : !kl_dtype_is_float(v->dtype)))
        return kl_error(d, n, "%s must be a %s scalar (or a 1-element 1-D tensor)", what,
                        want == KL_I64 ? "int64" : "float");
    return true;
}

static bool nms_plan(kl_node *n, nms *s, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !kl_infer_need_input(n, 1, d)) return false;
    const kl_value *boxes = n->inputs[0], *scores = n->inputs[1];
    if (!kl_dtype_is_float(boxes->dtype) || !kl_dtype_is_float(scores->dtype))
        return kl_error(d, n, "boxes and scores must be floating-point tensors");
    if (boxes->shape.rank != 3 || boxes->shape.dim[2] != 4)
        return kl_error(d, n, "boxes must be [num_batches, spatial_dimension, 4]");
    if (scores->shape.rank != 3 || scores->shape.dim[0] != boxes->shape.dim[0] ||
        scores->shape.dim[2] != boxes->shape.dim[1])
        return kl_error(d, n, "scores must be [num_batches, num_classes, spatial_dimension] of "
                        "the boxes' num_batches and spatial_dimension");
    if (!scalar_input(n, 2, KL_I64, "max_output_boxes_per_class", d) ||
        !scalar_input(n, 3, KL_F32, "iou_threshold", d) ||
        !scalar_input(n, 4, KL_F32, "score_threshold", d))
        return false;
    int64_t center = kl_attr_int(n, "center_point_box", 0);
    if (center != 0 && center != 1)
        return kl_error(d, n, "center_point_box must be 0 or 1 (it is %lld)", (long long)center);
    s->center = center == 1;
    s->batches = boxes->shape.dim[0];
    s->classes = scores->shape.dim[1];
    s->boxes = boxes->shape.dim[1];
    if (s->boxes > MAX_BOXES)
        return kl_error(d, n, "%lld boxes: kiln's NonMaxSuppression decides one box per kernel "
                        "and takes at most %d boxes", (long long)s->boxes, MAX_BOXES);
    const kl_value *max = kl_node_input(n, 2);
    if (!max) s->max = 0; /* ONNX's default: no output */
    else if (max->data) {
        int64_t m = kl_value_const_int(max, 0);
        s->max = m < 0 ? 0 : m < s->boxes ? m : s->boxes;
    } else s->max = -1;
    return true;
}

static int64_t per_class_bound(const nms *s) { return s->max < 0 ? s->boxes : s->max; }

static bool infer_nms(kl_node *n, kl_diag *d) {
    nms s;
    if (!nms_plan(n, &s, d)) return false;
    int64_t rows;
    if (!kl_mul_checked(s.batches, s.classes, &rows) ||
        !kl_mul_checked(rows, per_class_bound(&s), &rows))
        return kl_error(d, n, "the output's bound overflows");
    kl_shape out = {.rank = 2, .dim = {rows, 3}};
    return kl_infer_data_dependent(n, 0, KL_I64, &out, 0);
}

/* ---------------------------------------------------------------- lowering */

typedef struct nms_lower {
    kl_lower *L;
    const nms *s;
    kl_buffer *boxes, *scores;
} nms_lower;

/* Element 0 of a scalar input, or NULL when it is omitted. */
static kl_expr *scalar(kl_lower *L, kl_node *n, int i, kl_dtype t) {
    kl_value *v = kl_node_input(n, i);
    if (!v) return NULL;
    kl_buffer *b = kl_lower_buffer(L, v);
    kl_expr *idx[1] = {kl_e_idx(L->arena, 0)};
    return kl_e_cast(L->arena, t, kl_e_load(L->arena, b, idx));
}

static kl_expr *score(const nms_lower *c, kl_expr *b, kl_expr *cls, kl_expr *i) {
    return kl_e_cast(c->L->arena, KL_F32, kl_e_load(c->L->arena, c->scores, (kl_expr *[]){b, cls, i}));
}

static kl_expr *coord(const nms_lower *c, kl_expr *b, kl_expr *i, int k) {
    kl_arena *a = c->L->arena;
    return kl_e_cast(a, KL_F32, kl_e_load(a, c->boxes, (kl_expr *[]){b, i, kl_e_idx(a, k)}));
}

/* A box's extent along one axis: [lo, hi] from corners (either order) or center and size. */
static void extent(const nms_lower *c, kl_expr *b, kl_expr *i, int axis, kl_expr **lo,
                   kl_expr **hi) {
    kl_arena *a = c->L->arena;
    if (c->s->center) { /* [x_center, y_center, width, height]: axis 0 is x */
        kl_expr *mid = coord(c, b, i, axis), *half = kl_e_binary(a, KL_MUL, coord(c, b, i, 2 + axis),
                                                                 kl_e_const_f(a, KL_F32, 0.5));
        *lo = kl_e_binary(a, KL_SUB, mid, half);
        *hi = kl_e_binary(a, KL_ADD, mid, half);
    } else { /* [y1, x1, y2, x2]: axis 0 is y */
        kl_expr *p = coord(c, b, i, axis), *q = coord(c, b, i, 2 + axis);
        *lo = kl_e_binary(a, KL_MIN, p, q);
        *hi = kl_e_binary(a, KL_MAX, p, q);
    }
}

/* Whether boxes i and j of batch b overlap by more than `threshold` (IoU). */
static kl_expr *overlaps(const nms_lower *c, kl_expr *b, kl_expr *i, kl_expr *j,
                         kl_expr *threshold) {
    kl_arena *a = c->L->arena;
    kl_expr *zero = kl_e_const_f(a, KL_F32, 0);
    kl_expr *inter = NULL, *area_i = NULL, *area_j = NULL, *ok = NULL;
    for (int axis = 0; axis < 2; axis++) {
        kl_expr *lo_i, *hi_i, *lo_j, *hi_j;
        extent(c, b, i, axis, &lo_i, &hi_i);
        extent(c, b, j, axis, &lo_j, &hi_j);
        kl_expr *side = kl_e_binary(a, KL_SUB, kl_e_binary(a, KL_MIN, hi_i, hi_j),
                                    kl_e_binary(a, KL_MAX, lo_i, lo_j));
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_GT, side, zero));
        kl_expr *len_i = kl_e_binary(a, KL_SUB, hi_i, lo_i), *len_j = kl_e_binary(a, KL_SUB, hi_j, lo_j);
        inter = inter ? kl_e_binary(a, KL_MUL, inter, side) : side;
        area_i = area_i ? kl_e_binary(a, KL_MUL, area_i, len_i) : len_i;
        area_j = area_j ? kl_e_binary(a, KL_MUL, area_j, len_j) : len_j;
    }
    kl_expr *uni = kl_e_binary(a, KL_SUB, kl_e_binary(a, KL_ADD, area_i, area_j), inter);
    ok = kl_e_and(a, ok, kl_e_binary(a, KL_GT, inter, zero));
    ok = kl_e_and(a, ok, kl_e_binary(a, KL_GT, area_i, zero));
    ok = kl_e_and(a, ok, kl_e_binary(a, KL_GT, area_j, zero));
    ok = kl_e_and(a, ok, kl_e_binary(a, KL_GT, uni, zero));
    return kl_e_and(a, ok, kl_e_binary(a, KL_GT, kl_e_binary(a, KL_DIV, inter, uni), threshold));
}

/* A [batches, classes, boxes] int64 kernel: loops b, c, x parallel, with reduction loop 3 of
 * `red_extent` (0: none). */
static kl_kernel *per_box(kl_lower *L, const kl_node *n, const nms *s, const char *tag,
                          kl_buffer *out, int64_t red_extent, kl_expr *value) {
    kl_kernel *k = kl_kernel_new(L->prog, n, tag);
    k->n_par = 3;
    k->n_loops = red_extent ? 4 : 3;
    k->extent[0] = s->batches;
    k->extent[1] = s->classes;
    k->extent[2] = s->boxes;
    k->extent[3] = red_extent;
    k->out = out;
    k->out_idx = kl_lower_ivs(L, 3);
    k->value = value;
    k->reduce = red_extent ? KL_RED_SUM : KL_RED_NONE;
    k->acc_dtype = KL_I64;
    return k;
}

typedef struct round_ctx {
    const nms_lower *c;
    kl_buffer *order, *keep;
    kl_expr *limit, *iou, *score_min; /* score_min NULL: every box is a candidate */
} round_ctx;

/* Round r: keep[b, c, r] from the r positions q before it (loops b, c, then q). */
static kl_kernel *round_kernel(const kl_node *n, const round_ctx *rc, int64_t r) {
    kl_lower *L = rc->c->L;
    kl_arena *a = L->arena;
    const nms *s = rc->c->s;
    kl_expr *b = kl_e_iv(a, 0), *cls = kl_e_iv(a, 1), *q = kl_e_iv(a, 2);
    kl_kernel *k = kl_kernel_new(L->prog, n, kl_sprintf(a, "round%lld", (long long)r));
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = s->batches;
    k->extent[1] = s->classes;
    k->extent[2] = r ? r : 1; /* round 0: one iteration that adds 0 */
    k->out = rc->keep;
    k->out_idx = kl_alloc_array(a, 3, sizeof *k->out_idx);
    k->out_idx[0] = b;
    k->out_idx[1] = cls;
    k->out_idx[2] = kl_e_idx(a, r);
    kl_expr *box_r = kl_e_load(a, rc->order, (kl_expr *[]){b, cls, kl_e_idx(a, r)});
    kl_expr *box_q = kl_e_load(a, rc->order, (kl_expr *[]){b, cls, q});
    kl_expr *kept_q = kl_e_binary(a, KL_EQ, kl_e_load(a, rc->keep, (kl_expr *[]){b, cls, q}),
                                  kl_e_idx(a, 1));
    kl_expr *weight = kl_e_select(a, overlaps(rc->c, b, box_q, box_r, rc->iou),
                                  kl_e_idx(a, s->boxes + 1), kl_e_idx(a, 1));
    k->value = r ? kl_e_select(a, kept_q, weight, kl_e_idx(a, 0)) : kl_e_idx(a, 0);
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_I64;
    kl_expr *ok = kl_e_binary(a, KL_LT, kl_e_acc(a, KL_I64), rc->limit);
    if (rc->score_min)
        ok = kl_e_and(a, ok, kl_e_binary(a, KL_GT, score(rc->c, b, cls, box_r), rc->score_min));
    k->result = kl_e_select(a, ok, kl_e_idx(a, 1), kl_e_idx(a, 0));
    return k;
}

static kl_expr *is_kept(void *ctx, kl_arena *a, kl_expr *i) {
    kl_expr *one = kl_e_idx(a, 1);
    return kl_e_binary(a, KL_EQ, kl_e_load(a, ctx, &i), one);
}

static bool lower_nms(kl_lower *L, kl_node *n, kl_diag *d) {
    nms s;
    if (!nms_plan(n, &s, d)) return false;
    kl_arena *a = L->arena;
    nms_lower c = {L, &s, kl_lower_buffer(L, n->inputs[0]), kl_lower_buffer(L, n->inputs[1])};
    kl_shape per = {.rank = 3, .dim = {s.batches, s.classes, s.boxes}};
    kl_expr *b = kl_e_iv(a, 0), *cls = kl_e_iv(a, 1), *x = kl_e_iv(a, 2), *y = kl_e_iv(a, 3);
    /* rank[b, c, i]: the boxes before i in the score order */
    kl_buffer *rank = kl_lower_temp(L, kl_sprintf(a, "%s_rank", n->name), KL_I64, &per);
    kl_expr *sx = score(&c, b, cls, x), *sy = score(&c, b, cls, y);
    kl_expr *before = kl_e_binary(a, KL_OR, kl_e_binary(a, KL_GT, sy, sx),
                                  kl_e_and(a, kl_e_binary(a, KL_EQ, sy, sx),
                                           kl_e_binary(a, KL_LT, y, x)));
    kl_program_add_kernel(L->prog, per_box(L, n, &s, "rank", rank, s.boxes,
                                           kl_e_select(a, before, kl_e_idx(a, 1), kl_e_idx(a, 0))));
    /* order[b, c, r]: the box whose rank is r */
    kl_buffer *order = kl_lower_temp(L, kl_sprintf(a, "%s_order", n->name), KL_I64, &per);
    kl_expr *hit = kl_e_binary(a, KL_EQ, kl_e_load(a, rank, (kl_expr *[]){b, cls, y}), x);
    kl_program_add_kernel(L->prog, per_box(L, n, &s, "order", order, s.boxes,
                                           kl_e_select(a, hit, y, kl_e_idx(a, 0))));
    /* the rounds: keep[b, c, r] from the positions before r */
    kl_expr *max = s.max >= 0 ? kl_e_idx(a, s.max) : scalar(L, n, 2, KL_I64);
    kl_expr *limit = kl_e_binary(a, KL_MIN, max, kl_e_idx(a, s.boxes + 1)); /* a kept overlap */
    kl_expr *iou = scalar(L, n, 3, KL_F32);
    kl_expr *score_min = scalar(L, n, 4, KL_F32);
    if (!iou) iou = kl_e_const_f(a, KL_F32, 0);
    kl_buffer *keep = kl_lower_temp(L, kl_sprintf(a, "%s_keep", n->name), KL_I64, &per);
    round_ctx rc = {&c, order, keep, limit, iou, score_min};
    for (int64_t r = 0; r < s.boxes; r++) kl_program_add_kernel(L->prog, round_kernel(n, &rc, r));
    /* the kept positions in (batch, class, position) order, and from them the rows */
    int64_t total = s.batches * s.classes * s.boxes;
    kl_shape flat = {.rank = 1, .dim = {total}};
    kl_buffer *keep_flat = kl_program_view(L->prog, keep, &flat);
    kl_buffer *order_flat = kl_program_view(L->prog, order, &flat);
    kl_buffer *count = kl_lower_dd_count(L, n);
    kl_lower_dd_mark(L, n->outputs[0], count);
    kl_lower_dd_count_kernel(L, n, count, total, is_kept(keep_flat, a, kl_e_iv(a, 1)));
    kl_buffer *pos = kl_lower_true_positions(L, n, total, is_kept, keep_flat);
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_kernel *k = kl_kernel_new(L->prog, n, "rows");
    k->n_loops = k->n_par = 2;
    k->extent[0] = out->shape.dim[0];
    k->extent[1] = 3;
    k->extent_expr[0] = kl_lower_dd_length(L, count);
    kl_expr *row = kl_e_iv(a, 0);
    kl_expr *p = kl_e_load(a, pos, &row);
    kl_expr *batch = s.classes * s.boxes > 1 ? kl_e_binary(a, KL_DIV, p, kl_e_idx(a, s.classes * s.boxes)) : p;
    kl_expr *cl = kl_e_binary(a, KL_MOD, s.boxes > 1 ? kl_e_binary(a, KL_DIV, p, kl_e_idx(a, s.boxes)) : p,
                              kl_e_idx(a, s.classes ? s.classes : 1));
    kl_expr *box = kl_e_load(a, order_flat, &p);
    kl_expr *col = kl_e_iv(a, 1);
    k->value = kl_e_select(a, kl_e_binary(a, KL_EQ, col, kl_e_idx(a, 0)), batch,
                           kl_e_select(a, kl_e_binary(a, KL_EQ, col, kl_e_idx(a, 1)), cl, box));
    kl_lower_dd_store(L, k, out, 0, count, (kl_expr *[]){kl_e_iv(a, 0), kl_e_iv(a, 1)});
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_nms[] = {
    {"", "NonMaxSuppression", 10, KL_OPSET_LATEST, nms_attrs, infer_nms, lower_nms},
    {0},
};

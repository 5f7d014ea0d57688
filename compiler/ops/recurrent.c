/*
 * recurrent.c — RNN, GRU and LSTM.
 *
 * The three share one skeleton; only the cell differs.
 *
 *   1. XW: one contraction kernel over [dirs, seq, batch, G*H] computes every time step's input
 *      projection X_t * W^T plus the biases that do not depend on the state (Wb + Rb; GRU's Rbh
 *      stays out with linear_before_reset). It has no recurrence, so the tile pass blocks it
 *      like any GEMM.
 *   2. The recurrence, unrolled over time at lowering: for step s and direction d, a
 *      contraction G_s = H_{s-1} * R^T ([batch, G*H], a kernel of its own whose iterations are
 *      independent), then the cell's elementwise kernels, which read XW at the step's time
 *      index and G_s and write the new state into row s of a per-direction state buffer
 *      (Hall [seq, batch, H], and Call for LSTM's cell). Every step's kernels are ordinary
 *      kernels: the dependence between steps is a buffer written by one kernel and read by a
 *      later one, which every kernel pass already keeps in order (the program is a list), and
 *      no kernel's loops carry a dependence, so tiling and threads split them as usual. The
 *      cost of unrolling is code linear in the sequence length (2-4 small kernels a step), so
 *      sequences longer than MAX_UNROLLED_STEPS are refused with a message: past that, the
 *      code (a 1000-step GRU: 3000 kernels, 3 MB) and the compile time (a minute) would be
 *      out of proportion. A time loop in the kernel IR would lift the limit.
 *   3. Y, Y_h and Y_c gathered from the state buffers at the end (one kernel each), in the
 *      layout the node asks for.
 *
 * sequence_lens (a run-time input or a constant): batch entry b only advances while
 * t < len[b]; past it the state is held (so Y_h is the last valid state) and Y is 0. The
 * reverse direction walks each entry's own sequence backwards, from len[b]-1 down, as ONNX
 * Runtime does; those time indices are loaded values, which back ends clamp into the buffer.
 *
 * Kernels never share expression nodes (passes rewrite a kernel's expressions in place), so
 * every kernel builds its own loads.
 *
 * Arithmetic runs in float32 for float16 inputs (rounded once when stored), like the other
 * contractions. Clip bounds every gate's pre-activation. Activations: the ONNX list (Relu,
 * Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign,
 * Softplus), alphas and betas taken in order by the functions that have parameters.
 */
#include <string.h>
#include <strings.h>

enum { MAX_UNROLLED_STEPS = 256 };

#include "arith_util.h"

enum { RNN_CELL, GRU_CELL, LSTM_CELL };

typedef struct act {
    int kind;
    double alpha, beta;
} act;

enum {
    ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_AFFINE, ACT_LEAKYRELU, ACT_THRESHOLDEDRELU,
    ACT_SCALEDTANH, ACT_HARDSIGMOID, ACT_ELU, ACT_SOFTSIGN, ACT_SOFTPLUS,
};

static const struct {
    const char *name;
    int n_params;          /* alpha, then beta, consumed from the lists in order */
    double alpha, beta;    /* defaults */
} act_table[] = {
    [ACT_RELU] = {"Relu", 0, 0, 0},
    [ACT_TANH] = {"Tanh", 0, 0, 0},
    [ACT_SIGMOID] = {"Sigmoid", 0, 0, 0},
    [ACT_AFFINE] = {"Affine", 2, 1.0, 0.0},
    [ACT_LEAKYRELU] = {"LeakyRelu", 1, 0.01, 0},
    [ACT_THRESHOLDEDRELU] = {"ThresholdedRelu", 1, 1.0, 0},
    [ACT_SCALEDTANH] = {"ScaledTanh", 2, 1.0, 1.0},
    [ACT_HARDSIGMOID] = {"HardSigmoid", 2, 0.2, 0.5},
    [ACT_ELU] = {"Elu", 1, 1.0, 0},
    [ACT_SOFTSIGN] = {"Softsign", 0, 0, 0},
    [ACT_SOFTPLUS] = {"Softplus", 0, 0, 0},
};

/* Everything the lowering needs, read once from the node. */
typedef struct rnn_info {
    int cell;              /* RNN_CELL .. LSTM_CELL */
    int gates;             /* G: 1, 3, 4 */
    int dirs;              /* 1 or 2 */
    bool reverse_only;     /* direction = reverse */
    int layout;            /* 0: [seq, batch, ..]; 1: [batch, seq, ..] */
    int64_t seq, batch, in, hidden;
    bool has_clip;
    double clip;
    bool lbr;              /* GRU linear_before_reset */
    bool input_forget;     /* LSTM */
    act acts[2][3];        /* per direction: f, g, h (as many as the cell uses) */
} rnn_info;

static int n_acts(int cell) { return cell == RNN_CELL ? 1 : cell == GRU_CELL ? 2 : 3; }

static bool read_info(kl_node *n, rnn_info *r, kl_diag *d) {
    memset(r, 0, sizeof *r);
    r->cell = !strcmp(n->op_type, "RNN") ? RNN_CELL : !strcmp(n->op_type, "GRU") ? GRU_CELL
                                                                                  : LSTM_CELL;
    r->gates = r->cell == RNN_CELL ? 1 : r->cell == GRU_CELL ? 3 : 4;
    const char *dir = kl_attr_string(n, "direction", "forward");
    if (!strcmp(dir, "forward")) r->dirs = 1;
    else if (!strcmp(dir, "reverse")) r->dirs = 1, r->reverse_only = true;
    else if (!strcmp(dir, "bidirectional")) r->dirs = 2;
    else return kl_error(d, n, "direction '%s' is not forward, reverse or bidirectional", dir);
    r->layout = (int)kl_attr_int(n, "layout", 0);
    if (r->layout != 0 && r->layout != 1)
        return kl_error(d, n, "layout must be 0 or 1, not %d", r->layout);
    const kl_attr *clip = kl_attr_find(n, "clip");
    if (clip) {
        r->has_clip = true;
        r->clip = clip->f;
        if (!(r->clip > 0)) return kl_error(d, n, "clip must be positive");
    }
    r->lbr = kl_attr_int(n, "linear_before_reset", 0) != 0;
    r->input_forget = kl_attr_int(n, "input_forget", 0) != 0;

    /* activations: defaults per cell, or the list (one set per direction) */
    int per = n_acts(r->cell);
    static const int defaults[3][3] = {
        [RNN_CELL] = {ACT_TANH},
        [GRU_CELL] = {ACT_SIGMOID, ACT_TANH},
        [LSTM_CELL] = {ACT_SIGMOID, ACT_TANH, ACT_TANH},
    };
    const kl_attr *names = kl_attr_find(n, "activations");
    const kl_attr *alphas = kl_attr_find(n, "activation_alpha");
    const kl_attr *betas = kl_attr_find(n, "activation_beta");
    if (names && names->type == KL_ATTR_STRINGS && names->n != per * r->dirs)
        return kl_error(d, n, "activations lists %d functions; %s with %d direction(s) takes %d",
                        names->n, n->op_type, r->dirs, per * r->dirs);
    int ai = 0, bi = 0;
    for (int dd = 0; dd < r->dirs; dd++)
        for (int k = 0; k < per; k++) {
            act *x = &r->acts[dd][k];
            if (!names || names->type != KL_ATTR_STRINGS) {
                x->kind = defaults[r->cell][k];
                continue;
            }
            const char *name = names->strings[dd * per + k];
            int found = -1;
            for (int t = 0; t < (int)(sizeof act_table / sizeof act_table[0]); t++)
                if (!strcasecmp(name, act_table[t].name)) found = t;
            if (found < 0)
                return kl_error(d, n, "activation function '%s' is not supported", name);
            x->kind = found;
            x->alpha = act_table[found].alpha;
            x->beta = act_table[found].beta;
            if (act_table[found].n_params >= 1 && alphas && ai < alphas->n)
                x->alpha = alphas->floats[ai++];
            if (act_table[found].n_params >= 2 && betas && bi < betas->n)
                x->beta = betas->floats[bi++];
        }
    return true;
}

/* ---- shape inference ---- */

static const char *rnn_attrs[] = {"activation_alpha", "activation_beta", "activations", "clip",
                                  "direction", "hidden_size", "layout", NULL};
static const char *gru_attrs[] = {"activation_alpha", "activation_beta", "activations", "clip",
                                  "direction", "hidden_size", "layout", "linear_before_reset",
                                  NULL};
static const char *lstm_attrs[] = {"activation_alpha", "activation_beta", "activations", "clip",
                                   "direction", "hidden_size", "layout", "input_forget", NULL};

/* Input i, when present, must have exactly shape s. */
static bool need_shape(kl_node *n, int i, const kl_shape *s, kl_dtype t, kl_diag *d) {
    kl_value *v = kl_node_input(n, i);
    if (!v) return true;
    if (!v->has_shape) return kl_error(d, n, "input %d ('%s') has no known shape", i, v->name);
    if (v->dtype != t)
        return kl_error(d, n, "input %d ('%s') is %s, expected %s", i, v->name,
                        kl_dtype_name(v->dtype), kl_dtype_name(t));
    if (!kl_shape_equal(&v->shape, s)) {
        kl_arena *a = kl_arena_new();
        kl_error(d, n, "input %d ('%s') has shape %s, expected %s", i, v->name,
                 kl_shape_str(a, &v->shape), kl_shape_str(a, s));
        kl_arena_free(a);
        return false;
    }
    return true;
}

static kl_shape shape3(int64_t a, int64_t b, int64_t c) {
    kl_shape s = {.rank = 3, .dim = {a, b, c}};
    return s;
}

/* Reads and checks everything; fills r with the sizes. */
static bool check_node(kl_node *n, rnn_info *r, kl_diag *d) {
    if (!read_info(n, r, d)) return false;
    for (int i = 0; i < 3; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    kl_value *x = n->inputs[0], *w = n->inputs[1], *rr = n->inputs[2];
    kl_dtype t = x->dtype;
    if (t != KL_F32 && t != KL_F64 && t != KL_F16)
        return kl_error(d, n, "X is %s; %s takes float32, float64 or float16", kl_dtype_name(t),
                        n->op_type);
    if (x->shape.rank != 3) return kl_error(d, n, "X must have rank 3, not %d", x->shape.rank);
    r->seq = x->shape.dim[r->layout ? 1 : 0];
    if (r->seq > MAX_UNROLLED_STEPS)
        return kl_error(d, n, "the sequence has %lld time steps; kiln unrolls a recurrence over "
                        "time and takes at most %d", (long long)r->seq, MAX_UNROLLED_STEPS);
    r->batch = x->shape.dim[r->layout ? 0 : 1];
    r->in = x->shape.dim[2];
    if (rr->shape.rank != 3) return kl_error(d, n, "R must have rank 3");
    r->hidden = kl_attr_int(n, "hidden_size", rr->shape.dim[2]);
    if (r->hidden <= 0) return kl_error(d, n, "hidden_size must be positive");
    /* before any product with it: R's dims are within the tensor limits, the attribute is not */
    if (r->hidden != rr->shape.dim[2])
        return kl_error(d, n, "hidden_size = %lld but R's last dimension is %lld",
                        (long long)r->hidden, (long long)rr->shape.dim[2]);
    int64_t gh = r->gates * r->hidden;
    kl_shape ws = shape3(r->dirs, gh, r->in), rs = shape3(r->dirs, gh, r->hidden);
    kl_shape bs = {.rank = 2, .dim = {r->dirs, 2 * gh}};
    kl_shape ls = {.rank = 1, .dim = {r->batch}};
    kl_shape hs = r->layout ? shape3(r->batch, r->dirs, r->hidden)
                            : shape3(r->dirs, r->batch, r->hidden);
    kl_shape ps = {.rank = 2, .dim = {r->dirs, 3 * r->hidden}};
    if (!need_shape(n, 1, &ws, t, d) || !need_shape(n, 2, &rs, t, d) ||
        !need_shape(n, 3, &bs, t, d) || !need_shape(n, 5, &hs, t, d))
        return false;
    kl_value *lens = kl_node_input(n, 4);
    if (lens && (lens->dtype != KL_I32 || !kl_shape_equal(&lens->shape, &ls)))
        return kl_error(d, n, "sequence_lens must be int32 of shape [%lld]", (long long)r->batch);
    if (r->cell == LSTM_CELL && (!need_shape(n, 6, &hs, t, d) || !need_shape(n, 7, &ps, t, d)))
        return false;
    int max_in = r->cell == LSTM_CELL ? 8 : 6;
    if (n->n_inputs > max_in) return kl_error(d, n, "%s takes at most %d inputs", n->op_type,
                                              max_in);
    if (r->cell != LSTM_CELL && n->n_outputs > 2)
        return kl_error(d, n, "%s has two outputs", n->op_type);
    (void)w;
    return true;
}

static bool infer_recurrent(kl_node *n, kl_diag *d) {
    rnn_info r;
    if (!check_node(n, &r, d)) return false;
    kl_dtype t = n->inputs[0]->dtype;
    kl_shape y = r.layout ? (kl_shape){.rank = 4, .dim = {r.batch, r.seq, r.dirs, r.hidden}}
                          : (kl_shape){.rank = 4, .dim = {r.seq, r.dirs, r.batch, r.hidden}};
    kl_shape h = r.layout ? shape3(r.batch, r.dirs, r.hidden) : shape3(r.dirs, r.batch, r.hidden);
    if (n->outputs[0] && !kl_infer_set(n, 0, t, &y)) return false;
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] && !kl_infer_set(n, i, t, &h)) return false;
    return true;
}

/* ---- lowering ---- */

typedef struct rnn_lower {
    kl_lower *L;
    kl_arena *a;
    kl_node *n;
    rnn_info r;
    kl_dtype u;                   /* compute type */
    kl_buffer *x, *w, *rw, *b, *lens, *h0, *c0, *p;
    kl_buffer *xw;                /* [dirs, seq, batch, G*H] */
    kl_buffer *hall[2], *call[2]; /* [seq, batch, H] per direction */
} rnn_lower;

static kl_expr *cu(rnn_lower *R, double v) { return kl_arith_const(R->a, R->u, v); }
static kl_expr *bin(rnn_lower *R, kl_binop op, kl_expr *x, kl_expr *y) {
    return kl_e_binary(R->a, op, x, y);
}
static kl_expr *add(rnn_lower *R, kl_expr *x, kl_expr *y) {
    if (!x) return y;
    if (!y) return x;
    return bin(R, KL_ADD, x, y);
}
static kl_expr *mul(rnn_lower *R, kl_expr *x, kl_expr *y) { return bin(R, KL_MUL, x, y); }
static kl_expr *idx(rnn_lower *R, int64_t v) { return kl_e_idx(R->a, v); }
static kl_expr *iv(rnn_lower *R, int l) { return kl_e_iv(R->a, l); }

static kl_expr *load(rnn_lower *R, kl_buffer *b, kl_expr *i0, kl_expr *i1, kl_expr *i2,
                     kl_expr *i3) {
    kl_expr *ix[4] = {i0, i1, i2, i3};
    return kl_e_cast(R->a, R->u, kl_e_load(R->a, b, ix));
}

/* f(x) with x clipped first (every gate's pre-activation; LSTM's h(C) is not clipped). */
static kl_expr *activate_raw(rnn_lower *R, const act *f, kl_expr *x, bool clip) {
    kl_arena *a = R->a;
    if (clip && R->r.has_clip)
        x = bin(R, KL_MIN, bin(R, KL_MAX, x, cu(R, -R->r.clip)), cu(R, R->r.clip));
    switch (f->kind) {
    case ACT_RELU: return bin(R, KL_MAX, x, cu(R, 0));
    case ACT_TANH: return kl_e_unary(a, KL_TANH, x);
    case ACT_SIGMOID: return kl_e_unary(a, KL_SIGMOID, x);
    case ACT_AFFINE: return add(R, mul(R, x, cu(R, f->alpha)), cu(R, f->beta));
    case ACT_LEAKYRELU:
        return kl_e_select(a, bin(R, KL_LT, x, cu(R, 0)), mul(R, x, cu(R, f->alpha)), x);
    case ACT_THRESHOLDEDRELU:
        return kl_e_select(a, bin(R, KL_GT, x, cu(R, f->alpha)), x, cu(R, 0));
    case ACT_SCALEDTANH:
        return mul(R, cu(R, f->alpha), kl_e_unary(a, KL_TANH, mul(R, x, cu(R, f->beta))));
    case ACT_HARDSIGMOID: {
        kl_expr *lin = add(R, mul(R, x, cu(R, f->alpha)), cu(R, f->beta));
        return bin(R, KL_MIN, bin(R, KL_MAX, lin, cu(R, 0)), cu(R, 1));
    }
    case ACT_ELU: {
        kl_expr *neg = mul(R, cu(R, f->alpha),
                           bin(R, KL_SUB, kl_e_unary(a, KL_EXP, x), cu(R, 1)));
        return kl_e_select(a, bin(R, KL_LT, x, cu(R, 0)), neg, x);
    }
    case ACT_SOFTSIGN:
        return bin(R, KL_DIV, x, add(R, cu(R, 1), kl_e_unary(a, KL_ABS, x)));
    default: { /* Softplus: max(x, 0) + log(1 + exp(-|x|)) */
        kl_expr *tail = kl_e_unary(a, KL_EXP, kl_e_unary(a, KL_NEG, kl_e_unary(a, KL_ABS, x)));
        return add(R, bin(R, KL_MAX, x, cu(R, 0)), kl_e_unary(a, KL_LOG, add(R, cu(R, 1), tail)));
    }
    }
}

static kl_expr *activate(rnn_lower *R, const act *f, kl_expr *x) {
    return activate_raw(R, f, x, true);
}

/* Time index of step s in direction `rev` for batch entry `b`: s forward; backwards
 * seq-1-s, or len[b]-1-s with sequence lengths. */
static kl_expr *time_of(rnn_lower *R, int64_t s, bool rev, kl_expr *b) {
    if (!rev) return idx(R, s);
    if (!R->lens) return idx(R, R->r.seq - 1 - s);
    kl_expr *len = kl_e_cast(R->a, KL_I64, kl_e_load(R->a, R->lens, &b));
    return kl_e_addc(R->a, len, -1 - s);
}

/* Whether step s (or time t, for the output) is inside entry b's sequence; NULL: always. */
static kl_expr *valid_at(rnn_lower *R, kl_expr *s, kl_expr *b) {
    if (!R->lens) return NULL;
    kl_expr *len = kl_e_cast(R->a, KL_I64, kl_e_load(R->a, R->lens, &b));
    return kl_e_binary(R->a, KL_LT, s, len);
}

/* State of direction dd before step s, element [b, j]; NULL when it is zero. */
static kl_expr *prev_state(rnn_lower *R, bool cell, int dd, int64_t s, kl_expr *b, kl_expr *j) {
    if (s > 0) return load(R, cell ? R->call[dd] : R->hall[dd], idx(R, s - 1), b, j, NULL);
    kl_buffer *init = cell ? R->c0 : R->h0;
    if (!init) return NULL;
    return R->r.layout ? load(R, init, b, idx(R, dd), j, NULL) : load(R, init, idx(R, dd), b, j, NULL);
}

/* XW[dd, t, b, off + k] */
static kl_expr *xw_at(rnn_lower *R, int dd, kl_expr *t, kl_expr *b, kl_expr *k) {
    return load(R, R->xw, idx(R, dd), t, b, k);
}

/* Bias element Wb[off] + Rb[off] of gate position gh (or only Wb with `w_only`); NULL
 * without B. */
static kl_expr *bias_at(rnn_lower *R, kl_expr *dd, kl_expr *gh, bool w_only) {
    if (!R->b) return NULL;
    int64_t g = R->r.gates * R->r.hidden;
    kl_expr *wb = load(R, R->b, dd, gh, NULL, NULL);
    if (w_only) return wb;
    return add(R, wb, load(R, R->b, dd, kl_e_addc(R->a, gh, g), NULL, NULL));
}

/* The input projection of every step: XW[d, t, b, gh] = sum_i X[t, b, i] * W[d, gh, i] + bias. */
static void lower_xw(rnn_lower *R) {
    kl_arena *a = R->a;
    int64_t H = R->r.hidden, G = R->r.gates * H;
    kl_shape s = {.rank = 4, .dim = {R->r.dirs, R->r.seq, R->r.batch, G}};
    R->xw = kl_lower_temp(R->L, "xw", R->u, &s);
    kl_kernel *k = kl_kernel_new(R->L->prog, R->n, "xw");
    k->n_par = 4;
    k->n_loops = 5;
    for (int i = 0; i < 4; i++) k->extent[i] = s.dim[i];
    k->extent[4] = R->r.in;
    k->out = R->xw;
    k->out_idx = kl_lower_ivs(R->L, 4);
    kl_expr *xv = R->r.layout ? load(R, R->x, iv(R, 2), iv(R, 1), iv(R, 4), NULL)
                              : load(R, R->x, iv(R, 1), iv(R, 2), iv(R, 4), NULL);
    k->value = mul(R, xv, load(R, R->w, iv(R, 0), iv(R, 3), iv(R, 4), NULL));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = R->u;
    if (R->b) {
        /* GRU with linear_before_reset: the h gate's Rb is added inside r * (...) */
        kl_expr *full = bias_at(R, iv(R, 0), iv(R, 3), false);
        if (R->r.cell == GRU_CELL && R->r.lbr)
            full = kl_e_select(a, kl_e_binary(a, KL_LT, iv(R, 3), idx(R, 2 * H)), full,
                               bias_at(R, iv(R, 0), iv(R, 3), true));
        k->init = full;
    }
    kl_program_add_kernel(R->L->prog, k);
}

/* G = H_prev * R[dd, first .. first + count)^T over [batch, count]; NULL when H_prev is zero.
 * `hsrc` (optional) replaces H_prev as the left operand (GRU's r (.) H_prev). */
static kl_buffer *lower_gates(rnn_lower *R, int dd, int64_t s, int64_t first, int64_t count,
                              kl_buffer *hsrc, const char *tag) {
    kl_expr *hp = hsrc ? load(R, hsrc, iv(R, 0), iv(R, 2), NULL, NULL)
                       : prev_state(R, false, dd, s, iv(R, 0), iv(R, 2));
    if (!hp) return NULL;
    kl_shape gs = {.rank = 2, .dim = {R->r.batch, count}};
    kl_buffer *g = kl_lower_temp(R->L, tag, R->u, &gs);
    kl_kernel *k = kl_kernel_new(R->L->prog, R->n, kl_sprintf(R->a, "%s_d%d_s%lld", tag, dd,
                                                               (long long)s));
    k->n_par = 2;
    k->n_loops = 3;
    k->extent[0] = R->r.batch;
    k->extent[1] = count;
    k->extent[2] = R->r.hidden;
    k->out = g;
    k->out_idx = kl_lower_ivs(R->L, 2);
    kl_expr *rv = load(R, R->rw, idx(R, dd), kl_e_addc(R->a, iv(R, 1), first), iv(R, 2), NULL);
    k->value = mul(R, hp, rv);
    k->reduce = KL_RED_SUM;
    k->acc_dtype = R->u;
    kl_program_add_kernel(R->L->prog, k);
    return g;
}

/* Pre-activation of gate `gate` at [b, h] (loops 0, 1): XW + G (G may be absent). */
static kl_expr *pre(rnn_lower *R, int dd, int64_t s, bool rev, kl_buffer *g, int64_t g_first,
                    int gate) {
    int64_t H = R->r.hidden;
    kl_expr *b = iv(R, 0), *h = iv(R, 1);
    kl_expr *k = kl_e_addc(R->a, h, gate * H);
    kl_expr *v = xw_at(R, dd, time_of(R, s, rev, b), b, k);
    if (g) v = add(R, v, load(R, g, b, kl_e_addc(R->a, h, gate * H - g_first), NULL, NULL));
    return v;
}

/* A kernel over [batch, H] writing row s of `state` with `value`, or, past the entry's
 * sequence, the previous state. */
static void store_state(rnn_lower *R, kl_buffer *state, int dd, int64_t s, bool cell,
                        kl_expr *value, const char *tag) {
    kl_shape os = {.rank = 2, .dim = {R->r.batch, R->r.hidden}};
    kl_kernel *k = kl_kernel_new(R->L->prog, R->n, kl_sprintf(R->a, "%s_d%d_s%lld", tag, dd,
                                                               (long long)s));
    k->n_loops = k->n_par = 2;
    k->extent[0] = os.dim[0];
    k->extent[1] = os.dim[1];
    k->out = state;
    k->out_idx = kl_alloc_array(R->a, 3, sizeof *k->out_idx);
    k->out_idx[0] = idx(R, s);
    k->out_idx[1] = iv(R, 0);
    k->out_idx[2] = iv(R, 1);
    kl_expr *valid = valid_at(R, idx(R, s), iv(R, 0));
    if (valid) {
        kl_expr *prev = prev_state(R, cell, dd, s, iv(R, 0), iv(R, 1));
        value = kl_e_select(R->a, valid, value, prev ? prev : cu(R, 0));
    }
    k->value = value;
    kl_program_add_kernel(R->L->prog, k);
}

static void lower_step(rnn_lower *R, int dd, int64_t s) {
    const rnn_info *r = &R->r;
    bool rev = r->reverse_only || dd == 1;
    const act *f = &r->acts[dd][0], *g = &r->acts[dd][1], *hact = &r->acts[dd][2];
    int64_t H = r->hidden;
    kl_expr *b = iv(R, 0), *h = iv(R, 1);
    if (r->cell == RNN_CELL) {
        kl_buffer *gs = lower_gates(R, dd, s, 0, H, NULL, "gates");
        store_state(R, R->hall[dd], dd, s, false, activate(R, f, pre(R, dd, s, rev, gs, 0, 0)),
                    "h");
        return;
    }
    if (r->cell == LSTM_CELL) {
        /* gates i, o, f, c; peepholes i, o, f */
        kl_buffer *gs = lower_gates(R, dd, s, 0, 4 * H, NULL, "gates");
        kl_expr *cprev = prev_state(R, true, dd, s, b, h);
        kl_expr *pi = pre(R, dd, s, rev, gs, 0, 0), *pf = pre(R, dd, s, rev, gs, 0, 2);
        if (R->p && cprev) {
            pi = add(R, pi, mul(R, load(R, R->p, idx(R, dd), h, NULL, NULL), cprev));
            pf = add(R, pf, mul(R, load(R, R->p, idx(R, dd), kl_e_addc(R->a, h, 2 * H), NULL,
                                        NULL), cprev));
        }
        kl_expr *ig = activate(R, f, pi);
        kl_expr *fg = r->input_forget ? bin(R, KL_SUB, cu(R, 1), ig) : activate(R, f, pf);
        kl_expr *cand = activate(R, g, pre(R, dd, s, rev, gs, 0, 3));
        kl_expr *c = mul(R, ig, cand);
        if (cprev) c = add(R, mul(R, fg, cprev), c);
        store_state(R, R->call[dd], dd, s, true, c, "c");
        /* h reads the new cell state back (held where the entry's sequence has ended, where h
         * is held too) */
        kl_expr *cn = load(R, R->call[dd], idx(R, s), b, h, NULL);
        kl_expr *po = pre(R, dd, s, rev, gs, 0, 1);
        if (R->p) po = add(R, po, mul(R, load(R, R->p, idx(R, dd), kl_e_addc(R->a, h, H), NULL,
                                             NULL), cn));
        store_state(R, R->hall[dd], dd, s, false,
                    mul(R, activate(R, f, po), activate_raw(R, hact, cn, false)), "h");
        return;
    }
    /* GRU: gates z, r, h */
    kl_expr *hprev = prev_state(R, false, dd, s, b, h);
    kl_expr *hh;
    kl_buffer *gzr;
    if (r->lbr) {
        kl_buffer *gs = lower_gates(R, dd, s, 0, 3 * H, NULL, "gates");
        gzr = gs;
        kl_expr *rg = activate(R, f, pre(R, dd, s, rev, gs, 0, 1));
        kl_expr *rec = gs ? load(R, gs, b, kl_e_addc(R->a, h, 2 * H), NULL, NULL) : NULL;
        rec = add(R, rec, bias_at(R, idx(R, dd), kl_e_addc(R->a, h, 5 * H), true));
        kl_expr *xh = pre(R, dd, s, rev, NULL, 0, 2);
        hh = activate(R, g, rec ? add(R, xh, mul(R, rg, rec)) : xh);
    } else {
        gzr = lower_gates(R, dd, s, 0, 2 * H, NULL, "gates");
        kl_buffer *rh = NULL;
        if (hprev) {
            /* r (.) H_prev, then its product with R_h */
            kl_shape rs = {.rank = 2, .dim = {r->batch, H}};
            rh = kl_lower_temp(R->L, "rh", R->u, &rs);
            kl_expr *rg = activate(R, f, pre(R, dd, s, rev, gzr, 0, 1));
            kl_kernel *k = kl_arith_map(R->L, R->n, kl_sprintf(R->a, "rh_d%d_s%lld", dd,
                                                               (long long)s), rh,
                                        mul(R, rg, prev_state(R, false, dd, s, b, h)));
            (void)k;
        }
        kl_buffer *gh = rh ? lower_gates(R, dd, s, 2 * H, H, rh, "gates_h") : NULL;
        kl_expr *xh = xw_at(R, dd, time_of(R, s, rev, b), b, kl_e_addc(R->a, h, 2 * H));
        if (gh) xh = add(R, xh, load(R, gh, b, h, NULL, NULL));
        hh = activate(R, g, xh);
    }
    kl_expr *z = activate(R, f, pre(R, dd, s, rev, gzr, 0, 0));
    kl_expr *hn = mul(R, bin(R, KL_SUB, cu(R, 1), z), hh);
    if (hprev) hn = add(R, hn, mul(R, z, hprev));
    store_state(R, R->hall[dd], dd, s, false, hn, "h");
}

/* Y[t, dd, b, h] (or [b, t, dd, h]) = H of the step that computed time t, 0 past the entry's
 * sequence. */
static void lower_y(rnn_lower *R, int dd, kl_buffer *y) {
    kl_arena *a = R->a;
    const rnn_info *r = &R->r;
    bool rev = r->reverse_only || dd == 1;
    kl_kernel *k = kl_kernel_new(R->L->prog, R->n, kl_sprintf(a, "y_d%d", dd));
    /* loops: t, b, h */
    k->n_loops = k->n_par = 3;
    k->extent[0] = r->seq;
    k->extent[1] = r->batch;
    k->extent[2] = r->hidden;
    k->out = y;
    k->out_idx = kl_alloc_array(a, 4, sizeof *k->out_idx);
    kl_expr *t = iv(R, 0), *b = iv(R, 1), *h = iv(R, 2);
    if (r->layout) {
        k->out_idx[0] = b, k->out_idx[1] = t;
    } else {
        k->out_idx[0] = t, k->out_idx[1] = idx(R, dd);
        k->out_idx[2] = b;
    }
    if (r->layout) k->out_idx[2] = idx(R, dd);
    k->out_idx[3] = h;
    kl_expr *step = t;
    if (rev) {
        if (R->lens) {
            kl_expr *len = kl_e_cast(a, KL_I64, kl_e_load(a, R->lens, &b));
            step = kl_e_binary(a, KL_SUB, kl_e_addc(a, len, -1), t);
        } else {
            step = kl_e_binary(a, KL_SUB, idx(R, r->seq - 1), t);
        }
    }
    kl_expr *v = load(R, R->hall[dd], step, b, h, NULL);
    kl_expr *valid = valid_at(R, t, b);
    if (valid) v = kl_e_select(a, valid, v, cu(R, 0));
    k->value = kl_e_cast(a, y->dtype, v);
    kl_program_add_kernel(R->L->prog, k);
}

/* Y_h / Y_c [dd, b, h] (or [b, dd, h]) = the state after the last step. */
static void lower_final(rnn_lower *R, int dd, kl_buffer *state, kl_buffer *out, const char *tag) {
    kl_arena *a = R->a;
    const rnn_info *r = &R->r;
    kl_kernel *k = kl_kernel_new(R->L->prog, R->n, kl_sprintf(a, "%s_d%d", tag, dd));
    k->n_loops = k->n_par = 2;
    k->extent[0] = r->batch;
    k->extent[1] = r->hidden;
    k->out = out;
    k->out_idx = kl_alloc_array(a, 3, sizeof *k->out_idx);
    k->out_idx[r->layout ? 1 : 0] = idx(R, dd);
    k->out_idx[r->layout ? 0 : 1] = iv(R, 0);
    k->out_idx[2] = iv(R, 1);
    k->value = kl_e_cast(a, out->dtype, load(R, state, idx(R, r->seq - 1), iv(R, 0), iv(R, 1),
                                             NULL));
    kl_program_add_kernel(R->L->prog, k);
}

static kl_buffer *input_buf(kl_lower *L, kl_node *n, int i) {
    kl_value *v = kl_node_input(n, i);
    return v ? kl_lower_buffer(L, v) : NULL;
}

static bool lower_recurrent(kl_lower *L, kl_node *n, kl_diag *d) {
    rnn_lower R = {.L = L, .a = L->arena, .n = n};
    if (!check_node(n, &R.r, d)) return false;
    R.u = kl_arith_compute_dtype(n->inputs[0]->dtype);
    R.x = input_buf(L, n, 0);
    R.w = input_buf(L, n, 1);
    R.rw = input_buf(L, n, 2);
    R.b = input_buf(L, n, 3);
    R.lens = input_buf(L, n, 4);
    R.h0 = input_buf(L, n, 5);
    if (R.r.cell == LSTM_CELL) {
        R.c0 = input_buf(L, n, 6);
        R.p = input_buf(L, n, 7);
    }
    if (R.r.seq == 0 || R.r.batch == 0)
        return kl_error(d, n, "an empty sequence or batch is not supported");
    lower_xw(&R);
    kl_shape ss = shape3(R.r.seq, R.r.batch, R.r.hidden);
    for (int dd = 0; dd < R.r.dirs; dd++) {
        R.hall[dd] = kl_lower_temp(L, kl_sprintf(L->arena, "h_d%d", dd), R.u, &ss);
        if (R.r.cell == LSTM_CELL)
            R.call[dd] = kl_lower_temp(L, kl_sprintf(L->arena, "c_d%d", dd), R.u, &ss);
    }
    for (int64_t s = 0; s < R.r.seq; s++)
        for (int dd = 0; dd < R.r.dirs; dd++) lower_step(&R, dd, s);
    for (int dd = 0; dd < R.r.dirs; dd++) {
        kl_value *y = n->outputs[0]; /* made by infer when the model omits it */
        if (y->n_uses > 0 || y->output_index >= 0) lower_y(&R, dd, kl_lower_buffer(L, y));
        if (n->n_outputs > 1 && n->outputs[1])
            lower_final(&R, dd, R.hall[dd], kl_lower_buffer(L, n->outputs[1]), "y_h");
        if (n->n_outputs > 2 && n->outputs[2])
            lower_final(&R, dd, R.call[dd], kl_lower_buffer(L, n->outputs[2]), "y_c");
    }
    return true;
}

const kl_op kl_ops_recurrent[] = {
    {"", "RNN", 7, KL_OPSET_LATEST, rnn_attrs, infer_recurrent, lower_recurrent, NULL, true},
    {"", "GRU", 7, KL_OPSET_LATEST, gru_attrs, infer_recurrent, lower_recurrent, NULL, true},
    {"", "LSTM", 7, KL_OPSET_LATEST, lstm_attrs, infer_recurrent, lower_recurrent, NULL, true},
    {0},
};

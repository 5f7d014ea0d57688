/*
 * linear_attention.c — LinearAttention (opset 27): attention as a recurrence over a state.
 *
 * Per KV head the state S is a [d_k, d_v] matrix, and each token t updates it by one rule:
 *   linear        S = S + k_t v_t^T
 *   gated         S = exp(g_t) S + k_t v_t^T
 *   delta         S = S + beta_t k_t (v_t - S^T k_t)^T
 *   gated_delta   S = exp(g_t) S + beta_t k_t (v_t - exp(g_t) S^T k_t)^T
 * and reads it: o_t = scale * q_t^T S (grouped-query attention: q_num_heads / kv_num_heads query
 * heads read one state). g_t (the decay, log-space) is one number per head or one per key
 * dimension; beta_t one per head or one for all heads.
 *
 * The recurrence is sequential in t, and kernel IR loops are parallel nests, so the lowering
 * unrolls t at compile time: per token one kernel for the retrieval r = (decayed S)^T k_t (delta
 * rules only), one for the new state (the decay folded into the read of the old one), one for
 * that token's slice of the output. Each state is a buffer of its own (the planner reuses their
 * memory); the last is present_state. The state is float32 whatever the types of the
 * activations and of past_state (as ONNX's reference keeps it), rounded once into the outputs.
 * Q, K, V, decay and beta are packed [B, T, heads * size] and read in place (attention_util.h).
 */
#include <math.h>
#include <string.h>

#include "attention_util.h"

/* Unrolling makes three kernels a token: a bound on what one node may ask of the compiler. */
#define LIN_MAX_STEPS 16384

typedef struct lin {
    kl_dtype t, st;          /* activations; state (past_state's type, else t) */
    int64_t B, T, hq, hkv, dk, dv;
    bool gated, delta;
    bool decay_per_head;     /* decay [B, T, hkv] (else [B, T, hkv * dk]) */
    bool beta_per_head;      /* beta [B, T, hkv] (else [B, T, 1]) */
    double scale;
} lin;

static const char *linear_attention_attrs[] = {"chunk_size", "kv_num_heads", "q_num_heads",
                                               "scale", "update_rule", NULL};

static bool is_lin_float(kl_dtype t) { return t == KL_F32 || t == KL_F16 || t == KL_BF16; }

static bool lin_rule(kl_node *n, lin *L, kl_diag *d) {
    const char *rule = kl_attr_string(n, "update_rule", "gated_delta");
    static const char *const rules[] = {"linear", "gated", "delta", "gated_delta"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(rule, rules[i])) {
            L->gated = i == 1 || i == 3;
            L->delta = i >= 2;
            return true;
        }
    return kl_error(d, n, "update_rule '%s' is not one of linear, gated, delta, gated_delta",
                    rule);
}

/* An optional packed input [B, T, last] whose last dimension is one of two sizes. */
static bool lin_gate_input(kl_node *n, const lin *L, int i, const char *name, bool wanted,
                           int64_t one, int64_t other, bool *is_one, kl_diag *d) {
    kl_value *v = kl_node_input(n, i);
    if (!wanted) {
        if (v) return kl_error(d, n, "update_rule '%s' takes no %s",
                               kl_attr_string(n, "update_rule", "gated_delta"), name);
        return true;
    }
    if (!v) return kl_error(d, n, "update_rule '%s' needs %s",
                            kl_attr_string(n, "update_rule", "gated_delta"), name);
    if (v->dtype != L->t) return kl_error(d, n, "%s must have query's element type", name);
    int64_t last = v->shape.rank == 3 ? v->shape.dim[2] : -1;
    if (v->shape.rank != 3 || v->shape.dim[0] != L->B || v->shape.dim[1] != L->T ||
        (last != one && last != other))
        return kl_error(d, n, "%s must be [%lld, %lld, %lld] or [%lld, %lld, %lld]", name,
                        (long long)L->B, (long long)L->T, (long long)one, (long long)L->B,
                        (long long)L->T, (long long)other);
    *is_one = last == one;
    return true;
}

static bool lin_shapes(kl_node *n, lin *L, kl_diag *d) {
    for (int i = 0; i < 3; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    if (n->n_inputs > 6) return kl_error(d, n, "LinearAttention takes at most 6 inputs");
    kl_value *q = n->inputs[0], *k = n->inputs[1], *v = n->inputs[2];
    L->t = q->dtype;
    if (!is_lin_float(L->t))
        return kl_error(d, n, "query is %s; LinearAttention takes float, float16 or bfloat16",
                        kl_dtype_name(L->t));
    if (k->dtype != L->t || v->dtype != L->t)
        return kl_error(d, n, "query, key and value must have one element type");
    if (q->shape.rank != 3 || k->shape.rank != 3 || v->shape.rank != 3)
        return kl_error(d, n, "query, key and value must be 3-D [batch, sequence, heads * size]");
    L->hq = kl_attr_int(n, "q_num_heads", 0);
    L->hkv = kl_attr_int(n, "kv_num_heads", 0);
    if (L->hq <= 0 || L->hkv <= 0 || L->hq % L->hkv)
        return kl_error(d, n, "q_num_heads (%lld) must be a positive multiple of kv_num_heads "
                        "(%lld)", (long long)L->hq, (long long)L->hkv);
    if (!lin_rule(n, L, d)) return false;
    L->B = q->shape.dim[0];
    L->T = q->shape.dim[1];
    if (q->shape.dim[2] % L->hq || v->shape.dim[2] % L->hkv)
        return kl_error(d, n, "query's and value's last dimensions are not multiples of their "
                        "head counts");
    L->dk = q->shape.dim[2] / L->hq;
    L->dv = v->shape.dim[2] / L->hkv;
    if (k->shape.dim[2] != L->hkv * L->dk)
        return kl_error(d, n, "key's last dimension (%lld) is not kv_num_heads * %lld",
                        (long long)k->shape.dim[2], (long long)L->dk);
    for (int i = 1; i < 3; i++)
        if (n->inputs[i]->shape.dim[0] != L->B || n->inputs[i]->shape.dim[1] != L->T)
            return kl_error(d, n, "query, key and value must have one batch and sequence length");
    if (L->T > LIN_MAX_STEPS)
        return kl_error(d, n, "sequence length %lld is over the %d tokens kiln unrolls "
                        "LinearAttention for", (long long)L->T, LIN_MAX_STEPS);
    L->st = L->t;
    kl_value *past = kl_node_input(n, 3);
    if (past) {
        kl_shape want = {.rank = 4, .dim = {L->B, L->hkv, L->dk, L->dv}};
        if (!is_lin_float(past->dtype) || !kl_shape_equal(&past->shape, &want))
            return kl_error(d, n, "past_state must be float, float16 or bfloat16 of shape "
                            "[%lld, %lld, %lld, %lld]", (long long)L->B, (long long)L->hkv,
                            (long long)L->dk, (long long)L->dv);
        L->st = past->dtype;
    }
    if (!lin_gate_input(n, L, 4, "decay", L->gated, L->hkv, L->hkv * L->dk, &L->decay_per_head,
                        d) ||
        !lin_gate_input(n, L, 5, "beta", L->delta, L->hkv, 1, &L->beta_per_head, d))
        return false;
    if (L->hkv == 1) L->beta_per_head = true; /* [B, T, 1] either way */
    L->scale = kl_attr_float(n, "scale", 0.0);
    if (L->scale == 0.0) L->scale = 1.0 / sqrt((double)L->dk);
    if (!isfinite(L->scale)) return kl_error(d, n, "scale is not finite");
    return true;
}

static bool infer_linear_attention(kl_node *n, kl_diag *d) {
    lin L;
    if (!lin_shapes(n, &L, d)) return false;
    if (n->n_outputs > 2) return kl_error(d, n, "LinearAttention has two outputs");
    kl_shape o = {.rank = 3, .dim = {L.B, L.T, L.hq * L.dv}};
    kl_shape s = {.rank = 4, .dim = {L.B, L.hkv, L.dk, L.dv}};
    if (!kl_infer_set(n, 0, L.t, &o)) return false;
    return n->n_outputs < 2 || !n->outputs[1] || kl_infer_set(n, 1, L.st, &s);
}

/* ---- lowering ---- */

typedef struct lin_low {
    lin s;
    kl_lower *L;
    kl_arena *a;
    kl_node *n;
    kl_buffer *q, *k, *v, *past, *decay, *beta;
} lin_low;

static kl_expr *lin_iv(lin_low *X, int l) { return kl_e_iv(X->a, l); }
static kl_expr *f32(lin_low *X, kl_expr *e) { return kl_e_cast(X->a, KL_F32, e); }
static kl_expr *mul(lin_low *X, kl_expr *x, kl_expr *y) { return kl_e_binary(X->a, KL_MUL, x, y); }

/* key[b, t, h * dk + e] (or value's, size dv) as float32 */
static kl_expr *kv_elem(lin_low *X, kl_buffer *x, int64_t size, int64_t t, kl_expr *b,
                        kl_expr *h, kl_expr *e) {
    return f32(X, kl_heads_at(X->a, x, true, size, b, h, kl_e_idx(X->a, t), e));
}

/* The state before token t at [b, h, dd, m] (NULL prev: past_state, or 0 without one), times
 * exp(g_t) for the gated rules. */
static kl_expr *decayed_state(lin_low *X, kl_buffer *prev, int64_t t, kl_expr *b, kl_expr *h,
                              kl_expr *dd, kl_expr *m) {
    kl_arena *a = X->a;
    kl_buffer *src = prev ? prev : X->past;
    if (!src) return kl_e_const_f(a, KL_F32, 0);
    kl_expr *s = f32(X, kl_e_load(a, src, (kl_expr *[]){b, h, dd, m}));
    if (!X->s.gated) return s;
    kl_expr *g = X->s.decay_per_head
                     ? f32(X, kl_e_load(a, X->decay, (kl_expr *[]){b, kl_e_idx(a, t), h}))
                     : kv_elem(X, X->decay, X->s.dk, t, b, h, dd);
    return mul(X, kl_e_unary(a, KL_EXP, g), s);
}

/* A kernel with n_par parallel loops of extents ext ([b, h, m] or [b, h, dd, m]) and, when red
 * >= 0, one float32 sum loop of extent red after them. */
static kl_kernel *lin_kernel(lin_low *X, const char *tag, int n_par, const int64_t *ext,
                             int64_t red) {
    kl_kernel *k = kl_kernel_new(X->L->prog, X->n, tag);
    k->n_par = n_par;
    k->n_loops = n_par + (red >= 0);
    for (int i = 0; i < n_par; i++) k->extent[i] = ext[i];
    if (red >= 0) {
        k->extent[n_par] = red;
        k->reduce = KL_RED_SUM;
        k->acc_dtype = KL_F32;
    }
    return k;
}

/* r[b, h, m] = sum_dd decayed_state[b, h, dd, m] * k_t[b, h, dd] (the delta rules' retrieval). */
static kl_buffer *lower_retrieval(lin_low *X, kl_buffer *prev, int64_t t) {
    kl_shape rs = {.rank = 3, .dim = {X->s.B, X->s.hkv, X->s.dv}};
    kl_buffer *r = kl_lower_temp(X->L, "retrieved", KL_F32, &rs);
    kl_kernel *k = lin_kernel(X, "retrieve", 3, rs.dim, X->s.dk);
    k->out = r;
    k->out_idx = kl_lower_ivs(X->L, 3);
    kl_expr *b = lin_iv(X, 0), *h = lin_iv(X, 1), *m = lin_iv(X, 2), *dd = lin_iv(X, 3);
    k->value = mul(X, decayed_state(X, prev, t, b, h, dd, m), kv_elem(X, X->k, X->s.dk, t, b, h, dd));
    kl_program_add_kernel(X->L->prog, k);
    return r;
}

/* The state after token t into `next` (float32 [B, hkv, dk, dv]). */
static void lower_update(lin_low *X, kl_buffer *prev, int64_t t, kl_buffer *next) {
    kl_arena *a = X->a;
    kl_buffer *r = X->s.delta && (prev || X->past) ? lower_retrieval(X, prev, t) : NULL;
    kl_kernel *k = lin_kernel(X, "state", 4, next->shape.dim, -1);
    k->out = next;
    k->out_idx = kl_lower_ivs(X->L, 4);
    kl_expr *b = lin_iv(X, 0), *h = lin_iv(X, 1), *dd = lin_iv(X, 2), *m = lin_iv(X, 3);
    kl_expr *vt = kv_elem(X, X->v, X->s.dv, t, b, h, m);
    if (X->s.delta) {
        if (r) vt = kl_e_binary(a, KL_SUB, vt, kl_e_load(a, r, (kl_expr *[]){b, h, m}));
        kl_expr *bh = X->s.beta_per_head ? h : kl_e_idx(a, 0);
        vt = mul(X, f32(X, kl_e_load(a, X->beta, (kl_expr *[]){b, kl_e_idx(a, t), bh})), vt);
    }
    kl_expr *write = mul(X, kv_elem(X, X->k, X->s.dk, t, b, h, dd), vt);
    k->value = prev || X->past
                   ? kl_e_binary(a, KL_ADD, decayed_state(X, prev, t, b, h, dd, m), write)
                   : write;
    kl_program_add_kernel(X->L->prog, k);
}

/* output[b, t, h * dv + m] = scale * sum_dd q_t[b, h, dd] * state[b, h / group, dd, m] */
static void lower_read(lin_low *X, kl_buffer *state, int64_t t, kl_buffer *out) {
    kl_arena *a = X->a;
    int64_t ext[3] = {X->s.B, X->s.hq, X->s.dv};
    kl_kernel *k = lin_kernel(X, "read", 3, ext, X->s.dk);
    kl_expr *b = lin_iv(X, 0), *h = lin_iv(X, 1), *m = lin_iv(X, 2), *dd = lin_iv(X, 3);
    k->out = out;
    k->out_idx = kl_alloc_array(a, 3, sizeof *k->out_idx);
    k->out_idx[0] = b;
    k->out_idx[1] = kl_e_idx(a, t);
    k->out_idx[2] = kl_e_add(a, kl_e_mulc(a, h, X->s.dv), m);
    kl_expr *kh = kl_heads_kv_of(a, h, X->s.hq / X->s.hkv);
    k->value = mul(X, kv_elem(X, X->q, X->s.dk, t, b, h, dd),
                   kl_e_load(a, state, (kl_expr *[]){b, kh, dd, m}));
    k->result = kl_e_cast(a, X->s.t, mul(X, kl_e_acc(a, KL_F32),
                                         kl_e_const_f(a, KL_F32, X->s.scale)));
    kl_program_add_kernel(X->L->prog, k);
}

static bool lower_linear_attention(kl_lower *L, kl_node *n, kl_diag *d) {
    lin_low X = {.L = L, .a = L->arena, .n = n};
    if (!lin_shapes(n, &X.s, d)) return false;
    X.q = kl_lower_buffer(L, n->inputs[0]);
    X.k = kl_lower_buffer(L, n->inputs[1]);
    X.v = kl_lower_buffer(L, n->inputs[2]);
    kl_value *past = kl_node_input(n, 3), *decay = kl_node_input(n, 4), *beta = kl_node_input(n, 5);
    X.past = past ? kl_lower_buffer(L, past) : NULL;
    X.decay = decay ? kl_lower_buffer(L, decay) : NULL;
    X.beta = beta ? kl_lower_buffer(L, beta) : NULL;
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_value *pv = n->n_outputs > 1 ? n->outputs[1] : NULL;
    kl_buffer *present = pv ? kl_lower_buffer(L, pv) : NULL;
    kl_shape ss = {.rank = 4, .dim = {X.s.B, X.s.hkv, X.s.dk, X.s.dv}};
    kl_buffer *state = NULL;
    for (int64_t t = 0; t < X.s.T; t++) {
        /* the last state goes straight into present_state when that is float32 */
        bool last = t == X.s.T - 1;
        kl_buffer *next = last && present && present->dtype == KL_F32
                              ? present : kl_lower_temp(L, "state", KL_F32, &ss);
        lower_update(&X, state, t, next);
        lower_read(&X, next, t, out);
        state = next;
    }
    if (present && state != present) {
        /* float16 / bfloat16 state, or no token at all: the state rounded once */
        kl_expr *iv4[4] = {kl_e_iv(X.a, 0), kl_e_iv(X.a, 1), kl_e_iv(X.a, 2), kl_e_iv(X.a, 3)};
        kl_expr *s = state    ? kl_e_load(X.a, state, iv4)
                     : X.past ? f32(&X, kl_e_load(X.a, X.past, iv4))
                              : kl_e_const_f(X.a, KL_F32, 0);
        kl_arith_map(L, n, "present_state", present, kl_e_cast(X.a, present->dtype, s));
    }
    return true;
}

const kl_op kl_ops_linear_attention[] = {
    {"", "LinearAttention", 27, KL_OPSET_LATEST, linear_attention_attrs, infer_linear_attention,
     lower_linear_attention},
    {0},
};

/*
 * attention.c — Attention (opset 23, 24), FlexAttention (ai.onnx.preview 1) and
 * RotaryEmbedding (opset 23).
 *
 * Attention is scaled dot-product attention, lowered to the kernels a hand-written graph of it
 * would give, without the graph's copies:
 *
 *   present K, V   only with past_key / past_value: the cache and the new keys written into
 *                  the slices of one [B, kv_heads, past + kv_len, head] buffer (the output
 *                  present_key / present_value when the node has it). Otherwise K and V are
 *                  read where they are: 3-D inputs [B, len, heads * head] are indexed as
 *                  [B, heads, len, head] (the reshape and transpose are index arithmetic).
 *   scores         S[b, h, i, j] = softcap(scale * sum_d Q[b, h, i, d] K[b, h / g, j, d])
 *                  + bias[b, h, i, j]: one contraction whose result adds the bias, where
 *                  g = q_heads / kv_heads (grouped-query attention reads each K head for g
 *                  query heads). The bias is the attention mask (float: added; bool: 0 where
 *                  true, -inf where false; shorter than the keys: -inf past its end), the causal
 *                  mask (j <= i + offset, offset = past length, or nonpad_kv_seqlen[b] - q_len
 *                  with an external cache) and the padding mask j < nonpad_kv_seqlen[b], each
 *                  added as ONNX's reference adds them.
 *   softmax        over j (max, sum of exp, divide), 0 on rows where every key is masked.
 *   Y              Y[b, h, i, e] = sum_j P[b, h, i, j] V[b, h / g, j, e], stored 4-D or 3-D.
 *   qk_matmul_output  the scores at the stage qk_matmul_output_mode names.
 *
 * Scores and probabilities are float32 for float16 inputs (softmax_precision asks for at least
 * that), rounded once into the outputs.
 */
#include <math.h>
#include <string.h>

#include "attention_util.h"

typedef struct att {
    kl_lower *L;
    kl_arena *a;
    kl_node *n;
    kl_dtype t, u;
    bool d3;                          /* 3-D Q, K, V */
    int64_t B, qh, kvh, sq, skv, past, total, hd, vhd;
    double scale, softcap;
    bool causal;
    int mode;
    kl_buffer *q, *k, *v, *mask, *pk, *pv, *nonpad;
    kl_buffer *kall, *vall;           /* [B, kvh, total, head] when there is a cache */
} att;

static const char *attention_attrs[] = {"is_causal", "kv_num_heads", "q_num_heads",
                                        "qk_matmul_output_mode", "scale", "softcap",
                                        "softmax_precision", NULL};

static bool att_shapes(kl_node *n, att *A, kl_diag *d) {
    for (int i = 0; i < 3; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    kl_value *q = n->inputs[0], *k = n->inputs[1], *v = n->inputs[2];
    A->t = q->dtype;
    if (!kl_dtype_is_float(A->t))
        return kl_error(d, n, "Q is %s; Attention takes floating-point tensors",
                        kl_dtype_name(A->t));
    if (k->dtype != A->t || v->dtype != A->t)
        return kl_error(d, n, "Q, K and V must have one element type");
    int r = q->shape.rank;
    if ((r != 3 && r != 4) || k->shape.rank != r || v->shape.rank != r)
        return kl_error(d, n, "Q, K and V must all be 3-D or all 4-D");
    A->d3 = r == 3;
    A->B = q->shape.dim[0];
    if (A->d3) {
        A->qh = kl_attr_int(n, "q_num_heads", 0);
        A->kvh = kl_attr_int(n, "kv_num_heads", 0);
        if (A->qh <= 0 || A->kvh <= 0)
            return kl_error(d, n, "3-D inputs need q_num_heads and kv_num_heads");
        if (q->shape.dim[2] % A->qh || k->shape.dim[2] % A->kvh || v->shape.dim[2] % A->kvh)
            return kl_error(d, n, "hidden sizes are not multiples of the head counts");
        A->sq = q->shape.dim[1];
        A->skv = k->shape.dim[1];
        A->hd = q->shape.dim[2] / A->qh;
        A->vhd = v->shape.dim[2] / A->kvh;
        if (k->shape.dim[2] / A->kvh != A->hd)
            return kl_error(d, n, "Q and K head sizes differ");
        if (v->shape.dim[1] != A->skv) return kl_error(d, n, "K and V lengths differ");
    } else {
        A->qh = q->shape.dim[1];
        A->kvh = k->shape.dim[1];
        A->sq = q->shape.dim[2];
        A->skv = k->shape.dim[2];
        A->hd = q->shape.dim[3];
        A->vhd = v->shape.dim[3];
        if (k->shape.dim[3] != A->hd) return kl_error(d, n, "Q and K head sizes differ");
        if (v->shape.dim[1] != A->kvh || v->shape.dim[2] != A->skv)
            return kl_error(d, n, "K and V must have the same heads and length");
    }
    if (k->shape.dim[0] != A->B || v->shape.dim[0] != A->B)
        return kl_error(d, n, "Q, K and V batch sizes differ");
    if (A->kvh <= 0 || A->qh % A->kvh)
        return kl_error(d, n, "q heads (%lld) must be a multiple of kv heads (%lld)",
                        (long long)A->qh, (long long)A->kvh);
    A->past = 0;
    kl_value *pk = kl_node_input(n, 4), *pv = kl_node_input(n, 5);
    if ((pk == NULL) != (pv == NULL))
        return kl_error(d, n, "past_key and past_value come together");
    if (pk) {
        kl_shape want = {.rank = 4, .dim = {A->B, A->kvh, pk->shape.dim[2], A->hd}};
        kl_shape wantv = {.rank = 4, .dim = {A->B, A->kvh, pk->shape.dim[2], A->vhd}};
        if (pk->shape.rank != 4 || !kl_shape_equal(&pk->shape, &want) ||
            !kl_shape_equal(&pv->shape, &wantv) || pk->dtype != A->t || pv->dtype != A->t)
            return kl_error(d, n, "past_key / past_value must be [B, kv_heads, past, head] of "
                            "Q's type");
        A->past = pk->shape.dim[2];
    }
    A->total = A->past + A->skv;
    kl_value *m = kl_node_input(n, 3);
    if (m) {
        if (m->dtype != KL_BOOL && m->dtype != A->t)
            return kl_error(d, n, "attn_mask must be bool or Q's type, not %s",
                            kl_dtype_name(m->dtype));
        int mr = m->shape.rank;
        int64_t full[4] = {A->B, A->qh, A->sq, A->total};
        if (mr < 2 || mr > 4 || m->shape.dim[mr - 1] > A->total)
            return kl_error(d, n, "attn_mask must have rank 2 to 4 and at most %lld columns",
                            (long long)A->total);
        for (int i = 0; i < mr - 1; i++) {
            int64_t want = full[4 - mr + i], got = m->shape.dim[i];
            if (got != 1 && got != want)
                return kl_error(d, n, "attn_mask dimension %d (%lld) does not broadcast to %lld",
                                i, (long long)got, (long long)want);
        }
    }
    kl_value *np_ = kl_node_input(n, 6);
    if (np_ && (!kl_dtype_is_signed_int(np_->dtype) || np_->shape.rank != 1 ||
                np_->shape.dim[0] != A->B))
        return kl_error(d, n, "nonpad_kv_seqlen must be 1-D integers of the batch size");
    if (n->n_inputs > 7) return kl_error(d, n, "Attention takes at most 7 inputs");
    A->mode = (int)kl_attr_int(n, "qk_matmul_output_mode", 0);
    if (A->mode < 0 || A->mode > 3)
        return kl_error(d, n, "qk_matmul_output_mode %d is not 0..3", A->mode);
    A->causal = kl_attr_int(n, "is_causal", 0) != 0;
    A->scale = kl_attr_float(n, "scale", 1.0 / sqrt((double)A->hd));
    A->softcap = kl_attr_float(n, "softcap", 0.0);
    return true;
}

static bool infer_attention(kl_node *n, kl_diag *d) {
    att A = {0};
    if (!att_shapes(n, &A, d)) return false;
    kl_shape y = A.d3 ? (kl_shape){.rank = 3, .dim = {A.B, A.sq, A.qh * A.vhd}}
                      : (kl_shape){.rank = 4, .dim = {A.B, A.qh, A.sq, A.vhd}};
    kl_shape pk = {.rank = 4, .dim = {A.B, A.kvh, A.total, A.hd}};
    kl_shape pv = {.rank = 4, .dim = {A.B, A.kvh, A.total, A.vhd}};
    kl_shape qk = {.rank = 4, .dim = {A.B, A.qh, A.sq, A.total}};
    const kl_shape *s[4] = {&y, &pk, &pv, &qk};
    for (int i = 0; i < n->n_outputs && i < 4; i++)
        if (n->outputs[i] && !kl_infer_set(n, i, A.t, s[i])) return false;
    if (n->n_outputs > 4) return kl_error(d, n, "Attention has four outputs");
    return true;
}

/* ---- lowering ---- */

static kl_expr *iv(att *A, int l) { return kl_e_iv(A->a, l); }
static kl_expr *ix(att *A, int64_t v) { return kl_e_idx(A->a, v); }
static kl_expr *cu(att *A, double v) { return kl_arith_const(A->a, A->u, v); }
static kl_expr *bin(att *A, kl_binop op, kl_expr *x, kl_expr *y) {
    return kl_e_binary(A->a, op, x, y);
}
static kl_expr *ld(att *A, kl_buffer *b, kl_expr *i0, kl_expr *i1, kl_expr *i2, kl_expr *i3) {
    kl_expr *idx[4] = {i0, i1, i2, i3};
    return kl_e_load(A->a, b, idx);
}

static kl_expr *at_bhse(att *A, kl_buffer *x, bool d3, int64_t size, kl_expr *b, kl_expr *h,
                        kl_expr *s, kl_expr *e) {
    return kl_heads_at(A->a, x, d3, size, b, h, s, e);
}

static kl_expr *kv_at(att *A, bool value, kl_expr *b, kl_expr *kh, kl_expr *j, kl_expr *e) {
    kl_buffer *all = value ? A->vall : A->kall;
    if (all) return ld(A, all, b, kh, j, e);
    return at_bhse(A, value ? A->v : A->k, A->d3, value ? A->vhd : A->hd, b, kh, j, e);
}

/* The cache and the new keys (or values) into `all` [B, kvh, total, size]. */
static void lower_concat(att *A, kl_buffer *past, kl_buffer *cur, kl_buffer *all, int64_t size) {
    for (int part = 0; part < 2; part++) {
        if (!part && (!past || A->past == 0)) continue; /* no cache: only the new keys */
        kl_kernel *k = kl_kernel_new(A->L->prog, A->n, part ? "present_new" : "present_past");
        k->n_loops = k->n_par = 4;
        k->extent[0] = A->B;
        k->extent[1] = A->kvh;
        k->extent[2] = part ? A->skv : A->past;
        k->extent[3] = size;
        k->out = all;
        k->out_idx = kl_alloc_array(A->a, 4, sizeof *k->out_idx);
        for (int i = 0; i < 4; i++) k->out_idx[i] = iv(A, i);
        if (part) k->out_idx[2] = kl_e_addc(A->a, iv(A, 2), A->past);
        k->value = part ? at_bhse(A, cur, A->d3, size, iv(A, 0), iv(A, 1), iv(A, 2), iv(A, 3))
                        : ld(A, past, iv(A, 0), iv(A, 1), iv(A, 2), iv(A, 3));
        if (k->extent[2] > 0) kl_program_add_kernel(A->L->prog, k);
    }
}

/* The additive bias at [b, h, i, j] = loops 0..3 (NULL: none). */
static kl_expr *bias_at(att *A) {
    kl_arena *a = A->a;
    kl_expr *b = iv(A, 0), *h = iv(A, 1), *i = iv(A, 2), *j = iv(A, 3);
    kl_expr *ninf = cu(A, -INFINITY), *zero = cu(A, 0);
    kl_expr *bias = NULL;
    if (A->mask) {
        int mr = A->mask->shape.rank;
        kl_expr *full[4] = {b, h, i, j}, *idx[4];
        for (int d = 0; d < mr; d++)
            idx[d] = A->mask->shape.dim[d] == 1 && d < mr - 1 ? ix(A, 0) : full[4 - mr + d];
        int64_t cols = A->mask->shape.dim[mr - 1];
        kl_expr *m = kl_e_load(a, A->mask, idx);
        kl_expr *inside = cols < A->total ? kl_e_binary(a, KL_LT, j, ix(A, cols)) : NULL;
        if (A->mask->dtype == KL_BOOL) {
            kl_expr *keep = inside ? kl_e_and(a, inside, m) : m;
            bias = kl_e_select(a, keep, zero, ninf);
        } else {
            bias = kl_e_cast(a, A->u, m);
            if (inside) bias = kl_e_select(a, inside, bias, ninf);
        }
    }
    if (A->causal) {
        kl_expr *offset = ix(A, A->past);
        if (!A->pk && A->nonpad)
            offset = kl_e_addc(a, kl_e_cast(a, KL_I64, kl_e_load(a, A->nonpad, &b)), -A->sq);
        kl_expr *allowed = kl_e_binary(a, KL_LE, j, kl_e_add(a, i, offset));
        kl_expr *c = kl_e_select(a, allowed, zero, ninf);
        bias = bias ? bin(A, KL_ADD, bias, c) : c;
    }
    if (A->nonpad) {
        kl_expr *len = kl_e_cast(a, KL_I64, kl_e_load(a, A->nonpad, &b));
        kl_expr *c = kl_e_select(a, kl_e_binary(a, KL_LT, j, len), zero, ninf);
        bias = bias ? bin(A, KL_ADD, bias, c) : c;
    }
    return bias;
}

/* A kernel over [B, qh, sq, total] with the dot products Q K^T in its accumulator; result =
 * softcap(scale * acc) (+ bias). */
static kl_kernel *scores_kernel(att *A, kl_buffer *out, bool with_bias, const char *tag) {
    kl_arena *a = A->a;
    kl_kernel *k = kl_kernel_new(A->L->prog, A->n, tag);
    k->n_par = 4;
    k->n_loops = 5;
    k->extent[0] = A->B;
    k->extent[1] = A->qh;
    k->extent[2] = A->sq;
    k->extent[3] = A->total;
    k->extent[4] = A->hd;
    k->out = out;
    k->out_idx = kl_lower_ivs(A->L, 4);
    kl_expr *kh = kl_heads_kv_of(a, iv(A, 1), A->qh / A->kvh);
    kl_expr *qv = at_bhse(A, A->q, A->d3, A->hd, iv(A, 0), iv(A, 1), iv(A, 2), iv(A, 4));
    kl_expr *kv = kv_at(A, false, iv(A, 0), kh, iv(A, 3), iv(A, 4));
    k->value = bin(A, KL_MUL, kl_e_cast(a, A->u, qv), kl_e_cast(a, A->u, kv));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = A->u;
    kl_expr *s = bin(A, KL_MUL, kl_e_acc(a, A->u), cu(A, A->scale));
    if (A->softcap > 0)
        s = bin(A, KL_MUL, kl_e_unary(a, KL_TANH, bin(A, KL_DIV, s, cu(A, A->softcap))),
                cu(A, A->softcap));
    kl_expr *bias = with_bias ? bias_at(A) : NULL;
    if (bias) s = bin(A, KL_ADD, s, bias);
    k->result = kl_e_cast(a, out->dtype, s);
    kl_program_add_kernel(A->L->prog, k);
    return k;
}

/* Softmax over the keys (the last dimension of [B, qh, sq, total]), except that a row every
 * key of which is masked (its maximum is -inf) gets probabilities 0 instead of the NaNs of
 * exp(-inf - -inf): ONNX's reference zeroes such rows, so Y is 0 there. */
static void masked_softmax(kl_lower *L, kl_node *n, kl_buffer *x, kl_buffer *out) {
    kl_arena *a = L->arena;
    bool reduced[KL_MAX_RANK] = {false, false, false, true};
    kl_shape ks = kl_arith_reduced_shape(&x->shape, reduced, true);
    kl_buffer *m = kl_lower_temp(L, "max", x->dtype, &ks);
    kl_program_add_kernel(L->prog, kl_arith_reduce(L, n, "max", x, reduced, m, KL_RED_MAX));
    kl_expr *max = kl_lower_load_broadcast(L, m, 4);

    kl_buffer *sum = kl_lower_temp(L, "sum", x->dtype, &ks);
    kl_kernel *k = kl_arith_reduce(L, n, "sum", x, reduced, sum, KL_RED_SUM);
    k->value = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, k->value, max));
    kl_program_add_kernel(L->prog, k);

    kl_expr *e = kl_e_unary(a, KL_EXP, kl_e_binary(a, KL_SUB, kl_e_load(a, x, kl_lower_ivs(L, 4)),
                                                   max));
    kl_expr *p = kl_e_binary(a, KL_DIV, e, kl_lower_load_broadcast(L, sum, 4));
    kl_expr *dead = kl_e_binary(a, KL_EQ, max, kl_arith_const(a, x->dtype, -INFINITY));
    kl_arith_map(L, n, NULL, out, kl_e_select(a, dead, kl_arith_const(a, x->dtype, 0), p));
}

/* The heart of every softmax attention: scores = scale * Q K^T (+ bias), probabilities by a
 * softmax over the keys, and Y = P V, stored 4-D or packed 3-D into yb. Hands back the scores
 * and probabilities (float, [B, qh, sq, total]) for the outputs that show them. */
/* Y[b, h, i, e] = sum over j of P[b, h, i, j] V[b, h / g, j, e], into yb (4-D, or 3-D). */
static void pv_kernel(att *A, kl_buffer *probs, kl_buffer *yb) {
    kl_lower *L = A->L;
    kl_arena *a = A->a;
    kl_kernel *k = kl_kernel_new(L->prog, A->n, "pv");
    k->n_par = 4;
    k->n_loops = 5;
    k->extent[0] = A->B;
    k->extent[1] = A->qh;
    k->extent[2] = A->sq;
    k->extent[3] = A->vhd;
    k->extent[4] = A->total;
    k->out = yb;
    if (A->d3) {
        k->out_idx = kl_alloc_array(a, 3, sizeof *k->out_idx);
        k->out_idx[0] = iv(A, 0);
        k->out_idx[1] = iv(A, 2);
        k->out_idx[2] = kl_e_add(a, kl_e_mulc(a, iv(A, 1), A->vhd), iv(A, 3));
    } else {
        k->out_idx = kl_lower_ivs(L, 4);
    }
    kl_expr *kh = kl_heads_kv_of(a, iv(A, 1), A->qh / A->kvh);
    kl_expr *p = ld(A, probs, iv(A, 0), iv(A, 1), iv(A, 2), iv(A, 4));
    k->value = bin(A, KL_MUL, p, kl_e_cast(a, A->u, kv_at(A, true, iv(A, 0), kh, iv(A, 4),
                                                           iv(A, 3))));
    k->reduce = KL_RED_SUM;
    k->acc_dtype = A->u;
    k->result = kl_e_cast(a, A->t, kl_e_acc(a, A->u));
    kl_program_add_kernel(L->prog, k);
}

static void lower_attention_core(att *A, kl_buffer *yb, kl_buffer **scores_out,
                                 kl_buffer **probs_out) {
    kl_lower *L = A->L;
    kl_shape ss = {.rank = 4, .dim = {A->B, A->qh, A->sq, A->total}};
    kl_buffer *scores = kl_lower_temp(L, "scores", A->u, &ss);
    scores_kernel(A, scores, true, "scores");
    kl_buffer *probs = kl_lower_temp(L, "probs", A->u, &ss);
    masked_softmax(L, A->n, scores, probs);
    pv_kernel(A, probs, yb);
    *scores_out = scores;
    *probs_out = probs;
}

static bool lower_attention(kl_lower *L, kl_node *n, kl_diag *d) {
    att A = {.L = L, .a = L->arena, .n = n};
    if (!att_shapes(n, &A, d)) return false;
    kl_arena *a = L->arena;
    A.u = kl_arith_compute_dtype(A.t);
    A.q = kl_lower_buffer(L, n->inputs[0]);
    A.k = kl_lower_buffer(L, n->inputs[1]);
    A.v = kl_lower_buffer(L, n->inputs[2]);
    kl_value *m = kl_node_input(n, 3), *pk = kl_node_input(n, 4), *pv = kl_node_input(n, 5),
             *np_ = kl_node_input(n, 6);
    A.mask = m ? kl_lower_buffer(L, m) : NULL;
    A.pk = pk ? kl_lower_buffer(L, pk) : NULL;
    A.pv = pv ? kl_lower_buffer(L, pv) : NULL;
    A.nonpad = np_ ? kl_lower_buffer(L, np_) : NULL;
    kl_value *y = n->outputs[0];
    kl_value *opk = n->n_outputs > 1 ? n->outputs[1] : NULL;
    kl_value *opv = n->n_outputs > 2 ? n->outputs[2] : NULL;
    kl_value *oqk = n->n_outputs > 3 ? n->outputs[3] : NULL;
    kl_shape ks = {.rank = 4, .dim = {A.B, A.kvh, A.total, A.hd}};
    kl_shape vs = {.rank = 4, .dim = {A.B, A.kvh, A.total, A.vhd}};
    /* the cache: K and V concatenated after it (into the present outputs when wanted) */
    if (A.pk) {
        A.kall = opk ? kl_lower_buffer(L, opk) : kl_lower_temp(L, "present_key", A.t, &ks);
        A.vall = opv ? kl_lower_buffer(L, opv) : kl_lower_temp(L, "present_value", A.t, &vs);
        lower_concat(&A, A.pk, A.k, A.kall, A.hd);
        lower_concat(&A, A.pv, A.v, A.vall, A.vhd);
    } else {
        /* no cache: the present outputs are K and V as 4-D */
        if (opk) lower_concat(&A, NULL, A.k, kl_lower_buffer(L, opk), A.hd);
        if (opv) lower_concat(&A, NULL, A.v, kl_lower_buffer(L, opv), A.vhd);
    }

    kl_buffer *scores, *probs;
    lower_attention_core(&A, kl_lower_buffer(L, y), &scores, &probs);

    if (oqk) {
        kl_buffer *qb = kl_lower_buffer(L, oqk);
        if (A.mode == 3 || A.mode == 2) {
            kl_buffer *src = A.mode == 3 ? probs : scores;
            kl_arith_map(L, n, "qk_out", qb,
                         kl_e_cast(a, A.t, kl_e_load(a, src, kl_lower_ivs(L, 4))));
        } else {
            scores_kernel(&A, qb, false, "qk_out");
        }
    }
    return true;
}

/* ---- FlexAttention (ai.onnx.preview, opset 1) ----
 *
 * Attention on 4-D Q, K, V with neither masks nor cache: the same core. The scores are computed
 * in float32 for float16 / bfloat16 inputs (or in the type softmax_precision names, when that
 * is wider). Its score_mod and prob_mod are subgraphs applied to the scores and the
 * probabilities: the loader expands such a node into the core's three stages as nodes of their
 * own (domain kiln: FlexScores, FlexSoftmax, FlexOutput) with each subgraph inlined between
 * them (onnx/load.c), so FlexAttention itself never sees one. */

static const char *flex_attrs[] = {"prob_mod", "scale", "score_mod", "softmax_precision", NULL};

/* Q, K and V are inputs first, first + 1 and first + 2. */
static bool flex_shapes_at(kl_node *n, int first, att *A, kl_diag *d) {
    for (int i = first; i < first + 3; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    if (n->n_inputs > first + 3) return kl_error(d, n, "%s takes %d inputs", n->op_type, first + 3);
    for (const char *const *g = (const char *const[]){"score_mod", "prob_mod", NULL}; *g; g++)
        if (kl_attr_find(n, *g)) /* the loader expands these; a node built otherwise */
            return kl_error(d, n, "%s is a subgraph, which only the loader can expand", *g);
    kl_value *q = n->inputs[first], *k = n->inputs[first + 1], *v = n->inputs[first + 2];
    A->t = q->dtype;
    if (!kl_dtype_is_float(A->t))
        return kl_error(d, n, "Q is %s; FlexAttention takes floating-point tensors",
                        kl_dtype_name(A->t));
    if (k->dtype != A->t || v->dtype != A->t)
        return kl_error(d, n, "Q, K and V must have one element type");
    if (q->shape.rank != 4 || k->shape.rank != 4 || v->shape.rank != 4)
        return kl_error(d, n, "Q, K and V must be 4-D [batch, heads, length, size]");
    A->B = q->shape.dim[0];
    A->qh = q->shape.dim[1];
    A->sq = q->shape.dim[2];
    A->hd = q->shape.dim[3];
    A->kvh = k->shape.dim[1];
    A->skv = A->total = k->shape.dim[2];
    A->vhd = v->shape.dim[3];
    if (k->shape.dim[0] != A->B || v->shape.dim[0] != A->B)
        return kl_error(d, n, "Q, K and V batch sizes differ");
    if (k->shape.dim[3] != A->hd) return kl_error(d, n, "Q and K head sizes differ");
    if (v->shape.dim[1] != A->kvh || v->shape.dim[2] != A->skv)
        return kl_error(d, n, "K and V must have the same heads and length");
    if (A->kvh <= 0 || A->qh % A->kvh)
        return kl_error(d, n, "Q heads (%lld) must be a multiple of K heads (%lld)",
                        (long long)A->qh, (long long)A->kvh);
    A->scale = kl_attr_float(n, "scale", 1.0 / sqrt((double)A->hd));
    int64_t prec = kl_attr_int(n, "softmax_precision", 0);
    if (prec != 0 && prec != KL_F16 && prec != KL_BF16 && prec != KL_F32 && prec != KL_F64)
        return kl_error(d, n, "softmax_precision %lld is not float16, bfloat16, float or double",
                        (long long)prec);
    A->u = prec == KL_F64 ? KL_F64 : kl_arith_compute_dtype(A->t);
    return true;
}

static bool flex_shapes(kl_node *n, att *A, kl_diag *d) { return flex_shapes_at(n, 0, A, d); }

static bool infer_flex_attention(kl_node *n, kl_diag *d) {
    att A = {0};
    if (!flex_shapes(n, &A, d)) return false;
    if (n->n_outputs > 1) return kl_error(d, n, "FlexAttention has one output");
    kl_shape y = {.rank = 4, .dim = {A.B, A.qh, A.sq, A.vhd}};
    return kl_infer_set(n, 0, A.t, &y);
}

static bool lower_flex_attention(kl_lower *L, kl_node *n, kl_diag *d) {
    att A = {.L = L, .a = L->arena, .n = n};
    if (!flex_shapes(n, &A, d)) return false;
    A.q = kl_lower_buffer(L, n->inputs[0]);
    A.k = kl_lower_buffer(L, n->inputs[1]);
    A.v = kl_lower_buffer(L, n->inputs[2]);
    kl_buffer *scores, *probs;
    lower_attention_core(&A, kl_lower_buffer(L, n->outputs[0]), &scores, &probs);
    return true;
}

/* The expanded form's stages. FlexScores(Q, K, V) -> S [B, heads, q_len, kv_len] in the
 * softmax type; FlexSoftmax(S) -> P (0 on rows where every score is -inf); FlexOutput(P, Q, K,
 * V) -> Y. */

static bool infer_flex_scores(kl_node *n, kl_diag *d) {
    att A = {0};
    if (!flex_shapes(n, &A, d)) return false;
    kl_shape s = {.rank = 4, .dim = {A.B, A.qh, A.sq, A.skv}};
    return kl_infer_set(n, 0, A.u, &s);
}

static bool lower_flex_scores(kl_lower *L, kl_node *n, kl_diag *d) {
    att A = {.L = L, .a = L->arena, .n = n};
    if (!flex_shapes(n, &A, d)) return false;
    A.q = kl_lower_buffer(L, n->inputs[0]);
    A.k = kl_lower_buffer(L, n->inputs[1]);
    scores_kernel(&A, kl_lower_buffer(L, n->outputs[0]), true, "scores");
    return true;
}

static bool infer_flex_softmax(kl_node *n, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d)) return false;
    if (n->inputs[0]->shape.rank != 4 || !kl_dtype_is_float(n->inputs[0]->dtype))
        return kl_error(d, n, "the scores must be a 4-D floating-point tensor");
    return kl_infer_same_as_input(n, d);
}

static bool lower_flex_softmax(kl_lower *L, kl_node *n, kl_diag *d) {
    masked_softmax(L, n, kl_lower_buffer(L, n->inputs[0]), kl_lower_buffer(L, n->outputs[0]));
    return true;
}

static bool flex_output_shapes(kl_node *n, att *A, kl_diag *d) {
    if (!kl_infer_need_input(n, 0, d) || !flex_shapes_at(n, 1, A, d)) return false;
    const kl_value *p = n->inputs[0];
    kl_shape want = {.rank = 4, .dim = {A->B, A->qh, A->sq, A->skv}};
    if (!kl_shape_equal(&p->shape, &want) || p->dtype != A->u)
        return kl_error(d, n, "prob_mod must keep the probabilities' shape and element type");
    return true;
}

static bool infer_flex_output(kl_node *n, kl_diag *d) {
    att A = {0};
    if (!flex_output_shapes(n, &A, d)) return false;
    kl_shape y = {.rank = 4, .dim = {A.B, A.qh, A.sq, A.vhd}};
    return kl_infer_set(n, 0, A.t, &y);
}

static bool lower_flex_output(kl_lower *L, kl_node *n, kl_diag *d) {
    att A = {.L = L, .a = L->arena, .n = n};
    if (!flex_output_shapes(n, &A, d)) return false;
    A.v = kl_lower_buffer(L, n->inputs[3]);
    pv_kernel(&A, kl_lower_buffer(L, n->inputs[0]), kl_lower_buffer(L, n->outputs[0]));
    return true;
}

/* ---- RotaryEmbedding ---- */

static const char *rotary_attrs[] = {"interleaved", "num_heads", "rotary_embedding_dim", NULL};

/* X [B, heads, S, D] (or 3-D [B, S, heads * D]); the cos and sin caches [B, S, R/2] without
 * position_ids, else [max_pos, R/2] indexed by position_ids [B, S]. */
typedef struct rot {
    bool d3, inter;
    int64_t B, heads, S, D, R;
} rot;

static bool rot_shapes(kl_node *n, rot *r, kl_diag *d) {
    for (int i = 0; i < 3; i++)
        if (!kl_infer_need_input(n, i, d)) return false;
    kl_value *x = n->inputs[0], *c = n->inputs[1], *s = n->inputs[2], *pos = kl_node_input(n, 3);
    if (!kl_dtype_is_float(x->dtype))
        return kl_error(d, n, "X must be floating-point, not %s", kl_dtype_name(x->dtype));
    if (c->dtype != x->dtype || s->dtype != x->dtype)
        return kl_error(d, n, "cos_cache and sin_cache must have X's element type");
    if (x->shape.rank != 3 && x->shape.rank != 4) return kl_error(d, n, "X must be 3-D or 4-D");
    r->d3 = x->shape.rank == 3;
    r->inter = kl_attr_int(n, "interleaved", 0) != 0;
    r->B = x->shape.dim[0];
    if (r->d3) {
        r->heads = kl_attr_int(n, "num_heads", 0);
        if (r->heads <= 0) return kl_error(d, n, "a 3-D input needs num_heads");
        if (x->shape.dim[2] % r->heads)
            return kl_error(d, n, "hidden size %lld is not a multiple of num_heads %lld",
                            (long long)x->shape.dim[2], (long long)r->heads);
        r->S = x->shape.dim[1];
        r->D = x->shape.dim[2] / r->heads;
    } else {
        r->heads = x->shape.dim[1];
        r->S = x->shape.dim[2];
        r->D = x->shape.dim[3];
    }
    r->R = kl_attr_int(n, "rotary_embedding_dim", 0);
    if (r->R == 0) r->R = r->D;
    if (r->R < 0 || r->R > r->D || r->R % 2)
        return kl_error(d, n, "rotary_embedding_dim %lld is not an even number <= %lld",
                        (long long)r->R, (long long)r->D);
    kl_shape want = pos ? (kl_shape){.rank = 2, .dim = {c->shape.dim[0], r->R / 2}}
                        : (kl_shape){.rank = 3, .dim = {r->B, r->S, r->R / 2}};
    if (!kl_shape_equal(&c->shape, &want) || !kl_shape_equal(&s->shape, &want))
        return kl_error(d, n, pos ? "cos_cache and sin_cache must be [max_position, %lld]"
                                  : "cos_cache and sin_cache must be [batch, sequence, %lld] "
                                    "without position_ids",
                        (long long)(r->R / 2));
    kl_shape ps = {.rank = 2, .dim = {r->B, r->S}};
    if (pos && (!kl_dtype_is_signed_int(pos->dtype) || !kl_shape_equal(&pos->shape, &ps)))
        return kl_error(d, n, "position_ids must be integers of shape [batch, sequence]");
    return true;
}

static bool infer_rotary(kl_node *n, kl_diag *d) {
    rot r;
    return rot_shapes(n, &r, d) && kl_infer_same_as_input(n, d);
}

/* Element e of head h at [b, s] of X. */
static kl_expr *rot_at(kl_arena *a, const rot *r, kl_buffer *x, kl_expr *b, kl_expr *h,
                       kl_expr *s, kl_expr *e) {
    if (r->d3) return kl_e_load(a, x, (kl_expr *[]){b, s, kl_e_add(a, kl_e_mulc(a, h, r->D), e)});
    return kl_e_load(a, x, (kl_expr *[]){b, h, s, e});
}

/* One kernel over the output: the first R of each head's D values rotate in pairs, (x_k,
 * x_{k+R/2}) as halves or (x_2k, x_2k+1) interleaved, by the angle of pair k at the token's
 * position: first' = first cos - second sin, second' = first sin + second cos. */
static bool lower_rotary(kl_lower *L, kl_node *n, kl_diag *d) {
    rot r;
    if (!rot_shapes(n, &r, d)) return false;
    kl_arena *a = L->arena;
    kl_value *xv = n->inputs[0], *pos = kl_node_input(n, 3);
    kl_buffer *x = kl_lower_buffer(L, xv), *out = kl_lower_buffer(L, n->outputs[0]);
    kl_buffer *cosb = kl_lower_buffer(L, n->inputs[1]), *sinb = kl_lower_buffer(L, n->inputs[2]);
    kl_dtype u = kl_arith_compute_dtype(xv->dtype);
    int64_t half = r.R / 2;
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    k->n_loops = k->n_par = 4; /* b, h, s, e */
    k->extent[0] = r.B;
    k->extent[1] = r.heads;
    k->extent[2] = r.S;
    k->extent[3] = r.D;
    k->out = out;
    kl_expr *b = kl_e_iv(a, 0), *h = kl_e_iv(a, 1), *s = kl_e_iv(a, 2), *e = kl_e_iv(a, 3);
    k->out_idx = kl_alloc_array(a, 4, sizeof *k->out_idx);
    if (r.d3) {
        k->out_idx[0] = b, k->out_idx[1] = s, k->out_idx[2] = kl_e_add(a, kl_e_mulc(a, h, r.D), e);
    } else {
        k->out_idx[0] = b, k->out_idx[1] = h, k->out_idx[2] = s, k->out_idx[3] = e;
    }
    /* p: e's pair; second: e is the second of its pair; partner: the other one. Past R these
     * are out of range, but the select below never takes them (and loads in select arms are
     * clamped into their buffers). */
    kl_expr *p, *second, *partner;
    if (r.inter) {
        p = kl_e_binary(a, KL_DIV, e, kl_e_idx(a, 2));
        second = kl_e_binary(a, KL_EQ, kl_e_binary(a, KL_MOD, e, kl_e_idx(a, 2)), kl_e_idx(a, 1));
        partner = kl_e_select(a, second, kl_e_addc(a, e, -1), kl_e_addc(a, e, 1));
    } else {
        second = kl_e_binary(a, KL_GE, e, kl_e_idx(a, half));
        p = kl_e_select(a, second, kl_e_addc(a, e, -half), e);
        partner = kl_e_select(a, second, kl_e_addc(a, e, -half), kl_e_addc(a, e, half));
    }
    kl_expr *c, *sn;
    if (pos) {
        kl_expr *at = kl_e_cast(a, KL_I64, kl_e_load(a, kl_lower_buffer(L, pos),
                                                     (kl_expr *[]){b, s}));
        c = kl_e_load(a, cosb, (kl_expr *[]){at, p});
        sn = kl_e_load(a, sinb, (kl_expr *[]){at, p});
    } else {
        c = kl_e_load(a, cosb, (kl_expr *[]){b, s, p});
        sn = kl_e_load(a, sinb, (kl_expr *[]){b, s, p});
    }
    c = kl_e_cast(a, u, c);
    sn = kl_e_cast(a, u, sn);
    kl_expr *xe = kl_e_cast(a, u, rot_at(a, &r, x, b, h, s, e));
    kl_expr *xp = kl_e_cast(a, u, rot_at(a, &r, x, b, h, s, partner));
    kl_expr *ps = kl_e_binary(a, KL_MUL, xp, sn);
    kl_expr *rotated = kl_e_binary(a, KL_ADD, kl_e_binary(a, KL_MUL, xe, c),
                                   kl_e_select(a, second, ps, kl_e_unary(a, KL_NEG, ps)));
    kl_expr *in_rot = kl_e_binary(a, KL_LT, e, kl_e_idx(a, r.R));
    k->value = kl_e_cast(a, xv->dtype, kl_e_select(a, in_rot, rotated, xe));
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_attention[] = {
    {"", "Attention", 23, KL_OPSET_LATEST, attention_attrs, infer_attention, lower_attention},
    {"", "RotaryEmbedding", 23, KL_OPSET_LATEST, rotary_attrs, infer_rotary, lower_rotary},
    {"ai.onnx.preview", "FlexAttention", 1, 1, flex_attrs, infer_flex_attention,
     lower_flex_attention},
    {"kiln", "FlexScores", 1, 1, flex_attrs, infer_flex_scores, lower_flex_scores},
    {"kiln", "FlexSoftmax", 1, 1, flex_attrs, infer_flex_softmax, lower_flex_softmax},
    {"kiln", "FlexOutput", 1, 1, flex_attrs, infer_flex_output, lower_flex_output},
    {0},
};

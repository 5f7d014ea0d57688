/*
 * einsum.c — Einsum (opset 12 and later).
 *
 * An Einstein summation is exactly one kernel of the IR: one parallel loop per output label,
 * one reduction loop per label that appears only in the inputs, and as value the product of
 * one load per input, indexed by the loop of each of its labels. A label repeated within one
 * input (a diagonal, "ii->i") indexes two dimensions with the same loop; "..." stands for the
 * same run of broadcast dimensions in every term (numpy's rules: right-aligned, size 1
 * stretches). Without "->" the output is "..." followed by the labels that occur once, in
 * alphabetical order. The kernel is a contraction like MatMul's, so the tile pass blocks it
 * the same way.
 */
#include <string.h>

#include "arith_util.h"

static const char *const einsum_attrs[] = {"equation", NULL};

#define EIN_LETTERS 52            /* a-z, A-Z */
#define EIN_LABELS (EIN_LETTERS + KL_MAX_RANK)  /* then one label per ellipsis dimension */
#define EIN_MAX_INPUTS 16

typedef struct ein {
    int n_in;
    int rank[EIN_MAX_INPUTS];
    int label[EIN_MAX_INPUTS][KL_MAX_RANK]; /* label of each dimension of each input */
    int out_rank;
    int out_label[KL_MAX_RANK];
    int64_t size[EIN_LABELS];               /* 0: label unused */
    int ell_rank;
} ein;

static int64_t label_size_raw(int64_t s) { return s < 0 ? 0 : s; }

static int letter_label(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -1;
}

/* One term (spaces removed) into labels. An input's ellipsis covers the dimensions its
 * letters leave (rank >= 0); the output's covers ell_rank (rank < 0). Ellipsis dimensions get
 * the last labels of EIN_LETTERS.., right-aligned as broadcasting aligns them. Sets *count to
 * the number of labels and *ell to the ellipsis' dimensions (-1: no ellipsis). */
static bool parse_term(kl_node *n, const char *t, size_t len, int rank, int ell_rank,
                       int *labels, int *count, int *ell, kl_diag *d) {
    int letters = 0;
    bool has_ell = false;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (has_ell || i + 2 >= len || strncmp(t + i, "...", 3))
                return kl_error(d, n, "equation: '.' must come as one '...' per term");
            has_ell = true;
            i += 2;
        } else if (letter_label(t[i]) < 0) {
            return kl_error(d, n, "equation: '%c' is not a letter", t[i]);
        } else {
            letters++;
        }
    }
    int ell_dims = !has_ell ? 0 : rank >= 0 ? rank - letters : ell_rank;
    if (rank >= 0 && (ell_dims < 0 || letters + ell_dims != rank))
        return kl_error(d, n, "equation term '%.*s' has %d labels for rank %d", (int)len, t,
                        letters, rank);
    if (letters + ell_dims > KL_MAX_RANK)
        return kl_error(d, n, "equation term '%.*s' has too many labels", (int)len, t);
    int o = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            for (int k = 0; k < ell_dims; k++) labels[o++] = EIN_LABELS - ell_dims + k;
            i += 2;
        } else {
            labels[o++] = letter_label(t[i]);
        }
    }
    *count = o;
    *ell = has_ell ? ell_dims : -1;
    return true;
}

/* Parse the equation against the inputs' ranks and collect every label's size (-1 for a
 * size 0, so that 0 can mean unused). */
static bool ein_parse(kl_node *n, ein *e, kl_diag *d) {
    memset(e, 0, sizeof *e);
    const char *eq = kl_attr_string(n, "equation", NULL);
    if (!eq) return kl_error(d, n, "the equation attribute is missing");
    char buf[512];
    size_t len = 0;
    for (const char *p = eq; *p; p++)
        if (*p != ' ') {
            if (len + 1 >= sizeof buf) return kl_error(d, n, "equation is too long");
            buf[len++] = *p;
        }
    buf[len] = 0;
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : len;
    e->n_in = n->n_inputs;
    if (e->n_in < 1 || e->n_in > EIN_MAX_INPUTS)
        return kl_error(d, n, "Einsum takes 1 to %d inputs", EIN_MAX_INPUTS);
    const char *t = buf;
    for (int i = 0; i < e->n_in; i++) {
        const char *end = memchr(t, ',', lhs_len - (size_t)(t - buf));
        if (!end) end = buf + lhs_len;
        if ((i == e->n_in - 1) != (end == buf + lhs_len))
            return kl_error(d, n, "equation's terms do not match the %d inputs", e->n_in);
        kl_value *v = n->inputs[i];
        int count, ell;
        if (!parse_term(n, t, (size_t)(end - t), v->shape.rank, 0, e->label[i], &count, &ell, d))
            return false;
        e->rank[i] = count;
        if (ell > e->ell_rank) e->ell_rank = ell;
        for (int k = 0; k < count; k++) {
            int l = e->label[i][k];
            int64_t s = v->shape.dim[k] == 0 ? -1 : v->shape.dim[k];
            bool broadcast = l >= EIN_LETTERS;
            if (e->size[l] == 0 || (broadcast && e->size[l] == 1)) e->size[l] = s;
            else if (e->size[l] != s && !(broadcast && s == 1))
                return kl_error(d, n, "a label of term %d has size %lld here and %lld "
                                "elsewhere", i, (long long)label_size_raw(s),
                                (long long)label_size_raw(e->size[l]));
        }
        t = end + 1;
    }
    if (arrow) {
        int ell;
        if (!parse_term(n, arrow + 2, strlen(arrow + 2), -1, e->ell_rank, e->out_label,
                        &e->out_rank, &ell, d))
            return false;
        for (int k = 0; k < e->out_rank; k++) {
            if (e->size[e->out_label[k]] == 0)
                return kl_error(d, n, "an output label appears in no input");
            for (int j = 0; j < k; j++)
                if (e->out_label[j] == e->out_label[k])
                    return kl_error(d, n, "an output label appears twice");
        }
        return true;
    }
    int count[EIN_LETTERS] = {0};
    for (int i = 0; i < e->n_in; i++)
        for (int k = 0; k < e->rank[i]; k++)
            if (e->label[i][k] < EIN_LETTERS) count[e->label[i][k]]++;
    for (int k = 0; k < e->ell_rank; k++)
        e->out_label[e->out_rank++] = EIN_LABELS - e->ell_rank + k;
    /* alphabetical in ASCII: uppercase before lowercase */
    for (int j = 0; j < EIN_LETTERS; j++) {
        int l = (j + 26) % EIN_LETTERS; /* A..Z, then a..z */
        if (count[l] != 1) continue;
        if (e->out_rank == KL_MAX_RANK) return kl_error(d, n, "output rank is too large");
        e->out_label[e->out_rank++] = l;
    }
    return true;
}

static int64_t label_size(const ein *e, int l) { return label_size_raw(e->size[l]); }

static bool infer_einsum(kl_node *n, kl_diag *d) {
    for (int i = 0; i < n->n_inputs; i++) {
        if (!kl_arith_need_input(n, i, d)) return false;
        if (i && !kl_arith_same_dtype(n, 0, i, d)) return false;
    }
    ein e;
    if (!ein_parse(n, &e, d)) return false;
    kl_shape s = {.rank = e.out_rank};
    for (int k = 0; k < e.out_rank; k++) s.dim[k] = label_size(&e, e.out_label[k]);
    return kl_infer_set(n, 0, n->inputs[0]->dtype, &s);
}

static bool lower_einsum(kl_lower *L, kl_node *n, kl_diag *d) {
    ein e;
    if (!ein_parse(n, &e, d)) return false;
    kl_arena *a = L->arena;
    kl_buffer *out = kl_lower_buffer(L, n->outputs[0]);
    kl_dtype t = n->inputs[0]->dtype, u = kl_arith_compute_dtype(t);
    int loop_of[EIN_LABELS];
    for (int l = 0; l < EIN_LABELS; l++) loop_of[l] = -1;
    kl_kernel *k = kl_kernel_new(L->prog, n, NULL);
    int loops = 0;
    for (int i = 0; i < e.out_rank; i++) {
        loop_of[e.out_label[i]] = loops;
        k->extent[loops++] = label_size(&e, e.out_label[i]);
    }
    k->n_par = loops;
    for (int l = 0; l < EIN_LABELS; l++)
        if (e.size[l] != 0 && loop_of[l] < 0) {
            if (loops == KL_MAX_LOOPS) return kl_error(d, n, "too many labels");
            loop_of[l] = loops;
            k->extent[loops++] = label_size(&e, l);
        }
    k->n_loops = loops;
    kl_expr *value = NULL;
    for (int i = 0; i < e.n_in; i++) {
        kl_buffer *b = kl_lower_buffer(L, n->inputs[i]);
        kl_expr *idx[KL_MAX_RANK];
        for (int r = 0; r < e.rank[i]; r++) {
            int l = e.label[i][r];
            /* a broadcast dimension of size 1 against a larger one */
            bool stretched = b->shape.dim[r] == 1 && label_size(&e, l) != 1;
            idx[r] = stretched ? kl_e_idx(a, 0) : kl_e_iv(a, loop_of[l]);
        }
        kl_expr *v = kl_e_cast(a, u, kl_e_load(a, b, idx));
        value = value ? kl_e_binary(a, KL_MUL, value, v) : v;
    }
    k->out = out;
    k->out_idx = kl_lower_ivs(L, e.out_rank);
    k->value = value;
    if (k->n_loops > k->n_par) {
        k->reduce = KL_RED_SUM;
        k->acc_dtype = u;
        k->result = kl_e_cast(a, t, kl_e_acc(a, u));
    } else {
        k->value = kl_e_cast(a, t, value);
    }
    kl_program_add_kernel(L->prog, k);
    return true;
}

const kl_op kl_ops_einsum[] = {
    {"", "Einsum", 12, KL_OPSET_LATEST, einsum_attrs, infer_einsum, lower_einsum},
    {0},
};

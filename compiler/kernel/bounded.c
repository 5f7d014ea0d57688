/*
 * kernel/bounded.c — one program for every size of a bounded dim (`--shape x:1x1..512`).
 *
 * The graph is compiled at the bound, so buffers and the workspace are planned for the largest
 * size and every buffer keeps the layout it has there (a varying dim is padded to its bound).
 * What changes with the dim's run-time value n is found by lowering the model again at sample
 * sizes inside the range and comparing the programs, which must have the same kernels and
 * buffers: an extent, a dim or a constant that differs must be an affine function of n (or the
 * reciprocal of one: a mean's 1/n), and becomes an expression over the program's `dims` slot,
 * which the generated entries fill before the first kernel. Loops then run to their run-time
 * extents, and since an index never reaches past its loop's extent, nothing reads or writes
 * past the run-time size. Anything else that depends on n — a program whose structure or whose
 * weights change with it — is refused with a message that names it.
 *
 * The caller's tensors are dense at their run-time shape. That is the padded layout exactly
 * when the varying dim is the first dim that is not 1; other inputs and outputs are copied in
 * and out of the padded layout (kernel/bounded_io.c). A buffer read through another shape (a
 * view) stays a view where the padding means the same in both shapes (view_follows_root), and
 * becomes a dense copy of its own otherwise (bounded_io.c).
 */
#include <math.h>
#include <string.h>

#include "kl.h"

enum { MAX_PROBES = 6 };

typedef struct probe_set {
    int n;                         /* probes[0] is the program at the bound itself */
    int64_t size[MAX_PROBES];      /* the dim's value in each */
    kl_program *prog[MAX_PROBES];
    kl_arena *arena[MAX_PROBES];
} probe_set;

typedef struct fit {
    int64_t a, b;                  /* integer: y = a * n + b */
    double fa, fb;                 /* float: y = fa * n + fb, or 1 / y = fa * n + fb */
    bool reciprocal;
} fit;

typedef struct bounded {
    kl_program *p;
    const probe_set *ps;
    kl_expr *n;                    /* the run-time value: a load of p->dims */
    const kl_kernel *kernel;       /* being annotated (messages) */
    kl_diag *d;
    /* memo of rewritten expressions (a DAG stays a DAG): open addressing on the pointer */
    const kl_expr **memo_key;
    kl_expr **memo_val;
    size_t memo_cap, memo_n;
    bool failed;
} bounded;

bool kl_bindings_bounded(const kl_shape_binding *b, int n) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < b[i].shape.rank; d++)
            if (b[i].bounded[d]) return true;
    return false;
}

/* ---------------------------------------------------------------- fitting */

static bool fit_int(const probe_set *ps, const int64_t *y, fit *f) {
    /* probes[1] is the bound less one */
    f->a = y[0] - y[1];
    f->b = y[0] - f->a * ps->size[0];
    for (int i = 2; i < ps->n; i++)
        if (f->a * ps->size[i] + f->b != y[i]) return false;
    return true;
}

static bool near(double x, double y) { return fabs(x - y) <= 1e-9 * fmax(1.0, fabs(y)); }

static bool fit_line(const probe_set *ps, const double *y, double *a, double *b) {
    *a = y[0] - y[1];
    *b = y[0] - *a * (double)ps->size[0];
    for (int i = 2; i < ps->n; i++)
        if (!near(*a * (double)ps->size[i] + *b, y[i])) return false;
    return true;
}

static bool fit_float(const probe_set *ps, const double *y, fit *f) {
    f->reciprocal = false;
    if (fit_line(ps, y, &f->fa, &f->fb)) return true;
    double r[MAX_PROBES];
    for (int i = 0; i < ps->n; i++) {
        if (y[i] == 0) return false;
        r[i] = 1.0 / y[i];
    }
    f->reciprocal = true;
    return fit_line(ps, r, &f->fa, &f->fb);
}

/* ---------------------------------------------------------------- expressions of n */

kl_expr *kl_bounded_affine(kl_program *p, int64_t a, int64_t b) {
    kl_expr *n = kl_e_load(p->arena, p->dims, (kl_expr *[]){kl_e_idx(p->arena, 0)});
    return kl_e_addc(p->arena, kl_e_mulc(p->arena, n, a), b);
}

static kl_expr *int_of_n(bounded *B, kl_dtype t, const fit *f) {
    return kl_e_cast(B->p->arena, t, kl_bounded_affine(B->p, f->a, f->b));
}

static kl_expr *float_of_n(bounded *B, kl_dtype t, const fit *f) {
    kl_arena *a = B->p->arena;
    kl_expr *x = kl_e_cast(a, t, B->n);
    if (f->fa != 1) x = kl_e_binary(a, KL_MUL, x, kl_e_const_f(a, t, f->fa));
    if (f->fb != 0) x = kl_e_binary(a, KL_ADD, x, kl_e_const_f(a, t, f->fb));
    return f->reciprocal ? kl_e_binary(a, KL_DIV, kl_e_const_f(a, t, 1.0), x) : x;
}

/* ---------------------------------------------------------------- comparing programs */

static bool refuse(bounded *B, const char *what) {
    if (!B->failed)
        kl_error(B->d, B->kernel ? B->kernel->node : NULL,
                 "bounded dim %s: %s%s%s changes with the dim's value in a way kiln cannot "
                 "follow at run time (compile one object per size instead)", B->p->bounded_name,
                 what, B->kernel ? " " : "", B->kernel ? B->kernel->name : "");
    B->failed = true;
    return false;
}

static size_t memo_slot(const bounded *B, const kl_expr *e) {
    size_t h = ((uintptr_t)e >> 4) * 0x9E3779B97F4A7C15ull;
    size_t i = h & (B->memo_cap - 1);
    while (B->memo_key[i] && B->memo_key[i] != e) i = (i + 1) & (B->memo_cap - 1);
    return i;
}

static void memo_put(bounded *B, const kl_expr *e, kl_expr *v) {
    if (2 * (B->memo_n + 1) > B->memo_cap) {
        const kl_expr **keys = B->memo_key;
        kl_expr **vals = B->memo_val;
        size_t cap = B->memo_cap;
        B->memo_cap = cap ? cap * 2 : 256;
        B->memo_key = kl_alloc_array(B->p->arena, B->memo_cap, sizeof *B->memo_key);
        B->memo_val = kl_alloc_array(B->p->arena, B->memo_cap, sizeof *B->memo_val);
        for (size_t i = 0; i < cap; i++)
            if (keys[i]) {
                size_t s = memo_slot(B, keys[i]);
                B->memo_key[s] = keys[i];
                B->memo_val[s] = vals[i];
            }
    }
    size_t s = memo_slot(B, e);
    if (!B->memo_key[s]) B->memo_n++;
    B->memo_key[s] = e;
    B->memo_val[s] = v;
}

static kl_expr *rewrite(bounded *B, const kl_expr *e, const kl_expr *const *other);

/* A constant that differs between the probes, as an expression of n. */
static kl_expr *varying_const(bounded *B, const kl_expr *e, const kl_expr *const *other) {
    fit f;
    if (kl_dtype_is_float(e->dtype)) {
        double y[MAX_PROBES] = {e->f};
        for (int i = 1; i < B->ps->n; i++) y[i] = other[i]->f;
        if (!fit_float(B->ps, y, &f)) return refuse(B, "a constant of its kernel"), NULL;
        return float_of_n(B, e->dtype, &f);
    }
    if (e->dtype == KL_BOOL) return refuse(B, "a condition of its kernel"), NULL;
    int64_t y[MAX_PROBES] = {e->i};
    for (int i = 1; i < B->ps->n; i++) y[i] = other[i]->i;
    if (!fit_int(B->ps, y, &f)) return refuse(B, "a constant of its kernel"), NULL;
    return int_of_n(B, e->dtype, &f);
}

static bool same_node(const kl_expr *x, const kl_expr *y) {
    if (!x || !y) return x == y;
    if (x->kind != y->kind || x->dtype != y->dtype || x->op != y->op) return false;
    if (x->kind == KL_E_IV && x->i != y->i) return false;
    if (x->kind == KL_E_LOAD && x->buf->id != y->buf->id) return false;
    return (!x->a == !y->a) && (!x->b == !y->b) && (!x->c == !y->c);
}

static bool const_differs(const bounded *B, const kl_expr *e, const kl_expr *const *other) {
    for (int i = 1; i < B->ps->n; i++)
        if (kl_dtype_is_float(e->dtype) ? other[i]->f != e->f : other[i]->i != e->i) return true;
    return false;
}

/* An operand of e (through `pick`) and the same operand in the other probes. */
static kl_expr *rewrite_child(bounded *B, const kl_expr *child, const kl_expr *const *other,
                              size_t offset, int idx) {
    const kl_expr *sub[MAX_PROBES];
    for (int i = 1; i < B->ps->n; i++) {
        const kl_expr *o = other[i];
        sub[i] = idx >= 0 ? o->idx[idx] : *(kl_expr *const *)((const char *)o + offset);
    }
    return rewrite(B, child, sub);
}

/* e (of the program at the bound) with what varies replaced by expressions of n; e itself
 * when nothing under it varies. */
static kl_expr *rewrite(bounded *B, const kl_expr *e, const kl_expr *const *other) {
    if (!e || B->failed) return (kl_expr *)e;
    for (int i = 1; i < B->ps->n; i++)
        if (!same_node(e, other[i])) return refuse(B, "the structure of its kernel"), NULL;
    size_t s = B->memo_cap ? memo_slot(B, e) : 0;
    if (B->memo_cap && B->memo_key[s] == e) return B->memo_val[s];
    kl_expr *r = (kl_expr *)e;
    if (e->kind == KL_E_CONST) {
        if (const_differs(B, e, other)) r = varying_const(B, e, other);
    } else {
        kl_expr *a = rewrite_child(B, e->a, other, offsetof(kl_expr, a), -1);
        kl_expr *b = rewrite_child(B, e->b, other, offsetof(kl_expr, b), -1);
        kl_expr *c = rewrite_child(B, e->c, other, offsetof(kl_expr, c), -1);
        int rank = e->kind == KL_E_LOAD ? e->buf->shape.rank : 0;
        kl_expr *idx[KL_MAX_RANK];
        bool changed = a != e->a || b != e->b || c != e->c;
        for (int d = 0; d < rank; d++) {
            idx[d] = rewrite_child(B, e->idx[d], other, 0, d);
            changed = changed || idx[d] != e->idx[d];
        }
        if (changed && !B->failed) {
            r = kl_alloc(B->p->arena, sizeof *r);
            *r = *e;
            r->a = a, r->b = b, r->c = c;
            if (rank) {
                r->idx = kl_alloc_array(B->p->arena, (size_t)rank, sizeof *r->idx);
                memcpy(r->idx, idx, (size_t)rank * sizeof *idx);
            }
        }
    }
    if (B->failed) return NULL;
    memo_put(B, e, r);
    return r;
}

/* ---------------------------------------------------------------- kernels */

#define FIELD(k, f) (*(kl_expr *const *)((const char *)(k) + (f)))

static kl_expr *rewrite_field(bounded *B, const kl_kernel *const *ks, size_t field) {
    const kl_expr *other[MAX_PROBES];
    for (int i = 1; i < B->ps->n; i++) other[i] = FIELD(ks[i], field);
    return rewrite(B, FIELD(ks[0], field), other);
}

static bool same_kernel_shape(const kl_kernel *x, const kl_kernel *y) {
    return x->n_loops == y->n_loops && x->n_par == y->n_par && x->reduce == y->reduce &&
           x->acc_dtype == y->acc_dtype && x->error_code == y->error_code &&
           !x->guard == !y->guard && x->out->id == y->out->id && !x->init == !y->init &&
           !x->value == !y->value && !x->result == !y->result;
}

static bool annotate_kernel(bounded *B, int k) {
    const kl_kernel *ks[MAX_PROBES] = {0};
    for (int i = 0; i < B->ps->n; i++) ks[i] = B->ps->prog[i]->kernels.items[k];
    kl_kernel *kn = (kl_kernel *)ks[0];
    B->kernel = kn;
    for (int i = 1; i < B->ps->n; i++)
        if (!same_kernel_shape(kn, ks[i])) return refuse(B, "the structure of its kernel");
    for (int l = 0; l < kn->n_loops; l++) {
        int64_t y[MAX_PROBES];
        for (int i = 0; i < B->ps->n; i++) y[i] = ks[i]->extent[l];
        fit f;
        if (!fit_int(B->ps, y, &f)) return refuse(B, "a loop of its kernel");
        if (f.a != 0) kn->extent_expr[l] = int_of_n(B, KL_I64, &f);
    }
    kl_expr *init = rewrite_field(B, ks, offsetof(kl_kernel, init));
    kl_expr *value = rewrite_field(B, ks, offsetof(kl_kernel, value));
    kl_expr *result = rewrite_field(B, ks, offsetof(kl_kernel, result));
    int rank = kn->out->shape.rank;
    kl_expr **out_idx = kl_alloc_array(B->p->arena, (size_t)rank + 1, sizeof *out_idx);
    for (int d = 0; d < rank; d++) {
        const kl_expr *other[MAX_PROBES];
        for (int i = 1; i < B->ps->n; i++) other[i] = ks[i]->out_idx[d];
        out_idx[d] = rewrite(B, kn->out_idx[d], other);
    }
    if (B->failed) return false;
    kn->init = init, kn->value = value, kn->result = result, kn->out_idx = out_idx;
    return true;
}

/* ---------------------------------------------------------------- buffers */

static bool same_buffer_shape(const kl_buffer *x, const kl_buffer *y) {
    return x->kind == y->kind && x->dtype == y->dtype && x->shape.rank == y->shape.rank &&
           !x->view_of == !y->view_of && (!x->view_of || x->view_of->id == y->view_of->id);
}

/* Whether constant `small` (a probe's) holds at every element the value `big` (the bound's) has
 * at the same position: then reading the bound's within the run-time extents is the same (a
 * weight sliced to the dim's length: the rows a smaller size reads are the same rows). */
static bool same_where_read(const kl_buffer *big, const kl_buffer *small) {
    size_t es = (size_t)kl_dtype_size(big->dtype);
    int64_t n = kl_shape_numel(&small->shape), stride[KL_MAX_RANK];
    kl_shape_strides(&big->shape, stride);
    for (int64_t i = 0; i < n; i++) {
        int64_t rest = i, at = 0;
        for (int d = small->shape.rank - 1; d >= 0; d--) {
            int64_t dim = small->shape.dim[d];
            if (dim > big->shape.dim[d]) return false;
            at += (rest % dim) * stride[d];
            rest /= dim;
        }
        if (memcmp((const char *)big->data + (size_t)at * es, (const char *)small->data + (size_t)i * es, es))
            return false;
    }
    return true;
}

static const char *buffer_role(const kl_buffer *b) {
    return b->kind == KL_BUF_INPUT ? "input" : b->kind == KL_BUF_OUTPUT ? "output" : "value";
}

static bool annotate_buffer(bounded *B, int i) {
    const kl_buffer *bs[MAX_PROBES] = {0};
    for (int j = 0; j < B->ps->n; j++) bs[j] = B->ps->prog[j]->buffers.items[i];
    kl_buffer *b = (kl_buffer *)bs[0];
    B->kernel = NULL;
    for (int j = 1; j < B->ps->n; j++)
        if (!same_buffer_shape(b, bs[j]))
            return refuse(B, kl_sprintf(B->p->arena, "buffer '%s'", b->name));
    int64_t *da = kl_alloc_array(B->p->arena, KL_MAX_RANK, sizeof *da);
    int64_t *db = kl_alloc_array(B->p->arena, KL_MAX_RANK, sizeof *db);
    bool varies = false;
    for (int d = 0; d < b->shape.rank; d++) {
        int64_t y[MAX_PROBES];
        for (int j = 0; j < B->ps->n; j++) y[j] = bs[j]->shape.dim[d];
        fit f;
        if (!fit_int(B->ps, y, &f))
            return refuse(B, kl_sprintf(B->p->arena, "the shape of %s '%s'", buffer_role(b),
                                        b->name));
        da[d] = f.a, db[d] = f.b;
        varies = varies || f.a != 0;
    }
    if (b->kind == KL_BUF_CONST) {
        for (int j = 1; j < B->ps->n; j++)
            if (!same_where_read(b, bs[j]))
                return refuse(B, kl_sprintf(B->p->arena, "constant '%s' (computed from the "
                                            "dim's value, and read at run time)", b->name));
    }
    b->dyn_a = da, b->dyn_b = db;
    return true;
}

/* Where buffer b's varying dim is (-1: none; -2: more than one), and the products of the dims
 * before and after it. */
static int varying_dim(const kl_buffer *b, int64_t *outer, int64_t *inner) {
    int at = -1;
    *outer = *inner = 1;
    for (int d = 0; d < b->shape.rank; d++) {
        if (b->dyn_a[d]) {
            if (at >= 0) return -2;
            at = d;
        } else if (at < 0) {
            *outer *= b->shape.dim[d];
        } else {
            *inner *= b->shape.dim[d];
        }
    }
    return at;
}

/* A view reads its root's bytes with another shape: right at every size only when both hold
 * the varying dim once, behind the same fixed outer dims, and it splits or merges only with
 * fixed dims inside it ([1,64,n] as [64,n], [n,64] as [64n]; not [4,n] as [4n]: that one gets
 * a copy). */
static bool view_follows_root(const kl_buffer *v) {
    const kl_buffer *r = v->view_of;
    int64_t vo, vi, ro, ri;
    int pv = varying_dim(v, &vo, &vi), pr = varying_dim(r, &ro, &ri);
    if (pv == -1 && pr == -1) return true;
    return pv >= 0 && pr >= 0 && vo == ro && v->dyn_a[pv] * vi == r->dyn_a[pr] * ri &&
           v->dyn_b[pv] * vi == r->dyn_b[pr] * ri;
}

/* ---------------------------------------------------------------- probing */

static bool same_program_shape(const kl_program *x, const kl_program *y) {
    return x->kernels.n == y->kernels.n && x->buffers.n == y->buffers.n &&
           x->inputs.n == y->inputs.n && x->outputs.n == y->outputs.n &&
           x->traps.n == y->traps.n;
}

/* The one range every bounded dim of the bindings shares, and a name for it. */
static bool find_range(kl_program *p, const kl_shape_binding *b, int n, kl_diag *d) {
    bool found = false;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < b[i].shape.rank; k++) {
            if (!b[i].bounded[k]) continue;
            int64_t lo = b[i].min_dim[k], hi = b[i].shape.dim[k];
            if (!found) {
                p->bounded_name = kl_sprintf(p->arena, "%s[%d]", b[i].input, k);
                p->bounded_min = lo, p->bounded_max = hi;
                found = true;
            } else if (lo != p->bounded_min || hi != p->bounded_max) {
                return kl_error(d, NULL, "--shape: the bounded dims %s (%lld..%lld) and %s[%d] "
                                "(%lld..%lld) differ; kiln supports one bounded dim per model "
                                "for now (give them the same range where they are the same "
                                "dim)", p->bounded_name, (long long)p->bounded_min,
                                (long long)p->bounded_max, b[i].input, k, (long long)lo,
                                (long long)hi);
            }
        }
    int64_t lo = p->bounded_min > 2 ? p->bounded_min : 2;
    if (p->bounded_max - lo < 2)
        return kl_error(d, NULL, "--shape: the range %lld..%lld of %s is too small to "
                        "compile as a bounded dim (kiln needs three sizes of at least 2 in it); "
                        "compile one object per size", (long long)p->bounded_min,
                        (long long)p->bounded_max, p->bounded_name);
    return true;
}

/* The sizes the model is lowered at: the bound, two below it, two at the bottom of the range
 * (from 2: a dim of 1 broadcasts differently) and the middle, so that a size that stops
 * following the dim somewhere in the range is caught. */
static void probe_sizes(const kl_program *p, probe_set *ps) {
    int64_t lo = p->bounded_min > 2 ? p->bounded_min : 2, hi = p->bounded_max;
    int64_t want[MAX_PROBES] = {hi, hi - 1, hi - 2, lo, lo + 1, lo + (hi - lo) / 2};
    ps->n = 0;
    for (int i = 0; i < MAX_PROBES; i++) {
        bool seen = false;
        for (int j = 0; j < ps->n; j++) seen = seen || ps->size[j] == want[i];
        if (!seen) ps->size[ps->n++] = want[i];
    }
}

static const char *first_message(kl_arena *a, const kl_diag *sub) {
    const char *t = sub->text ? sub->text : "";
    size_t skip = sub->file ? strlen(sub->file) : 0;
    if (skip && !strncmp(t, sub->file, skip) && t[skip] == ':') t += skip + 2;
    const char *nl = strchr(t, '\n');
    return nl ? kl_strndup(a, t, (size_t)(nl - t)) : t;
}

static bool lower_probe(kl_program *p, const kl_shape_binding *b, int n, kl_probe_fn load,
                        void *ctx, probe_set *ps, int i, kl_diag *d) {
    kl_shape_binding *at = kl_alloc_array(p->arena, (size_t)n + 1, sizeof *at);
    memcpy(at, b, (size_t)n * sizeof *b);
    for (int j = 0; j < n; j++)
        for (int k = 0; k < at[j].shape.rank; k++)
            if (at[j].bounded[k]) at[j].shape.dim[k] = ps->size[i];
    kl_diag sub;
    kl_diag_init(&sub, d->file);
    ps->arena[i] = kl_arena_new();
    kl_graph *g = load(ctx, ps->arena[i], at, n, &sub);
    ps->prog[i] = g && !kl_diag_failed(&sub) ? kl_lower_graph(ps->arena[i], g, &sub) : NULL;
    bool ok = ps->prog[i] && !kl_diag_failed(&sub);
    if (!ok)
        kl_error(d, NULL, "bounded dim %s: the model does not compile when it is %lld (inside "
                 "its range %lld..%lld): %s", p->bounded_name, (long long)ps->size[i],
                 (long long)p->bounded_min, (long long)p->bounded_max,
                 first_message(p->arena, &sub));
    else if (!same_program_shape(ps->prog[0], ps->prog[i]))
        ok = kl_error(d, NULL, "bounded dim %s: the model lowers to other kernels when it is "
                      "%lld than when it is %lld; kiln needs one program for every size "
                      "(compile one object per size instead)", p->bounded_name,
                      (long long)ps->size[i], (long long)ps->size[0]);
    kl_diag_free(&sub);
    return ok;
}

bool kl_bounded_annotate(kl_program *p, const kl_shape_binding *b, int n, kl_probe_fn load,
                         void *ctx, kl_diag *d) {
    if (!find_range(p, b, n, d)) return false;
    probe_set ps = {0};
    probe_sizes(p, &ps);
    ps.prog[0] = p;
    bool ok = true;
    for (int i = 1; ok && i < ps.n; i++) ok = lower_probe(p, b, n, load, ctx, &ps, i, d);
    if (ok) {
        kl_shape one = {.rank = 1, .dim = {1}};
        p->dims = kl_program_buffer(p, "bounded_dims", KL_BUF_WORKSPACE, KL_I64, &one);
        bounded B = {.p = p, .ps = &ps, .d = d};
        B.n = kl_bounded_affine(p, 1, 0);
        int n_buffers = p->buffers.n - 1; /* the probes have no dims slot */
        for (int i = 0; ok && i < n_buffers; i++) ok = annotate_buffer(&B, i);
        kl_ptrvec moved = {0}; /* views that do not keep the layout: given storage of their own */
        for (int i = 0; ok && i < n_buffers; i++) {
            kl_buffer *v = p->buffers.items[i];
            if (v->view_of && !view_follows_root(v)) kl_ptrvec_push(p->arena, &moved, v);
        }
        for (int k = 0; ok && k < p->kernels.n; k++) ok = annotate_kernel(&B, k);
        /* (kernels of their own: after the comparison) */
        for (int i = 0; ok && i < moved.n; i++) kl_bounded_materialize_view(p, moved.items[i]);
        ok = ok && kl_bounded_copy_io(p, d);
    }
    for (int i = 1; i < ps.n; i++)
        if (ps.arena[i]) kl_arena_free(ps.arena[i]);
    return ok && !kl_diag_failed(d);
}

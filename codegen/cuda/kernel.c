/*
 * codegen/cuda/kernel.c — one kl_kernel as one device function, called by its launch's
 * __global__ function (source.c) with the block it runs as.
 *
 * The function takes that block number and a pointer per storage it touches other than the
 * weights (which it addresses in the module's own `kl_weights`), in the launch plan's order;
 * views share their root's pointer. A pointer is __restrict__ unless the kernel both reads and
 * writes it.
 *
 * A thread (launch.c) finds its group, lane and part from its number, decodes the group into
 * the outer parallel loops, and computes the points of its register block the way the LLVM
 * back end jams them:
 *
 *     acc[p] = init(p)                              for every point p
 *     for reduction loops (the innermost: part, part + split, ...):
 *         acc[p] = acc[p] (op) value(p)             for every point p
 *     acc[p] = acc[p] (op) shuffle(acc[p])          when split > 1
 *     out[p] = result(p)                            for every point whose element exists
 *
 * A VECTOR chunk's element is lane + chunk * lanes; a thread whose element lies past the loop
 * computes with the last element (every address stays valid, no branch in the hot loop) and
 * does not store. Threads past the last group do the same when they take part in shuffles,
 * and return at once otherwise. A kernel that must run in order (launch.c) is one thread
 * running the plain nest: every parallel loop, then the reduction, point by point.
 */
#include <string.h>

#include "cuda_internal.h"

void kl_cu_printer_init(kl_cu_printer *pr, FILE *f, const kl_cu_program *cp, int index,
                        kl_diag *d) {
    memset(pr, 0, sizeof *pr);
    pr->f = f;
    pr->a = cp->arena;
    pr->d = d;
    pr->cp = cp;
    pr->k = cp->p->kernels.items[index];
    pr->L = &cp->launch[index];
    pr->point = -1;
    pr->indent = 0;
    for (int l = pr->L->first_block; l < pr->k->n_par; l++)
        pr->block_loop[l] = true;
}

/* ---------------------------------------------------------------- the signature */

void kl_cu_print_param(FILE *f, const kl_kernel *k, const kl_buffer *b, int i) {
    bool written = b == kl_buffer_root(k->out), read = kl_kernel_reads(k, b);
    fprintf(f, "%s%s *%sp%d", written ? "" : "const ", kl_cu_mem_type(b->dtype),
            written && read ? "" : "__restrict__ ", i);
}

/* The kernel as a device function of the block it runs as (its launch decides which). */
static void print_signature(kl_cu_printer *pr, const char *name) {
    const kl_cu_launch *L = pr->L;
    fprintf(pr->f, "static __device__ __forceinline__ void %s(const unsigned kl_block", name);
    for (int i = 0; i < L->n_params; i++) {
        fputs(", ", pr->f);
        kl_cu_print_param(pr->f, pr->k, L->params[i], i);
    }
    fputc(')', pr->f);
}

/* ---------------------------------------------------------------- loops */

static bool fits_int(int64_t n) { return n <= INT32_MAX; }

/* for (int iL = from; iL < extent; iL += step) { */
static void open_loop(kl_cu_printer *pr, int l, const char *from, int step) {
    int64_t n = pr->k->extent[l];
    const char *t = fits_int(n) ? "int" : "long long";
    const char *name = kl_sprintf(pr->a, "i%d", l);
    if (step == 1)
        kl_cu_open(pr, "for (%s %s = %s; %s < %lld; ++%s)", t, name, from, name, (long long)n, name);
    else
        kl_cu_open(pr, "for (%s %s = %s; %s < %lld; %s += %d)", t, name, from, name, (long long)n,
                   name, step);
    pr->iv[l] = name;
    pr->iv_narrow[l] = fits_int(n);
    pr->iv_is_const[l] = false;
}

static void close_loop(kl_cu_printer *pr, int l) {
    kl_cu_close(pr);
    pr->iv[l] = NULL;
}

/* ---------------------------------------------------------------- block points */

/* Make point p current: UNROLL loops at their constant, the VECTOR loop at its chunk's
 * element. Returns the chunk. */
static int set_point(kl_cu_printer *pr, int p) {
    const kl_kernel *k = pr->k;
    const kl_cu_launch *L = pr->L;
    int64_t rest = p;
    int chunk = 0;
    for (int l = k->n_par - 1; l >= L->first_block; l--) {
        int64_t n = l == L->vloop ? L->chunks : k->extent[l];
        int64_t i = rest % n;
        rest /= n;
        pr->iv_narrow[l] = true;
        if (l == L->vloop) {
            chunk = (int)i;
            pr->iv[l] = kl_sprintf(pr->a, "kl_v%d", chunk);
            pr->iv_is_const[l] = false;
        } else {
            pr->iv[l] = kl_sprintf(pr->a, "%lld", (long long)i);
            pr->iv_is_const[l] = true;
            pr->iv_const[l] = i;
        }
    }
    pr->point = p;
    pr->acc = kl_sprintf(pr->a, "a%d", p);
    return chunk;
}

/* Point p of a blocked kernel, or the one point of a kernel without a block. */
static void enter_point(kl_cu_printer *pr, int p) {
    if (pr->L->first_block < pr->k->n_par) {
        set_point(pr, p);
        return;
    }
    pr->point = -1;
    pr->acc = "a0";
}

static void leave_points(kl_cu_printer *pr) {
    for (int l = pr->L->first_block; l < pr->k->n_par; l++) {
        pr->iv[l] = NULL;
        pr->iv_is_const[l] = false;
    }
    pr->point = -1;
    pr->acc = NULL;
}

/* ---------------------------------------------------------------- the reduction */

static bool fused_product(const kl_kernel *k) {
    const kl_expr *v = k->value;
    return k->reduce == KL_RED_SUM && kl_cu_is_float(k->acc_dtype) && k->acc_dtype != KL_F16 &&
           !kl_dtype_is_minifloat(k->acc_dtype) &&
           v->kind == KL_E_BINARY && v->op == KL_MUL && v->dtype == k->acc_dtype;
}

/* acc = acc (op) value for the current point. */
static bool update(kl_cu_printer *pr) {
    const kl_kernel *k = pr->k;
    if (k->value->dtype != k->acc_dtype)
        return kl_cu_fail(pr, "reduced value's type differs from the accumulator's");
    if (fused_product(k)) {
        cu_val x, y;
        if (!kl_cu_expr(pr, k->value->a, &x) || !kl_cu_expr(pr, k->value->b, &y))
            return false;
        kl_cu_line(pr, "%s = %s(%s, %s, %s);", pr->acc, k->acc_dtype == KL_F64 ? "fma" : "fmaf",
                   x.s, y.s, pr->acc);
        return true;
    }
    cu_val v;
    if (!kl_cu_expr(pr, k->value, &v))
        return false;
    const char *r = kl_cu_combine(pr, k->reduce, k->acc_dtype, pr->acc, v.s);
    if (k->acc_dtype == KL_F16)
        r = kl_sprintf(pr->a, "kl_rh(%s)", r);
    r = kl_cu_fit_small(pr, k->acc_dtype, (cu_val){r, k->acc_dtype, false}, 0).s;
    kl_cu_line(pr, "%s = %s;", pr->acc, r);
    return true;
}

/* The accumulator of the current point, started at init (or the identity). Threads that are
 * not part 0 of a split reduction start at the identity: init is added once. */
static bool start_accumulator(kl_cu_printer *pr) {
    const kl_kernel *k = pr->k;
    const char *id = kl_cu_identity(pr, k->reduce, k->acc_dtype);
    const char *ct = kl_cu_reg_type(k->acc_dtype);
    if (!k->init) {
        kl_cu_line(pr, "%s %s = %s;", ct, pr->acc, id);
        return true;
    }
    cu_val v;
    if (!kl_cu_expr(pr, k->init, &v))
        return false;
    if (strcmp(kl_cu_reg_type(v.t), ct))
        return kl_cu_fail(pr, "the accumulator's start has another type than the accumulator");
    if (pr->L->split > 1)
        kl_cu_line(pr, "%s %s = kl_part == 0 ? %s : %s;", ct, pr->acc, v.s, id);
    else
        kl_cu_line(pr, "%s %s = %s;", ct, pr->acc, v.s);
    return true;
}

/* The reduction loops around every point's update (none run when one is empty). */
static bool reduce_points(kl_cu_printer *pr, int points) {
    const kl_kernel *k = pr->k;
    for (int l = k->n_par; l < k->n_loops; l++)
        if (k->extent[l] <= 0)
            return true;
    int split = pr->L->split;
    for (int l = k->n_par; l < k->n_loops; l++)
        open_loop(pr, l, l == k->n_loops - 1 && split > 1 ? "kl_part" : "0",
                  l == k->n_loops - 1 ? split : 1);
    for (int p = 0; p < points; p++) {
        enter_point(pr, p);
        if (!update(pr))
            return false;
    }
    leave_points(pr);
    for (int l = k->n_loops - 1; l >= k->n_par; l--)
        close_loop(pr, l);
    return true;
}

/* Partial results of the split threads of a group combined across the warp. */
static void combine_parts(kl_cu_printer *pr, int points) {
    const kl_kernel *k = pr->k;
    const kl_cu_launch *L = pr->L;
    kl_dtype t = k->acc_dtype;
    /* __shfl_xor_sync has no overload below int */
    bool small = t == KL_I8 || t == KL_U8 || t == KL_I16 || t == KL_U16;
    for (int off = L->lanes * L->split / 2; off >= L->lanes; off /= 2)
        for (int p = 0; p < points; p++) {
            const char *acc = kl_sprintf(pr->a, "a%d", p);
            const char *other = kl_sprintf(pr->a, "(%s)__shfl_xor_sync(KL_FULL_WARP, %s%s, %d)",
                                           kl_cu_reg_type(t), small ? "(int)" : "", acc, off);
            kl_cu_line(pr, "%s = %s;", acc, kl_cu_combine(pr, k->reduce, t, acc, other));
        }
}

/* ---------------------------------------------------------------- stores */

/* out = result for the current point. */
static bool store_point(kl_cu_printer *pr) {
    const kl_kernel *k = pr->k;
    cu_val v;
    if (k->reduce == KL_RED_NONE) {
        if (!kl_cu_expr(pr, k->result ? k->result : k->value, &v))
            return false;
    } else if (k->result) {
        if (!kl_cu_expr(pr, k->result, &v))
            return false;
    } else {
        v.s = pr->acc;
        v.t = k->acc_dtype;
        v.narrow = false;
    }
    return kl_cu_store(pr, v);
}

static bool store_points(kl_cu_printer *pr, int points) {
    const kl_kernel *k = pr->k;
    const kl_cu_launch *L = pr->L;
    for (int p = 0; p < points; p++) {
        int chunk = set_point(pr, p);
        int64_t first = (int64_t)chunk * L->lanes;
        bool partial = L->vloop >= 0 && first + L->lanes > k->extent[L->vloop];
        if (partial)
            kl_cu_open(pr, "if (kl_lane + %lld < %lld)", (long long)first,
                       (long long)k->extent[L->vloop]);
        else
            kl_cu_open(pr, "%s", "");
        if (!store_point(pr))
            return false;
        kl_cu_close(pr);
    }
    leave_points(pr);
    return true;
}

/* ---------------------------------------------------------------- the thread's place */

/* kl_t, kl_lane, kl_part and the group, decoded into the outer parallel loops. */
static void thread_place(kl_cu_printer *pr) {
    const kl_kernel *k = pr->k;
    const kl_cu_launch *L = pr->L;
    const char *ut = L->wide ? "unsigned long long" : "unsigned";
    if (L->wide)
        kl_cu_line(pr, "const %s kl_t = (unsigned long long)kl_block * %du + threadIdx.x;", ut,
                   L->threads);
    else
        kl_cu_line(pr, "const %s kl_t = kl_block * %du + threadIdx.x;", ut, L->threads);
    if (L->lanes > 1)
        kl_cu_line(pr, "const int kl_lane = (int)(kl_t %% %du);", L->lanes);
    if (L->split > 1)
        kl_cu_line(pr, "const int kl_part = (int)(kl_t / %du %% %du);", L->lanes, L->split);
    kl_cu_line(pr, "%s kl_g = kl_t / %du;", ut, L->lanes * L->split);
    if (L->split > 1) {
        /* every thread of the warp takes part in the shuffles */
        kl_cu_line(pr, "const bool kl_live = kl_g < %lldull;", (long long)L->groups);
        kl_cu_line(pr, "if (!kl_live) kl_g = %lldull;", (long long)(L->groups - 1));
    } else {
        kl_cu_line(pr, "if (kl_g >= %lldull) return;", (long long)L->groups);
    }
    for (int l = L->first_block - 1; l >= 0; l--) {
        int64_t n = k->extent[l];
        const char *t = fits_int(n) ? "int" : "long long";
        pr->iv[l] = kl_sprintf(pr->a, "i%d", l);
        pr->iv_narrow[l] = fits_int(n);
        if (n == 1)
            kl_cu_line(pr, "const %s i%d = 0;", t, l);
        else if (l == 0)
            kl_cu_line(pr, "const %s i%d = (%s)kl_g;", t, l, t);
        else
            kl_cu_line(pr, "const %s i%d = (%s)(kl_g %% %lldu); kl_g /= %lldu;", t, l, t,
                       (long long)n, (long long)n);
    }
    if (L->vloop >= 0) {
        int64_t n = k->extent[L->vloop];
        for (int c = 0; c < L->chunks; c++) {
            int64_t first = (int64_t)c * L->lanes;
            if (first + L->lanes <= n)
                kl_cu_line(pr, "const int kl_v%d = kl_lane + %lld;", c, (long long)first);
            else
                kl_cu_line(pr, "const int kl_v%d = kl_lane + %lld < %lld ? kl_lane + %lld : %lld;",
                           c, (long long)first, (long long)n, (long long)first, (long long)(n - 1));
        }
    }
}

/* ---------------------------------------------------------------- bodies */

static bool parallel_body(kl_cu_printer *pr) {
    const kl_kernel *k = pr->k;
    const kl_cu_launch *L = pr->L;
    thread_place(pr);
    int points = L->points;
    bool blocked = L->first_block < k->n_par;
    if (k->reduce != KL_RED_NONE) {
        for (int p = 0; p < points; p++) {
            enter_point(pr, p);
            if (!start_accumulator(pr))
                return false;
        }
        leave_points(pr);
        if (!reduce_points(pr, points))
            return false;
        if (L->split > 1) {
            combine_parts(pr, points);
            kl_cu_line(pr, "if (!kl_live || kl_part != 0) return;");
        }
    }
    if (!blocked) {
        enter_point(pr, 0);
        return store_point(pr);
    }
    return store_points(pr, points);
}

/* One thread, the plain nest: the interpreter's order. */
static bool serial_body(kl_cu_printer *pr) {
    const kl_kernel *k = pr->k;
    for (int l = 0; l < k->n_par; l++)
        open_loop(pr, l, "0", 1);
    pr->acc = "a0";
    if (k->reduce != KL_RED_NONE) {
        if (!start_accumulator(pr) || !reduce_points(pr, 1))
            return false;
        pr->acc = "a0";
    }
    if (!store_point(pr))
        return false;
    for (int l = k->n_par - 1; l >= 0; l--)
        close_loop(pr, l);
    return true;
}

/* Model text inside a C comment: printable ASCII, never a comment's end. */
static void put_comment_text(FILE *f, const char *s) {
    char prev = 0;
    for (; s && *s; s++) {
        char c = *s >= 32 && *s < 127 ? *s : '?';
        if (prev == '*' && c == '/')
            fputc(' ', f);
        fputc(c, f);
        prev = c;
    }
}

bool kl_cu_print_kernel(FILE *f, const kl_cu_program *cp, int index, kl_diag *d) {
    kl_cu_printer pr;
    kl_cu_printer_init(&pr, f, cp, index, d);
    const kl_kernel *k = pr.k;
    if (pr.L->skip)
        return true;
    if (k->reduce != KL_RED_NONE && (k->reduce > KL_RED_MIN || !k->value ||
                                     !kl_cu_reg_type(k->acc_dtype)))
        return kl_cu_fail(&pr, "bad reduction");
    kl_buffer_kind out_kind = kl_buffer_root(k->out)->kind;
    if (out_kind == KL_BUF_INPUT || out_kind == KL_BUF_CONST)
        return kl_cu_fail(&pr, "writes to an input or constant buffer: %s", k->out->name);
    fprintf(f, "\n/* %s", k->name);
    if (k->node) {
        fputs(" (node '", f);
        put_comment_text(f, k->node->name);
        fputs("')", f);
    }
    const kl_cu_launch *L = pr.L;
    if (L->serial)
        fputs(": one thread, in order */\n", f);
    else
        fprintf(f, ": %lld group%s x %d lane%s x %d part%s, %d point%s a thread */\n",
                (long long)L->groups, L->groups == 1 ? "" : "s", L->lanes, L->lanes == 1 ? "" : "s",
                L->split, L->split == 1 ? "" : "s", L->points, L->points == 1 ? "" : "s");
    print_signature(&pr, cp->names[index]);
    fputs(" {\n", f);
    if (!pr.L->serial)
        fprintf(f, "    if (threadIdx.x >= %du) return;\n", pr.L->threads);
    pr.indent = 1;
    bool ok = pr.L->serial ? serial_body(&pr) : parallel_body(&pr);
    fputs("}\n", f);
    return ok;
}

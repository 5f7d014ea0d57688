/*
 * test_codegen.c — the LLVM back end on hand-built kernel programs.
 *
 * Each test builds a kl_program directly (no ONNX involved), compiles it through
 * kl_codegen_llvm into a shared library in a temporary folder, dlopens it and checks the numbers
 * predict() produces — the same path `kiln check` takes. Also: the return codes of predict and
 * run, the model table's layout as seen through kiln.h, that an object needs nothing but
 * memcpy/memset (nm -u), and that the header compiles.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln.h"
#include "kl.h"

/* ---------------------------------------------------------------- helpers */

typedef struct built {
    void *so;
    char dir[64];
    char path[128];
} built;

static kl_shape shape1(int64_t a) { return (kl_shape){.rank = 1, .dim = {a}}; }
static kl_shape shape2(int64_t a, int64_t b) { return (kl_shape){.rank = 2, .dim = {a, b}}; }

static kl_buffer *input(kl_program *p, const char *name, kl_dtype t, kl_shape s) {
    kl_buffer *b = kl_program_buffer(p, name, KL_BUF_INPUT, t, &s);
    b->index = p->inputs.n;
    kl_ptrvec_push(p->arena, &p->inputs, b);
    return b;
}

static kl_buffer *output(kl_program *p, const char *name, kl_dtype t, kl_shape s) {
    kl_buffer *b = kl_program_buffer(p, name, KL_BUF_OUTPUT, t, &s);
    b->index = p->outputs.n;
    kl_ptrvec_push(p->arena, &p->outputs, b);
    return b;
}

static kl_expr **ivs(kl_arena *a, int n) {
    kl_expr **v = kl_alloc_array(a, (size_t)n + 1, sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = kl_e_iv(a, i);
    return v;
}

/* An elementwise-shaped kernel over `out` (parallel loops = out's dims). */
static kl_kernel *kernel_over(kl_program *p, kl_buffer *out, const char *tag) {
    kl_kernel *k = kl_kernel_new(p, NULL, tag);
    k->out = out;
    k->n_loops = k->n_par = out->shape.rank;
    for (int d = 0; d < out->shape.rank; d++)
        k->extent[d] = out->shape.dim[d];
    k->out_idx = ivs(p->arena, out->shape.rank);
    return k;
}

static void build_with(kl_program *p, const char *name, int opt, kl_emit_kind emit, built *b,
                       const char *suffix) {
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d), "plan failed");
    strcpy(b->dir, "/tmp/kiln-test-codegen-XXXXXX");
    cr_assert(mkdtemp(b->dir));
    snprintf(b->path, sizeof b->path, "%s/%s%s", b->dir, name, suffix);
    kl_codegen_opts o = {kl_target_default(), name, opt, emit};
    bool ok = kl_codegen_llvm(p, NULL, &o, b->path, &d);
    if (!ok)
        kl_diag_print(&d, stderr);
    cr_assert(ok, "codegen failed");
    kl_diag_free(&d);
}

static void build(kl_program *p, const char *name, int opt, built *b) {
    build_with(p, name, opt, KL_EMIT_SO, b, ".so");
    b->so = dlopen(b->path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(b->so, "dlopen: %s", dlerror());
}

static void *sym(built *b, const char *name) {
    void *s = dlsym(b->so, name);
    cr_assert(s, "missing symbol %s", name);
    return s;
}

static void done(built *b) {
    if (b->so)
        dlclose(b->so);
    unlink(b->path);
    char h[160];
    snprintf(h, sizeof h, "%s/%s", b->dir, "model.h");
    unlink(h);
    rmdir(b->dir);
}

typedef int (*predict2)(const void *, void *, void *);
typedef int (*predict3)(const void *, const void *, void *, void *);

/* ---------------------------------------------------------------- numbers */

/* out[i,j] = x[i,j] + y[j] for every optimization level. */
Test(codegen, add_broadcast) {
    for (int opt = 0; opt <= 3; opt += 3) {
        kl_arena *a = kl_arena_new();
        kl_program *p = kl_program_new(a);
        kl_buffer *x = input(p, "x", KL_F32, shape2(3, 5));
        kl_buffer *y = input(p, "y", KL_F32, shape1(5));
        kl_buffer *o = output(p, "out", KL_F32, shape2(3, 5));
        kl_kernel *k = kernel_over(p, o, "add");
        kl_expr *yi = kl_e_iv(a, 1);
        k->value = kl_e_binary(a, KL_ADD, kl_e_load(a, x, ivs(a, 2)), kl_e_load(a, y, &yi));
        kl_program_add_kernel(p, k);
        built b;
        build(p, "add", opt, &b);
        float xs[15], ys[5], out[15];
        for (int i = 0; i < 15; i++)
            xs[i] = (float)i;
        for (int j = 0; j < 5; j++)
            ys[j] = 100.0f * (float)j;
        predict3 f = (predict3)sym(&b, "add_predict");
        cr_assert_eq(f(xs, ys, out, NULL), 0);
        for (int i = 0; i < 15; i++)
            cr_assert_float_eq(out[i], xs[i] + ys[i % 5], 0, "opt %d element %d", opt, i);
        done(&b);
        kl_arena_free(a);
    }
}

/* Sum and max over the last axis, the max propagating NaN; an empty reduction gives init. */
Test(codegen, reductions) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape2(3, 4));
    kl_buffer *s = output(p, "sum", KL_F32, shape1(3));
    kl_buffer *m = output(p, "max", KL_F32, shape1(3));
    kl_reduce reds[2] = {KL_RED_SUM, KL_RED_MAX};
    kl_buffer *outs[2] = {s, m};
    for (int r = 0; r < 2; r++) {
        kl_kernel *k = kernel_over(p, outs[r], r ? "max" : "sum");
        k->n_loops = 2;
        k->extent[1] = 4;
        k->reduce = reds[r];
        k->acc_dtype = KL_F32;
        k->value = kl_e_load(a, x, ivs(a, 2));
        if (r == 0) /* sum + 0.5 through `result` */
            k->result = kl_e_binary(a, KL_ADD, kl_e_acc(a, KL_F32), kl_e_const_f(a, KL_F32, 0.5));
        kl_program_add_kernel(p, k);
    }
    built b;
    build(p, "red", 2, &b);
    float xs[12] = {1, 2, 3, 4, -1, -7, -3, -2, 5, NAN, 1, 9};
    float sum[3], max[3];
    predict3 f = (predict3)sym(&b, "red_predict");
    cr_assert_eq(f(xs, sum, max, NULL), 0);
    cr_assert_float_eq(sum[0], 10.5f, 1e-6);
    cr_assert_float_eq(sum[1], -12.5f, 1e-6);
    cr_assert(isnan(sum[2]));
    cr_assert_float_eq(max[0], 4.0f, 0);
    cr_assert_float_eq(max[1], -1.0f, 0);
    cr_assert(isnan(max[2]), "max must propagate NaN");
    done(&b);
    kl_arena_free(a);
}

/* Reductions over an empty axis give the identity (sum 0, max -inf); an empty output is a
 * no-op. */
Test(codegen, empty_loops) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape2(2, 0));
    kl_buffer *s = output(p, "sum", KL_F32, shape1(2));
    kl_buffer *m = output(p, "max", KL_F32, shape1(2));
    kl_buffer *e = output(p, "empty", KL_F32, shape2(2, 0));
    kl_reduce reds[2] = {KL_RED_SUM, KL_RED_MAX};
    kl_buffer *outs[2] = {s, m};
    for (int r = 0; r < 2; r++) {
        kl_kernel *k = kernel_over(p, outs[r], "red");
        k->n_loops = 2;
        k->extent[1] = 0;
        k->reduce = reds[r];
        k->acc_dtype = KL_F32;
        k->value = kl_e_load(a, x, ivs(a, 2));
        kl_program_add_kernel(p, k);
    }
    kl_kernel *k = kernel_over(p, e, "copy");
    k->value = kl_e_load(a, x, ivs(a, 2));
    kl_program_add_kernel(p, k);
    built b;
    build(p, "empty", 2, &b);
    float xs[1] = {0}, sum[2] = {9, 9}, max[2] = {9, 9}, none[1];
    typedef int (*fn)(const void *, void *, void *, void *, void *);
    cr_assert_eq(((fn)sym(&b, "empty_predict"))(xs, sum, max, none, NULL), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_float_eq(sum[i], 0, 0);
        cr_assert(isinf(max[i]) && max[i] < 0);
    }
    done(&b);
    kl_arena_free(a);
}

/* Padding: out[i] = 0 <= i-2 < 4 ? x[i-2] : -1 — the out-of-range reads must be harmless. */
Test(codegen, select_with_bounds) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(4));
    kl_buffer *o = output(p, "out", KL_F32, shape1(8));
    kl_kernel *k = kernel_over(p, o, "pad");
    kl_expr *src = kl_e_addc(a, kl_e_iv(a, 0), -2);
    k->value = kl_e_select(a, kl_e_in_range(a, src, 4), kl_e_load(a, x, &src),
                           kl_e_const_f(a, KL_F32, -1));
    kl_program_add_kernel(p, k);
    built b;
    build(p, "pad", 2, &b);
    float xs[4] = {10, 20, 30, 40}, out[8];
    float want[8] = {-1, -1, 10, 20, 30, 40, -1, -1};
    cr_assert_eq(((predict2)sym(&b, "pad_predict"))(xs, out, NULL), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(out[i], want[i], 0, "element %d", i);
    done(&b);
    kl_arena_free(a);
}

/* Casts: float -> int32 truncates, float -> bool is x != 0, int64 -> float, bool -> int64. */
Test(codegen, casts) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(5));
    kl_buffer *oi = output(p, "as_i32", KL_I32, shape1(5));
    kl_buffer *ob = output(p, "as_bool", KL_BOOL, shape1(5));
    kl_buffer *of = output(p, "roundtrip", KL_F64, shape1(5));
    kl_kernel *k1 = kernel_over(p, oi, "to_i32");
    k1->value = kl_e_cast(a, KL_I32, kl_e_load(a, x, ivs(a, 1)));
    kl_program_add_kernel(p, k1);
    kl_kernel *k2 = kernel_over(p, ob, "to_bool");
    k2->value = kl_e_cast(a, KL_BOOL, kl_e_load(a, x, ivs(a, 1)));
    kl_program_add_kernel(p, k2);
    kl_kernel *k3 = kernel_over(p, of, "bool_i64_f64");
    k3->value = kl_e_cast(a, KL_F64,
                          kl_e_binary(a, KL_ADD, kl_e_cast(a, KL_I64, kl_e_load(a, ob, ivs(a, 1))),
                                      kl_e_cast(a, KL_I64, kl_e_load(a, oi, ivs(a, 1)))));
    kl_program_add_kernel(p, k3);
    built b;
    build(p, "casts", 2, &b);
    float xs[5] = {2.7f, -2.7f, 0.0f, -0.0f, 0.25f};
    int32_t i32[5];
    bool bo[5];
    double f64[5];
    typedef int (*fn)(const void *, void *, void *, void *, void *);
    cr_assert_eq(((fn)sym(&b, "casts_predict"))(xs, i32, bo, f64, NULL), 0);
    int32_t wi[5] = {2, -2, 0, 0, 0};
    bool wb[5] = {true, true, false, false, true};
    double wf[5] = {3, -1, 0, 0, 1};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(i32[i], wi[i], "i32 %d", i);
        cr_assert_eq(bo[i], wb[i], "bool %d", i);
        cr_assert_float_eq(f64[i], wf[i], 0, "f64 %d", i);
    }
    done(&b);
    kl_arena_free(a);
}

/* Bitcasts (ONNX BitCast): 16-bit floats are floats in registers, so their bits go through the
 * exact conversions both ways, subnormals, infinities and NaN included; bools are bytes. The
 * compiled code and the interpreter give the same bits. */
Test(codegen, bitcasts_keep_bits) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_U16, shape1(6));
    kl_buffer *y = input(p, "y", KL_U32, shape1(6));
    kl_buffer *z = input(p, "z", KL_BOOL, shape1(6));
    kl_buffer *oh = output(p, "as_f16", KL_F16, shape1(6));
    kl_buffer *ob = output(p, "bf16_as_i16", KL_I16, shape1(6));
    kl_buffer *of = output(p, "as_f32", KL_F32, shape1(6));
    kl_buffer *ou = output(p, "bool_as_u8", KL_U8, shape1(6));
    kl_buffer *outs[4] = {oh, ob, of, ou};
    kl_expr *vals[4] = {
        kl_e_bitcast(a, KL_F16, kl_e_load(a, x, ivs(a, 1))),
        kl_e_bitcast(a, KL_I16, kl_e_bitcast(a, KL_BF16, kl_e_load(a, x, ivs(a, 1)))),
        kl_e_bitcast(a, KL_F32, kl_e_load(a, y, ivs(a, 1))),
        kl_e_bitcast(a, KL_U8, kl_e_load(a, z, ivs(a, 1))),
    };
    for (int i = 0; i < 4; i++) {
        kl_kernel *k = kernel_over(p, outs[i], "bitcast");
        k->value = vals[i];
        kl_program_add_kernel(p, k);
    }
    uint16_t xs[6] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000};
    uint32_t ys[6] = {0x3f800000u, 0xc0200000u, 0x00000001u, 0x7f800000u, 0x80000000u, 0};
    bool zs[6] = {true, false, true, true, false, false};
    /* the interpreter first (host memory per buffer) */
    uint16_t ih[6], ib[6];
    float ifl[6];
    uint8_t iu[6];
    void *host[7] = {xs, ys, zs, ih, ib, ifl, iu};
    for (int i = 0; i < 7; i++) ((kl_buffer *)p->buffers.items[i])->host = host[i];
    kl_diag d;
    kl_diag_init(&d, "t");
    cr_assert(kl_interp_program(p, &d));
    kl_diag_free(&d);
    built b;
    build(p, "bitcasts", 2, &b);
    uint16_t h[6], bf[6];
    float f[6];
    uint8_t u[6];
    typedef int (*fn)(const void *, const void *, const void *, void *, void *, void *, void *,
                      void *);
    cr_assert_eq(((fn)sym(&b, "bitcasts_predict"))(xs, ys, zs, h, bf, f, u, NULL), 0);
    for (int i = 0; i < 6; i++) {
        uint32_t fb, ifb;
        memcpy(&fb, &f[i], 4);
        memcpy(&ifb, &ifl[i], 4);
        cr_expect_eq(h[i], xs[i], "f16 %d: %#x", i, h[i]);
        cr_expect_eq(bf[i], xs[i], "bf16 %d: %#x", i, bf[i]);
        cr_expect_eq(fb, ys[i], "f32 %d: %#x", i, fb);
        cr_expect_eq(u[i], zs[i] ? 1 : 0, "bool %d", i);
        cr_expect_eq(ih[i], h[i], "interp f16 %d", i);
        cr_expect_eq(ib[i], bf[i], "interp bf16 %d", i);
        cr_expect_eq(ifb, fb, "interp f32 %d", i);
        cr_expect_eq(iu[i], u[i], "interp bool %d", i);
    }
    done(&b);
    kl_arena_free(a);
}

/* Gather through a workspace intermediate: t[i] = idx[i] < 0 ? idx[i] + 5 : idx[i];
 * out[i] = data[t[i]] — a load inside an index expression (clamped, never out of bounds). */
Test(codegen, gather_through_workspace) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *data = input(p, "data", KL_F32, shape1(5));
    kl_buffer *idx = input(p, "idx", KL_I64, shape1(4));
    kl_buffer *o = output(p, "out", KL_F32, shape1(4));
    kl_shape s4 = shape1(4);
    kl_buffer *t = kl_program_buffer(p, "t", KL_BUF_WORKSPACE, KL_I64, &s4);
    kl_kernel *k1 = kernel_over(p, t, "normalize");
    kl_expr *v = kl_e_load(a, idx, ivs(a, 1));
    k1->value = kl_e_select(a, kl_e_binary(a, KL_LT, v, kl_e_idx(a, 0)), kl_e_addc(a, v, 5), v);
    kl_program_add_kernel(p, k1);
    kl_kernel *k2 = kernel_over(p, o, "gather");
    kl_expr *ti = kl_e_load(a, t, ivs(a, 1));
    k2->value = kl_e_load(a, data, &ti);
    kl_program_add_kernel(p, k2);
    built b;
    build(p, "gather", 2, &b);
    float ds[5] = {1, 2, 3, 4, 5}, out[4];
    int64_t is[4] = {4, -1, 0, 1000}; /* 1000: out of range, must not crash */
    _Alignas(64) unsigned char ws[256];
    const kiln_model *m = sym(&b, "gather_model");
    cr_assert_leq(m->workspace_size, sizeof ws);
    cr_assert_eq(((predict3)sym(&b, "gather_predict"))(ds, is, out, ws), 0);
    cr_assert_float_eq(out[0], 5, 0);
    cr_assert_float_eq(out[1], 5, 0);
    cr_assert_float_eq(out[2], 1, 0);
    done(&b);
    kl_arena_free(a);
}

/* An If's branches as guarded kernels: y = c ? 2x : x + 100, each written by its own kernel,
 * so y shows which ran; the else side also carries a trap (a branch left out), which makes
 * predict return KILN_E_UNCOMPILED_BRANCH after running it. */
Test(codegen, guarded_kernels_and_traps) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_shape scalar = {0};
    kl_buffer *c = input(p, "c", KL_BOOL, scalar);
    kl_buffer *x = input(p, "x", KL_F32, shape1(4));
    kl_buffer *y = output(p, "y", KL_F32, shape1(4));
    kl_kernel_guard on_true = {c, true, NULL}, on_false = {c, false, NULL};
    kl_kernel *k1 = kernel_over(p, y, "then");
    k1->value = kl_e_binary(a, KL_MUL, kl_e_load(a, x, ivs(a, 1)), kl_e_const_f(a, KL_F32, 2));
    k1->guard = &on_true;
    kl_program_add_kernel(p, k1);
    kl_kernel *k2 = kernel_over(p, y, "else");
    k2->value = kl_e_binary(a, KL_ADD, kl_e_load(a, x, ivs(a, 1)), kl_e_const_f(a, KL_F32, 100));
    k2->guard = &on_false;
    kl_program_add_kernel(p, k2);
    kl_trap trap = {&on_false, "else_branch"};
    kl_ptrvec_push(a, &p->traps, &trap);
    built b;
    build(p, "guards", 2, &b);
    predict3 f = (predict3)sym(&b, "guards_predict");
    bool yes = true, no = false;
    float xs[4] = {1, 2, 3, 4}, out[4];
    _Alignas(64) unsigned char ws[64];
    cr_assert_eq(f(&yes, xs, out, ws), KILN_OK);
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(out[i], 2 * xs[i], 0);
    cr_assert_eq(f(&no, xs, out, ws), KILN_E_UNCOMPILED_BRANCH);
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(out[i], xs[i] + 100, 0);
    done(&b);
    kl_arena_free(a);
}

/* Integer division and remainders never trap; Mod has the sign of the divisor. */
Test(codegen, integer_division) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_I32, shape1(5));
    kl_buffer *y = input(p, "y", KL_I32, shape1(5));
    kl_binop ops[3] = {KL_DIV, KL_MOD, KL_FMOD};
    kl_buffer *outs[3];
    for (int i = 0; i < 3; i++) {
        outs[i] = output(p, kl_sprintf(a, "o%d", i), KL_I32, shape1(5));
        kl_kernel *k = kernel_over(p, outs[i], "div");
        k->value = kl_e_binary(a, ops[i], kl_e_load(a, x, ivs(a, 1)), kl_e_load(a, y, ivs(a, 1)));
        kl_program_add_kernel(p, k);
    }
    built b;
    build(p, "idiv", 2, &b);
    int32_t xs[5] = {7, -7, 7, INT32_MIN, 5}, ys[5] = {2, 2, -2, -1, 0};
    int32_t q[5], m[5], f[5];
    typedef int (*fn)(const void *, const void *, void *, void *, void *, void *);
    cr_assert_eq(((fn)sym(&b, "idiv_predict"))(xs, ys, q, m, f, NULL), 0);
    int32_t wq[5] = {3, -3, -3, INT32_MIN, 0}, wm[5] = {1, 1, -1, 0, 0}, wf[5] = {1, -1, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(q[i], wq[i], "div %d", i);
        cr_assert_eq(m[i], wm[i], "mod %d", i);
        cr_assert_eq(f[i], wf[i], "fmod %d", i);
    }
    done(&b);
    kl_arena_free(a);
}

/* Elementary functions go through runtime-min and agree with libm. */
Test(codegen, runtime_functions) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(6));
    kl_unop ops[] = {KL_EXP, KL_LOG, KL_TANH, KL_ERF, KL_FLOOR, KL_ROUND, KL_SIGMOID, KL_SQRT};
    int n = (int)(sizeof ops / sizeof *ops);
    kl_buffer *o = output(p, "out", KL_F32, shape2(n, 6));
    kl_kernel *k = kernel_over(p, o, "fns");
    kl_expr *xi = kl_e_iv(a, 1);
    kl_expr *xv = kl_e_load(a, x, &xi);
    kl_expr *e = kl_e_unary(a, ops[n - 1], xv);
    for (int i = n - 2; i >= 0; i--)
        e = kl_e_select(a, kl_e_binary(a, KL_EQ, kl_e_iv(a, 0), kl_e_idx(a, i)),
                        kl_e_unary(a, ops[i], xv), e);
    k->value = e;
    kl_program_add_kernel(p, k);
    built b;
    build(p, "fns", 2, &b);
    float xs[6] = {0.5f, 1.5f, 2.5f, 3.25f, 0.001f, 7.0f}, out[8 * 6];
    cr_assert_eq(((predict2)sym(&b, "fns_predict"))(xs, out, NULL), 0);
    for (int j = 0; j < 6; j++) {
        double v = xs[j];
        double want[8] = {exp(v), log(v), tanh(v), erf(v), floor(v), nearbyint(v),
                          1 / (1 + exp(-v)), sqrt(v)};
        for (int i = 0; i < n; i++)
            cr_assert_float_eq(out[i * 6 + j], (float)want[i], 2e-7 * fabs(want[i]) + 1e-30,
                               "op %d x=%g", i, v);
    }
    done(&b);
    kl_arena_free(a);
}

/* ---------------------------------------------------------------- interface */

static kl_program *copy_program(kl_arena *a, kl_shape s) {
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, s);
    kl_buffer *t = kl_program_buffer(p, "t", KL_BUF_WORKSPACE, KL_F32, &s);
    kl_buffer *o = output(p, "y", KL_F32, s);
    kl_kernel *k1 = kernel_over(p, t, "twice");
    k1->value = kl_e_binary(a, KL_MUL, kl_e_load(a, x, ivs(a, s.rank)), kl_e_const_f(a, KL_F32, 2));
    kl_program_add_kernel(p, k1);
    kl_kernel *k2 = kernel_over(p, o, "copy");
    k2->value = kl_e_load(a, t, ivs(a, s.rank));
    kl_program_add_kernel(p, k2);
    return p;
}

Test(codegen, return_codes_and_model_table) {
    kl_arena *a = kl_arena_new();
    kl_program *p = copy_program(a, shape2(2, 3));
    built b;
    build(p, "cp", 2, &b);
    predict2 f = (predict2)sym(&b, "cp_predict");
    const kiln_model *m = sym(&b, "cp_model");
    _Alignas(64) unsigned char ws[1024];
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    cr_assert_eq(m->abi_version, KILN_ABI_VERSION);
    cr_assert_str_eq(m->name, "cp");
    cr_assert_eq(m->n_inputs, 1);
    cr_assert_eq(m->n_outputs, 1);
    cr_assert_str_eq(m->inputs[0].name, "x");
    cr_assert_eq(m->inputs[0].dtype, KILN_FLOAT32);
    cr_assert_eq(m->inputs[0].rank, 2);
    cr_assert_eq(m->inputs[0].shape[1], 3);
    cr_assert_eq(m->outputs[0].size_bytes, 24);
    cr_assert_eq(m->workspace_align, 64);
    cr_assert_geq(m->workspace_size, 24);
    cr_assert_leq(m->workspace_size, sizeof ws);
    cr_assert_str_eq(m->producer_name, "");
    cr_assert_eq(f(NULL, y, ws), KILN_E_NULL_ARGUMENT);
    cr_assert_eq(f(x, NULL, ws), KILN_E_NULL_ARGUMENT);
    cr_assert_eq(f(x, y, NULL), KILN_E_NULL_ARGUMENT);
    cr_assert_eq(f(x, y, ws + 4), KILN_E_MISALIGNED);
    cr_assert_eq(f(x, y, ws), KILN_OK);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(y[i], 2 * x[i], 0);
    const void *ins[1] = {x};
    void *outs[1] = {y};
    memset(y, 0, sizeof y);
    cr_assert_eq(m->run(ins, outs, ws), KILN_OK);
    cr_assert_float_eq(y[5], 12, 0);
    cr_assert_eq(m->run(NULL, outs, ws), KILN_E_NULL_ARGUMENT);
    done(&b);
    kl_arena_free(a);
}

static char *run_command(const char *cmd) {
    FILE *f = popen(cmd, "r");
    cr_assert(f, "popen %s", cmd);
    static char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    int rc = pclose(f);
    cr_assert_eq(rc, 0, "`%s` failed: %s", cmd, text);
    return text;
}

/* The object is self-contained: nothing undefined but memcpy/memset (with exp & co. used). */
Test(codegen, object_is_self_contained) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(64));
    kl_buffer *o = output(p, "y", KL_F32, shape1(64));
    kl_kernel *k = kernel_over(p, o, "fns");
    kl_expr *xv = kl_e_load(a, x, ivs(a, 1));
    kl_expr *e = xv;
    kl_unop ops[] = {KL_EXP, KL_LOG, KL_TANH, KL_ERF, KL_FLOOR, KL_CEIL, KL_ROUND, KL_SIGMOID,
                     KL_SIN, KL_COS};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        e = kl_e_binary(a, KL_ADD, e, kl_e_unary(a, ops[i], xv));
    e = kl_e_binary(a, KL_POW, e, kl_e_binary(a, KL_FMOD, xv, kl_e_const_f(a, KL_F32, 3)));
    k->value = e;
    kl_program_add_kernel(p, k);
    for (int opt = 0; opt <= 2; opt += 2) {
        built b = {0};
        build_with(p, "fns", opt, KL_EMIT_OBJ, &b, ".o");
        char cmd[256];
        snprintf(cmd, sizeof cmd, "nm -u %s | grep -v -w -e memcpy -e memset || true", b.path);
        char *undefined = run_command(cmd);
        cr_assert_str_eq(undefined, "", "undefined symbols at -O%d:\n%s", opt, undefined);
        snprintf(cmd, sizeof cmd, "nm -g --defined-only %s | awk '{print $3}' | sort", b.path);
        cr_assert_str_eq(run_command(cmd), "fns_model\nfns_predict\nfns_predict_parallel\nfns_run\n");
        done(&b);
    }
    kl_arena_free(a);
}

/* NAME.h compiles, and its prototype agrees with the definition's use. */
Test(codegen, header_compiles) {
    kl_arena *a = kl_arena_new();
    kl_program *p = copy_program(a, shape2(2, 3));
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    ((kl_buffer *)p->inputs.items[0])->name = "int"; /* a keyword: must be renamed */
    char dir[] = "/tmp/kiln-test-header-XXXXXX";
    cr_assert(mkdtemp(dir));
    char h[128], c[128];
    snprintf(h, sizeof h, "%s/hdr.h", dir);
    snprintf(c, sizeof c, "%s/use.c", dir);
    kl_codegen_opts o = {kl_target_default(), "hdr", 2, KL_EMIT_OBJ};
    cr_assert(kl_write_header(p, NULL, &o, h, &d));
    FILE *f = fopen(c, "w");
    fputs("#include \"hdr.h\"\n"
          "_Static_assert(HDR_WORKSPACE_ALIGN == 64, \"align\");\n"
          "_Static_assert(HDR_INPUT_0_SIZE == 6, \"size\");\n"
          "int use(const float *x, float *y, void *w) { return hdr_predict(x, y, w); }\n",
          f);
    fclose(f);
    /* kiln.h lives in runtime-min/ of the source tree: found from this file's path as the
     * compiler saw it (relative to the build folder, where meson runs tests) */
    char src[512], inc_dir[600];
    snprintf(src, sizeof src, "%s", __FILE__);
    char *slash = strrchr(src, '/');
    if (slash)
        *slash = 0;
    snprintf(inc_dir, sizeof inc_dir, "%s/../../runtime-min", slash ? src : ".");
    char probe[640];
    snprintf(probe, sizeof probe, "%s/kiln.h", inc_dir);
    const char *inc = access(probe, R_OK) == 0 ? inc_dir : NULL;
    if (inc) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "cc -std=c17 -Wall -Werror -fsyntax-only -I%s %s 2>&1", inc, c);
        run_command(cmd);
    }
    unlink(c);
    unlink(h);
    rmdir(dir);
    kl_diag_free(&d);
    kl_arena_free(a);
    if (!inc)
        cr_skip_test("kiln.h not found from the test's working directory");
}

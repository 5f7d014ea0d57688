/*
 * test_cuda.c — the CUDA back end on hand-built kernel programs.
 *
 *  - semantics: programs with the operations' edge cases (integer overflow, division by zero
 *    and INT_MIN / -1, Mod's sign, float -> int casts of NaN and huge values, NaN through max,
 *    float16 rounding, a gather with an index out of range) compiled for cuda-sm90 as emulator
 *    objects and run through tests/cuda/fakecuda.c (KILN_LIBCUDA, set by meson), against the
 *    values the LLVM back end's tests (test_codegen.c) expect;
 *  - the launch plan: a scatter runs on one thread, a long reduction with few outputs is split
 *    across a warp, an empty kernel is not launched;
 *  - the cubin check: garbage, a foreign ELF and a truncated file are refused; with NVRTC, a
 *    real cubin passes for its sm and fails for another sm or a kernel it lacks.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_internal.h"
#include "kiln.h"

/* ---------------------------------------------------------------- building programs */

static kl_shape shape1(int64_t a) { return (kl_shape){.rank = 1, .dim = {a}}; }

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

static kl_kernel *kernel_over(kl_program *p, kl_buffer *out, const char *tag) {
    kl_kernel *k = kl_kernel_new(p, NULL, tag);
    k->out = out;
    k->n_loops = k->n_par = out->shape.rank;
    for (int d = 0; d < out->shape.rank; d++)
        k->extent[d] = out->shape.dim[d];
    k->out_idx = ivs(p->arena, out->shape.rank);
    return k;
}

/* out[i] = op(x[i], y[i]) */
static void binary_kernel(kl_program *p, kl_buffer *out, int op, kl_buffer *x, kl_buffer *y) {
    kl_arena *a = p->arena;
    kl_kernel *k = kernel_over(p, out, "binary");
    k->value = kl_e_binary(a, op, kl_e_load(a, x, ivs(a, 1)), kl_e_load(a, y, ivs(a, 1)));
    kl_program_add_kernel(p, k);
}

/* out[i] = (T)x[i] */
static void cast_kernel(kl_program *p, kl_buffer *out, kl_buffer *x) {
    kl_arena *a = p->arena;
    kl_kernel *k = kernel_over(p, out, "cast");
    k->value = kl_e_cast(a, out->dtype, kl_e_load(a, x, ivs(a, 1)));
    kl_program_add_kernel(p, k);
}

/* ---------------------------------------------------------------- running on the emulator */

typedef struct gpu_run {
    kl_arena *a;
    kl_cuda_run *gpu;
    void *so;
    char dir[64], path[128];
    const kiln_model *m;
    kl_run_buffers b;
} gpu_run;

/* Compile p for cuda-sm90 (an emulator object), load it through the emulator. */
static void gpu_open(gpu_run *g, kl_program *p, const char *name) {
    const char *lib = getenv("KILN_LIBCUDA");
    if (!lib || !*lib)
        cr_skip_test("KILN_LIBCUDA does not name the emulator (run through meson test)");
    kl_diag d;
    kl_diag_init(&d, "test");
    g->a = p->arena;
    cr_assert(kl_plan_memory(p, &d));
    strcpy(g->dir, "/tmp/kiln-test-cuda-XXXXXX");
    cr_assert(mkdtemp(g->dir));
    snprintf(g->path, sizeof g->path, "%s/%s.so", g->dir, name);
    kl_codegen_opts o = {kl_target_find("cuda-sm90"), name, 2, KL_EMIT_SO, .cuda_emulate = true};
    bool ok = kl_codegen_cuda(p, NULL, &o, g->path, &d);
    const char *skip = NULL;
    g->gpu = ok ? kl_cuda_run_open(g->a, &skip, &d) : NULL;
    if (!ok || !g->gpu)
        kl_diag_print(&d, stderr);
    cr_assert(ok, "codegen failed");
    cr_assert(g->gpu, "the emulator does not start: %s", skip ? skip : "error");
    g->so = dlopen(g->path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(g->so, "dlopen: %s", dlerror());
    g->m = dlsym(g->so, kl_sprintf(g->a, "%s_model", name));
    cr_assert(g->m);
    cr_assert(kl_cuda_run_load(g->gpu, g->m, &d) && kl_run_buffers_alloc(g->m, &g->b, &d));
    kl_diag_free(&d);
}

static void gpu_run_once(gpu_run *g) {
    kl_diag d;
    kl_diag_init(&d, "test");
    bool ok = kl_cuda_run_host(g->gpu, &g->b, &d);
    if (!ok)
        kl_diag_print(&d, stderr);
    cr_assert(ok, "cuda_run_host failed");
    kl_diag_free(&d);
}

static void gpu_close(gpu_run *g) {
    kl_cuda_run_unload(g->gpu);
    kl_run_buffers_free(&g->b);
    dlclose(g->so);
    kl_cuda_run_close(g->gpu);
    unlink(g->path);
    rmdir(g->dir);
}

/* ---------------------------------------------------------------- semantics */

/* Division and remainders never trap; Mod has the sign of the divisor; int32 addition and
 * int8 addition wrap; int64 multiplication wraps. */
Test(cuda, integer_edges) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_I32, shape1(5)), *y = input(p, "y", KL_I32, shape1(5));
    kl_buffer *x8 = input(p, "x8", KL_I8, shape1(5)), *x64 = input(p, "x64", KL_I64, shape1(5));
    kl_binop ops[4] = {KL_DIV, KL_MOD, KL_FMOD, KL_ADD};
    for (int i = 0; i < 4; i++)
        binary_kernel(p, output(p, kl_sprintf(a, "o%d", i), KL_I32, shape1(5)), ops[i], x, y);
    binary_kernel(p, output(p, "s8", KL_I8, shape1(5)), KL_ADD, x8, x8);
    binary_kernel(p, output(p, "m64", KL_I64, shape1(5)), KL_MUL, x64, x64);
    gpu_run g;
    gpu_open(&g, p, "iedge");
    int32_t xs[5] = {7, -7, 7, INT32_MIN, INT32_MAX}, ys[5] = {2, 2, -2, -1, 0};
    int8_t x8s[5] = {100, -100, 1, 127, -128};
    int64_t x64s[5] = {3, INT64_MAX, (int64_t)1 << 32, -5, INT64_MIN};
    memcpy(g.b.inputs[0], xs, sizeof xs);
    memcpy(g.b.inputs[1], ys, sizeof ys);
    memcpy(g.b.inputs[2], x8s, sizeof x8s);
    memcpy(g.b.inputs[3], x64s, sizeof x64s);
    gpu_run_once(&g);
    int32_t wq[5] = {3, -3, -3, INT32_MIN, 0}, wm[5] = {1, 1, -1, 0, 0}, wf[5] = {1, -1, 1, 0, 0};
    int32_t wa[5] = {9, -5, 5, INT32_MAX, INT32_MAX};
    const int32_t *q = g.b.outputs[0], *m = g.b.outputs[1], *f = g.b.outputs[2], *s = g.b.outputs[3];
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(q[i], wq[i], "div %d: %d", i, q[i]);
        cr_expect_eq(m[i], wm[i], "mod %d: %d", i, m[i]);
        cr_expect_eq(f[i], wf[i], "fmod %d: %d", i, f[i]);
        cr_expect_eq(s[i], wa[i], "add %d: %d", i, s[i]);
        int8_t w8 = (int8_t)(uint8_t)((unsigned)x8s[i] + (unsigned)x8s[i]);
        cr_expect_eq(((int8_t *)g.b.outputs[4])[i], w8, "int8 add %d", i);
        int64_t w64 = (int64_t)((uint64_t)x64s[i] * (uint64_t)x64s[i]);
        cr_expect_eq(((int64_t *)g.b.outputs[5])[i], w64, "int64 mul %d", i);
    }
    gpu_close(&g);
    kl_arena_free(a);
}

/* float -> int casts saturate (NaN -> 0) as llvm.fptosi.sat does; -> bool is x != 0. */
Test(cuda, casts) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(7));
    kl_dtype to[5] = {KL_I32, KL_U8, KL_I64, KL_U64, KL_BOOL};
    for (int i = 0; i < 5; i++)
        cast_kernel(p, output(p, kl_sprintf(a, "c%d", i), to[i], shape1(7)), x);
    gpu_run g;
    gpu_open(&g, p, "casts");
    float xs[7] = {2.7f, -2.7f, NAN, INFINITY, -INFINITY, 1e10f, -0.0f};
    memcpy(g.b.inputs[0], xs, sizeof xs);
    gpu_run_once(&g);
    int32_t w32[7] = {2, -2, 0, INT32_MAX, INT32_MIN, INT32_MAX, 0};
    /* u8: through i32 (saturated), low 8 bits */
    uint8_t w8[7] = {2, (uint8_t)-2, 0, 0xff, 0, 0xff, 0};
    int64_t w64[7] = {2, -2, 0, INT64_MAX, INT64_MIN, 10000000000ll, 0};
    uint64_t wu64[7] = {2, 0, 0, UINT64_MAX, 0, 10000000000ull, 0};
    bool wb[7] = {true, true, true, true, true, true, false};
    for (int i = 0; i < 7; i++) {
        cr_expect_eq(((int32_t *)g.b.outputs[0])[i], w32[i], "i32 %d", i);
        cr_expect_eq(((uint8_t *)g.b.outputs[1])[i], w8[i], "u8 %d", i);
        cr_expect_eq(((int64_t *)g.b.outputs[2])[i], w64[i], "i64 %d", i);
        cr_expect_eq(((uint64_t *)g.b.outputs[3])[i], wu64[i], "u64 %d", i);
        cr_expect_eq(((uint8_t *)g.b.outputs[4])[i], wb[i], "bool %d", i);
    }
    gpu_close(&g);
    kl_arena_free(a);
}

/* max propagates NaN; float16 rounds after the addition; a gather out of range is clamped. */
Test(cuda, floats_and_gather) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(4)), *y = input(p, "y", KL_F32, shape1(4));
    kl_buffer *h = input(p, "h", KL_F16, shape1(4)), *idx = input(p, "idx", KL_I64, shape1(4));
    binary_kernel(p, output(p, "mx", KL_F32, shape1(4)), KL_MAX, x, y);
    binary_kernel(p, output(p, "hs", KL_F16, shape1(4)), KL_ADD, h, h);
    kl_kernel *k = kernel_over(p, output(p, "gathered", KL_F32, shape1(4)), "gather");
    kl_expr *i = kl_e_load(a, idx, ivs(a, 1));
    k->value = kl_e_load(a, x, &i);
    kl_program_add_kernel(p, k);
    gpu_run g;
    gpu_open(&g, p, "floats");
    float xs[4] = {1, NAN, -0.0f, 5}, ys[4] = {NAN, 2, 0.0f, 4};
    uint16_t hs[4] = {kl_f32_to_f16(0.1f), kl_f32_to_f16(65504), kl_f32_to_f16(1e-7f), 0x7e00};
    int64_t is[4] = {3, 0, 1000, -5};
    memcpy(g.b.inputs[0], xs, sizeof xs);
    memcpy(g.b.inputs[1], ys, sizeof ys);
    memcpy(g.b.inputs[2], hs, sizeof hs);
    memcpy(g.b.inputs[3], is, sizeof is);
    gpu_run_once(&g);
    const float *mx = g.b.outputs[0], *ga = g.b.outputs[2];
    const uint16_t *hsum = g.b.outputs[1];
    cr_expect(isnan(mx[0]) && isnan(mx[1]), "max with NaN is NaN");
    cr_expect_float_eq(mx[2], 0.0f, 0, "max(-0, 0)");
    cr_expect_float_eq(mx[3], 5.0f, 0, "max(5, 4)");
    for (int j = 0; j < 4; j++) {
        float want = kl_f16_to_f32(hs[j]) + kl_f16_to_f32(hs[j]);
        uint16_t w = kl_f32_to_f16(want);
        cr_expect(hsum[j] == w || (isnan(want) && (hsum[j] & 0x7c00) == 0x7c00 && (hsum[j] & 0x3ff)),
                  "f16 add %d: %04x, want %04x", j, hsum[j], w);
    }
    cr_expect_float_eq(ga[0], 5.0f, 0, "gather x[3]");
    cr_expect_float_eq(ga[1], 1.0f, 0, "gather x[0]");
    cr_expect(isfinite(ga[2]) || isnan(ga[2]), "gather out of range reads inside the buffer");
    gpu_close(&g);
    kl_arena_free(a);
}

/* A long sum with one output: split across the warp, the parts combined by shuffles. */
Test(cuda, split_reduction) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(4096)), *o = output(p, "sum", KL_F32, shape1(1));
    kl_kernel *k = kl_kernel_new(p, NULL, "sum");
    k->out = o;
    k->n_par = 1;
    k->n_loops = 2;
    k->extent[0] = 1;
    k->extent[1] = 4096;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F32;
    k->init = kl_e_const_f(a, KL_F32, 0.5);
    kl_expr *j = kl_e_iv(a, 1);
    k->value = kl_e_load(a, x, &j);
    k->out_idx = ivs(a, 1);
    kl_program_add_kernel(p, k);
    gpu_run g;
    gpu_open(&g, p, "sum");
    float *xs = g.b.inputs[0];
    for (int i = 0; i < 4096; i++)
        xs[i] = (float)(i % 7);
    gpu_run_once(&g);
    double want = 0.5;
    for (int i = 0; i < 4096; i++)
        want += i % 7;
    cr_expect_float_eq(((float *)g.b.outputs[0])[0], (float)want, 1e-3, "sum %f",
                       ((float *)g.b.outputs[0])[0]);
    gpu_close(&g);
    kl_arena_free(a);
}

/* ---------------------------------------------------------------- the launch plan */

Test(cuda, launch_plan) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(4096)), *idx = input(p, "idx", KL_I64, shape1(8));
    kl_buffer *sum = output(p, "sum", KL_F32, shape1(1)), *sc = output(p, "scatter", KL_F32, shape1(16));
    kl_buffer *ew = output(p, "ew", KL_F32, shape1(4096)), *empty = output(p, "empty", KL_F32, shape1(0));
    kl_kernel *k = kl_kernel_new(p, NULL, "sum"); /* one output, 4096 terms */
    k->out = sum;
    k->n_par = 1;
    k->n_loops = 2;
    k->extent[0] = 1;
    k->extent[1] = 4096;
    k->reduce = KL_RED_SUM;
    k->acc_dtype = KL_F32;
    kl_expr *j = kl_e_iv(a, 1);
    k->value = kl_e_load(a, x, &j);
    k->out_idx = ivs(a, 1);
    kl_program_add_kernel(p, k);
    kl_kernel *s = kernel_over(p, sc, "scatter"); /* out[idx[i]] = x[i]: runs in order */
    s->extent[0] = 8;
    kl_expr *i0 = kl_e_iv(a, 0);
    s->out_idx[0] = kl_e_load(a, idx, &i0);
    s->value = kl_e_load(a, x, ivs(a, 1));
    kl_program_add_kernel(p, s);
    kl_kernel *e = kernel_over(p, ew, "ew");
    e->value = kl_e_load(a, x, ivs(a, 1));
    kl_program_add_kernel(p, e);
    kl_kernel *z = kernel_over(p, empty, "empty");
    z->value = kl_e_const_f(a, KL_F32, 1);
    kl_program_add_kernel(p, z);
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    kl_cu_program cp;
    cr_assert(kl_cu_plan(p, kl_target_find("cuda-sm90"), &cp, &d));
    cr_expect(!cp.launch[0].serial && cp.launch[0].split == 32, "sum split %d", cp.launch[0].split);
    cr_expect(cp.launch[1].serial && cp.launch[1].threads == 1 && cp.launch[1].blocks == 1,
              "scatter on one thread");
    cr_expect(!cp.launch[2].serial && cp.launch[2].split == 1 && cp.launch[2].groups == 4096 &&
              cp.launch[2].threads == 256 && cp.launch[2].blocks == 16, "elementwise grid");
    cr_expect(cp.launch[3].skip, "an empty kernel is not launched");
    cr_expect_eq(cp.n_groups, 3, "launches: %d", cp.n_groups);
    kl_diag_free(&d);
    kl_arena_free(a);
}

/* ---------------------------------------------------------------- the cubin check */

Test(cuda, cubin_check_refuses_what_is_not_a_cubin) {
    kl_diag d;
    kl_diag_init(&d, "test");
    unsigned char junk[256] = "not an ELF file";
    const char *names[] = {"k"};
    cr_expect(!kl_cu_check_cubin(junk, sizeof junk, 90, names, 1, NULL, &d), "junk");
    FILE *f = fopen("/proc/self/exe", "rb");
    cr_assert(f);
    static unsigned char exe[1 << 16];
    size_t n = fread(exe, 1, sizeof exe, f);
    fclose(f);
    cr_expect(!kl_cu_check_cubin(exe, n, 90, names, 1, NULL, &d), "an x86-64 ELF");
    cr_expect(!kl_cu_check_cubin(exe, 40, 90, names, 1, NULL, &d), "a truncated header");
    cr_expect(strstr(d.text, "not a CUDA executable") != NULL, "%s", d.text);
    kl_diag_free(&d);
}

Test(cuda, cubin_check_with_nvrtc) {
    if (!kl_cuda_available())
        cr_skip_test("no NVRTC in this build");
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(64)), *y = input(p, "y", KL_F32, shape1(64));
    binary_kernel(p, output(p, "o", KL_F32, shape1(64)), KL_ADD, x, y);
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    kl_cu_program cp;
    cr_assert(kl_cu_plan(p, kl_target_find("cuda-sm80"), &cp, &d));
    size_t len;
    char *src = kl_cu_source(&cp, &len, &d);
    cr_assert(src);
    kl_cu_image img;
    cr_assert(kl_cu_nvrtc(a, src, 80, false, &img, &d), "%s", d.text ? d.text : "");
    free(src);
    const char *good[] = {cp.groups[0].name}, *missing[] = {cp.groups[0].name, "no_such_kernel"};
    cr_expect(kl_cu_check_cubin(img.cubin, img.cubin_size, 80, good, 1, NULL, &d), "its own sm");
    cr_expect(img.ptx && strstr(img.ptx, ".target sm_80"), "PTX for sm_80");
    cr_expect(!kl_cu_check_cubin(img.cubin, img.cubin_size, 90, good, 1, NULL, &d), "another sm");
    cr_expect(!kl_cu_check_cubin(img.cubin, img.cubin_size, 80, missing, 2, NULL, &d), "a kernel it lacks");
    cr_expect(!kl_cu_check_cubin(img.cubin, img.cubin_size / 2, 80, good, 1, NULL, &d), "half a cubin");
    kl_diag_free(&d);
    kl_arena_free(a);
}

/* Small independent kernels share a launch: fills of one buffer with the same constant do,
 * a kernel reading that buffer does not, and neither does a reduction. */
Test(cuda, launches_grouped) {
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(64));
    kl_shape s64 = shape1(64);
    kl_buffer *h = kl_program_buffer(p, "h", KL_BUF_WORKSPACE, KL_F32, &s64);
    kl_buffer *o = output(p, "o", KL_F32, shape1(64)), *o2 = output(p, "o2", KL_F32, shape1(64));
    for (int i = 0; i < 3; i++) { /* fills of h: one launch */
        kl_kernel *k = kernel_over(p, h, "fill");
        k->value = kl_e_const_f(a, KL_F32, 0);
        kl_program_add_kernel(p, k);
    }
    kl_kernel *c = kernel_over(p, o2, "copy_x"); /* independent of the fills: joins them */
    c->value = kl_e_load(a, x, ivs(a, 1));
    kl_program_add_kernel(p, c);
    kl_kernel *r = kernel_over(p, o, "read_h"); /* reads what the fills write: a launch of its own */
    r->value = kl_e_load(a, h, ivs(a, 1));
    kl_program_add_kernel(p, r);
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_plan_memory(p, &d));
    kl_cu_program cp;
    cr_assert(kl_cu_plan(p, kl_target_find("cuda-sm90"), &cp, &d));
    cr_assert_eq(cp.n_groups, 2, "launches: %d", cp.n_groups);
    cr_expect(cp.groups[0].first == 0 && cp.groups[0].count == 4, "fills and the copy together");
    cr_expect(cp.groups[0].blocks == 4 && cp.groups[0].n_params == 5, "blocks %lld params %d",
              (long long)cp.groups[0].blocks, cp.groups[0].n_params);
    cr_expect(cp.groups[1].first == 4 && cp.groups[1].count == 1);
    kl_diag_free(&d);
    /* and it computes: the emulator runs both launches */
    gpu_run g;
    gpu_open(&g, p, "grouped");
    float *xs = g.b.inputs[0];
    for (int i = 0; i < 64; i++)
        xs[i] = (float)i;
    gpu_run_once(&g);
    for (int i = 0; i < 64; i++) {
        cr_expect_float_eq(((float *)g.b.outputs[0])[i], 0.0f, 0, "o %d", i);
        cr_expect_float_eq(((float *)g.b.outputs[1])[i], (float)i, 0, "o2 %d", i);
    }
    gpu_close(&g);
    kl_arena_free(a);
}

/* The small types (float8, float4, int4, int2): every cast mode, and an addition in the type
 * (rounded / wrapped after it), give the interpreter's bytes on the emulator too. */
Test(cuda, small_types_agree_with_the_interpreter) {
    enum { N = 12, CASES = 10 };
    static const float xs[N] = {1.0625f, 1.1875f, -3.5f, 500.0f, -1e6f, 61440.0f, 1e-7f,
                                -1e-7f, INFINITY, NAN, 1.1f, 9.0f};
    static const struct { kl_dtype t; int mode; } cases[CASES] = {
        {KL_F8E4M3FN, 0}, {KL_F8E4M3FN, KL_CAST_NO_SATURATE}, {KL_F8E4M3FNUZ, 0},
        {KL_F8E5M2, KL_CAST_NO_SATURATE}, {KL_F8E5M2FNUZ, 0}, {KL_F4E2M1, 0},
        {KL_F8E8M0, KL_CAST_ROUND_NEAREST}, {KL_I4, 0}, {KL_U4, 0}, {KL_I2, 0}};
    kl_arena *a = kl_arena_new();
    kl_program *p = kl_program_new(a);
    kl_buffer *x = input(p, "x", KL_F32, shape1(N));
    kl_buffer *outs[CASES], *sums[CASES];
    for (int c = 0; c < CASES; c++) {
        outs[c] = output(p, kl_sprintf(a, "o%d", c), cases[c].t, shape1(N));
        kl_kernel *k = kernel_over(p, outs[c], "cast");
        k->value = kl_e_cast(a, cases[c].t, kl_e_load(a, x, ivs(a, 1)));
        k->value->op = cases[c].mode;
        kl_program_add_kernel(p, k);
        sums[c] = output(p, kl_sprintf(a, "s%d", c), KL_F32, shape1(N));
        kl_kernel *k2 = kernel_over(p, sums[c], "sum");
        kl_expr *v = kl_e_load(a, outs[c], ivs(a, 1));
        k2->value = kl_e_cast(a, KL_F32, kl_e_binary(a, KL_ADD, v, v));
        kl_program_add_kernel(p, k2);
    }
    uint8_t ref[CASES][N];
    float ref_sum[CASES][N];
    x->host = (void *)xs;
    for (int c = 0; c < CASES; c++) {
        outs[c]->host = ref[c];
        sums[c]->host = ref_sum[c];
    }
    kl_diag d;
    kl_diag_init(&d, "test");
    cr_assert(kl_interp_program(p, &d));
    kl_diag_free(&d);
    gpu_run g;
    gpu_open(&g, p, "small");
    memcpy(g.b.inputs[0], xs, sizeof xs);
    gpu_run_once(&g);
    for (int c = 0; c < CASES; c++)
        for (int i = 0; i < N; i++) {
            uint8_t got = ((uint8_t *)g.b.outputs[2 * c])[i];
            float got_sum = ((float *)g.b.outputs[2 * c + 1])[i];
            cr_expect_eq(got, ref[c][i], "%s mode %d, x = %g: GPU 0x%02x, interpreter 0x%02x",
                         kl_dtype_name(cases[c].t), cases[c].mode, xs[i], got, ref[c][i]);
            cr_expect(got_sum == ref_sum[c][i] || (isnan(got_sum) && isnan(ref_sum[c][i])),
                      "%s: x + x for x = %g: GPU %g, interpreter %g", kl_dtype_name(cases[c].t),
                      xs[i], got_sum, ref_sum[c][i]);
        }
    gpu_close(&g);
    kl_arena_free(a);
}

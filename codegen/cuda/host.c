/*
 * codegen/cuda/host.c — the host side of a CUDA model: an LLVM module for x86-64 (the target's
 * triple), like any CPU object, that needs nothing at run time but the CUDA driver (libcuda).
 *
 * It holds, as constant data: the cubin (or, for the emulator, the CUDA source behind a
 * marker), the PTX, the weights and the kernels' names; and exports:
 *   NAME_cuda_load(state)       cuModuleLoadData on the cubin, on the PTX when the driver says
 *                               the cubin is not for this GPU (200 INVALID_IMAGE, 209
 *                               NO_BINARY_FOR_GPU); cuModuleGetFunction for every launch's
 *                               function into state->functions[]; the weights copied into the module's
 *                               global (cuModuleGetGlobal + cuMemcpyHtoD). On failure the
 *                               module is unloaded again and state->module is NULL.
 *   NAME_cuda_unload(state)
 *   NAME_cuda_predict(in..., out..., workspace, stream, state)
 *                               one cuLaunchKernel per launch (launch.c: a kernel, or several
 *                               small independent ones), in order, on `stream`; each
 *                               gets the pointers of the buffers it touches (an argument or
 *                               workspace + the planner's offset) through one parameter array
 *                               reused by every launch (the driver copies the values).
 *   NAME_cuda_predict_host(...) the same on host memory: copies in, predict, copies out, waits.
 *   NAME_cuda_run, NAME_cuda_run_host   the two with arrays, for the model table
 *   NAME_model                  the table (model_table.c) with device = KILN_DEVICE_CUDA.
 * The state struct is the caller's: { void *module; void *functions[n]; }. Nothing here
 * allocates or keeps global state; driver errors return KILN_E_CUDA - CUresult.
 */
#include <string.h>

#include "../llvm/llvm_internal.h"
#include "cuda_internal.h"

enum {
    E_NULL = -1, E_MISALIGNED = -2, E_CUDA = -1000,    /* kiln.h's codes */
    CU_INVALID_IMAGE = 200, CU_NO_BINARY_FOR_GPU = 209, /* the driver's CUresult values */
    WORKSPACE_ALIGN = 64,
};

typedef struct host {
    kl_cg *cg;
    const kl_cu_program *cp;
    const kl_cu_image *img;
    LLVMValueRef image, ptx, weights, weights_symbol;
    LLVMValueRef *names;                 /* per launch: its function's name */
    int max_params;
} host;

/* ---------------------------------------------------------------- helpers */

static LLVMValueRef i32c(kl_cg *cg, int64_t v) { return LLVMConstInt(cg->i32, (unsigned long long)v, 1); }
static LLVMValueRef i64c(kl_cg *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

static LLVMValueRef bytes_global(kl_cg *cg, const void *data, size_t size, const char *label,
                                 unsigned align) {
    LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, size ? data : "", size, 1);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), label);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    LLVMSetAlignment(g, align);
    return g;
}

/* A function of libcuda, declared on first use. */
static LLVMValueRef driver(kl_cg *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                           unsigned n) {
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) {
        f = LLVMAddFunction(cg->mod, name, LLVMFunctionType(ret, params, n, 0));
        kl_cg_add_fn_attr(cg, f, "nounwind");
    }
    return f;
}

static LLVMValueRef call(kl_cg *cg, LLVMValueRef f, LLVMValueRef *args, unsigned n) {
    return LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(f), f, args, n, "");
}

static LLVMValueRef cu_call(kl_cg *cg, const char *name, LLVMValueRef *args, unsigned n) {
    LLVMTypeRef params[16];
    for (unsigned i = 0; i < n; i++)
        params[i] = LLVMTypeOf(args[i]);
    return call(cg, driver(cg, name, cg->i32, params, n), args, n);
}

static LLVMValueRef new_function(kl_cg *cg, const char *name, int n_params, bool exported) {
    LLVMTypeRef *params = kl_alloc_array(cg->arena, (size_t)n_params + 1, sizeof *params);
    for (int i = 0; i < n_params; i++)
        params[i] = cg->ptr;
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->i32, params, (unsigned)n_params, 0));
    if (!exported)
        LLVMSetLinkage(fn, LLVMInternalLinkage);
    kl_cg_add_fn_attr(cg, fn, "nounwind");
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    return fn;
}

/* if (cond) return code; — continues in a fresh block. */
static void return_if(kl_cg *cg, LLVMValueRef fn, LLVMValueRef cond, LLVMValueRef code) {
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->ctx, fn, "fail");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, fn, "ok");
    LLVMBuildCondBr(cg->b, cond, fail, go);
    LLVMPositionBuilderAtEnd(cg->b, fail);
    LLVMBuildRet(cg->b, code);
    LLVMPositionBuilderAtEnd(cg->b, go);
}

/* KILN_E_CUDA - r */
static LLVMValueRef cuda_code(kl_cg *cg, LLVMValueRef r) {
    return LLVMBuildSub(cg->b, i32c(cg, E_CUDA), r, "");
}

static LLVMValueRef is_error(kl_cg *cg, LLVMValueRef r) {
    return LLVMBuildICmp(cg->b, LLVMIntNE, r, i32c(cg, 0), "");
}

/* if (r) { cuModuleUnload(module); state->module = NULL; return KILN_E_CUDA - r; } */
static void unload_if_failed(kl_cg *cg, LLVMValueRef fn, LLVMValueRef r, LLVMValueRef state,
                             LLVMValueRef module) {
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->ctx, fn, "unload");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, fn, "ok");
    LLVMBuildCondBr(cg->b, is_error(cg, r), fail, go);
    LLVMPositionBuilderAtEnd(cg->b, fail);
    cu_call(cg, "cuModuleUnload", &module, 1);
    LLVMBuildStore(cg->b, LLVMConstPointerNull(cg->ptr), state);
    LLVMBuildRet(cg->b, cuda_code(cg, r));
    LLVMPositionBuilderAtEnd(cg->b, go);
}

/* &state->functions[j] */
static LLVMValueRef function_slot(kl_cg *cg, LLVMValueRef state, int j) {
    LLVMValueRef off = i64c(cg, 8 * (1 + (int64_t)j));
    return LLVMBuildInBoundsGEP2(cg->b, cg->i8, state, &off, 1, "");
}

static LLVMValueRef any_null(kl_cg *cg, LLVMValueRef fn, int first, int n) {
    LLVMValueRef r = LLVMConstInt(cg->i1, 0, 0);
    for (int i = first; i < first + n; i++)
        r = LLVMBuildOr(cg->b, r, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, (unsigned)i), ""), "");
    return r;
}

static LLVMValueRef misaligned(kl_cg *cg, LLVMValueRef p) {
    LLVMValueRef addr = LLVMBuildPtrToInt(cg->b, p, cg->i64, "");
    LLVMValueRef low = LLVMBuildAnd(cg->b, addr, i64c(cg, WORKSPACE_ALIGN - 1), "");
    return LLVMBuildICmp(cg->b, LLVMIntNE, low, i64c(cg, 0), "");
}

/* ---------------------------------------------------------------- load / unload */

static void load_weights(host *h, LLVMValueRef fn, LLVMValueRef state, LLVMValueRef module) {
    kl_cg *cg = h->cg;
    int64_t size = h->cp->weights_size;
    LLVMValueRef dptr = LLVMBuildAlloca(cg->b, cg->i64, "dptr");
    LLVMValueRef bytes = LLVMBuildAlloca(cg->b, cg->i64, "bytes");
    LLVMValueRef args[4] = {dptr, bytes, module, h->weights_symbol};
    unload_if_failed(cg, fn, cu_call(cg, "cuModuleGetGlobal_v2", args, 4), state, module);
    LLVMValueRef got = LLVMBuildLoad2(cg->b, cg->i64, bytes, "");
    LLVMValueRef small = LLVMBuildICmp(cg->b, LLVMIntULT, got, i64c(cg, size), "");
    unload_if_failed(cg, fn, LLVMBuildSelect(cg->b, small, i32c(cg, CU_INVALID_IMAGE), i32c(cg, 0), ""),
                     state, module);
    LLVMValueRef copy[3] = {LLVMBuildLoad2(cg->b, cg->i64, dptr, ""), h->weights, i64c(cg, size)};
    unload_if_failed(cg, fn, cu_call(cg, "cuMemcpyHtoD_v2", copy, 3), state, module);
}

static LLVMValueRef emit_load(host *h) {
    kl_cg *cg = h->cg;
    LLVMValueRef fn = new_function(cg, kl_sprintf(cg->arena, "%s_cuda_load", cg->o->name), 1, true);
    LLVMValueRef state = LLVMGetParam(fn, 0);
    return_if(cg, fn, LLVMBuildIsNull(cg->b, state, ""), i32c(cg, E_NULL));
    LLVMValueRef args[2] = {state, h->image};
    LLVMValueRef r = cu_call(cg, "cuModuleLoadData", args, 2);
    LLVMValueRef retry = LLVMBuildOr(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, r, i32c(cg, CU_INVALID_IMAGE), ""),
                                     LLVMBuildICmp(cg->b, LLVMIntEQ, r, i32c(cg, CU_NO_BINARY_FOR_GPU), ""), "");
    LLVMBasicBlockRef first = LLVMGetInsertBlock(cg->b);
    LLVMBasicBlockRef jit = LLVMAppendBasicBlockInContext(cg->ctx, fn, "ptx");
    LLVMBasicBlockRef loaded = LLVMAppendBasicBlockInContext(cg->ctx, fn, "loaded");
    LLVMBuildCondBr(cg->b, retry, jit, loaded);
    LLVMPositionBuilderAtEnd(cg->b, jit);
    LLVMValueRef args2[2] = {state, h->ptx};
    LLVMValueRef r2 = cu_call(cg, "cuModuleLoadData", args2, 2);
    LLVMBuildBr(cg->b, loaded);
    LLVMPositionBuilderAtEnd(cg->b, loaded);
    LLVMValueRef rr = LLVMBuildPhi(cg->b, cg->i32, "r");
    LLVMValueRef vals[2] = {r, r2};
    LLVMBasicBlockRef from[2] = {first, jit};
    LLVMAddIncoming(rr, vals, from, 2);
    return_if(cg, fn, is_error(cg, rr), cuda_code(cg, rr));
    LLVMValueRef module = LLVMBuildLoad2(cg->b, cg->ptr, state, "module");
    for (int i = 0; i < h->cp->n_groups; i++) {
        LLVMValueRef get[3] = {function_slot(cg, state, i), module, h->names[i]};
        unload_if_failed(cg, fn, cu_call(cg, "cuModuleGetFunction", get, 3), state, module);
    }
    if (h->cp->weights_size > 0)
        load_weights(h, fn, state, module);
    LLVMBuildRet(cg->b, i32c(cg, 0));
    return fn;
}

static LLVMValueRef emit_unload(host *h) {
    kl_cg *cg = h->cg;
    LLVMValueRef fn = new_function(cg, kl_sprintf(cg->arena, "%s_cuda_unload", cg->o->name), 1, true);
    LLVMValueRef state = LLVMGetParam(fn, 0);
    return_if(cg, fn, LLVMBuildIsNull(cg->b, state, ""), i32c(cg, E_NULL));
    LLVMValueRef module = LLVMBuildLoad2(cg->b, cg->ptr, state, "module");
    return_if(cg, fn, LLVMBuildIsNull(cg->b, module, ""), i32c(cg, 0));
    LLVMValueRef r = cu_call(cg, "cuModuleUnload", &module, 1);
    LLVMBuildStore(cg->b, LLVMConstPointerNull(cg->ptr), state);
    return_if(cg, fn, is_error(cg, r), cuda_code(cg, r));
    LLVMBuildRet(cg->b, i32c(cg, 0));
    return fn;
}

/* ---------------------------------------------------------------- predict */

/* The pointer a kernel gets for one buffer: an argument or workspace + offset. */
static LLVMValueRef buffer_pointer(host *h, LLVMValueRef fn, const kl_buffer *b) {
    kl_cg *cg = h->cg;
    const kl_program *p = h->cp->p;
    int n_in = p->inputs.n, n_out = p->outputs.n;
    switch (b->kind) {
    case KL_BUF_INPUT:
        if (b->index >= 0 && b->index < n_in)
            return LLVMGetParam(fn, (unsigned)b->index);
        break;
    case KL_BUF_OUTPUT:
        if (b->index >= 0 && b->index < n_out)
            return LLVMGetParam(fn, (unsigned)(n_in + b->index));
        break;
    case KL_BUF_WORKSPACE:
        if (b->offset >= 0 && b->offset + kl_buffer_bytes(b) <= p->workspace_size) {
            LLVMValueRef off = i64c(cg, b->offset);
            return LLVMBuildInBoundsGEP2(cg->b, cg->i8, LLVMGetParam(fn, (unsigned)(n_in + n_out)),
                                         &off, 1, "");
        }
        break;
    case KL_BUF_CONST:
        break;
    }
    kl_error(cg->d, NULL, "codegen (CUDA): buffer '%s' has no valid place (kind %d)", b->name,
             (int)b->kind);
    return NULL;
}

/* One cuLaunchKernel: the launch's pointers into the slots, argv -> the slots. */
static bool launch(host *h, LLVMValueRef fn, int i, LLVMValueRef slots, LLVMValueRef argv,
                   LLVMValueRef stream, LLVMValueRef state) {
    kl_cg *cg = h->cg;
    const kl_cu_group *L = &h->cp->groups[i];
    LLVMTypeRef slots_t = LLVMArrayType2(cg->ptr, (uint64_t)h->max_params);
    for (int k = 0; k < L->n_params; k++) {
        LLVMValueRef v = buffer_pointer(h, fn, L->params[k]);
        if (!v)
            return false;
        LLVMValueRef idx[2] = {i64c(cg, 0), i64c(cg, k)};
        LLVMBuildStore(cg->b, v, LLVMBuildInBoundsGEP2(cg->b, slots_t, slots, idx, 2, ""));
    }
    LLVMValueRef f = LLVMBuildLoad2(cg->b, cg->ptr, function_slot(cg, state, i), "");
    LLVMValueRef args[11] = {f, i32c(cg, L->blocks), i32c(cg, 1), i32c(cg, 1), i32c(cg, L->threads),
                             i32c(cg, 1), i32c(cg, 1), i32c(cg, 0), stream, argv,
                             LLVMConstPointerNull(cg->ptr)};
    LLVMValueRef r = cu_call(cg, "cuLaunchKernel", args, 11);
    return_if(cg, fn, is_error(cg, r), cuda_code(cg, r));
    return true;
}

/* NAME_cuda_predict(in..., out..., workspace, stream, state) */
static LLVMValueRef emit_predict(host *h) {
    kl_cg *cg = h->cg;
    const kl_program *p = h->cp->p;
    int n_io = p->inputs.n + p->outputs.n;
    LLVMValueRef fn = new_function(cg, kl_sprintf(cg->arena, "%s_cuda_predict", cg->o->name), n_io + 3, true);
    LLVMValueRef ws = LLVMGetParam(fn, (unsigned)n_io), stream = LLVMGetParam(fn, (unsigned)n_io + 1);
    LLVMValueRef state = LLVMGetParam(fn, (unsigned)n_io + 2);
    LLVMTypeRef slots_t = LLVMArrayType2(cg->ptr, (uint64_t)h->max_params);
    LLVMValueRef slots = LLVMBuildAlloca(cg->b, slots_t, "slots");
    LLVMValueRef argv = LLVMBuildAlloca(cg->b, slots_t, "argv");
    LLVMValueRef nulls = any_null(cg, fn, 0, n_io);
    if (p->workspace_size > 0)
        nulls = LLVMBuildOr(cg->b, nulls, LLVMBuildIsNull(cg->b, ws, ""), "");
    nulls = LLVMBuildOr(cg->b, nulls, LLVMBuildIsNull(cg->b, state, ""), "");
    return_if(cg, fn, nulls, i32c(cg, E_NULL));
    LLVMValueRef module = LLVMBuildLoad2(cg->b, cg->ptr, state, "module");
    return_if(cg, fn, LLVMBuildIsNull(cg->b, module, ""), i32c(cg, E_NULL)); /* not loaded */
    if (p->workspace_size > 0)
        return_if(cg, fn, misaligned(cg, ws), i32c(cg, E_MISALIGNED));
    for (int k = 0; k < h->max_params; k++) {
        LLVMValueRef idx[2] = {i64c(cg, 0), i64c(cg, k)};
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, slots_t, slots, idx, 2, "");
        LLVMBuildStore(cg->b, slot, LLVMBuildInBoundsGEP2(cg->b, slots_t, argv, idx, 2, ""));
    }
    for (int i = 0; i < h->cp->n_groups; i++)
        if (!launch(h, fn, i, slots, argv, stream, state))
            return NULL;
    LLVMBuildRet(cg->b, i32c(cg, 0));
    return fn;
}

/* cuMemcpy{HtoD,DtoH}Async of one input or output, if it has bytes. */
static void copy_tensor(host *h, LLVMValueRef fn, bool output, int i, LLVMValueRef host_ptr,
                        LLVMValueRef dev_ptr, LLVMValueRef stream) {
    kl_cg *cg = h->cg;
    const kl_program *p = h->cp->p;
    int64_t bytes = kl_buffer_bytes(output ? p->outputs.items[i] : p->inputs.items[i]);
    if (bytes <= 0)
        return;
    LLVMValueRef dev = LLVMBuildPtrToInt(cg->b, dev_ptr, cg->i64, "");
    LLVMValueRef r;
    if (output) {
        LLVMValueRef args[4] = {host_ptr, dev, i64c(cg, bytes), stream};
        r = cu_call(cg, "cuMemcpyDtoHAsync_v2", args, 4);
    } else {
        LLVMValueRef args[4] = {dev, host_ptr, i64c(cg, bytes), stream};
        r = cu_call(cg, "cuMemcpyHtoDAsync_v2", args, 4);
    }
    return_if(cg, fn, is_error(cg, r), cuda_code(cg, r));
}

/* NAME_cuda_predict_host(in..., out..., workspace, stream, state) */
static LLVMValueRef emit_predict_host(host *h, LLVMValueRef predict) {
    kl_cg *cg = h->cg;
    const kl_program *p = h->cp->p;
    int n_in = p->inputs.n, n_io = n_in + p->outputs.n;
    LLVMValueRef fn = new_function(cg, kl_sprintf(cg->arena, "%s_cuda_predict_host", cg->o->name), n_io + 3, true);
    LLVMValueRef ws = LLVMGetParam(fn, (unsigned)n_io), stream = LLVMGetParam(fn, (unsigned)n_io + 1);
    LLVMValueRef state = LLVMGetParam(fn, (unsigned)n_io + 2);
    LLVMValueRef nulls = LLVMBuildOr(cg->b, any_null(cg, fn, 0, n_io), LLVMBuildIsNull(cg->b, ws, ""), "");
    nulls = LLVMBuildOr(cg->b, nulls, LLVMBuildIsNull(cg->b, state, ""), "");
    return_if(cg, fn, nulls, i32c(cg, E_NULL));
    return_if(cg, fn, misaligned(cg, ws), i32c(cg, E_MISALIGNED));
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)n_io + 3, sizeof *args);
    for (int i = 0; i < n_io; i++) {
        bool out = i >= n_in;
        LLVMValueRef off = i64c(cg, kl_cuda_host_offset(p, out, out ? i - n_in : i));
        args[i] = LLVMBuildInBoundsGEP2(cg->b, cg->i8, ws, &off, 1, "");
        if (!out)
            copy_tensor(h, fn, false, i, LLVMGetParam(fn, (unsigned)i), args[i], stream);
    }
    args[n_io] = ws;
    args[n_io + 1] = stream;
    args[n_io + 2] = state;
    LLVMValueRef r = call(cg, predict, args, (unsigned)n_io + 3);
    return_if(cg, fn, is_error(cg, r), r);
    for (int i = n_in; i < n_io; i++)
        copy_tensor(h, fn, true, i - n_in, LLVMGetParam(fn, (unsigned)i), args[i], stream);
    LLVMValueRef s = cu_call(cg, "cuStreamSynchronize", &stream, 1);
    return_if(cg, fn, is_error(cg, s), cuda_code(cg, s));
    LLVMBuildRet(cg->b, i32c(cg, 0));
    return fn;
}

/* run(inputs[], outputs[], workspace, stream, state) -> entry(inputs[0], ..., state) */
static LLVMValueRef emit_run(host *h, LLVMValueRef entry, const char *suffix) {
    kl_cg *cg = h->cg;
    const kl_program *p = h->cp->p;
    int n_in = p->inputs.n, n_io = n_in + p->outputs.n;
    LLVMValueRef fn = new_function(cg, kl_sprintf(cg->arena, "%s_%s", cg->o->name, suffix), 5, true);
    LLVMValueRef nulls = LLVMConstInt(cg->i1, 0, 0);
    if (n_in)
        nulls = LLVMBuildOr(cg->b, nulls, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, 0), ""), "");
    if (p->outputs.n)
        nulls = LLVMBuildOr(cg->b, nulls, LLVMBuildIsNull(cg->b, LLVMGetParam(fn, 1), ""), "");
    return_if(cg, fn, nulls, i32c(cg, E_NULL));
    LLVMValueRef *args = kl_alloc_array(cg->arena, (size_t)n_io + 3, sizeof *args);
    for (int i = 0; i < n_io; i++) {
        bool in = i < n_in;
        LLVMValueRef idx = i64c(cg, in ? i : i - n_in);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, LLVMGetParam(fn, in ? 0 : 1), &idx, 1, "");
        args[i] = LLVMBuildLoad2(cg->b, cg->ptr, slot, "");
    }
    for (int i = 0; i < 3; i++)
        args[n_io + i] = LLVMGetParam(fn, 2 + (unsigned)i);
    LLVMBuildRet(cg->b, call(cg, entry, args, (unsigned)n_io + 3));
    return fn;
}

/* ---------------------------------------------------------------- constant data */

static void embed(host *h) {
    kl_cg *cg = h->cg;
    const kl_cu_program *cp = h->cp;
    const kl_cu_image *img = h->img;
    h->image = bytes_global(cg, img->cubin, img->cubin_size, "cuda_image", 64);
    h->ptx = img->ptx ? bytes_global(cg, img->ptx, img->ptx_size, "cuda_ptx", 64) : h->image;
    if (cp->weights_size > 0) {
        h->weights = bytes_global(cg, kl_cu_weights(cp), (size_t)cp->weights_size, "cuda_weights", 64);
        h->weights_symbol = kl_cg_const_string(cg, img->weights_symbol ? img->weights_symbol
                                                                      : KL_CU_WEIGHTS, "cuda_weights_name");
    }
    h->names = kl_alloc_array(cg->arena, (size_t)cp->n_groups + 1, sizeof *h->names);
    h->max_params = 1;
    for (int i = 0; i < cp->n_groups; i++) {
        h->names[i] = kl_cg_const_string(cg, cp->groups[i].name, "cuda_function_name");
        if (cp->groups[i].n_params > h->max_params)
            h->max_params = cp->groups[i].n_params;
    }
}

bool kl_cu_emit_host(const kl_cu_program *cp, const kl_graph *g, const kl_codegen_opts *o,
                     const kl_cu_image *img, const char *path, kl_diag *d) {
    kl_cg cg = {.arena = cp->arena, .d = d, .p = cp->p, .g = g, .o = o};
    host h = {.cg = &cg, .cp = cp, .img = img};
    bool ok = kl_cg_open(&cg);
    if (ok) {
        embed(&h);
        kl_cg_entries e = {0};
        e.cuda_load = emit_load(&h);
        e.cuda_unload = emit_unload(&h);
        LLVMValueRef predict = emit_predict(&h);
        ok = predict != NULL;
        if (ok) {
            LLVMValueRef predict_host = emit_predict_host(&h, predict);
            e.cuda_run = emit_run(&h, predict, "cuda_run");
            e.cuda_run_host = emit_run(&h, predict_host, "cuda_run_host");
            kl_cuda_sizes sizes;
            ok = kl_cuda_sizes_of(cp->p, cp->t, &sizes, d);
            e.cuda_state_size = sizes.state_size;
            e.cuda_host_workspace_size = sizes.host_workspace_size;
            ok = ok && kl_cg_emit_model_table(&cg, &e) && kl_cg_write(&cg, path);
        }
    }
    kl_cg_close(&cg);
    return ok;
}

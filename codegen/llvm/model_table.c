/*
 * codegen/llvm/model_table.c — the exported constant `const kiln_model NAME_model`.
 *
 * The table answers what ONNX Runtime's get_inputs(), get_outputs() and get_modelmeta() answer
 * and holds the generic entry point, so one harness drives any compiled model. Its layout is
 * runtime-min/kiln.h's: LLVM's non-packed structs of the same field types get the same padding
 * as C under the target's data layout, so the struct types below list kiln.h's fields in order
 * and nothing else. Missing metadata strings become "" (harnesses print them); a missing
 * symbolic dimension name stays NULL, as kiln.h documents.
 */
#include <string.h>

#include "kiln.h"
#include "llvm_internal.h"

LLVMValueRef kl_cg_const_string(kl_cg *cg, const char *s, const char *label) {
    if (!s)
        s = "";
    LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, s, strlen(s), 0);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), label);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

/* A private constant array global; NULL pointer when empty. */
static LLVMValueRef const_array(kl_cg *cg, LLVMTypeRef elem, LLVMValueRef *items, int n,
                                const char *label) {
    if (n == 0)
        return LLVMConstPointerNull(cg->ptr);
    LLVMValueRef init = LLVMConstArray2(elem, items, (uint64_t)n);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), label);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

static LLVMValueRef i32c(kl_cg *cg, int64_t v) { return LLVMConstInt(cg->i32, (unsigned long long)v, 1); }
static LLVMValueRef i64c(kl_cg *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

/* The graph value behind program input/output i (NULL when there is no graph, in tests). */
static const kl_value *graph_value(const kl_cg *cg, bool output, int i) {
    if (!cg->g)
        return NULL;
    const kl_ptrvec *v = output ? &cg->g->outputs : &cg->g->inputs;
    return i < v->n ? v->items[i] : NULL;
}

/* kiln_tensor_desc { name, dtype, rank, shape, dim_names, size_bytes } */
static LLVMTypeRef tensor_desc_type(kl_cg *cg) {
    LLVMTypeRef f[] = {cg->ptr, cg->i32, cg->i32, cg->ptr, cg->ptr, cg->i64};
    return LLVMStructTypeInContext(cg->ctx, f, 6, 0);
}

static LLVMValueRef tensor_desc(kl_cg *cg, const kl_buffer *buf, const kl_value *v) {
    int rank = buf->shape.rank;
    LLVMValueRef dims[KL_MAX_RANK], names[KL_MAX_RANK];
    for (int d = 0; d < rank; d++) {
        dims[d] = i64c(cg, buf->shape.dim[d]);
        const char *dp = v ? v->dim_param[d] : NULL;
        names[d] = dp ? kl_cg_const_string(cg, dp, "dim_name") : LLVMConstPointerNull(cg->ptr);
    }
    LLVMValueRef f[] = {
        kl_cg_const_string(cg, v && v->name ? v->name : buf->name, "tensor_name"),
        i32c(cg, buf->dtype),
        i32c(cg, rank),
        const_array(cg, cg->i64, dims, rank, "shape"),
        const_array(cg, cg->ptr, names, rank, "dim_names"),
        i64c(cg, kl_buffer_bytes(buf)),
    };
    return LLVMConstStructInContext(cg->ctx, f, 6, 0);
}

static LLVMValueRef tensor_table(kl_cg *cg, const kl_ptrvec *bufs, bool output) {
    LLVMValueRef *items = kl_alloc_array(cg->arena, (size_t)bufs->n + 1, sizeof *items);
    for (int i = 0; i < bufs->n; i++)
        items[i] = tensor_desc(cg, bufs->items[i], graph_value(cg, output, i));
    return const_array(cg, tensor_desc_type(cg), items, bufs->n, output ? "outputs" : "inputs");
}

static LLVMValueRef opset_table(kl_cg *cg, const kl_model_meta *m) {
    LLVMTypeRef f[] = {cg->ptr, cg->i64};
    LLVMTypeRef t = LLVMStructTypeInContext(cg->ctx, f, 2, 0);
    int n = m ? m->n_opsets : 0;
    LLVMValueRef *items = kl_alloc_array(cg->arena, (size_t)n + 1, sizeof *items);
    for (int i = 0; i < n; i++) {
        LLVMValueRef v[] = {kl_cg_const_string(cg, m->opsets[i].domain, "opset_domain"),
                            i64c(cg, m->opsets[i].version)};
        items[i] = LLVMConstStructInContext(cg->ctx, v, 2, 0);
    }
    return const_array(cg, t, items, n, "opsets");
}

static LLVMValueRef metadata_table(kl_cg *cg, const kl_model_meta *m) {
    LLVMTypeRef f[] = {cg->ptr, cg->ptr};
    LLVMTypeRef t = LLVMStructTypeInContext(cg->ctx, f, 2, 0);
    int n = m ? m->n_props : 0;
    LLVMValueRef *items = kl_alloc_array(cg->arena, (size_t)n + 1, sizeof *items);
    for (int i = 0; i < n; i++) {
        LLVMValueRef v[] = {kl_cg_const_string(cg, m->props[i].key, "meta_key"),
                            kl_cg_const_string(cg, m->props[i].value, "meta_value")};
        items[i] = LLVMConstStructInContext(cg->ctx, v, 2, 0);
    }
    return const_array(cg, t, items, n, "metadata");
}

/* The program's kernels, then each ISA variant's (dispatch.c), in profile numbering. */
static int all_kernels(const kl_cg *cg) {
    int n = cg->p->kernels.n;
    for (int v = 0; v < cg->o->n_variants; v++) n += cg->o->variants[v].p->kernels.n;
    return n;
}

static const kl_kernel *kernel_at(const kl_cg *cg, int i) {
    const kl_program *p = cg->p;
    for (int v = 0; i >= p->kernels.n && v < cg->o->n_variants; v++) {
        i -= p->kernels.n;
        p = cg->o->variants[v].p;
    }
    return p->kernels.items[i];
}

/* kiln_kernel_info { name, node, op_type, flops } per kernel, and the total of one inference
 * (the baseline program's: a variant computes the same). */
static LLVMValueRef kernel_table(kl_cg *cg, int64_t *total) {
    int n = all_kernels(cg);
    LLVMTypeRef f[] = {cg->ptr, cg->ptr, cg->ptr, cg->i64};
    LLVMTypeRef t = LLVMStructTypeInContext(cg->ctx, f, 4, 0);
    LLVMValueRef *items = kl_alloc_array(cg->arena, (size_t)n + 1, sizeof *items);
    *total = 0;
    for (int i = 0; i < n; i++) {
        const kl_kernel *k = kernel_at(cg, i);
        int64_t flops = kl_kernel_flops(k);
        if (i < cg->p->kernels.n && !kl_add_checked(*total, flops, total)) /* each saturates */
            *total = INT64_MAX;
        LLVMValueRef v[] = {kl_cg_const_string(cg, k->name, "kernel_name"),
                            kl_cg_const_string(cg, k->node ? k->node->name : "", "kernel_node"),
                            kl_cg_const_string(cg, k->node ? k->node->op_type : "", "kernel_op"),
                            i64c(cg, flops)};
        items[i] = LLVMConstStructInContext(cg->ctx, v, 4, 0);
    }
    return const_array(cg, t, items, n, "kernels");
}

/* Each input's smallest dims (bounded dims at the bottom of their range). */
static LLVMValueRef min_shapes(kl_cg *cg) {
    const kl_program *p = cg->p;
    LLVMValueRef *rows = kl_alloc_array(cg->arena, (size_t)p->inputs.n + 1, sizeof *rows);
    for (int i = 0; i < p->inputs.n; i++) {
        const kl_buffer *b = p->inputs.items[i];
        LLVMValueRef dims[KL_MAX_RANK];
        for (int d = 0; d < b->shape.rank; d++)
            dims[d] = i64c(cg, b->dyn_a && b->dyn_a[d] ? b->dyn_a[d] * p->bounded_min + b->dyn_b[d]
                                                       : b->shape.dim[d]);
        rows[i] = const_array(cg, cg->i64, dims, b->shape.rank, "min_shape");
    }
    return const_array(cg, cg->ptr, rows, p->inputs.n, "input_min_shapes");
}

bool kl_cg_emit_model_table(kl_cg *cg, const kl_cg_entries *entries) {
    const kl_model_meta *m = cg->g ? &cg->g->meta : NULL;
    const kl_program *p = cg->p;
    LLVMTypeRef P = cg->ptr, I32 = cg->i32, I64 = cg->i64;
    LLVMTypeRef fields[] = {
        I32, P,                /* abi_version, name */
        I32, I32, P, P,        /* n_inputs, n_outputs, inputs, outputs */
        I64, I32,              /* workspace_size, workspace_align */
        P, P, P, P, P, P,      /* producer_name .. graph_description */
        I64, I64,              /* model_version, ir_version */
        I32, P, I32, P,        /* n_opsets, opsets, n_metadata, metadata */
        P,                     /* run */
        P, I32, P, I64, P,     /* run_parallel, n_kernels, kernels, flops, run_profiled */
        P, P, P,               /* target, cpu, cpu_features */
        I32, I32, I64, I64,    /* ABI 3: device, cuda_sm, cuda_state_size, cuda_host_workspace_size */
        P, P, P, P,            /* cuda_load, cuda_unload, cuda_run, cuda_run_host */
        I32, P, P,             /* ABI 4: bounded, input_min_shapes, run_dynamic */
        P,                     /* ABI 6: run_profiled_parallel */
    };
    int n_fields = (int)(sizeof fields / sizeof *fields);
    LLVMTypeRef model_t = LLVMStructTypeInContext(cg->ctx, fields, (unsigned)n_fields, 0);
    int64_t flops = 0;
    LLVMValueRef kernels = kernel_table(cg, &flops);
    const kl_target *t = cg->o->target;
    bool cuda = t->backend == KL_BACKEND_CUDA;
    LLVMValueRef null = LLVMConstPointerNull(cg->ptr);
    LLVMValueRef v[] = {
        i32c(cg, KILN_ABI_VERSION),
        kl_cg_const_string(cg, cg->o->name, "model_name"),
        i32c(cg, p->inputs.n), i32c(cg, p->outputs.n),
        tensor_table(cg, &p->inputs, false), tensor_table(cg, &p->outputs, true),
        i64c(cg, p->workspace_size), i32c(cg, 64),
        kl_cg_const_string(cg, m ? m->producer_name : NULL, "producer_name"),
        kl_cg_const_string(cg, m ? m->producer_version : NULL, "producer_version"),
        kl_cg_const_string(cg, m ? m->domain : NULL, "domain"),
        kl_cg_const_string(cg, m ? m->doc_string : NULL, "description"),
        kl_cg_const_string(cg, m ? m->graph_name : NULL, "graph_name"),
        kl_cg_const_string(cg, m ? m->graph_doc_string : NULL, "graph_description"),
        i64c(cg, m ? m->model_version : 0), i64c(cg, m ? m->ir_version : 0),
        i32c(cg, m ? m->n_opsets : 0), opset_table(cg, m),
        i32c(cg, m ? m->n_props : 0), metadata_table(cg, m),
        entries->run ? entries->run : null,
        entries->run_parallel ? entries->run_parallel : null, i32c(cg, all_kernels(cg)), kernels,
        i64c(cg, flops), entries->run_profiled ? entries->run_profiled : null,
        kl_cg_const_string(cg, t->name, "target"),
        kl_cg_const_string(cg, cuda ? kl_sprintf(cg->arena, "sm_%d", t->sm) : t->cpu, "cpu"),
        kl_cg_const_string(cg, t->features, "cpu_features"),
        i32c(cg, cuda ? 1 : 0), i32c(cg, cuda ? t->sm : 0), /* KILN_DEVICE_CUDA : _CPU */
        i64c(cg, entries->cuda_state_size), i64c(cg, entries->cuda_host_workspace_size),
        entries->cuda_load ? entries->cuda_load : null,
        entries->cuda_unload ? entries->cuda_unload : null,
        entries->cuda_run ? entries->cuda_run : null,
        entries->cuda_run_host ? entries->cuda_run_host : null,
        i32c(cg, p->dims ? 1 : 0), p->dims ? min_shapes(cg) : null,
        entries->run_dynamic ? entries->run_dynamic : null,
        entries->run_profiled_parallel ? entries->run_profiled_parallel : null,
    };
    LLVMValueRef init = LLVMConstStructInContext(cg->ctx, v, (unsigned)n_fields, 0);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, model_t, kl_sprintf(cg->arena, "%s_model", cg->o->name));
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMExternalLinkage);
    return true;
}

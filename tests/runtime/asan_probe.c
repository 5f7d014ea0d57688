/*
 * asan_probe.c — proof that `kiln compile --sanitize address` really checks the generated code:
 * the model is run with an output buffer one element short, and AddressSanitizer must stop the
 * program at the generated code's write past it (the test expects this program to fail). It
 * is what makes scripts/sanitize_predict.sh trustworthy: a silent pass there means no access
 * went outside the buffers, not that nothing was looking.
 * Built only in a sanitizer build (-Db_sanitize=address...), with the model compiled
 * `--sanitize address`; -DMODEL / -DMODEL_HEADER name it as in contract.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include MODEL_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

int main(void) {
    const kiln_model *m = &CAT(MODEL, _model);
    size_t in_bytes = (size_t)m->inputs[0].size_bytes, out_bytes = (size_t)m->outputs[0].size_bytes;
    float *in = calloc(1, in_bytes);
    float *out = malloc(out_bytes - sizeof(float)); /* one element short */
    void *ws = aligned_alloc(64, m->workspace_size ? (size_t)m->workspace_size : 64);
    const void *ins[1] = {in};
    void *outs[1] = {out};
    int rc = m->run(ins, outs, ws);
    printf("predict returned %d and ASan saw nothing: the generated code is not instrumented\n",
           rc);
    free(in);
    free(out);
    free(ws);
    return 0;
}

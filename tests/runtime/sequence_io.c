/*
 * sequence_io.c — a sequence and an optional at the generated interface (passes/seqio.c).
 *
 * sequence_io.onnx (make_sequence_io_model.py), compiled with --sequence s:3 --optional
 * o:present: the sequence input s is inputs s[0] .. s[2], the optional o its tensor o[0]; the
 * sequence output y is outputs y[0] .. y[3], the empty optional output none is no output. The
 * test calls predict through the header and the generic entry through the model table, and
 * checks the header's FIRST/COUNT macros and the table's names against each other.
 */
#include <stdio.h>
#include <string.h>

#include "sequence_io.h"

static int failed, passed;

static void expect(int cond, const char *what) {
    printf("%s %s\n", cond ? "PASS" : "FAIL", what);
    if (cond) passed++;
    else failed++;
}

static _Alignas(64) unsigned char workspace[SEQUENCE_IO_WORKSPACE_SIZE + 64];

static int same(const float *got, float a, float b) { return got[0] == a && got[1] == b; }

int main(void) {
    const float s0[2] = {1, 2}, s1[2] = {3, 4}, s2[2] = {5, 6}, x[2] = {10, 20}, o[2] = {100, 200};
    float y[4][2], total[6];
    memset(y, 0, sizeof y);
    int rc = sequence_io_predict(s0, s1, s2, x, o, y[0], y[1], y[2], y[3], total, workspace);
    expect(rc == KILN_OK, "predict: KILN_OK");
    expect(same(y[0], 1, 2) && same(y[1], 110, 220) && same(y[2], 3, 4) && same(y[3], 5, 6),
           "y: x + o inserted at position 1 of s");
    static const float want_total[6] = {1, 2, 3, 4, 5, 6};
    expect(!memcmp(total, want_total, sizeof total), "total: s concatenated");

    expect(SEQUENCE_IO_INPUT_S_FIRST == 0 && SEQUENCE_IO_INPUT_S_COUNT == 3, "header: s is inputs 0..2");
    expect(SEQUENCE_IO_INPUT_O_FIRST == 4 && SEQUENCE_IO_INPUT_O_COUNT == 1, "header: o is input 4");
    expect(SEQUENCE_IO_OUTPUT_Y_FIRST == 0 && SEQUENCE_IO_OUTPUT_Y_COUNT == 4, "header: y is outputs 0..3");
    expect(SEQUENCE_IO_OUTPUT_NONE_COUNT == 0, "header: the empty optional has no output");

    const kiln_model *m = &sequence_io_model;
    expect(m->n_inputs == 5 && m->n_outputs == 5, "table: 5 inputs, 5 outputs");
    char name[16];
    int names_ok = 1;
    for (int k = 0; k < SEQUENCE_IO_INPUT_S_COUNT; k++) {
        snprintf(name, sizeof name, "s[%d]", k);
        names_ok &= !strcmp(m->inputs[SEQUENCE_IO_INPUT_S_FIRST + k].name, name);
    }
    for (int k = 0; k < SEQUENCE_IO_OUTPUT_Y_COUNT; k++) {
        snprintf(name, sizeof name, "y[%d]", k);
        names_ok &= !strcmp(m->outputs[SEQUENCE_IO_OUTPUT_Y_FIRST + k].name, name);
    }
    names_ok &= !strcmp(m->inputs[SEQUENCE_IO_INPUT_O_FIRST].name, "o[0]");
    expect(names_ok, "table: tensors named s[K], o[0], y[K]");

    const void *in[5] = {s0, s1, s2, x, o};
    float y2[4][2], total2[6];
    void *out[5] = {y2[0], y2[1], y2[2], y2[3], total2};
    rc = m->run(in, out, workspace);
    expect(rc == KILN_OK && !memcmp(y, y2, sizeof y) && !memcmp(total, total2, sizeof total),
           "the table's run gives the same");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

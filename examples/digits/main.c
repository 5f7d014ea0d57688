/*
 * digits — the kiln example: a C program that links a compiled model and runs it.
 *
 * The model (a small CNN trained by train.py on scikit-learn's 8x8 digits) was turned into
 * digits.o + digits.h by `kiln compile digits.onnx -o digits.o` at build time; this program
 * knows nothing of ONNX. It shows the three things a user of a kiln object deals with:
 *   - the model table `digits_model` (names, types, shapes, metadata: what ONNX Runtime's
 *     get_inputs()/get_outputs()/get_modelmeta() answer), printed once;
 *   - the workspace: caller-owned, DIGITS_WORKSPACE_SIZE bytes, DIGITS_WORKSPACE_ALIGN-aligned,
 *     here a static array, since predict never allocates;
 *   - `digits_predict(image, logits, workspace)`, which returns 0 or a negative KILN_E_* code.
 * The held-out images come from digits_samples.h (written by train.py), with the true labels and
 * PyTorch's logits, so the program reports its accuracy and how far kiln's numbers are from
 * PyTorch's.
 *
 * usage: digits [--all] [--check]
 *   --all    print a line for every image (default: the first few, then only the mistakes)
 *   --check  exit 1 unless accuracy >= 95%, kiln agrees with PyTorch on every image and the
 *            logits are within tolerance (the test suite runs this)
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "digits.h"
#include "digits_samples.h"

enum { SHOWN_WITH_PICTURE = 3, SHOWN_LINES = 12, N_CLASSES = 10 };

/* |kiln - torch| <= ATOL + RTOL * |torch|: the project's tolerance for real models. */
static const double LOGIT_RTOL = 1e-3, LOGIT_ATOL = 1e-4;
static const double MIN_ACCURACY = 0.95;

/* No malloc anywhere: the workspace is plain static storage. */
static _Alignas(DIGITS_WORKSPACE_ALIGN) unsigned char
    workspace[DIGITS_WORKSPACE_SIZE > 0 ? DIGITS_WORKSPACE_SIZE : 1];

static const char *dtype_name(int32_t dtype)
{
    switch (dtype) {
    case KILN_FLOAT32: return "float32";
    case KILN_FLOAT64: return "float64";
    case KILN_FLOAT16: return "float16";
    case KILN_INT64: return "int64";
    case KILN_INT32: return "int32";
    case KILN_INT8: return "int8";
    case KILN_UINT8: return "uint8";
    case KILN_BOOL: return "bool";
    default: return "other";
    }
}

static void print_tensor_desc(const char *role, const kiln_tensor_desc *t)
{
    printf("  %-7s %-8s %s[", role, t->name, dtype_name(t->dtype));
    for (int32_t i = 0; i < t->rank; i++)
        printf("%s%lld", i ? ", " : "", (long long)t->shape[i]);
    printf("]  (%lld bytes)\n", (long long)t->size_bytes);
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static void print_model_table(const kiln_model *m)
{
    printf("model %s (kiln ABI %u)\n", m->name, m->abi_version);
    for (uint32_t i = 0; i < m->n_inputs; i++)
        print_tensor_desc("input", &m->inputs[i]);
    for (uint32_t i = 0; i < m->n_outputs; i++)
        print_tensor_desc("output", &m->outputs[i]);
    printf("  workspace %llu bytes, %u-byte aligned\n", (unsigned long long)m->workspace_size,
           m->workspace_align);
    printf("  producer %s %s, ir_version %lld, model_version %lld\n", or_dash(m->producer_name),
           or_dash(m->producer_version), (long long)m->ir_version, (long long)m->model_version);
    for (uint32_t i = 0; i < m->n_opsets; i++)
        printf("  opset %s %lld\n", m->opsets[i].domain && *m->opsets[i].domain
               ? m->opsets[i].domain : "ai.onnx", (long long)m->opsets[i].version);
    printf("  graph %s; description: %s\n", or_dash(m->graph_name), or_dash(m->description));
    for (uint32_t i = 0; i < m->n_metadata; i++)
        printf("  %s: %s\n", m->metadata[i].key, m->metadata[i].value);
    printf("\n");
}

static void print_picture(const unsigned char pixels[64])
{
    static const char shades[] = " .:-=+*#%@";    /* 10 shades for levels 0..16 */
    for (int row = 0; row < 8; row++) {
        printf("    ");
        for (int col = 0; col < 8; col++) {
            char c = shades[pixels[row * 8 + col] * 9 / 16];
            printf("%c%c", c, c);               /* doubled: terminal cells are tall */
        }
        printf("\n");
    }
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* How far kiln's logits are from PyTorch's, in the tolerance's own terms. */
typedef struct logit_error {
    double max_abs;
    bool within_tolerance;
} logit_error;

static void compare_logits(const float *got, const float *want, logit_error *e)
{
    for (int i = 0; i < N_CLASSES; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (diff > e->max_abs)
            e->max_abs = diff;
        if (!(diff <= LOGIT_ATOL + LOGIT_RTOL * fabs((double)want[i])))
            e->within_tolerance = false;
    }
}

int main(int argc, char **argv)
{
    bool print_all = false, check = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) {
            print_all = true;
        } else if (!strcmp(argv[i], "--check")) {
            check = true;
        } else {
            fprintf(stderr, "usage: %s [--all] [--check]\n", argv[0]);
            return 2;
        }
    }

    print_model_table(&digits_model);

    int correct = 0, agree_with_torch = 0;
    logit_error err = {0.0, true};
    for (int s = 0; s < DIGITS_N_SAMPLES; s++) {
        float image[64], logits[N_CLASSES];
        for (int i = 0; i < 64; i++)
            image[i] = digits_sample_pixels[s][i] / 16.0f;   /* the model's preprocessing */
        int rc = digits_predict(image, logits, workspace);
        if (rc != KILN_OK) {
            fprintf(stderr, "digits_predict failed on image %d: error %d\n", s, rc);
            return 1;
        }
        int predicted = argmax(logits, N_CLASSES), truth = digits_sample_labels[s];
        correct += predicted == truth;
        agree_with_torch += predicted == argmax(digits_torch_logits[s], N_CLASSES);
        compare_logits(logits, digits_torch_logits[s], &err);

        if (print_all || s < SHOWN_LINES || predicted != truth) {
            if (!print_all && s < SHOWN_WITH_PICTURE)
                print_picture(digits_sample_pixels[s]);
            printf("image %3d: predicted %d  true %d%s\n", s, predicted, truth,
                   predicted == truth ? "" : "   <- wrong");
        } else if (s == SHOWN_LINES) {
            printf("... (only mistakes below; --all prints every image)\n");
        }
    }

    double accuracy = (double)correct / DIGITS_N_SAMPLES;
    printf("\naccuracy %d/%d (%.2f%%)\n", correct, DIGITS_N_SAMPLES, 100.0 * accuracy);
    printf("same class as PyTorch on %d/%d images; max |logit - PyTorch's| = %.3g (%s rtol %g "
           "atol %g)\n", agree_with_torch, DIGITS_N_SAMPLES, err.max_abs,
           err.within_tolerance ? "within" : "OUTSIDE", LOGIT_RTOL, LOGIT_ATOL);

    if (check && (accuracy < MIN_ACCURACY || agree_with_torch != DIGITS_N_SAMPLES ||
                  !err.within_tolerance)) {
        fprintf(stderr, "check failed: accuracy below %.0f%% or results differ from PyTorch\n",
                100.0 * MIN_ACCURACY);
        return 1;
    }
    return 0;
}

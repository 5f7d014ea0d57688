/*
 * numpy_random.c — numpy's legacy RandomState (MT19937), drawn at compile time.
 *
 * What numpy's `RandomState(seed)` computes, written from the algorithms it documents:
 *   - seeding: MT19937's init_genrand with the 32-bit seed;
 *   - random_sample: two tempered words a, b; (a >> 5) * 2^26 + (b >> 6), over 2^53;
 *   - the legacy Gaussian: the polar Box-Muller method. Pairs (x1, x2) = 2u - 1 are drawn until
 *     0 < r2 = x1^2 + x2^2 < 1; with f = sqrt(-2 log(r2) / r2) the call returns f * x2 and keeps
 *     f * x1 for the next one.
 * The arithmetic is the same double operations in the same order (kiln is built as ISO C, so
 * nothing is contracted into fused multiply-adds), and log and sqrt are the C library's, as in
 * numpy: on one machine the draws are numpy's bit for bit (the op-cases test checks that).
 */
#include <math.h>

#include "numpy_random.h"

enum { MT_SHIFT = 397 };

void kl_numpy_seed(kl_numpy_rng *r, uint32_t seed) {
    r->word[0] = seed;
    for (uint32_t i = 1; i < KL_MT_WORDS; i++)
        r->word[i] = 1812433253u * (r->word[i - 1] ^ (r->word[i - 1] >> 30)) + i;
    r->next = KL_MT_WORDS;
    r->has_gauss = false;
    r->gauss = 0.0;
}

/* The next block of 624 words (MT19937's twist). */
static void mt_twist(kl_numpy_rng *r) {
    for (int k = 0; k < KL_MT_WORDS; k++) {
        uint32_t y = (r->word[k] & 0x80000000u) | (r->word[(k + 1) % KL_MT_WORDS] & 0x7fffffffu);
        r->word[k] = r->word[(k + MT_SHIFT) % KL_MT_WORDS] ^ (y >> 1) ^
                     ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    r->next = 0;
}

static uint32_t mt_next(kl_numpy_rng *r) {
    if (r->next == KL_MT_WORDS) mt_twist(r);
    uint32_t y = r->word[r->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

double kl_numpy_random_sample(kl_numpy_rng *r) {
    uint32_t a = mt_next(r) >> 5, b = mt_next(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

double kl_numpy_gauss(kl_numpy_rng *r) {
    if (r->has_gauss) {
        r->has_gauss = false;
        return r->gauss;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * kl_numpy_random_sample(r) - 1.0;
        x2 = 2.0 * kl_numpy_random_sample(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;
    r->has_gauss = true;
    return f * x2;
}

double kl_numpy_uniform(kl_numpy_rng *r, double low, double high) {
    return low + (high - low) * kl_numpy_random_sample(r);
}

double kl_numpy_normal(kl_numpy_rng *r, double mean, double scale) {
    return mean + scale * kl_numpy_gauss(r);
}

/* ---------------------------------------------------------------- for the operators */

bool kl_random_seed(const kl_node *n, uint32_t *seed, kl_diag *d) {
    double s = kl_attr_float(n, "seed", 0.0);
    if (isnan(s)) s = 0.0;
    /* int(seed) truncates, so anything above -1 and below 2^32 is a seed numpy takes */
    if (!(s > -1.0 && s < 4294967296.0))
        return kl_error(d, n, "seed %g is out of range (numpy's RandomState takes 0 to "
                        "2^32 - 1)", s);
    *seed = (uint32_t)s;
    return true;
}

bool kl_random_float_dtype(kl_dtype t) {
    return t == KL_F16 || t == KL_F32 || t == KL_F64 || t == KL_BF16;
}

kl_buffer *kl_random_table(kl_lower *L, const kl_node *n, const char *tag, const char *what,
                           kl_dtype t, const kl_shape *s, kl_diag *d) {
    int64_t count = kl_shape_numel(s), size = (int64_t)kl_dtype_size(t);
    if (count > KL_MAX_BUILT_BYTES / size) {
        kl_error(d, n, "%s, %lld elements: the table would exceed %lld bytes", what,
                 (long long)count, (long long)KL_MAX_BUILT_BYTES);
        return NULL;
    }
    kl_buffer *b = kl_program_buffer(L->prog, kl_sprintf(L->arena, "%s_%s", n->outputs[0]->name,
                                                         tag), KL_BUF_CONST, t, s);
    void *data = kl_alloc(L->arena, (size_t)(count * size) + 8);
    b->data = data;
    b->host = data; /* the interpreter reads constants through `host` */
    return b;
}

kl_buffer *kl_random_sample_table(kl_lower *L, const kl_node *n, uint32_t seed,
                                  const kl_shape *s, const char *what, kl_diag *d) {
    kl_buffer *b = kl_random_table(L, n, "draws", what, KL_F64, s, d);
    if (!b) return NULL;
    kl_numpy_rng r;
    kl_numpy_seed(&r, seed);
    double *u = b->host;
    for (int64_t i = 0, count = kl_shape_numel(s); i < count; i++)
        u[i] = kl_numpy_random_sample(&r);
    return b;
}

void kl_random_store(kl_dtype t, void *table, int64_t i, double v) {
    switch (t) {
    case KL_F64: ((double *)table)[i] = v; break;
    case KL_F32: ((float *)table)[i] = (float)v; break;
    case KL_F16: ((uint16_t *)table)[i] = kl_f32_to_f16((float)v); break;
    case KL_BF16: ((uint16_t *)table)[i] = kl_f32_to_bf16((float)v); break;
    default: break; /* callers check kl_random_float_dtype first */
    }
}

/*
 * numpy_random.h — numpy's legacy random generator, drawn at compile time, and what the random
 * operators (Dropout in training mode, RandomUniform/Normal(Like), Bernoulli, Multinomial)
 * share to turn its draws into constant tables.
 *
 * A kiln object keeps no writable state, so no generator can advance between calls: every
 * random operator draws its numbers here, while compiling, into a constant of the object, and
 * every call sees the same draws. They are the draws of numpy's `RandomState(seed)` (the
 * reference implementations' generator), so that a seeded model gives what that gives.
 */
#ifndef KIL_NUMPY_RANDOM_H
#define KIL_NUMPY_RANDOM_H

#include <stdint.h>

#include "ops.h"

/* ---------------------------------------------------------------- the generator (pure) */

enum { KL_MT_WORDS = 624 };

/* RandomState's state: MT19937 and the second value of legacy_gauss's last pair. */
typedef struct kl_numpy_rng {
    uint32_t word[KL_MT_WORDS];
    int next;          /* the word to temper next; KL_MT_WORDS: the block is used up */
    bool has_gauss;    /* `gauss` holds the pair's second value, returned by the next call */
    double gauss;
} kl_numpy_rng;

/* RandomState(seed): MT19937's init_genrand, no Gaussian kept. */
void kl_numpy_seed(kl_numpy_rng *r, uint32_t seed);
/* random_sample(): a double in [0, 1) from two words (27 + 26 bits over 2^53). */
double kl_numpy_random_sample(kl_numpy_rng *r);
/* standard_normal() of the legacy generator (legacy_gauss: polar Box-Muller, each pair's
 * second value kept for the next call). */
double kl_numpy_gauss(kl_numpy_rng *r);

/* One draw of RandomState's uniform(low, high) = low + (high - low) * random_sample(). */
double kl_numpy_uniform(kl_numpy_rng *r, double low, double high);
/* One draw of RandomState's normal(mean, scale) = mean + scale * the legacy Gaussian. */
double kl_numpy_normal(kl_numpy_rng *r, double mean, double scale);

/* ---------------------------------------------------------------- for the operators */

/* The FLOAT `seed` attribute of the random operators as RandomState(int(seed)) takes it:
 * truncated toward zero, 0 to 2^32 - 1. Absent (or NaN, which the reference reads as absent)
 * ONNX asks for a fresh seed, which kiln cannot draw at run time: it takes 0. */
bool kl_random_seed(const kl_node *n, uint32_t *seed, kl_diag *d);

/* Whether t is one of the floating-point types a random operator's dtype may name (float16,
 * float, double, bfloat16). */
bool kl_random_float_dtype(kl_dtype t);

/* A constant buffer of n's, named after its output 0 and `tag`, of type t and shape s, with
 * zeroed storage for the caller to fill; NULL after a diagnostic when it would exceed
 * KL_MAX_BUILT_BYTES (`what` says what it holds, for the message). */
kl_buffer *kl_random_table(kl_lower *L, const kl_node *n, const char *tag, const char *what,
                           kl_dtype t, const kl_shape *s, kl_diag *d);

/* random_sample() for every element of shape s, in C order: a float64 table (see
 * kl_random_table), NULL after a diagnostic. */
kl_buffer *kl_random_sample_table(kl_lower *L, const kl_node *n, uint32_t seed,
                                  const kl_shape *s, const char *what, kl_diag *d);

/* Element i of a table of floating-point type t (kl_random_float_dtype) set to v, rounded as
 * the interpreter rounds (half types through float32). */
void kl_random_store(kl_dtype t, void *table, int64_t i, double v);

#endif

/*
 * kiln_pool.h — a small thread pool for the parallel entry of kiln-compiled models, on hosted
 * targets (POSIX threads). Link libkiln_pool.a (or compile kiln_pool.c with -pthread).
 *
 *   kiln_pool *pool = kiln_pool_create(4);          // the calling thread + 3 workers
 *   NAME_predict_parallel(in, out, ws, kiln_pool_parallel(pool));
 *   kiln_pool_destroy(pool);
 *
 * The calling thread takes part in every parallel-for; the workers spin briefly between
 * kernels (so a sequence of kernels does not pay a wake-up each) and then sleep. A pool runs one
 * parallel-for at a time: share it between threads only with your own lock.
 */
#ifndef KILN_POOL_H
#define KILN_POOL_H

#include "kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_pool kiln_pool;

/* A pool of `threads` threads in all (the caller counts as one); NULL if threads < 1 or the
 * threads cannot be created. */
kiln_pool *kiln_pool_create(int threads);
/* The kiln_parallel to hand to NAME_predict_parallel (valid until the pool is destroyed). */
const kiln_parallel *kiln_pool_parallel(const kiln_pool *pool);
void kiln_pool_destroy(kiln_pool *pool);

#ifdef __cplusplus
}
#endif
#endif

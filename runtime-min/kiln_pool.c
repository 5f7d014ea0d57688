/*
 * kiln_pool.c — the pthread pool behind kiln_pool.h.
 *
 * One job at a time: the caller publishes (task, arg, n) and bumps a generation counter; every
 * thread, the caller included, takes task indices from an atomic counter until none is left.
 * The caller returns once every worker has finished the generation, so the next job never
 * races a worker still reading the last one. Idle workers spin on the generation for a while
 * (kernels follow each other within microseconds), then sleep on a condition variable.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "kiln_pool.h"

enum { SPIN_ROUNDS = 1 << 16 };

typedef struct worker {
    kiln_pool *pool;
    pthread_t thread;
    _Atomic uint64_t finished;  /* the last generation this worker is done with */
} worker;

struct kiln_pool {
    kiln_parallel par;
    int n_workers;
    worker *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint64_t generation;
    _Atomic int sleeping;
    _Atomic int stop;
    _Atomic int64_t next;
    int64_t n;
    kiln_task_fn task;
    void *arg;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(kiln_pool *p) {
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->n) return;
        p->task(p->arg, i);
    }
}

/* The generation after `seen`, once there is one; 0 when the pool stops. */
static uint64_t wait_for_job(kiln_pool *p, uint64_t seen) {
    for (int r = 0; r < SPIN_ROUNDS; r++) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen) return g;
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return 0;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->sleeping, 1);
    uint64_t g;
    while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
           !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->lock);
    atomic_fetch_sub(&p->sleeping, 1);
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->stop) ? 0 : g;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    kiln_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = wait_for_job(p, seen);
        if (g == 0) return NULL;
        run_tasks(p);
        atomic_store_explicit(&w->finished, g, memory_order_release);
        seen = g;
    }
}

static void parallel_for(void *ctx, int64_t n, kiln_task_fn task, void *arg) {
    kiln_pool *p = ctx;
    if (n <= 0) return;
    if (n == 1 || p->n_workers == 0) {
        for (int64_t i = 0; i < n; i++) task(arg, i);
        return;
    }
    p->n = n;
    p->task = task;
    p->arg = arg;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    uint64_t g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->generation, g, memory_order_release);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p);
    for (int i = 0; i < p->n_workers; i++)
        while (atomic_load_explicit(&p->workers[i].finished, memory_order_acquire) != g)
            cpu_relax();
}

kiln_pool *kiln_pool_create(int threads) {
    if (threads < 1) return NULL;
    kiln_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->par.parallel_for = parallel_for;
    p->par.ctx = p;
    p->par.threads = threads;
    for (int i = 0; i < threads - 1; i++) {
        p->workers[i].pool = p;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            kiln_pool_destroy(p);
            return NULL;
        }
        p->n_workers++;
    }
    return p;
}

const kiln_parallel *kiln_pool_parallel(const kiln_pool *pool) { return pool ? &pool->par : NULL; }

void kiln_pool_destroy(kiln_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p);
}

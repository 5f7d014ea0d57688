/*
 * kiln_pool.c — the pthread pool behind kiln_pool.h.
 *
 * One job at a time. The caller publishes (task, arg, n) and then a ticket: the job's
 * generation in the high 32 bits, the next task index in the low 32. Every thread, the caller
 * included, claims indices by compare-and-swap on the ticket, so a thread still looking at an
 * older job can never claim a task of a newer one (its generation no longer matches), and a
 * job's fields stay valid while any of its claimed tasks runs: the caller replaces them only
 * after all n tasks have finished. The caller therefore waits for the tasks alone, never for a
 * worker the OS has put aside. Idle workers spin on the generation for a while (kernels
 * follow each other within microseconds), then sleep on a condition variable; a waiting
 * caller yields its core after a short spin, which matters when threads outnumber free cores.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "kiln_pool.h"

enum { SPIN_ROUNDS = 1 << 16, CALLER_SPINS = 1 << 12 };

typedef struct worker {
    kiln_pool *pool;
    pthread_t thread;
} worker;

struct kiln_pool {
    kiln_parallel par;
    int n_workers;
    worker *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint32_t generation;  /* of the latest job; workers wake on a change */
    _Atomic uint64_t ticket;      /* generation << 32 | next task index */
    _Atomic int64_t done;         /* tasks of the current job finished */
    _Atomic int sleeping;
    _Atomic int stop;
    _Atomic int64_t n;            /* read by threads that may still look at an older job */
    kiln_task_fn task;
    void *arg;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claim and run tasks of job `gen` until none is left (or a newer job has started). */
static void run_tasks(kiln_pool *p, uint32_t gen) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen ||
            (int64_t)(t & 0xffffffffu) >= atomic_load_explicit(&p->n, memory_order_relaxed))
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        p->task(p->arg, (int64_t)(t & 0xffffffffu));
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

/* The generation after `seen`, once there is one; 0 when the pool stops. */
static uint32_t wait_for_job(kiln_pool *p, uint32_t seen) {
    for (int r = 0; r < SPIN_ROUNDS; r++) {
        uint32_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen) return g;
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return 0;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->sleeping, 1);
    uint32_t g;
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
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = wait_for_job(p, seen);
        if (g == 0) return NULL;
        run_tasks(p, g);
        seen = g;
    }
}

static void parallel_for(void *ctx, int64_t n, kiln_task_fn task, void *arg) {
    kiln_pool *p = ctx;
    if (n <= 0) return;
    if (n == 1 || p->n_workers == 0 || n > 0xffffffffll) {
        for (int64_t i = 0; i < n; i++) task(arg, i);
        return;
    }
    uint32_t g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    if (g == 0) g = 1; /* 0 means "stop" to the workers */
    atomic_store_explicit(&p->n, n, memory_order_relaxed);
    p->task = task;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint64_t)g << 32, memory_order_release);
    atomic_store_explicit(&p->generation, g, memory_order_release);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p, g);
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; spins++) {
        if (spins < CALLER_SPINS) cpu_relax();
        else sched_yield();
    }
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

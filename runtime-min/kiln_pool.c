/*
 * kiln_pool.c — the pthread pool behind kiln_pool.h.
 *
 * One job at a time. Each thread has a slot (the caller 0, worker w slot w + 1), and a job of n
 * tasks gives every slot a contiguous range of them: slot s owns [s*n/T, (s+1)*n/T). A thread
 * runs its own range from the front, then takes what is left of the others' from their back.
 * Consecutive kernels split the same rows of an image the same way, so a thread mostly reads
 * what it wrote itself, from its own cache: claiming tasks one by one from a shared counter
 * hands them out interleaved, and half of every kernel's input then comes from the other
 * core's cache (squeezenet on 2 threads: 1.53x one thread's speed that way). Taking from the
 * back keeps the owner's front-to-back order and means the caller never waits for a worker
 * the OS has put aside: what that worker has not claimed, the others run.
 *
 * A range is one 64-bit word, its low and high ends, claimed by compare-and-swap. A thread
 * that read a word of an older job cannot claim from a newer one's: the CAS needs the word
 * unchanged, and a claim that succeeds is a claim of the job the word belongs to, whose task
 * and argument the thread reads only after claiming (the caller replaces them only after all
 * n tasks have finished). Idle workers spin on the generation for a while (kernels follow each
 * other within microseconds), then sleep on a condition variable; a waiting caller yields its
 * core after a short spin, which matters when threads outnumber free cores.
 */
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_pool.h"

enum { SPIN_ROUNDS = 1 << 16, CALLER_SPINS = 1 << 12 };

/* A slot's tasks not yet claimed, [lo, hi) as lo | hi << 32, alone on its cache line: the
 * owner claims from it at every task and the others only when stealing. */
typedef struct slot {
    alignas(64) _Atomic uint64_t range;
} slot;

typedef struct worker {
    kiln_pool *pool;
    int slot;
    pthread_t thread;
} worker;

struct kiln_pool {
    kiln_parallel par;
    int n_workers;
    int n_slots;                  /* the caller and every worker */
    worker *workers;
    slot *slots;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint32_t generation;  /* of the latest job; workers wake on a change */
    alignas(64) _Atomic int64_t done; /* tasks of the current job finished */
    _Atomic int sleeping;
    _Atomic int stop;
    kiln_task_fn task;
    void *arg;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t range_word(uint32_t lo, uint32_t hi) { return lo | (uint64_t)hi << 32; }

/* One task from slot s's range, from its front (the owner) or its back (a thief); -1 when the
 * range is empty. */
static int64_t claim(kiln_pool *p, int s, int from_front) {
    _Atomic uint64_t *r = &p->slots[s].range;
    uint64_t w = atomic_load_explicit(r, memory_order_acquire);
    for (;;) {
        uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
        if (lo >= hi) return -1;
        uint64_t next = from_front ? range_word(lo + 1, hi) : range_word(lo, hi - 1);
        if (atomic_compare_exchange_weak_explicit(r, &w, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            return from_front ? lo : hi - 1;
    }
}

static void run_task(kiln_pool *p, int64_t i) {
    p->task(p->arg, i);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
}

/* Run slot `own`'s tasks, then whatever the other slots have left. */
static void run_tasks(kiln_pool *p, int own) {
    int64_t i;
    while ((i = claim(p, own, 1)) >= 0) run_task(p, i);
    for (int k = 1; k < p->n_slots; k++) {
        int s = (own + k) % p->n_slots;
        while ((i = claim(p, s, 0)) >= 0) run_task(p, i);
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
        run_tasks(p, w->slot);
        seen = g;
    }
}

static void parallel_for(void *ctx, int64_t n, kiln_task_fn task, void *arg) {
    kiln_pool *p = ctx;
    if (n <= 0) return;
    if (n == 1 || p->n_workers == 0 || n > 0x7fffffffll) {
        for (int64_t i = 0; i < n; i++) task(arg, i);
        return;
    }
    uint32_t g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    if (g == 0) g = 1; /* 0 means "stop" to the workers */
    p->task = task;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    for (int s = 0; s < p->n_slots; s++)
        atomic_store_explicit(&p->slots[s].range,
                              range_word((uint32_t)(n * s / p->n_slots),
                                         (uint32_t)(n * (s + 1) / p->n_slots)),
                              memory_order_release);
    atomic_store_explicit(&p->generation, g, memory_order_release);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p, 0);
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; spins++) {
        if (spins < CALLER_SPINS) cpu_relax();
        else sched_yield();
    }
}

/* Zeroed memory for n objects of `size` bytes on their own cache lines (the slots and the pool
 * hold 64-byte aligned fields). */
static void *zeroed_lines(size_t n, size_t size) {
    size_t bytes = (n * size + 63) / 64 * 64;
    void *m = aligned_alloc(64, bytes);
    if (m) memset(m, 0, bytes);
    return m;
}

kiln_pool *kiln_pool_create(int threads) {
    if (threads < 1) return NULL;
    kiln_pool *p = zeroed_lines(1, sizeof *p);
    if (!p) return NULL;
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    p->slots = zeroed_lines((size_t)threads, sizeof *p->slots);
    if (!p->workers || !p->slots) {
        free(p->workers);
        free(p->slots);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->par.parallel_for = parallel_for;
    p->par.ctx = p;
    p->par.threads = threads;
    p->n_slots = threads;
    for (int i = 0; i < threads - 1; i++) {
        p->workers[i].pool = p;
        p->workers[i].slot = i + 1;
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
    free(p->slots);
    free(p);
}

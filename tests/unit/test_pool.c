/*
 * test_pool.c — runtime-min/kiln_pool.c: every task of a parallel-for runs exactly once, on any
 * number of threads, and each thread works through its own contiguous share first (the calling
 * thread from index 0), which is what keeps an activation in the cache of the thread that
 * wrote it from one kernel to the next.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "kiln_pool.h"

enum { MAX_TASKS = 1000 };

typedef struct runs {
    _Atomic int count[MAX_TASKS];
    pthread_t by[MAX_TASKS];
    int sleep_us;
} runs;

static void note_run(void *arg, int64_t i) {
    runs *r = arg;
    r->by[i] = pthread_self();
    if (r->sleep_us) nanosleep(&(struct timespec){0, r->sleep_us * 1000L}, NULL);
    atomic_fetch_add(&r->count[i], 1);
}

Test(pool, every_task_runs_once) {
    static const int64_t sizes[] = {1, 2, 3, 7, 8, 9, 64, MAX_TASKS};
    for (int threads = 1; threads <= 4; threads++) {
        kiln_pool *pool = kiln_pool_create(threads);
        cr_assert_not_null(pool);
        const kiln_parallel *par = kiln_pool_parallel(pool);
        cr_assert_eq(par->threads, threads);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (int rep = 0; rep < 50; rep++) {
                static runs r;
                memset(&r, 0, sizeof r);
                par->parallel_for(par->ctx, sizes[s], note_run, &r);
                for (int64_t i = 0; i < sizes[s]; i++)
                    cr_assert_eq(r.count[i], 1, "%d threads, n %lld: task %lld ran %d times",
                                 threads, (long long)sizes[s], (long long)i, r.count[i]);
                for (int64_t i = sizes[s]; i < MAX_TASKS; i++) cr_assert_eq(r.count[i], 0);
            }
        kiln_pool_destroy(pool);
    }
}

/* The caller owns the first half of the tasks and runs them front to back: whatever it did of
 * its own share is a prefix starting at 0 (the rest, if any, a worker took from the back). */
Test(pool, caller_runs_its_share_from_the_front) {
    kiln_pool *pool = kiln_pool_create(2);
    cr_assert_not_null(pool);
    const kiln_parallel *par = kiln_pool_parallel(pool);
    static runs r;
    memset(&r, 0, sizeof r);
    r.sleep_us = 500;
    par->parallel_for(par->ctx, 8, note_run, &r);
    pthread_t caller = pthread_self();
    cr_assert(pthread_equal(r.by[0], caller), "task 0 ran on another thread");
    int prefix = 0;
    while (prefix < 4 && pthread_equal(r.by[prefix], caller)) prefix++;
    for (int i = prefix; i < 4; i++)
        cr_assert(!pthread_equal(r.by[i], caller), "the caller's own tasks are not a prefix");
    for (int i = 0; i < 8; i++) cr_assert_eq(r.count[i], 1);
    kiln_pool_destroy(pool);
}

Test(pool, no_pool_for_no_threads) {
    cr_assert_null(kiln_pool_create(0));
    cr_assert_null(kiln_pool_parallel(NULL));
}

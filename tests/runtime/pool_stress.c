/*
 * pool_stress.c — runtime-min/kiln_pool.c under ThreadSanitizer: many parallel-fors of every
 * size from 1 to 64 tasks on pools of 2 to 4 threads, each task bumping a plain counter of its
 * own. TSan reports any access to a task's counter, or to the pool's job, that the pool does
 * not order (a task run twice at once, a worker still in an old job); the counters must end at
 * the number of jobs that gave them a task. Prints "ok"; exit status 1 on a wrong count.
 */
#include <stdio.h>

#include "kiln_pool.h"

enum { MAX_TASKS = 64, JOBS = 20000 };

static long runs[MAX_TASKS];

static void bump(void *arg, int64_t i) {
    (void)arg;
    runs[i]++;
}

int main(void) {
    for (int threads = 2; threads <= 4; threads++) {
        kiln_pool *pool = kiln_pool_create(threads);
        if (!pool) return 1;
        const kiln_parallel *par = kiln_pool_parallel(pool);
        long want[MAX_TASKS] = {0};
        for (int j = 0; j < JOBS; j++) {
            int n = 1 + j % MAX_TASKS;
            par->parallel_for(par->ctx, n, bump, NULL);
            for (int i = 0; i < n; i++) want[i]++;
        }
        kiln_pool_destroy(pool);
        for (int i = 0; i < MAX_TASKS; i++)
            if (runs[i] != want[i]) {
                printf("%d threads: task %d ran %ld times, not %ld\n", threads, i, runs[i], want[i]);
                return 1;
            }
        for (int i = 0; i < MAX_TASKS; i++) runs[i] = 0;
    }
    printf("ok\n");
    return 0;
}

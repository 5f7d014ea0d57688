/*
 * clock.c — one monotonic clock for everything kiln times (compile time, `kiln bench`).
 *
 * CLOCK_MONOTONIC, not the wall clock: a time adjustment during a measurement must not show up
 * as a faster or slower model.
 */
#include <time.h>

#include "kl.h"

double kl_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/*
 * emulate/driver_cache.c — the test driver's object, compiled once per target toolchain.
 *
 * The driver (driver.c) is the same for every model, yet compiling it with the target's gcc
 * took a third of each `kiln check --target T` (about 0.2 s of 0.55 on aarch64-linux), and the
 * conformance runs check thousands of models per target. So the object is kept in a cache
 * folder and only linked afterwards: KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else
 * $HOME/.cache/kiln (an empty KILN_CACHE_DIR turns the cache off). Its name holds a hash of
 * everything the object depends on that kiln knows: the target's toolchain command, driver.c
 * and kiln.h. A cache that cannot be created or written is no error (the object compiled in the
 * private folder is linked instead), and a cached object that fails to link is removed and
 * compiled again (emulate.c), so a stale or damaged entry costs one compilation, never a wrong
 * failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emulate.h"

enum { COMPILE_TIMEOUT_S = 120 };

static uint64_t hash_text(uint64_t h, const char *s) {
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (h ^ 0xffu) * 1099511628211ull; /* a separator, so "ab"+"c" differs from "a"+"bc" */
}

/* The cache folder (created, with its parents), or NULL when there is none to use. */
static const char *cache_dir(kl_arena *a) {
    const char *dir = getenv("KILN_CACHE_DIR");
    if (dir && !*dir) return NULL;
    if (!dir) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg) dir = kl_sprintf(a, "%s/kiln", xdg);
        else if (home && *home) dir = kl_sprintf(a, "%s/.cache/kiln", home);
        else return NULL;
    }
    char *path = kl_sprintf(a, "%s", dir);
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (end || *p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) return NULL;
            if (end) break;
            *p = '/';
        }
    }
    return path;
}

const char *kl_emu_driver_cache_path(kl_arena *a, const kl_target *t) {
    const char *dir = cache_dir(a);
    if (!dir) return NULL;
    uint64_t h = 1469598103934665603ull;
    h = hash_text(hash_text(hash_text(h, t->link), kl_emu_driver_c), kl_emu_kiln_h);
    return kl_sprintf(a, "%s/driver-%s-%016llx.o", dir, t->name, (unsigned long long)h);
}

/* Copy `from` to `to` through a temporary file and rename, so that a concurrent check never
 * sees half an object. Failure is silent: the cache is only an optimisation. */
static void store(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) return;
    char *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            char *grown = realloc(data, cap = cap ? 2 * cap : 65536);
            if (!grown) break;
            data = grown;
        }
        size_t n = fread(data + size, 1, cap - size, f);
        if (n == 0) break;
        size += n;
    }
    bool complete = !ferror(f) && feof(f);
    fclose(f);
    kl_diag ignored;
    kl_diag_init(&ignored, to);
    if (complete && size > 0) kl_write_file_atomic(to, data, size, &ignored);
    kl_diag_free(&ignored);
    free(data);
}

bool kl_emu_compile_driver(kl_arena *a, kl_emulated *e, const char *cached, const char **object,
                           kl_diag *d) {
    static const char *const extra[] = {"-c", "driver.c", "-o", "driver.o", NULL};
    const char *log = kl_library_path(a, &e->lib, "driver.log");
    kl_emu_command c = {
        kl_sprintf(a, "compiling the test driver for target '%s'", e->target->name),
        e->target->link, extra, e->lib.dir, log, COMPILE_TIMEOUT_S};
    kl_emu_result r;
    if (!kl_emu_run_tool(a, &c, &r, d)) return false;
    if (!r.exited || r.status != 0)
        return kl_error(d, NULL, "%s failed (%s):\n%s", c.what, e->target->link,
                        kl_emu_log_tail(a, log));
    *object = kl_library_path(a, &e->lib, "driver.o");
    if (cached) store(*object, cached);
    return true;
}

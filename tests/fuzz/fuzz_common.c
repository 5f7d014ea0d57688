/*
 * fuzz_common.c — the private folder the fuzz targets compile in, and the error-contract oracle.
 *
 * Layout of the folder (made once per process with mkdtemp, removed at exit):
 *   ROOT/outside          a FIFO outside the model's folder: opening it blocks, so a loader
 *                         that ever reads outside its folder hangs and libFuzzer reports a
 *                         timeout with the input
 *   ROOT/model/           the model's folder (fuzz_path names files here)
 *     weights.bin         64 KiB of a byte pattern: external data that exists
 *     short.bin           3 bytes: a file shorter than most tensors
 *     sub/inner.bin       256 bytes one folder down
 *     escape.bin          a symlink to ../outside (out of the folder)
 *     pipe.bin            a FIFO inside the folder: not a regular file, must be refused unread
 * Harness state (this folder) is per process and test-only; the compiler has none.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];
static char model_dir[300];

static void write_pattern(const char *path, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    for (size_t i = 0; i < size; i++) fputc((int)((i * 131u + 7u) & 0xff), f);
    fclose(f);
}

static void remove_dir(void) {
    char cmd[400];
    if (!root[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", root);
}

static void make_dir(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/kiln-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) abort();
    atexit(remove_dir);
    snprintf(model_dir, sizeof model_dir, "%s/model", root);
    char path[400];
    snprintf(path, sizeof path, "%s/outside", root);
    if (mkdir(model_dir, 0700) != 0 || mkfifo(path, 0600) != 0) abort();
    snprintf(path, sizeof path, "%s/sub", model_dir);
    if (mkdir(path, 0700) != 0) abort();
    snprintf(path, sizeof path, "%s/sub/inner.bin", model_dir);
    write_pattern(path, 256);
    snprintf(path, sizeof path, "%s/weights.bin", model_dir);
    write_pattern(path, 65536);
    snprintf(path, sizeof path, "%s/short.bin", model_dir);
    write_pattern(path, 3);
    snprintf(path, sizeof path, "%s/escape.bin", model_dir);
    if (symlink("../outside", path) != 0) abort();
    snprintf(path, sizeof path, "%s/pipe.bin", model_dir);
    if (mkfifo(path, 0600) != 0) abort();
}

const char *fuzz_dir(void) {
    if (!model_dir[0]) make_dir();
    return model_dir;
}

const char *fuzz_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return path;
}

void fuzz_expect(bool ok, const kl_diag *d, const char *phase) {
    if (ok == !kl_diag_failed(d)) return;
    fprintf(stderr, "fuzz: %s %s but the diagnostics say %s\n%s", phase,
            ok ? "succeeded" : "failed", kl_diag_failed(d) ? "it failed:" : "nothing",
            d->text ? d->text : "");
    abort();
}

const kl_target *fuzz_target_for(const uint8_t *data, size_t size) {
    static const char *const names[] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    const kl_target *t = kl_target_find(names[h % 4]);
    return t ? t : kl_target_default();
}

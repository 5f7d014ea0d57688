/*
 * codegen/link.c — an object file into a shared library, for `kiln check` (which dlopens it)
 * and `--emit so`; and the objects of a model compiled in parts (codegen/llvm/parts.c) into
 * one relocatable object.
 *
 * The linker is spawned (posix_spawnp, no shell): $KILN_LD when set, else the first of
 * ld.lld-19, ld.lld and cc that exists. The objects kiln emits are self-contained and PIC, so
 * `-shared` is all they need (`-nostdlib` for a compiler driver, which would otherwise add
 * crt files and libc). The linker's own messages become part of the diagnostic.
 */
#ifndef _GNU_SOURCE /* posix_spawn file actions, environ under -std=c17 */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kl.h"

extern char **environ;

enum { MAX_LINKER_OUTPUT = 2000 };

/* A compiler driver (cc, gcc, clang-19, ...) rather than a bare linker. */
static bool is_driver(const char *ld) {
    const char *base = strrchr(ld, '/');
    base = base ? base + 1 : ld;
    return strstr(base, "cc") || strstr(base, "clang");
}

/* Run a linker with argv (argv[0] is the program). Returns -1 if it does not exist, else its
 * exit status (0 = success); `out` receives the start of what it printed. */
static int spawn_linker(const char *const *argv, char *out, size_t cap) {
    const char *ld = argv[0];
    int fds[2];
    if (pipe(fds) != 0)
        return snprintf(out, cap, "pipe: %s", strerror(errno)), 1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, ld, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        if (rc == ENOENT)
            return -1;
        snprintf(out, cap, "%s", strerror(rc));
        return 1;
    }
    size_t len = 0;
    char chunk[512];
    for (;;) {
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && len + 1 < cap; i++)
            out[len++] = chunk[i];
    }
    out[len] = 0;
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
    return 1;
}

static int run_linker(const char *ld, const char *obj, const char *so, char *out, size_t cap) {
    const char *argv[8];
    int n = 0;
    argv[n++] = ld;
    argv[n++] = "-shared";
    if (is_driver(ld))
        argv[n++] = "-nostdlib";
    argv[n++] = "-o";
    argv[n++] = so;
    argv[n++] = obj;
    argv[n] = NULL;
    return spawn_linker(argv, out, cap);
}

static void trim(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
}

/* x86-64: GNU ld, which OR-merges the objects' x86 ISA-level notes (lld drops them, and with
 * them glibc's refusal to start on a CPU that lacks the ISA). Every other target: lld, which
 * links relocatably for all of them (a host compiler driver knows one). */
static const char *const relocatable_x86_64[] = {"ld.bfd", NULL};
static const char *const relocatable_other[] = {"ld.lld-19", "ld.lld", NULL};

static bool on_path(const char *program) {
    const char *path = getenv("PATH");
    if (!path) return false;
    size_t n = strlen(program);
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *full = malloc(len + n + 2);
        if (!full) return false;
        snprintf(full, len + n + 2, "%.*s/%s", (int)len, p, program);
        bool found = access(full, X_OK) == 0;
        free(full);
        if (found) return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

const char *kl_relocatable_linker(const char *triple) {
    const char *const *ld = strncmp(triple, "x86_64", 6) ? relocatable_other : relocatable_x86_64;
    for (int i = 0; ld[i]; i++)
        if (on_path(ld[i])) return ld[i];
    return NULL;
}

bool kl_link_relocatable(const char *triple, const char *const *objs, int n_objs,
                         const char *out_path, kl_diag *d) {
    const char *ld = kl_relocatable_linker(triple);
    if (!ld) return kl_error(d, NULL, "no relocatable linker to join the parts of '%s'", out_path);
    const char **argv = calloc((size_t)n_objs + 5, sizeof *argv);
    if (!argv) return kl_error(d, NULL, "%s: out of memory", out_path);
    int n = 0;
    argv[n++] = ld;
    argv[n++] = "-r";
    argv[n++] = "-o";
    argv[n++] = out_path;
    for (int i = 0; i < n_objs; i++) argv[n++] = objs[i];
    argv[n] = NULL;
    char out[MAX_LINKER_OUTPUT];
    out[0] = 0;
    int status = spawn_linker(argv, out, sizeof out);
    free(argv);
    if (status == 0) return true;
    trim(out);
    return kl_error(d, NULL, "joining the parts of '%s' with %s failed%s%s", out_path, ld,
                    *out ? ": " : "", out);
}

bool kl_link_shared(const char *obj, const char *so, kl_diag *d) {
    const char *env = getenv("KILN_LD");
    const char *const defaults[] = {"ld.lld-19", "ld.lld", "cc", NULL};
    const char *const from_env[] = {env, NULL};
    const char *const *linkers = env && *env ? from_env : defaults;
    char out[MAX_LINKER_OUTPUT];
    for (int i = 0; linkers[i]; i++) {
        out[0] = 0;
        int status = run_linker(linkers[i], obj, so, out, sizeof out);
        if (status == 0)
            return true;
        if (status > 0) {
            trim(out);
            return kl_error(d, NULL, "linking '%s' into '%s' with %s failed%s%s", obj, so,
                            linkers[i], *out ? ": " : "", out);
        }
    }
    return kl_error(d, NULL, "no linker found for a shared library (tried %s; set KILN_LD)",
                    env && *env ? env : "ld.lld-19, ld.lld, cc");
}

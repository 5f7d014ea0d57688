/*
 * codegen/link.c — an object file into a shared library, for `kiln check` (which dlopens it)
 * and `--emit so`.
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

/* Run one linker. Returns -1 if it does not exist, else its exit status (0 = success);
 * `out` receives the start of what it printed. */
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
            size_t n = strlen(out);
            while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
                out[--n] = 0;
            return kl_error(d, NULL, "linking '%s' into '%s' with %s failed%s%s", obj, so,
                            linkers[i], *out ? ": " : "", out);
        }
    }
    return kl_error(d, NULL, "no linker found for a shared library (tried %s; set KILN_LD)",
                    env && *env ? env : "ld.lld-19, ld.lld, cc");
}

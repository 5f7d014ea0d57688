/*
 * emulate/process.c — run a tool (a cross compiler, an emulator) and wait for it, bounded.
 *
 * The command is a descriptor's string split on spaces plus the words the caller appends; it
 * is started with posix_spawnp (no shell, so nothing in a path is interpreted), in a given
 * folder, with stdin from /dev/null and stdout+stderr into a log file there. A program that
 * hangs (a bare-metal fault handler loops forever) is killed after `timeout_s`. The result is a
 * value: ran and exited with a status, or why it did not; the log's tail goes into the message
 * so a failing link or crash explains itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emulate.h"

extern char **environ;

enum { MAX_WORDS = 64, LOG_TAIL = 1200 };

/* words of `cmd` (split on spaces) followed by `extra` (NULL-terminated). */
static char **argv_of(kl_arena *a, const char *cmd, const char *const *extra) {
    char **argv = kl_alloc_array(a, MAX_WORDS + 1, sizeof *argv);
    int n = 0;
    char *copy = kl_strdup(a, cmd);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && n < MAX_WORDS;
         w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    for (int i = 0; extra && extra[i] && n < MAX_WORDS; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return argv;
}

/* The last LOG_TAIL bytes of the log, for a message. */
char *kl_emu_log_tail(kl_arena *a, const char *log_path) {
    FILE *f = fopen(log_path, "rb");
    if (!f) return "";
    char *buf = kl_alloc(a, LOG_TAIL + 1);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > LOG_TAIL ? size - LOG_TAIL : 0, SEEK_SET);
    size_t n = fread(buf, 1, LOG_TAIL, f);
    fclose(f);
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wait for pid; kill it after timeout_s. *status: its wait status; false on timeout. */
static bool wait_bounded(pid_t pid, double timeout_s, int *status) {
    double deadline = now_s() + timeout_s;
    struct timespec pause = {0, 2000000}; /* 2 ms: short runs return quickly */
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return true;
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return false;
        }
        nanosleep(&pause, NULL);
        if (pause.tv_nsec < 50000000) pause.tv_nsec *= 2;
    }
}

bool kl_emu_run_tool(kl_arena *a, const kl_emu_command *c, kl_emu_result *r, kl_diag *d) {
    memset(r, 0, sizeof *r);
    char **argv = argv_of(a, c->command, c->extra);
    if (!argv[0]) return kl_error(d, NULL, "%s: empty command", c->what);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, c->dir);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, c->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return kl_error(d, NULL, "%s: cannot run '%s': %s (scripts/setup.sh installs it)",
                        c->what, argv[0], strerror(err));
    int status = 0;
    if (!wait_bounded(pid, c->timeout_s, &status))
        return kl_error(d, NULL, "%s: '%s' did not finish within %.0f s (killed)%s%s", c->what,
                        argv[0], c->timeout_s, *kl_emu_log_tail(a, c->log) ? "; output:\n" : "",
                        kl_emu_log_tail(a, c->log));
    r->exited = WIFEXITED(status);
    r->status = r->exited ? WEXITSTATUS(status) : WTERMSIG(status);
    return true;
}

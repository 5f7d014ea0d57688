/*
 * phase.c — where a compilation spends its time and memory, phase by phase (`--stats`), and
 * what it is doing when it takes a while (progress on stderr).
 *
 * Peak memory per phase: Linux resets the process's high-water mark (VmHWM) when "5" is written
 * to /proc/self/clear_refs, so each phase starts from the memory in use and ends with its own
 * peak. Where that is not allowed, the figure is the peak so far (getrusage), which is still an
 * upper bound, and the report says so. Only when asked (--stats): a reset also resets what
 * getrusage and /usr/bin/time report as the process's peak.
 *
 * Progress: nothing for a compilation that ends within PROGRESS_AFTER seconds, or whose stderr
 * is not a terminal, so pipes and builds of small models stay quiet; --progress prints always.
 * On a terminal one line is rewritten in place; elsewhere each phase gets its own line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kl.h"

enum { PROGRESS_AFTER = 2 };

static bool reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static int64_t peak_so_far(void) {
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? (int64_t)u.ru_maxrss * 1024 : 0;
}

/* VmHWM, the peak since the last reset, in bytes (0 when unreadable). */
static int64_t peak_since_reset(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    int64_t kib = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kib = atoll(line + 6);
            break;
        }
    fclose(f);
    return kib * 1024;
}

void kl_phases_init(kl_phases *ph, kl_progress_mode mode, bool per_phase_peaks) {
    memset(ph, 0, sizeof *ph);
    ph->open = -1;
    ph->progress = mode;
    ph->terminal = isatty(STDERR_FILENO);
    ph->started = kl_now();
    ph->per_phase_peaks = per_phase_peaks && reset_peak();
}

static bool showing(const kl_phases *ph, double now) {
    if (ph->progress == KL_PROGRESS_NEVER) return false;
    if (ph->progress == KL_PROGRESS_ALWAYS) return true;
    return ph->terminal && now - ph->started >= PROGRESS_AFTER;
}

static void show(kl_phases *ph, const char *what, double now) {
    if (!showing(ph, now)) return;
    if (ph->terminal)
        fprintf(stderr, "\rkiln: %6.1f s  %-60.60s", now - ph->started, what);
    else
        fprintf(stderr, "kiln: %.1f s: %s\n", now - ph->started, what);
    ph->shown_on_terminal = ph->terminal;
}

static void close_open_phase(kl_phases *ph, double now) {
    if (ph->open < 0) return;
    kl_phase_stat *s = &ph->items[ph->open];
    s->seconds += now - ph->phase_started;
    int64_t peak = ph->per_phase_peaks ? peak_since_reset() : peak_so_far();
    if (peak > s->peak_bytes) s->peak_bytes = peak;
    ph->open = -1;
}

void kl_phase(kl_phases *ph, const char *name) {
    if (!ph) return;
    double now = kl_now();
    close_open_phase(ph, now);
    int i = 0;
    while (i < ph->n && strcmp(ph->items[i].name, name)) i++;
    if (i == ph->n) {
        if (ph->n == KL_MAX_PHASES) return;
        ph->items[ph->n++].name = name;
    }
    if (ph->per_phase_peaks) reset_peak();
    ph->open = i;
    ph->phase_started = now;
    show(ph, name, now);
}

void kl_phase_progress(kl_phases *ph, int done, int total) {
    if (!ph || ph->open < 0) return;
    double now = kl_now();
    if (now - ph->last_progress < 0.2 && done < total) return; /* a terminal line, not a flood */
    ph->last_progress = now;
    char what[96];
    snprintf(what, sizeof what, "%s %d/%d", ph->items[ph->open].name, done, total);
    if (ph->terminal) show(ph, what, now);
}

void kl_phases_end(kl_phases *ph) {
    if (!ph) return;
    double now = kl_now();
    close_open_phase(ph, now);
    ph->total_seconds = now - ph->started;
    /* Resetting the high-water mark resets getrusage's too: the run's peak is the largest
     * phase's. */
    ph->peak_bytes = peak_so_far();
    for (int i = 0; i < ph->n; i++)
        if (ph->items[i].peak_bytes > ph->peak_bytes) ph->peak_bytes = ph->items[i].peak_bytes;
    if (ph->shown_on_terminal) fputs("\r\033[K", stderr); /* leave the terminal as it was */
}

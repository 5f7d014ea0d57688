/*
 * emulate/emulate.c — check a model on a target the host cannot run: compile, link with the
 * generic driver, run under the target's emulator.
 *
 * kl_emulated_open compiles the model to an object in a private folder (library.c, so shapes
 * are bound exactly as for the host), writes the driver's source and kiln.h beside it (both
 * embedded in kiln, so an installed kiln needs no other files) and links the driver's object
 * (compiled once per toolchain and cached: driver_cache.c) with the model's, with the target's
 * toolchain (kl_target.link). kl_emulated_run writes one data set's inputs, runs the
 * program under the emulator (kl_target.run) in that folder and reads the outputs back. Nothing
 * built for the target is ever loaded into kiln's process. The emulator is bounded in time
 * (KILN_EMULATOR_TIMEOUT seconds, default 300): a bare-metal fault ends in an endless loop.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulate.h"
#include "kiln.h"

enum { LINK_TIMEOUT_S = 120, RUN_TIMEOUT_S = 300 };

static bool write_text(kl_arena *a, kl_library *lib, const char *file, const char *text,
                       kl_diag *d) {
    return kl_write_file_atomic(kl_library_path(a, lib, file), text, strlen(text), d);
}

static double run_timeout(void) {
    const char *s = getenv("KILN_EMULATOR_TIMEOUT");
    double t = s ? strtod(s, NULL) : 0;
    return t > 0 ? t : RUN_TIMEOUT_S;
}

/* Link `driver` (an object) with model.o; false without a diagnostic when the linker fails,
 * with its log's tail in *why. */
static bool link_with(kl_arena *a, kl_emulated *e, const char *driver, const char **why,
                      kl_diag *d) {
    const char *const extra[] = {driver, "model.o", "-o", "model.elf", NULL};
    const char *log = kl_library_path(a, &e->lib, "link.log");
    kl_emu_command c = {kl_sprintf(a, "linking the test driver for target '%s'", e->target->name),
                        e->target->link, extra, e->lib.dir, log, LINK_TIMEOUT_S};
    kl_emu_result r;
    *why = NULL;
    if (!kl_emu_run_tool(a, &c, &r, d)) return false;
    if (r.exited && r.status == 0) return true;
    *why = kl_sprintf(a, "%s failed (%s):\n%s", c.what, e->target->link, kl_emu_log_tail(a, log));
    return false;
}

/* The driver's object from the cache when there is one (driver_cache.c), else compiled here;
 * a cached object that does not link is dropped and the driver compiled afresh. */
static bool link_program(kl_arena *a, kl_emulated *e, kl_diag *d) {
    const char *cached = kl_emu_driver_cache_path(a, e->target), *driver = NULL, *why = NULL;
    bool linked = false;
    if (cached && access(cached, R_OK) == 0) {
        linked = link_with(a, e, cached, &why, d);
        if (!linked && !why) return false;
        if (!linked) unlink(cached);
    }
    if (!linked) {
        if (!kl_emu_compile_driver(a, e, cached, &driver, d)) return false;
        if (!link_with(a, e, driver, &why, d)) return why ? kl_error(d, NULL, "%s", why) : false;
    }
    e->program = kl_library_path(a, &e->lib, "model.elf");
    return true;
}

bool kl_emulated_open(kl_arena *a, const kl_library_opts *o, kl_emulated *e, kl_diag *d) {
    memset(e, 0, sizeof *e);
    e->target = o->target;
    if (!e->target || !kl_target_is_emulated(e->target) || !e->target->link)
        return kl_error(d, NULL, "target '%s' has no emulator to run it",
                        e->target ? e->target->name : "?");
    return kl_library_compile(a, o, KL_EMIT_OBJ, "model.o", &e->lib, d) &&
           write_text(a, &e->lib, "driver.c", kl_emu_driver_c, d) &&
           write_text(a, &e->lib, "kiln.h", kl_emu_kiln_h, d) && link_program(a, e, d);
}

bool kl_emulated_run(kl_arena *a, kl_emulated *e, const kl_ptrvec *inputs,
                     kl_emulated_result *res, kl_diag *d) {
    memset(res, 0, sizeof *res);
    const char *in = kl_library_path(a, &e->lib, "kiln-in.bin");
    const char *out = kl_library_path(a, &e->lib, "kiln-out.bin");
    const char *log = kl_library_path(a, &e->lib, "run.log");
    unlink(out);
    if (!kl_emu_write_inputs(in, inputs, d)) return false;
    static const char *const extra[] = {"./model.elf", NULL};
    kl_emu_command c = {kl_sprintf(a, "running the model for target '%s'", e->target->name),
                        e->target->run, extra, e->lib.dir, log, run_timeout()};
    kl_emu_result r;
    if (!kl_emu_run_tool(a, &c, &r, d)) return false;
    if (access(out, R_OK) != 0 || !r.exited || r.status != 0) {
        const char *why = !r.exited ? kl_sprintf(a, "was killed by signal %d", r.status)
                          : r.status ? kl_sprintf(a, "exited with status %d", r.status)
                                     : "wrote no output";
        return kl_error(d, NULL, "%s: the program %s (%s ./model.elf)%s%s", c.what, why,
                        e->target->run, *kl_emu_log_tail(a, log) ? "; output:\n" : "",
                        kl_emu_log_tail(a, log));
    }
    return kl_emu_read_outputs(a, out, res, d);
}

void kl_emulated_close(kl_emulated *e) {
    kl_library_close(&e->lib);
    memset(e, 0, sizeof *e);
}

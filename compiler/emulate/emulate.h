/*
 * emulate/emulate.h — the parts of emulate/ that talk to each other (the rest of kiln sees only
 * kl_emulated_* in kl.h).
 */
#ifndef KIL_EMULATE_H
#define KIL_EMULATE_H

#include "kl.h"

/* process.c — a tool run in a folder, bounded in time, output into a log */
typedef struct kl_emu_command {
    const char *what;          /* for messages: "linking the test driver" */
    const char *command;       /* a descriptor's command, split on spaces */
    const char *const *extra;  /* words appended, NULL-terminated */
    const char *dir;           /* run in this folder */
    const char *log;           /* stdout and stderr go here */
    double timeout_s;
} kl_emu_command;
typedef struct kl_emu_result {
    bool exited;               /* false: killed by a signal (status is its number) */
    int status;
} kl_emu_result;
bool kl_emu_run_tool(kl_arena *a, const kl_emu_command *c, kl_emu_result *r, kl_diag *d);
char *kl_emu_log_tail(kl_arena *a, const char *log_path);

/* driver_cache.c — the driver's object, compiled once per target toolchain (cache folder) */
/* Where the cached object for target `t` lives (it may not exist yet); NULL: no cache. */
const char *kl_emu_driver_cache_path(kl_arena *a, const kl_target *t);
/* Compile driver.c (already in e's folder) to driver.o there and store a copy at `cached`
 * (unless NULL); *object is the compiled file. */
bool kl_emu_compile_driver(kl_arena *a, kl_emulated *e, const char *cached, const char **object,
                           kl_diag *d);

/* files.c — the driver's input and output files (formats in driver.c) */
bool kl_emu_write_inputs(const char *path, const kl_ptrvec *values, kl_diag *d);
bool kl_emu_read_outputs(kl_arena *a, const char *path, kl_emulated_result *r, kl_diag *d);

/* generated from driver.c and runtime-min/kiln.h (scripts/embed_text.py) */
extern const char kl_emu_driver_c[];
extern const char kl_emu_kiln_h[];

#endif

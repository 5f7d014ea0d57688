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

/* files.c — the driver's input and output files (formats in driver.c) */
bool kl_emu_write_inputs(const char *path, const kl_ptrvec *values, kl_diag *d);
bool kl_emu_read_outputs(kl_arena *a, const char *path, kl_emulated_result *r, kl_diag *d);

/* generated from driver.c and runtime-min/kiln.h (scripts/embed_text.py) */
extern const char kl_emu_driver_c[];
extern const char kl_emu_kiln_h[];

#endif

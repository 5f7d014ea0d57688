/*
 * targets/targets.c — the list of target descriptors and lookup by name.
 *
 * Adding a target means adding one descriptor file and one line in kl_targets; the first entry
 * is the default (the host kiln is built for).
 */
#include <string.h>

#include "kl.h"

extern const kl_target kl_target_x86_64;

const kl_target *const kl_targets[] = {
    &kl_target_x86_64,
    NULL,
};

const kl_target *kl_target_find(const char *name) {
    for (int i = 0; kl_targets[i]; i++)
        if (name && strcmp(kl_targets[i]->name, name) == 0)
            return kl_targets[i];
    return NULL;
}

const kl_target *kl_target_default(void) { return kl_targets[0]; }

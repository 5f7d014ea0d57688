/*
 * fuzz_common.h — what the libFuzzer targets share (fuzz_model.c, fuzz_tensor.c,
 * fuzz_codegen.c).
 *
 * Every target feeds the fuzzer's bytes to the compiler through its in-memory entries
 * (kl_onnx_load_bytes, kl_onnx_load_tensor_bytes) under a made-up path inside a private folder,
 * so that external-data locations in the bytes resolve against files the harness laid out there
 * (a data file, a short one, a symlink out of the folder): the loader's confinement is fuzzed
 * too, and nothing outside the folder may ever be read.
 *
 * The oracle besides the sanitizers: errors travel as values, so a phase that fails must have
 * said why (a diagnostic), and one that succeeds must have said nothing. fuzz_expect aborts
 * (a crash libFuzzer reports with the input) when that contract breaks.
 */
#ifndef KIL_FUZZ_COMMON_H
#define KIL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "kl.h"

/* The private folder (made once per process, removed at exit) and "FOLDER/NAME" in it. */
const char *fuzz_dir(void);
const char *fuzz_path(const char *name);

/* Abort unless `ok` agrees with the diagnostics: failed <=> some error recorded. */
void fuzz_expect(bool ok, const kl_diag *d, const char *phase);

/* The target a fuzz input compiles for, chosen by a hash of its bytes among the x86-64 levels
 * (native is left out: what it finds would depend on the machine that ran it). */
const kl_target *fuzz_target_for(const uint8_t *data, size_t size);

#endif

/*
 * dataset.c — test data sets in the ONNX backend-test layout, for `kiln check` and `kiln bench`.
 *
 * A data set is a folder test_data_set_N holding input_K.pb and output_K.pb (serialized
 * TensorProtos, or SequenceProtos / OptionalProtos, which give the tensors they hold), inputs
 * in graph-input order and outputs in graph-output order. Sets beside a
 * model are listed in numeric order (so that set_10 follows set_9); tensors are numbered from 0
 * without gaps, and a gap is an error naming the folder rather than a silently shorter list.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dirent under -std=c17 */
#endif
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kl.h"

char *kl_path_dir(kl_arena *a, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return kl_strdup(a, ".");
    if (slash == path) return kl_strdup(a, "/");
    return kl_strndup(a, path, (size_t)(slash - path));
}

const char *kl_path_base(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "set_0/" names set_0 */
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    return p;
}

bool kl_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Sort test_data_set_N by N, falling back to the name. */
static int compare_data_sets(const void *x, const void *y) {
    const char *a = kl_path_base(*(const char *const *)x);
    const char *b = kl_path_base(*(const char *const *)y);
    const char *da = strrchr(a, '_'), *db = strrchr(b, '_');
    if (da && db) {
        long na = strtol(da + 1, NULL, 10), nb = strtol(db + 1, NULL, 10);
        if (na != nb) return na < nb ? -1 : 1;
    }
    return strcmp(a, b);
}

bool kl_dataset_find_beside(kl_arena *a, const char *model_path, kl_ptrvec *sets, kl_diag *d) {
    const char *dir = kl_path_dir(a, model_path);
    DIR *dp = opendir(dir);
    if (!dp) return kl_error(d, NULL, "cannot list folder '%s': %s", dir, strerror(errno));
    int first = sets->n;
    for (struct dirent *e; (e = readdir(dp));) {
        if (strncmp(e->d_name, "test_data_set_", 14) != 0) continue;
        char *path = kl_sprintf(a, "%s/%s", dir, e->d_name);
        if (kl_path_is_dir(path)) kl_ptrvec_push(a, sets, path);
    }
    closedir(dp);
    if (sets->n - first > 1)
        qsort(sets->items + first, (size_t)(sets->n - first), sizeof *sets->items,
              compare_data_sets);
    return true;
}

/* Count PREFIX_K.pb files in a folder (they must be numbered 0..n-1 without gaps). */
static bool count_tensor_files(kl_arena *a, const char *dir, const char *prefix, int *count,
                               kl_diag *d) {
    DIR *dp = opendir(dir);
    if (!dp) return kl_error(d, NULL, "cannot list data folder '%s': %s", dir, strerror(errno));
    size_t plen = strlen(prefix);
    int n = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        size_t len = strlen(e->d_name);
        if (len > plen + 4 && strncmp(e->d_name, prefix, plen) == 0 && e->d_name[plen] == '_' &&
            strcmp(e->d_name + len - 3, ".pb") == 0)
            n++;
    }
    closedir(dp);
    for (int k = 0; k < n; k++) {
        char *path = kl_sprintf(a, "%s/%s_%d.pb", dir, prefix, k);
        if (access(path, R_OK) != 0)
            return kl_error(d, NULL, "data folder '%s' has %d %s files but no readable %s_%d.pb",
                            dir, n, prefix, prefix, k);
    }
    *count = n;
    return true;
}

bool kl_dataset_load_structured(kl_arena *a, const char *dir, const char *prefix, kl_ptrvec *out,
                                kl_ptrvec *structure, kl_diag *d) {
    int n = 0;
    if (!count_tensor_files(a, dir, prefix, &n, d)) return false;
    for (int k = 0; k < n; k++) {
        char *path = kl_sprintf(a, "%s/%s_%d.pb", dir, prefix, k);
        if (!kl_onnx_load_data_file(a, path, out, structure, d)) /* its message names the file */
            return false;
    }
    return true;
}

bool kl_dataset_load(kl_arena *a, const char *dir, const char *prefix, kl_ptrvec *out,
                     kl_diag *d) {
    return kl_dataset_load_structured(a, dir, prefix, out, NULL, d);
}

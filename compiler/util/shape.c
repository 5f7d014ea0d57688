/*
 * shape.c — static shapes: element counts, numpy broadcasting, strides, printing.
 */
#include <string.h>

#include "kl.h"

int64_t kl_shape_numel(const kl_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

bool kl_shape_equal(const kl_shape *a, const kl_shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

int kl_shape_differing_dim(const kl_shape *a, const kl_shape *b) {
    if (a->rank != b->rank) return -1;
    int found = -1;
    for (int d = 0; d < a->rank; d++) {
        if (a->dim[d] == b->dim[d]) continue;
        if (found >= 0) return -1;
        found = d;
    }
    return found;
}

bool kl_shape_broadcast(const kl_shape *a, const kl_shape *b, kl_shape *out) {
    kl_shape r = {.rank = a->rank > b->rank ? a->rank : b->rank};
    for (int i = 0; i < r.rank; i++) {
        int ia = i - (r.rank - a->rank), ib = i - (r.rank - b->rank);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da == db || db == 1) r.dim[i] = da;
        else if (da == 1) r.dim[i] = db;
        else return false;
    }
    *out = r;
    return true;
}

void kl_shape_strides(const kl_shape *s, int64_t strides[KL_MAX_RANK]) {
    int64_t st = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        strides[i] = st;
        st *= s->dim[i];
    }
}

char *kl_shape_str(kl_arena *a, const kl_shape *s) {
    char buf[KL_MAX_RANK * 24 + 4];
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < s->rank; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    buf[n++] = ']';
    buf[n] = 0;
    return kl_strdup(a, buf);
}

bool kl_axis_normalize(int64_t axis, int rank, int *out) {
    if (axis < -rank || axis >= rank) return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

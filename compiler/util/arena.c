/*
 * arena.c — the compiler's only allocator.
 *
 * A compilation allocates many small objects (values, nodes, expressions) that all die together
 * when the compilation ends, so they come from chunks freed at once. Large requests (weights)
 * get a chunk of their own so the arena never wastes a big tail. Buffers that another allocator
 * made (the weights protobuf-c decoded) can be handed over instead of copied: a model's
 * weights are then held once, not twice.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kl.h"

#define CHUNK_BYTES (1u << 20)
#define ALIGN 64

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    bool own;            /* one large request's own chunk (kl_arena_release may free it) */
    _Alignas(ALIGN) unsigned char data[];
} chunk;

/* A malloc'd block the arena owns (kl_arena_adopt); the records live in the arena itself. */
typedef struct adopted {
    struct adopted *next;
    void *block;         /* NULL once released */
    size_t size;
} adopted;

struct kl_arena {
    chunk *head;
    adopted *adopted;
};

static chunk *chunk_new(size_t size) {
    chunk *c = aligned_alloc(ALIGN, (sizeof(chunk) + size + ALIGN - 1) / ALIGN * ALIGN);
    if (!c) {
        /* Compile-time out-of-memory is the one failure with no diagnostic path: the whole
         * process is short of memory, and continuing would only corrupt results. */
        fputs("kiln: out of memory\n", stderr);
        abort();
    }
    c->next = NULL;
    c->used = 0;
    c->size = size;
    c->own = false;
    return c;
}

kl_arena *kl_arena_new(void) {
    kl_arena *a = calloc(1, sizeof *a);
    if (!a) {
        fputs("kiln: out of memory\n", stderr);
        abort();
    }
    return a;
}

void kl_arena_free(kl_arena *a) {
    if (!a) return;
    for (adopted *o = a->adopted; o; o = o->next)
        free(o->block);
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *kl_alloc(kl_arena *a, size_t bytes) {
    size_t need = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (need == 0) need = ALIGN;
    if (need > CHUNK_BYTES / 4) {
        /* big block: own chunk, linked behind the head so the head keeps serving small ones */
        chunk *c = chunk_new(need);
        c->used = need;
        c->own = true;
        if (a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            a->head = c;
        }
        memset(c->data, 0, need);
        return c->data;
    }
    if (!a->head || a->head->size - a->head->used < need) {
        chunk *c = chunk_new(CHUNK_BYTES);
        c->next = a->head;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += need;
    memset(p, 0, need);
    return p;
}

void kl_arena_adopt(kl_arena *a, void *block, size_t size) {
    if (!block) return;
    adopted *o = kl_alloc(a, sizeof *o);
    o->block = block;
    o->size = size;
    o->next = a->adopted;
    a->adopted = o;
}

size_t kl_arena_block_size(kl_arena *a, const void *p) {
    if (!p) return 0;
    for (chunk *c = a->head; c; c = c->next)
        if (c->own && (const void *)c->data == p) return c->size;
    for (adopted *o = a->adopted; o; o = o->next)
        if (o->block == p) return o->size;
    return 0;
}

void kl_arena_release(kl_arena *a, const void *p) {
    if (!p) return;
    for (chunk **link = &a->head; *link; link = &(*link)->next)
        if ((*link)->own && (const void *)(*link)->data == p) {
            chunk *c = *link;
            *link = c->next;
            free(c);
            return;
        }
    for (adopted *o = a->adopted; o; o = o->next)
        if (o->block == p) {
            free(o->block);
            o->block = NULL;
            return;
        }
}

void *kl_alloc_array(kl_arena *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        fputs("kiln: allocation size overflow\n", stderr);
        abort();
    }
    return kl_alloc(a, n * size);
}

char *kl_strndup(kl_arena *a, const char *s, size_t n) {
    char *p = kl_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *kl_strdup(kl_arena *a, const char *s) {
    return s ? kl_strndup(a, s, strlen(s)) : NULL;
}

char *kl_sprintf(kl_arena *a, const char *fmt, ...) {
    /* Most messages and names fit a small buffer: format once there, and only when they don't,
     * again into an arena block of the measured size. */
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *p;
    if ((size_t)n < sizeof small) {
        p = kl_strndup(a, small, (size_t)n);
    } else {
        p = kl_alloc(a, (size_t)n + 1);
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    return p;
}

void kl_ptrvec_push(kl_arena *a, kl_ptrvec *v, void *item) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        void **items = kl_alloc_array(a, (size_t)cap, sizeof *items);
        if (v->n) memcpy(items, v->items, (size_t)v->n * sizeof *items);
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = item;
}

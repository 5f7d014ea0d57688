/*
 * mem.c — memcpy and memset for a program without a C library.
 *
 * A kiln object may call them for block copies and fills (LLVM forms them; `nm -u` lists them),
 * and this firmware links no libc. Byte loops are enough for the few copies a model makes.
 */
#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

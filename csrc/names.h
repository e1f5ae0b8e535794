/* A provider's field names, handed over by its Lua module as data: the C
 * core knows no provider's field names (the design's rule), so a pass that
 * reads some is given them once, in a plan. Each name is kept once, found
 * by a hash of its length and its ends (open addressing). The strings are
 * Lua strings that the plan holding the set keeps alive (its uservalue). */
#ifndef LUAPAY_NAMES_H
#define LUAPAY_NAMES_H

#include <stddef.h>
#include <string.h>

#include "core.h"

#define LUAPAY_NAMES_MAX 48
#define LUAPAY_NAMES_SLOTS 128 /* a power of two over twice the most names: a probe ends at an empty slot */

typedef struct {
    const char *s;
    size_t n;
} luapay_text;

typedef struct {
    luapay_text name[LUAPAY_NAMES_MAX];
    int count;
    unsigned char slot[LUAPAY_NAMES_SLOTS]; /* a name's index + 1; 0: empty */
} luapay_names;

static inline int luapay_text_eq(const char *s, size_t n, luapay_text t) {
    return n == t.n && memcmp(s, t.s, n) == 0;
}

static inline unsigned luapay_names_hash(const char *k, size_t n) {
    return (unsigned)(n * 37 + (unsigned char)k[0] * 5 + (unsigned char)k[n - 1]) & (LUAPAY_NAMES_SLOTS - 1);
}

/* The index of the name k (n bytes) in the set, or -1. */
static inline int luapay_names_find(const luapay_names *set, const char *k, size_t n) {
    if (n == 0) return -1;
    for (unsigned h = luapay_names_hash(k, n);; h = (h + 1) & (LUAPAY_NAMES_SLOTS - 1)) {
        int i = set->slot[h] - 1;
        if (i < 0 || luapay_text_eq(k, n, set->name[i])) return i;
    }
}

/* names.c: the index of the string on top, added when new (and kept at
 * index + 1 in the table at keep); pops it. fn's argument error (at arg,
 * named what) for anything but a non-empty string without a byte 0 (a
 * pass may set a field by its C string), or one name too many. */
int luapay_names_take(lua_State *L, luapay_names *set, int keep, const char *fn, int arg, const char *what);

#endif

/* Where a walk over a Lua tree is, for error messages: a chain of frames on
 * the C stack (json_encode.c, trustly.c), e.g. "Attributes.Names[2]". Each
 * frame also holds its table, so a walker can tell a cycle from deep data. */
#include <stdio.h>

#include "core.h"

void luapay_path_describe(const luapay_frame *f, char *dst, size_t cap) {
    const luapay_frame *chain[LUAPAY_PATH_MAX];
    int n = 0;
    for (; f != NULL && n < LUAPAY_PATH_MAX; f = f->up) chain[n++] = f;
    size_t len = 0;
    dst[0] = '\0';
    for (int i = n - 1; i >= 0 && len + 1 < cap; i--) {
        int w;
        if (chain[i]->key != NULL) {
            int klen = chain[i]->klen > 64 ? 64 : (int)chain[i]->klen;
            w = snprintf(dst + len, cap - len, "%s%.*s", len ? "." : "", klen, chain[i]->key);
        } else {
            w = snprintf(dst + len, cap - len, "[%zu]", chain[i]->index);
        }
        if (w < 0) break;
        len += (size_t)w;
        if (len >= cap) len = cap - 1;
    }
}

int luapay_path_has_table(const luapay_frame *f, const void *table) {
    for (; f != NULL; f = f->up)
        if (f->table == table) return 1;
    return 0;
}

/* Differential test of the pattern fast path (csrc/pattern.c) against
 * regexec: random patterns from a palette of fast-path shapes and near
 * misses, random strings; prints each disagreement. `make test` runs it (scripts/test.sh).
 *
 *   cc -O1 -g -fsanitize=address,undefined -D_GNU_SOURCE -Icsrc $(pkg-config --cflags lua5.4) \
 *      fuzz/pattern_diff.c csrc/pattern.c -o /tmp/pattern_diff && /tmp/pattern_diff 300000 [locale]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checks.h"

static const char palette[] = "^$[]-abcAZ09{},12?*+.()|\\:= !~^_";
static unsigned long long rng = 88172645463325252ULL;
static unsigned rnd(unsigned n) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (unsigned)(rng % n); }

static void gen_pattern(char *out, size_t cap) {
    size_t n = 0;
    out[n++] = '^';
    int atoms = 1 + rnd(5);
    for (int k = 0; k < atoms && n + 20 < cap; k++) {
        int kind = rnd(10);
        if (kind < 4) {
            out[n++] = '[';
            int m = rnd(5);
            for (int j = 0; j < m; j++) {
                int r = rnd(8);
                if (r < 5) out[n++] = "abcAZ09-]^$.*"[rnd(13)];
                else if (r < 7) { out[n++] = "a0A!"[rnd(4)]; out[n++] = '-'; out[n++] = "cz9Z-~"[rnd(6)]; }
                else out[n++] = palette[rnd(sizeof palette - 1)];
            }
            out[n++] = ']';
        } else if (kind < 9) {
            out[n++] = "abc09AZ-_:= !~"[rnd(14)];
        } else {
            out[n++] = palette[rnd(sizeof palette - 1)];
        }
        int q = rnd(8);
        if (q == 0) out[n++] = "?*+"[rnd(3)];
        else if (q == 1) { n += (size_t)sprintf(out + n, "{%u}", rnd(4)); }
        else if (q == 2) { n += (size_t)sprintf(out + n, "{%u,}", rnd(3)); }
        else if (q == 3) { unsigned a = rnd(3); n += (size_t)sprintf(out + n, "{%u,%u}", a, a + rnd(3)); }
        else if (q == 4 && rnd(4) == 0) out[n++] = palette[rnd(sizeof palette - 1)];
    }
    if (rnd(10)) out[n++] = '$';
    out[n] = 0;
}

static const char inchars[] = "abcAZ09-]^$.*_:= !~\n[{}B1\xc3\xa9\xff\x80";
#include <locale.h>
int main(int argc, char **argv) {
    if (argc > 2) printf("locale %s\n", setlocale(LC_ALL, argv[2]));
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    long fastpats = 0, cmp = 0, bad = 0;
    for (long it = 0; it < iters; it++) {
        char src[256];
        gen_pattern(src, sizeof src);
        luapay_pattern p; memset(&p, 0, sizeof p);
        char err[128];
        if (luapay_pattern_compile(&p, src, err, sizeof err) != 0) continue;
        if (p.natoms >= 0) fastpats++;
        if (p.natoms >= 0) for (int t = 0; t < 60; t++) {
            char s[300]; size_t n = rnd(t < 50 ? 8 : 270);
            for (size_t i = 0; i < n; i++) s[i] = inchars[rnd(sizeof inchars - 1)];
            s[n] = 0;
            int a = luapay_pattern_match(&p, s, n);
            locale_t saved = uselocale(p.c_locale); /* as luapay_pattern_match runs it */
            int b = regexec(&p.re, s, 0, NULL, 0) == 0;
            uselocale(saved);
            cmp++;
            if (a != b) { if (bad++ < 30) printf("DISAGREE pat=%s str=\"%s\" fast=%d regexec=%d natoms=%d linear=%d\n", src, s, a, b, p.natoms, p.linear); break; }
        }
        luapay_pattern_free(&p);
    }
    printf("fast patterns %ld, comparisons %ld, disagreements %ld\n", fastpats, cmp, bad);
    return bad != 0;
}

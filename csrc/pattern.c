/* POSIX extended regular expressions for field patterns, compiled once.
 *
 * regcomp and regexec follow the calling thread's locale: in en_US.UTF-8
 * glibc's [0-9] also matches Arabic-Indic digits and [A-Z] matches 'Å'
 * (ranges follow the collation order). A field pattern must not change its
 * meaning with the host process's setlocale, so both run in the C locale,
 * switched in for the call with uselocale: bytes and ASCII ranges.
 *
 * regcomp/regexec is the authority, but glibc's regexec costs about as much
 * as a whole request's other checks. Most payment patterns have one shape,
 * an anchored run of single-character atoms: ^AT[0-9]{18}$, ^[0-9]{4,5}$.
 * Those also compile to a tiny program (a byte set and a repeat range per
 * atom) answered by a reachable-positions scan; anything else (groups,
 * alternation, '.', negated or multibyte brackets, character classes, back
 * references, unanchored patterns) goes to regexec. The program only takes
 * ASCII sets, so it agrees with regexec in the C locale. */
#include <stdio.h>
#include <string.h>

#include "checks.h"

#define UNBOUNDED 0xFFFF
#define FAST_MAX_INPUT 256 /* longer input goes to regexec */

static void set_bit(luapay_pat_atom *a, unsigned char c) {
    a->set[c >> 3] = (unsigned char)(a->set[c >> 3] | (1u << (c & 7)));
}

static int has_bit(const luapay_pat_atom *a, unsigned char c) {
    return (a->set[c >> 3] >> (c & 7)) & 1;
}

static int is_plain_literal(unsigned char c) {
    return c > 0x20 && c < 0x7F && strchr(".[]()*+?{}|^$\\", c) == NULL;
}

/* Parses "{m}", "{m,}", "{m,n}" at *pp; 0 if it is not one of those. */
static int parse_braces(const char **pp, const char *end, unsigned *min, unsigned *max) {
    const char *p = *pp + 1;
    unsigned m = 0, n;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && m < 10000) m = m * 10 + (unsigned)(*p++ - '0'), digits++;
    if (!digits) return 0;
    if (p < end && *p == '}') {
        n = m;
    } else if (p < end && *p == ',') {
        p++;
        if (p < end && *p == '}') {
            n = UNBOUNDED;
        } else {
            n = 0, digits = 0;
            while (p < end && *p >= '0' && *p <= '9' && n < 10000) n = n * 10 + (unsigned)(*p++ - '0'), digits++;
            if (!digits || p >= end || *p != '}') return 0;
        }
    } else {
        return 0;
    }
    if (m > 255 || (n != UNBOUNDED && (n > 255 || n < m))) return 0;
    *min = m;
    *max = n;
    *pp = p + 1;
    return 1;
}

/* Parses a bracket expression without negation, classes or non-ASCII. */
static int parse_bracket(const char **pp, const char *end, luapay_pat_atom *a) {
    const char *p = *pp + 1;
    int first = 1;
    if (p < end && *p == '^') return 0;
    for (;;) {
        if (p >= end) return 0;
        unsigned char c = (unsigned char)*p;
        if (c == ']' && !first) break;
        if (c == '[' || c == '\\' || c < 0x20 || c >= 0x7F) return 0;
        if (p + 2 < end && p[1] == '-' && p[2] != ']') {
            unsigned char hi = (unsigned char)p[2];
            if (hi == '[' || hi == '\\' || hi < c || hi >= 0x7F) return 0;
            for (unsigned x = c; x <= hi; x++) set_bit(a, (unsigned char)x);
            p += 3;
        } else {
            set_bit(a, c);
            p++;
        }
        first = 0;
    }
    *pp = p + 1;
    return 1;
}

/* Builds the fast program; natoms stays -1 when the pattern has another shape. */
static void compile_fast(luapay_pattern *pat, const char *src) {
    size_t n = strlen(src);
    pat->natoms = -1;
    if (n < 2 || src[0] != '^' || src[n - 1] != '$') return;
    const char *p = src + 1, *end = src + n - 1;
    int natoms = 0;
    size_t max_len = 0;
    while (p < end) {
        if (natoms == LUAPAY_PAT_MAX_ATOMS) return;
        luapay_pat_atom *a = &pat->atoms[natoms];
        memset(a, 0, sizeof *a);
        if (*p == '[') {
            if (!parse_bracket(&p, end, a)) return;
        } else if (is_plain_literal((unsigned char)*p)) {
            set_bit(a, (unsigned char)*p++);
        } else {
            return;
        }
        unsigned min = 1, max = 1;
        if (p < end) {
            if (*p == '{') {
                if (!parse_braces(&p, end, &min, &max)) return;
            } else if (*p == '?' || *p == '*' || *p == '+') {
                min = *p == '+';
                max = *p == '?' ? 1 : UNBOUNDED;
                p++;
            }
        }
        if (p < end && strchr("{?*+", *p) != NULL) return; /* stacked repeats */
        a->min = (unsigned short)min;
        a->max = (unsigned short)max;
        max_len = max == UNBOUNDED || max_len == SIZE_MAX ? SIZE_MAX : max_len + max;
        natoms++;
    }
    pat->max_len = max_len;
    pat->natoms = natoms;
    pat->linear = 1;
    for (int k = 0; k + 1 < natoms; k++)
        if (pat->atoms[k].min != pat->atoms[k].max) pat->linear = 0;
}

int luapay_pattern_compile(luapay_pattern *p, const char *source, char *err, size_t errlen) {
    p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (p->c_locale == (locale_t)0) {
        snprintf(err, errlen, "out of memory (the C locale)");
        return REG_ESPACE;
    }
    locale_t saved = uselocale(p->c_locale);
    int rc = regcomp(&p->re, source, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) regerror(rc, &p->re, err, errlen);
    uselocale(saved);
    if (rc != 0) {
        freelocale(p->c_locale);
        p->c_locale = (locale_t)0;
        return rc;
    }
    p->compiled = 1;
    p->source = source;
    compile_fast(p, source);
    return 0;
}

/* Every atom but the last repeats a fixed number of times: one pass. */
static int linear_match(const luapay_pattern *p, const unsigned char *s, size_t n) {
    size_t pos = 0;
    for (int k = 0; k < p->natoms; k++) {
        const luapay_pat_atom *a = &p->atoms[k];
        size_t count = a->min;
        if (k == p->natoms - 1) {
            count = n - pos;
            if (n < pos || count < a->min || (a->max != UNBOUNDED && count > a->max)) return 0;
        }
        if (n - pos < count) return 0;
        for (size_t end = pos + count; pos < end; pos++)
            if (!has_bit(a, s[pos])) return 0;
    }
    return pos == n;
}

/* The set of input positions the atoms so far can end at, one atom at a time. */
static int fast_match(const luapay_pattern *p, const unsigned char *s, size_t n) {
    unsigned char reach[FAST_MAX_INPUT + 1], next[FAST_MAX_INPUT + 1];
    memset(reach, 0, n + 1);
    reach[0] = 1;
    size_t lo = 0, hi = 0; /* bounds of the reachable positions */
    for (int k = 0; k < p->natoms; k++) {
        const luapay_pat_atom *a = &p->atoms[k];
        size_t nlo = SIZE_MAX, nhi = 0;
        memset(next + lo, 0, n + 1 - lo);
        for (size_t pos = lo; pos <= hi; pos++) {
            if (!reach[pos]) continue;
            size_t j = 0;
            for (;;) {
                if (j >= a->min) {
                    next[pos + j] = 1;
                    if (pos + j < nlo) nlo = pos + j;
                    if (pos + j > nhi) nhi = pos + j;
                }
                if (j == a->max || pos + j >= n || !has_bit(a, s[pos + j])) break;
                j++;
            }
        }
        if (nlo == SIZE_MAX) return 0;
        memcpy(reach + nlo, next + nlo, nhi - nlo + 1);
        memset(reach, 0, nlo);
        lo = nlo, hi = nhi;
    }
    return hi == n && reach[n];
}

/* s must be NUL-terminated at n (Lua strings are). A string with an embedded
 * NUL never matches: regexec would see only the part before it. */
int luapay_pattern_match(const luapay_pattern *p, const char *s, size_t n) {
    if (p->natoms >= 0) {
        if (n > p->max_len) return 0;
        if (p->linear) return linear_match(p, (const unsigned char *)s, n); /* NUL is in no set */
        if (n <= FAST_MAX_INPUT) return memchr(s, 0, n) == NULL && fast_match(p, (const unsigned char *)s, n);
    }
    if (memchr(s, 0, n) != NULL) return 0;
    locale_t saved = uselocale(p->c_locale);
    int rc = regexec(&p->re, s, 0, NULL, 0);
    uselocale(saved);
    return rc == 0;
}

void luapay_pattern_free(luapay_pattern *p) {
    if (p->compiled) regfree(&p->re);
    p->compiled = 0;
    if (p->c_locale != (locale_t)0) freelocale(p->c_locale);
    p->c_locale = (locale_t)0;
}

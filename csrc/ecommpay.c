/* The ecommpay canonical string: what ecommpay signs with HMAC-SHA512 in Gate
 * requests, Payment Page URLs and callbacks (the reference is the PHP SDK,
 * SignatureHandler::getParamsToSign + Callback::removeParam).
 *
 *   core.ecommpay_canonical(params [, opts]) -> string | nil, err
 *     opts.callback = true: every key named "signature" is left out at any
 *     depth unless its value is null (as ecommpay's Callback does before
 *     checking a callback)
 *   core.ecommpay_signature(params, secret [, opts]) -> base64 | nil, err
 *     base64(HMAC-SHA512(secret, the canonical string)) in one call
 *   core.ecommpay_sign(params, secret) -> base64 | nil, err | false
 *     the same, false for arguments that are not a table and a non-empty
 *     string (ecommpay.signature then says which)
 *
 * 1. Flatten to "path:value": object keys (':' inside a key doubled) and
 *    0-based array indexes joined by ':'. A key named "frame_mode" is skipped
 *    at any depth; empty objects and arrays give nothing, not even the key.
 *    Tables with keys 1..n are arrays, tables with string keys objects (an
 *    empty one is either); anything else is an error, not a guess.
 * 2. Values: strings verbatim; true/false as 1/0; null (core.null ==
 *    cjson.null) as empty, key kept; numbers as PHP's (string) renders them
 *    (below); number objects (core.json_decode's lexemes, core.number_mt)
 *    from their text.
 * 3. Sort by path as PHP's ksort(SORT_NATURAL) does (strnatcmp_ex, case
 *    sensitive); join the entries with ';'.
 *
 * Numbers, as PHP's (string) renders them. Lua 5.4 integers in plain decimal;
 * Lua 5.4 floats as PHP's (string)$float with precision 14 (zend_gcvt: "1",
 * "0.3", "1.0E+14", "1.5E-7", "-0"). Under LuaJIT a double cannot be told
 * from an integer: an integral one within +-2^53 is written as an integer,
 * any other as a PHP float. A number object's text is read as PHP's
 * json_decode reads it: an integer text is used as written (any length:
 * 2^63-1 and beyond, also under LuaJIT; "-0" is 0), a float text ("1.0",
 * "1e15", "-0.0") is the double it denotes, rendered as a PHP float. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define MAX_DEPTH 64

typedef struct {
    size_t path, path_len, value, value_len; /* offsets into data */
    size_t seq;                              /* the walk's order */
} entry_off;

typedef struct {
    const char *path, *value;
    size_t path_len, value_len, seq;
} entry;

/* Entries are recorded as offsets while the data buffer may still move, then
 * turned into pointers in place for the sort. */
typedef union {
    entry_off off;
    entry ptr;
} record;

/* Where the entries go and how members are placed. */
typedef struct {
    luapay_buf *data;    /* per entry: path bytes, a NUL (strnatcmp reads one past the end), value; keys */
    luapay_buf *entries; /* records, in walk order, then placed */
    luapay_buf *members; /* the members of the objects open */
    luapay_buf *tmp;
    int in_reach; /* 0: some key is out of reach; sort every path */
} placer;

typedef struct {
    lua_State *L;
    int callback;    /* drop "signature" keys */
    int number_mt;   /* stack index of core.number_mt */
    luapay_buf *key; /* the current path, grown and cut back while walking */
    placer p;
    const char *err;     /* static text */
    char errpath[160];   /* where, for the message (keys only, never values) */
} walker;

/* ---------------------------------------------------------------------
 * PHP's (string)$float, precision 14
 * ------------------------------------------------------------------- */

/* zend_gcvt(value, 14, '.', 'E') for a finite, non-zero double. printf's %.13e
 * rounds the exact binary value to 14 significant digits, half to even, as
 * zend_dtoa's mode 2 does. */
static size_t php_double(double v, char *out) {
    char tmp[48], digits[16];
    char *o = out;
    snprintf(tmp, sizeof tmp, "%.13e", fabs(v)); /* d.ddddddddddddde[+-]XX */
    size_t nd = 0;
    digits[nd++] = tmp[0];
    for (int i = 2; i < 15; i++) digits[nd++] = tmp[i];
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int decpt = atoi(tmp + 16) + 1; /* value = 0.DIGITS x 10^decpt */
    if (v < 0) *o++ = '-';
    if (decpt < 0 ? decpt < -3 : decpt > 14) { /* exponential: 1.0E+20, 1.5E-7 */
        int e = decpt - 1;
        *o++ = digits[0];
        *o++ = '.';
        if (nd == 1) *o++ = '0';
        for (size_t i = 1; i < nd; i++) *o++ = digits[i];
        *o++ = 'E';
        *o++ = e < 0 ? '-' : '+';
        o += sprintf(o, "%d", e < 0 ? -e : e);
    } else if (decpt <= 0) { /* 0.0001 */
        *o++ = '0';
        *o++ = '.';
        for (int i = decpt; i < 0; i++) *o++ = '0';
        for (size_t i = 0; i < nd; i++) *o++ = digits[i];
    } else { /* 123.45, 1200 */
        for (int i = 0; i < decpt; i++) *o++ = (size_t)i < nd ? digits[i] : '0';
        if ((size_t)decpt < nd) {
            *o++ = '.';
            for (size_t i = (size_t)decpt; i < nd; i++) *o++ = digits[i];
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

/* A PHP float (a Lua 5.4 float, a float text): (string)$float exactly, so
 * 1.0E+14 and up in exponent form and -0.0 as "-0". */
static size_t php_float(double v, char *out) {
    if (v == 0) return (size_t)sprintf(out, signbit(v) ? "-0" : "0");
    return php_double(v, out);
}

/* A Lua number that is not a Lua 5.4 integer; out has room for 64 bytes. 0
 * for NaN and infinities. Lua 5.4 floats are PHP floats. Under LuaJIT every
 * number is a double and an integer cannot be told from a float: an integral
 * one within +-2^53 is taken for the integer it holds (-0.0 too). */
static size_t render_double(double v, char *out) {
    if (!isfinite(v)) return 0;
#if LUA_VERSION_NUM < 503
    if (v == floor(v) && fabs(v) <= LUAPAY_TWO_POW_53) return luapay_integer_text((long long)v, out); /* exact; -0.0 is 0 */
#endif
    return php_float(v, out);
}

static size_t digits_at(const char *s, size_t i, size_t n) {
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    return i;
}

/* A number object's text (checked JSON number syntax) into b, as PHP's
 * json_decode reads it: an integer text is an integer, written as it is
 * ("-0" is 0); a float text is the double it denotes, rendered as a PHP float
 * (1.0 -> 1, 1e14 -> 1.0E+14, -0.0 -> -0). 0 if it is not a JSON number. */
static int render_lexeme(luapay_buf *b, const char *s, size_t n) {
    size_t int_start = n && s[0] == '-', i = digits_at(s, int_start, n), int_end = i;
    int is_float = 0;
    if (i < n && s[i] == '.') {
        size_t f = i + 1;
        i = digits_at(s, f, n);
        if (i == f) i = n + 1; /* "1." */
        is_float = 1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i + 1 + (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-'));
        i = digits_at(s, e, n);
        if (i == e) i = n + 1; /* "1e" */
        is_float = 1;
    }
    if (int_end == int_start || i != n) return 0; /* the caller says so */
    if (!is_float) {
        if (int_end - int_start == 1 && s[int_start] == '0') return luapay_buf_add(b, "0", 1);
        return luapay_buf_add(b, s, n);
    }
    /* The text is NUL-terminated: it is a Lua string. */
    double v = strtod(s, NULL);
    char out[64];
    if (isinf(v)) return luapay_buf_add(b, v < 0 ? "-INF" : "INF", v < 0 ? 4 : 3);
    size_t len = php_float(v, out);
    return luapay_buf_add(b, out, len);
}

/* ---------------------------------------------------------------------
 * PHP's strnatcmp_ex (ext/standard/strnatcmp.c), case sensitive. Both
 * strings are followed by a NUL byte, which it may read (as PHP reads the
 * zend_string terminator).
 * ------------------------------------------------------------------- */

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Right-aligned digit runs: the longer run wins, else the first difference. */
static int compare_right(const char **a, const char *aend, const char **b, const char *bend) {
    int bias = 0;
    for (;; (*a)++, (*b)++) {
        int da = *a < aend && is_digit((unsigned char)**a), db = *b < bend && is_digit((unsigned char)**b);
        if (!da && !db) return bias;
        if (!da) return -1;
        if (!db) return +1;
        if (**a < **b) {
            if (!bias) bias = -1;
        } else if (**a > **b) {
            if (!bias) bias = +1;
        }
    }
}

/* Left-aligned (fractional) digit runs: the first difference wins. */
static int compare_left(const char **a, const char *aend, const char **b, const char *bend) {
    for (;; (*a)++, (*b)++) {
        int da = *a < aend && is_digit((unsigned char)**a), db = *b < bend && is_digit((unsigned char)**b);
        if (!da && !db) return 0;
        if (!da) return -1;
        if (!db) return +1;
        if (**a < **b) return -1;
        if (**a > **b) return +1;
    }
}

static int strnatcmp_php(const char *a, size_t a_len, const char *b, size_t b_len, int leading) {
    const char *ap = a, *bp = b, *aend = a + a_len, *bend = b + b_len;
    if (a_len == 0 || b_len == 0) return a_len == b_len ? 0 : (a_len > b_len ? 1 : -1);
    for (;;) {
        unsigned char ca = (unsigned char)*ap, cb = (unsigned char)*bp;
        while (leading && ca == '0' && ap + 1 < aend && is_digit((unsigned char)ap[1])) ca = (unsigned char)*++ap;
        while (leading && cb == '0' && bp + 1 < bend && is_digit((unsigned char)bp[1])) cb = (unsigned char)*++bp;
        leading = 0;
        while (is_space(ca)) ca = (unsigned char)*++ap;
        while (is_space(cb)) cb = (unsigned char)*++bp;
        if (is_digit(ca) && is_digit(cb)) {
            int fractional = ca == '0' || cb == '0';
            int result = fractional ? compare_left(&ap, aend, &bp, bend) : compare_right(&ap, aend, &bp, bend);
            if (result != 0) return result;
            if (ap == aend && bp == bend) return 0;
            if (ap == aend) return -1;
            if (bp == bend) return 1;
            ca = (unsigned char)*ap;
            cb = (unsigned char)*bp;
        }
        if (ca < cb) return -1;
        if (ca > cb) return +1;
        ++ap;
        ++bp;
        if (ap >= aend && bp >= bend) return 0;
        if (ap >= aend) return -1;
        if (bp >= bend) return 1;
    }
}

/* The same order, faster. Both strings are walked in lockstep through their
 * common prefix, so strnatcmp only needs to start where the runs of digits
 * and spaces around the first difference start: it is at the top of its loop
 * there with the same state in both strings (just after a byte that is
 * neither a digit nor a space). Without a digit or space at the difference
 * itself, that is a plain byte comparison. */
static int natural_cmp(const char *a, size_t a_len, const char *b, size_t b_len) {
    size_t n = a_len < b_len ? a_len : b_len, i = 0;
    while (i < n && a[i] == b[i]) i++;
    unsigned char x = i < a_len ? (unsigned char)a[i] : 0, y = i < b_len ? (unsigned char)b[i] : 0;
    if (a_len && b_len && a[0] != '0' && !is_digit(x) && !is_digit(y) && !is_space(x) && !is_space(y)) {
        if (x != y) return x < y ? -1 : 1;
        return a_len == b_len ? 0 : (a_len < b_len ? -1 : 1);
    }
    size_t j = i;
    while (j > 0 && (is_digit((unsigned char)a[j - 1]) || is_space((unsigned char)a[j - 1]))) j--;
    return strnatcmp_php(a + j, a_len - j, b + j, b_len - j, j == 0);
}

/* PHP 8's sort is stable; the order of equal paths (" a" and "a", "01" and
 * "1") would be the body's order, which a Lua table has lost: bytes decide.
 * Paths of the same bytes ("a::" + "b" and "a" + ":b", "" + "x" and "x")
 * are refused after the sort (sorted_join): PHP keeps one of them, the last
 * in the body's order, which no table can tell; the walk's order only
 * keeps the sort total. */
static int entry_cmp(const void *x, const void *y) {
    const entry *a = &(*(const record *const *)x)->ptr, *b = &(*(const record *const *)y)->ptr;
    int r = natural_cmp(a->path, a->path_len, b->path, b->path_len);
    if (r) return r;
    size_t n = a->path_len < b->path_len ? a->path_len : b->path_len;
    r = memcmp(a->path, b->path, n);
    if (r) return r;
    if (a->path_len != b->path_len) return a->path_len < b->path_len ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq; /* the same path ("a::" + "b", "a" + ":b") */
}

/* Binary insertion sort: a body has tens of entries, where qsort's
 * indirect calls and merge buffer cost more than the comparisons; past 64,
 * qsort (n log n either way). */
static void sort_entries(record **v, size_t n) {
    if (n > 64) {
        qsort(v, n, sizeof *v, entry_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        record *x = v[i];
        size_t lo = 0, hi = i;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (entry_cmp(&x, &v[mid]) < 0) hi = mid;
            else lo = mid + 1;
        }
        memmove(v + lo + 1, v + lo, (i - lo) * sizeof *v);
        v[lo] = x;
    }
}

/* ---------------------------------------------------------------------
 * Natural order without sorting every path
 *
 * Within keys "in reach" (no byte up to ' ', no ':', no run of digits with
 * a leading zero, not empty) PHP's natural order compares a path token by
 * token: runs of digits by value, other bytes one by one. Sibling members
 * then compare by their keys alone, each followed by ':' when it holds an
 * object or an array, by the end of its path when it holds a scalar. So
 * each object's members are sorted by key when it closes, and its entries
 * moved into that order; an array's elements come in index order, which is
 * theirs already. Cost: the entries times the depth, plus each object's
 * keys sorted among themselves; no comparison of long common prefixes, and
 * a wide array costs no sorting at all. A key out of reach anywhere and
 * the walk sorts every path as before.
 * ------------------------------------------------------------------- */


typedef struct {
    size_t kofs, klen;  /* the key: bytes [kofs, kofs + klen) of data */
    size_t first, last; /* its entries: [first, last) */
    int leaf;           /* a scalar (one entry whose path ends with the key) */
} member;


/* luapay_buf_reserve with its common case (room already) inline. */
static inline int room(luapay_buf *b, size_t n) {
    return (!b->oom && n <= b->cap - b->len) || luapay_buf_reserve(b, n);
}

static int is_digit_byte(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* A key natural order can place by itself: see above. */
static int key_in_reach(const unsigned char *k, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = k[i];
        if (c > ':') continue; /* letters, '_' and most others: one test */
        if (c <= ' ' || c == ':') return 0;
        if (c == '0' && i + 1 < n && is_digit_byte(k[i + 1]) && (i == 0 || !is_digit_byte(k[i - 1]))) return 0;
    }
    return 1;
}

/* Natural order of two keys in reach, each followed by its terminator
 * (':' for a container, the end of the path, lower than any byte, for a
 * scalar). 0 for the same key. */
static int key_cmp(const unsigned char *a, size_t an, int aleaf, const unsigned char *b, size_t bn, int bleaf) {
    if (an && bn && a[0] != b[0] && !(is_digit_byte(a[0]) && is_digit_byte(b[0])))
        return a[0] < b[0] ? -1 : 1; /* most siblings differ at once */
    size_t i = 0, j = 0;
    for (;;) {
        if (i >= an && j >= bn) return 0; /* the same key */
        int ca = i < an ? a[i] : (aleaf ? -1 : ':'), cb = j < bn ? b[j] : (bleaf ? -1 : ':');
        if (i < an && j < bn && is_digit_byte(a[i]) && is_digit_byte(b[j])) {
            size_t ie = i, je = j; /* runs of digits without leading zeros: the longer is larger */
            while (ie < an && is_digit_byte(a[ie])) ie++;
            while (je < bn && is_digit_byte(b[je])) je++;
            if (ie - i != je - j) return ie - i < je - j ? -1 : 1;
            int r = memcmp(a + i, b + j, ie - i);
            if (r) return r < 0 ? -1 : 1;
            i = ie;
            j = je;
            continue;
        }
        if (ca != cb) return ca < cb ? -1 : 1;
        i++;
        j++;
    }
}

static int member_cmp(placer *c, const member *x, const member *y) {
    const unsigned char *d = (const unsigned char *)c->data->data;
    return key_cmp(d + x->kofs, x->klen, x->leaf, d + y->kofs, y->klen, y->leaf);
}

/* Sorts v[0..n), stable: insertion for a few, else merge sort through tmp. */
static void sort_members(placer *c, member *v, member *tmp, size_t n) {
    if (n <= 8) {
        for (size_t i = 1; i < n; i++) {
            member x = v[i];
            size_t k = i;
            for (; k > 0 && member_cmp(c, &x, &v[k - 1]) < 0; k--) v[k] = v[k - 1];
            v[k] = x;
        }
        return;
    }
    size_t h = n / 2, i = 0, j = h, k = 0;
    sort_members(c, v, tmp, h);
    sort_members(c, v + h, tmp, n - h);
    while (i < h && j < n) tmp[k++] = member_cmp(c, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    memcpy(v, tmp, k * sizeof *v); /* v[j..n) is in place already */
}

/* An object closes (its first entry first, its members from members on):
 * its members in natural order, their entries moved so; its members taken
 * off the list. */
static void order_object(placer *c, size_t members, size_t first) {
    size_t n = c->members->len / sizeof(member) - members;
    size_t count = c->entries->len / sizeof(record) - first;
    if (n > 1) {
        size_t room = n * sizeof(member) > count * sizeof(record) ? n * sizeof(member) : count * sizeof(record);
        c->tmp->len = 0;
        if (!luapay_buf_reserve(c->tmp, room)) {
            c->in_reach = 0;
            return;
        }
        member *v = (member *)c->members->data + members;
        sort_members(c, v, (member *)c->tmp->data, n);
        record *e = (record *)c->entries->data, *moved = (record *)c->tmp->data;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = v[i].first; j < v[i].last; j++) moved[k++] = e[j];
        memcpy(e + first, moved, count * sizeof *e);
    }
    c->members->len = members * sizeof(member);
}

/* ---------------------------------------------------------------------
 * The walk
 * ------------------------------------------------------------------- */

static int fail(walker *w, const char *msg) {
    if (!w->err) {
        w->err = msg;
        size_t n = w->key->len < sizeof w->errpath - 1 ? w->key->len : sizeof w->errpath - 1;
        if (n) memcpy(w->errpath, w->key->data, n);
        w->errpath[n] = '\0';
    }
    return 0;
}

/* Appends ":" (below the top level) and the key, with ':' doubled; 1 if the
 * key is in reach (see key_in_reach), read in the same pass over its bytes. */
static int push_key(walker *w, const char *k, size_t n) {
    luapay_buf *b = w->key;
    if (!room(b, 2 * n + 1)) return 0; /* b->oom fails the walk */
    char *o = b->data + b->len;
    if (b->len) *o++ = ':';
    int reach = n > 0;
    /* Most keys are letters and '_': no byte up to ':' (eight at a time), copied whole. */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, k + i, 8);
        if ((x - 0x3b3b3b3b3b3b3b3bull) & ~x & 0x8080808080808080ull) break; /* some byte < 0x3b */
    }
    while (i < n && (unsigned char)k[i] > ':') i++;
    memcpy(o, k, i);
    o += i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        *o++ = (char)c;
        if (c > ':') continue; /* ' ', ':' and the digits are all below */
        if (c == ':') {
            *o++ = ':';
            reach = 0;
        } else if (c <= ' ' || (c == '0' && i + 1 < n && is_digit_byte((unsigned char)k[i + 1]) &&
                                (i == 0 || !is_digit_byte((unsigned char)k[i - 1])))) {
            reach = 0;
        }
    }
    b->len = (size_t)(o - b->data);
    return reach;
}

static int walk(walker *w, int idx, int depth);

/* The value at idx under the current path: an entry, or a recursion. */
static int emit(walker *w, int idx, int depth, int *leaf) {
    lua_State *L = w->L;
    int t = lua_type(L, idx);
    *leaf = 1;
    if (t == LUA_TTABLE) {
        if (lua_getmetatable(L, idx)) {
            int is_number = lua_rawequal(L, -1, w->number_mt);
            lua_pop(L, 1);
            if (is_number) t = LUA_TNONE; /* a scalar, below */
        }
        *leaf = t != LUA_TTABLE;
        if (t == LUA_TTABLE) return walk(w, idx, depth + 1);
    }
    entry_off e;
    e.path = w->p.data->len;
    e.path_len = w->key->len;
    if (room(w->p.data, w->key->len + 1)) { /* the path and a NUL (joined needs it so) */
        memcpy(w->p.data->data + w->p.data->len, w->key->data, w->key->len);
        w->p.data->len += w->key->len;
        w->p.data->data[w->p.data->len++] = '\0';
    }
    e.value = w->p.data->len;
    switch (t) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        luapay_buf_add(w->p.data, s, n);
        break;
    }
    case LUA_TBOOLEAN:
        luapay_buf_add(w->p.data, lua_toboolean(L, idx) ? "1" : "0", 1);
        break;
    case LUA_TNUMBER: {
        char out[64];
        size_t n;
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx)) {
            n = luapay_integer_text((long long)lua_tointeger(L, idx), out);
        } else
#endif
        {
            n = render_double((double)lua_tonumber(L, idx), out);
            if (n == 0) return fail(w, "NaN and infinity cannot be signed");
        }
        luapay_buf_add(w->p.data, out, n);
        break;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) != NULL) return fail(w, "a light userdata other than null");
        break; /* null: empty value, key kept */
    case LUA_TNONE: { /* a number object */
        lua_rawgeti(L, idx, 1);
        size_t n;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        int ok = s != NULL && render_lexeme(w->p.data, s, n);
        lua_pop(L, 1);
        if (!ok) return fail(w, "a number object whose text is not a JSON number");
        break;
    }
    default:
        return fail(w, "a value is not a string, number, boolean, table or null");
    }
    e.value_len = w->p.data->len - e.value;
    e.seq = w->p.entries->len / sizeof(record);
    record r;
    memset(&r, 0, sizeof r);
    r.off = e;
    luapay_buf_add(w->p.entries, &r, sizeof r);
    return 1;
}

/* A table: an array (keys 1..n) or an object (string keys). */
static int walk(walker *w, int idx, int depth) {
    lua_State *L = w->L;
    if (depth > MAX_DEPTH) return fail(w, "nested too deeply (a cycle?)");
    if (!lua_checkstack(L, 6)) return fail(w, "nested too deeply for the Lua stack");
    size_t n = lua_rawlen(L, idx), base = w->key->len;
    if (n > 0) { /* an array, if 1..n are all its keys */
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        if (count != n) return fail(w, "a table mixes array and object keys (or has non-string keys)");
        for (size_t i = 1; i <= n; i++) {
            char index[24];
            size_t k = sizeof index, v = i - 1;
            do index[--k] = (char)('0' + v % 10); while (v /= 10);
            push_key(w, index + k, sizeof index - k);
            lua_rawgeti(L, idx, (int)i);
            int leaf, ok = emit(w, lua_gettop(L), depth, &leaf);
            lua_pop(L, 1);
            w->key->len = base;
            if (!ok) return 0;
        }
        return 1;
    }
    /* An object (or empty: {} and [] give nothing). */
    size_t members = w->p.members->len / sizeof(member), first = w->p.entries->len / sizeof(record);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return fail(w, "a table mixes array and object keys (or has non-string keys)");
        }
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen); /* a string key: safe during lua_next */
        /* A "signature": null stays: PHP's Callback::removeParam tests isset(),
         * false for null, and signs it as an empty value. */
        int skip = (klen == 10 && memcmp(k, "frame_mode", 10) == 0) ||
                   (w->callback && klen == 9 && memcmp(k, "signature", 9) == 0 &&
                    !(lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL));
        if (!skip) {
            size_t mfirst = w->p.entries->len / sizeof(record);
            if (!push_key(w, k, klen)) w->p.in_reach = 0;
            int leaf, ok = emit(w, lua_gettop(L), depth, &leaf);
            w->key->len = base;
            if (!ok) {
                lua_pop(L, 2);
                return 0;
            }
            if (w->p.in_reach) {
                member m = {w->p.data->len, klen, mfirst, w->p.entries->len / sizeof(record), leaf};
                luapay_buf_add(w->p.data, k, klen);
                luapay_buf_add(w->p.members, &m, sizeof m);
            }
        }
        lua_pop(L, 1);
    }
    if (w->p.in_reach) order_object(&w->p, members, first);
    return 1;
}

/* The entries (records over data) joined into out as "path:value;..." in
 * their order. 0 when out of memory. Each entry's path, its NUL and its
 * value lie together in data (emit): one copy each, the NUL becoming ':'. */
static int joined(const luapay_buf *data, const luapay_buf *entries, luapay_buf *out) {
    const record *e = (const record *)entries->data;
    size_t count = entries->len / sizeof *e, total = count;
    for (size_t i = 0; i < count; i++) total += e[i].off.path_len + 1 + e[i].off.value_len;
    if (!room(out, total)) return 0;
    char *o = out->data + out->len;
    for (size_t i = 0; i < count; i++) {
        size_t n = e[i].off.path_len + 1 + e[i].off.value_len;
        if (i) *o++ = ';';
        memcpy(o, data->data + e[i].off.path, n);
        o[e[i].off.path_len] = ':';
        o += n;
    }
    out->len = (size_t)(o - out->data);
    return 1;
}

/* The entries (entry_off records over data) sorted and joined into out as
 * "path:value;...". Offsets become pointers now that data no longer moves;
 * the sort moves pointers to the records, kept in order (emptied first).
 * 0 when out of memory; -1 when two entries have the same path, which is
 * then order's content (order is emptied first). */
static int sorted_join(luapay_buf *data, luapay_buf *entries, luapay_buf *order, luapay_buf *out) {
    size_t count = entries->len / sizeof(record);
    record *list = (record *)entries->data;
    order->len = 0;
    for (size_t i = 0; i < count; i++) {
        entry_off o = list[i].off;
        entry e = {data->data + o.path, data->data + o.value, o.path_len, o.value_len, o.seq};
        list[i].ptr = e;
        record *r = &list[i];
        luapay_buf_add(order, &r, sizeof r);
    }
    if (order->oom || data->oom || entries->oom) return 0;
    record **sorted = (record **)order->data;
    sort_entries(sorted, count);
    for (size_t i = 0; i < count; i++) {
        const entry *e = &sorted[i]->ptr;
        if (i && e->path_len == sorted[i - 1]->ptr.path_len && memcmp(e->path, sorted[i - 1]->ptr.path, e->path_len) == 0) {
            order->len = 0;
            luapay_buf_add(order, e->path, e->path_len);
            return order->oom ? 0 : -1;
        }
        if (i) luapay_buf_add(out, ";", 1);
        luapay_buf_add(out, e->path, e->path_len);
        luapay_buf_add(out, ":", 1);
        luapay_buf_add(out, e->value, e->value_len);
    }
    return !out->oom;
}

/* ---------------------------------------------------------------------
 * One pass, for bodies whose keys are all in reach
 *
 * Then an object's members are placed by their keys alone (see "Natural
 * order without sorting every path"), so the string is written as the
 * tables are read: an object's members are read once into a small list
 * (the key; a scalar's value, a string by pointer; a table left on the Lua
 * stack), sorted by key (one_cmp), then each written as "path:value" or
 * recursed into, in that order; an array's elements are written in index
 * order as they are fetched. No entries to record, move or join. The key
 * and value strings are the params table's own, which anchors them while
 * the call runs. Anything else (a key out of reach, a value that cannot be
 * signed, a table mixing keys, nesting too deep, no stack left) and the
 * walk does it all again, with its sorting and its errors: this pass only
 * ever gives what the walk would.
 * ------------------------------------------------------------------- */

enum { V_STRING, V_INTEGER, V_NUMBER, V_TRUE, V_FALSE, V_NULL, V_LEXEME, V_TABLE };

typedef struct {
    uint64_t pre;    /* the key's first eight bytes big-endian, its terminator after a shorter one (one_cmp) */
    const char *key;
    size_t klen;
    union {
        struct {
            const char *s;
            size_t n;
        } str; /* V_STRING, V_LEXEME (its text) */
        lua_Integer i;
        lua_Number d;
    } v;
    int kind;
    int slot; /* V_TABLE: its stack index */
} one_member;

typedef struct {
    lua_State *L;
    int callback;
    luapay_buf *path;    /* the current path and a ':', empty at the top (the walk's key buffer) */
    luapay_buf *members; /* a stack: the lists of the tables open */
    luapay_buf *out;
} one_pass;

/* Some byte of x below ';' (a digit, ':', a space or a control byte). */
#define ANY_LOW(x) (((x) - 0x3b3b3b3b3b3b3b3bull) & ~(x) & 0x8080808080808080ull)

/* A key in reach (key_in_reach): 2 when it has no byte up to ':' (most:
 * letters, '_'), found eight bytes at a time, 1 for the others in reach, 0
 * out of reach. *pre: its first eight bytes big-endian, zeros after a
 * shorter one. */
static int one_key(const char *k, size_t n, uint64_t *pre) {
    uint64_t x, low;
    if (n >= 8) {
        memcpy(&x, k, 8);
        *pre = __builtin_bswap64(x);
        low = ANY_LOW(x);
        for (size_t i = 8; !low && i + 8 <= n; i += 8) {
            memcpy(&x, k + i, 8);
            low = ANY_LOW(x);
        }
        if (!low) { /* the last eight, overlapping */
            memcpy(&x, k + n - 8, 8);
            low = ANY_LOW(x);
        }
    } else if (n >= 4) { /* the first four and the last four, overlapping */
        uint32_t a, b;
        memcpy(&a, k, 4);
        memcpy(&b, k + n - 4, 4);
        x = (uint64_t)a | (uint64_t)b << 32;
        low = ANY_LOW(x);
        *pre = (uint64_t)__builtin_bswap32(a) << 32 | (uint64_t)__builtin_bswap32(b) << (8 * (8 - n));
    } else {
        low = n == 0;
        x = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)k[i];
            low |= c < ';';
            x |= (uint64_t)c << (56 - 8 * i);
        }
        *pre = x;
    }
    return !low ? 2 : key_in_reach((const unsigned char *)k, n);
}

/* key_cmp, decided by the prefixes where it can be: at the first byte that
 * differs, neither a digit (bytes compare), or one a digit and not inside a
 * run of digits (the bytes still compare, runs do not come into it). Keys
 * in reach hold no byte 0, so a scalar's terminator (lowest) is 0 here. */
static int one_cmp(const one_member *a, const one_member *b) {
    uint64_t x = a->pre, y = b->pre;
    if (x != y) {
        int s = __builtin_clzll(x ^ y) & ~7; /* the first byte that differs, from the top */
        int da = is_digit_byte((unsigned char)(x << s >> 56)), db = is_digit_byte((unsigned char)(y << s >> 56));
        if ((!da && !db) || (da != db && (s == 0 || !is_digit_byte((unsigned char)(x << (s - 8) >> 56)))))
            return x < y ? -1 : 1;
    }
    return key_cmp((const unsigned char *)a->key, a->klen, a->kind != V_TABLE, (const unsigned char *)b->key, b->klen,
                   b->kind != V_TABLE);
}

static int one_qcmp(const void *a, const void *b) {
    return one_cmp((const one_member *)a, (const one_member *)b);
}

/* An object's members in natural order (distinct keys: any sort will do):
 * a few by insertion of their indexes into ord, more sorted in place (ord
 * NULL). */
#define ORD_MAX 32

/* The common case of one_sort: no key with a digit (plain), at most
 * ORD_MAX, no two prefixes the same (then 0: one_sort). A leaf, so cheap
 * to call. */
static __attribute__((noinline)) int plain_sort(const one_member *v, size_t n, unsigned char *ord) {
    uint64_t pre[ORD_MAX]; /* pre[k] is v[ord[k]].pre, at hand */
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i].pre;
        size_t k = i;
        for (; k > 0 && pre[k - 1] > x; k--) {
            pre[k] = pre[k - 1];
            ord[k] = ord[k - 1];
        }
        if (k > 0 && pre[k - 1] == x) return 0; /* a same one sits just below */
        pre[k] = x;
        ord[k] = (unsigned char)i;
    }
    return 1;
}

static __attribute__((noinline)) const unsigned char *one_sort(one_member *v, size_t n, int plain, unsigned char *ord) {
    if (n > ORD_MAX) {
        qsort(v, n, sizeof *v, one_qcmp);
        return NULL;
    }
    uint64_t pre[ORD_MAX]; /* plain: pre[k] is v[ord[k]].pre, at hand */
    ord[0] = 0;
    pre[0] = v[0].pre;
    for (size_t i = 1; i < n; i++) {
        size_t k = i;
        if (plain) { /* no key has a digit: the prefixes decide unless they are the same */
            uint64_t x = v[i].pre;
            for (; k > 0 && (x != pre[k - 1] ? x < pre[k - 1] : one_cmp(&v[i], &v[ord[k - 1]]) < 0); k--) {
                ord[k] = ord[k - 1];
                pre[k] = pre[k - 1];
            }
            pre[k] = x;
        } else {
            for (; k > 0 && one_cmp(&v[i], &v[ord[k - 1]]) < 0; k--) ord[k] = ord[k - 1];
        }
        ord[k] = (unsigned char)i;
    }
    return ord;
}

/* n bytes from s to p, short ones without a call (overlapping moves). */
static inline char *copy(char *p, const char *s, size_t n) {
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(p, &a, 8);
        memcpy(p + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(p, &a, 4);
        memcpy(p + n - 4, &b, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++) p[i] = s[i];
    } else {
        memcpy(p, s, n);
    }
    return p + n;
}

/* ";" (after the first), the path and its ':', the key, ":" and the value:
 * one entry. 0 for a value the walk must refuse. */
static inline __attribute__((always_inline)) int one_entry(one_pass *o, const char *k, size_t kn,
                                                           const one_member *m) {
    luapay_buf *b = o->out;
    size_t plen = o->path->len, vn = m->kind == V_STRING ? m->v.str.n : 0;
    if (!room(b, plen + kn + vn + 67)) return 0; /* two separators, 64 for a number and its NUL */
    char *p = b->data + b->len;
    if (b->len) *p++ = ';';
    p = copy(p, o->path->data, plen);
    p = copy(p, k, kn);
    *p++ = ':';
    switch (m->kind) {
    case V_STRING: p = copy(p, m->v.str.s, vn); break;
    case V_INTEGER: p += luapay_integer_text((long long)m->v.i, p); break;
    case V_NUMBER: {
        size_t n = render_double((double)m->v.d, p);
        if (n == 0) return 0; /* NaN, infinity */
        p += n;
        break;
    }
    case V_TRUE: *p++ = '1'; break;
    case V_FALSE: *p++ = '0'; break;
    case V_LEXEME:
        b->len = (size_t)(p - b->data);
        return render_lexeme(b, m->v.str.s, m->v.str.n);
    default: break; /* null: empty, key kept */
    }
    b->len = (size_t)(p - b->data);
    return 1;
}

static int one_table(one_pass *o, int idx, int top, int depth);

/* one_key's prefix of a three-byte key, and of "frame_mode" */
#define PRE3(a, b, c) ((uint64_t)(a) << 56 | (uint64_t)(b) << 48 | (uint64_t)(c) << 40)
#define PRE_FRAME_MO 0x6672616d655f6d6full

/* Could lua_tolstring have written a number so (Lua's "%.14g" or "%d",
 * LuaJIT's own: a digit or '-' first, or "inf", "nan")? */
static inline int number_text(const char *k, size_t n) {
    unsigned char c = n ? (unsigned char)k[0] : 'a';
    return (unsigned)(c - '0') < 10u || c == '-' ||
           (n == 3 && (memcmp(k, "inf", 3) == 0 || memcmp(k, "nan", 3) == 0));
}

/* The value at slot (its key at slot - 1) into m: 0 if the walk must say. */
static inline __attribute__((always_inline)) int one_value(one_pass *o, int slot, one_member *m) {
    lua_State *L = o->L;
    switch (lua_type(L, slot)) {
    case LUA_TSTRING:
        m->kind = V_STRING;
        m->v.str.s = lua_tolstring(L, slot, &m->v.str.n);
        return 1;
    case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, slot)) {
            m->kind = V_INTEGER;
            m->v.i = lua_tointeger(L, slot);
            return 1;
        }
#endif
        m->kind = V_NUMBER;
        m->v.d = lua_tonumber(L, slot);
        return 1;
    case LUA_TBOOLEAN: m->kind = lua_toboolean(L, slot) ? V_TRUE : V_FALSE; return 1;
    case LUA_TLIGHTUSERDATA: m->kind = V_NULL; return lua_touserdata(L, slot) == NULL;
    case LUA_TTABLE:
        m->kind = V_TABLE;
        if (lua_getmetatable(L, slot)) { /* plain tables have none: no push */
            luaL_getmetatable(L, "luapay.json_number");
            int is_number = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
            if (is_number) {
                lua_rawgeti(L, slot, 1);
                m->kind = V_LEXEME;
                m->v.str.s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &m->v.str.n) : NULL;
                lua_pop(L, 1); /* the text stays: the number object holds it */
                return m->v.str.s != NULL;
            }
        }
        return 1;
    default: return 0;
    }
}

/* A table member (a key, or an array index as text) under the path: the
 * path grows by it for a table, which is at the stack's top. */
static inline __attribute__((always_inline)) int one_member_out(one_pass *o, const char *k, size_t kn,
                                                                const one_member *m, int top, int depth) {
    if (m->kind != V_TABLE) return one_entry(o, k, kn, m);
    size_t plen = o->path->len;
    if (!room(o->path, kn + 1)) return 0;
    memcpy(o->path->data + plen, k, kn);
    o->path->data[plen + kn] = ':';
    o->path->len = plen + kn + 1;
    int ok = one_table(o, m->slot, top, depth + 1);
    o->path->len = plen;
    return ok;
}

/* An array (the walk's test: keys 1..n, n its length): its elements in order, each fetched again
 * by index, so that a long list of tables does not pile up on the stack. */
static int one_array(one_pass *o, int idx, int top, int depth) {
    lua_State *L = o->L;
    size_t n = lua_rawlen(L, idx), count = 0;
    lua_settop(L, top); /* the first key may have been read as text: counted from the start */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    /* room for an element, its own nil and two, and two for a metatable (one_value) */
    if (n == 0 || count != n || !lua_checkstack(L, 6)) return 0;
    for (size_t i = 1; i <= n; i++) {
        char index[24];
        size_t j = sizeof index, x = i - 1;
        do index[--j] = (char)('0' + x % 10); while (x /= 10);
        lua_rawgeti(L, idx, (int)i);
        one_member m;
        m.slot = top + 1;
        int ok = one_value(o, top + 1, &m) && one_member_out(o, index + j, sizeof index - j, &m, top + 1, depth);
        lua_settop(L, top);
        if (!ok) return 0;
    }
    return 1;
}

/* The table at idx (top: the stack's top) written out; 0 if the walk must
 * do it. A table whose first key reads as a number's text is taken for an
 * array (the walk's test decides), any other for an object. */
static int one_table(one_pass *o, int idx, int top, int depth) {
    lua_State *L = o->L;
    if (depth > MAX_DEPTH) return 0;
    int kt = top + 1; /* the key's slot, the value's above */
    lua_pushnil(L);
    if (!lua_next(L, idx)) return 1; /* empty: nothing, not even the key */
    size_t first = o->members->len / sizeof(one_member), n = 0;
    size_t spare = 0; /* members with room */
    int plain = 2, seen = 0;
    do {
        if (spare == 0) {
            spare = 16;
            if (!room(o->members, spare * sizeof(one_member))) return 0;
        }
        one_member *m = (one_member *)(o->members->data + o->members->len); /* written in place */
        /* The key's text without asking its type: a number key would be
         * converted in place (lua_next lost), but then its text is one a
         * number is written as, and the walk does it all again. */
        m->key = lua_tolstring(L, kt, &m->klen);
        if (m->key == NULL) return 0;
        int reach = one_key(m->key, m->klen, &m->pre);
        /* With no byte below ';' (reach 2) a key is no number's text but
         * "inf" or "nan". The first key such: an array; a later one, or a
         * key out of reach (0): the walk does it all again. */
        if (reach != 2 ? number_text(m->key, m->klen)
                       : m->klen == 3 && (m->pre == PRE3('i', 'n', 'f') || m->pre == PRE3('n', 'a', 'n')))
            return seen ? 0 : one_array(o, idx, top, depth);
        if (!reach) return 0;
        seen = 1;
        /* "frame_mode"; a "signature" that is not null (PHP's Callback::removeParam) */
        if ((m->klen == 10 && m->pre == PRE_FRAME_MO && m->key[8] == 'd' && m->key[9] == 'e') ||
            (m->klen == 9 && o->callback && memcmp(m->key, "signature", 9) == 0 &&
             !(lua_type(L, kt + 1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, kt + 1) == NULL))) {
            lua_pop(L, 1);
            continue;
        }
        if (!one_value(o, kt + 1, m)) return 0;
        plain &= reach;
        if (m->kind == V_TABLE) { /* kept at its slot, the key copied above it for lua_next */
            if (m->klen < 8) m->pre |= (uint64_t)':' << (56 - 8 * m->klen);
            /* room for the key and lua_next's two, then the table's own nil and two, and
             * two for a metatable (one_value) */
            if (!lua_checkstack(L, 5)) return 0;
            m->slot = kt + 1;
            lua_pushvalue(L, kt);
            kt += 2;
        } else {
            lua_pop(L, 1);
        }
        o->members->len += sizeof *m;
        n++;
        spare--;
    } while (lua_next(L, idx));
    int end = kt - 1; /* lua_next took the last key */
    unsigned char buf[ORD_MAX];
    one_member *list = (one_member *)o->members->data + first;
    const unsigned char *ord = plain && n <= ORD_MAX && plain_sort(list, n, buf) ? buf : one_sort(list, n, plain, buf);
    for (size_t i = 0; i < n; i++) {
        /* the buffer may move below */
        const one_member *m = (const one_member *)o->members->data + first + (ord ? ord[i] : i);
        if (!one_member_out(o, m->key, m->klen, m, end, depth)) return 0;
    }
    o->members->len = first * sizeof(one_member);
    if (end != top) lua_settop(L, top);
    return 1;
}

/* params (argument 1) must be a table: fn's argument error if not. */
static void check_params(lua_State *L, const char *fn) {
    if (lua_type(L, 1) != LUA_TTABLE)
        luapay_arg_error(L, 1, fn, "params", lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 1)));
}

/* The canonical string of the table at 1 (checked: check_params) with opts
 * at opts (0: none) into the context's output scratch buffer, or NULL with
 * nil, err pushed; fn names the function in argument errors. */
static luapay_buf *canonical(lua_State *L, luapay_ctx *ctx, int opts, const char *fn) {
    int callback = 0;
    if (opts && !lua_isnoneornil(L, opts)) {
        if (!lua_istable(L, opts)) luapay_arg_error(L, opts, fn, "opts", "table expected");
        lua_getfield(L, opts, "callback");
        callback = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    luapay_buf *key = luapay_scratch_in(ctx, LUAPAY_SCRATCH_CANON_KEY);
    luapay_buf *members = luapay_scratch_in(ctx, LUAPAY_SCRATCH_CANON_MEMBERS);
    luapay_buf *out = luapay_scratch_in(ctx, LUAPAY_SCRATCH_CANON_OUT);
    int top = lua_gettop(L); /* the table's own two slots are within LUA_MINSTACK, above the arguments */
    one_pass o = {L, callback, key, members, out};
    if (one_table(&o, 1, top, 0) && !key->oom && !members->oom && !out->oom) {
        luapay_scratch_done(key);
        luapay_scratch_done(members);
        return out;
    }
    walker w; /* set up only for the walk */
    memset(&w, 0, sizeof w);
    w.L = L;
    w.callback = callback;
    w.key = key;
    w.p.members = members;
    lua_settop(L, top); /* the walk again, from the start */
    w.key->len = w.p.members->len = out->len = 0;
    luaL_getmetatable(L, "luapay.json_number");
    w.number_mt = lua_gettop(L);
    w.p.data = luapay_scratch_in(ctx, LUAPAY_SCRATCH_CANON_DATA);
    w.p.entries = luapay_scratch_in(ctx, LUAPAY_SCRATCH_CANON_ENTRIES);
    w.p.tmp = luapay_scratch_in(ctx, LUAPAY_SCRATCH_CANON_TMP);
    w.p.in_reach = 1;
    int ok = walk(&w, 1, 0);
    lua_pop(L, 1);
    if (ok && (w.key->oom || w.p.data->oom || w.p.entries->oom || w.p.members->oom || w.p.tmp->oom))
        ok = fail(&w, "out of memory");
    /* placed in natural order already, or every path sorted */
    int joins = !ok ? 1 : w.p.in_reach ? joined(w.p.data, w.p.entries, out) : sorted_join(w.p.data, w.p.entries, w.key, out);
    if (joins < 0) ok = fail(&w, "two fields sign as the same path"); /* w.key holds it */
    else if (!joins) ok = fail(&w, "out of memory");
    luapay_scratch_done(w.key);
    luapay_scratch_done(w.p.data);
    luapay_scratch_done(w.p.entries);
    luapay_scratch_done(w.p.members);
    luapay_scratch_done(w.p.tmp);
    if (!ok) {
        luapay_scratch_done(out);
        lua_pushnil(L);
        /* what cannot be signed is the canonical string's error, in either function */
        if (w.errpath[0]) lua_pushfstring(L, "ecommpay_canonical: %s (at %s)", w.err, w.errpath);
        else lua_pushfstring(L, "ecommpay_canonical: %s", w.err);
        return NULL;
    }
    return out;
}

/* core.ecommpay_canonical(params [, opts]) -> string | nil, err */
static int l_ecommpay_canonical(lua_State *L) {
    lua_settop(L, 2);
    check_params(L, "ecommpay_canonical");
    luapay_buf *out = canonical(L, luapay_ctx_get(L), 2, "ecommpay_canonical");
    if (out == NULL) return 2;
    lua_pushlstring(L, out->data, out->len);
    luapay_scratch_done(out);
    return 1;
}

/* core.ecommpay_signature(params, secret [, opts]) -> base64 | nil, err:
 * base64(HMAC-SHA512(secret, the canonical string)), without the string
 * becoming a Lua value on the way. */
static int signature(lua_State *L, const char *key, size_t klen, int opts) {
    luapay_ctx *ctx = luapay_ctx_get(L);
    luapay_buf *out = canonical(L, ctx, opts, "ecommpay_signature");
    if (out == NULL) return 2;
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int ok = luapay_hmac(ctx, LUAPAY_SHA512, key, klen, out->data, out->len, mac, &maclen);
    luapay_scratch_done(out);
    if (!ok) return luaL_error(L, "ecommpay_signature: OpenSSL failed (out of memory?)");
    luapay_push_encoded(L, mac, maclen, LUAPAY_BASE64);
    return 1;
}

static int l_ecommpay_signature(lua_State *L) {
    size_t klen;
    const char *key = luapay_check_string(L, 2, "ecommpay_signature", "secret", &klen);
    lua_settop(L, 3);
    lua_insert(L, 2); /* params, opts, secret */
    check_params(L, "ecommpay_signature");
    return signature(L, key, klen, 2);
}

/* core.ecommpay_sign(params, secret) -> base64 | nil, err | false:
 * ecommpay_signature without opts, and false instead of an argument error
 * when params is not a table or secret not a non-empty string. Lua's
 * ecommpay.signature checks its arguments (its own words, in its order)
 * only then, which under Lua 5.4 costs more than the signing around it. */
static int l_ecommpay_sign(lua_State *L) {
    size_t klen = 0;
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : NULL;
    if (klen == 0 || lua_type(L, 1) != LUA_TTABLE) {
        lua_pushboolean(L, 0);
        return 1;
    }
    /* arguments past the two only sit below the walk's slots (LUA_MINSTACK is above them) */
    return signature(L, key, klen, 0);
}

/* ---------------------------------------------------------------------
 * A callback's canonical string from its text, in the pass that decodes it
 *
 * core.ecommpay_callback(raw_body, secret [, picks]) -> body, signature [,
 *       what core.json_picks(body, picks) returns]
 *   body as core.json_decode(raw_body) gives it (numbers as Lua numbers),
 *   signature the base64 HMAC-SHA512 of the callback canonical string
 *   (opts.callback above) of the body, taken from its text while it is
 *   read: no number objects, no second walk over Lua tables. When the body
 *   is out of this pass's reach, signature is false and the caller signs
 *   the tree itself (core.json_decode with lexemes, core.ecommpay_signature):
 *   the root is not an object; a key is empty, holds a byte up to ' ', a
 *   ':' or a run of digits with a leading zero, or is written with an
 *   escape; an object repeats a key; a
 *   number is not an integer written as its digits (-0, 1.0, 1e3, or more
 *   digits than a Lua number holds exactly: 18 in Lua 5.4, 15 in LuaJIT);
 *   nesting is deeper than MAX_DEPTH. Otherwise signature is exactly
 *   core.ecommpay_signature(the lexeme tree, secret, {callback = true}),
 *   and each number's digits are its text (a caller may write them back),
 *   and what the event reads of the body follows when picks (a
 *   core.json_pick_plan, luapay.ecommpay's) is given (picks.c).
 *   nil, err when the text is not JSON (core.json_decode's error).
 *
 * The order without sorting all paths: within such keys, PHP's natural
 * order compares a path token by token (runs of digits by value, other
 * bytes one by one), so sibling members compare by their keys alone, the
 * key followed by ':' for an object or an array (by the end of the path for
 * a scalar). So the pass keeps the body's shape as nodes (a value each,
 * keys and values where the text or data holds them), sorts each object's
 * members when it closes and links them in that order (an array's elements
 * come in index order, which is already theirs), and then writes the
 * canonical string walking the nodes: each path written once, into the
 * string itself. Cost: the text, the string, and each object's members
 * sorted by key.
 * ------------------------------------------------------------------- */

#define CB_DIGITS (LUA_VERSION_NUM >= 503 ? 18 : 15)
#define NO_NODE UINT32_MAX

/* A value of the body, or a member left out (skip), made when its key (or
 * its place in an array) is read and filled when its value is. Offsets are
 * 32 bits: a text of 2^32 bytes or more is out of reach. head orders the
 * member among its siblings by its first eight bytes, read from the text
 * as one number: the key's bytes, then (when shorter) its terminator, 0 for
 * a scalar (lower than any byte of a key in reach) or ':' for a container.
 * Without a digit among them (plain) natural order is their byte order, so
 * two such heads that differ order their keys as key_cmp does; prefix, the
 * bytes alone, and the length tell keys apart. */
typedef struct {
    uint64_t head, prefix;
    uint32_t koff, klen; /* an object member's key, in the text */
    uint32_t voff, vlen; /* a scalar's text: where says where */
    uint32_t kid, next;  /* a container's first member in order; the next one after this */
    unsigned char leaf, where, array, plain, skip;
} cb_node;

enum { IN_TEXT, IN_VALUES, IN_LITERALS }; /* a scalar's text: the body's, values, or CB_LITERALS */
static const char CB_LITERALS[] = "10";      /* true, false */

typedef struct {
    uint32_t node;   /* the container's node (NO_NODE inside a member left out) */
    uint32_t cur;    /* the member (or element) being read: its node */
    size_t kids;     /* the kids list's length when it opened */
    int object, skip; /* skip: 1 left out, 2 a signature (left out unless null) */
} level;

typedef struct {
    const char *text; /* the body's text */
    size_t len;
    luapay_buf *nodes;  /* cb_node */
    luapay_buf *kids;   /* uint32_t: the nodes of the members of the containers open */
    luapay_buf *values; /* the strings the text does not hold as they are (escapes) */
    luapay_buf *tmp;
    uint32_t count, free; /* nodes made; nodes (and kids) that fit before the buffers grow */
    int in_reach;  /* 0 once the body is out of reach */
    int distinct;  /* the object that closed last has no repeated key (JR_DISTINCT) */
    int depth;     /* containers open */
    int skipping;  /* > 0: inside a member left out, read at this depth */
    level lv[MAX_DEPTH + 2];
} cb_reader;

/* Out of reach: containers' events test in_reach, the others skipping,
 * which nothing resets from here on (no depth is INT_MAX). */
static void out_of_reach(cb_reader *c) {
    c->in_reach = 0;
    c->skipping = INT_MAX;
}

/* The first eight bytes of a key (fewer: zeros after), the first one
 * highest; and whether a digit is among them. */
static uint64_t key_prefix(const unsigned char *k, size_t klen, const unsigned char *end, int *plain) {
    size_t n = klen < 8 ? klen : 8;
    uint64_t w = 0;
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (end - k >= 8) memcpy(&w, k, 8); /* the first byte lowest, as below */
    else
#endif
        for (size_t i = 0; i < n; i++) w |= (uint64_t)k[i] << 8 * i;
    (void)end;
    if (n < 8) w &= ((uint64_t)1 << 8 * n) - 1;
    /* bytes '0'..'9': from '0' on, below ':', ASCII (no borrow between bytes) */
    uint64_t digits = ((w | highs) - ones * '0') & ~((w | highs) - ones * (':')) & ~w & highs;
    *plain = digits == 0;
    return __builtin_bswap64(w);
}

/* Room for as many nodes again (at least 32), and as many kids: a kid is
 * a node, so the kids list is never longer than the nodes made. */
static __attribute__((noinline)) int cb_grow(cb_reader *c) {
    size_t more = c->count < 32 ? 32 : c->count;
    if (!room(c->nodes, more * sizeof(cb_node)) || !room(c->kids, more * sizeof(uint32_t))) return 0;
    c->free = (uint32_t)more;
    return 1;
}

/* A new node for the member (or element) about to be read at l, key at
 * koff (klen bytes) in the text, its first bytes prefix (key_prefix, 0 for
 * none): on the kids list, l's current one. */
static inline __attribute__((always_inline)) uint32_t add_node(cb_reader *c, level *l, size_t koff, size_t klen,
                                                               uint64_t prefix, int plain) {
    if (c->free == 0 && !cb_grow(c)) {
        out_of_reach(c);
        return NO_NODE;
    }
    c->free--;
    uint32_t i = c->count++;
    cb_node *node = (cb_node *)(void *)(c->nodes->data + c->nodes->len);
    node->prefix = node->head = prefix;
    node->koff = (uint32_t)koff, node->klen = (uint32_t)klen;
    node->voff = node->vlen = 0;
    node->kid = node->next = NO_NODE;
    node->leaf = 1, node->where = IN_TEXT, node->array = 0, node->plain = (unsigned char)plain, node->skip = 0;
    c->nodes->len += sizeof(cb_node);
    memcpy(c->kids->data + c->kids->len, &i, sizeof i);
    c->kids->len += sizeof i;
    l->cur = i;
    return i;
}

/* The member's kind is known: its head gets the terminator. */
static void set_kind(cb_node *node, int leaf) {
    node->leaf = (unsigned char)leaf;
    if (node->klen < 8 && !leaf) node->head = node->prefix | (uint64_t)':' << 8 * (7 - node->klen);
}

/* An integer written as its digits, which reading it back as a Lua number
 * and writing that gives again. */
static int digits_in_reach(const char *s, size_t n) {
    size_t i = n && s[0] == '-';
    if (i == n || n - i > CB_DIGITS) return 0;
    if (s[i] == '0') return n == 1; /* "0"; not "-0" */
    for (; i < n; i++)
        if (!is_digit_byte((unsigned char)s[i])) return 0;
    return 1;
}

/* Natural order of two siblings: by their heads when both are plain and
 * differ, else key_cmp. */
static int cb_before(const cb_reader *c, const cb_node *x, const cb_node *y) {
    if (x->plain && y->plain && x->head != y->head) return x->head < y->head;
    const unsigned char *t = (const unsigned char *)c->text;
    return key_cmp(t + x->koff, x->klen, x->leaf, t + y->koff, y->klen, y->leaf) < 0;
}

static int same_key(const cb_reader *c, const cb_node *x, const cb_node *y) {
    return x->prefix == y->prefix && x->klen == y->klen &&
           (x->klen <= 8 || memcmp(c->text + x->koff + 8, c->text + y->koff + 8, x->klen - 8) == 0);
}

/* Does an object (its members' nodes v[0..n)) repeat a key? (The tree
 * keeps the last one; the pass leaves that to it.) A bit of a word per key
 * by its prefix and length; the keys before are compared only when the
 * bit was set already. */
static int cb_repeats(const cb_reader *c, const uint32_t *v, size_t n) {
    const cb_node *nodes = (const cb_node *)(void *)c->nodes->data;
    uint64_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        const cb_node *x = &nodes[v[i]];
        uint64_t bit = (uint64_t)1 << (((x->prefix ^ x->klen) * 0x9E3779B97F4A7C15u) >> 58);
        if (seen & bit)
            for (size_t j = 0; j < i; j++)
                if (same_key(c, x, &nodes[v[j]])) return 1;
        seen |= bit;
    }
    return 0;
}

/* Sorts v[0..n) by cb_before, stable: insertion for a few, else merge sort
 * through tmp. */
static void cb_sort(const cb_reader *c, uint32_t *v, uint32_t *tmp, size_t n) {
    const cb_node *nodes = (const cb_node *)(void *)c->nodes->data;
    if (n <= 16) { /* the heads beside the nodes: most compares without a load */
        uint64_t head[16];
        int plain = 1;
        for (size_t i = 0; i < n; i++) {
            head[i] = nodes[v[i]].head;
            plain &= nodes[v[i]].plain;
        }
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            uint64_t hx = head[i];
            size_t k = i;
            for (; k > 0; k--) {
                uint64_t hy = head[k - 1];
                if (plain && hx != hy ? hx > hy : !cb_before(c, &nodes[x], &nodes[v[k - 1]])) break;
                v[k] = v[k - 1];
                head[k] = hy;
            }
            v[k] = x;
            head[k] = hx;
        }
        return;
    }
    size_t h = n / 2, i = 0, j = h, k = 0;
    cb_sort(c, v, tmp, h);
    cb_sort(c, v + h, tmp, n - h);
    while (i < h && j < n) tmp[k++] = cb_before(c, &nodes[v[j]], &nodes[v[i]]) ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    memcpy(v, tmp, k * sizeof *v); /* v[j..n) is in place already */
}

/* cb_repeats for many keys: an open-addressing set of them in tmp. */
static int cb_repeats_many(cb_reader *c, const uint32_t *v, size_t n) {
    const cb_node *nodes = (const cb_node *)(void *)c->nodes->data;
    size_t size = 16;
    while (size < 2 * n) size *= 2;
    c->tmp->len = 0;
    if (!luapay_buf_reserve(c->tmp, size * sizeof(uint32_t))) return 1;
    uint32_t *slot = (uint32_t *)(void *)c->tmp->data; /* a node + 1, 0 free */
    memset(slot, 0, size * sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        const cb_node *x = &nodes[v[i]];
        const unsigned char *k = (const unsigned char *)c->text + x->koff;
        size_t h = 2166136261u;
        for (size_t j = 0; j < x->klen; j++) h = (h ^ k[j]) * 16777619u;
        for (h &= size - 1; slot[h]; h = (h + 1) & (size - 1))
            if (same_key(c, x, &nodes[slot[h] - 1])) return 1;
        slot[h] = v[i] + 1;
    }
    return 0;
}

/* A container closes: its members (from the level's on the kids list) in
 * natural order for an object, linked in that order; those left out
 * skipped. */
static __attribute__((noinline)) void close_container(cb_reader *c, level *l) { /* off the common events' path */
    size_t n = c->kids->len / sizeof(uint32_t) - l->kids;
    uint32_t *v = (uint32_t *)(void *)c->kids->data + l->kids;
    if (l->object && n > 1 && (n <= 64 ? cb_repeats(c, v, n) : cb_repeats_many(c, v, n))) return out_of_reach(c);
    c->distinct = l->object; /* every member has a node (those left out too), keys with escapes none */
    if (l->object && n > 1) {
        if (n > 16) {
            c->tmp->len = 0;
            if (!luapay_buf_reserve(c->tmp, n * sizeof(uint32_t))) return out_of_reach(c);
        }
        cb_sort(c, v, (uint32_t *)(void *)c->tmp->data, n);
    }
    cb_node *nodes = (cb_node *)(void *)c->nodes->data;
    uint32_t *link = &nodes[l->node].kid;
    for (size_t i = 0; i < n; i++) {
        if (nodes[v[i]].skip) continue;
        *link = v[i];
        link = &nodes[v[i]].next;
    }
}

/* A key of letters and such (no byte up to ':', so in reach) at k in the
 * text, which holds eight bytes from k on: one test a word. 0 leaves the
 * key to key_in_reach. */
static int key_plain(const unsigned char *k, size_t n, const unsigned char *end) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    if (n == 0 || end - k < 8) return 0;
    for (;; k += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        if (n < 8) w |= ~(uint64_t)0 << 8 * n; /* the bytes after the key as 0xff: plain */
        if (((w - ones * (':' + 1)) & ~w & highs) != 0) return 0; /* a byte up to ':' */
        if (n <= 8) return 1;
        if (end - k < 16) return 0;
    }
#else
    (void)k, (void)n, (void)end;
    return 0;
#endif
}

/* Byte of x up to ':' (a digit, a space, a control byte), marked: the
 * lowest mark is right, a borrow only marks bytes above it. */
#define CB_LOW(x) (((x) - 0x0101010101010101u * (':' + 1)) & ~(x) & 0x8080808080808080u)

/* A member's key (n bytes at k in the text, which ends at end): 0 out of
 * reach (key_plain, key_in_reach), else 1 with key_prefix's prefix and
 * plain. A key of letters and such (most) costs a word or two here. */
static inline __attribute__((always_inline)) int cb_key(const unsigned char *k, size_t n, const unsigned char *end,
                                                        uint64_t *prefix, int *plain) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w, low;
    if (n >= 8) { /* its words, the last one overlapping */
        memcpy(&w, k, 8);
        low = CB_LOW(w);
        for (size_t i = 8; !low && i + 8 <= n; i += 8) {
            uint64_t x;
            memcpy(&x, k + i, 8);
            low = CB_LOW(x);
        }
        if (!low) {
            uint64_t x;
            memcpy(&x, k + n - 8, 8);
            low = CB_LOW(x);
        }
    } else if (n && end - k >= 8) { /* the bytes after it dropped (a borrow from them marks none of its) */
        memcpy(&w, k, 8);
        uint64_t keep = ((uint64_t)1 << 8 * n) - 1;
        w &= keep;
        low = CB_LOW(w) & keep;
    } else {
        low = 1;
    }
    if (!low) { /* no digit either */
        *prefix = __builtin_bswap64(w);
        *plain = 1;
        return 1;
    }
#endif
    if (!key_plain(k, n, end) && !key_in_reach(k, n)) return 0;
    *prefix = key_prefix(k, n, end, plain); /* n > 0: key_in_reach */
    return 1;
}

/* The sink. A member left out ends where the next member (or element) of
 * its container begins, or where the container closes: no event after
 * each value is needed. */
static inline __attribute__((always_inline)) void cb_event(cb_reader *c, int ev, const char *s, size_t n, int held) {
    level *l = &c->lv[c->depth]; /* depth is kept while in reach, and stops when the body leaves it */
    switch (ev) {
    case LUAPAY_JSON_MEMBER: {
        if (c->skipping == c->depth) c->skipping = 0;
        l->skip = 0;
        if (c->skipping) return;
        if (!held) return out_of_reach(c); /* a key with an escape */
        uint64_t prefix;
        int plain;
        if (!cb_key((const unsigned char *)s, n, (const unsigned char *)c->text + c->len, &prefix, &plain))
            return out_of_reach(c);
        uint32_t node = add_node(c, l, (size_t)(s - c->text), n, prefix, plain); /* one left out too: a later one may repeat its key */
        if (node == NO_NODE) return; /* out of reach */
        if (n == 10 && memcmp(s, "frame_mode", 10) == 0) {
            l->skip = 1;
            c->skipping = c->depth;
            ((cb_node *)(void *)c->nodes->data)[node].skip = 1;
        } else if (n == 9 && memcmp(s, "signature", 9) == 0) {
            l->skip = 2;
        }
        return;
    }
    case LUAPAY_JSON_OBJECT:
    case LUAPAY_JSON_ARRAY: {
        if (!c->in_reach) return;
        if ((c->depth == 0 && ev != LUAPAY_JSON_OBJECT) || c->depth > MAX_DEPTH) return out_of_reach(c);
        uint32_t node = NO_NODE;
        if (c->depth == 0) add_node(c, l, 0, 0, 0, 1); /* the root, a member of nothing */
        if (!c->in_reach) return;
        if (l->skip == 2 && !c->skipping) { /* a signature that is not null */
            c->skipping = c->depth;
            ((cb_node *)(void *)c->nodes->data)[l->cur].skip = 1;
        }
        if (!c->skipping) {
            node = l->cur;
            cb_node *x = &((cb_node *)(void *)c->nodes->data)[node];
            set_kind(x, 0);
            x->array = ev == LUAPAY_JSON_ARRAY;
        }
        level *in = &c->lv[++c->depth];
        in->object = ev == LUAPAY_JSON_OBJECT;
        in->node = node;
        in->kids = c->kids->len / sizeof(uint32_t);
        in->skip = 0;
        return;
    }
    case LUAPAY_JSON_CLOSE:
        c->distinct = 0;
        if (!c->in_reach) return;
        if (c->skipping == c->depth) c->skipping = 0;
        if (!c->skipping) close_container(c, l);
        c->kids->len = l->kids * sizeof(uint32_t);
        c->depth--;
        return;
    case LUAPAY_JSON_ELEMENT: /* an element's key is its place */
        if (c->skipping == c->depth) c->skipping = 0;
        l->skip = 0;
        if (!c->skipping) add_node(c, l, 0, 0, 0, 1);
        return;
    default: { /* a scalar */
        if (c->depth == 0) return out_of_reach(c);
        if (c->skipping) return;
        cb_node *x = &((cb_node *)(void *)c->nodes->data)[l->cur];
        if (l->skip == 2 && ev != LUAPAY_JSON_NULL) { /* a signature: PHP leaves it out unless null */
            c->skipping = c->depth;
            x->skip = 1;
            return;
        }
        set_kind(x, 1);
        switch (ev) {
        case LUAPAY_JSON_STRING: {
            if (held) { /* the body's text holds it: no copy */
                x->voff = (uint32_t)(s - c->text);
            } else {
                x->where = IN_VALUES;
                x->voff = (uint32_t)c->values->len;
                luapay_buf_add(c->values, s, n);
            }
            x->vlen = (uint32_t)n;
            return;
        }
        case LUAPAY_JSON_NUMBER:
            if (!digits_in_reach(s, n)) return out_of_reach(c);
            x->voff = (uint32_t)(s - c->text); /* a number's text is the body's */
            x->vlen = (uint32_t)n;
            return;
        case LUAPAY_JSON_TRUE: x->where = IN_LITERALS, x->voff = 0, x->vlen = 1; return;
        case LUAPAY_JSON_FALSE: x->where = IN_LITERALS, x->voff = 1, x->vlen = 1; return;
        default: return; /* null: empty, the key kept */
        }
    }
    }
}

/* core.json_decode's reader with cb_event as its sink, inlined. */
#define JR_EVENT(r, ev, s, n, held) cb_event((cb_reader *)(r)->sink, (ev), (s), (n), (held))
#define JR_DISTINCT(r) (((cb_reader *)(r)->sink)->distinct)
#include "json_read.h"

/* n bytes from s to o, and past them: o has sixteen bytes of room after
 * them. Sixteen at once (no call) when n is no more and s may be read that
 * far (lim: where its memory ends). */
static inline char *cb_put(char *o, const char *s, size_t n, const char *lim) {
    if (n <= 16 && lim - s >= 16) memcpy(o, s, 16);
    else if (n) memcpy(o, s, n);
    return o + n;
}

/* The canonical string of the members of container node at into out, as
 * "path:value;" each, path (the container's) in path: a scalar's key is
 * written after it into out, a container's onto it for its members. 0 when
 * out of memory. */
static int write_members(const cb_reader *c, uint32_t at, luapay_buf *path, luapay_buf *out) {
    const cb_node *nodes = (const cb_node *)(const void *)c->nodes->data;
    const char *where[] = {c->text, c->values->data, CB_LITERALS};
    /* where each may be read to: the text's NUL is its last byte */
    const char *lim[] = {c->text + c->len + 1, c->values->cap ? c->values->data + c->values->cap : NULL,
                         CB_LITERALS + sizeof CB_LITERALS}; /* values: NULL while it has no memory (and no value) */
    const char *text_lim = lim[IN_TEXT];
    size_t base = path->len, i = 0;
    int array = nodes[at].array;
    for (uint32_t k = nodes[at].kid; k != NO_NODE; k = nodes[k].next, i++) {
        const cb_node *m = &nodes[k];
        char index[24 + 16];
        const char *key = index, *key_lim = index + sizeof index;
        size_t klen = array ? luapay_integer_text((long long)i, index) : m->klen;
        if (!array) key = c->text + m->koff, key_lim = text_lim;
        if (!m->leaf) {
            path->len = base;
            if (base) luapay_buf_add(path, ":", 1);
            luapay_buf_add(path, key, klen);
            if (path->oom || !write_members(c, k, path, out)) return 0;
            continue;
        }
        if (!room(out, base + klen + m->vlen + 3 + 16)) return 0;
        char *o = out->data + out->len;
        if (base) { /* path->data may be NULL before the first container */
            o = cb_put(o, path->data, base, path->data + path->cap);
            *o++ = ':';
        }
        o = cb_put(o, key, klen, key_lim);
        *o++ = ':';
        o = cb_put(o, where[m->where] + m->voff, m->vlen, lim[m->where]);
        *o++ = ';';
        out->len = (size_t)(o - out->data);
    }
    path->len = base;
    return 1;
}

static int l_ecommpay_callback(lua_State *L) {
    size_t len, klen;
    const char *text = luapay_check_string(L, 1, "ecommpay_callback", "raw_body", &len);
    const char *key = luapay_check_string(L, 2, "ecommpay_callback", "secret", &klen);
    lua_settop(L, 3); /* the picks' plan, or nil */
    cb_reader c;
    memset(&c, 0, offsetof(cb_reader, lv) + sizeof c.lv[0]); /* a level is set when it opens */
    c.in_reach = 1;
    if (len >= UINT32_MAX - 1) out_of_reach(&c); /* offsets and nodes in 32 bits */
    c.text = text; /* read only: keys are compared where the text holds them */
    c.len = len;
    c.values = luapay_scratch(L, LUAPAY_SCRATCH_CANON_DATA);
    c.nodes = luapay_scratch(L, LUAPAY_SCRATCH_CANON_ENTRIES);
    c.kids = luapay_scratch(L, LUAPAY_SCRATCH_CANON_MEMBERS);
    c.tmp = luapay_scratch(L, LUAPAY_SCRATCH_CANON_TMP);
    luapay_buf *path = luapay_scratch(L, LUAPAY_SCRATCH_CANON_KEY);
    luapay_buf *out = luapay_scratch(L, LUAPAY_SCRATCH_CANON_OUT);
    int ok = jr_read(L, text, len, 0, &c);
    int in_reach = ok && c.in_reach && !(c.values->oom || c.nodes->oom || c.kids->oom || c.tmp->oom);
    if (in_reach) {
        in_reach = write_members(&c, 0, path, out);
        if (out->len) out->len--; /* the last ';' */
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    if (in_reach && !luapay_hmac(luapay_ctx_get(L), LUAPAY_SHA512, key, klen, out->data, out->len, mac, &maclen))
        in_reach = 0; /* the caller's own path says what failed */
    luapay_scratch_done(path);
    luapay_scratch_done(c.values);
    luapay_scratch_done(c.nodes);
    luapay_scratch_done(c.kids);
    luapay_scratch_done(c.tmp);
    luapay_scratch_done(out);
    if (!ok) return 2; /* nil, err */
    if (!in_reach) {
        lua_pushboolean(L, 0);
        return 2;
    }
    luapay_push_encoded(L, mac, maclen, LUAPAY_BASE64);
    return lua_isnil(L, 3) ? 2 : 2 + luapay_picks_push(L, 4, 3);
}

/* ---------------------------------------------------------------------
 * The Payment Page URL
 *
 * core.ecommpay_page_url(params, secret, order, base) -> url | false
 *   base .. "/payment?" (base's trailing '/' dropped) .. the query: the
 *   names of the list order first, then the others in byte order, then
 *   signature = base64(HMAC-SHA512(secret, the canonical string of the
 *   values)); each name and value encoded as PHP's urlencode. A "signature"
 *   and null values are left out. Values: strings; booleans as 1 and 0;
 *   integers (and whole floats within 2^53) in decimal; number objects
 *   from their text. false for anything else (a key that is not a string,
 *   a table to write as JSON, a value that cannot be sent): the caller's
 *   own path handles it, or says what is wrong.
 * ------------------------------------------------------------------- */

typedef struct {
    size_t name, name_len, value, value_len; /* offsets into the text buffer */
    int rank;                                /* place in order, or INT_MAX */
} page_param;

static int page_param_cmp(const void *x, const void *y, void *text) {
    const page_param *a = (const page_param *)x, *b = (const page_param *)y;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    const char *t = (const char *)text;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int r = memcmp(t + a->name, t + b->name, n);
    if (r) return r;
    return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* The value at idx as the page sends it, into text; 0 if Lua must say. */
static int page_value(lua_State *L, int idx, int number_mt, luapay_buf *text) {
    char num[64];
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return luapay_buf_add(text, s, n);
    }
    case LUA_TBOOLEAN: return luapay_buf_add(text, lua_toboolean(L, idx) ? "1" : "0", 1);
    case LUA_TNUMBER: {
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx)) return luapay_buf_add(text, num, luapay_integer_text((long long)lua_tointeger(L, idx), num));
#endif
        double v = (double)lua_tonumber(L, idx);
        if (!(v == floor(v) && fabs(v) <= LUAPAY_TWO_POW_53)) return 0;
        if (v == 0 && signbit(v)) return luapay_buf_add(text, "-0", 2); /* as "%.0f" wrote it */
        return luapay_buf_add(text, num, luapay_integer_text((long long)v, num));
    }
    case LUA_TTABLE: {
        if (!lua_getmetatable(L, idx)) return 0;
        int is_number = lua_rawequal(L, -1, number_mt);
        lua_pop(L, 1);
        if (!is_number) return 0;
        lua_rawgeti(L, idx, 1);
        size_t n;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        if (s) luapay_buf_add(text, s, n);
        lua_pop(L, 1);
        return s != NULL;
    }
    default: return 0;
    }
}

static int l_ecommpay_page_url(lua_State *L) {
    size_t klen, blen;
    if (lua_type(L, 1) != LUA_TTABLE)
        luapay_arg_error(L, 1, "ecommpay_page_url", "params",
                         lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 1)));
    const char *key = luapay_check_string(L, 2, "ecommpay_page_url", "secret", &klen);
    if (lua_type(L, 3) != LUA_TTABLE)
        luapay_arg_error(L, 3, "ecommpay_page_url", "order",
                         lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 3)));
    const char *base = luapay_check_string(L, 4, "ecommpay_page_url", "base", &blen);
    lua_settop(L, 4);
    luaL_getmetatable(L, "luapay.json_number");
    int number_mt = lua_gettop(L);
    int ok = 1;
    /* the order's names (held by the order table), read once */
    struct { const char *s; size_t n; } ranked[32];
    size_t nrank = lua_rawlen(L, 3);
    if (nrank > 32) nrank = 32;
    for (size_t i = 0; i < nrank; i++) {
        lua_rawgeti(L, 3, (int)i + 1);
        ranked[i].s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &ranked[i].n) : NULL;
        lua_pop(L, 1);
        if (!ranked[i].s) luapay_arg_error(L, 3, "ecommpay_page_url", "order", "a list of up to 32 strings expected");
    }
    /* taken after every check that raises (see luapay_scratch_in) */
    luapay_buf *text = luapay_scratch(L, LUAPAY_SCRATCH_CANON_DATA);
    luapay_buf *params = luapay_scratch(L, LUAPAY_SCRATCH_CANON_MEMBERS);
    luapay_buf *entries = luapay_scratch(L, LUAPAY_SCRATCH_CANON_ENTRIES);
    luapay_buf *order = luapay_scratch(L, LUAPAY_SCRATCH_CANON_KEY);
    luapay_buf *out = luapay_scratch(L, LUAPAY_SCRATCH_CANON_OUT);
    luapay_buf *url = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    lua_pushnil(L);
    while (ok && lua_next(L, 1)) {
        size_t nlen;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : NULL;
        if (name == NULL) {
            ok = 0;
        } else if (!(nlen == 9 && memcmp(name, "signature", 9) == 0) &&
                   !(lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL)) {
            page_param p;
            p.name = text->len;
            p.name_len = nlen;
            luapay_buf_add(text, name, nlen);
            luapay_buf_add(text, "", 1); /* strnatcmp reads one past a path */
            p.value = text->len;
            ok = page_value(L, lua_gettop(L), number_mt, text);
            p.value_len = text->len - p.value;
            p.rank = INT_MAX;
            for (size_t i = 0; i < nrank && p.rank == INT_MAX; i++)
                if (ranked[i].n == nlen && memcmp(ranked[i].s, name, nlen) == 0) p.rank = (int)i;
            luapay_buf_add(params, &p, sizeof p);
        }
        lua_pop(L, 1);
    }
    if (!ok) lua_pop(L, 1); /* the key lua_next left */
    size_t count = params->len / sizeof(page_param);
    page_param *list = (page_param *)params->data;
    /* The signed string: each name:value ("frame_mode" left out, ':' in a
     * name doubled, as the canonical walk writes them), in natural order. */
    for (size_t i = 0; ok && i < count; i++) {
        size_t nlen = list[i].name_len;
        if (nlen == 10 && memcmp(text->data + list[i].name, "frame_mode", 10) == 0) continue;
        if (!luapay_buf_reserve(text, 2 * nlen + 1)) break; /* so that name stays where it is */
        const char *name = text->data + list[i].name;
        entry_off e;
        e.path = text->len;
        if (memchr(name, ':', nlen) == NULL) luapay_buf_add(text, name, nlen);
        else for (size_t j = 0; j < nlen; j++) luapay_buf_add(text, name[j] == ':' ? "::" : name + j, name[j] == ':' ? 2 : 1);
        e.path_len = text->len - e.path;
        luapay_buf_add(text, "", 1);
        e.value = list[i].value;
        e.value_len = list[i].value_len;
        e.seq = i;
        record r;
        memset(&r, 0, sizeof r);
        r.off = e;
        luapay_buf_add(entries, &r, sizeof r);
    }
    ok = ok && !text->oom && !params->oom && sorted_join(text, entries, order, out);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    ok = ok && luapay_hmac(luapay_ctx_get(L), LUAPAY_SHA512, key, klen, out->data, out->len, mac, &maclen);
    if (ok) {
        char sig[LUAPAY_BASE64_LEN(EVP_MAX_MD_SIZE) + 1];
        size_t siglen = luapay_base64_encode(sig, mac, maclen);
        if (count > 1) qsort_r(list, count, sizeof *list, page_param_cmp, text->data); /* list is NULL when empty */
        while (blen && base[blen - 1] == '/') blen--;
        luapay_buf_add(url, base, blen);
        luapay_buf_add(url, "/payment?", 9);
        for (size_t i = 0; i < count; i++) {
            luapay_url_encode_add(url, text->data + list[i].name, list[i].name_len, 1);
            luapay_buf_add(url, "=", 1);
            luapay_url_encode_add(url, text->data + list[i].value, list[i].value_len, 1);
            luapay_buf_add(url, "&", 1);
        }
        luapay_buf_add(url, "signature=", 10);
        luapay_url_encode_add(url, sig, siglen, 1);
        ok = !url->oom;
    }
    if (ok) lua_pushlstring(L, url->data, url->len);
    else lua_pushboolean(L, 0);
    luapay_scratch_done(text);
    luapay_scratch_done(params);
    luapay_scratch_done(entries);
    luapay_scratch_done(order);
    luapay_scratch_done(out);
    luapay_scratch_done(url);
    return 1;
}

const luaL_Reg luapay_ecommpay_funcs[] = {
    {"ecommpay_canonical", l_ecommpay_canonical},
    {"ecommpay_signature", l_ecommpay_signature},
    {"ecommpay_sign", l_ecommpay_sign},
    {"ecommpay_callback", l_ecommpay_callback},
    {"ecommpay_page_url", l_ecommpay_page_url},
    {NULL, NULL},
};

/* JSON encoding for request bodies. lua-cjson 2.1.0 (Debian's) prints numbers
 * with at most 14 significant digits, so 123456789012345 would go out as
 * 1.2345678901234e+14; a payment body must carry integers exactly. This
 * encoder prints Lua 5.4 integers as integers, integral doubles up to 2^53 as
 * integers (LuaJIT has no integer type), other finite doubles in the fewest
 * of 15..17 significant digits that read back the same, always as a float
 * (2^53 + 2 is 9007199254740994.0), and sorts object keys so equal tables
 * give equal text.
 *
 *   core.json_encode(value) -> text | nil, err
 *   core.array_mt: tables with this metatable are arrays even when empty
 *   core.null (= cjson.null, the NULL light userdata) encodes as null
 *   number objects (core.json_number, json_decode's lexemes) are written as
 *   their text, so a decoded body encodes back to the same numbers
 *
 * Strings and object keys go out whole (a NUL byte as \u0000: Trustly signs
 * the whole key, so the whole key is sent). Invalid UTF-8, NaN, a table that
 * contains itself and the like give nil and an error naming the path of the
 * value, e.g. "json_encode: customer.name: invalid UTF-8 in a string (JSON
 * text must be UTF-8)". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define ARRAY_MT_KEY "luapay.array_mt"
#define MAX_DEPTH 64

typedef struct {
    lua_State *L;
    luapay_buf *b;    /* the context's JSON scratch buffer */
    luapay_buf *keys; /* key_ref entries, one segment per open object */
    const char *err;  /* first error, static text */
    char where[256];  /* its path, "" at the top */
} encoder;

typedef struct {
    const char *s;
    size_t n;
    int slot; /* stack index of its value, 0 when it is to be looked up */
} key_ref;

/* Stack slots an object leaves free above its values: every level below
 * it may need 4 (encode_table's luaL_checkstack must never raise where
 * looking values up again would not). */
#define HEADROOM (4 * (MAX_DEPTH + 2) + 8)

static void add(encoder *e, const char *s, size_t n) {
    luapay_buf_add(e->b, s, n);
}

static void add_char(encoder *e, char c) {
    luapay_buf_add(e->b, &c, 1);
}

static int fail(encoder *e, const luapay_frame *at, const char *what) {
    e->err = what;
    luapay_path_describe(at, e->where, sizeof e->where);
    return 0;
}

/* A JSON string of the n bytes at s. RFC 8259 (8.1) wants UTF-8 text, and
 * no escape stands for a byte that is not UTF-8: invalid UTF-8 is refused,
 * not replaced (Trustly signs the bytes: a replacement would send a message
 * other than the one signed). NUL goes out as \u0000, the whole string. */
/* Whether any of the 8 bytes in v is a control character, '"', '\\' or
 * not ASCII (the SWAR tests of "Bit Twiddling Hacks": a byte < n, a zero
 * byte); such a block is looked at byte by byte. */
static int special_in(uint64_t v) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    uint64_t hits = (v - ones * 0x20) | (q - ones) | (b - ones) | v;
    return (hits & highs) != 0;
}

static int add_string(encoder *e, const luapay_frame *at, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    add_char(e, '"');
    while (p < end) {
        /* Runs of bytes that need no escape go in with one copy each; the
         * scan steps 8 bytes at a time until a block holds something else. */
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (special_in(v)) break;
            p += 8;
        }
        if (p >= end) break;
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) { /* valid UTF-8 stays in the run */
            size_t len = luapay_utf8_len(p, end);
            if (len == 0) return fail(e, at, "invalid UTF-8 in a string (JSON text must be UTF-8)");
            p += len;
            continue;
        }
        add(e, (const char *)run, (size_t)(p - run));
        switch (c) {
        case '"': add(e, "\\\"", 2); break;
        case '\\': add(e, "\\\\", 2); break;
        case '\n': add(e, "\\n", 2); break;
        case '\r': add(e, "\\r", 2); break;
        case '\t': add(e, "\\t", 2); break;
        case '\b': add(e, "\\b", 2); break;
        case '\f': add(e, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            add(e, u, 6);
        }
        }
        run = ++p;
    }
    add(e, (const char *)run, (size_t)(end - run));
    add_char(e, '"');
    return 1;
}

/* The digits counted by comparisons, then written from the last back two
 * at a time (half the divisions). */
size_t luapay_integer_text(long long v, char *out) {
    static const char PAIRS[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, p = 10;
    size_t n = 1;
    while (n < 20 && u >= p) { /* 10^19 is the last power under 2^64 */
        n++;
        p *= 10;
    }
    char *o = out + (v < 0);
    if (v < 0) out[0] = '-';
    size_t i = n;
    for (; u >= 100; u /= 100) {
        i -= 2;
        memcpy(o + i, PAIRS + 2 * (u % 100), 2);
    }
    if (u >= 10) memcpy(o + i - 2, PAIRS + 2 * u, 2);
    else o[i - 1] = (char)('0' + u);
    return n + (v < 0);
}

/* The JSON text of the number at idx, into out (64 bytes); returns its
 * length, or 0 for NaN and infinity. Shared with Trustly's serialization,
 * which must sign numbers exactly as this encoder sends them. */
size_t luapay_json_number_text(lua_State *L, int idx, char *out) {
    int len;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) return luapay_integer_text((long long)lua_tointeger(L, idx), out);
#endif
    lua_Number v = lua_tonumber(L, idx);
    if (!isfinite(v)) return 0;
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        if (v == 0 && signbit(v)) len = snprintf(out, 64, "%.0f", v); /* "-0" */
        else return luapay_integer_text((long long)v, out);
    } else { /* the shortest of 15..17 digits that reads back as the same double */
        for (int digits = 15; digits <= 17; digits++) {
            len = snprintf(out, 64, "%.*g", digits, v);
            if (strtod(out, NULL) == v) break;
        }
        /* A whole double past 2^53 can come out as bare digits, which a
         * reader takes for an integer: ecommpay signs it as PHP's float
         * ("3.5093342731794E+16"), PHP would read the digits as an int. ".0"
         * keeps it a float on the wire (found by spec/65's properties). */
        if (strspn(out, "-0123456789") == (size_t)len) {
            memcpy(out + len, ".0", 3);
            len += 2;
        }
    }
    return (size_t)len;
}

static int add_number(encoder *e, const luapay_frame *at, int idx) {
    char num[64];
    size_t len = luapay_json_number_text(e->L, idx, num);
    if (len == 0) return fail(e, at, "NaN and infinity have no JSON form");
    add(e, num, len);
    return 1;
}

static int encode_value(encoder *e, int idx, const luapay_frame *at, int depth);

/* Byte order, shorter first on a tie: whole keys, NUL bytes included (the
 * order Trustly's serializer signs in). */
static int key_cmp(const void *a, const void *b) {
    const key_ref *x = (const key_ref *)a, *y = (const key_ref *)b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    if (c != 0) return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* Insertion sort for the usual handful of keys; qsort past 32. */
static void sort_keys(key_ref *v, size_t n) {
    if (n > 32) {
        qsort(v, n, sizeof *v, key_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        key_ref x = v[i];
        size_t j = i;
        while (j > 0 && key_cmp(&x, &v[j - 1]) < 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Arrays: keys exactly 1..n (or marked with core.array_mt). Objects: string
 * keys only. Anything else is an error rather than a guess. */
static int encode_table(encoder *e, int idx, const luapay_frame *at, int depth) {
    lua_State *L = e->L;
    if (luapay_path_has_table(at, lua_topointer(L, idx)))
        return fail(e, at, "a table contains itself (a cycle)");
    if (depth > MAX_DEPTH) return fail(e, at, "nested too deeply");
    /* Each level holds a key and a value on the stack; a C function is only
     * promised LUA_MINSTACK slots. A failure, not a raise: the scratch
     * buffer is held. */
    if (!lua_checkstack(L, 4)) return fail(e, at, "nested too deeply for the Lua stack");
    int is_marked_array = 0, is_number = 0;
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, ARRAY_MT_KEY);
        is_marked_array = lua_rawequal(L, -1, -2);
        luaL_getmetatable(L, "luapay.json_number");
        is_number = lua_rawequal(L, -1, -3);
        lua_pop(L, 3);
    }
    if (is_number) { /* its text was checked when the object was made */
        size_t n;
        lua_rawgeti(L, idx, 1);
        const char *text = lua_tolstring(L, -1, &n);
        if (text) add(e, text, n);
        lua_pop(L, 1);
        return text != NULL || fail(e, at, "a number object without its text");
    }
    const void *self = lua_topointer(L, idx);
    size_t n = lua_rawlen(L, idx);
    if (n > 0) { /* an array if 1..n are all its keys; anything else mixes */
        size_t count = 0, string_keys = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            string_keys += lua_type(L, -2) == LUA_TSTRING;
            lua_pop(L, 1);
        }
        if (count != n || string_keys != 0)
            return fail(e, at, "a table mixes array and object keys (or has non-string keys)");
        add_char(e, '[');
        for (size_t i = 1; i <= n; i++) {
            luapay_frame f = {at, NULL, 0, i, self};
            if (i > 1) add_char(e, ',');
            lua_rawgeti(L, idx, (int)i);
            int ok = encode_value(e, lua_gettop(L), &f, depth + 1);
            lua_pop(L, 1);
            if (!ok) return 0;
        }
        add_char(e, ']');
        return 1;
    }
    /* An object (or an empty table): one pass notes each key in this
     * object's segment of the key buffer and leaves its value on the stack,
     * so nothing is looked up again; past what the stack holds, values are
     * looked up. The key strings stay alive as keys of the table, which is
     * on the stack. */
    int top = lua_gettop(L);
    size_t base = e->keys->len, count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_settop(L, top);
            e->keys->len = base;
            return fail(e, at, "a table mixes array and object keys (or has non-string keys)");
        }
        key_ref k;
        k.s = lua_tolstring(L, -2, &k.n);
        if (lua_checkstack(L, HEADROOM)) {
            k.slot = lua_gettop(L);
            lua_pushvalue(L, -2); /* the key again, for lua_next */
        } else {
            k.slot = 0;
            lua_pop(L, 1);
        }
        luapay_buf_add(e->keys, &k, sizeof k);
        count++;
    }
    if (e->keys->oom) return fail(e, at, "out of memory");
    if (count == 0) {
        if (is_marked_array) add(e, "[]", 2);
        else add(e, "{}", 2);
        return 1;
    }
    if (count > 1) sort_keys((key_ref *)(e->keys->data + base), count);
    add_char(e, '{');
    for (size_t i = 0; i < count; i++) {
        /* re-read the entry each time: nested objects may move the buffer */
        key_ref k = ((const key_ref *)(e->keys->data + base))[i];
        luapay_frame f = {at, k.s, k.n, 0, self};
        if (i > 0) add_char(e, ',');
        if (!add_string(e, &f, k.s, k.n)) return 0;
        add_char(e, ':');
        if (k.slot) {
            if (!encode_value(e, k.slot, &f, depth + 1)) return 0;
            continue;
        }
        lua_pushlstring(L, k.s, k.n);
        lua_rawget(L, idx);
        int ok = encode_value(e, lua_gettop(L), &f, depth + 1);
        lua_pop(L, 1);
        if (!ok) return 0;
    }
    lua_settop(L, top);
    e->keys->len = base;
    add_char(e, '}');
    return 1;
}

static int encode_value(encoder *e, int idx, const luapay_frame *at, int depth) {
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return add_string(e, at, s, n);
    }
    case LUA_TNUMBER:
        return add_number(e, at, idx);
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) add(e, "true", 4);
        else add(e, "false", 5);
        return 1;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            add(e, "null", 4);
            return 1;
        }
        break;
    case LUA_TTABLE:
        return encode_table(e, idx, at, depth);
    default:
        break;
    }
    return fail(e, at, "a value is not a string, number, boolean, table or null");
}

/* core.json_encode(value) -> text | nil, err */
static int l_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    encoder e;
    e.L = L;
    e.b = luapay_scratch(L, LUAPAY_SCRATCH_JSON);
    e.keys = luapay_scratch(L, LUAPAY_SCRATCH_JSON_KEYS);
    e.err = NULL;
    e.where[0] = '\0';
    int ok = encode_value(&e, 1, NULL, 0);
    if (ok && e.b->oom) {
        ok = 0;
        e.err = "out of memory";
    }
    if (!ok) {
        lua_pushnil(L);
        if (e.where[0]) lua_pushfstring(L, "json_encode: %s: %s", e.where, e.err);
        else lua_pushfstring(L, "json_encode: %s", e.err);
        luapay_scratch_done(e.b);
        luapay_scratch_done(e.keys);
        return 2;
    }
    lua_pushlstring(L, e.b->data ? e.b->data : "", e.b->len);
    luapay_scratch_done(e.b);
    luapay_scratch_done(e.keys);
    return 1;
}

const luaL_Reg luapay_json_funcs[] = {
    {"json_encode", l_json_encode},
    {NULL, NULL},
};

/* Adds core.array_mt and core.null to the module table on top of the stack. */
void luapay_json_register(lua_State *L) {
    luaL_newmetatable(L, ARRAY_MT_KEY);
    lua_pushliteral(L, "luapay.array");
    lua_setfield(L, -2, "__name");
    lua_setfield(L, -2, "array_mt");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}

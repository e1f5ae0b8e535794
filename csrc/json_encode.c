/* JSON encoding for request bodies. lua-cjson 2.1.0 (Debian's) prints numbers
 * with at most 14 significant digits, so 123456789012345 would go out as
 * 1.2345678901234e+14; a payment body must carry integers exactly. This
 * encoder prints Lua 5.4 integers as integers, integral doubles up to 2^53 as
 * integers (LuaJIT has no integer type), other finite doubles with 17
 * significant digits, and sorts object keys so equal tables give equal text.
 *
 *   core.json_encode(value) -> text | nil, err
 *   core.array_mt: tables with this metatable are arrays even when empty
 *   core.null (= cjson.null, the NULL light userdata) encodes as null
 *   number objects (core.json_number, json_decode's lexemes) are written as
 *   their text, so a decoded body encodes back to the same numbers */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define ARRAY_MT_KEY "luapay.array_mt"
#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t n;
    int slot; /* stack index of the key; its value is above it */
} key_ref;

typedef struct {
    lua_State *L;
    luapay_buf *b; /* the context's JSON scratch buffer */
    luapay_buf *keys; /* key_ref entries, one segment per open object */
    const char *err; /* first error, static text */
} encoder;

static void add(encoder *e, const char *s, size_t n) {
    luapay_buf_add(e->b, s, n);
}

static void add_char(encoder *e, char c) {
    luapay_buf_add(e->b, &c, 1);
}

/* Whether any of the 8 bytes in v is a control character, '"', '\\' or
 * not ASCII (the SWAR tests of "Bit Twiddling Hacks": a byte < n, a zero
 * byte); such a block is looked at byte by byte. */
static int special_in(uint64_t v) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    uint64_t hits = (v - ones * 0x20) | (q - ones) | (b - ones) | v;
    return (hits & highs) != 0;
}

/* Runs of bytes that need no escape go in with one copy each; the scan
 * steps 8 bytes at a time until a block holds something to escape. */
static void add_string(encoder *e, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    add_char(e, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (special_in(v)) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        add(e, s + run, i - run);
        run = i + 1;
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
    }
    add(e, s + run, n - run);
    add_char(e, '"');
}

/* The JSON text of the number at idx, into out (64 bytes); returns its
 * length, or 0 for NaN and infinity. Shared with Trustly's serialization,
 * which must sign numbers exactly as this encoder sends them. */
/* An integer in decimal: what "%lld" prints, without printf's cost. */
static size_t integer_text(long long v, char *out) {
    char digits[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do digits[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = digits[--n];
    out[len] = '\0';
    return len;
}

size_t luapay_json_number_text(lua_State *L, int idx, char *out) {
    int len;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) return integer_text((long long)lua_tointeger(L, idx), out);
#endif
    lua_Number v = lua_tonumber(L, idx);
    if (!isfinite(v)) return 0;
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        if (v == 0 && signbit(v)) return (size_t)snprintf(out, 64, "%.0f", v); /* "-0" */
        return integer_text((long long)v, out);
    } else { /* the shortest of 15..17 digits that reads back as the same double */
        for (int digits = 15; digits <= 17; digits++) {
            len = snprintf(out, 64, "%.*g", digits, v);
            if (strtod(out, NULL) == v) break;
        }
    }
    return (size_t)len;
}

static int add_number(encoder *e, int idx) {
    char num[64];
    size_t len = luapay_json_number_text(e->L, idx, num);
    if (len == 0) {
        e->err = "NaN and infinity have no JSON form";
        return 0;
    }
    add(e, num, len);
    return 1;
}

static int encode_value(encoder *e, int idx, int depth);

/* Byte order, the shorter first when one is a prefix of the other. */
static int key_cmp(const void *a, const void *b) {
    const key_ref *x = (const key_ref *)a, *y = (const key_ref *)b;
    int r = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return r ? r : (x->n > y->n) - (x->n < y->n);
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
static int encode_table(encoder *e, int idx, int depth) {
    lua_State *L = e->L;
    if (depth > MAX_DEPTH) {
        e->err = "nested too deeply (a cycle?)";
        return 0;
    }
    /* Each level holds a key and a value on the stack; a C function is only
     * promised LUA_MINSTACK slots. */
    luaL_checkstack(L, 4, "json_encode: nesting");
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
        if (!text) e->err = "a number object without its text";
        return text != NULL;
    }
    size_t n = lua_rawlen(L, idx), count = 0;
    if (n > 0) { /* an array if 1..n are all its keys; anything else mixes */
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        if (count != n) {
            e->err = "a table mixes array and object keys (or has non-string keys)";
            return 0;
        }
        add_char(e, '[');
        for (size_t i = 1; i <= n; i++) {
            if (i > 1) add_char(e, ',');
            lua_rawgeti(L, idx, (int)i);
            int ok = encode_value(e, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
            if (!ok) return 0;
        }
        add_char(e, ']');
        return 1;
    }
    /* An object: every key and value on the stack (no lookups again), their
     * order in a segment of the keys scratch buffer (inner objects add
     * theirs above it). */
    int base = lua_gettop(L);
    size_t seg = e->keys->len / sizeof(key_ref);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_settop(L, base);
            e->keys->len = seg * sizeof(key_ref);
            e->err = "a table mixes array and object keys (or has non-string keys)";
            return 0;
        }
        key_ref r;
        r.s = lua_tolstring(L, -2, &r.n); /* a string: the stack keeps it alive */
        r.slot = lua_gettop(L) - 1;
        luapay_buf_add(e->keys, &r, sizeof r);
        count++;
        luaL_checkstack(L, 3, "json_encode: object size");
        lua_pushvalue(L, -2);
    }
    if (count == 0 && is_marked_array) {
        add(e, "[]", 2);
        return 1;
    }
    if (e->keys->oom) {
        e->err = "out of memory";
        return 0;
    }
    sort_keys((key_ref *)e->keys->data + seg, count);
    add_char(e, '{');
    int ok = 1;
    for (size_t i = 0; i < count && ok; i++) {
        key_ref r = ((key_ref *)e->keys->data)[seg + i]; /* data may move below */
        if (i > 0) add_char(e, ',');
        add_string(e, r.s, r.n);
        add_char(e, ':');
        ok = encode_value(e, r.slot + 1, depth + 1);
    }
    e->keys->len = seg * sizeof(key_ref);
    lua_settop(L, base);
    if (ok) add_char(e, '}');
    return ok;
}

static int encode_value(encoder *e, int idx, int depth) {
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        add_string(e, s, n);
        return 1;
    }
    case LUA_TNUMBER:
        return add_number(e, idx);
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
        return encode_table(e, idx, depth);
    default:
        break;
    }
    e->err = "a value is not a string, number, boolean, table or null";
    return 0;
}

/* core.json_encode(value) -> text | nil, err */
static int l_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    encoder e = {L, luapay_scratch(L, LUAPAY_SCRATCH_JSON), luapay_scratch(L, LUAPAY_SCRATCH_JSON_KEYS), NULL};
    int ok = encode_value(&e, 1, 0);
    if (ok && e.b->oom) {
        ok = 0;
        e.err = "out of memory";
    }
    luapay_scratch_done(e.keys);
    if (!ok) {
        luapay_scratch_done(e.b);
        lua_pushnil(L);
        lua_pushfstring(L, "json_encode: %s", e.err);
        return 2;
    }
    lua_pushlstring(L, e.b->data, e.b->len);
    luapay_scratch_done(e.b);
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

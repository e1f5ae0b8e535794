/* A strict JSON reader (RFC 8259) for bodies whose exact text matters:
 * signed callbacks and notifications. lua-cjson reads every number as a
 * double, so 9223372036854775807 or 1.0 lose the text their signature was
 * made over.
 *
 *   core.json_decode(text [, opts]) -> value | nil, err
 *     objects -> tables; arrays -> tables with core.array_mt; null -> core.null
 *     numbers -> Lua numbers (Lua 5.4: integers when the text is an integer
 *                that fits), or with opts.numbers = "lexeme" -> number objects
 *   core.json_number(text) -> a number object: {text} with core.number_mt
 *     (tostring gives the text; core.json_encode writes the text as is)
 *
 * Strings are decoded to UTF-8 (\uXXXX with surrogate pairs); a lone
 * surrogate, a raw control character, invalid UTF-8 or anything after the
 * value is an error. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define NUMBER_MT_KEY "luapay.json_number"
#define JR_EVENT(r, ev, s, n, held) ((void)(ev)) /* core.json_decode has no sink */
#include "json_read.h"

/* 1 for the bytes a string holds as they are: printable ASCII but '"' and
 * '\\' (bytes from 0x80 are checked as UTF-8, escapes decoded). */
#define ONES16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
const unsigned char luapay_json_as_is[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
    ONES16, ONES16,                                 /* 0x30, 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\\' */
    ONES16, ONES16,                                 /* 0x60, 0x70 */
};
#undef ONES16

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

static void put_utf8(luapay_buf *b, unsigned cp) {
    unsigned char s[4];
    size_t n;
    if (cp < 0x80) {
        s[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (unsigned char)(0xC0 | cp >> 6);
        s[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (unsigned char)(0xE0 | cp >> 12);
        s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        s[0] = (unsigned char)(0xF0 | cp >> 18);
        s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        s[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    luapay_buf_add(b, s, n);
}

/* Length of the valid UTF-8 sequence at p (no overlongs, no surrogates,
 * at most U+10FFFF), or 0. The encoder checks strings with it too. */
size_t luapay_utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* Scans the string whose opening quote is at *pp, checking it as
 * core.json_decode does: *pp ends past the closing quote (or where it went
 * wrong), *decoded says where the text is: 0, the bytes between the quotes
 * as they are; 1, decoded (escapes) and appended to b. NULL, or what is
 * wrong. Shared with the readers that work on a body's text
 * (trustly_notification.c). */
const char *luapay_json_scan_string(const unsigned char **pp, const unsigned char *end, luapay_buf *b, int *decoded) {
    const unsigned char *p = *pp + 1, *run = p;
    const char *err = NULL;
    *decoded = 0;
    for (;;) {
        p = luapay_json_verbatim(p, end);
        if (p >= end) {
            err = "unterminated string";
            break;
        }
        unsigned c = *p;
        if (c == '"') break;
        if (c < 0x20) {
            err = "control character in a string";
            break;
        }
        if (c >= 0x80) {
            size_t n = luapay_utf8_len(p, end);
            if (n == 0) {
                err = "invalid UTF-8 in a string";
                break;
            }
            p += n;
            continue;
        }
        /* a backslash escape */
        *decoded = 1;
        luapay_buf_add(b, run, (size_t)(p - run));
        if (end - p < 2) {
            err = "unterminated string";
            break;
        }
        unsigned e = p[1];
        p += 2;
        const char *simple = NULL;
        switch (e) {
        case '"': simple = "\""; break;
        case '\\': simple = "\\"; break;
        case '/': simple = "/"; break;
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 4 || !hex4(p, &cp)) {
                err = "bad \\u escape";
                break;
            }
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                err = "lone low surrogate in \\u escape";
                break;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    err = "high surrogate without its low surrogate";
                    break;
                }
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(b, cp);
            break;
        }
        default:
            err = "bad escape in a string";
            break;
        }
        if (err) break;
        if (simple) luapay_buf_add(b, simple, 1);
        run = p;
    }
    if (!err && *decoded) {
        luapay_buf_add(b, run, (size_t)(p - run));
        if (b->oom) err = "out of memory";
    }
    *pp = err ? p : p + 1;
    return err;
}

/* Strings (json_read.h's jr_push_string): one of 1 to LUAPAY_SHORT bytes (keys,
 * codes, statuses: bodies repeat them call after call) comes from the
 * context's table when its slot holds it: lua_pushlstring hashes every
 * byte and looks the string up, and makes it again when it died since. Its
 * length and two words that cover its bytes (the first and the last eight,
 * or four, or the bytes) tell the string, so no bytes are compared.
 * Slots go in pairs, the string used last first: two alike strings that
 * fall on the same pair do not push each other out call after call. A
 * miss takes the first slot (here, off the common path; slot
 * LUAPAY_SHORTS for a string that is not short). */
void luapay_json_push_miss(luapay_json_reader *r, const char *s, size_t n, size_t slot, uint64_t a, uint64_t b) {
    lua_State *L = r->L;
    lua_pushlstring(L, s, n);
    if (slot >= LUAPAY_SHORTS) return; /* not a short one */
    luapay_short *e = &r->shorts[slot];
    if (e->n) { /* the slot's string to the other slot of the pair (the table first, then what it says) */
        lua_rawgeti(L, r->strings, (lua_Integer)slot + 1);
        lua_rawseti(L, r->strings, (lua_Integer)slot + 2);
        e[1] = e[0];
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, r->strings, (lua_Integer)slot + 1);
    e->a = a, e->b = b, e->n = n;
}

/* jr_read_string for a string that is not printable ASCII without escapes:
 * scanned again from its opening quote, checked and decoded by
 * luapay_json_scan_string. */
int luapay_json_string_rest(luapay_json_reader *r, const char **text, size_t *len) {
    luapay_buf *b = r->scratch;
    const unsigned char *s = r->p + 1;
    int decoded;
    b->len = 0;
    const char *err = luapay_json_scan_string(&r->p, r->end, b, &decoded);
    if (err) return jr_fail(r, err);
    *text = decoded ? b->data : (const char *)s;
    *len = decoded ? b->len : (size_t)(r->p - 1 - s);
    jr_push_string(r, *text, *len);
    return decoded ? 2 : 1;
}

static void push_number_object(lua_State *L, const char *text, size_t len) {
    lua_createtable(L, 1, 0);
    lua_pushlstring(L, text, len);
    lua_rawseti(L, -2, 1);
    luaL_getmetatable(L, NUMBER_MT_KEY);
    lua_setmetatable(L, -2);
}

/* Scans the number at *pp as core.json_decode does: 1 with *pp past its
 * text (*is_integer: no fraction, no exponent), or 0 with *pp where it
 * went wrong. Shared as luapay_json_scan_string is. */
int luapay_json_scan_number(const unsigned char **pp, const unsigned char *end, int *is_integer) {
    const unsigned char *p = *pp;
    int ok = 0;
    *is_integer = 1;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        goto done;
    }
    if (p < end && *p == '.') {
        *is_integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') goto done;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') goto done;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    ok = 1;
done:
    *pp = p;
    return ok;
}

int luapay_json_push_number(luapay_json_reader *r, const unsigned char *s, size_t len, int is_integer) {
    char text[400];
    if (r->lexemes) {
        push_number_object(r->L, (const char *)s, len);
        return 1;
    }
    size_t neg = s[0] == '-';
    if (is_integer && len - neg <= 18) { /* exact in an int64: no strtoll, no strtod */
        long long v = 0;
        for (size_t i = neg; i < len; i++) v = v * 10 + (s[i] - '0');
#if LUA_VERSION_NUM >= 503
        lua_pushinteger(r->L, (lua_Integer)(neg ? -v : v));
        return 1;
#else
        if (v || !neg) { /* "-0" is -0.0 */
            lua_pushnumber(r->L, (lua_Number)(neg ? -v : v)); /* rounded to nearest, as strtod does */
            return 1;
        }
#endif
    }
    if (len >= sizeof text) return jr_fail(r, "number too long");
    memcpy(text, s, len);
    text[len] = '\0';
#if LUA_VERSION_NUM >= 503
    if (is_integer) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0) {
            lua_pushinteger(r->L, (lua_Integer)v);
            return 1;
        }
    }
#else
    (void)is_integer;
#endif
    lua_pushnumber(r->L, (lua_Number)strtod(text, NULL));
    return 1;
}

void luapay_json_flush(lua_State *L, int t, int object, int *n, int distinct) {
    int pending = lua_gettop(L) - t;
    if (lua_isnil(L, t)) {
        lua_createtable(L, object ? 0 : pending, object ? pending / 2 : 0);
        if (!object) {
            luaL_getmetatable(L, "luapay.array_mt");
            lua_setmetatable(L, -2);
        }
        lua_replace(L, t);
    }
    if (object && distinct) { /* no key repeats: the pairs from the top down, no copies */
        for (int i = pending / 2; i > 0; i--) lua_rawset(L, t);
    } else if (object) { /* in order: a repeated key, the last one wins, as in PHP */
        for (int i = t + 1; i < t + pending - 2; i += 2) {
            lua_pushvalue(L, i);
            lua_pushvalue(L, i + 1);
            lua_rawset(L, t);
        }
        if (pending) lua_rawset(L, t); /* the last pair, on top: no copies */
        lua_settop(L, t);
    } else {
        for (int i = pending; i > 0; i--) lua_rawseti(L, t, *n + i);
        *n += pending;
    }
}

int luapay_json_begin(lua_State *L, luapay_json_reader *r, const char *text, size_t len, int lexemes) {
    int top = lua_gettop(L);
    luapay_ctx *ctx = luapay_ctx_get(L);
    luaL_checkstack(L, 2, "json_decode");
    if (ctx->strings_ref == 0) { /* the first read: the table for jr_push_string */
        lua_createtable(L, LUAPAY_SHORTS, 0);
        ctx->strings_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        memset(ctx->strings, 0, sizeof ctx->strings);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->strings_ref);
    *r = (luapay_json_reader){L, (const unsigned char *)text, (const unsigned char *)text,
                              (const unsigned char *)text + len, lexemes, luapay_scratch(L, LUAPAY_SCRATCH_JSON_DECODE),
                              NULL, NULL, ctx->strings, top + 1};
    return top;
}

int luapay_json_end(luapay_json_reader *r, int ok, int top) {
    lua_State *L = r->L;
    luapay_scratch_done(r->scratch);
    if (!ok) {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushfstring(L, "json_decode: %s at byte %d", r->err, (int)(r->p - r->start) + 1);
        return 0;
    }
    lua_replace(L, top + 1); /* the value where the table was */
    return 1;
}

/* core.json_decode(text [, opts]) -> value | nil, err */
static int l_json_decode(lua_State *L) {
    size_t len;
    const char *text = luapay_check_string(L, 1, "json_decode", "text", &len);
    int lexemes = 0;
    if (!lua_isnoneornil(L, 2)) {
        if (!lua_istable(L, 2)) luapay_arg_error(L, 2, "json_decode", "opts", "table expected");
        lua_getfield(L, 2, "numbers");
        if (!lua_isnil(L, -1)) {
            static const char *const modes[] = {"number", "lexeme", NULL};
            lexemes = luapay_check_option(L, lua_gettop(L), "json_decode", "opts.numbers", NULL, modes) == 1;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    return jr_read(L, text, len, lexemes, NULL) ? 1 : 2;
}

/* core.json_number(text) -> number object (the text must be a JSON number) */
static int l_json_number(lua_State *L) {
    size_t len;
    const char *text = luapay_check_string(L, 1, "json_number", "text", &len);
    luapay_json_reader r = {L, (const unsigned char *)text, (const unsigned char *)text,
                            (const unsigned char *)text + len, 1, NULL, NULL, NULL, NULL, 0};
    if (!jr_read_number(&r) || r.p != r.end) luapay_arg_error(L, 1, "json_number", "text", "not a JSON number");
    return 1;
}

static int number_tostring(lua_State *L) {
    lua_rawgeti(L, 1, 1);
    return 1;
}

const luaL_Reg luapay_json_decode_funcs[] = {
    {"json_decode", l_json_decode},
    {"json_number", l_json_number},
    {NULL, NULL},
};

/* Adds core.number_mt to the module table on top of the stack. */
void luapay_json_decode_register(lua_State *L) {
    luaL_newmetatable(L, NUMBER_MT_KEY);
    lua_pushcfunction(L, number_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "luapay.json_number");
    lua_setfield(L, -2, "__name");
    lua_setfield(L, -2, "number_mt");
}

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
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define NUMBER_MT_KEY "luapay.json_number"
#define MAX_DEPTH 128

typedef struct {
    lua_State *L;
    const unsigned char *p, *start, *end;
    int lexemes;
    luapay_buf *scratch; /* boxed: freed by __gc if a Lua error unwinds */
    const char *err;
} reader;

static void skip_space(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int fail(reader *r, const char *msg) {
    if (!r->err) r->err = msg;
    return 0;
}

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

/* Reads a string (r->p at the opening quote) into the scratch buffer and
 * pushes it. */
static int read_string(reader *r) {
    luapay_buf *b = r->scratch;
    b->len = 0;
    r->p++;
    for (;;) {
        const unsigned char *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && *r->p >= 0x20 && *r->p < 0x80) r->p++;
        luapay_buf_add(b, run, (size_t)(r->p - run));
        if (r->p >= r->end) return fail(r, "unterminated string");
        unsigned c = *r->p;
        if (c == '"') {
            r->p++;
            break;
        }
        if (c < 0x20) return fail(r, "control character in a string");
        if (c >= 0x80) {
            size_t n = luapay_utf8_len(r->p, r->end);
            if (n == 0) return fail(r, "invalid UTF-8 in a string");
            luapay_buf_add(b, r->p, n);
            r->p += n;
            continue;
        }
        /* a backslash escape */
        if (r->end - r->p < 2) return fail(r, "unterminated string");
        unsigned e = r->p[1];
        r->p += 2;
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
            if (r->end - r->p < 4 || !hex4(r->p, &cp)) return fail(r, "bad \\u escape");
            r->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(r, "lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' || !hex4(r->p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return fail(r, "high surrogate without its low surrogate");
                r->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(b, cp);
            continue;
        }
        default:
            return fail(r, "bad escape in a string");
        }
        luapay_buf_add(b, simple, 1);
    }
    if (b->oom) return fail(r, "out of memory");
    lua_pushlstring(r->L, b->data ? b->data : "", b->len);
    return 1;
}

static void push_number_object(lua_State *L, const char *text, size_t len) {
    lua_createtable(L, 1, 0);
    lua_pushlstring(L, text, len);
    lua_rawseti(L, -2, 1);
    luaL_getmetatable(L, NUMBER_MT_KEY);
    lua_setmetatable(L, -2);
}

static int read_number(reader *r) {
    const unsigned char *s = r->p;
    int is_integer = 1;
    if (r->p < r->end && *r->p == '-') r->p++;
    if (r->p < r->end && *r->p == '0') {
        r->p++;
    } else if (r->p < r->end && *r->p >= '1' && *r->p <= '9') {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    } else {
        return fail(r, "bad number");
    }
    if (r->p < r->end && *r->p == '.') {
        is_integer = 0;
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9') return fail(r, "bad number");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        is_integer = 0;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9') return fail(r, "bad number");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    }
    size_t len = (size_t)(r->p - s);
    char text[400];
    if (r->lexemes) {
        push_number_object(r->L, (const char *)s, len);
        return 1;
    }
    if (len >= sizeof text) return fail(r, "number too long");
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

static int read_value(reader *r, int depth);

static int read_container(reader *r, int depth, int object) {
    lua_State *L = r->L;
    if (depth > MAX_DEPTH) return fail(r, "nested too deeply");
    luaL_checkstack(L, 4, "json_decode: nesting");
    r->p++; /* [ or { */
    lua_newtable(L);
    if (!object) {
        luaL_getmetatable(L, "luapay.array_mt");
        lua_setmetatable(L, -2);
    }
    skip_space(r);
    unsigned char close = object ? '}' : ']';
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 1;
    }
    for (int n = 1;; n++) {
        skip_space(r);
        if (object) {
            if (r->p >= r->end || *r->p != '"') return fail(r, "object key expected");
            if (!read_string(r)) return 0;
            skip_space(r);
            if (r->p >= r->end || *r->p != ':') return fail(r, "':' expected after an object key");
            r->p++;
        }
        if (!read_value(r, depth + 1)) return 0;
        if (object) lua_rawset(L, -3); /* a repeated key: the last one wins, as in PHP */
        else lua_rawseti(L, -2, n);
        skip_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 1;
        }
        return fail(r, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int literal(reader *r, const char *word, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return fail(r, "unexpected character");
    r->p += n;
    return 1;
}

static int read_value(reader *r, int depth) {
    skip_space(r);
    if (r->p >= r->end) return fail(r, "unexpected end of input");
    switch (*r->p) {
    case '{': return read_container(r, depth, 1);
    case '[': return read_container(r, depth, 0);
    case '"': return read_string(r);
    case 't':
        if (!literal(r, "true", 4)) return 0;
        lua_pushboolean(r->L, 1);
        return 1;
    case 'f':
        if (!literal(r, "false", 5)) return 0;
        lua_pushboolean(r->L, 0);
        return 1;
    case 'n':
        if (!literal(r, "null", 4)) return 0;
        lua_pushlightuserdata(r->L, NULL);
        return 1;
    default:
        return read_number(r);
    }
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
    reader r = {L, (const unsigned char *)text, (const unsigned char *)text, (const unsigned char *)text + len,
                lexemes, luapay_buf_box(L), NULL};
    int ok = read_value(&r, 0);
    if (ok) {
        skip_space(&r);
        if (r.p != r.end) ok = fail(&r, "unexpected text after the value");
    }
    luapay_buf_free(r.scratch);
    if (!ok) {
        lua_pushnil(L);
        lua_pushfstring(L, "json_decode: %s at byte %d", r.err, (int)(r.p - r.start) + 1);
        return 2;
    }
    return 1;
}

/* core.json_number(text) -> number object (the text must be a JSON number) */
static int l_json_number(lua_State *L) {
    size_t len;
    const char *text = luapay_check_string(L, 1, "json_number", "text", &len);
    reader r = {L, (const unsigned char *)text, (const unsigned char *)text, (const unsigned char *)text + len, 1,
                NULL, NULL};
    if (!read_number(&r) || r.p != r.end) luapay_arg_error(L, 1, "json_number", "text", "not a JSON number");
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

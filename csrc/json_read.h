/* The body of core.json_decode's reader (json_decode.c), for the C files
 * that read JSON with a sink of their own: each includes this after
 * defining JR_EVENT(r, ev, s, n, held), what a step of the reading hands to its
 * sink (r->sink, an enum luapay_json_event; see core.h; held: the bytes s
 * are the text's, not decoded), or ((void)0).
 * The reader is made again in that file around its sink, so each event is
 * a call the compiler inlines, its kind a constant (an indirect call per
 * event cost the callback about a tenth of its time); the pieces that do
 * not see the sink are json_decode.c's, declared in core.h. The text is a
 * Lua string's, so a NUL follows it: a byte is looked at without testing
 * for the end first where the NUL there fails the test as the end would. */
#ifndef JR_EVENT
#error "define JR_EVENT(r, ev, s, n, held) before including json_read.h"
#endif
/* JR_DISTINCT(r): after an object's close event, whether the sink found
 * its keys all different (their pairs are then set with no copies, in any
 * order); 0 when it does not know. */
#ifndef JR_DISTINCT
#define JR_DISTINCT(r) 0
#endif

static inline int jr_fail(luapay_json_reader *r, const char *msg) {
    if (!r->err) r->err = msg;
    return 0;
}

static inline void jr_skip_space(luapay_json_reader *r) {
    /* most often none: one test for a byte above ' ' (the NUL at the end is no space) */
    while (*r->p <= ' ' && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

/* Pushes the string s (n bytes): one of 1 to LUAPAY_SHORT bytes from the
 * context's table when its slot holds it (see luapay_json_push_miss), by
 * its length and two words that cover its bytes. */
static inline __attribute__((always_inline)) void jr_push_string(luapay_json_reader *r, const char *s, size_t n) {
    if (r->shorts == NULL || n - 1 >= LUAPAY_SHORT) /* n == 0 too */
        return luapay_json_push_miss(r, s, n, LUAPAY_SHORTS, 0, 0);
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        a = x, b = y;
    } else { /* 1 to 3 bytes: the first, the middle one and the last tell them, with n */
        a = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8 | (uint64_t)(unsigned char)s[n - 1] << 16;
    }
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15u) ^ n) * 0xFF51AFD7ED558CCDu;
    size_t slot = (size_t)(h >> 40) % (LUAPAY_SHORTS / 2) * 2; /* high bits: all of a and b in them */
    const luapay_short *e = &r->shorts[slot];
    if (e[0].n == n && e[0].a == a && e[0].b == b) lua_rawgeti(r->L, r->strings, (lua_Integer)slot + 1);
    else if (e[1].n == n && e[1].a == a && e[1].b == b) lua_rawgeti(r->L, r->strings, (lua_Integer)slot + 2);
    else luapay_json_push_miss(r, s, n, slot, a, b);
}

/* Reads a string (r->p at the opening quote), pushes it and hands it to
 * the sink as event ev. One of printable ASCII without escapes, the most
 * common, is pushed from the text itself here; any other goes on in
 * luapay_json_string_rest (1: the text holds it as it is, 2: decoded). */
static inline __attribute__((always_inline)) int jr_read_string(luapay_json_reader *r, int ev) {
    const char *s;
    size_t n;
    const unsigned char *q = luapay_json_run(r->p + 1, r->end);
    while (luapay_json_as_is[*q]) q++; /* the last few: the NUL at the end is not as is */
    if (*q == '"') { /* nor a quote */
        s = (const char *)r->p + 1;
        n = (size_t)(q - r->p - 1);
        r->p = q + 1;
        jr_push_string(r, s, n);
        JR_EVENT(r, ev, s, n, 1);
        return 1;
    }
    int got = luapay_json_string_rest(r, &s, &n);
    if (!got) return 0;
    JR_EVENT(r, ev, s, n, got == 1);
    return 1;
}

static inline int jr_read_number(luapay_json_reader *r) {
    const unsigned char *s = r->p;
    int is_integer;
    if (!r->lexemes) { /* most: an integer of up to 18 digits, its value read as it is scanned */
        const unsigned char *d = s + (*s == '-'), *p = d;
        unsigned long long v = 0;
        if (*p != '0') /* "0", "-0", "01": below */
            for (; (unsigned)(*p - '0') < 10; p++) v = v * 10 + (unsigned)(*p - '0'); /* the NUL ends it */
        if (p > d && p - d <= 18 && *p != '.' && *p != 'e' && *p != 'E') {
            r->p = p;
            JR_EVENT(r, LUAPAY_JSON_NUMBER, (const char *)s, (size_t)(p - s), 1);
            long long x = d > s ? -(long long)v : (long long)v;
#if LUA_VERSION_NUM >= 503
            lua_pushinteger(r->L, (lua_Integer)x);
#else
            lua_pushnumber(r->L, (lua_Number)x); /* not 0: no "-0" here; rounded to nearest, as strtod does */
#endif
            return 1;
        }
    }
    if (!luapay_json_scan_number(&r->p, r->end, &is_integer)) return jr_fail(r, "bad number");
    JR_EVENT(r, LUAPAY_JSON_NUMBER, (const char *)s, (size_t)(r->p - s), 1);
    return luapay_json_push_number(r, s, (size_t)(r->p - s), is_integer);
}

static int jr_read_value(luapay_json_reader *r, int depth);

static int jr_read_container(luapay_json_reader *r, int depth, int object) {
    lua_State *L = r->L;
    if (depth > LUAPAY_JSON_MAX_DEPTH) return jr_fail(r, "nested too deeply");
    /* no raise here: the caller holds scratch buffers (a raise would keep
     * them held), and a body nested past the Lua stack is bad input */
    if (!lua_checkstack(L, 2 * LUAPAY_JSON_PENDING + 4)) return jr_fail(r, "nested too deeply for the Lua stack");
    r->p++; /* [ or { */
    if (object) JR_EVENT(r, LUAPAY_JSON_OBJECT, NULL, 0, 1);
    else JR_EVENT(r, LUAPAY_JSON_ARRAY, NULL, 0, 1);
    lua_pushnil(L); /* the table, made by luapay_json_flush */
    int t = lua_gettop(L), set = 0, pending = 0; /* members or elements since the last flush */
    jr_skip_space(r);
    unsigned char close = object ? '}' : ']';
    if (*r->p == close) {
        r->p++;
        JR_EVENT(r, LUAPAY_JSON_CLOSE, NULL, 0, 1);
        luapay_json_flush(L, t, object, &set, 0);
        return 1;
    }
    int deep = depth > LUAPAY_JSON_MAX_DEPTH / 2;
    for (size_t n = 0;; n++) {
        jr_skip_space(r);
        /* Deep down, a level's pending pairs go into its table before the
         * next member whenever the stack runs short: a C function gets
         * 8000 slots under LuaJIT and Lua 5.1, and 128 levels holding 64
         * each would not fit. (Nearer the top, never: there a table is
         * made at its final size in one flush.) */
        if (__builtin_expect(deep, 0) && pending && !lua_checkstack(L, 4 * LUAPAY_JSON_PENDING + 8)) {
            luapay_json_flush(L, t, object, &set, 0);
            pending = 0;
        }
        if (object) {
            if (*r->p != '"') return jr_fail(r, "object key expected");
            if (!jr_read_string(r, LUAPAY_JSON_MEMBER)) return 0;
            jr_skip_space(r);
            if (*r->p != ':') return jr_fail(r, "':' expected after an object key");
            r->p++;
        } else {
            JR_EVENT(r, LUAPAY_JSON_ELEMENT, NULL, n, 1);
        }
        jr_skip_space(r);
        if (*r->p == '"') { /* most values: no call */
            if (!jr_read_string(r, LUAPAY_JSON_STRING)) return 0;
        } else if (!jr_read_value(r, depth + 1)) {
            return 0;
        }
        if (++pending == LUAPAY_JSON_PENDING) { /* a key and a value each, or a value */
            luapay_json_flush(L, t, object, &set, 0);
            pending = 0;
        }
        jr_skip_space(r);
        if (*r->p == ',') {
            r->p++;
            continue;
        }
        if (*r->p == close) {
            r->p++;
            JR_EVENT(r, LUAPAY_JSON_CLOSE, NULL, 0, 1); /* before the flush: JR_DISTINCT */
            luapay_json_flush(L, t, object, &set, object && JR_DISTINCT(r));
            return 1;
        }
        return jr_fail(r, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static inline int jr_literal(luapay_json_reader *r, const char *word, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return jr_fail(r, "unexpected character");
    r->p += n;
    return 1;
}

static int jr_read_value(luapay_json_reader *r, int depth) {
    jr_skip_space(r);
    if (r->p >= r->end) return jr_fail(r, "unexpected end of input");
    switch (*r->p) {
    case '{': return jr_read_container(r, depth, 1);
    case '[': return jr_read_container(r, depth, 0);
    case '"': return jr_read_string(r, LUAPAY_JSON_STRING);
    case 't':
        if (!jr_literal(r, "true", 4)) return 0;
        lua_pushboolean(r->L, 1);
        JR_EVENT(r, LUAPAY_JSON_TRUE, NULL, 0, 1);
        return 1;
    case 'f':
        if (!jr_literal(r, "false", 5)) return 0;
        lua_pushboolean(r->L, 0);
        JR_EVENT(r, LUAPAY_JSON_FALSE, NULL, 0, 1);
        return 1;
    case 'n':
        if (!jr_literal(r, "null", 4)) return 0;
        lua_pushlightuserdata(r->L, NULL);
        JR_EVENT(r, LUAPAY_JSON_NULL, NULL, 0, 1);
        return 1;
    default:
        return jr_read_number(r);
    }
}

/* Reads text (one JSON value) as core.json_decode does and pushes it, or
 * pushes nil and "json_decode: ... at byte N" and returns 0; the steps to
 * sink (JR_EVENT). In a function with the context as upvalue 1. */
static int jr_read(lua_State *L, const char *text, size_t len, int lexemes, void *sink) {
    luapay_json_reader r;
    int top = luapay_json_begin(L, &r, text, len, lexemes);
    r.sink = sink;
    int ok = jr_read_value(&r, 0);
    if (ok) {
        jr_skip_space(&r);
        if (r.p != r.end) ok = jr_fail(&r, "unexpected text after the value");
    }
    return luapay_json_end(&r, ok, top);
}

/* Field validation: schemas declared as Lua tables, compiled once into C
 * data (core.schema), walked in C over a value (core.validate), reporting
 * every violation; and core.check for single values.
 *
 * THE SCHEMA LANGUAGE
 *
 * A schema is a table with a `type` and that type's options. Unknown types,
 * unknown options and options of the wrong type raise an error naming the
 * schema path ("schema: bad argument #1 'schema' (payment.amount: ...)").
 *
 *   options of every type
 *     type        string, one of the types below (required)
 *     required    boolean: the field must be present (nil and JSON null,
 *                 i.e. a NULL lightuserdata such as cjson.null, are absent)
 *     required_if {field = "sibling", equals = v} or {field = ..., ["in"] = {v, ...}}:
 *                 required when the sibling field of the same object has
 *                 that value (v: string, number or boolean)
 *     secret      boolean: the violations of the field and of everything in
 *                 it carry secret = true (messages never contain any value,
 *                 secret or not; unknown keys inside a secret value are named
 *                 by their type only, "(string key)")
 *     description string, ignored
 *
 *   type        value                      options
 *   "any"       anything present
 *   "string"    a string of valid UTF-8    min_len, max_len (characters), pattern (POSIX ERE
 *                                          over bytes in the C locale, whatever the process
 *                                          locale; searched as regexec does: anchor it with ^...$),
 *                                          forbid (a string of forbidden characters),
 *                                          enum ({"A", "B"}), pattern_by
 *   "enum"      a string among `values`    values = {"C", "R", "U"} (required)
 *   "boolean"   true or false
 *   "integer"   an integral number, |v| <= 2^53 (100.0 counts, as JSON decoders give it)
 *                                          min, max
 *   "number"    a finite number            min, max
 *   "amount"    minor units: a Lua integer (Lua 5.4 integer subtype, LuaJIT integral
 *               double), 0 <= v <= 2^53    min, max, allow_negative (then v >= -2^53)
 *   "decimal"   a string "103.00": digits, a point and exactly `decimals` digits
 *               (none and no point for 0); no sign, exponent, spaces or leading zeros
 *                                          decimals (default 2), max_digits (total),
 *                                          min, max (decimal strings), positive, allow_negative
 *   "currency"  an active ISO 4217 code    enum
 *   "country"   an ISO 3166-1 alpha-2 code enum
 *   "language"  an ISO 639-1 code          enum
 *   "locale"    ll_CC: language _ country  enum
 *   "iban"      ISO 13616, electronic format: registry country, length, mod 97
 *   "bic"       ISO 9362: 8 or 11 characters, a valid country
 *   "email"     one @, a dot in the domain, no white space or control characters
 *               (ASCII or not), <= 254 characters   max_len
 *   "url"       absolute http(s) URL, no credentials   max_len
 *   "date"      YYYY-MM-DD, a real day (leap years)
 *   "datetime"  YYYY-MM-DDThh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]
 *   "ip", "ipv4", "ipv6"   an IP address (ip: either)
 *   "object"    a table                    fields = {name = schema, ...},
 *                                          additional (default true; false: unknown fields
 *                                          are violations)
 *   "array"     a table with keys 1..n     items (schema of each element), min_items, max_items
 *
 *   Conditional formats (string fields of an object):
 *     pattern_by = {field = "sibling", patterns = {VALUE = "ERE" | {format = F}, ...},
 *                   label = "account number"}:
 *       the pattern for the sibling's value, or the format F (one of "bic",
 *       "iban", "email", "url", "date") it asks for; other values, and a
 *       missing sibling, skip the check (that field reports itself). With a
 *       label a mismatch says "does not match the VALUE <label> format".
 *       A provider's tables (account formats by bank, say) are data handed
 *       in this way, from the provider's Lua module: the core knows no
 *       provider's field names.
 *
 * VIOLATIONS
 *
 * core.validate(schema, value) -> true | nil, violations. Each violation is
 * {path = "account.number", code = "pattern", message = "account.number: ..."}
 * (+ secret = true within secret fields). Paths are dotted, array elements
 * "items[1]" (1-based); the root is "" (messages say "value"). Codes:
 *   required  a required field is absent     type      wrong Lua type
 *   unknown   a field the schema forbids     utf8      invalid UTF-8
 *   min_len, max_len  length in characters   pattern   pattern mismatch
 *   forbidden a forbidden character          enum      not an allowed value
 *   range     number / amount / decimal out of bounds (also negative, > 2^53, max_digits)
 *   decimals  wrong number of decimals       format    not a valid e-mail, URL, date, code...
 *   checksum  IBAN check digits wrong        items     array too short or too long
 * Several checks of one field may fail together (e.g. max_len and forbidden);
 * a wrong type stops the checks of that field.
 *
 * Order: by path, comparing array indexes as numbers and everything else
 * byte by byte, a path before its extensions ("account" < "account.number" <
 * "account_id", "items[2]" < "items[10]"); then by code (byte order).
 *
 * Memory: a compiled schema owns one arena (nodes, strings, patterns) and a
 * uservalue table keeping its field names and enum values alive as Lua
 * strings; close/__gc/__close share one idempotent release. No global
 * mutable state. core.check without options keeps one compiled schema per type in
 * the registry; with options it compiles them on every call: for a pattern
 * used often, compile a schema once. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

#define SCHEMA_MT "luapay.schema"
#define CHECK_CACHE "luapay.check_cache" /* registry: type name -> compiled schema */
#define MAX_DEPTH 32
#define ENUM_LIST_MAX 8 /* longer enums are not listed in messages */
#define PTRMAP_MIN 8    /* shorter lists are scanned */
#define COLD __attribute__((noinline, cold)) /* off the path of a valid value */

enum vtype {
    T_ANY, T_STRING, T_ENUM, T_BOOLEAN, T_INTEGER, T_NUMBER, T_AMOUNT, T_DECIMAL,
    T_CURRENCY, T_COUNTRY, T_LANGUAGE, T_LOCALE, T_IBAN, T_BIC, T_EMAIL, T_URL,
    T_DATE, T_DATETIME, T_IP, T_IPV4, T_IPV6, T_OBJECT, T_ARRAY, T_NTYPES
};

static const char *const type_names[] = {
    "any", "string", "enum", "boolean", "integer", "number", "amount", "decimal",
    "currency", "country", "language", "locale", "iban", "bic", "email", "url",
    "date", "datetime", "ip", "ipv4", "ipv6", "object", "array", NULL,
};

/* Options; each type allows the common ones plus its own. */
enum {
    O_TYPE, O_REQUIRED, O_SECRET, O_REQUIRED_IF, O_DESCRIPTION, O_MIN_LEN, O_MAX_LEN,
    O_PATTERN, O_FORBID, O_ENUM, O_PATTERN_BY, O_VALUES, O_MIN, O_MAX,
    O_ALLOW_NEGATIVE, O_DECIMALS, O_MAX_DIGITS, O_POSITIVE, O_FIELDS, O_ADDITIONAL,
    O_ITEMS, O_MIN_ITEMS, O_MAX_ITEMS, O_COUNT
};

static const char *const option_names[] = {
    "type", "required", "secret", "required_if", "description", "min_len", "max_len",
    "pattern", "forbid", "enum", "pattern_by", "values", "min", "max",
    "allow_negative", "decimals", "max_digits", "positive", "fields", "additional",
    "items", "min_items", "max_items",
};

#define B(o) (1u << (o))
#define COMMON (B(O_TYPE) | B(O_REQUIRED) | B(O_SECRET) | B(O_REQUIRED_IF) | B(O_DESCRIPTION))

static const unsigned type_options[T_NTYPES] = {
    [T_ANY] = COMMON,
    [T_STRING] = COMMON | B(O_MIN_LEN) | B(O_MAX_LEN) | B(O_PATTERN) | B(O_FORBID) | B(O_ENUM) |
                 B(O_PATTERN_BY),
    [T_ENUM] = COMMON | B(O_VALUES),
    [T_BOOLEAN] = COMMON,
    [T_INTEGER] = COMMON | B(O_MIN) | B(O_MAX),
    [T_NUMBER] = COMMON | B(O_MIN) | B(O_MAX),
    [T_AMOUNT] = COMMON | B(O_MIN) | B(O_MAX) | B(O_ALLOW_NEGATIVE),
    [T_DECIMAL] = COMMON | B(O_DECIMALS) | B(O_MAX_DIGITS) | B(O_MIN) | B(O_MAX) | B(O_POSITIVE) |
                  B(O_ALLOW_NEGATIVE),
    [T_CURRENCY] = COMMON | B(O_ENUM),
    [T_COUNTRY] = COMMON | B(O_ENUM),
    [T_LANGUAGE] = COMMON | B(O_ENUM),
    [T_LOCALE] = COMMON | B(O_ENUM),
    [T_IBAN] = COMMON,
    [T_BIC] = COMMON,
    [T_EMAIL] = COMMON | B(O_MAX_LEN),
    [T_URL] = COMMON | B(O_MAX_LEN),
    [T_DATE] = COMMON,
    [T_DATETIME] = COMMON,
    [T_IP] = COMMON,
    [T_IPV4] = COMMON,
    [T_IPV6] = COMMON,
    [T_OBJECT] = COMMON | B(O_FIELDS) | B(O_ADDITIONAL),
    [T_ARRAY] = COMMON | B(O_ITEMS) | B(O_MIN_ITEMS) | B(O_MAX_ITEMS),
};

typedef struct {
    const char *s;
    size_t len;
} vstr;

/* A constant of a required_if rule. */
typedef struct {
    int type; /* LUA_TSTRING, LUA_TNUMBER or LUA_TBOOLEAN */
    vstr s;
    lua_Number n;
    int b;
} vconst;

/* The formats a pattern_by value may ask for instead of a pattern. */
static int is_iban(const char *s, size_t n) {
    return luapay_check_iban(s, n) == LUAPAY_IBAN_OK;
}

static const struct {
    const char *name;
    int (*is)(const char *s, size_t n);
    const char *what; /* for "must be <what> for <value>" */
} pb_formats[] = {
    {NULL, NULL, NULL}, /* 0: a pattern */
    {"bic", luapay_is_bic, "a BIC (SWIFT) code"},
    {"iban", is_iban, "an IBAN"},
    {"email", luapay_is_email, "an e-mail address"},
    {"url", luapay_is_url, "an absolute http(s) URL"},
    {"date", luapay_is_date, "a date (YYYY-MM-DD)"},
};
#define PB_NFORMATS (sizeof pb_formats / sizeof pb_formats[0])

typedef struct vnode vnode;
/* Maps anchored string pointers to list indexes (open addressing), for
 * lists too long to scan: enums, wide objects. */
typedef struct {
    const char **keys; /* NULL: empty slot */
    int *index;
    unsigned bits;
} ptrmap;

/* The members the walker reads on every value come first. */
struct vnode {
    unsigned char type; /* enum vtype */
    unsigned char required, secret, additional, allow_negative, positive;
    int key_ref; /* the name's index in the schema's uservalue table */
    vstr name;   /* as a field of its object */
    vnode **fields; /* sorted by name */
    size_t nfields;
    ptrmap field_map; /* when nfields > PTRMAP_MIN */
    size_t min_len, max_len; /* characters; max_len SIZE_MAX: none */
    luapay_pattern *pattern;
    size_t nenums, nforbid, npb, nrif;
    /* rules on siblings: indexes into the parent's fields, -1 for none */
    int pattern_by_sib, required_if_sib;

    vstr *enums;      /* sorted, for search */
    ptrmap enum_map;  /* when nenums > PTRMAP_MIN */
    vstr *enum_order; /* as declared, for messages */
    unsigned *forbid; /* code points */
    unsigned char forbid_ascii[16]; /* bit per ASCII character */
    int forbid_non_ascii;           /* some forbidden character is not ASCII */
    vstr forbid_src;

    int has_min, has_max;
    int64_t imin, imax;        /* integer, amount */
    lua_Number nmin, nmax;     /* number */
    luapay_decimal dmin, dmax; /* decimal */
    int decimals;
    size_t max_digits; /* 0: none */

    vstr *pb_keys; /* sorted */
    luapay_pattern **pb_patterns; /* NULL where the value asks for a format */
    unsigned char *pb_formats;    /* index into pb_formats, 0: the pattern */
    vstr pb_label;                /* s NULL: none */
    vconst *rif;
    vstr sib_name[2]; /* names to resolve: pattern_by, required_if */

    vnode *items;
    size_t min_items, max_items;
    size_t stack_need; /* Lua stack slots the walk of this value may use */
};

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    union {
        max_align_t align;
        char bytes[1];
    } data;
} ablock;

typedef struct luapay_schema {
    ablock *blocks;
    luapay_pattern *patterns; /* every compiled pattern, for regfree */
    vnode *root;
} schema_ud;

/* ---- arena ---------------------------------------------------------- */

static void *arena_alloc(lua_State *L, schema_ud *S, size_t size) {
    size = (size + 15) & ~(size_t)15;
    ablock *b = S->blocks;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > 8192 ? size : 8192;
        b = (ablock *)malloc(offsetof(ablock, data) + cap);
        if (b == NULL) luaL_error(L, "schema: out of memory");
        b->cap = cap;
        b->used = 0;
        b->next = S->blocks;
        S->blocks = b;
    }
    void *p = b->data.bytes + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

static vstr arena_str(lua_State *L, schema_ud *S, const char *s, size_t len) {
    char *p = (char *)arena_alloc(L, S, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    vstr v = {p, len};
    return v;
}

static unsigned ptr_hash(const char *p, unsigned bits) {
    return (unsigned)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

static void ptrmap_build(lua_State *L, schema_ud *S, ptrmap *m, const vstr *list, size_t n) {
    unsigned bits = 4;
    while (((size_t)1 << bits) < 2 * n) bits++;
    size_t size = (size_t)1 << bits;
    m->keys = (const char **)arena_alloc(L, S, size * sizeof *m->keys);
    m->index = (int *)arena_alloc(L, S, size * sizeof *m->index);
    m->bits = bits;
    for (size_t i = 0; i < n; i++) {
        unsigned h = ptr_hash(list[i].s, bits);
        while (m->keys[h] != NULL) h = (h + 1) & (unsigned)(size - 1);
        m->keys[h] = list[i].s;
        m->index[h] = (int)i;
    }
}

static inline int ptrmap_find(const ptrmap *m, const char *p) {
    unsigned mask = (1u << m->bits) - 1, h = ptr_hash(p, m->bits);
    for (; m->keys[h] != NULL; h = (h + 1) & mask)
        if (m->keys[h] == p) return m->index[h];
    return -1;
}

static void schema_release(schema_ud *S) {
    for (luapay_pattern *p = S->patterns; p != NULL; p = p->next) luapay_pattern_free(p);
    S->patterns = NULL;
    while (S->blocks != NULL) {
        ablock *next = S->blocks->next;
        free(S->blocks);
        S->blocks = next;
    }
    S->root = NULL;
}

/* ---- compiler ------------------------------------------------------- */

typedef struct {
    lua_State *L;
    schema_ud *S;
    const char *fn, *argname;
    int arg;
    int anchor; /* stack index of the schema's uservalue table */
    int nanchored;
    char path[256];
    size_t pathlen;
} compiler;

/* Field names and enum values stay Lua strings, kept alive by the schema's
 * uservalue table. Lua interns strings (LuaJIT all of them, Lua 5.4 the
 * short ones), so a key from the value is usually the very same object: the
 * walker compares pointers first and bytes only when that finds nothing. */
static vstr anchor_string(compiler *c, int idx) {
    lua_State *L = c->L;
    vstr v;
    lua_pushvalue(L, idx);
    v.s = lua_tolstring(L, -1, &v.len);
    lua_rawseti(L, c->anchor, ++c->nanchored);
    return v;
}

static int cerror(compiler *c, const char *fmt, ...) {
    lua_State *L = c->L;
    va_list ap;
    va_start(ap, fmt);
    const char *msg = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    if (c->pathlen > 0) msg = lua_pushfstring(L, "%s: %s", c->path, msg);
    return luaL_error(L, "%s: bad argument #%d '%s' (%s)", c->fn, c->arg, c->argname, msg);
}

static size_t path_push(compiler *c, const char *seg, size_t len, int dot) {
    size_t saved = c->pathlen, room = sizeof c->path - c->pathlen;
    int n = snprintf(c->path + c->pathlen, room, "%s%.*s", dot && c->pathlen > 0 ? "." : "", (int)len, seg);
    c->pathlen += n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1; /* long paths are cut */
    return saved;
}

static void path_pop(compiler *c, size_t saved) {
    c->pathlen = saved;
    c->path[saved] = '\0';
}

/* A Lua string (which may hold NUL bytes) equal to a C literal. */
static int lit_eq(const char *s, size_t len, const char *lit) {
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* For messages: pushes the name with each NUL byte shown as \0. */
static const char *push_name(lua_State *L, const char *s, size_t len) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\0')
            luaL_addchar(&b, s[i]);
        else
            luaL_addstring(&b, "\\0");
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* Pushes option `o` of the schema table at idx; returns its Lua type. */
static int get_opt(compiler *c, int idx, int o) {
    lua_getfield(c->L, idx, option_names[o]);
    return lua_type(c->L, -1);
}

static int opt_bool(compiler *c, int idx, int o, int def) {
    int t = get_opt(c, idx, o), v = def;
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(c->L, -1);
    else if (t != LUA_TNIL)
        cerror(c, "'%s' must be a boolean, got %s", option_names[o], lua_typename(c->L, t));
    lua_pop(c->L, 1);
    return v;
}

/* A count or a length: an integer from 0 to 2^31 - 1. */
static int opt_size(compiler *c, int idx, int o, size_t *out) {
    int t = get_opt(c, idx, o);
    int64_t v = 0;
    if (t == LUA_TNIL) {
        lua_pop(c->L, 1);
        return 0;
    }
    if (luapay_read_integer(c->L, -1, &v) != LUAPAY_MINOR_OK || v < 0 || v > 0x7FFFFFFF)
        cerror(c, "'%s' must be a non-negative integer", option_names[o]);
    lua_pop(c->L, 1);
    *out = (size_t)v;
    return 1;
}

static int opt_int(compiler *c, int idx, int o, int64_t *out) {
    int t = get_opt(c, idx, o);
    if (t == LUA_TNIL) {
        lua_pop(c->L, 1);
        return 0;
    }
    if (luapay_read_integer(c->L, -1, out) != LUAPAY_MINOR_OK)
        cerror(c, "'%s' must be an integer within 2^53, got %s", option_names[o],
               t == LUA_TNUMBER ? "a fraction" : lua_typename(c->L, t));
    lua_pop(c->L, 1);
    return 1;
}

static int opt_number(compiler *c, int idx, int o, lua_Number *out) {
    int t = get_opt(c, idx, o);
    if (t == LUA_TNIL) {
        lua_pop(c->L, 1);
        return 0;
    }
    lua_Number v = lua_tonumber(c->L, -1);
    if (t != LUA_TNUMBER || isnan(v) || isinf(v))
        cerror(c, "'%s' must be a finite number, got %s", option_names[o], lua_typename(c->L, t));
    lua_pop(c->L, 1);
    *out = v;
    return 1;
}

/* Leaves the string on the stack (the caller copies it) or returns NULL. */
static const char *opt_string(compiler *c, int idx, int o, size_t *len) {
    int t = get_opt(c, idx, o);
    if (t == LUA_TNIL) {
        lua_pop(c->L, 1);
        return NULL;
    }
    if (t != LUA_TSTRING) cerror(c, "'%s' must be a string, got %s", option_names[o], lua_typename(c->L, t));
    return lua_tolstring(c->L, -1, len);
}

static luapay_pattern *compile_pattern(compiler *c, const char *src, size_t len, const char *what) {
    if (memchr(src, 0, len) != NULL) cerror(c, "%s contains a NUL byte", what);
    vstr copy = arena_str(c->L, c->S, src, len);
    luapay_pattern *p = (luapay_pattern *)arena_alloc(c->L, c->S, sizeof *p);
    char err[128];
    if (luapay_pattern_compile(p, copy.s, err, sizeof err) != 0) cerror(c, "%s '%s' is not a valid POSIX ERE: %s", what, copy.s, err);
    p->next = c->S->patterns;
    c->S->patterns = p;
    return p;
}

static int vstr_cmp(const void *a, const void *b) {
    const vstr *x = (const vstr *)a, *y = (const vstr *)b;
    int r = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return r != 0 ? r : (x->len > y->len) - (x->len < y->len);
}

static const vstr *vstr_find(const vstr *list, size_t n, const char *s, size_t len) {
    vstr key = {s, len};
    return (const vstr *)bsearch(&key, list, n, sizeof *list, vstr_cmp);
}

/* A non-empty list of strings (enum, values), each checked by `ok` if given. */
static void compile_enum(compiler *c, int idx, int o, vnode *nd, int (*ok)(const char *, size_t)) {
    lua_State *L = c->L;
    int t = get_opt(c, idx, o);
    if (t == LUA_TNIL) {
        if (o == O_VALUES) cerror(c, "type 'enum' needs 'values'");
        lua_pop(L, 1);
        return;
    }
    int list = lua_gettop(L);
    size_t n = t == LUA_TTABLE ? lua_rawlen(L, list) : 0;
    if (n == 0) cerror(c, "'%s' must be a non-empty list of strings", option_names[o]);
    nd->enums = (vstr *)arena_alloc(L, c->S, n * sizeof(vstr));
    nd->enum_order = (vstr *)arena_alloc(L, c->S, n * sizeof(vstr));
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, list, (int)i + 1);
        size_t len;
        if (lua_type(L, -1) != LUA_TSTRING)
            cerror(c, "'%s' must be a non-empty list of strings (item %d is %s)", option_names[o], (int)i + 1,
                   luaL_typename(L, -1));
        const char *s = lua_tolstring(L, -1, &len);
        if (ok != NULL && !ok(s, len)) cerror(c, "'%s' item %d ('%s') is not a valid code", option_names[o], (int)i + 1, s);
        nd->enum_order[i] = nd->enums[i] = anchor_string(c, -1);
        lua_pop(L, 1);
    }
    nd->nenums = n;
    qsort(nd->enums, n, sizeof(vstr), vstr_cmp);
    if (n > PTRMAP_MIN) ptrmap_build(L, c->S, &nd->enum_map, nd->enums, n);
    lua_pop(L, 1);
}

static int is_currency_code(const char *s, size_t n) { return luapay_currency_find(s, n) != NULL; }

static void compile_forbid(compiler *c, int idx, vnode *nd) {
    size_t len, chars = 0;
    const char *s = opt_string(c, idx, O_FORBID, &len);
    if (s == NULL) return;
    if (len == 0 || !luapay_utf8_count(s, len, &chars)) cerror(c, "'forbid' must be a non-empty UTF-8 string");
    nd->forbid_src = arena_str(c->L, c->S, s, len);
    nd->forbid = (unsigned *)arena_alloc(c->L, c->S, chars * sizeof(unsigned));
    const unsigned char *p = (const unsigned char *)nd->forbid_src.s;
    for (size_t i = 0, k = 0; k < chars; k++) {
        unsigned cp = p[i];
        size_t extra = cp < 0x80 ? 0 : cp < 0xE0 ? 1 : cp < 0xF0 ? 2 : 3;
        if (extra) cp &= 0x3Fu >> extra;
        for (size_t e = 1; e <= extra; e++) cp = (cp << 6) | (p[i + e] & 0x3F);
        nd->forbid[k] = cp;
        if (cp < 128)
            nd->forbid_ascii[cp >> 3] = (unsigned char)(nd->forbid_ascii[cp >> 3] | (1u << (cp & 7)));
        else
            nd->forbid_non_ascii = 1;
        i += extra + 1;
    }
    nd->nforbid = chars;
    lua_pop(c->L, 1);
}

static vnode *compile_node(compiler *c, int idx, int depth);

static void compile_required_if(compiler *c, int idx, vnode *nd) {
    lua_State *L = c->L;
    int t = get_opt(c, idx, O_REQUIRED_IF);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE) cerror(c, "'required_if' must be a table {field = ..., equals = ... | in = {...}}");
    int rule = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, rule)) {
        size_t klen = 0;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        if (k == NULL || (!lit_eq(k, klen, "field") && !lit_eq(k, klen, "equals") && !lit_eq(k, klen, "in")))
            cerror(c, "'required_if' takes only field, equals and in");
        lua_pop(L, 1);
    }
    lua_getfield(L, rule, "field");
    if (lua_type(L, -1) != LUA_TSTRING) cerror(c, "'required_if.field' must be a string");
    size_t len;
    const char *f = lua_tolstring(L, -1, &len);
    nd->sib_name[1] = arena_str(L, c->S, f, len);
    lua_pop(L, 1);

    lua_getfield(L, rule, "equals");
    lua_getfield(L, rule, "in");
    int has_eq = !lua_isnil(L, -2), has_in = !lua_isnil(L, -1);
    if (has_eq == has_in) cerror(c, "'required_if' needs exactly one of equals and in");
    int list = lua_gettop(L);
    size_t n = 1;
    if (has_in) {
        if (!lua_istable(L, list) || (n = lua_rawlen(L, list)) == 0) cerror(c, "'required_if.in' must be a non-empty list");
    }
    nd->rif = (vconst *)arena_alloc(L, c->S, n * sizeof(vconst));
    nd->nrif = n;
    for (size_t i = 0; i < n; i++) {
        if (has_in)
            lua_rawgeti(L, list, (int)i + 1);
        else
            lua_pushvalue(L, list - 1);
        vconst *k = &nd->rif[i];
        k->type = lua_type(L, -1);
        if (k->type == LUA_TSTRING) {
            const char *s = lua_tolstring(L, -1, &len);
            k->s = arena_str(L, c->S, s, len);
        } else if (k->type == LUA_TNUMBER) {
            k->n = lua_tonumber(L, -1);
        } else if (k->type == LUA_TBOOLEAN) {
            k->b = lua_toboolean(L, -1);
        } else {
            cerror(c, "'required_if' values must be strings, numbers or booleans");
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
}

static void compile_pattern_by(compiler *c, int idx, vnode *nd) {
    lua_State *L = c->L;
    int t = get_opt(c, idx, O_PATTERN_BY);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE) cerror(c, "'pattern_by' must be a table {field = ..., patterns = {...}}");
    int rule = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, rule)) {
        size_t klen;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        if (k == NULL || !(lit_eq(k, klen, "field") || lit_eq(k, klen, "patterns") || lit_eq(k, klen, "label")))
            cerror(c, "'pattern_by' takes field, patterns and label");
        lua_pop(L, 1);
    }
    size_t len;
    lua_getfield(L, rule, "label");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) cerror(c, "'pattern_by.label' must be a string");
        const char *label = lua_tolstring(L, -1, &len);
        nd->pb_label = arena_str(L, c->S, label, len);
    }
    lua_pop(L, 1);
    lua_getfield(L, rule, "field");
    lua_getfield(L, rule, "patterns");
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TTABLE)
        cerror(c, "'pattern_by' needs field (a string) and patterns (a table)");
    const char *f = lua_tolstring(L, -2, &len);
    nd->sib_name[0] = arena_str(L, c->S, f, len);
    int pats = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, pats)) {
        if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TTABLE))
            cerror(c, "'pattern_by.patterns' maps strings to pattern strings or {format = ...}");
        n++;
        lua_pop(L, 1);
    }
    /* keys sorted, each with its pattern: sort index pairs through a temporary */
    vstr *keys = (vstr *)arena_alloc(L, c->S, (n ? n : 1) * sizeof(vstr));
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, pats)) {
        const char *k = lua_tolstring(L, -2, &len);
        keys[i++] = arena_str(L, c->S, k, len);
        lua_pop(L, 1);
    }
    qsort(keys, n, sizeof(vstr), vstr_cmp);
    nd->pb_keys = keys;
    nd->npb = n;
    nd->pb_patterns = (luapay_pattern **)arena_alloc(L, c->S, (n ? n : 1) * sizeof(luapay_pattern *));
    nd->pb_formats = (unsigned char *)arena_alloc(L, c->S, n ? n : 1);
    for (i = 0; i < n; i++) {
        lua_pushlstring(L, keys[i].s, keys[i].len);
        lua_rawget(L, pats);
        nd->pb_patterns[i] = NULL;
        nd->pb_formats[i] = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *src = lua_tolstring(L, -1, &len);
            nd->pb_patterns[i] = compile_pattern(c, src, len, "pattern_by pattern");
        } else {
            lua_getfield(L, -1, "format");
            const char *fmt = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
            for (size_t k = 1; fmt != NULL && k < PB_NFORMATS; k++)
                if (lit_eq(fmt, len, pb_formats[k].name)) nd->pb_formats[i] = (unsigned char)k;
            if (nd->pb_formats[i] == 0)
                cerror(c, "'pattern_by.patterns' %s: {format = F} takes \"bic\", \"iban\", \"email\", \"url\" or \"date\"",
                       keys[i].s);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
}

static int field_cmp(const void *a, const void *b) {
    return vstr_cmp(&(*(vnode *const *)a)->name, &(*(vnode *const *)b)->name);
}

static inline int find_field(const vnode *obj, const char *s, size_t len) {
    if (obj->field_map.keys != NULL) {
        int i = ptrmap_find(&obj->field_map, s);
        if (i >= 0) return i;
    } else {
        for (size_t i = 0; i < obj->nfields; i++)
            if (obj->fields[i]->name.s == s) return (int)i;
    }
    size_t lo = 0, hi = obj->nfields;
    vstr key = {s, len};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = vstr_cmp(&key, &obj->fields[mid]->name);
        if (r == 0) return (int)mid;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static size_t count_fields(compiler *c, int fields) {
    size_t n = 0;
    lua_pushnil(c->L);
    while (lua_next(c->L, fields)) {
        if (lua_type(c->L, -2) != LUA_TSTRING) cerror(c, "'fields' keys must be strings");
        n++;
        lua_pop(c->L, 1);
    }
    return n;
}

static void compile_fields(compiler *c, int idx, vnode *nd, int depth) {
    lua_State *L = c->L;
    int t = get_opt(c, idx, O_FIELDS);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE) cerror(c, "'fields' must be a table of field schemas");
    int fields = lua_gettop(L);
    size_t n = count_fields(c, fields);
    nd->fields = (vnode **)arena_alloc(L, c->S, (n ? n : 1) * sizeof(vnode *));
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, fields)) {
        /* compiling a field may run Lua code (an __index on its schema table)
         * that adds or removes fields: the array holds exactly n */
        if (i == n || lua_type(L, -2) != LUA_TSTRING) cerror(c, "'fields' changed while it was being compiled");
        size_t len;
        const char *k = lua_tolstring(L, -2, &len);
        size_t saved = path_push(c, k, len, 1);
        vnode *f = compile_node(c, lua_gettop(L), depth + 1);
        f->name = anchor_string(c, -2);
        f->key_ref = c->nanchored;
        nd->fields[i++] = f;
        path_pop(c, saved);
        lua_pop(L, 1);
    }
    if (i != n || count_fields(c, fields) != n) cerror(c, "'fields' changed while it was being compiled");
    nd->nfields = n;
    qsort(nd->fields, n, sizeof(vnode *), field_cmp);
    if (n > PTRMAP_MIN) {
        vstr *names = (vstr *)arena_alloc(L, c->S, n * sizeof(vstr));
        for (i = 0; i < n; i++) names[i] = nd->fields[i]->name;
        ptrmap_build(L, c->S, &nd->field_map, names, n);
    }

    /* sibling rules name fields of this object */
    static const char *const rule_names[] = {"pattern_by", "required_if"};
    for (i = 0; i < n; i++) {
        vnode *f = nd->fields[i];
        int *sib[2] = {&f->pattern_by_sib, &f->required_if_sib};
        for (int r = 0; r < 2; r++) {
            if (f->sib_name[r].s == NULL) continue;
            *sib[r] = find_field(nd, f->sib_name[r].s, f->sib_name[r].len);
            if (*sib[r] < 0 || *sib[r] == (int)i) {
                size_t saved = path_push(c, f->name.s, f->name.len, 1);
                cerror(c, "'%s' names '%s', which is not another field of this object", rule_names[r],
                       f->sib_name[r].s);
                path_pop(c, saved);
            }
        }
    }
    lua_pop(L, 1);
}

/* Rules on siblings need an object around the field. */
static void no_siblings(compiler *c, const vnode *nd) {
    static const char *const rule_names[] = {"pattern_by", "required_if"};
    for (int r = 0; r < 2; r++)
        if (nd->sib_name[r].s != NULL) cerror(c, "'%s' is only for fields of an object", rule_names[r]);
}

static vnode *compile_node(compiler *c, int idx, int depth) {
    lua_State *L = c->L;
    if (depth > MAX_DEPTH) cerror(c, "schema nested deeper than %d levels", MAX_DEPTH);
    if (!lua_checkstack(L, 16)) cerror(c, "schema too large");
    if (!lua_istable(L, idx)) cerror(c, "a schema must be a table, got %s", luaL_typename(L, idx));
    vnode *nd = (vnode *)arena_alloc(L, c->S, sizeof *nd);
    nd->max_len = SIZE_MAX;
    nd->max_items = SIZE_MAX;
    nd->pattern_by_sib = nd->required_if_sib = -1;

    size_t len;
    if (get_opt(c, idx, O_TYPE) != LUA_TSTRING) cerror(c, "'type' must be a string, got %s", luaL_typename(L, -1));
    const char *tname = lua_tolstring(L, -1, &len);
    int type = -1;
    for (int i = 0; type_names[i] != NULL; i++)
        if (lit_eq(tname, len, type_names[i])) type = i;
    if (type < 0) cerror(c, "unknown type '%s'", push_name(L, tname, len));
    lua_pop(L, 1);
    nd->type = (unsigned char)type;

    /* every key must be an option of this type */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int o = -1;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -2, &len);
            for (int i = 0; i < O_COUNT; i++)
                if (lit_eq(k, len, option_names[i])) o = i;
            if (o < 0 || !(type_options[type] & B(o)))
                cerror(c, "unknown option '%s' for type '%s'", push_name(L, k, len), type_names[type]);
        } else {
            cerror(c, "option names must be strings");
        }
        lua_pop(L, 1);
    }

    nd->required = (unsigned char)opt_bool(c, idx, O_REQUIRED, 0);
    nd->secret = (unsigned char)opt_bool(c, idx, O_SECRET, 0);
    if (get_opt(c, idx, O_DESCRIPTION) != LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
        cerror(c, "'description' must be a string");
    lua_pop(L, 1);
    compile_required_if(c, idx, nd);

    switch (nd->type) {
    case T_STRING: {
        opt_size(c, idx, O_MIN_LEN, &nd->min_len);
        opt_size(c, idx, O_MAX_LEN, &nd->max_len);
        const char *p = opt_string(c, idx, O_PATTERN, &len);
        if (p != NULL) {
            nd->pattern = compile_pattern(c, p, len, "pattern");
            lua_pop(L, 1);
        }
        compile_forbid(c, idx, nd);
        compile_enum(c, idx, O_ENUM, nd, NULL);
        compile_pattern_by(c, idx, nd);
        break;
    }
    case T_ENUM:
        compile_enum(c, idx, O_VALUES, nd, NULL);
        break;
    case T_CURRENCY:
        compile_enum(c, idx, O_ENUM, nd, is_currency_code);
        break;
    case T_COUNTRY:
        compile_enum(c, idx, O_ENUM, nd, luapay_is_country);
        break;
    case T_LANGUAGE:
        compile_enum(c, idx, O_ENUM, nd, luapay_is_language);
        break;
    case T_LOCALE:
        compile_enum(c, idx, O_ENUM, nd, luapay_is_locale);
        break;
    case T_INTEGER:
    case T_AMOUNT:
        nd->has_min = opt_int(c, idx, O_MIN, &nd->imin);
        nd->has_max = opt_int(c, idx, O_MAX, &nd->imax);
        nd->allow_negative = opt_bool(c, idx, O_ALLOW_NEGATIVE, 0);
        break;
    case T_NUMBER:
        nd->has_min = opt_number(c, idx, O_MIN, &nd->nmin);
        nd->has_max = opt_number(c, idx, O_MAX, &nd->nmax);
        break;
    case T_DECIMAL: {
        size_t dec = 2;
        opt_size(c, idx, O_DECIMALS, &dec);
        if (dec > 18) cerror(c, "'decimals' must be at most 18");
        nd->decimals = (int)dec;
        opt_size(c, idx, O_MAX_DIGITS, &nd->max_digits);
        nd->positive = opt_bool(c, idx, O_POSITIVE, 0);
        nd->allow_negative = opt_bool(c, idx, O_ALLOW_NEGATIVE, 0);
        for (int o = O_MIN; o <= O_MAX; o++) {
            const char *s = opt_string(c, idx, o, &len);
            if (s == NULL) continue;
            vstr copy = arena_str(L, c->S, s, len);
            luapay_decimal *d = o == O_MIN ? &nd->dmin : &nd->dmax;
            if (!luapay_scan_decimal(copy.s, copy.len, d) || d->frac_len != (size_t)nd->decimals)
                cerror(c, "'%s' must be a decimal string with %d decimals", option_names[o], nd->decimals);
            *(o == O_MIN ? &nd->has_min : &nd->has_max) = 1;
            lua_pop(L, 1);
        }
        break;
    }
    case T_EMAIL:
        nd->max_len = 254; /* and the format allows no more */
        opt_size(c, idx, O_MAX_LEN, &nd->max_len);
        break;
    case T_URL:
        opt_size(c, idx, O_MAX_LEN, &nd->max_len);
        break;
    case T_OBJECT:
        nd->additional = opt_bool(c, idx, O_ADDITIONAL, 1);
        compile_fields(c, idx, nd, depth);
        break;
    case T_ARRAY:
        opt_size(c, idx, O_MIN_ITEMS, &nd->min_items);
        opt_size(c, idx, O_MAX_ITEMS, &nd->max_items);
        if (get_opt(c, idx, O_ITEMS) != LUA_TNIL) {
            size_t saved = path_push(c, "[]", 2, 0);
            nd->items = compile_node(c, lua_gettop(L), depth + 1);
            no_siblings(c, nd->items);
            path_pop(c, saved);
        }
        lua_pop(L, 1);
        break;
    default:
        break;
    }
    /* the walker checks the stack once per call, for the deepest path */
    size_t deepest = 0;
    for (size_t i = 0; i < nd->nfields; i++)
        if (nd->fields[i]->stack_need > deepest) deepest = nd->fields[i]->stack_need;
    if (nd->items != NULL) deepest = nd->items->stack_need;
    nd->stack_need = nd->nfields + 4 + deepest;
    return nd;
}

/* Compiles the schema table at `idx` into a new userdata left on the stack. */
static schema_ud *compile_schema(lua_State *L, int idx, const char *fn, int arg, const char *argname) {
    schema_ud *S = (schema_ud *)lua_newuserdata(L, sizeof *S);
    memset(S, 0, sizeof *S);
    luaL_getmetatable(L, SCHEMA_MT);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    luapay_setuservalue(L, -3);
    compiler c = {L, S, fn, argname, arg, lua_gettop(L), 0, {0}, 0};
    S->root = compile_node(&c, idx, 0);
    no_siblings(&c, S->root);
    lua_pop(L, 1);
    return S;
}

/* ---- walker --------------------------------------------------------- */

typedef struct {
    const char *name; /* NULL: an array index */
    size_t len;
    int64_t index;
} seg;

typedef struct {
    lua_State *L;
    const schema_ud *S;
    int anchor; /* stack slot of the schema's uservalue table */
    int out;    /* stack slot of the violations table (nil until the first) */
    int count;
    int depth;
    int secret; /* > 0: inside a secret value */
    int quiet;  /* count violations only, no Lua call (luapay_schema_holds_values) */
    const char *root_name; /* messages for the root: "value" or check's name */
    seg path[MAX_DEPTH + 3];
} walker;

static void push_path(walker *w) {
    lua_State *L = w->L;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < w->depth; i++) {
        const seg *s = &w->path[i];
        if (s->name != NULL) {
            if (i > 0) luaL_addchar(&b, '.');
            luaL_addlstring(&b, s->name, s->len);
        } else {
            char buf[32];
            snprintf(buf, sizeof buf, "[%lld]", (long long)s->index);
            luaL_addstring(&b, buf);
        }
    }
    luaL_pushresult(&b);
}

/* Records {path, code, message [, secret]}; `what` is a lua_pushfstring format. */
COLD static void report(walker *w, const vnode *nd, const char *code, const char *fmt, ...) {
    lua_State *L = w->L;
    if (w->quiet) {
        w->count++;
        return;
    }
    if (!lua_checkstack(L, 8)) luaL_error(L, "validate: stack overflow");
    if (lua_isnil(L, w->out)) {
        lua_newtable(L);
        lua_replace(L, w->out);
    }
    lua_createtable(L, 0, 4);
    push_path(w);
    size_t plen;
    const char *path = lua_tolstring(L, -1, &plen);
    va_list ap;
    va_start(ap, fmt);
    const char *what = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s: %s", plen > 0 ? path : w->root_name, what);
    lua_setfield(L, -4, "message");
    lua_pop(L, 1);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    if (w->secret > 0 || (nd != NULL && nd->secret)) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "secret");
    }
    lua_rawseti(L, w->out, ++w->count);
}

/* nil, or JSON null (a NULL lightuserdata such as cjson.null); t = lua_type(L, idx) */
static int is_absent(lua_State *L, int idx, int t) {
    return t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL);
}

static const char *i64str(char *buf, size_t n, int64_t v) {
    snprintf(buf, n, "%lld", (long long)v);
    return buf;
}

COLD static void report_enum(walker *w, const vnode *nd) {
    lua_State *L = w->L;
    if (w->quiet) {
        w->count++;
        return;
    }
    if (nd->nenums > ENUM_LIST_MAX) {
        report(w, nd, "enum", "is not one of the %d allowed values", (int)nd->nenums);
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < nd->nenums; i++) {
        if (i > 0) luaL_addstring(&b, ", ");
        luaL_addlstring(&b, nd->enum_order[i].s, nd->enum_order[i].len);
    }
    luaL_pushresult(&b);
    /* the list sits on the stack while report runs; it pops nothing of ours */
    report(w, nd, "enum", "must be one of %s", lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* Index in a sorted list of anchored strings: by pointer, else by bytes. */
static int find_anchored(const vstr *list, size_t n, const ptrmap *m, const char *s, size_t len) {
    if (m->keys != NULL) {
        int i = ptrmap_find(m, s);
        if (i >= 0) return i;
    } else {
        for (size_t i = 0; i < n; i++)
            if (list[i].s == s) return (int)i;
    }
    const vstr *hit = vstr_find(list, n, s, len);
    return hit ? (int)(hit - list) : -1;
}

static int in_enum(const vnode *nd, const char *s, size_t len) {
    return nd->nenums == 0 || find_anchored(nd->enums, nd->nenums, &nd->enum_map, s, len) >= 0;
}

static int has_forbidden(const vnode *nd, const unsigned char *s, size_t n) {
    if (!nd->forbid_non_ascii) {
        if (nd->nforbid <= 4) { /* a few characters: memchr scans fastest */
            for (size_t k = 0; k < nd->nforbid; k++)
                if (memchr(s, (int)nd->forbid[k], n) != NULL) return 1;
            return 0;
        }
        for (size_t i = 0; i < n; i++)
            if (s[i] < 128 && (nd->forbid_ascii[s[i] >> 3] >> (s[i] & 7)) & 1) return 1;
        return 0;
    }
    for (size_t i = 0; i < n;) {
        unsigned cp = s[i];
        size_t extra = cp < 0x80 ? 0 : cp < 0xE0 ? 1 : cp < 0xF0 ? 2 : 3;
        if (extra) cp &= 0x3Fu >> extra;
        for (size_t e = 1; e <= extra; e++) cp = (cp << 6) | (s[i + e] & 0x3F);
        for (size_t k = 0; k < nd->nforbid; k++)
            if (nd->forbid[k] == cp) return 1;
        i += extra + 1;
    }
    return 0;
}

static const char *type_of(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 503
    if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) return "float";
#endif
    return luaL_typename(L, idx);
}

/* The sibling's value as a string, or NULL (absent or another type). */
static const char *sibling_string(walker *w, int slots, int sib, size_t *len) {
    if (slots == 0 || sib < 0 || lua_type(w->L, slots + sib) != LUA_TSTRING) return NULL;
    return lua_tolstring(w->L, slots + sib, len);
}

static void check_sibling_patterns(walker *w, const vnode *nd, const vnode *parent, int slots, const char *s,
                                   size_t n) {
    size_t klen;
    const char *v = sibling_string(w, slots, nd->pattern_by_sib, &klen);
    const vstr *k = v ? vstr_find(nd->pb_keys, nd->npb, v, klen) : NULL;
    if (k == NULL) return;
    size_t at = (size_t)(k - nd->pb_keys);
    const vnode *sib = parent->fields[nd->pattern_by_sib];
    int hidden = w->secret > 0 || sib->secret; /* name the sibling, not its value */
    unsigned char format = nd->pb_formats[at];
    if (format != 0) {
        if (pb_formats[format].is(s, n)) return;
        if (hidden)
            report(w, nd, "format", "must be %s for chosen %s", pb_formats[format].what, sib->name.s);
        else
            report(w, nd, "format", "must be %s for %s", pb_formats[format].what, k->s);
    } else if (!luapay_pattern_match(nd->pb_patterns[at], s, n)) {
        if (nd->pb_label.s != NULL && hidden)
            report(w, nd, "pattern", "does not match the chosen %s %s format", sib->name.s, nd->pb_label.s);
        else if (nd->pb_label.s != NULL)
            report(w, nd, "pattern", "does not match the %s %s format", k->s, nd->pb_label.s);
        else if (hidden)
            report(w, nd, "pattern", "does not match the pattern chosen by %s", sib->name.s);
        else
            report(w, nd, "pattern", "does not match the pattern for %s %s", sib->name.s, k->s);
    }
}

static void check_string(walker *w, const vnode *nd, const vnode *parent, const char *s, size_t n, int slots) {
    size_t chars;
    if (!luapay_utf8_count(s, n, &chars)) {
        report(w, nd, "utf8", "is not valid UTF-8");
    } else {
        if (chars < nd->min_len)
            report(w, nd, "min_len", "must be at least %d character%s", (int)nd->min_len, nd->min_len == 1 ? "" : "s");
        if (chars > nd->max_len)
            report(w, nd, "max_len", "must be at most %d character%s", (int)nd->max_len, nd->max_len == 1 ? "" : "s");
        if (nd->nforbid > 0 && has_forbidden(nd, (const unsigned char *)s, n))
            report(w, nd, "forbidden", "must not contain any of %s", nd->forbid_src.s);
    }
    if (nd->pattern != NULL && !luapay_pattern_match(nd->pattern, s, n))
        report(w, nd, "pattern", "does not match the pattern %s", nd->pattern->source);
    if (!in_enum(nd, s, n)) report_enum(w, nd);
    if (nd->npb > 0) check_sibling_patterns(w, nd, parent, slots, s, n);
}

static void check_range_i64(walker *w, const vnode *nd, int64_t v) {
    char buf[32];
    if (nd->has_min && v < nd->imin) report(w, nd, "range", "must be at least %s", i64str(buf, sizeof buf, nd->imin));
    if (nd->has_max && v > nd->imax) report(w, nd, "range", "must be at most %s", i64str(buf, sizeof buf, nd->imax));
}

COLD static void check_decimal(walker *w, const vnode *nd, const char *s, size_t n) {
    luapay_decimal d;
    if (!luapay_scan_decimal(s, n, &d)) {
        report(w, nd, "format", "is not a plain decimal number (digits, a point, no sign, exponent or spaces)");
        return;
    }
    if (d.frac_len != (size_t)nd->decimals) {
        report(w, nd, "decimals", "must have exactly %d decimals", nd->decimals);
        return;
    }
    if (d.negative && !nd->allow_negative) report(w, nd, "range", "must not be negative");
    if (nd->max_digits > 0 && d.int_len + d.frac_len > nd->max_digits)
        report(w, nd, "range", "must have at most %d digits", (int)nd->max_digits);
    if (nd->has_min && luapay_decimal_cmp(&d, &nd->dmin) < 0)
        report(w, nd, "range", "must be at least %s", nd->dmin.int_digits - nd->dmin.negative);
    if (nd->has_max && luapay_decimal_cmp(&d, &nd->dmax) > 0)
        report(w, nd, "range", "must be at most %s", nd->dmax.int_digits - nd->dmax.negative);
    if (nd->positive) {
        luapay_decimal zero = {0, "0.000000000000000000", 1, d.frac_len, d.frac_len > 0};
        if (luapay_decimal_cmp(&d, &zero) <= 0) report(w, nd, "range", "must be greater than zero");
    }
}

static void walk_value(walker *w, const vnode *nd, const vnode *parent, int idx, int t, int slots);

static void check_amount(walker *w, const vnode *nd, int64_t v) {
    if (v < 0 && !nd->allow_negative)
        report(w, nd, "range", "must not be negative");
    else
        check_range_i64(w, nd, v);
}

static void push_seg(walker *w, const char *name, size_t len, int64_t index) {
    seg *s = &w->path[w->depth++];
    s->name = name;
    s->len = len;
    s->index = index;
}

COLD static void report_unknown_key(walker *w, int key) {
    lua_State *L = w->L;
    int64_t i;
    int top = lua_gettop(L);
    if (w->secret == 0 && lua_type(L, key) == LUA_TSTRING) {
        size_t len;
        const char *k = lua_tolstring(L, key, &len);
        push_seg(w, k, len, 0);
    } else if (w->secret == 0 && luapay_read_integer(L, key, &i) == LUAPAY_MINOR_OK) {
        push_seg(w, NULL, 0, i);
    } else { /* a float, boolean or table key, or any key of a secret value: named by its type only */
        const char *t = lua_pushfstring(L, "(%s key)", luaL_typename(L, key));
        push_seg(w, t, strlen(t), 0);
    }
    report(w, NULL, "unknown", "is not an allowed field");
    w->depth--;
    lua_settop(L, top);
}

static int rule_holds(lua_State *L, const vnode *nd, int v) {
    for (size_t i = 0; i < nd->nrif; i++) {
        const vconst *k = &nd->rif[i];
        if (lua_type(L, v) != k->type) continue;
        if (k->type == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, v, &len);
            if (len == k->s.len && memcmp(s, k->s.s, len) == 0) return 1;
        } else if (k->type == LUA_TNUMBER) {
            if (lua_tonumber(L, v) == k->n) return 1;
        } else if (lua_toboolean(L, v) == k->b) {
            return 1;
        }
    }
    return 0;
}

/* additional = false: the table may hold only the declared fields. Counting
 * its keys is enough when every one of them was found; only then is each
 * key looked up again, to name the unknown ones. */
static void check_unknown_keys(walker *w, const vnode *nd, int idx, int present) {
    lua_State *L = w->L;
    int keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys++;
    }
    if (keys == present) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        size_t len = 0;
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (k == NULL || find_field(nd, k, len) < 0) report_unknown_key(w, lua_gettop(L));
    }
}

static void walk_object(walker *w, const vnode *nd, int idx) {
    lua_State *L = w->L;
    int nf = (int)nd->nfields;
    int slots = lua_gettop(L) + 1, present = 0;
    /* a raw lookup per declared field: cheaper than visiting every key */
    for (int i = 0; i < nf; i++) {
        lua_rawgeti(L, w->anchor, nd->fields[i]->key_ref);
        lua_rawget(L, idx);
    }
    for (int i = 0; i < nf; i++) {
        const vnode *f = nd->fields[i];
        int v = slots + i;
        push_seg(w, f->name.s, f->name.len, 0);
        int t = lua_type(L, v);
        present += t != LUA_TNIL;
        if (is_absent(L, v, t)) {
            if (f->required || (f->required_if_sib >= 0 && rule_holds(L, f, slots + f->required_if_sib)))
                report(w, f, "required", "is required");
        } else {
            walk_value(w, f, nd, v, t, slots);
        }
        w->depth--;
    }
    if (!nd->additional) check_unknown_keys(w, nd, idx, present);
    lua_settop(L, slots - 1);
}

COLD static void walk_array(walker *w, const vnode *nd, int idx) {
    lua_State *L = w->L;
    size_t n = lua_rawlen(L, idx), keys = 0;
    int64_t k;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (luapay_read_integer(L, -1, &k) != LUAPAY_MINOR_OK || k < 1 || (uint64_t)k > n) {
            lua_pop(L, 1);
            report(w, nd, "type", "must be an array (a table with keys 1..n only)");
            return;
        }
        keys++;
    }
    if (keys != n) {
        report(w, nd, "type", "must be an array (a table with keys 1..n only)");
        return;
    }
    if (n < nd->min_items)
        report(w, nd, "items", "must have at least %d item%s", (int)nd->min_items, nd->min_items == 1 ? "" : "s");
    if (n > nd->max_items)
        report(w, nd, "items", "must have at most %d item%s", (int)nd->max_items, nd->max_items == 1 ? "" : "s");
    if (nd->items == NULL) return;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        push_seg(w, NULL, 0, (int64_t)i);
        walk_value(w, nd->items, NULL, lua_gettop(L), lua_type(L, -1), 0);
        w->depth--;
        lua_pop(L, 1);
    }
}

/* The checks of the string types (T_STRING and those after T_OBJECT's
 * switch below) on a string's bytes. */
static void check_text(walker *w, const vnode *nd, const vnode *parent, const char *s, size_t n, int slots) {
    switch (nd->type) {
    case T_STRING:
        check_string(w, nd, parent, s, n, slots);
        return;
    case T_ENUM:
        if (!in_enum(nd, s, n)) report_enum(w, nd);
        return;
    case T_DECIMAL:
        check_decimal(w, nd, s, n);
        return;
    case T_CURRENCY:
        if (luapay_currency_find(s, n) == NULL)
            report(w, nd, "format", "is not an active ISO 4217 currency code");
        else if (!in_enum(nd, s, n))
            report_enum(w, nd);
        return;
    case T_COUNTRY:
        if (!luapay_is_country(s, n))
            report(w, nd, "format", "is not an ISO 3166-1 alpha-2 country code");
        else if (!in_enum(nd, s, n))
            report_enum(w, nd);
        return;
    case T_LANGUAGE:
        if (!luapay_is_language(s, n))
            report(w, nd, "format", "is not an ISO 639-1 language code");
        else if (!in_enum(nd, s, n))
            report_enum(w, nd);
        return;
    case T_LOCALE:
        if (!luapay_is_locale(s, n))
            report(w, nd, "format", "is not a locale ll_CC (ISO 639-1 language, ISO 3166-1 country)");
        else if (!in_enum(nd, s, n))
            report_enum(w, nd);
        return;
    case T_IBAN:
        switch (luapay_check_iban(s, n)) {
        case LUAPAY_IBAN_OK:
            break;
        case LUAPAY_IBAN_FORMAT:
            report(w, nd, "format", "is not an IBAN (registry country and length, upper case, no spaces)");
            break;
        case LUAPAY_IBAN_CHECKSUM:
            report(w, nd, "checksum", "has wrong IBAN check digits");
            break;
        }
        return;
    case T_BIC:
        if (!luapay_is_bic(s, n)) report(w, nd, "format", "is not a BIC (8 or 11 characters, ISO 9362)");
        return;
    case T_EMAIL:
    case T_URL: {
        size_t chars;
        if (luapay_utf8_count(s, n, &chars) && chars > nd->max_len)
            report(w, nd, "max_len", "must be at most %d character%s", (int)nd->max_len, nd->max_len == 1 ? "" : "s");
        else if (nd->type == T_EMAIL ? !luapay_is_email(s, n) : !luapay_is_url(s, n))
            report(w, nd, "format", nd->type == T_EMAIL ? "is not a valid e-mail address" : "is not an absolute http(s) URL");
        return;
    }
    case T_DATE:
        if (!luapay_is_date(s, n)) report(w, nd, "format", "is not a date YYYY-MM-DD");
        return;
    case T_DATETIME:
        if (!luapay_is_datetime(s, n)) report(w, nd, "format", "is not an ISO 8601 date-time YYYY-MM-DDThh:mm:ss");
        return;
    case T_IP:
        if (!luapay_is_ipv4(s, n) && !luapay_is_ipv6(s, n)) report(w, nd, "format", "is not an IP address");
        return;
    case T_IPV4:
        if (!luapay_is_ipv4(s, n)) report(w, nd, "format", "is not an IPv4 address");
        return;
    case T_IPV6:
        if (!luapay_is_ipv6(s, n)) report(w, nd, "format", "is not an IPv6 address");
        return;
    default:
        return;
    }
}

static void walk_value(walker *w, const vnode *nd, const vnode *parent, int idx, int t, int slots) {
    lua_State *L = w->L;
    size_t n;
    const char *s;
    int64_t iv;

    switch (nd->type) {
    case T_ANY:
        return;
    case T_BOOLEAN:
        if (t != LUA_TBOOLEAN) report(w, nd, "type", "must be a boolean, got %s", type_of(L, idx));
        return;
    case T_INTEGER:
        switch (luapay_read_integer(L, idx, &iv)) {
        case LUAPAY_MINOR_OK:
            check_range_i64(w, nd, iv);
            break;
        case LUAPAY_MINOR_TOO_LARGE:
            report(w, nd, "range", "must be within -2^53..2^53");
            break;
        default:
            report(w, nd, "type", "must be an integer, got %s", t == LUA_TNUMBER ? "a fraction or non-finite number" : type_of(L, idx));
        }
        return;
    case T_NUMBER: {
        lua_Number d = lua_tonumber(L, idx);
        if (t != LUA_TNUMBER || isnan(d) || isinf(d)) {
            report(w, nd, "type", "must be a finite number, got %s", t == LUA_TNUMBER ? "NaN or infinity" : type_of(L, idx));
        } else {
            if (nd->has_min && d < nd->nmin) report(w, nd, "range", "must be at least %f", (double)nd->nmin);
            if (nd->has_max && d > nd->nmax) report(w, nd, "range", "must be at most %f", (double)nd->nmax);
        }
        return;
    }
    case T_AMOUNT:
        switch (luapay_read_minor(L, idx, &iv)) {
        case LUAPAY_MINOR_OK:
            check_amount(w, nd, iv);
            break;
        case LUAPAY_MINOR_TOO_LARGE:
            report(w, nd, "range", "must be at most 2^53 minor units in size");
            break;
        case LUAPAY_MINOR_NOT_FINITE:
            report(w, nd, "type", "must be an integer amount in minor units, got NaN or infinity");
            break;
        case LUAPAY_MINOR_FLOAT:
            report(w, nd, "type", "must be an integer amount in minor units, got a float");
            break;
        default:
            report(w, nd, "type", "must be an integer amount in minor units, got %s", type_of(L, idx));
        }
        return;
    case T_OBJECT:
        if (t != LUA_TTABLE) {
            report(w, nd, "type", "must be an object (a table), got %s", type_of(L, idx));
        } else {
            w->secret += nd->secret; /* what is inside a secret value is secret */
            walk_object(w, nd, idx);
            w->secret -= nd->secret;
        }
        return;
    case T_ARRAY:
        if (t != LUA_TTABLE) {
            report(w, nd, "type", "must be an array (a table), got %s", type_of(L, idx));
        } else {
            w->secret += nd->secret;
            walk_array(w, nd, idx);
            w->secret -= nd->secret;
        }
        return;
    default:
        break;
    }

    /* the remaining types are strings */
    if (t != LUA_TSTRING) {
        report(w, nd, "type", "must be a string, got %s", type_of(L, idx));
        return;
    }
    s = lua_tolstring(L, idx, &n);
    check_text(w, nd, parent, s, n, slots);
}

/* ---- ordering ------------------------------------------------------- */

typedef struct {
    const char *path, *code;
    size_t plen;
    int idx;
} vrec;

static int is_dig(char c) { return c >= '0' && c <= '9'; }

static int path_cmp(const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i] == '[' && b[j] == '[' && i + 1 < na && j + 1 < nb && is_dig(a[i + 1]) && is_dig(b[j + 1])) {
            size_t ea = i + 1, eb = j + 1;
            while (ea < na && is_dig(a[ea])) ea++;
            while (eb < nb && is_dig(b[eb])) eb++;
            size_t la = ea - i - 1, lb = eb - j - 1;
            if (la != lb) return la < lb ? -1 : 1;
            int c = memcmp(a + i + 1, b + j + 1, la);
            if (c != 0) return c;
            i = ea, j = eb;
            continue;
        }
        if (a[i] != b[j]) return (unsigned char)a[i] < (unsigned char)b[j] ? -1 : 1;
        i++, j++;
    }
    return (i < na) - (j < nb);
}

static int vrec_cmp(const void *pa, const void *pb) {
    const vrec *a = (const vrec *)pa, *b = (const vrec *)pb;
    int c = path_cmp(a->path, a->plen, b->path, b->plen);
    if (c == 0) c = strcmp(a->code, b->code);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Replaces the violations table at `out` with a sorted copy. */
static void sort_violations(lua_State *L, int out, int count) {
    vrec *recs = (vrec *)lua_newuserdata(L, (size_t)count * sizeof(vrec));
    for (int i = 0; i < count; i++) {
        lua_rawgeti(L, out, i + 1);
        lua_getfield(L, -1, "path");
        recs[i].path = lua_tolstring(L, -1, &recs[i].plen); /* kept alive by the table */
        lua_getfield(L, -2, "code");
        recs[i].code = lua_tostring(L, -1);
        recs[i].idx = i + 1;
        lua_pop(L, 3);
    }
    qsort(recs, (size_t)count, sizeof(vrec), vrec_cmp);
    lua_createtable(L, count, 0);
    for (int i = 0; i < count; i++) {
        lua_rawgeti(L, out, recs[i].idx);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, out);
    lua_pop(L, 1);
}

/* Walks the value at `idx` with the schema; leaves true, or nil and the list. */
static int run(lua_State *L, int sidx, const schema_ud *S, int idx, const char *root_name) {
    walker w;
    w.L = L;
    w.S = S;
    w.count = 0;
    w.depth = 0;
    w.secret = 0;
    w.quiet = 0;
    w.root_name = root_name;
    if (S->root->stack_need > 1000000 || !lua_checkstack(L, (int)S->root->stack_need + 8))
        luaL_error(L, "validate: schema too large for the Lua stack");
    luapay_getuservalue(L, sidx);
    w.anchor = lua_gettop(L);
    lua_pushnil(L);
    w.out = lua_gettop(L);
    int t = lua_type(L, idx);
    if (is_absent(L, idx, t))
        report(&w, S->root, "required", "is required");
    else
        walk_value(&w, S->root, NULL, idx, t, 0);
    if (w.count == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (w.count > 1) sort_violations(L, w.out, w.count);
    lua_pushnil(L);
    lua_pushvalue(L, w.out);
    return 2;
}

/* ---- flat values ---------------------------------------------------- */

luapay_schema *luapay_schema_test(lua_State *L, int idx) {
    return (luapay_schema *)luaL_testudata(L, idx, SCHEMA_MT);
}

int luapay_schema_nfields(const luapay_schema *S) {
    return S->root != NULL && S->root->type == T_OBJECT ? (int)S->root->nfields : -1;
}

const char *luapay_schema_field(const luapay_schema *S, int i, size_t *len) {
    *len = S->root->fields[i]->name.len;
    return S->root->fields[i]->name.s;
}

int luapay_schema_find(const luapay_schema *S, const char *k, size_t len) {
    return find_field(S->root, k, len);
}

/* The types check_text checks (walk_value's "the remaining types"). */
static int is_text_type(int t) {
    return t == T_STRING || t == T_ENUM || (t >= T_DECIMAL && t <= T_IPV6);
}

/* The walk of walk_object over values in hand: the same checks (check_text,
 * check_amount) counted quietly. What needs a Lua value (a rule on a
 * sibling, a type other than a string or an amount) answers 0: the caller
 * leaves it to the general path. */
int luapay_schema_holds_values(const luapay_schema *S, const luapay_field_value *v) {
    const vnode *root = S->root;
    if (root == NULL || root->type != T_OBJECT) return 0;
    walker w; /* quiet: no Lua state, stack slots or path */
    w.L = NULL;
    w.S = S;
    w.anchor = w.out = 0;
    w.count = w.depth = w.secret = 0;
    w.quiet = 1;
    w.root_name = "value";
    for (size_t i = 0; i < root->nfields && w.count == 0; i++) {
        const vnode *f = root->fields[i];
        switch (v[i].kind) {
        case LUAPAY_VALUE_ABSENT:
            if (f->required || f->required_if_sib >= 0) return 0;
            break;
        case LUAPAY_VALUE_STRING:
            if (f->type == T_ANY) break;
            if (!is_text_type(f->type) || f->npb > 0) return 0; /* a type error, or a rule on a sibling */
            check_text(&w, f, root, v[i].s, v[i].n, 0);
            break;
        case LUAPAY_VALUE_MINOR:
            if (f->type == T_AMOUNT) check_amount(&w, f, v[i].minor);
            else if (f->type != T_ANY) return 0;
            break;
        default:
            return 0;
        }
    }
    return w.count == 0;
}

/* ---- Lua API -------------------------------------------------------- */

static schema_ud *check_schema(lua_State *L, int arg, const char *fn) {
    schema_ud *S = (schema_ud *)luaL_testudata(L, arg, SCHEMA_MT);
    if (S == NULL)
        luapay_arg_error(L, arg, fn, "schema",
                         lua_pushfstring(L, "compiled schema expected (core.schema{...}), got %s", luaL_typename(L, arg)));
    if (S->root == NULL) luaL_error(L, "luapay.schema: schema is closed");
    return S;
}

/* core.schema(tbl) -> compiled schema (raises on a bad schema) */
static int l_schema(lua_State *L) {
    if (!lua_istable(L, 1))
        luapay_arg_error(L, 1, "schema", "schema", lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 1)));
    compile_schema(L, 1, "schema", 1, "schema");
    return 1;
}

/* core.validate(schema, value) -> true | nil, violations */
static int l_validate(lua_State *L) {
    const schema_ud *S = check_schema(L, 1, "validate");
    lua_settop(L, 2);
    return run(L, 1, S, 2, "value");
}

/* core.check(type, value [, opts [, name]]) -> true | nil, message, code */
static int l_check(lua_State *L) {
    size_t tlen;
    const char *type = luapay_check_string(L, 1, "check", "type", &tlen);
    int known = 0;
    for (int i = 0; type_names[i] != NULL; i++) known |= lit_eq(type, tlen, type_names[i]);
    if (!known) luapay_arg_error(L, 1, "check", "type", lua_pushfstring(L, "unknown type '%s'", push_name(L, type, tlen)));
    if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
        luapay_arg_error(L, 3, "check", "opts", lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 3)));
    const char *name = lua_isnoneornil(L, 4) ? "value" : luapay_check_string(L, 4, "check", "name", NULL);
    lua_settop(L, 4);
    schema_ud *S;
    if (lua_isnil(L, 3)) {
        /* no options: one compiled schema per type, cached per Lua state */
        lua_getfield(L, LUA_REGISTRYINDEX, CHECK_CACHE);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, LUA_REGISTRYINDEX, CHECK_CACHE);
        }
        lua_pushvalue(L, 1);
        lua_rawget(L, 5);
        S = (schema_ud *)luaL_testudata(L, -1, SCHEMA_MT);
        if (S == NULL || S->root == NULL) {
            lua_pop(L, 1);
            lua_createtable(L, 0, 1);
            lua_pushvalue(L, 1);
            lua_setfield(L, -2, "type");
            S = compile_schema(L, lua_gettop(L), "check", 3, "opts");
            lua_pushvalue(L, 1);
            lua_pushvalue(L, -2);
            lua_rawset(L, 5);
        }
    } else {
        /* the node's table: a copy of opts with type set */
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, 5);
        }
        lua_pushvalue(L, 1);
        lua_setfield(L, 5, "type");
        S = compile_schema(L, 5, "check", 3, "opts");
    }
    int nres = run(L, lua_gettop(L), S, 2, name);
    if (nres == 1) return 1;
    lua_rawgeti(L, -1, 1);
    lua_getfield(L, -1, "message");
    lua_getfield(L, -2, "code");
    lua_pushnil(L);
    lua_replace(L, -4); /* nil, message, code */
    return 3;
}

static int l_schema_close(lua_State *L) {
    schema_release((schema_ud *)luaL_checkudata(L, 1, SCHEMA_MT));
    return 0;
}

/* schema:validate(value): the method's upvalue is the schema metatable, so
 * recognising the schema costs no registry lookup. */
static int l_schema_validate(lua_State *L) {
    lua_settop(L, 2); /* the value is slot 2 even when none was given */
    schema_ud *S = (schema_ud *)lua_touserdata(L, 1);
    if (S == NULL || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
        S = check_schema(L, 1, "schema:validate"); /* raises with the usual message */
    if (S->root == NULL) luaL_error(L, "luapay.schema: schema is closed");
    return run(L, 1, S, 2, "value");
}

static int l_schema_tostring(lua_State *L) {
    schema_ud *S = (schema_ud *)luaL_checkudata(L, 1, SCHEMA_MT);
    if (S->root == NULL)
        lua_pushliteral(L, "luapay.schema (closed)");
    else
        lua_pushfstring(L, "luapay.schema (%s)", type_names[S->root->type]);
    return 1;
}

static const luaL_Reg schema_methods[] = {
    {"validate", l_schema_validate},
    {"close", l_schema_close},
    {"__gc", l_schema_close},
    {"__close", l_schema_close},
    {"__tostring", l_schema_tostring},
    {NULL, NULL},
};

const luaL_Reg luapay_validate_funcs[] = {
    {"schema", l_schema},
    {"validate", l_validate},
    {"check", l_check},
    {NULL, NULL},
};

/* The schema metatable. The methods need no context: their upvalue is the
 * metatable itself. Leaves the stack as it was. */
void luapay_validate_register(lua_State *L) {
    luaL_newmetatable(L, SCHEMA_MT);
    lua_pushvalue(L, -1);
    luaL_setfuncs(L, schema_methods, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "luapay.schema");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

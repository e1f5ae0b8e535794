/* A Trustly notification checked in one pass over its text (issue 15): what
 * luapay.trustly's general path does with core.json_decode (numbers as
 * lexemes), core.trustly_verify over the tree and provider.plain_owned,
 * without the tree of the whole document or the plaintext in Lua.
 *
 *   core.trustly_notification(key, raw, plan) -> true, method, uuid, data, picks...
 *                                              | false | nil | nothing
 *   (plan: core.trustly_notification_plan(picks, others), made once)
 *
 * The text is read once, as core.json_decode reads it (its string and
 * number scanners), into a flat list of nodes on the C stack; Trustly's
 * serialization of params.data (trustly.c's rules: an object's keys in byte
 * order, strings as they are, numbers as their text, null and empty
 * containers as nothing) is written from the nodes, and params.signature
 * checked over method .. params.uuid .. that text with key (RSA-SHA1).
 * true: it holds, and data is params.data as provider.plain_owned leaves
 * core.json_decode's tree (numbers as Lua numbers, arrays with
 * core.array_mt, null as core.null), followed by what the event is made
 * of, the plan's picks: the amount in minor units (core.to_minor of the
 * first two picks, the amount and its currency, where both are strings,
 * else nil), then the other picks, each where it is a string (else nil).
 * false: it does not hold; nil: the signature is not base64.
 *
 * Nothing when the text is out of this path's reach: anything
 * core.json_decode refuses, a document that is not {"method": string,
 * "params": {"uuid": string, "signature": string, "data": {...}}}, one of
 * those keys or a key of data's objects given twice, more than MAX_NODES
 * values, nesting deeper than DEPTH, a signature longer than RSA-8192's.
 * luapay.trustly then takes the general path, which says what is wrong. */
#include <stdint.h>
#include <string.h>

#include "checks.h"
#include "core.h"
#include "names.h"

#define DEPTH 32      /* the general serialization stops at 64 */
#define MAX_NODES 512 /* Trustly's notifications hold a few dozen */
#define MAX_TEXT 0x7fffffff
#define ARRAY_MT_KEY "luapay.array_mt"

enum { N_OBJECT, N_ARRAY, N_STRING, N_NUMBER, N_NULL, N_TRUE, N_FALSE };

/* A value. Texts point into the body, or into a decoded string kept on the
 * Lua stack (a string with escapes: its slot, so data reuses it). */
typedef struct {
    const char *key, *text; /* an object member's key; a string's bytes, a number's text */
    unsigned key_len, len;
    int key_slot, slot;     /* 0: the text is the body's */
    unsigned count;         /* an object's members, an array's elements */
    unsigned size;          /* nodes in this subtree, itself included: the next sibling is this + size */
    int type;
} node;

typedef struct {
    lua_State *L;
    const unsigned char *p, *end;
    node *nodes;
    unsigned n;
    luapay_buf *decoded; /* a string with escapes, until it is pushed */
} reader;

static inline void skip_space(reader *r) {
    if (r->p < r->end && *r->p > ' ') return; /* no space, the common case: one compare (JSON's spaces are below '!') */
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

/* A string with escapes or bytes from 0x80, or near the end (read_string). */
static __attribute__((noinline)) int read_string_slow(reader *r, const char **text, unsigned *len, int *slot) {
    const unsigned char *s = r->p + 1;
    int decoded;
    r->decoded->len = 0;
    if (luapay_json_scan_string(&r->p, r->end, r->decoded, &decoded)) return 0;
    size_t n = decoded ? r->decoded->len : (size_t)(r->p - 1 - s);
    if (n > MAX_TEXT) return 0;
    *slot = 0;
    *text = (const char *)s;
    if (decoded) {
        if (!lua_checkstack(r->L, 1)) return 0;
        lua_pushlstring(r->L, r->decoded->data, n);
        *slot = lua_gettop(r->L);
        *text = lua_tostring(r->L, -1);
    }
    *len = (unsigned)n;
    return 1;
}

/* The string at r->p: its text and, if it had escapes, the stack slot of
 * the decoded copy. 0 if core.json_decode would refuse it. */
static inline int read_string(reader *r, const char **text, unsigned *len, int *slot) {
    const unsigned char *s = r->p + 1, *q = luapay_json_run(s, r->end);
    if (q < r->end && *q == '"' && q - s <= MAX_TEXT) { /* plain ASCII, no escape: the common case */
        *text = (const char *)s;
        *len = (unsigned)(q - s);
        *slot = 0;
        r->p = q + 1;
        return 1;
    }
    return read_string_slow(r, text, len, slot);
}

static int read_value(reader *r, int depth);

static int read_container(reader *r, int depth, int type) {
    if (depth > DEPTH) return 0;
    unsigned self = r->n++, count = 0;
    unsigned char close = type == N_OBJECT ? '}' : ']';
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
    } else {
        for (;; count++) {
            const char *key = NULL;
            unsigned key_len = 0;
            int key_slot = 0;
            skip_space(r);
            if (type == N_OBJECT) {
                if (r->p >= r->end || *r->p != '"' || !read_string(r, &key, &key_len, &key_slot)) return 0;
                skip_space(r);
                if (r->p >= r->end || *r->p != ':') return 0;
                r->p++;
            }
            unsigned child = r->n;
            skip_space(r);
            if (r->p < r->end && *r->p == '"' && r->n < MAX_NODES) { /* a string, the usual value: read_value's case inline */
                node *n = &r->nodes[r->n++];
                *n = (node){.size = 1, .type = N_STRING};
                if (!read_string(r, &n->text, &n->len, &n->slot)) return 0;
            } else if (!read_value(r, depth + 1)) {
                return 0;
            }
            r->nodes[child].key = key;
            r->nodes[child].key_len = key_len;
            r->nodes[child].key_slot = key_slot;
            skip_space(r);
            if (r->p < r->end && *r->p == ',') {
                r->p++;
                continue;
            }
            if (r->p < r->end && *r->p == close) {
                r->p++;
                count++;
                break;
            }
            return 0;
        }
    }
    node *n = &r->nodes[self];
    n->type = type;
    n->count = count;
    n->size = r->n - self;
    return 1;
}

static int literal(reader *r, const char *word, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
    r->p += n;
    return 1;
}

static int read_value(reader *r, int depth) {
    skip_space(r);
    if (r->p >= r->end || r->n >= MAX_NODES) return 0;
    node *n = &r->nodes[r->n];
    *n = (node){.size = 1};
    switch (*r->p) {
    case '{': return read_container(r, depth, N_OBJECT);
    case '[': return read_container(r, depth, N_ARRAY);
    case '"':
        n->type = N_STRING;
        r->n++;
        return read_string(r, &n->text, &n->len, &n->slot);
    case 't': n->type = N_TRUE; r->n++; return literal(r, "true", 4);
    case 'f': n->type = N_FALSE; r->n++; return literal(r, "false", 5);
    case 'n': n->type = N_NULL; r->n++; return literal(r, "null", 4);
    default: {
        const unsigned char *s = r->p;
        int is_integer;
        if (!luapay_json_scan_number(&r->p, r->end, &is_integer) || r->p - s > MAX_TEXT) return 0;
        n->type = N_NUMBER;
        n->text = (const char *)s;
        n->len = (unsigned)(r->p - s);
        r->n++;
        return 1;
    }
    }
}

/* The member c's key is the literal s (a constant length: memcmp inlined). */
#define KEY_IS(nodes, c, s) ((nodes)[c].key_len == sizeof s - 1 && memcmp((nodes)[c].key, s, sizeof s - 1) == 0)

/* found, now that c matched: c the first time, -2 (refused) after. */
static int found_at(int found, unsigned c) { return found == -1 ? (int)c : -2; }

/* found if it is a member of that type, else -1 (missing, given twice). */
static int of_type(const node *nodes, int found, int type) { return found >= 0 && nodes[found].type == type ? found : -1; }

typedef struct {
    const node *nodes;
    luapay_buf *out, *keys; /* keys: luapay_key_ref, one segment per open object */
    int twice;              /* a key given twice: the general path's table keeps the last */
} writer;

/* Trustly's serialization of the value at i. */
static void serialize(writer *w, unsigned i) {
    const node *n = &w->nodes[i];
    unsigned c = i + 1;
    switch (n->type) {
    case N_STRING:
    case N_NUMBER: luapay_buf_add(w->out, n->text, n->len); return;
    case N_TRUE: luapay_buf_add(w->out, "true", 4); return;
    case N_FALSE: luapay_buf_add(w->out, "false", 5); return;
    case N_NULL: return;
    case N_ARRAY:
        for (unsigned k = 0; k < n->count; k++, c += w->nodes[c].size) serialize(w, c);
        return;
    default: break;
    }
    if (n->count == 0) return; /* {} */
    size_t base = w->keys->len;
    for (unsigned k = 0; k < n->count; k++, c += w->nodes[c].size) {
        luapay_key_ref ref = {w->nodes[c].key, w->nodes[c].key_len, (int)c};
        luapay_buf_add(w->keys, &ref, sizeof ref);
    }
    if (w->keys->oom) return;
    luapay_key_ref *refs = (luapay_key_ref *)(w->keys->data + base);
    luapay_trustly_sort_keys(refs, n->count);
    for (unsigned k = 0; k < n->count; k++) {
        /* re-read the entry each time: nested objects may move the buffer */
        luapay_key_ref ref = ((const luapay_key_ref *)(w->keys->data + base))[k];
        if (k > 0) {
            const luapay_key_ref *prev = (const luapay_key_ref *)(w->keys->data + base) + k - 1;
            if (prev->n == ref.n && memcmp(prev->s, ref.s, ref.n) == 0) w->twice = 1;
        }
        luapay_buf_add(w->out, ref.s, ref.n);
        const node *v = &w->nodes[ref.slot];
        if (v->type == N_STRING || v->type == N_NUMBER) luapay_buf_add(w->out, v->text, v->len); /* no call */
        else serialize(w, (unsigned)ref.slot);
    }
    w->keys->len = base;
}

static void push_text(lua_State *L, const char *text, unsigned len, int slot) {
    if (slot) lua_pushvalue(L, slot);
    else lua_pushlstring(L, text, len);
}

/* ---- core.trustly_notification_plan ----------------------------------
 * The members of data the event is made of, from luapay.trustly (the C core
 * knows no provider's field names): picks, returned where they are strings,
 * the first two read as the amount and its currency; others, the names
 * the event reads too, only so that their keys are not hashed again. The
 * uservalue holds the names in the set's order (index + 1), pushed from
 * there as keys of data. */
#define PLAN_MT "luapay.trustly_notification_plan"
#define MAX_PICKS 16
enum { PICK_AMOUNT, PICK_CURRENCY };

typedef struct {
    luapay_names names; /* the picks first */
    int npicks;
} plan;

/* core.trustly_notification_plan(picks, others) -> plan: two lists of data's member names. */
static int l_trustly_notification_plan(lua_State *L) {
    static const char *const fn = "trustly_notification_plan";
    lua_settop(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t npicks = lua_rawlen(L, 1), nothers = lua_rawlen(L, 2);
    if (npicks < 2 || npicks > MAX_PICKS) luapay_arg_error(L, 1, fn, "picks", "2 to 16 names expected");
    plan *P = (plan *)lua_newuserdata(L, sizeof *P); /* 3 */
    memset(P, 0, sizeof *P);
    lua_createtable(L, (int)(npicks + nothers), 0); /* 4: the uservalue */
    for (size_t i = 1; i <= npicks; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (luapay_names_take(L, &P->names, 4, fn, 1, "picks") != (int)i - 1)
            luapay_arg_error(L, 1, fn, "picks", "a name given twice");
    }
    P->npicks = (int)npicks;
    for (size_t i = 1; i <= nothers; i++) {
        lua_rawgeti(L, 2, (int)i);
        luapay_names_take(L, &P->names, 4, fn, 2, "others");
    }
    luapay_setuservalue(L, 3);
    luaL_newmetatable(L, PLAN_MT); /* or the one made before */
    lua_setmetatable(L, 3);
    return 1;
}

/* Pushes the value at i as provider.plain_owned leaves core.json_decode's. */
static void push_plain(lua_State *L, const node *nodes, unsigned i) {
    const node *n = &nodes[i];
    unsigned c = i + 1;
    switch (n->type) {
    case N_STRING: push_text(L, n->text, n->len, n->slot); return;
    case N_NUMBER:
        lua_pushlstring(L, n->text, n->len);
        luapay_plain_number(L);
        return;
    case N_TRUE:
    case N_FALSE: lua_pushboolean(L, n->type == N_TRUE); return;
    case N_NULL: lua_pushlightuserdata(L, NULL); return;
    case N_ARRAY:
        lua_createtable(L, (int)n->count, 0);
        for (unsigned k = 0; k < n->count; k++, c += nodes[c].size) {
            push_plain(L, nodes, c);
            lua_rawseti(L, -2, (int)k + 1);
        }
        luaL_getmetatable(L, ARRAY_MT_KEY);
        lua_setmetatable(L, -2);
        return;
    default:
        lua_createtable(L, 0, (int)n->count);
        for (unsigned k = 0; k < n->count; k++, c += nodes[c].size) {
            push_text(L, nodes[c].key, nodes[c].key_len, nodes[c].key_slot);
            push_plain(L, nodes, c);
            lua_rawset(L, -3);
        }
        return;
    }
}

/* Pushes data (the object at i), then the plan's picks where they are
 * strings (else nil), the amount in minor units in place of the first;
 * names: the stack slot of the plan's names. */
static void push_data(lua_State *L, const node *nodes, unsigned i, const plan *P, int names) {
    const node *n = &nodes[i];
    int data = lua_gettop(L) + 1, picks = data + 1;
    lua_createtable(L, 0, (int)n->count);
    lua_settop(L, data + P->npicks); /* the picks, nil */
    for (unsigned k = 0, c = i + 1; k < n->count; k++, c += nodes[c].size) {
        int name = luapay_names_find(&P->names, nodes[c].key, nodes[c].key_len);
        if (name >= 0) lua_rawgeti(L, names, name + 1);
        else push_text(L, nodes[c].key, nodes[c].key_len, nodes[c].key_slot);
        if (nodes[c].type == N_STRING) push_text(L, nodes[c].text, nodes[c].len, nodes[c].slot); /* no call */
        else push_plain(L, nodes, c);
        if (name >= 0 && name < P->npicks && nodes[c].type == N_STRING) {
            lua_pushvalue(L, -1);
            lua_replace(L, picks + name);
        }
        lua_rawset(L, data);
    }
    /* the amount as core.to_minor(amount, currency) gives it (nil where it gives none) */
    int amount = picks + PICK_AMOUNT, currency = picks + PICK_CURRENCY;
    if (!lua_isnil(L, amount) && !lua_isnil(L, currency)) {
        size_t n_len, c_len;
        const char *text = lua_tolstring(L, amount, &n_len), *code = lua_tolstring(L, currency, &c_len);
        const luapay_currency *cur;
        int64_t minor;
        if (luapay_to_minor(text, n_len, code, c_len, &minor, &cur) == LUAPAY_TO_MINOR_OK)
#if LUA_VERSION_NUM >= 503
            lua_pushinteger(L, (lua_Integer)minor);
#else
            lua_pushnumber(L, (lua_Number)minor); /* exact: at most 2^53 */
#endif
        else
            lua_pushnil(L);
    } else {
        lua_pushnil(L);
    }
    lua_replace(L, amount);
}

static int l_trustly_notification(lua_State *L) {
    size_t len;
    if (luaL_testudata(L, 1, "luapay.pkey") == NULL)
        luapay_arg_error(L, 1, "trustly_notification", "key", "a core.pkey expected");
    const char *raw = luapay_check_string(L, 2, "trustly_notification", "raw", &len);
    const plan *P = (const plan *)luaL_checkudata(L, 3, PLAN_MT);
    lua_settop(L, 3);
    node nodes[MAX_NODES];
    reader r = {L, (const unsigned char *)raw, (const unsigned char *)raw + len, nodes, 0,
                luapay_scratch(L, LUAPAY_SCRATCH_JSON_DECODE)};
    int ok = read_value(&r, 0);
    skip_space(&r);
    luapay_scratch_done(r.decoded);
    if (!ok || r.p != r.end || nodes[0].type != N_OBJECT) return 0;
    /* method and params, then params' uuid, signature and data: one pass over each object */
    int method = -1, params = -1, uuid = -1, sig = -1, data = -1;
    for (unsigned c = 1, k = 0; k < nodes[0].count; k++, c += nodes[c].size) {
        if (KEY_IS(nodes, c, "method")) method = found_at(method, c);
        else if (KEY_IS(nodes, c, "params")) params = found_at(params, c);
    }
    method = of_type(nodes, method, N_STRING), params = of_type(nodes, params, N_OBJECT);
    if (method < 0 || params < 0) return 0;
    for (unsigned c = (unsigned)params + 1, k = 0; k < nodes[params].count; k++, c += nodes[c].size) {
        if (KEY_IS(nodes, c, "uuid")) uuid = found_at(uuid, c);
        else if (KEY_IS(nodes, c, "signature")) sig = found_at(sig, c);
        else if (KEY_IS(nodes, c, "data")) data = found_at(data, c);
    }
    uuid = of_type(nodes, uuid, N_STRING), sig = of_type(nodes, sig, N_STRING), data = of_type(nodes, data, N_OBJECT);
    if (uuid < 0 || sig < 0 || data < 0) return 0;

    unsigned char raw_sig[1032]; /* RSA-8192's signature */
    if (nodes[sig].len / 4 * 3 + 1 > sizeof raw_sig) return 0;
    const char *why = NULL;
    long slen = luapay_base64_decode(raw_sig, (const unsigned char *)nodes[sig].text, nodes[sig].len, &why);
    if (slen < 0) {
        lua_pushnil(L);
        return 1;
    }

    /* method .. uuid .. serialize(data); no Lua call while the scratch
     * buffers are held (the key checked open first: the check below does
     * not raise) */
    luapay_pkey_check(L);
    writer w = {nodes, luapay_scratch(L, LUAPAY_SCRATCH_JSON), luapay_scratch(L, LUAPAY_SCRATCH_JSON_KEYS), 0};
    luapay_buf_add(w.out, nodes[method].text, nodes[method].len);
    luapay_buf_add(w.out, nodes[uuid].text, nodes[uuid].len);
    serialize(&w, (unsigned)data);
    int oom = w.out->oom || w.keys->oom;
    luapay_scratch_done(w.keys);
    int verified = !oom && !w.twice &&
                   luapay_pkey_verify(L, w.out->data, w.out->len, (const char *)raw_sig, (size_t)slen, LUAPAY_SHA1);
    luapay_scratch_done(w.out);
    if (oom) return luaL_error(L, "trustly_notification: out of memory");
    if (w.twice) return 0;
    if (!verified) {
        lua_pushboolean(L, 0);
        return 1;
    }
    luaL_checkstack(L, 3 * DEPTH + 8, "trustly_notification: nesting");
    luapay_getuservalue(L, 3); /* the plan's names, below the values returned: nothing to remove */
    int names = lua_gettop(L);
    lua_pushboolean(L, 1);
    push_text(L, nodes[method].text, nodes[method].len, nodes[method].slot);
    push_text(L, nodes[uuid].text, nodes[uuid].len, nodes[uuid].slot);
    push_data(L, nodes, (unsigned)data, P, names);
    return 4 + P->npicks;
}

const luaL_Reg luapay_trustly_notification_funcs[] = {
    {"trustly_notification", l_trustly_notification},
    {"trustly_notification_plan", l_trustly_notification_plan},
    {NULL, NULL},
};

/* Trustly's serialization: the text its RSA-SHA1 signatures are made over,
 * method .. uuid .. serialize(data) (protocol notes, section 3).
 *
 *   core.trustly_serialize(data) -> string
 *
 *   object        each key in byte order (memcmp, shorter first on a tie),
 *                 the key then serialize(value); a null member still emits
 *                 its key
 *   array         serialize(element) for each element in order, no indexes
 *   string        the raw bytes: no quotes, no escaping
 *   null, {}, []  "" (core.null / cjson.null, an empty table of either kind)
 *   number        its JSON text, exactly as core.json_encode writes it (the
 *                 tree that is signed is the tree that is sent)
 *   number object a table with core.number_mt (core.json_decode's lexemes,
 *                 core.json_number): its text, so a received message is
 *                 checked over the digits it was signed with
 *   boolean       "true" / "false". The official clients disagree (Python
 *                 True/False, PHP 1/"", Java and JS true/false) and the API
 *                 never uses booleans; the vectors use true/false, and
 *                 luapay.trustly refuses booleans in requests.
 *
 * Tables are told apart as core.json_encode does: keys exactly 1..n (or
 * core.array_mt) make an array, string keys an object; anything else (mixed
 * keys, holes, a function value, NaN, a table that contains itself,
 * nesting deeper than 64) raises with the path of the offending value, e.g.
 * "trustly_serialize: bad argument #1 'data' (Attributes.Amount: a function
 * cannot be serialized)". The buffers are the context's scratch ones
 * (JSON and JSON_KEYS: serializing never runs inside core.json_encode), so
 * raising leaks nothing and a call allocates nothing but its result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define FN "trustly_serialize"
#define MAX_DEPTH 64
#define ARRAY_MT_KEY "luapay.array_mt"
#define NUMBER_MT_KEY "luapay.json_number"
#define SMALL_SORT 16
/* Stack slots an object leaves free above the values it keeps: every
 * level below it may need 4 (walk_table's lua_checkstack must not fail for
 * want of the room its parents took). */
#define HEADROOM (4 * (MAX_DEPTH + 2) + 8)

typedef struct {
    lua_State *L;
    const char *fn; /* who raises: "trustly_serialize", or the caller's name */
    int arg;        /* and the argument data was */
    luapay_buf *out;  /* boxed at stack index 4 */
    luapay_buf *keys; /* boxed at stack index 5: key_ref entries, one segment per open object */
} walker;

/* The scratch buffers back before a raise (see luapay_scratch_in). */
static void let_go(walker *w) {
    luapay_scratch_done(w->out);
    luapay_scratch_done(w->keys);
}

static int fail(walker *w, const luapay_frame *at, const char *what) {
    char path[256];
    luapay_path_describe(at, path, sizeof path);
    let_go(w);
    if (path[0] == '\0') return luapay_arg_error(w->L, w->arg, w->fn, "data", what);
    return luapay_arg_error(w->L, w->arg, w->fn, "data", lua_pushfstring(w->L, "%s: %s", path, what));
}

static void add(walker *w, const char *s, size_t n) {
    luapay_buf_add(w->out, s, n);
}

static int key_cmp(const luapay_key_ref *a, const luapay_key_ref *b) {
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    if (c != 0) return c;
    return (a->n > b->n) - (a->n < b->n);
}

static int key_cmp_q(const void *a, const void *b) {
    return key_cmp((const luapay_key_ref *)a, (const luapay_key_ref *)b);
}

/* Objects have a handful of keys: insertion sort beats qsort's calls. */
void luapay_trustly_sort_keys(luapay_key_ref *k, size_t n) {
    if (n > SMALL_SORT) {
        qsort(k, n, sizeof *k, key_cmp_q);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        luapay_key_ref x = k[i];
        size_t j = i;
        while (j > 0 && key_cmp(&k[j - 1], &x) > 0) {
            k[j] = k[j - 1];
            j--;
        }
        k[j] = x;
    }
}

static void walk(walker *w, int idx, const luapay_frame *at, int depth);

static void walk_table(walker *w, int idx, const luapay_frame *at, int depth) {
    lua_State *L = w->L;
    const void *self = lua_topointer(L, idx);
    if (luapay_path_has_table(at, self)) fail(w, at, "a table contains itself (a cycle)");
    if (depth > MAX_DEPTH) fail(w, at, "nested too deeply");
    if (!lua_checkstack(L, 4)) {
        let_go(w);
        luaL_error(L, "stack overflow (" FN ": nesting)");
    }
    int marked_array = 0;
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, NUMBER_MT_KEY);
        int is_number = lua_rawequal(L, -1, -2);
        luaL_getmetatable(L, ARRAY_MT_KEY);
        marked_array = lua_rawequal(L, -1, -3);
        lua_pop(L, 3);
        if (is_number) {
            lua_rawgeti(L, idx, 1);
            if (lua_type(L, -1) != LUA_TSTRING) fail(w, at, "a number object without its text");
            size_t n;
            const char *text = lua_tolstring(L, -1, &n);
            add(w, text, n);
            lua_pop(L, 1);
            return;
        }
    }

    /* One pass: count the keys and note the string ones in this object's
     * segment of the key stack, each member's value left on the stack (no
     * second lookup by key). The key strings stay alive as keys of the
     * table, which is on the stack. */
    size_t base = w->keys->len, count = 0, string_keys = 0;
    int top = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (lua_type(L, -2) == LUA_TSTRING) {
            luapay_key_ref k;
            k.s = lua_tolstring(L, -2, &k.n);
            string_keys++;
            if (lua_checkstack(L, 3 + HEADROOM)) {
                k.slot = lua_gettop(L);
                lua_pushvalue(L, -2); /* the key above its value, for lua_next */
            } else { /* no room left to keep it (about 4000 keys under LuaJIT): looked up again by its key */
                k.slot = 0;
                lua_pop(L, 1);
            }
            luapay_buf_add(w->keys, &k, sizeof k);
        } else {
            lua_pop(L, 1);
        }
    }
    if (w->keys->oom) {
        let_go(w);
        luaL_error(L, FN ": out of memory");
    }
    if (count == 0) return; /* {} and [] alike */

    size_t n = lua_rawlen(L, idx);
    if (string_keys == 0 && count == n) {
        for (size_t i = 1; i <= n; i++) {
            luapay_frame f = {at, NULL, 0, i, self};
            lua_rawgeti(L, idx, (int)i);
            walk(w, lua_gettop(L), &f, depth + 1);
            lua_pop(L, 1);
        }
        return;
    }
    if (string_keys != count || marked_array)
        fail(w, at, "a table mixes array and object keys (or has non-string keys)");

    luapay_trustly_sort_keys((luapay_key_ref *)(w->keys->data + base), count);
    for (size_t i = 0; i < count; i++) {
        /* re-read the entry each time: nested objects may move the stack */
        luapay_key_ref k = ((const luapay_key_ref *)(w->keys->data + base))[i];
        luapay_frame f = {at, k.s, k.n, 0, self};
        add(w, k.s, k.n);
        if (k.slot) {
            walk(w, k.slot, &f, depth + 1);
        } else {
            lua_pushlstring(L, k.s, k.n);
            lua_rawget(L, idx);
            walk(w, lua_gettop(L), &f, depth + 1);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    w->keys->len = base;
}

static void walk(walker *w, int idx, const luapay_frame *at, int depth) {
    lua_State *L = w->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        add(w, s, n);
        return;
    }
    case LUA_TNUMBER: {
        char num[64];
        size_t n = luapay_json_number_text(L, idx, num);
        if (n == 0) fail(w, at, "NaN and infinity cannot be serialized");
        add(w, num, n);
        return;
    }
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) add(w, "true", 4);
        else add(w, "false", 5);
        return;
    case LUA_TNIL: /* only at the top: no Data at all */
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return; /* null */
        break;
    case LUA_TTABLE:
        walk_table(w, idx, at, depth);
        return;
    default:
        break;
    }
    fail(w, at, lua_pushfstring(L, "a %s cannot be serialized", luaL_typename(L, idx)));
}

/* core.trustly_serialize(data [, fn, arg]) -> string; fn and arg name the
 * function and argument errors are raised for (trustly.sign's data is its
 * argument #3). */
static int l_trustly_serialize(lua_State *L) {
    const char *fn = luaL_optstring(L, 2, FN);
    int arg = (int)luaL_optinteger(L, 3, 1);
    lua_settop(L, 3); /* fn stays referenced */
    walker w = {L, fn, arg, luapay_scratch(L, LUAPAY_SCRATCH_JSON), luapay_scratch(L, LUAPAY_SCRATCH_JSON_KEYS)};
    walk(&w, 1, NULL, 0);
    int oom = w.out->oom || w.keys->oom;
    if (!oom) lua_pushlstring(L, w.out->data ? w.out->data : "", w.out->len);
    luapay_scratch_done(w.out);
    luapay_scratch_done(w.keys);
    if (oom) return luaL_error(L, FN ": out of memory");
    return 1;
}

/* core.trustly_verify(key, method, uuid, data, sig_b64 [, fn, arg]) ->
 * true | false | nil: key:verify(method .. uuid .. trustly_serialize(data,
 * fn, arg), base64_decode(sig_b64), "sha1") in one call, with no string
 * made on the way; nil when sig_b64 is not base64 (checked first, as a
 * decode before the serialization would). Raises as those do. */
static int l_trustly_verify(lua_State *L) {
    size_t mlen, ulen, blen;
    const char *method = luaL_checklstring(L, 2, &mlen), *uuid = luaL_checklstring(L, 3, &ulen);
    const unsigned char *b64 = (const unsigned char *)luaL_checklstring(L, 5, &blen);
    const char *fn = luaL_optstring(L, 6, FN);
    int arg = (int)luaL_optinteger(L, 7, 1);
    unsigned char small[1032]; /* RSA-8192's signature: no userdata to collect */
    unsigned char *sig = blen / 4 * 3 + 1 <= sizeof small ? small : (unsigned char *)lua_newuserdata(L, blen / 4 * 3 + 1);
    const char *why = NULL;
    long slen = luapay_base64_decode(sig, b64, blen, &why);
    if (slen < 0) {
        lua_pushnil(L);
        return 1;
    }
    luapay_pkey_check(L); /* before the scratch buffers are taken */
    walker w = {L, fn, arg, luapay_scratch(L, LUAPAY_SCRATCH_JSON), luapay_scratch(L, LUAPAY_SCRATCH_JSON_KEYS)};
    add(&w, method, mlen);
    add(&w, uuid, ulen);
    walk(&w, 4, NULL, 0);
    int oom = w.out->oom || w.keys->oom;
    luapay_scratch_done(w.keys);
    if (oom) {
        luapay_scratch_done(w.out);
        return luaL_error(L, FN ": out of memory");
    }
    /* the scratch buffer stays ours until luapay_scratch_done: the key is
     * checked open above, so the check below does not raise */
    int ok = luapay_pkey_verify(L, w.out->data, w.out->len, (const char *)sig, (size_t)slen, LUAPAY_SHA1);
    luapay_scratch_done(w.out);
    lua_pushboolean(L, ok);
    return 1;
}

/* Whether luapay.trustly's check of a request's Data (check_values) finds
 * nothing, at idx: no boolean, no function, thread or userdata but null,
 * no table that mixes array and object keys (number objects are numbers).
 * 0 also past SENDABLE_DEPTH levels, for the Lua check to decide. */
#define SENDABLE_DEPTH 32
static int sendable(lua_State *L, int idx, int depth) {
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: case LUA_TFUNCTION: case LUA_TTHREAD: case LUA_TUSERDATA:
        return 0;
    case LUA_TLIGHTUSERDATA:
        return lua_touserdata(L, idx) == NULL;
    case LUA_TTABLE:
        break;
    default:
        return 1;
    }
    if (depth > SENDABLE_DEPTH || !lua_checkstack(L, 4)) return 0;
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, NUMBER_MT_KEY);
        int is_number = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (is_number) return 1;
    }
    size_t count = 0, strings = 0;
    int ok = 1;
    lua_pushnil(L);
    while (ok && lua_next(L, idx)) {
        count++;
        strings += lua_type(L, -2) == LUA_TSTRING;
        ok = sendable(L, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    if (!ok) {
        lua_pop(L, 1); /* the key lua_next stopped at */
        return 0;
    }
    return strings == count || (strings == 0 && count == (size_t)lua_rawlen(L, idx));
}

/* core.trustly_sendable(data) -> boolean: sendable(data) (see above). In
 * C, because the Lua check's loops break LuaJIT's trace of every call. */
static int l_trustly_sendable(lua_State *L) {
    lua_settop(L, 1);
    lua_pushboolean(L, sendable(L, 1, 1));
    return 1;
}

const luaL_Reg luapay_trustly_funcs[] = {
    {"trustly_serialize", l_trustly_serialize},
    {"trustly_sendable", l_trustly_sendable},
    {"trustly_verify", l_trustly_verify},
    {NULL, NULL},
};

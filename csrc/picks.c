/* Values read at paths of a decoded body, for a provider's event: the
 * provider's Lua module says which, as data made once into a plan (the C
 * core knows no provider's field names), and a pass that has just decoded
 * a body hands them back with it, so that Lua walks no tree on a hot path.
 *
 *   core.json_pick_plan(picks) -> plan
 *     picks: a list of {from = {path, ...}, path = {key, ...}, as = "text" |
 *     "integer", key = name}, each path a list of keys. A pick's value: the
 *     first of the from paths whose value is neither nil, JSON null nor
 *     false (Lua's `a or b`), then path below it (optional), then as
 *     converts it. key (optional) names it in the table of picks.
 *   core.json_picks(t, plan) -> the table of the named picks, then the
 *     values of the others in order.
 *
 * A path leads through tables (rawget), a JSON null is nil. "text": a
 * string as it is, a number as its digits (provider.digits), a boolean as
 * tostring writes it, else nil. "integer": an integer, or an integral float
 * within 2^53 (provider.integer), else nil. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "names.h"

#define PLAN_MT "luapay.json_pick_plan"
#define MAX_PICKS 24
#define MAX_FROM 4
#define MAX_DEPTH 4

enum { AS_TEXT, AS_INTEGER };

typedef struct {
    unsigned char nfrom, from_len[MAX_FROM], path_len, as;
    unsigned char from[MAX_FROM][MAX_DEPTH], path[MAX_DEPTH]; /* key indexes in the names */
    unsigned char member[MAX_FROM]; /* each from path's first key, as the index of a member of the root */
    int key;                        /* the name's index, -1: unnamed */
} pick;

typedef struct {
    luapay_names names; /* every key, and the picks' names; the uservalue holds them (index + 1) */
    int npicks, nnamed, nmembers;
    unsigned char member_of[LUAPAY_NAMES_MAX]; /* a key's member index + 1, 0: none yet */
    pick p[MAX_PICKS];
} pick_plan;

/* Reads the list of keys on top into keys (its length into *len); pops it. */
static void read_path(lua_State *L, pick_plan *P, int uv, unsigned char *keys, unsigned char *len, int required) {
    static const char *const fn = "json_pick_plan";
    size_t n = lua_type(L, -1) == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
    if (lua_type(L, -1) != LUA_TTABLE && !(lua_isnil(L, -1) && !required))
        luapay_arg_error(L, 1, fn, "picks", "a path must be a list of keys");
    if ((required && n == 0) || n > MAX_DEPTH) luapay_arg_error(L, 1, fn, "picks", "a path of 1 to 4 keys expected");
    int list = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, list, (int)i + 1);
        keys[i] = (unsigned char)luapay_names_take(L, &P->names, uv, fn, 1, "picks");
    }
    *len = (unsigned char)n;
    lua_pop(L, 1);
}

static int l_json_pick_plan(lua_State *L) {
    static const char *const fn = "json_pick_plan";
    lua_settop(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t npicks = lua_rawlen(L, 1);
    if (npicks == 0 || npicks > MAX_PICKS) luapay_arg_error(L, 1, fn, "picks", "1 to 24 picks expected");
    pick_plan *P = (pick_plan *)lua_newuserdata(L, sizeof *P); /* 2 */
    memset(P, 0, sizeof *P);
    lua_createtable(L, LUAPAY_NAMES_MAX, 0); /* 3: the uservalue */
    for (size_t i = 0; i < npicks; i++) {
        pick *k = &P->p[P->npicks++];
        lua_rawgeti(L, 1, (int)i + 1); /* 4 */
        if (lua_type(L, 4) != LUA_TTABLE) luapay_arg_error(L, 1, fn, "picks", "a list of tables expected");
        lua_pushnil(L); /* a misspelt field would otherwise read as absent */
        while (lua_next(L, 4)) {
            const char *f = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(f, "from") != 0 && strcmp(f, "path") != 0 && strcmp(f, "as") != 0 && strcmp(f, "key") != 0)
                luapay_arg_error(L, 1, fn, "picks", "a pick holds from, path, as and key only");
            lua_pop(L, 1);
        }
        lua_getfield(L, 4, "from"); /* 5 */
        size_t nfrom = lua_type(L, 5) == LUA_TTABLE ? lua_rawlen(L, 5) : 0;
        if (nfrom == 0 || nfrom > MAX_FROM) luapay_arg_error(L, 1, fn, "picks", "from: 1 to 4 paths expected");
        for (size_t j = 0; j < nfrom; j++) {
            lua_rawgeti(L, 5, (int)j + 1);
            read_path(L, P, 3, k->from[j], &k->from_len[j], 1);
            unsigned char *m = &P->member_of[k->from[j][0]];
            if (*m == 0) *m = (unsigned char)++P->nmembers;
            k->member[j] = (unsigned char)(*m - 1);
        }
        k->nfrom = (unsigned char)nfrom;
        lua_getfield(L, 4, "path");
        read_path(L, P, 3, k->path, &k->path_len, 0);
        lua_getfield(L, 4, "as");
        const char *as = lua_tostring(L, -1);
        if (as != NULL && strcmp(as, "text") == 0) k->as = AS_TEXT;
        else if (as != NULL && strcmp(as, "integer") == 0) k->as = AS_INTEGER;
        else luapay_arg_error(L, 1, fn, "picks", "as: \"text\" or \"integer\" expected");
        lua_pop(L, 1);
        lua_getfield(L, 4, "key");
        if (lua_isnil(L, -1)) {
            k->key = -1;
            lua_pop(L, 1);
        } else {
            k->key = luapay_names_take(L, &P->names, 3, fn, 1, "picks");
            for (int j = 0; j < P->npicks - 1; j++)
                if (P->p[j].key == k->key) luapay_arg_error(L, 1, fn, "picks", "a key given twice");
            P->nnamed++;
        }
        lua_settop(L, 3);
    }
    luapay_setuservalue(L, 2);
    luaL_newmetatable(L, PLAN_MT); /* or the one made before */
    lua_setmetatable(L, 2);
    return 1;
}

/* One step down a path: the value at key (the names at slot names) of the
 * value at slot *at, of type type, into slot w (*at becomes w). Its type:
 * nil, with no stack touched, unless the value at *at is a table; JSON null
 * is nil. */
static inline __attribute__((always_inline)) int step(lua_State *L, int names, int key, int *at, int w, int type) {
    if (type != LUA_TTABLE) return LUA_TNIL;
    lua_rawgeti(L, names, key + 1);
#if LUA_VERSION_NUM >= 503
    type = lua_rawget(L, *at); /* its type: no lua_type */
#else
    lua_rawget(L, *at);
    type = lua_type(L, -1);
#endif
    if (type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) type = LUA_TNIL;
    lua_replace(L, w);
    *at = w;
    return type;
}

/* Pushes the value at slot at, of type type, as "text" reads it; 0 (and
 * nothing pushed) for nil. */
static int push_text(lua_State *L, int at, int type) {
    char d[320]; /* "%.0f" of any double: a sign and up to 309 digits */
    size_t n;
    switch (type) {
    case LUA_TSTRING: lua_pushvalue(L, at); return 1;
    case LUA_TNUMBER: {
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, at)) {
            n = luapay_integer_text((long long)lua_tointeger(L, at), d);
            break;
        }
#endif
        double v = (double)lua_tonumber(L, at);
        if (v == floor(v) && fabs(v) <= LUAPAY_TWO_POW_53 && v != 0) n = luapay_integer_text((long long)v, d);
        else n = (size_t)snprintf(d, sizeof d, "%.0f", v);
        break;
    }
    case LUA_TBOOLEAN:
        n = lua_toboolean(L, at) ? 4 : 5;
        memcpy(d, n == 4 ? "true" : "false", n);
        break;
    default: return 0;
    }
    lua_pushlstring(L, d, n);
    return 1;
}

/* Pushes the value at slot at, of type type, as "integer" reads it; 0 (and
 * nothing pushed) for nil. */
static int push_integer(lua_State *L, int at, int type) {
    if (type != LUA_TNUMBER) return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, at)) {
        lua_pushvalue(L, at);
        return 1;
    }
#endif
    double v = (double)lua_tonumber(L, at);
    if (!(v == floor(v) && fabs(v) <= LUAPAY_TWO_POW_53)) return 0;
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushvalue(L, at);
#endif
    return 1;
}

int luapay_picks_push(lua_State *L, int root, int plan) {
    const pick_plan *P = (const pick_plan *)luaL_checkudata(L, plan, PLAN_MT);
    int base = lua_gettop(L), nvalues = P->npicks - P->nnamed, root_type = lua_type(L, root);
    luaL_checkstack(L, nvalues + P->nmembers + 8, "json_picks");
    lua_createtable(L, 0, P->nnamed); /* base + 1 */
    lua_settop(L, base + 1 + nvalues); /* the unnamed values' slots, nil */
    luapay_getuservalue(L, plan);
    /* the root's members the paths start at (each read once, when first
     * needed), then w: where a path's steps go */
    int names = base + 2 + nvalues, w = names + P->nmembers + 1, value = base + 2;
    lua_settop(L, w);
    int member_type[LUAPAY_NAMES_MAX];
    unsigned char read[LUAPAY_NAMES_MAX] = {0};
    for (int i = 0; i < P->npicks; i++) {
        const pick *k = &P->p[i];
        int at = 0, type = LUA_TNIL;
        for (int j = 0; j < k->nfrom; j++) {
            int m = k->member[j];
            at = names + 1 + m;
            if (!read[m]) {
                int root_at = root;
                member_type[m] = step(L, names, k->from[j][0], &root_at, at, root_type);
                read[m] = 1;
            }
            type = member_type[m];
            for (int d = 1; d < k->from_len[j]; d++) type = step(L, names, k->from[j][d], &at, w, type);
            if (type != LUA_TNIL && !(type == LUA_TBOOLEAN && !lua_toboolean(L, at))) break;
        }
        for (int d = 0; d < k->path_len; d++) type = step(L, names, k->path[d], &at, w, type);
        if (k->key >= 0) lua_rawgeti(L, names, k->key + 1); /* the name, under the value */
        if (k->as == AS_TEXT ? push_text(L, at, type) : push_integer(L, at, type)) {
            if (k->key >= 0) lua_rawset(L, base + 1);
            else lua_replace(L, value);
        } else if (k->key >= 0) {
            lua_pop(L, 1);
        }
        if (k->key < 0) value++;
    }
    lua_settop(L, base + 1 + nvalues);
    return 1 + nvalues;
}

static int l_json_picks(lua_State *L) {
    lua_settop(L, 2);
    return luapay_picks_push(L, 1, 2);
}

const luaL_Reg luapay_picks_funcs[] = {
    {"json_pick_plan", l_json_pick_plan},
    {"json_picks", l_json_picks},
    {NULL, NULL},
};

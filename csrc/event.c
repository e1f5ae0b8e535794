/* provider.event's and provider.make_event's checks in one call each
 * (luapay.provider calls them first, under Lua 5.4):
 *
 *   core.event_holds(f, common, kinds, statuses) -> boolean
 *   core.event_fields_hold(name, kind, status, raw, amount, kinds, statuses) -> boolean
 *
 * event_holds: true when every check of provider.event holds for f and f.extra is set,
 * so that provider.event only gives f its metatable: every key of f is a
 * key of common, provider and raw are strings, kind a key of kinds, status
 * a key of statuses, amount nil or an integer (provider.is_integer). false
 * for anything else (f not a plain table, a check that fails, no extra),
 * and provider.event's Lua code words the error or fills in extra: the
 * answers never differ, only the cost. */
#include <stdint.h>

#include "core.h"

/* provider.is_integer: Lua 5.4's integer subtype; under LuaJIT a whole
 * number within +-2^53. */
static int is_integer(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 503
    return lua_isinteger(L, idx);
#else
    if (lua_type(L, idx) != LUA_TNUMBER) return 0;
    lua_Number d = lua_tonumber(L, idx);
    return d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (lua_Number)(int64_t)d;
#endif
}

/* t[the value at idx] is not nil (t at ti; no metatables: plain tables). */
static int has(lua_State *L, int ti, int idx) {
    lua_pushvalue(L, idx);
    lua_rawget(L, ti);
    int yes = !lua_isnil(L, -1);
    lua_pop(L, 1);
    return yes;
}

static int l_event_holds(lua_State *L) {
    lua_settop(L, 4);
    if (!lua_istable(L, 1) || !lua_istable(L, 2) || !lua_istable(L, 3) || !lua_istable(L, 4) ||
        lua_getmetatable(L, 1)) { /* a metatable's __pairs would change what the Lua code walks */
        lua_pushboolean(L, 0);
        return 1;
    }
    int ok = 1;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (ok && !has(L, 2, 5)) ok = 0; /* keep walking: lua_next needs the key */
    }
    lua_getfield(L, 1, "provider"); /* 5 */
    lua_getfield(L, 1, "kind");     /* 6 */
    lua_getfield(L, 1, "status");   /* 7 */
    lua_getfield(L, 1, "raw");      /* 8 */
    lua_getfield(L, 1, "amount");   /* 9 */
    lua_getfield(L, 1, "extra");    /* 10 */
    ok = ok && lua_type(L, 5) == LUA_TSTRING && has(L, 3, 6) && has(L, 4, 7) && lua_type(L, 8) == LUA_TSTRING &&
         (lua_isnil(L, 9) || is_integer(L, 9)) && !lua_isnil(L, 10);
    lua_pushboolean(L, ok);
    return 1;
}

/* core.event_fields_hold(name, kind, status, raw, amount, kinds, statuses)
 * -> boolean: provider.make_event's checks (check_event) in one call, true
 * when all hold; false for anything else, and the Lua checks word it. */
static int l_event_fields_hold(lua_State *L) {
    lua_settop(L, 7);
    int ok = lua_type(L, 1) == LUA_TSTRING && lua_type(L, 4) == LUA_TSTRING && (lua_isnil(L, 5) || is_integer(L, 5)) &&
             lua_istable(L, 6) && lua_istable(L, 7) && has(L, 6, 2) && has(L, 7, 3);
    lua_pushboolean(L, ok);
    return 1;
}

const luaL_Reg luapay_event_funcs[] = {
    {"event_holds", l_event_holds},
    {"event_fields_hold", l_event_fields_hold},
    {NULL, NULL},
};

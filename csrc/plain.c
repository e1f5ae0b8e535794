/* core.json_plain(v [, as_text]) -> true, copy | nothing: provider.plain's
 * copy (lua/luapay/provider.lua says what it is) made in one pass, each
 * table created at its final size. Nothing when v nests deeper than DEPTH
 * or holds a table whose metatable has __pairs or __metatable:
 * provider.plain's Lua code then makes the copy, so the answer is the same
 * either way. A table that contains itself raises as provider.plain does.
 * core.json_plain(t, as_text, true) -> true, t | nothing: the same values
 * made in t itself, for a tree fresh from core.json_decode that nobody else
 * holds (provider.plain_owned); nothing leaves the rest to provider.plain.
 * core.copy(v) -> true, copy | nothing: provider.copy's deep copy in the
 * same pass, number objects kept as they are; nothing where provider.copy
 * raises (nested deeper than COPY_DEPTH, a cycle) or meets __pairs or
 * __metatable, for its Lua walk to do as it does. In C, because a Lua
 * walk's loop breaks LuaJIT's trace of every request it copies. */
#include "core.h"

#define DEPTH 100
#define COPY_DEPTH 32 /* provider.copy's */
#define NUMBER_MT_KEY "luapay.json_number"
#define ARRAY_MT_KEY "luapay.array_mt"

typedef struct {
    lua_State *L;
    int as_text;
    int keep_numbers; /* core.copy: number objects as they are, a cycle left to Lua */
    int max_depth;
    int number_mt, array_mt; /* stack slots */
    const void *open[DEPTH + 1]; /* the tables being copied: one met again is a cycle */
} plain_ctx;

/* The number text on top of the stack replaced by its plain value
 * (provider.plain: tonumber, then an integer where it is one; nil where
 * tonumber gives nil). Shared with trustly_notification.c, which builds
 * the same values from a body's text. */
void luapay_plain_number(lua_State *L) {
    int t = lua_type(L, -1);
#if LUA_VERSION_NUM >= 503
    if (t != LUA_TNUMBER && (t != LUA_TSTRING || lua_stringtonumber(L, lua_tostring(L, -1)) == 0)) {
        lua_pop(L, 1);
        lua_pushnil(L); /* tonumber's nil */
        return;
    }
    if (t == LUA_TSTRING) lua_remove(L, -2);
    int exact = 0;
    lua_Integer i = lua_tointegerx(L, -1, &exact); /* math.tointeger: a float with an integer's value */
    if (exact && !lua_isinteger(L, -1)) {
        lua_pop(L, 1);
        lua_pushinteger(L, i);
    }
#else
    if (t != LUA_TNUMBER && (t != LUA_TSTRING || !lua_isnumber(L, -1))) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    lua_Number n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_pushnumber(L, n);
#endif
}

/* A number object's plain value, pushed; 0 if its text is not where it
 * should be. */
static int push_number(plain_ctx *c, int idx) {
    lua_State *L = c->L;
    lua_rawgeti(L, idx, 1);
    if (lua_isnil(L, -1)) return 0;
    if (!c->as_text) luapay_plain_number(L);
    return 1;
}

/* Pushes the copy of the value at idx (absolute); 0 to leave it to Lua. */
static int copy(plain_ctx *c, int idx, int depth) {
    lua_State *L = c->L;
    if (lua_type(L, idx) != LUA_TTABLE) {
        lua_pushvalue(L, idx);
        return 1;
    }
    int is_array = 0;
    if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, c->number_mt)) {
            lua_pop(L, 1);
            if (c->keep_numbers) {
                lua_pushvalue(L, idx);
                return 1;
            }
            return push_number(c, idx);
        }
        is_array = lua_rawequal(L, -1, c->array_mt);
        lua_pushliteral(L, "__pairs");
        lua_rawget(L, -2);
        /* __metatable: Lua's getmetatable sees another metatable than this */
        lua_pushliteral(L, "__metatable");
        lua_rawget(L, -3);
        int to_lua = !lua_isnil(L, -1) || !lua_isnil(L, -2);
        lua_pop(L, 3);
        if (to_lua) return 0;
    }
    if (depth > c->max_depth || !lua_checkstack(L, 8)) return 0;
    const void *self = lua_topointer(L, idx);
    int seen = 0;
    for (int i = 1; i < depth; i++) seen |= c->open[i] == self;
    if (seen && c->keep_numbers) return 0;
    if (seen) {
        lua_pushliteral(L, "provider.plain: bad argument #1 'v' (a table contains itself (a cycle))");
        lua_error(L);
    }
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        lua_pop(L, 1);
    }
    lua_createtable(L, is_array ? n : 0, is_array ? 0 : n);
    int t = lua_gettop(L);
    c->open[depth] = self;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!copy(c, lua_gettop(L), depth + 1)) return 0;
        lua_remove(L, -2);    /* the value */
        lua_pushvalue(L, -2); /* the key, for lua_next */
        lua_insert(L, -2);
        lua_rawset(L, t);
    }
    if (is_array) {
        lua_pushvalue(L, c->array_mt);
        lua_setmetatable(L, t);
    }
    return 1;
}

/* In place: the number objects under the table at idx (absolute) replaced
 * by their plain values, for a tree nobody else holds (fresh from
 * core.json_decode: no cycle, no __pairs); 0 to leave the rest to Lua. */
static int convert(plain_ctx *c, int idx, int depth) {
    lua_State *L = c->L;
    if (depth > DEPTH || !lua_checkstack(L, 8)) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int v = lua_gettop(L);
        if (lua_type(L, v) == LUA_TTABLE) {
            int is_number = lua_getmetatable(L, v) && lua_rawequal(L, -1, c->number_mt);
            lua_settop(L, v);
            if (is_number) {
                if (!push_number(c, v)) return 0;
                lua_pushvalue(L, v - 1); /* the key */
                lua_insert(L, -2);
                lua_rawset(L, idx); /* an existing key: the traversal goes on */
            } else if (!convert(c, v, depth + 1)) {
                return 0;
            }
        }
        lua_settop(L, v - 1);
    }
    return 1;
}

/* The copy of the value at 1, after true; nothing where copy leaves it to Lua. */
static int copy_from_top(lua_State *L, plain_ctx *c, int as_text, int keep_numbers, int max_depth) {
    c->L = L;
    c->as_text = as_text;
    c->keep_numbers = keep_numbers;
    c->max_depth = max_depth;
    luaL_getmetatable(L, NUMBER_MT_KEY);
    c->number_mt = lua_gettop(L);
    luaL_getmetatable(L, ARRAY_MT_KEY);
    c->array_mt = lua_gettop(L);
    lua_pushboolean(L, 1);
    if (!copy(c, 1, 1)) return 0;
    return 2;
}

static int l_json_plain(lua_State *L) {
    plain_ctx c;
    lua_settop(L, 3);
    if (lua_toboolean(L, 3)) { /* core.json_plain(t, as_text, true): t converted in place */
        c.L = L;
        c.as_text = lua_toboolean(L, 2);
        c.keep_numbers = 0;
        c.max_depth = DEPTH;
        luaL_getmetatable(L, NUMBER_MT_KEY);
        c.number_mt = lua_gettop(L);
        if (lua_type(L, 1) != LUA_TTABLE || !convert(&c, 1, 1)) return 0;
        lua_pushboolean(L, 1);
        lua_pushvalue(L, 1);
        return 2;
    }
    lua_settop(L, 2);
    return copy_from_top(L, &c, lua_toboolean(L, 2), 0, DEPTH);
}

static int l_copy(lua_State *L) {
    plain_ctx c;
    lua_settop(L, 1);
    return copy_from_top(L, &c, 0, 1, COPY_DEPTH);
}

const luaL_Reg luapay_plain_funcs[] = {
    {"json_plain", l_json_plain},
    {"copy", l_copy},
    {NULL, NULL},
};

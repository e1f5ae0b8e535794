/* One source for Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1. The core is written
 * against the 5.4 API; this header fills in what older versions lack. A
 * core built against PUC 5.1's headers is loaded by LuaJIT too (same ABI). */
#ifndef LUAPAY_COMPAT_H
#define LUAPAY_COMPAT_H

/* The rockspec also builds the core for LuaJIT (the sandbox's nginx runs
 * it) next to the one for the Lua it installs for. luarocks puts that Lua's
 * headers first on the include path, so that build names LuaJIT's by their
 * directory. */
#ifdef LUAPAY_LUAJIT_HEADERS
#include <luajit-2.1/lua.h>
#include <luajit-2.1/lauxlib.h>
#else
#include <lua.h>
#include <lauxlib.h>
#endif

#if LUA_VERSION_NUM == 501
#define lua_rawlen(L, i) lua_objlen(L, i)

/* LuaJIT 2.1's lauxlib.h has these 5.2 helpers (and luaL_newlib); PUC 5.1
 * does not. Static, so they never clash with another module's copy. */
#ifndef luaL_newlib
static inline void luapay_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) { /* the table is below the nup upvalues */
        for (int i = 0; i < nup; i++) lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

static inline void *luapay_testudata(lua_State *L, int idx, const char *tname) {
    void *p = lua_touserdata(L, idx);
    if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
    luaL_getmetatable(L, tname);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}
#define luaL_setfuncs luapay_setfuncs
#define luaL_testudata luapay_testudata
#endif
#endif

/* A userdata's table: set pops it from the top, get pushes it. */
#if LUA_VERSION_NUM >= 504
#define luapay_setuservalue(L, idx) lua_setiuservalue(L, idx, 1)
#define luapay_getuservalue(L, idx) lua_getiuservalue(L, idx, 1)
#elif LUA_VERSION_NUM >= 502
#define luapay_setuservalue(L, idx) lua_setuservalue(L, idx)
#define luapay_getuservalue(L, idx) ((void)lua_getuservalue(L, idx))
#else
#define luapay_setuservalue(L, idx) lua_setfenv(L, idx)
#define luapay_getuservalue(L, idx) lua_getfenv(L, idx)
#endif

#endif

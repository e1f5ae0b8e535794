/* One source for Lua 5.4 and LuaJIT 2.1 (the Lua 5.1 C API plus the 5.2
 * additions LuaJIT ships: luaL_setfuncs, luaL_testudata, luaL_newlib). */
#ifndef LUAPAY_COMPAT_H
#define LUAPAY_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501
#ifndef luaL_newlib /* defined by LuaJIT 2.1's lauxlib.h, absent in PUC 5.1 */
#error "luapay.core needs Lua 5.4 or LuaJIT 2.1"
#endif
#define lua_rawlen(L, i) lua_objlen(L, i)
#endif

/* A userdata's table: set pops it from the top, get pushes it. */
#if LUA_VERSION_NUM >= 504
#define luapay_setuservalue(L, idx) lua_setiuservalue(L, idx, 1)
#define luapay_getuservalue(L, idx) lua_getiuservalue(L, idx, 1)
#else
#define luapay_setuservalue(L, idx) lua_setfenv(L, idx)
#define luapay_getuservalue(L, idx) lua_getfenv(L, idx)
#endif

#endif

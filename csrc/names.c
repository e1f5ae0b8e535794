/* Sets of a provider's field names, made from its Lua module's lists
 * (names.h). */
#include "names.h"

int luapay_names_take(lua_State *L, luapay_names *set, int keep, const char *fn, int arg, const char *what) {
    size_t n = 0;
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (n == 0 || strlen(k) != n) luapay_arg_error(L, arg, fn, what, "field names (non-empty strings) expected");
    int i = luapay_names_find(set, k, n);
    if (i < 0) {
        if (set->count == LUAPAY_NAMES_MAX) luapay_arg_error(L, arg, fn, what, "too many names");
        i = set->count++;
        set->name[i] = (luapay_text){k, n};
        unsigned h = luapay_names_hash(k, n);
        while (set->slot[h]) h = (h + 1) & (LUAPAY_NAMES_SLOTS - 1);
        set->slot[h] = (unsigned char)(i + 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keep, i + 1);
    }
    lua_pop(L, 1);
    return i;
}

/* A monotonic clock and a blocking sleep for the request pipeline outside
 * nginx (inside nginx it uses ngx.now and ngx.sleep, which do not block). */
#include <errno.h>
#include <time.h>

#include "core.h"

/* core.monotime() -> seconds (float) since an arbitrary point; never jumps. */
static int l_monotime(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* core.sleep(seconds): blocks the calling thread; resumes after signals. */
static int l_sleep(lua_State *L) {
    lua_Number s = lua_tonumber(L, 1);
    if (lua_type(L, 1) != LUA_TNUMBER || !(s >= 0 && s <= 86400))
        luapay_arg_error(L, 1, "sleep", "seconds", "a number from 0 to 86400 expected");
    struct timespec ts = {(time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

const luaL_Reg luapay_clock_funcs[] = {
    {"monotime", l_monotime},
    {"sleep", l_sleep},
    {NULL, NULL},
};

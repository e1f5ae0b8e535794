/* A monotonic clock and a blocking sleep for the request pipeline outside
 * nginx (inside nginx it uses ngx.now and ngx.sleep, which do not block). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* The status exit_on_interrupt's handler ends the process with. */
static volatile sig_atomic_t interrupt_status = 130;

static void on_interrupt(int sig) {
    (void)sig;
    _exit(interrupt_status); /* async-signal-safe; nothing of the process runs on */
}

/* core.exit_on_interrupt([status]): from now on SIGINT (Ctrl-C) ends the
 * process at once with status (default 130, 128 + SIGINT), whatever it is
 * blocked in (a request, a read of standard input), and without the Lua
 * interpreter's "interrupted!" error. For the luapay command, whose
 * unfinished work is never left looking finished (FILE.partial). */
static int l_exit_on_interrupt(lua_State *L) {
    lua_Integer status = luaL_optinteger(L, 1, 130);
    if (status < 0 || status > 255) luapay_arg_error(L, 1, "exit_on_interrupt", "status", "0 to 255 expected");
    interrupt_status = (sig_atomic_t)status;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0) return luaL_error(L, "core.exit_on_interrupt: %s", strerror(errno));
    return 0;
}

const luaL_Reg luapay_clock_funcs[] = {
    {"exit_on_interrupt", l_exit_on_interrupt},
    {"monotime", l_monotime},
    {"sleep", l_sleep},
    {NULL, NULL},
};

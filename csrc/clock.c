/* A monotonic clock and a blocking sleep for the request pipeline outside
 * nginx (inside nginx it uses ngx.now and ngx.sleep, which do not block);
 * what SIGINT (Ctrl-C) does in the luapay command and its REPL. */
#include <errno.h>
#include <poll.h>
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

/* The thread raise_on_interrupt's handler interrupts, and whether a SIGINT
 * came that nothing has taken yet. */
static lua_State *volatile interrupt_L;
static volatile sig_atomic_t interrupt_pending;

/* As the Lua interpreter's own handler does: the error is raised from a hook
 * at the next instruction, never from the signal handler itself. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    interrupt_pending = 0;
    luaL_error(L, "interrupted!");
}

static void on_interrupt_raise(int sig) {
    (void)sig;
    interrupt_pending = 1;
    lua_sethook(interrupt_L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* core.raise_on_interrupt(): from now on SIGINT raises the error
 * "interrupted!" in the Lua code running on the main thread (a loop the
 * REPL runs), and ends a core.wait_input. Blocking reads are not restarted.
 * For the REPL: Ctrl-C there cancels, it never ends the process. */
static int l_raise_on_interrupt(lua_State *L) {
    if (!lua_pushthread(L)) return luaL_error(L, "raise_on_interrupt: call it from the main thread");
    lua_pop(L, 1);
    interrupt_L = L;
    interrupt_pending = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt_raise;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0) return luaL_error(L, "core.raise_on_interrupt: %s", strerror(errno));
    return 0;
}

/* core.wait_input(fd [, seconds]) -> true once fd has input to read (or is
 * at its end), false when seconds (no limit without) passed first; nil,
 * "interrupted" when a SIGINT came first under raise_on_interrupt, which is
 * then taken: no "interrupted!" error follows; nil, err for a bad fd. The REPL waits here for keys,
 * so that Ctrl-C at its prompt only cancels the line. */
static int l_wait_input(lua_State *L) {
    lua_Integer fd = luaL_checkinteger(L, 1);
    if (fd < 0 || fd > 65535) luapay_arg_error(L, 1, "wait_input", "fd", "a file descriptor expected");
    lua_Number s = luaL_optnumber(L, 2, -1);
    if (!lua_isnoneornil(L, 2) && !(s >= 0 && s <= 86400))
        luapay_arg_error(L, 2, "wait_input", "seconds", "a number from 0 to 86400 expected");
    struct pollfd p = {(int)fd, POLLIN, 0};
    for (;;) {
        int n = interrupt_pending ? -1 : poll(&p, 1, s < 0 ? -1 : (int)(s * 1000));
        if (n > 0 && (p.revents & POLLNVAL)) {
            lua_pushnil(L);
            lua_pushstring(L, strerror(EBADF));
            return 2;
        }
        if (n >= 0) {
            lua_pushboolean(L, n > 0);
            return 1;
        }
        if (!interrupt_pending && errno != EINTR) {
            lua_pushnil(L);
            lua_pushstring(L, strerror(errno));
            return 2;
        }
        if (interrupt_pending) {
            interrupt_pending = 0;
            if (interrupt_L) lua_sethook(interrupt_L, NULL, 0, 0);
            lua_pushnil(L);
            lua_pushliteral(L, "interrupted");
            return 2;
        }
    }
}

const luaL_Reg luapay_clock_funcs[] = {
    {"exit_on_interrupt", l_exit_on_interrupt},
    {"raise_on_interrupt", l_raise_on_interrupt},
    {"wait_input", l_wait_input},
    {"monotime", l_monotime},
    {"sleep", l_sleep},
    {NULL, NULL},
};

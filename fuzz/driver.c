/* The libFuzzer driver shared by every target (scripts/fuzz.sh builds it once
 * per target with -DFUZZ_TARGET='"name"'). It links luapay.core in, builds
 * one Lua 5.4 state and loads fuzz/targets/<name>.lua, which returns the
 * function each input is handed to as a string. The target calls the core's
 * entry point and checks what it can (round trips, a reference written in
 * Lua); a Lua error there is a property violation and aborts, so libFuzzer
 * keeps the input like any crash. ASan and UBSan watch the core meanwhile.
 *
 * For the transport, fuzz.respond(bytes) -> url makes a loopback server
 * thread answer the next request with those bytes, so libcurl and the
 * core's header parsing read them off a real socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET='\"name\"'"
#endif

int luaopen_luapay_core(lua_State *L);

static lua_State *L;

/* The loopback server: one connection at a time, answered with `answer`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *answer;
static size_t answer_len;
static int listener = -1;
static char base_url[64];

static void *serve(void *unused) {
    (void)unused;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char req[8192];
        size_t got = 0;
        while (got < sizeof req - 1) { /* the request head, then answer */
            ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
            if (r <= 0) break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n")) break;
        }
        pthread_mutex_lock(&lock);
        for (size_t sent = 0; sent < answer_len;) {
            ssize_t w = send(fd, answer + sent, answer_len - sent, MSG_NOSIGNAL);
            if (w <= 0) break;
            sent += (size_t)w;
        }
        pthread_mutex_unlock(&lock);
        /* What is left of the request is read briefly before closing (closing
         * on unread bytes would reset the connection under the client), but
         * not until the client hangs up: it keeps connections alive. */
        shutdown(fd, SHUT_WR);
        struct timeval brief = {0, 20000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &brief, sizeof brief);
        while (recv(fd, req, sizeof req, 0) > 0) {
        }
        close(fd);
    }
    return NULL;
}

static int l_respond(lua_State *S) {
    size_t n;
    const char *s = luaL_checklstring(S, 1, &n);
    if (listener < 0) {
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        listener = socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 16) != 0 ||
            getsockname(listener, (struct sockaddr *)&a, &alen) != 0)
            return luaL_error(S, "fuzz.respond: cannot listen on loopback");
        snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u/", (unsigned)ntohs(a.sin_port));
        pthread_t t;
        if (pthread_create(&t, NULL, serve, NULL) != 0) return luaL_error(S, "fuzz.respond: no thread");
        pthread_detach(t);
    }
    pthread_mutex_lock(&lock);
    free(answer);
    answer = (char *)malloc(n ? n : 1);
    if (answer) memcpy(answer, s, n);
    answer_len = answer ? n : 0;
    pthread_mutex_unlock(&lock);
    lua_pushstring(S, base_url);
    return 1;
}

static void die(const char *what) {
    fprintf(stderr, "fuzz target " FUZZ_TARGET ": %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    if (L == NULL) die("no Lua state");
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_luapay_core);
    lua_setfield(L, -2, "luapay.core");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushliteral(L, "lua/?.lua;lua/?/init.lua;fuzz/?.lua;spec/?.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_respond);
    lua_setfield(L, -2, "respond");
    lua_setglobal(L, "fuzz");
    if (luaL_dofile(L, "fuzz/targets/" FUZZ_TARGET ".lua") != LUA_OK) die(lua_tostring(L, -1));
    if (!lua_isfunction(L, -1)) die("the target file must return a function");
    lua_setglobal(L, "fuzz_one");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_getglobal(L, "fuzz_one");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        die(msg ? msg : "a non-string error");
    }
    /* Garbage from this input goes now: libFuzzer runs a leak check after
     * every input that mallocs more than it frees. */
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

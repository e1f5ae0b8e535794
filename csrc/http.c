/* HTTP client over libcurl for use outside nginx: one connection cache (a
 * share handle) per client, so connections are kept alive and reused across
 * requests of that client. Each request gets a fresh easy handle: libcurl
 * before 8.1 (Debian 12 has 7.88) keeps a pointer into the previous
 * transfer's headers in a reused handle, and a folded header line in the
 * next answer reads freed memory (curl#11101, found by fuzz/targets/
 * http_response.lua).
 *
 *   client = core.http_client{timeout_ms, connect_timeout_ms, verify, ca_file, proxy, user_agent,
 *                             pool_size, keepalive_ms, max_head_bytes, max_body_bytes}
 *   res, err = client:request{method, url, headers, body, timeout_ms, connect_timeout_ms, idempotent,
 *                             max_head_bytes, max_body_bytes}
 *   res = {status, headers = {name = value | {value, ...}}, body}
 *   err = {type = "timeout"|"network"|"tls"|"config"|"http", message, sent, curl_code, http_status}
 *
 * `sent` says whether request bytes may have reached the server, which decides
 * whether the pipeline may retry a request that is not idempotent. HTTP 4xx
 * and 5xx are responses, not errors.
 *
 * timeout_ms bounds the whole exchange (connect, send, every read: libcurl's
 * CURLOPT_TIMEOUT_MS), however slowly the server trickles its answer.
 *
 * Size caps: a response head (all header blocks, with trailers) larger than
 * max_head_bytes (64 KiB) or a body larger than max_body_bytes (16 MiB) ends
 * the transfer with an error of type "http" (sent = true); nothing beyond the
 * cap is kept and libcurl closes the connection of an aborted transfer.
 *
 * Resending: libcurl silently resends a request when a reused connection
 * closes before any answer, even one the server did receive (and on an
 * HTTP/2 stream the server refused). A request that is not declared
 * `idempotent = true` by the caller (whatever its method: a GET refund is not
 * idempotent) shares the kept-alive connections all the same: libcurl calls
 * CURLOPT_PREREQFUNCTION before each attempt, and a second attempt of such a
 * request is stopped there, before it is sent; the caller gets a "network"
 * error with sent = true (the server may have read the first).
 *
 * Kept-alive connections: at most pool_size (default 5, libcurl's) are kept,
 * the least recently used closed first (CURLOPT_MAXCONNECTS); none is reused
 * once it has idled keepalive_ms (default 118 s, libcurl's). libcurl counts
 * idle time in whole seconds (CURLOPT_MAXAGE_CONN), so keepalive_ms is taken
 * down to whole seconds, at least 1000: a connection is never reused after
 * idling longer than asked, and may be dropped up to a second earlier.
 *
 * TLS: 1.2 at least; verification is on unless verify = false, which is
 * honoured only for loopback hosts (127.0.0.0/8, ::1, localhost): a request
 * to any other host from such a client is refused before anything is sent.
 *
 * Misuse raises before anything is sent: a method that is not an upper-case
 * token; CR, LF, NUL (or other control characters or spaces) in the URL; a
 * header name that is not a token; CR, LF or NUL in a header value. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core.h"

#define HTTP_MT "luapay.http_client"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_HEAD_BYTES (64.0 * 1024)
#define DEFAULT_MAX_BODY_BYTES (16.0 * 1024 * 1024)
#define MAX_CAP_BYTES 4294967296.0 /* 4 GiB: the largest cap one may set */

enum { FITS, HEAD_TOO_LARGE, BODY_TOO_LARGE };

typedef struct {
    CURL *easy;    /* the last request's handle; NULL once closed */
    CURLSH *share; /* connections, DNS and TLS sessions across requests */
    long timeout_ms, connect_timeout_ms;
    long pool_size, keepalive_s; /* 0: libcurl's default */
    size_t max_head, max_body; /* the client's caps */
    int verify;
    char *ca_file, *proxy, *user_agent;
    luapay_buf body, head; /* reused across requests */
    /* the current transfer */
    size_t head_cap, body_cap, head_seen;
    int too_large;
    int once;             /* not idempotent: one attempt, never a second */
    int attempts;         /* times libcurl was about to send it */
    int resend_refused;   /* libcurl wanted to send it again: stopped */
    char errbuf[CURL_ERROR_SIZE];
    char first_error[CURL_ERROR_SIZE]; /* why the first attempt failed */
} http_client;

/* Called on a connection, just before the request goes out: once per
 * attempt. libcurl makes a second attempt on its own after a reused
 * connection closed before any answer, or an HTTP/2 stream was refused;
 * for a request that is not idempotent that attempt is stopped here, before
 * a byte of it is sent, so it can go out on a kept-alive connection. */
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port) {
    http_client *c = (http_client *)ud;
    (void)ip, (void)local_ip, (void)port, (void)local_port;
    if (c->attempts++ > 0 && c->once) {
        c->resend_refused = 1;
        /* the first attempt's failure, if libcurl wrote one (before its "aborted" message) */
        snprintf(c->first_error, sizeof c->first_error, "%s", c->errbuf[0] ? c->errbuf : "closed by the server");
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Returning less than was given makes libcurl abort the transfer. */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    http_client *c = (http_client *)ud;
    n *= size;
    if (n > c->body_cap - c->body.len) {
        c->too_large = BODY_TOO_LARGE;
        return 0;
    }
    return luapay_buf_add(&c->body, p, n) ? n : 0;
}

/* Header lines of every response block arrive here; a new status line starts
 * a new block, so only the final response's headers are kept (not those of
 * a 100 Continue). The cap counts the lines of all blocks. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    http_client *c = (http_client *)ud;
    n *= size;
    c->head_seen += n;
    if (c->head_seen > c->head_cap) {
        c->too_large = HEAD_TOO_LARGE;
        return 0;
    }
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) c->head.len = 0;
    return luapay_buf_add(&c->head, p, n) ? n : 0;
}

static int is_field_value(const char *s, size_t n);

/* A string option kept as a C string: a NUL would cut it, and CR or LF in
 * the user agent would add header lines (libcurl sends it as it is). */
static char *dup_opt_string(lua_State *L, int t, const char *field) {
    char *copy = NULL;
    lua_getfield(L, t, field);
    if (!lua_isnil(L, -1)) {
        size_t n;
        const char *s = luapay_check_string(L, -1, "http_client", field, &n);
        if (!is_field_value(s, n)) luapay_arg_error(L, t, "http_client", field, "must not contain CR, LF or NUL");
        copy = strdup(s);
        if (copy == NULL) luaL_error(L, "http_client: out of memory");
    }
    lua_pop(L, 1);
    return copy;
}

static long opt_ms(lua_State *L, int t, const char *fn, const char *field, long def) {
    /* t is also the argument's number: 1 for http_client, 2 for request */
    lua_getfield(L, t, field);
    long v = def;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || n != (lua_Number)(long)n || n < 1 || n > 86400000)
            luapay_arg_error(L, t, fn, field, "milliseconds from 1 to 86400000 expected");
        v = (long)n;
    }
    lua_pop(L, 1);
    return v;
}

static size_t opt_bytes(lua_State *L, int t, int arg, const char *fn, const char *field, size_t def) {
    lua_getfield(L, t, field);
    size_t v = def;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= MAX_CAP_BYTES) || n != (lua_Number)(long long)n)
            luapay_arg_error(L, arg, fn, field, "a whole number of bytes from 1 to 4294967296 expected");
        v = (size_t)n;
    }
    lua_pop(L, 1);
    return v;
}

/* 127.0.0.0/8, ::1 (bracketed or not) and "localhost": the only hosts a
 * client with verify = false may talk to. */
static int is_loopback_host(const char *h, size_t n) {
    char buf[64];
    unsigned char addr[16];
    if (n == 9 && strncasecmp(h, "localhost", 9) == 0) return 1;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') h++, n -= 2;
    if (n == 0 || n >= sizeof buf || memchr(h, '\0', n)) return 0;
    memcpy(buf, h, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, addr) == 1) return addr[0] == 127;
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        return memcmp(addr, loop6, 16) == 0;
    }
    return 0;
}

/* The host of a URL as libcurl reads it (malloc'ed, curl_free it), or NULL. */
static char *url_host(const char *url) {
    CURLU *u = curl_url();
    char *host = NULL;
    if (u == NULL) return NULL;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        host = NULL;
    curl_url_cleanup(u);
    return host;
}

/* core.url_host(url) -> host | nil, err ([::1] keeps its brackets) */
static int l_url_host(lua_State *L) {
    size_t n;
    const char *url = luapay_check_string(L, 1, "url_host", "url", &n);
    char *host = memchr(url, '\0', n) ? NULL : url_host(url);
    if (host == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "url_host: not a URL with a host");
        return 2;
    }
    lua_pushstring(L, host);
    curl_free(host);
    return 1;
}

/* core.is_loopback_host(host) -> boolean */
static int l_is_loopback_host(lua_State *L) {
    size_t n;
    const char *h = luapay_check_string(L, 1, "is_loopback_host", "host", &n);
    lua_pushboolean(L, is_loopback_host(h, n));
    return 1;
}

static void client_release(http_client *c) {
    if (c->easy) curl_easy_cleanup(c->easy);
    c->easy = NULL;
    if (c->share) curl_share_cleanup(c->share); /* after its last easy handle */
    c->share = NULL;
    free(c->ca_file);
    free(c->proxy);
    free(c->user_agent);
    c->ca_file = c->proxy = c->user_agent = NULL;
    luapay_buf_free(&c->body);
    luapay_buf_free(&c->head);
}

/* core.http_client(opts) -> client */
static int l_http_client(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    if (!lua_istable(L, 1)) luapay_arg_error(L, 1, "http_client", "opts", "table expected");
    http_client *c = (http_client *)lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, HTTP_MT);
    lua_setmetatable(L, -2);

    c->timeout_ms = opt_ms(L, 1, "http_client", "timeout_ms", DEFAULT_TIMEOUT_MS);
    c->connect_timeout_ms = opt_ms(L, 1, "http_client", "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS);
    lua_getfield(L, 1, "pool_size");
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= 10000) || n != (lua_Number)(long)n)
            luapay_arg_error(L, 1, "http_client", "pool_size", "a whole number of connections from 1 to 10000 expected");
        c->pool_size = (long)n;
    }
    lua_pop(L, 1);
    long keepalive_ms = opt_ms(L, 1, "http_client", "keepalive_ms", 0);
    if (keepalive_ms != 0 && keepalive_ms < 1000)
        luapay_arg_error(L, 1, "http_client", "keepalive_ms",
                         "at least 1000 expected: libcurl counts idle time in whole seconds");
    c->keepalive_s = keepalive_ms / 1000;
    c->max_head = opt_bytes(L, 1, 1, "http_client", "max_head_bytes", (size_t)DEFAULT_MAX_HEAD_BYTES);
    c->max_body = opt_bytes(L, 1, 1, "http_client", "max_body_bytes", (size_t)DEFAULT_MAX_BODY_BYTES);
    lua_getfield(L, 1, "verify");
    c->verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
    c->ca_file = dup_opt_string(L, 1, "ca_file");
    c->proxy = dup_opt_string(L, 1, "proxy");
    c->user_agent = dup_opt_string(L, 1, "user_agent");
    c->share = curl_share_init();
    c->easy = curl_easy_init();
    if (c->share == NULL || c->easy == NULL ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return luaL_error(L, "http_client: libcurl initialisation failed");
    return 1;
}

static http_client *check_open(lua_State *L) {
    http_client *c = (http_client *)luaL_checkudata(L, 1, HTTP_MT);
    if (c->easy == NULL) luaL_error(L, "luapay.http_client: client is closed");
    return c;
}

/* RFC 9110 token characters (method, header name): letters, digits and
 * !#$%&'*+-.^_`|~, one bit per ASCII byte (bytes 0-63, then 64-127). */
static int is_tchar(unsigned char ch) {
    static const uint64_t low = 0x03ff6cfa00000000u, high = 0x57ffffffc7fffffeu;
    return ch < 64 ? (int)((low >> ch) & 1) : ch < 128 ? (int)((high >> (ch - 64)) & 1) : 0;
}

int luapay_is_token(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return 0;
    return 1;
}

/* No CR, LF or NUL in a header value (other bytes, tabs included, pass). */
static int is_field_value(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
    return 1;
}

/* A URL carries no control character (CR, LF, NUL, ...) and no space. */
static int is_clean_url(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7f) return 0;
    }
    return 1;
}

/* The number of keys of the table on top of the stack. */
static size_t count_keys(lua_State *L) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

/* Raises "fn: bad argument #arg 'field' (...)" for a request that must not
 * be sent: url a string without control characters or spaces, method nil or
 * an upper-case token, headers nil or {token = value | {value, ...}} with no
 * CR, LF or NUL in a value, body nil or a string. Nothing is sent before. */
static void check_request(lua_State *L, int t, int arg, const char *fn) {
    size_t n = 0;
    lua_getfield(L, t, "url");
    const char *url = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (url == NULL) luapay_arg_error(L, arg, fn, "url", "string expected");
    if (!is_clean_url(url, n))
        luapay_arg_error(L, arg, fn, "url", "must not contain CR, LF, NUL, other control characters or spaces");
    lua_getfield(L, t, "method");
    if (!lua_isnil(L, -1)) {
        const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        if (m == NULL || n == 0 || strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n)
            luapay_arg_error(L, arg, fn, "method", "an upper-case HTTP method token expected (A-Z only)");
    }
    lua_getfield(L, t, "body");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) luapay_arg_error(L, arg, fn, "body", "string expected");
    lua_pop(L, 3);
    opt_bytes(L, t, arg, fn, "max_head_bytes", 0);
    opt_bytes(L, t, arg, fn, "max_body_bytes", 0);

    lua_getfield(L, t, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) luapay_arg_error(L, arg, fn, "headers", "table expected");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t name_len = 0;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &name_len) : NULL;
        if (name == NULL || !luapay_is_token(name, name_len))
            luapay_arg_error(L, arg, fn, "headers", "a header name must be a token string (no CR, LF, NUL, space or ':')");
        int list = lua_istable(L, -1);
        int values = list ? (int)lua_rawlen(L, -1) : 1;
        if (list && (values == 0 || count_keys(L) != (size_t)values))
            luapay_arg_error(L, arg, fn, "headers",
                             lua_pushfstring(L, "header '%s': a string or a non-empty list of strings expected", name));
        for (int i = 1; i <= values; i++) {
            if (list) lua_rawgeti(L, -1, i);
            else lua_pushvalue(L, -1);
            size_t value_len = 0;
            const char *value = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &value_len) : NULL;
            if (value == NULL)
                luapay_arg_error(L, arg, fn, "headers", lua_pushfstring(L, "header '%s': string value expected", name));
            if (!is_field_value(value, value_len))
                luapay_arg_error(L, arg, fn, "headers",
                                 lua_pushfstring(L, "header '%s': the value must not contain CR, LF or NUL", name));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* core.check_request(req [, fn]) -> req; raises as the transports do. */
static int l_check_request(lua_State *L) {
    const char *fn = luaL_optstring(L, 2, "check_request");
    if (!lua_istable(L, 1)) luapay_arg_error(L, 1, fn, "req", "table expected");
    check_request(L, 1, 1, fn);
    lua_settop(L, 1);
    return 1;
}

/* Builds the header list from a table {name = value | {value, ...}} that
 * check_request has accepted. */
static struct curl_slist *build_headers(lua_State *L, int t) {
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    lua_getfield(L, t, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int values = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 1;
            for (int i = 1; i <= values; i++) {
                if (lua_istable(L, -1)) lua_rawgeti(L, -1, i);
                else lua_pushvalue(L, -1);
                lua_pushfstring(L, "%s: %s", lua_tostring(L, -3), lua_tostring(L, -1));
                struct curl_slist *grown = list ? curl_slist_append(list, lua_tostring(L, -1)) : NULL;
                lua_pop(L, 2);
                if (grown == NULL) {
                    curl_slist_free_all(list);
                    luaL_error(L, "request: out of memory");
                }
                list = grown;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return list;
}

/* Pushes the response headers as a table: lower-cased names; a repeated
 * header becomes an array of its values in order. A line whose name is not
 * a token ("\rX: 1", " folded", "X Y: 1") is no header: it is left out. */
static void push_headers(lua_State *L, const luapay_buf *head) {
    lua_newtable(L);
    const char *p = head->data, *end = head->data + head->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && luapay_is_token(p, (size_t)(colon - p))) { /* a status line has no token before a colon */
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (const char *q = p; q < colon; q++)
                luaL_addchar(&name, (*q >= 'A' && *q <= 'Z') ? (char)(*q + 32) : *q);
            luaL_pushresult(&name);
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushvalue(L, -1);
            lua_rawget(L, -3); /* existing value for this name */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_rawset(L, -3);
            } else {
                if (!lua_istable(L, -1)) { /* second occurrence: make a list */
                    lua_createtable(L, 2, 0);
                    lua_insert(L, -2);
                    lua_rawseti(L, -2, 1);
                    lua_pushvalue(L, -2);
                    lua_pushvalue(L, -2);
                    lua_rawset(L, -5);
                }
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
                lua_pop(L, 2);
            }
        }
        p = line_end + 1;
    }
}

static int is_tls_error(CURLcode rc) {
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Pushes nil and the error table for a failed transfer. */
static int push_transfer_error(lua_State *L, http_client *c, CURLcode rc, long timeout_ms) {
    long request_size = 0;
    curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &request_size);
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    const char *type = "network";

    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        type = "timeout";
        if (request_size > 0)
            lua_pushfstring(L, "read timeout: no complete response within %d ms (%s)", (int)timeout_ms, detail);
        else
            lua_pushfstring(L, "connect timeout: no connection within the limit (%s)", detail);
    } else if (is_tls_error(rc)) {
        type = "tls";
        lua_pushfstring(L,
                        "TLS failure: %s; if the server's certificate comes from a private CA, pass "
                        "ca_file = '/path/to/ca.pem' (verification stays on)",
                        detail);
    } else if ((rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) && request_size == 0) {
        /* after sending, CURLE_UNSUPPORTED_PROTOCOL is the server's answer
         * (a status code libcurl cannot read): a network error below */
        type = "config";
        lua_pushfstring(L, "invalid URL (%s)", detail);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
        lua_pushfstring(L, "DNS lookup failed (%s)", detail);
    } else if (rc == CURLE_COULDNT_CONNECT) {
        long os_errno = 0;
        curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &os_errno);
        lua_pushfstring(L, "connection failed: %s (%s)", os_errno ? strerror((int)os_errno) : "no route", detail);
    } else {
        lua_pushfstring(L, "transfer failed (%s)", detail);
    }
    lua_setfield(L, -2, "message");
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushboolean(L, request_size > 0);
    lua_setfield(L, -2, "sent");
    lua_pushinteger(L, (lua_Integer)rc);
    lua_setfield(L, -2, "curl_code");
    return 2;
}

static int string_field(lua_State *L, int t, const char *field, const char **out, size_t *len) {
    lua_getfield(L, t, field);
    int present = !lua_isnil(L, -1);
    if (present) *out = luapay_check_string(L, -1, "request", field, len);
    lua_pop(L, 1); /* the string stays alive: it is referenced by the request table */
    return present;
}

/* Pushes nil and an error table {type, message, sent = false}: the request
 * was refused before anything was sent. */
static int push_refusal(lua_State *L, const char *type, const char *message) {
    lua_pushnil(L);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "sent");
    return 2;
}

/* Pushes nil and the error for an answer beyond a size cap. */
static int push_too_large(lua_State *L, http_client *c) {
    char msg[160];
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    if (c->too_large == HEAD_TOO_LARGE)
        snprintf(msg, sizeof msg, "the response head is larger than max_head_bytes (%zu bytes)", c->head_cap);
    else
        snprintf(msg, sizeof msg, "the response body is larger than max_body_bytes (%zu bytes)", c->body_cap);
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "http");
    lua_setfield(L, -2, "type");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sent");
    if (status > 0) {
        lua_pushinteger(L, (lua_Integer)status);
        lua_setfield(L, -2, "http_status");
    }
    return 2;
}

/* client:request{method, url, headers, body, timeout_ms, connect_timeout_ms,
 * idempotent, max_head_bytes, max_body_bytes} */
static int l_request(lua_State *L) {
    http_client *c = check_open(L);
    if (!lua_istable(L, 2)) luapay_arg_error(L, 2, "request", "req", "table expected");
    check_request(L, 2, 2, "request");
    const char *url = NULL, *method = "GET", *body = NULL;
    size_t body_len = 0;
    string_field(L, 2, "url", &url, NULL);
    string_field(L, 2, "method", &method, NULL);
    string_field(L, 2, "body", &body, &body_len);
    /* Only the caller knows whether the server deduplicates a request; the
     * method does not tell (a GET refund is not idempotent). */
    lua_getfield(L, 2, "idempotent");
    int idempotent = lua_toboolean(L, -1);
    lua_pop(L, 1);
    long timeout_ms = opt_ms(L, 2, "request", "timeout_ms", c->timeout_ms);
    long connect_ms = opt_ms(L, 2, "request", "connect_timeout_ms", c->connect_timeout_ms);
    if (connect_ms > timeout_ms) connect_ms = timeout_ms;
    size_t head_cap = opt_bytes(L, 2, 2, "request", "max_head_bytes", c->max_head);
    size_t body_cap = opt_bytes(L, 2, 2, "request", "max_body_bytes", c->max_body);

    if (!c->verify) {
        char *host = url_host(url);
        int loopback = host != NULL && is_loopback_host(host, strlen(host));
        curl_free(host);
        if (!loopback)
            return push_refusal(L, "config",
                                "verify = false is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost): "
                                "nothing was sent; keep verification on (ca_file = '/path/to/ca.pem' for a private CA)");
    }
    struct curl_slist *headers = build_headers(L, 2);

    /* A fresh handle (see the top); live connections stay in the share. */
    CURL *e = curl_easy_init();
    if (e == NULL) {
        curl_slist_free_all(headers);
        return luaL_error(L, "request: out of memory");
    }
    curl_easy_cleanup(c->easy);
    c->easy = e;
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    c->body.len = c->head.len = 0;
    c->body.oom = c->head.oom = 0;
    c->head_cap = head_cap;
    c->body_cap = body_cap;
    c->head_seen = 0;
    c->too_large = FITS;
    c->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* The whole exchange, not each read: a trickling answer cannot outlast it. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (c->pool_size > 0) curl_easy_setopt(e, CURLOPT_MAXCONNECTS, c->pool_size);
    /* libcurl drops a connection whose whole seconds of idling exceed this:
     * n - 1 drops it once it has idled n seconds. */
    if (c->keepalive_s > 0) curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, c->keepalive_s - 1);
    /* libcurl resends a request only on a reused connection, or on an HTTP/2
     * stream the server refused: on_prereq stops that for these. */
    c->once = !idempotent;
    c->attempts = c->resend_refused = 0;
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, c);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_PROXY_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->verify ? 2L : 0L);
    if (c->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->proxy) curl_easy_setopt(e, CURLOPT_PROXY, c->proxy);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent ? c->user_agent : "luapay/" LUAPAY_CORE_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        /* A Content-Length beyond the cap ends the transfer before the body. */
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body_cap);
        if (body != NULL) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        } else if (strcmp(method, "GET") != 0) {
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }
    }

    CURLcode rc = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        if (rc == CURLE_FILESIZE_EXCEEDED) c->too_large = BODY_TOO_LARGE;
        if (c->too_large != FITS) {
            /* What was read up to the cap is not kept until the next request. */
            luapay_buf_free(&c->body);
            luapay_buf_free(&c->head);
            return push_too_large(L, c);
        }
        if (c->body.oom || c->head.oom) {
            lua_pushnil(L);
            lua_createtable(L, 0, 3);
            lua_pushliteral(L, "network");
            lua_setfield(L, -2, "type");
            lua_pushliteral(L, "out of memory while receiving the response");
            lua_setfield(L, -2, "message");
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "sent");
            return 2;
        }
        if (c->resend_refused) {
            lua_pushnil(L);
            lua_createtable(L, 0, 4);
            lua_pushliteral(L, "network");
            lua_setfield(L, -2, "type");
            lua_pushfstring(L,
                            "the connection failed after the request was sent, before any answer (%s; "
                            "not sent again: the server may have received it)",
                            c->first_error);
            lua_setfield(L, -2, "message");
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "sent");
            lua_pushinteger(L, (lua_Integer)rc);
            lua_setfield(L, -2, "curl_code");
            return 2;
        }
        return push_transfer_error(L, c, rc, timeout_ms);
    }

    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 100 || status > 999) { /* libcurl took a malformed status line ("HTTP/2222...") */
        lua_pushnil(L);
        lua_createtable(L, 0, 3);
        lua_pushliteral(L, "network");
        lua_setfield(L, -2, "type");
        lua_pushliteral(L, "the response's status line is malformed (no three-digit status)");
        lua_setfield(L, -2, "message");
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "sent");
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    push_headers(L, &c->head);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
    lua_setfield(L, -2, "body");
    /* A large body is not kept alive in the client until the next request. */
    if (c->body.cap > (1u << 20)) luapay_buf_free(&c->body);
    if (c->head.cap > (16u << 10)) luapay_buf_free(&c->head);
    return 1;
}

/* client:close(), __gc and __close: one idempotent release. */
static int l_close(lua_State *L) {
    client_release((http_client *)luaL_checkudata(L, 1, HTTP_MT));
    return 0;
}

static int l_tostring(lua_State *L) {
    http_client *c = (http_client *)luaL_checkudata(L, 1, HTTP_MT);
    lua_pushstring(L, c->easy ? "luapay.http_client" : "luapay.http_client (closed)");
    return 1;
}

static const luaL_Reg client_methods[] = {
    {"request", l_request},
    {"close", l_close},
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL},
};

const luaL_Reg luapay_http_funcs[] = {
    {"http_client", l_http_client},
    {"url_host", l_url_host},
    {"is_loopback_host", l_is_loopback_host},
    {"check_request", l_check_request},
    {NULL, NULL},
};

/* Registers the client metatable. curl's global init is reference-counted
 * and thread-safe since 7.84; it is one-time library init and is never undone,
 * since clients of a closing state may be finalized in any order. */
void luapay_http_register(lua_State *L) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) luaL_error(L, "luapay.core: curl_global_init failed");
    luaL_newmetatable(L, HTTP_MT);
    luaL_setfuncs(L, client_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

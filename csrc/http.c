/* HTTP client over libcurl for use outside nginx: one easy handle per client,
 * so connections are kept alive and reused across requests of that client.
 *
 *   client = core.http_client{timeout_ms, connect_timeout_ms, verify, ca_file, proxy, user_agent}
 *   res, err = client:request{method, url, headers, body, timeout_ms, connect_timeout_ms, idempotent}
 *   res = {status, headers = {name = value | {value, ...}}, body}
 *   err = {type = "timeout"|"network"|"tls"|"config", message, sent, curl_code}
 *
 * `sent` says whether request bytes may have reached the server, which decides
 * whether the pipeline may retry a request that is not idempotent. HTTP 4xx
 * and 5xx are responses, not errors.
 *
 * libcurl silently resends a request when a reused connection closes before
 * any answer, even a POST the server did receive. So a request that is not
 * idempotent (by method, or marked `idempotent = true` by the caller because
 * the provider deduplicates it) goes on a fresh connection, where libcurl
 * never resends. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core.h"

#define HTTP_MT "luapay.http_client"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L

typedef struct {
    CURL *easy; /* NULL once closed */
    long timeout_ms, connect_timeout_ms;
    int verify;
    char *ca_file, *proxy, *user_agent;
    luapay_buf body, head; /* reused across requests */
    char errbuf[CURL_ERROR_SIZE];
} http_client;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    return luapay_buf_add((luapay_buf *)ud, p, size * n) ? size * n : 0;
}

/* Header lines of every response block arrive here; a new status line starts
 * a new block, so only the final response's headers are kept (not those of
 * a 100 Continue). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    luapay_buf *b = (luapay_buf *)ud;
    if (n * size >= 5 && memcmp(p, "HTTP/", 5) == 0) b->len = 0;
    return luapay_buf_add(b, p, size * n) ? size * n : 0;
}

static char *dup_opt_string(lua_State *L, int t, const char *field) {
    char *copy = NULL;
    lua_getfield(L, t, field);
    if (!lua_isnil(L, -1)) {
        const char *s = luapay_check_string(L, -1, "http_client", field, NULL);
        copy = strdup(s);
        if (copy == NULL) luaL_error(L, "http_client: out of memory");
    }
    lua_pop(L, 1);
    return copy;
}

static long opt_ms(lua_State *L, int t, const char *fn, const char *field, long def) {
    lua_getfield(L, t, field);
    long v = def;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || n != (lua_Number)(long)n || n < 1 || n > 86400000)
            luapay_arg_error(L, 1, fn, field, "milliseconds from 1 to 86400000 expected");
        v = (long)n;
    }
    lua_pop(L, 1);
    return v;
}

static void client_release(http_client *c) {
    if (c->easy) curl_easy_cleanup(c->easy);
    c->easy = NULL;
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
    lua_getfield(L, 1, "verify");
    c->verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
    c->ca_file = dup_opt_string(L, 1, "ca_file");
    c->proxy = dup_opt_string(L, 1, "proxy");
    c->user_agent = dup_opt_string(L, 1, "user_agent");
    c->easy = curl_easy_init();
    if (c->easy == NULL) return luaL_error(L, "http_client: curl_easy_init failed");
    return 1;
}

static http_client *check_open(lua_State *L) {
    http_client *c = (http_client *)luaL_checkudata(L, 1, HTTP_MT);
    if (c->easy == NULL) luaL_error(L, "luapay.http_client: client is closed");
    return c;
}

/* Builds the header list from a table {name = value | {value, ...}}. */
static struct curl_slist *build_headers(lua_State *L, int t) {
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    lua_getfield(L, t, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return list;
    }
    if (!lua_istable(L, -1)) {
        curl_slist_free_all(list);
        luapay_arg_error(L, 2, "request", "headers", "table expected");
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        int values = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 1;
        for (int i = 1; i <= values; i++) {
            if (lua_istable(L, -1)) lua_rawgeti(L, -1, i);
            else lua_pushvalue(L, -1);
            const char *name = lua_type(L, -3) == LUA_TSTRING ? lua_tostring(L, -3) : NULL;
            const char *value = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (name == NULL || value == NULL || strpbrk(name, ":\r\n") || strpbrk(value, "\r\n")) {
                curl_slist_free_all(list);
                luapay_arg_error(L, 2, "request", "headers",
                                 "names and values must be strings without CR, LF (or ':' in names)");
            }
            lua_pushfstring(L, "%s: %s", name, value);
            struct curl_slist *grown = curl_slist_append(list, lua_tostring(L, -1));
            lua_pop(L, 2);
            if (grown == NULL) {
                curl_slist_free_all(list);
                luaL_error(L, "request: out of memory");
            }
            list = grown;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return list;
}

/* Pushes the response headers as a table: lower-cased names; a repeated
 * header becomes an array of its values in order. */
static void push_headers(lua_State *L, const luapay_buf *head) {
    lua_newtable(L);
    const char *p = head->data, *end = head->data + head->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && colon > p && memcmp(p, "HTTP/", 5) != 0) {
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
    } else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
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

/* client:request{method, url, headers, body, timeout_ms, connect_timeout_ms} */
static int l_request(lua_State *L) {
    http_client *c = check_open(L);
    if (!lua_istable(L, 2)) luapay_arg_error(L, 2, "request", "req", "table expected");
    const char *url = NULL, *method = "GET", *body = NULL;
    size_t body_len = 0;
    if (!string_field(L, 2, "url", &url, NULL)) luapay_arg_error(L, 2, "request", "url", "string expected");
    string_field(L, 2, "method", &method, NULL);
    string_field(L, 2, "body", &body, &body_len);
    lua_getfield(L, 2, "idempotent");
    int idempotent = lua_toboolean(L, -1) || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                     strcmp(method, "OPTIONS") == 0;
    lua_pop(L, 1);
    for (const char *m = method; *m; m++)
        if (*m < 'A' || *m > 'Z') luapay_arg_error(L, 2, "request", "method", "an upper-case HTTP method expected");
    long timeout_ms = opt_ms(L, 2, "request", "timeout_ms", c->timeout_ms);
    long connect_ms = opt_ms(L, 2, "request", "connect_timeout_ms", c->connect_timeout_ms);
    if (connect_ms > timeout_ms) connect_ms = timeout_ms;
    struct curl_slist *headers = build_headers(L, 2);

    CURL *e = c->easy;
    /* Reset drops the previous request's options but keeps live connections. */
    curl_easy_reset(e);
    c->body.len = c->head.len = 0;
    c->body.oom = c->head.oom = 0;
    c->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!idempotent) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->verify ? 2L : 0L);
    if (c->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->proxy) curl_easy_setopt(e, CURLOPT_PROXY, c->proxy);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent ? c->user_agent : "luapay/" LUAPAY_CORE_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &c->head);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
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
        return push_transfer_error(L, c, rc, timeout_ms);
    }

    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    push_headers(L, &c->head);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
    lua_setfield(L, -2, "body");
    /* A large body is not kept alive in the client until the next request. */
    if (c->body.cap > (1u << 20)) luapay_buf_free(&c->body);
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

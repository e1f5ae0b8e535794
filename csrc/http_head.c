/* An HTTP/1.x response as the cosocket transport reads it (the libcurl
 * client parses its own in http.c), in one pass instead of a Lua pattern
 * per line:
 *
 *   core.http_head(head) -> status, headers, http10 | nil
 *   core.http_chunked(buf, pos, cap, trailer_cap) -> body, next | nil
 *   core.http_header_lines(headers) -> lines, has_user_agent
 *
 * head: the status line and header lines up to the blank line. nil when the
 * status line (the bytes before the first CR or LF) is not "HTTP/d.d ddd"
 * followed by the end or a space ("HTTP/1.1 5001" is no 500). headers: every
 * line that follows a CRLF and whose name (the bytes before its first ':') is
 * a token, under its lower-cased name, the value without the spaces and tabs
 * around it; a repeated name gives a list of its values in order. A line runs
 * to the next CR or LF, so text after a bare LF is no header. http10: the
 * status line starts with "HTTP/1.0" (the server closes unless told).
 *
 * http_chunked reads a chunked body that starts at buf's byte pos and lies
 * whole in buf, as the transport's Lua reader would: chunk size lines (hex
 * digits after optional white space; the rest of the line is ignored), each
 * chunk followed by CRLF, trailer lines until a blank one. body: the chunks
 * joined; next: the position after the blank line. nil for anything else (a
 * part not read yet, a malformed line, a body beyond cap bytes, trailers
 * beyond trailer_cap, a size of more than 12 hex digits): the Lua reader
 * then reads on, or names the error.
 *
 * http_header_lines writes the other way, for the request the transport
 * sends: "Name: value\r\n" for each of headers (a table or nil, in
 * lua_next's order; a list value gives a line per item) but Host,
 * Content-Length and Connection in any case (the transport writes those),
 * and says whether one was a User-Agent. The pipeline checked the names and
 * values. In C because a Lua loop over the headers inside the request's
 * trace makes LuaJIT abort it ("inner loop in root trace"). */
#include <string.h>

#include "core.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* Pushes s lower-cased (ASCII only: a header name is a token). */
static void push_lower(lua_State *L, const char *s, size_t n) {
    char small[128];
    if (n <= sizeof small) {
        for (size_t i = 0; i < n; i++) small[i] = lower(s[i]);
        lua_pushlstring(L, small, n);
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) luaL_addchar(&b, lower(s[i]));
    luaL_pushresult(&b);
}

/* Adds the value on top of the stack under the name at -2 to the table at
 * -3, as a list when the name is already there; pops both. */
static void add_header(lua_State *L) {
    lua_pushvalue(L, -2);
    lua_rawget(L, -4);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawset(L, -3);
        return;
    }
    if (!lua_istable(L, -1)) { /* the second value: {first, second} */
        lua_createtable(L, 2, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, -3);
        return;
    }
    lua_insert(L, -2);
    lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
    lua_pop(L, 2);
}

/* The position of the CRLF at or after p, or NULL. */
static const char *find_crlf(const char *p, const char *end) {
    while (p + 1 < end) {
        const char *cr = memchr(p, '\r', (size_t)(end - p - 1));
        if (cr == NULL) return NULL;
        if (cr[1] == '\n') return cr;
        p = cr + 1;
    }
    return NULL;
}

static int l_http_head(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *end = s + n;
    size_t sl = 0;
    while (sl < n && s[sl] != '\r' && s[sl] != '\n') sl++;
    if (sl < 12 || memcmp(s, "HTTP/", 5) != 0 || !is_digit(s[5]) || s[6] != '.' || !is_digit(s[7]) ||
        s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]) || (sl > 12 && s[12] != ' ')) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'));
    lua_createtable(L, 0, 8);
    const char *p = s + sl;
    for (;;) {
        const char *crlf = find_crlf(p, end);
        if (crlf == NULL) break;
        const char *line = crlf + 2, *eol = line;
        while (eol < end && *eol != '\r' && *eol != '\n') eol++;
        p = eol;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || !luapay_is_token(line, (size_t)(colon - line))) continue;
        push_lower(L, line, (size_t)(colon - line));
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        lua_pushlstring(L, v, (size_t)(ve - v));
        add_header(L);
    }
    lua_pushboolean(L, memcmp(s, "HTTP/1.0", 8) == 0);
    return 3;
}

static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int l_http_chunked(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *end = s + n;
    lua_Integer pos = luaL_checkinteger(L, 2);
    lua_Number cap = luaL_checknumber(L, 3), trailer_cap = luaL_checknumber(L, 4), total = 0;
    if (pos < 1 || (size_t)pos > n + 1) return 0;
    const char *p = s + pos - 1;
    luaL_Buffer body;
    luaL_buffinit(L, &body);
    for (;;) {
        const char *eol = find_crlf(p, end);
        if (eol == NULL) return 0;
        while (p < eol && is_space(*p)) p++;
        lua_Number size = 0;
        int digits = 0;
        for (int v; p < eol && (v = hex_value(*p)) >= 0; p++, digits++) size = size * 16 + v;
        if (digits == 0 || digits > 12) return 0;
        p = eol + 2;
        if (size == 0) break;
        total += size;
        if (total > cap || (lua_Number)(end - p) < size + 2) return 0;
        if (p[(size_t)size] != '\r' || p[(size_t)size + 1] != '\n') return 0;
        luaL_addlstring(&body, p, (size_t)size);
        p += (size_t)size + 2;
    }
    for (;;) { /* trailer lines until the blank line */
        const char *eol = find_crlf(p, end);
        if (eol == NULL) return 0;
        trailer_cap -= (lua_Number)(eol - p) + 2;
        if (trailer_cap < 0) return 0;
        int blank = eol == p;
        p = eol + 2;
        if (blank) break;
    }
    luaL_pushresult(&body);
    lua_pushinteger(L, (lua_Integer)(p - s) + 1);
    return 2;
}

static int is_named(const char *s, size_t n, const char *lower_name, size_t len) {
    if (n != len) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lower_name[i]) return 0;
    return 1;
}

/* "name: value\r\n" for the string or number at idx. */
static void add_line(lua_State *L, luapay_buf *b, const char *name, size_t nlen, int idx) {
    size_t vlen;
    const char *v = lua_tolstring(L, idx, &vlen);
    if (v == NULL) return; /* not a string or a number: the pipeline refused it before */
    luapay_buf_add(b, name, nlen);
    luapay_buf_add(b, ": ", 2);
    luapay_buf_add(b, v, vlen);
    luapay_buf_add(b, "\r\n", 2);
}

static int l_http_header_lines(lua_State *L) {
    int has_ua = 0;
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushliteral(L, "");
        lua_pushboolean(L, 0);
        return 2;
    }
    luapay_buf *b = luapay_scratch(L, LUAPAY_SCRATCH_HEADER_LINES);
    lua_settop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        size_t nlen;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : NULL;
        if (name == NULL || is_named(name, nlen, "host", 4) || is_named(name, nlen, "content-length", 14) ||
            is_named(name, nlen, "connection", 10)) {
            lua_pop(L, 1);
            continue;
        }
        if (is_named(name, nlen, "user-agent", 10)) has_ua = 1;
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                add_line(L, b, name, nlen, -1);
                lua_pop(L, 1);
            }
        } else {
            add_line(L, b, name, nlen, -1);
        }
        lua_pop(L, 1);
    }
    if (b->oom) {
        luapay_scratch_done(b);
        return luaL_error(L, "http_header_lines: out of memory");
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    luapay_scratch_done(b);
    lua_pushboolean(L, has_ua);
    return 2;
}

const luaL_Reg luapay_http_head_funcs[] = {
    {"http_head", l_http_head},
    {"http_chunked", l_http_chunked},
    {"http_header_lines", l_http_header_lines},
    {NULL, NULL},
};

/* Exact money: amounts in minor units as Lua integers, converted to and from
 * decimal strings with the currency's ISO 4217 exponent by digit
 * manipulation only. No floating-point arithmetic: in LuaJIT a number is a
 * double, and it is only compared and converted to an integer exactly. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"

#define MINOR_LIMIT_DOUBLE 9007199254740992.0 /* 2^53, exact */

/* Reads a number as an integer with |v| <= 2^53. floats_ok: whether a Lua
 * 5.4 float with an integral value counts (LuaJIT has only doubles). */
static enum luapay_minor_status read_int(lua_State *L, int idx, int64_t *out, int floats_ok) {
    if (lua_type(L, idx) != LUA_TNUMBER) return LUAPAY_MINOR_NOT_NUMBER;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        if (v > LUAPAY_MINOR_LIMIT || v < -LUAPAY_MINOR_LIMIT) return LUAPAY_MINOR_TOO_LARGE;
        *out = (int64_t)v;
        return LUAPAY_MINOR_OK;
    }
#else
    floats_ok = 1;
#endif
    lua_Number d = lua_tonumber(L, idx);
    if (isnan(d) || isinf(d)) return LUAPAY_MINOR_NOT_FINITE;
    /* the size before the subtype: a float beyond 2^53 is a float in both
     * VMs and must get the same answer from both */
    if (d > MINOR_LIMIT_DOUBLE || d < -MINOR_LIMIT_DOUBLE) return LUAPAY_MINOR_TOO_LARGE;
    if (!floats_ok) return LUAPAY_MINOR_FLOAT;
    int64_t v = (int64_t)d;
    if ((lua_Number)v != d) return LUAPAY_MINOR_FLOAT;
    *out = v;
    return LUAPAY_MINOR_OK;
}

enum luapay_minor_status luapay_read_minor(lua_State *L, int idx, int64_t *out) {
    return read_int(L, idx, out, 0);
}

enum luapay_minor_status luapay_read_integer(lua_State *L, int idx, int64_t *out) {
    return read_int(L, idx, out, 1);
}

static void push_integer(lua_State *L, int64_t v) {
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v); /* exact: |v| <= 2^53 */
#endif
}

static const luapay_currency *check_currency(lua_State *L, int arg, const char *fn) {
    size_t len;
    const char *code = luapay_check_string(L, arg, fn, "currency", &len);
    return luapay_currency_find(code, len);
}

static int fail(lua_State *L, const char *fn, const char *why) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", fn, why);
    return 2;
}

/* core.to_decimal(minor, currency) -> "1.50" | nil, err */
static int l_to_decimal(lua_State *L) {
    if (lua_type(L, 1) != LUA_TNUMBER)
        luapay_arg_error(L, 1, "to_decimal", "minor",
                         lua_pushfstring(L, "number expected, got %s", luaL_typename(L, 1)));
    const luapay_currency *cur = check_currency(L, 2, "to_decimal");
    if (cur == NULL) return fail(L, "to_decimal", "unknown currency (not an active ISO 4217 code)");
    int64_t v = 0;
    switch (luapay_read_minor(L, 1, &v)) {
    case LUAPAY_MINOR_OK:
        break;
    case LUAPAY_MINOR_TOO_LARGE:
        return fail(L, "to_decimal", "amount beyond 2^53 minor units");
    case LUAPAY_MINOR_NOT_FINITE:
        return fail(L, "to_decimal", "amount is not a finite number");
    default:
        return fail(L, "to_decimal", "amount must be an integer in minor units, not a float");
    }
    if (v < 0) return fail(L, "to_decimal", "amount is negative");

    /* the digits of v, zero-padded to at least exponent + 1, then the point */
    char digits[32], out[40];
    int e = cur->exponent;
    int nd = snprintf(digits, sizeof digits, "%0*lld", e + 1, (long long)v);
    int o = nd - e;
    memcpy(out, digits, (size_t)o);
    if (e > 0) {
        out[o++] = '.';
        memcpy(out + o, digits + nd - e, (size_t)e);
        o += e;
    }
    lua_pushlstring(L, out, (size_t)o);
    return 1;
}

enum luapay_to_minor_status luapay_to_minor(const char *s, size_t n, const char *code, size_t clen, int64_t *out,
                                            const luapay_currency **cur) {
    *cur = luapay_currency_find(code, clen);
    if (*cur == NULL) return LUAPAY_TO_MINOR_CURRENCY;
    luapay_decimal d;
    if (!luapay_scan_decimal(s, n, &d) || d.negative) return LUAPAY_TO_MINOR_TEXT;
    if (d.frac_len != (*cur)->exponent) return LUAPAY_TO_MINOR_DECIMALS;
    uint64_t v = 0;
    for (size_t i = 0; i < d.int_len + d.has_point + d.frac_len; i++) {
        char c = d.int_digits[i];
        if (c == '.') continue;
        v = v * 10 + (uint64_t)(c - '0');
        if (v > (uint64_t)LUAPAY_MINOR_LIMIT) return LUAPAY_TO_MINOR_LARGE;
    }
    *out = (int64_t)v;
    return LUAPAY_TO_MINOR_OK;
}

/* core.to_minor(decimal_string, currency) -> integer | nil, err */
static int l_to_minor(lua_State *L) {
    size_t n, clen;
    const char *s = luapay_check_string(L, 1, "to_minor", "decimal", &n);
    const char *code = luapay_check_string(L, 2, "to_minor", "currency", &clen);
    const luapay_currency *cur;
    int64_t v = 0;
    switch (luapay_to_minor(s, n, code, clen, &v, &cur)) {
    case LUAPAY_TO_MINOR_OK:
        break;
    case LUAPAY_TO_MINOR_CURRENCY:
        return fail(L, "to_minor", "unknown currency (not an active ISO 4217 code)");
    case LUAPAY_TO_MINOR_TEXT:
        return fail(L, "to_minor", "not a plain decimal (digits and an optional point; no sign, exponent, "
                                   "spaces or leading zeros)");
    case LUAPAY_TO_MINOR_DECIMALS:
        lua_pushnil(L);
        lua_pushfstring(L, "to_minor: %s amounts have exactly %d decimals%s", cur->code, (int)cur->exponent,
                        cur->exponent == 0 ? " (no decimal point)" : "");
        return 2;
    default:
        return fail(L, "to_minor", "amount beyond 2^53 minor units");
    }
    push_integer(L, v);
    return 1;
}

/* core.currency(code) -> {code, numeric, exponent} | nil */
static int l_currency(lua_State *L) {
    const luapay_currency *cur = check_currency(L, 1, "currency");
    if (cur == NULL) {
        lua_pushnil(L);
        return 1;
    }
    char numeric[8];
    snprintf(numeric, sizeof numeric, "%03u", (unsigned)cur->numeric);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, cur->code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, numeric);
    lua_setfield(L, -2, "numeric");
    lua_pushinteger(L, cur->exponent);
    lua_setfield(L, -2, "exponent");
    return 1;
}

/* core.currencies() -> list of codes, sorted */
static int l_currencies(lua_State *L) {
    lua_newtable(L);
    for (size_t i = 0; luapay_currency_at(i) != NULL; i++) {
        lua_pushstring(L, luapay_currency_at(i)->code);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

const luaL_Reg luapay_money_funcs[] = {
    {"to_decimal", l_to_decimal},
    {"to_minor", l_to_minor},
    {"currency", l_currency},
    {"currencies", l_currencies},
    {NULL, NULL},
};

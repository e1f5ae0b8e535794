/* luapay.core: module entry, the per-state context, shared argument helpers. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core.h"

#define CTX_MT "luapay.ctx"

static const char *const alg_names[] = {"sha1", "sha256", "sha512", NULL};
static const char *const openssl_md_names[] = {"SHA1", "SHA256", "SHA512"};

luapay_ctx *luapay_ctx_get(lua_State *L) {
    return (luapay_ctx *)lua_touserdata(L, lua_upvalueindex(1));
}

int luapay_arg_error(lua_State *L, int arg, const char *fn, const char *name, const char *msg) {
    return luaL_error(L, "%s: bad argument #%d '%s' (%s)", fn, arg, name, msg);
}

const char *luapay_check_string(lua_State *L, int arg, const char *fn, const char *name, size_t *len) {
    if (lua_type(L, arg) != LUA_TSTRING)
        luapay_arg_error(L, arg, fn, name,
                         lua_pushfstring(L, "string expected, got %s", luaL_typename(L, arg)));
    return lua_tolstring(L, arg, len);
}

int luapay_check_option(lua_State *L, int arg, const char *fn, const char *name, const char *def,
                        const char *const list[]) {
    const char *s = def;
    if (!(def != NULL && lua_isnoneornil(L, arg))) s = luapay_check_string(L, arg, fn, name, NULL);
    for (int i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0) return i;
    return luapay_arg_error(L, arg, fn, name, lua_pushfstring(L, "invalid option '%s'", s));
}

enum luapay_alg luapay_check_alg(lua_State *L, int arg, const char *fn, int allow_sha512) {
    int alg = luapay_check_option(L, arg, fn, "alg", NULL, alg_names);
    if (alg == LUAPAY_SHA512 && !allow_sha512)
        luapay_arg_error(L, arg, fn, "alg", "must be 'sha1' or 'sha256'");
    return (enum luapay_alg)alg;
}

enum luapay_enc luapay_opt_enc(lua_State *L, int arg, const char *fn) {
    static const char *const names[] = {"raw", "hex", "HEX", "base64", NULL};
    return (enum luapay_enc)luapay_check_option(L, arg, fn, "enc", "raw", names);
}

int luapay_push_openssl_error(lua_State *L, const char *what) {
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, reason ? reason : "unknown OpenSSL error");
    return 2;
}

static void ctx_release(luapay_ctx *ctx) {
    luapay_hmac_cache_clear(ctx);
    luapay_scratch_release(ctx);
    for (int i = 0; i < LUAPAY_NALGS; i++) {
        EVP_MD_free(ctx->md[i]);
        ctx->md[i] = NULL;
    }
    EVP_MD_CTX_free(ctx->hmac_work); /* cleanses its state */
    ctx->hmac_work = NULL;
}

static int ctx_gc(lua_State *L) {
    ctx_release((luapay_ctx *)luaL_checkudata(L, 1, CTX_MT));
    return 0;
}

static void ctx_init(lua_State *L, luapay_ctx *ctx) {
    ctx->hmac_work = EVP_MD_CTX_new();
    for (int i = 0; i < LUAPAY_NALGS; i++) {
        ctx->md[i] = EVP_MD_fetch(NULL, openssl_md_names[i], NULL);
        if (ctx->md[i] == NULL) break;
    }
    if (ctx->hmac_work == NULL || ctx->md[LUAPAY_NALGS - 1] == NULL) {
        ctx_release(ctx);
        ERR_clear_error();
        luaL_error(L, "luapay.core: OpenSSL lacks SHA-1/SHA-256/SHA-512");
    }
}

LUAPAY_EXPORT int luaopen_luapay_core(lua_State *L) {
    const luaL_Reg *const lists[] = {luapay_encode_funcs, luapay_hash_funcs,
                                     luapay_random_funcs, luapay_equal_funcs, luapay_pkey_funcs,
                                     luapay_http_funcs, luapay_http_head_funcs, luapay_clock_funcs, luapay_json_funcs, luapay_json_decode_funcs,
                                     luapay_validate_funcs, luapay_money_funcs, luapay_ecommpay_funcs,
                                     luapay_trustly_funcs, luapay_trustly_notification_funcs, luapay_trustpay_funcs,
                                     luapay_plain_funcs, luapay_event_funcs, luapay_picks_funcs};

    luapay_ctx *ctx = (luapay_ctx *)lua_newuserdata(L, sizeof *ctx);
    memset(ctx, 0, sizeof *ctx);
    luaL_newmetatable(L, CTX_MT);
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    ctx_init(L, ctx);

    lua_newtable(L);
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        lua_pushvalue(L, -2);
        luaL_setfuncs(L, lists[i], 1);
    }
    lua_pushvalue(L, -2);
    luapay_pkey_register(L); /* pops the context it takes as upvalue */
    luapay_http_register(L);
    luapay_json_register(L);
    luapay_json_decode_register(L);
    luapay_validate_register(L);
    lua_pushliteral(L, LUAPAY_CORE_VERSION);
    lua_setfield(L, -2, "VERSION");
    lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
    lua_setfield(L, -2, "OPENSSL_VERSION");
    return 1;
}

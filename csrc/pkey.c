/* RSA keys from PEM, and PKCS#1 v1.5 signatures over SHA-1 / SHA-256. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "core.h"

#define PKEY_MT "luapay.pkey"
#define MAX_SIG_BYTES 1024 /* RSA-8192 */

typedef struct {
    EVP_PKEY *pkey; /* NULL once closed */
    int is_private;
    int bits;
    /* A verification context per digest, set up on first use: setting one
     * up (EVP_DigestVerifyInit) costs a tenth of an RSA-2048 verification. */
    EVP_PKEY_CTX *verify_ctx[LUAPAY_SHA512];
} pkey_ud;

typedef struct {
    const char *pass;
    size_t len;
    int asked_without; /* the PEM is encrypted and no passphrase was given */
} passphrase;

/* Without this callback OpenSSL would prompt on the terminal for an
 * encrypted PEM given no passphrase; a library must fail instead. */
static int passphrase_cb(char *buf, int size, int rwflag, void *u) {
    passphrase *p = (passphrase *)u;
    (void)rwflag;
    p->asked_without = p->pass == NULL;
    if (p->pass == NULL || p->len > (size_t)size) return -1;
    memcpy(buf, p->pass, p->len);
    return (int)p->len;
}

static int has_private_part(const EVP_PKEY *pkey) {
    BIGNUM *d = NULL;
    int yes = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &d) == 1;
    BN_clear_free(d);
    ERR_clear_error();
    return yes;
}

/* The message names the likely cause and carries the most telling reason
 * from OpenSSL's queue (decoders stack a generic "unsupported" on top of the
 * real one, e.g. "bad decrypt"); never any of the PEM text. */
static int push_decode_error(lua_State *L, const char *pem, size_t len, const passphrase *pass) {
    unsigned long e, best = 0;
    while ((e = ERR_get_error()) != 0)
        if (best == 0 || ERR_GET_REASON(best) == ERR_R_UNSUPPORTED) best = e;
    const char *reason = best ? ERR_reason_error_string(best) : NULL;
    lua_pushnil(L);
    if (pass->asked_without)
        lua_pushliteral(L, "pkey: the PEM key is encrypted; pass its passphrase");
    else if (pass->pass != NULL && reason != NULL && strcmp(reason, "bad decrypt") == 0)
        lua_pushliteral(L, "pkey: cannot decrypt the PEM key: bad decrypt (wrong passphrase?)");
    else if (memmem(pem, len, "-----BEGIN ", 11) == NULL)
        lua_pushliteral(L, "pkey: no PEM block (-----BEGIN ...) in the input");
    else
        lua_pushfstring(L, "pkey: cannot read an RSA key (PKCS#1 or PKCS#8 PEM): %s",
                        reason ? reason : "unknown OpenSSL error");
    return 2;
}

/* NULL for a key fit to use, else why not. A damaged key can decode (one
 * changed base64 character in a private key's PEM did, under fuzzing) and
 * then sign what no one can verify: a private key must verify its own
 * signature. (OpenSSL's pairwise check tests the primes too: 40 ms a key.) */
static const char *check_key(luapay_ctx *ctx, EVP_PKEY *pkey, int is_private) {
    if ((size_t)EVP_PKEY_get_size(pkey) > MAX_SIG_BYTES) return "pkey: RSA keys above 8192 bits are not supported";
    EVP_PKEY_CTX *cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = cctx != NULL && EVP_PKEY_public_check(cctx) == 1;
    EVP_PKEY_CTX_free(cctx);
    if (!ok) return "pkey: the RSA public key is not valid (modulus or exponent)";
    if (!is_private) return NULL;
    static const unsigned char probe[] = "luapay key check";
    unsigned char sig[MAX_SIG_BYTES];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    ok = mctx != NULL && EVP_DigestSignInit(mctx, NULL, ctx->md[LUAPAY_SHA256], NULL, pkey) == 1 &&
         EVP_DigestSign(mctx, sig, &siglen, probe, sizeof probe) == 1 && EVP_MD_CTX_reset(mctx) == 1 &&
         EVP_DigestVerifyInit(mctx, NULL, ctx->md[LUAPAY_SHA256], NULL, pkey) == 1 &&
         EVP_DigestVerify(mctx, sig, siglen, probe, sizeof probe) == 1;
    EVP_MD_CTX_free(mctx);
    return ok ? NULL : "pkey: the RSA private key is damaged: it cannot verify its own signature";
}

/* core.pkey(pem [, passphrase]) -> key | nil, err */
static int l_pkey(lua_State *L) {
    size_t pem_len;
    const char *pem = luapay_check_string(L, 1, "pkey", "pem", &pem_len);
    passphrase pass = {NULL, 0, 0};
    if (!lua_isnoneornil(L, 2)) pass.pass = luapay_check_string(L, 2, "pkey", "passphrase", &pass.len);

    pkey_ud *ud = (pkey_ud *)lua_newuserdata(L, sizeof *ud);
    memset(ud, 0, sizeof *ud);
    luaL_getmetatable(L, PKEY_MT);
    lua_setmetatable(L, -2);

    ERR_clear_error();
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA", 0, NULL, NULL);
    const unsigned char *data = (const unsigned char *)pem;
    size_t left = pem_len;
    int ok = dctx != NULL && OSSL_DECODER_CTX_set_pem_password_cb(dctx, passphrase_cb, &pass) &&
             OSSL_DECODER_from_data(dctx, &data, &left);
    OSSL_DECODER_CTX_free(dctx);
    if (!ok || pkey == NULL) {
        EVP_PKEY_free(pkey);
        return push_decode_error(L, pem, pem_len, &pass);
    }
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_free(pkey);
        lua_pushnil(L);
        lua_pushliteral(L, "pkey: not an RSA key");
        return 2;
    }
    const char *unsound = check_key(luapay_ctx_get(L), pkey, has_private_part(pkey));
    if (unsound != NULL) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        lua_pushnil(L);
        lua_pushstring(L, unsound);
        return 2;
    }
    int is_private = has_private_part(pkey);
    ERR_clear_error();
    ud->pkey = pkey;
    ud->is_private = is_private;
    ud->bits = EVP_PKEY_get_bits(pkey);
    return 1;
}

static pkey_ud *check_open(lua_State *L) {
    pkey_ud *ud = (pkey_ud *)luaL_checkudata(L, 1, PKEY_MT);
    if (ud->pkey == NULL) luaL_error(L, "luapay.pkey: key is closed");
    return ud;
}

void luapay_pkey_check(lua_State *L) {
    (void)check_open(L);
}

/* key:sign(msg, alg) -> raw signature */
static int l_sign(lua_State *L) {
    pkey_ud *ud = check_open(L);
    size_t mlen;
    const char *msg = luapay_check_string(L, 2, "key:sign", "msg", &mlen);
    enum luapay_alg alg = luapay_check_alg(L, 3, "key:sign", 0);
    if (!ud->is_private) return luaL_error(L, "key:sign: this is a public key; signing needs the private key");

    unsigned char sig[MAX_SIG_BYTES];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = mctx != NULL && (size_t)EVP_PKEY_get_size(ud->pkey) <= sizeof sig &&
             EVP_DigestSignInit(mctx, NULL, luapay_ctx_get(L)->md[alg], NULL, ud->pkey) == 1 &&
             EVP_DigestSign(mctx, sig, &siglen, (const unsigned char *)msg, mlen) == 1;
    EVP_MD_CTX_free(mctx);
    if (!ok) {
        unsigned long e = ERR_peek_last_error();
        const char *reason = e ? ERR_reason_error_string(e) : "key too large";
        ERR_clear_error();
        return luaL_error(L, "key:sign: %s", reason ? reason : "OpenSSL failure");
    }
    lua_pushlstring(L, (const char *)sig, siglen);
    return 1;
}

/* The key's verification context for alg (PKCS#1 v1.5 over alg's digest),
 * made on first use; NULL if OpenSSL cannot. */
static EVP_PKEY_CTX *verify_ctx(luapay_ctx *ctx, pkey_ud *ud, enum luapay_alg alg) {
    if (ud->verify_ctx[alg] != NULL) return ud->verify_ctx[alg];
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ud->pkey, NULL);
    if (pctx == NULL || EVP_PKEY_verify_init(pctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, ctx->md[alg]) != 1) {
        EVP_PKEY_CTX_free(pctx);
        return NULL;
    }
    return ud->verify_ctx[alg] = pctx;
}

/* key:verify(msg, raw_sig, alg) -> boolean: the digest of msg, then the
 * key's kept context checks sig over it (what EVP_DigestVerify does).
 * luapay_pkey_verify is its check, for the key at stack index 1. */
int luapay_pkey_verify(lua_State *L, const char *msg, size_t mlen, const char *sig, size_t slen, enum luapay_alg alg) {
    pkey_ud *ud = check_open(L);
    luapay_ctx *ctx = luapay_ctx_get(L);
    EVP_PKEY_CTX *pctx = verify_ctx(ctx, ud, alg);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = pctx != NULL && EVP_Digest(msg, mlen, md, &mdlen, ctx->md[alg], NULL) == 1 &&
             EVP_PKEY_verify(pctx, (const unsigned char *)sig, slen, md, mdlen) == 1;
    if (!ok) ERR_clear_error(); /* a bad signature queues an error; it is an answer, not a failure */
    return ok;
}

static int l_verify(lua_State *L) {
    check_open(L);
    size_t mlen, slen;
    const char *msg = luapay_check_string(L, 2, "key:verify", "msg", &mlen);
    const char *sig = luapay_check_string(L, 3, "key:verify", "sig", &slen);
    enum luapay_alg alg = luapay_check_alg(L, 4, "key:verify", 0);
    lua_pushboolean(L, luapay_pkey_verify(L, msg, mlen, sig, slen, alg));
    return 1;
}

/* key:close(), __gc and __close: one idempotent release. */
static int l_close(lua_State *L) {
    pkey_ud *ud = (pkey_ud *)luaL_checkudata(L, 1, PKEY_MT);
    for (int i = 0; i < LUAPAY_SHA512; i++) {
        EVP_PKEY_CTX_free(ud->verify_ctx[i]);
        ud->verify_ctx[i] = NULL;
    }
    EVP_PKEY_free(ud->pkey);
    ud->pkey = NULL;
    return 0;
}

static int l_is_private(lua_State *L) {
    lua_pushboolean(L, check_open(L)->is_private);
    return 1;
}

static int l_bits(lua_State *L) {
    lua_pushinteger(L, check_open(L)->bits);
    return 1;
}

static int l_tostring(lua_State *L) {
    pkey_ud *ud = (pkey_ud *)luaL_checkudata(L, 1, PKEY_MT);
    if (ud->pkey == NULL)
        lua_pushliteral(L, "luapay.pkey (closed)");
    else
        lua_pushfstring(L, "luapay.pkey (RSA %d, %s)", ud->bits, ud->is_private ? "private" : "public");
    return 1;
}

static const luaL_Reg pkey_methods[] = {
    {"sign", l_sign},
    {"verify", l_verify},
    {"close", l_close},
    {"is_private", l_is_private},
    {"bits", l_bits},
    {"__gc", l_close},
    {"__close", l_close},
    {"__tostring", l_tostring},
    {NULL, NULL},
};

const luaL_Reg luapay_pkey_funcs[] = {
    {"pkey", l_pkey},
    {NULL, NULL},
};

/* Expects the context on top of the stack; pops it. */
void luapay_pkey_register(lua_State *L) {
    luaL_newmetatable(L, PKEY_MT);
    lua_insert(L, -2);
    luaL_setfuncs(L, pkey_methods, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "luapay.pkey");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* Message digests and HMAC (SHA-1, SHA-256, SHA-512) over OpenSSL's EVP API. */
#include <openssl/err.h>

#include "core.h"

/* core.hmac(alg, key, msg [, enc]) */
static int l_hmac(lua_State *L) {
    luapay_ctx *ctx = luapay_ctx_get(L);
    enum luapay_alg alg = luapay_check_alg(L, 1, "hmac", 1);
    size_t klen, mlen;
    const char *key = luapay_check_string(L, 2, "hmac", "key", &klen);
    const char *msg = luapay_check_string(L, 3, "hmac", "msg", &mlen);
    enum luapay_enc enc = luapay_opt_enc(L, 4, "hmac");

    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    /* The template already carries the digest; duplicating it is much cheaper
     * than naming the digest again, which makes OpenSSL fetch it. */
    EVP_MAC_CTX *mctx = EVP_MAC_CTX_dup(ctx->hmac_template[alg]);
    int ok = mctx != NULL && EVP_MAC_init(mctx, (const unsigned char *)key, klen, NULL) &&
             EVP_MAC_update(mctx, (const unsigned char *)msg, mlen) &&
             EVP_MAC_final(mctx, mac, &maclen, sizeof mac);
    EVP_MAC_CTX_free(mctx);
    if (!ok) {
        ERR_clear_error();
        return luaL_error(L, "hmac: OpenSSL failed (out of memory?)");
    }
    luapay_push_encoded(L, mac, maclen, enc);
    return 1;
}

/* core.digest(alg, msg [, enc]) */
static int l_digest(lua_State *L) {
    luapay_ctx *ctx = luapay_ctx_get(L);
    enum luapay_alg alg = luapay_check_alg(L, 1, "digest", 1);
    size_t mlen;
    const char *msg = luapay_check_string(L, 2, "digest", "msg", &mlen);
    enum luapay_enc enc = luapay_opt_enc(L, 3, "digest");

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(msg, mlen, md, &mdlen, ctx->md[alg], NULL)) {
        ERR_clear_error();
        return luaL_error(L, "digest: OpenSSL failed (out of memory?)");
    }
    luapay_push_encoded(L, md, mdlen, enc);
    return 1;
}

const luaL_Reg luapay_hash_funcs[] = {
    {"hmac", l_hmac},
    {"digest", l_digest},
    {NULL, NULL},
};

/* Message digests and HMAC (SHA-1, SHA-256, SHA-512) over OpenSSL's EVP API. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core.h"

static void slot_free(luapay_hmac_slot *s) {
    if (s->key) OPENSSL_clear_free(s->key, s->klen ? s->klen : 1);
    EVP_MAC_CTX_free(s->keyed);
    memset(s, 0, sizeof *s);
}

void luapay_hmac_cache_clear(luapay_ctx *ctx) {
    for (int i = 0; i < LUAPAY_HMAC_CACHE; i++) slot_free(&ctx->hmac_cache[i]);
}

/* The keyed state for (alg, key), moved to the front; NULL on OOM. */
static EVP_MAC_CTX *keyed_state(luapay_ctx *ctx, enum luapay_alg alg, const char *key, size_t klen) {
    luapay_hmac_slot *c = ctx->hmac_cache, hit;
    int i = 0;
    for (; i < LUAPAY_HMAC_CACHE && c[i].key; i++) {
        if (c[i].alg == alg && c[i].klen == klen && memcmp(c[i].key, key, klen) == 0) break;
    }
    if (i < LUAPAY_HMAC_CACHE && c[i].key) {
        hit = c[i];
    } else { /* a miss: key a new state; the least recently used one goes */
        memset(&hit, 0, sizeof hit);
        hit.alg = alg;
        hit.klen = klen;
        hit.key = (unsigned char *)OPENSSL_malloc(klen ? klen : 1);
        hit.keyed = EVP_MAC_CTX_dup(ctx->hmac_template[alg]);
        if (hit.key == NULL || hit.keyed == NULL ||
            !EVP_MAC_init(hit.keyed, (const unsigned char *)key, klen, NULL)) {
            slot_free(&hit);
            return NULL;
        }
        if (klen) memcpy(hit.key, key, klen);
        i = LUAPAY_HMAC_CACHE - 1;
        slot_free(&c[i]);
    }
    memmove(c + 1, c, (size_t)i * sizeof *c);
    c[0] = hit;
    return hit.keyed;
}

int luapay_hmac(luapay_ctx *ctx, enum luapay_alg alg, const char *key, size_t klen, const char *msg, size_t mlen,
                unsigned char *mac, size_t *maclen) {
    /* Re-initialising with no key restarts from the kept inner state: the
     * key stays, and nothing is duplicated or allocated per call. */
    EVP_MAC_CTX *keyed = keyed_state(ctx, alg, key, klen);
    int ok = keyed != NULL && EVP_MAC_init(keyed, NULL, 0, NULL) &&
             EVP_MAC_update(keyed, (const unsigned char *)msg, mlen) &&
             EVP_MAC_final(keyed, mac, maclen, EVP_MAX_MD_SIZE);
    if (!ok) ERR_clear_error();
    return ok;
}

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
    if (!luapay_hmac(ctx, alg, key, klen, msg, mlen, mac, &maclen))
        return luaL_error(L, "hmac: OpenSSL failed (out of memory?)");
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

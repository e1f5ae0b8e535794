/* The limit for `make bench`'s instruction-count mode: plain C doing only
 * the cryptography of one operation of issue 15's table, N times over the
 * bytes bench/icount.lua --write left in DIR/OP.msg.
 *
 *   icount_limit OP N DIR private.pem public.pem
 *
 *   ecommpay_*   HMAC-SHA512 with the keyed state cached (one keyed context
 *                re-initialised without a key per call, as luapay does), then base64
 *   trustpay_*   HMAC-SHA256 the same way, then uppercase hex
 *   trustly_sign RSA-2048 PKCS#1 v1.5 SHA-1 sign; trustly_notification verify
 *                with the key's verification context kept (set up once)
 *
 * bench/icount.sh runs it at N and at 0 under callgrind: (Ir(N) - Ir(0)) / N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "read_key.h"

static volatile unsigned char sink;

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(char *out, const unsigned char *in, size_t n) {
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *out++ = B64[v >> 18], *out++ = B64[v >> 12 & 63], *out++ = B64[v >> 6 & 63], *out++ = B64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        *out++ = B64[v >> 18], *out++ = B64[v >> 12 & 63];
        *out++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *out++ = '=';
    }
    *out = '\0';
}

static void hex(char *out, const unsigned char *in, size_t n) {
    for (size_t i = 0; i < n; i++) *out++ = "0123456789ABCDEF"[in[i] >> 4], *out++ = "0123456789ABCDEF"[in[i] & 15];
    *out = '\0';
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s OP N DIR private.pem public.pem\n", argv[0]);
        return 2;
    }
    const char *op = argv[1];
    long n = atol(argv[2]);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.msg", argv[3], op);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static unsigned char msg[1 << 20];
    size_t len = fread(msg, 1, sizeof msg, f);
    fclose(f);

    if (strncmp(op, "ecommpay_", 9) == 0 || strncmp(op, "trustpay_", 9) == 0) {
        int sha512 = op[0] == 'e';
        const char *key = sha512 ? "secret" : "123456";
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *keyed = EVP_MAC_CTX_new(mac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha512 ? "SHA512" : "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        if (!keyed || !EVP_MAC_CTX_set_params(keyed, params) ||
            !EVP_MAC_init(keyed, (const unsigned char *)key, strlen(key), NULL))
            return 1;
        for (long i = 0; i < n; i++) {
            unsigned char md[EVP_MAX_MD_SIZE];
            char text[2 * EVP_MAX_MD_SIZE + 1];
            size_t mdlen;
            if (!EVP_MAC_init(keyed, NULL, 0, NULL) || !EVP_MAC_update(keyed, msg, len) ||
                !EVP_MAC_final(keyed, md, &mdlen, sizeof md))
                return 1;
            if (sha512) base64(text, md, mdlen);
            else hex(text, md, mdlen);
            sink = (unsigned char)text[0];
        }
        EVP_MAC_CTX_free(keyed);
        EVP_MAC_free(mac);
        return 0;
    }
    if (strncmp(op, "trustly_", 8) == 0) {
        EVP_MD *sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
        EVP_PKEY *priv = read_key(argv[4], 1), *pub = read_key(argv[5], 0);
        unsigned char sig[512];
        size_t siglen = sizeof sig;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestSignInit(ctx, NULL, sha1, NULL, priv) != 1 || EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1)
            return 1;
        EVP_MD_CTX_free(ctx);
        int sign = strcmp(op, "trustly_sign") == 0;
        /* Verification the best way: one context per key, set up once (as
         * luapay keeps it), then per call the SHA-1 digest and the RSA check. */
        EVP_PKEY_CTX *vctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        if (!vctx || EVP_PKEY_verify_init(vctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_CTX_set_signature_md(vctx, sha1) != 1)
            return 1;
        for (long i = 0; i < n; i++) {
            if (sign) {
                unsigned char out[512];
                size_t outlen = sizeof out;
                ctx = EVP_MD_CTX_new();
                if (!ctx || EVP_DigestSignInit(ctx, NULL, sha1, NULL, priv) != 1 ||
                    EVP_DigestSign(ctx, out, &outlen, msg, len) != 1)
                    return 1;
                EVP_MD_CTX_free(ctx);
                sink = out[0];
            } else {
                unsigned char md[EVP_MAX_MD_SIZE];
                unsigned int mdlen = 0;
                if (EVP_Digest(msg, len, md, &mdlen, sha1, NULL) != 1 || EVP_PKEY_verify(vctx, sig, siglen, md, mdlen) != 1)
                    return 1;
            }
        }
        EVP_PKEY_CTX_free(vctx);
        return 0;
    }
    fprintf(stderr, "unknown operation %s\n", op);
    return 2;
}

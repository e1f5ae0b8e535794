/* Plain C baseline for `make bench`: the same OpenSSL calls luapay.core makes
 * (HMAC through a prefetched EVP_MAC template, RSA through EVP_DigestSign /
 * EVP_DigestVerify), with no Lua in between. Prints "name ops_per_second".
 *
 *   crypto_bench private.pem public.pem [name=message_file ...]
 *
 * Each name=file also gives "<name>_sign" and "<name>_verify": RSA-SHA1 over
 * that file's bytes (e.g. a Trustly plaintext, to compare with signing the
 * request it comes from). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "read_key.h"

#define MIN_SECONDS 0.5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time, as os.clock in the Lua side */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile unsigned char sink;

typedef void (*op_fn)(void *arg);

/* Runs op in doubling batches until MIN_SECONDS have passed. */
static double rate(op_fn op, void *arg) {
    long n = 0, batch = 16;
    double start = now(), elapsed;
    do {
        for (long i = 0; i < batch; i++) op(arg);
        n += batch;
        batch *= 2;
        elapsed = now() - start;
    } while (elapsed < MIN_SECONDS);
    return (double)n / elapsed;
}

static unsigned char msg[400], key[32];
static const unsigned char *cur_msg = msg;
static size_t cur_len = sizeof msg;
static EVP_MAC_CTX *hmac_template;
static EVP_MD *sha1;
static EVP_PKEY *priv, *pub;
static unsigned char sig[256];
static size_t siglen;

static void op_hmac(void *arg) {
    (void)arg;
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(hmac_template);
    if (!ctx || !EVP_MAC_init(ctx, key, sizeof key, NULL) || !EVP_MAC_update(ctx, msg, sizeof msg) ||
        !EVP_MAC_final(ctx, mac, &maclen, sizeof mac))
        abort();
    EVP_MAC_CTX_free(ctx);
    sink = mac[0];
}

static void op_sign(void *arg) {
    (void)arg;
    unsigned char out[512];
    size_t outlen = sizeof out;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, sha1, NULL, priv) != 1 ||
        EVP_DigestSign(ctx, out, &outlen, cur_msg, cur_len) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    sink = out[0];
}

static void op_verify(void *arg) {
    (void)arg;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, sha1, NULL, pub) != 1 ||
        EVP_DigestVerify(ctx, sig, siglen, cur_msg, cur_len) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s private.pem public.pem [name=message_file ...]\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)('a' + i % 26);
    for (size_t i = 0; i < sizeof key; i++) key[i] = (unsigned char)('k' + i % 7);

    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    hmac_template = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA512", 0),
                           OSSL_PARAM_construct_end()};
    if (!hmac_template || !EVP_MAC_CTX_set_params(hmac_template, params)) return 1;
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    priv = read_key(argv[1], 1);
    pub = read_key(argv[2], 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    siglen = sizeof sig;
    if (EVP_DigestSignInit(ctx, NULL, sha1, NULL, priv) != 1 || EVP_DigestSign(ctx, sig, &siglen, msg, sizeof msg) != 1)
        return 1;
    EVP_MD_CTX_free(ctx);

    printf("hmac_sha512_400 %.0f\n", rate(op_hmac, NULL));
    printf("rsa2048_sha1_sign %.0f\n", rate(op_sign, NULL));
    printf("rsa2048_sha1_verify %.0f\n", rate(op_verify, NULL));

    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL) return 2;
        *eq = '\0';
        FILE *f = fopen(eq + 1, "rb");
        if (!f) {
            perror(eq + 1);
            return 1;
        }
        static unsigned char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        cur_msg = buf;
        cur_len = n;
        ctx = EVP_MD_CTX_new();
        siglen = sizeof sig;
        if (EVP_DigestSignInit(ctx, NULL, sha1, NULL, priv) != 1 || EVP_DigestSign(ctx, sig, &siglen, buf, n) != 1)
            return 1;
        EVP_MD_CTX_free(ctx);
        printf("%s_sign %.0f\n", argv[i], rate(op_sign, NULL));
        printf("%s_verify %.0f\n", argv[i], rate(op_verify, NULL));
    }
    return 0;
}

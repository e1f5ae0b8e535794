/* The PEM key files the C benches load (bench/crypto_bench.c,
 * bench/icount_limit.c): a private or public key, or exit(1). */
#ifndef LUAPAY_BENCH_READ_KEY_H
#define LUAPAY_BENCH_READ_KEY_H

#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>

static EVP_PKEY *read_key(const char *path, int private) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    EVP_PKEY *k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!k) exit(1);
    return k;
}

#endif

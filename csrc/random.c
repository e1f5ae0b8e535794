/* Randomness from OpenSSL's CSPRNG: raw bytes and RFC 4122 version-4 UUIDs. */
#include <openssl/rand.h>

#include "core.h"

#define RANDOM_BYTES_MAX (1 << 20) /* a sanity bound, far above any key or nonce */

/* core.random_bytes(n) -> string | nil, err */
static int l_random_bytes(lua_State *L) {
    lua_Number v = lua_tonumber(L, 1);
    if (lua_type(L, 1) != LUA_TNUMBER || v != (lua_Number)(lua_Integer)v || v < 0 || v > RANDOM_BYTES_MAX)
        luapay_arg_error(L, 1, "random_bytes", "n", "an integer from 0 to 1048576 expected");
    lua_Integer n = (lua_Integer)v;
    unsigned char *buf = (unsigned char *)lua_newuserdata(L, (size_t)n + 1);
    if (n > 0 && RAND_bytes(buf, (int)n) != 1) return luapay_push_openssl_error(L, "random_bytes");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

/* core.uuid4() -> "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx" | nil, err */
static int l_uuid4(lua_State *L) {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) return luapay_push_openssl_error(L, "uuid4");
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    static const char digits[] = "0123456789abcdef";
    char out[36];
    for (int i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 15];
    }
    lua_pushlstring(L, out, sizeof out);
    return 1;
}

const luaL_Reg luapay_random_funcs[] = {
    {"random_bytes", l_random_bytes},
    {"uuid4", l_uuid4},
    {NULL, NULL},
};

/* Comparison of secrets (MACs, signatures, tokens) that leaks no timing. */
#include <openssl/crypto.h>

#include "core.h"

/* core.equal(a, b) -> boolean. Constant time for equal lengths; a length
 * mismatch answers false at once, since lengths of MACs are public. */
static int l_equal(lua_State *L) {
    size_t na, nb;
    const char *a = luapay_check_string(L, 1, "equal", "a", &na);
    const char *b = luapay_check_string(L, 2, "equal", "b", &nb);
    lua_pushboolean(L, na == nb && CRYPTO_memcmp(a, b, na) == 0);
    return 1;
}

const luaL_Reg luapay_equal_funcs[] = {
    {"equal", l_equal},
    {NULL, NULL},
};

/* Base64 (RFC 4648, standard alphabet, padded) and hex. Written here rather
 * than taken from OpenSSL's EVP_DecodeBlock because that one skips white
 * space, ignores bad padding and returns padded lengths: a signature must
 * decode strictly or not at all. */
#include <stdint.h>
#include <string.h>

#include "core.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The characters of every 12 bits, two at a time: one load for two
 * characters, written at compile time (B64_CHAR is the alphabet as a
 * constant expression). */
#define B64_CHAR(v) ((v) < 26 ? 'A' + (v) : (v) < 52 ? 'a' + (v) - 26 : (v) < 62 ? '0' + (v) - 52 : (v) == 62 ? '+' : '/')
#define B64_P1(n) {(char)B64_CHAR((n) >> 6), (char)B64_CHAR((n) & 63)},
#define B64_P4(n) B64_P1(n) B64_P1((n) + 1) B64_P1((n) + 2) B64_P1((n) + 3)
#define B64_P16(n) B64_P4(n) B64_P4((n) + 4) B64_P4((n) + 8) B64_P4((n) + 12)
#define B64_P64(n) B64_P16(n) B64_P16((n) + 16) B64_P16((n) + 32) B64_P16((n) + 48)
#define B64_P256(n) B64_P64(n) B64_P64((n) + 64) B64_P64((n) + 128) B64_P64((n) + 192)
#define B64_P1024(n) B64_P256(n) B64_P256((n) + 256) B64_P256((n) + 512) B64_P256((n) + 768)
static const char B64_PAIRS[4096][2] = {B64_P1024(0) B64_P1024(1024) B64_P1024(2048) B64_P1024(3072)};

size_t luapay_base64_encode(char *out, const unsigned char *in, size_t n) {
    char *o = out;
    size_t i = 0;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* six bytes at a time out of one eight-byte load (the two more unread) */
    for (; i + 8 <= n; i += 6) {
        uint64_t x;
        memcpy(&x, in + i, 8);
        x = __builtin_bswap64(x);
        memcpy(o, B64_PAIRS[x >> 52], 2);
        memcpy(o + 2, B64_PAIRS[(x >> 40) & 4095], 2);
        memcpy(o + 4, B64_PAIRS[(x >> 28) & 4095], 2);
        memcpy(o + 6, B64_PAIRS[(x >> 16) & 4095], 2);
        o += 8;
    }
#endif
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        memcpy(o, B64_PAIRS[v >> 12], 2);
        memcpy(o + 2, B64_PAIRS[v & 4095], 2);
        o += 4;
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

/* Each byte's value in the alphabet plus one, 0 for none: one load per
 * character. */
static const unsigned char B64_VALUE[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10,
    ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19,
    ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
    ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
    ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46,
    ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55,
    ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64
};

static int b64_value(unsigned char c) {
    return (int)B64_VALUE[c] - 1;
}

/* The same values for a quad read at once: B64_Q[k][c] is the value of c
 * as the quad's k-th character, shifted into place, plus 1 << 24 when c is
 * in the alphabet; four valid characters sum to 4 << 24 and the 24 bits. */
#define B64_ALPHABET(X, k)                                                                                       \
    X('A', 0, k) X('B', 1, k) X('C', 2, k) X('D', 3, k) X('E', 4, k) X('F', 5, k) X('G', 6, k) X('H', 7, k)         \
    X('I', 8, k) X('J', 9, k) X('K', 10, k) X('L', 11, k) X('M', 12, k) X('N', 13, k) X('O', 14, k) X('P', 15, k)  \
    X('Q', 16, k) X('R', 17, k) X('S', 18, k) X('T', 19, k) X('U', 20, k) X('V', 21, k) X('W', 22, k)             \
    X('X', 23, k) X('Y', 24, k) X('Z', 25, k) X('a', 26, k) X('b', 27, k) X('c', 28, k) X('d', 29, k)             \
    X('e', 30, k) X('f', 31, k) X('g', 32, k) X('h', 33, k) X('i', 34, k) X('j', 35, k) X('k', 36, k)             \
    X('l', 37, k) X('m', 38, k) X('n', 39, k) X('o', 40, k) X('p', 41, k) X('q', 42, k) X('r', 43, k)             \
    X('s', 44, k) X('t', 45, k) X('u', 46, k) X('v', 47, k) X('w', 48, k) X('x', 49, k) X('y', 50, k)             \
    X('z', 51, k) X('0', 52, k) X('1', 53, k) X('2', 54, k) X('3', 55, k) X('4', 56, k) X('5', 57, k)             \
    X('6', 58, k) X('7', 59, k) X('8', 60, k) X('9', 61, k) X('+', 62, k) X('/', 63, k)
#define B64_Q_ENTRY(c, v, k) [c] = ((uint32_t)(v) << (18 - 6 * (k))) + (1u << 24),
static const uint32_t B64_Q[4][256] = {
    {B64_ALPHABET(B64_Q_ENTRY, 0)},
    {B64_ALPHABET(B64_Q_ENTRY, 1)},
    {B64_ALPHABET(B64_Q_ENTRY, 2)},
    {B64_ALPHABET(B64_Q_ENTRY, 3)},
};

/* Returns the decoded length, or -1 with *why set. out holds 3/4 of n. */
long luapay_base64_decode(unsigned char *out, const unsigned char *in, size_t n, const char **why) {
    if (n % 4 != 0) {
        *why = "length is not a multiple of 4";
        return -1;
    }
    size_t pad = n == 0 || in[n - 1] != '=' ? 0 : in[n - 2] == '=' ? 2 : 1;
    unsigned char *o = out;
    size_t i = 0;
    /* Every quad but the last has no padding: four lookups, one check;
     * two quads at a time into one 8-byte store (the quad after them has
     * room for the 2 bytes more, written again later). */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 < n; i += 8) {
        uint32_t a = B64_Q[0][in[i]] + B64_Q[1][in[i + 1]] + B64_Q[2][in[i + 2]] + B64_Q[3][in[i + 3]];
        uint32_t b = B64_Q[0][in[i + 4]] + B64_Q[1][in[i + 5]] + B64_Q[2][in[i + 6]] + B64_Q[3][in[i + 7]];
        if (((a >> 24) ^ 4) | ((b >> 24) ^ 4)) break;
        uint64_t six = __builtin_bswap64(((uint64_t)(a & 0xFFFFFF) << 40) | ((uint64_t)(b & 0xFFFFFF) << 16));
        memcpy(o, &six, 8);
        o += 6;
    }
#endif
    for (; i + 4 < n; i += 4) {
        uint32_t bits = B64_Q[0][in[i]] + B64_Q[1][in[i + 1]] + B64_Q[2][in[i + 2]] + B64_Q[3][in[i + 3]];
        if (bits >> 24 != 4) break; /* the general loop below names the fault */
        o[0] = (unsigned char)(bits >> 16), o[1] = (unsigned char)(bits >> 8), o[2] = (unsigned char)bits;
        o += 3;
    }
    for (; i < n; i += 4) {
        int last = i + 4 == n;
        int v[4];
        for (int k = 0; k < 4; k++) {
            int is_pad = last && k >= 4 - (int)pad;
            v[k] = is_pad ? 0 : b64_value(in[i + k]);
            if (v[k] < 0) {
                *why = in[i + k] == '=' ? "misplaced padding" : "invalid character";
                return -1;
            }
        }
        unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        *o++ = (unsigned char)(bits >> 16);
        if (!(last && pad == 2)) *o++ = (unsigned char)(bits >> 8);
        if (!(last && pad >= 1)) *o++ = (unsigned char)bits;
        /* Bits under the padding must be zero, so every value has one encoding. */
        if (last && ((pad == 2 && (bits & 0xFFFF)) || (pad == 1 && (bits & 0xFF)))) {
            *why = "non-zero padding bits";
            return -1;
        }
    }
    return (long)(o - out);
}

/* Four bytes at a time where the machine is little-endian: each byte's two
 * nibbles spread to two bytes of a word, then every byte turned into its
 * digit at once (a nibble over 9 gets the distance to 'A' or 'a'). */
void luapay_hex_encode(char *out, const unsigned char *in, size_t n, int upper) {
    size_t i = 0;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, letters = (upper ? 'A' - '0' - 10 : 'a' - '0' - 10) * ones;
    for (; i + 4 <= n; i += 4) {
        uint32_t v;
        memcpy(&v, in + i, 4);
        uint64_t t = v;
        t = (t | t << 16) & 0x0000FFFF0000FFFFull;
        t = (t | t << 8) & 0x00FF00FF00FF00FFull;              /* byte k at byte 2k */
        uint64_t nib = (t >> 4 & 0x0F0F0F0F0F0F0F0Full) | (t & 0x0F0F0F0F0F0F0F0Full) << 8;
        uint64_t over9 = ((nib + 6 * ones) >> 4) & ones;      /* 1 where the nibble is 10..15 */
        uint64_t text = nib + '0' * ones + over9 * (letters / ones);
        memcpy(out + 2 * i, &text, 8);
    }
#endif
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

void luapay_push_encoded(lua_State *L, const unsigned char *p, size_t n, enum luapay_enc enc) {
    luaL_Buffer b;
    switch (enc) {
    case LUAPAY_RAW:
        lua_pushlstring(L, (const char *)p, n);
        return;
    case LUAPAY_HEX:
    case LUAPAY_HEX_UPPER:
        luaL_buffinit(L, &b);
        for (size_t done = 0; done < n;) { /* chunks fit any LUAL_BUFFERSIZE */
            size_t k = n - done < 128 ? n - done : 128;
            luapay_hex_encode(luaL_prepbuffer(&b), p + done, k, enc == LUAPAY_HEX_UPPER);
            luaL_addsize(&b, 2 * k);
            done += k;
        }
        luaL_pushresult(&b);
        return;
    case LUAPAY_BASE64:
        if (n <= 384) { /* a MAC or a key: straight from the stack, no buffer to set up */
            char small[512];
            lua_pushlstring(L, small, luapay_base64_encode(small, p, n));
            return;
        }
        luaL_buffinit(L, &b);
        for (size_t done = 0; done < n;) {
            size_t k = n - done < 384 ? n - done : 384; /* a multiple of 3 */
            luaL_addsize(&b, luapay_base64_encode(luaL_prepbuffer(&b), p + done, k));
            done += k;
        }
        luaL_pushresult(&b);
        return;
    }
}

static int l_base64_encode(lua_State *L) {
    size_t n;
    const char *s = luapay_check_string(L, 1, "base64_encode", "s", &n);
    luapay_push_encoded(L, (const unsigned char *)s, n, LUAPAY_BASE64);
    return 1;
}

static int l_base64_decode(lua_State *L) {
    size_t n;
    const unsigned char *s = (const unsigned char *)luapay_check_string(L, 1, "base64_decode", "s", &n);
    unsigned char small[768]; /* a signature's base64 fits: no userdata to collect */
    unsigned char *out = n / 4 * 3 + 1 <= sizeof small ? small : (unsigned char *)lua_newuserdata(L, n / 4 * 3 + 1);
    const char *why = NULL;
    long len = luapay_base64_decode(out, s, n, &why);
    if (len < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "base64_decode: %s", why);
        return 2;
    }
    lua_pushlstring(L, (const char *)out, (size_t)len);
    return 1;
}

static int l_hex_encode(lua_State *L) {
    size_t n;
    const char *s = luapay_check_string(L, 1, "hex_encode", "s", &n);
    luapay_push_encoded(L, (const unsigned char *)s, n, lua_toboolean(L, 2) ? LUAPAY_HEX_UPPER : LUAPAY_HEX);
    return 1;
}

/* core.url_encode(s [, form]) -> s percent-encoded (%XX, upper case) but for
 * RFC 3986's unreserved bytes A-Z a-z 0-9 - . _ ~; with form, as PHP's
 * urlencode (RFC 1738, what http_build_query writes): '~' encoded too and a
 * space as '+'. A string with nothing to encode comes back as it is. */
#define KEPT_ALNUM                                                                                             \
    ['0'] = 3, ['1'] = 3, ['2'] = 3, ['3'] = 3, ['4'] = 3, ['5'] = 3, ['6'] = 3, ['7'] = 3, ['8'] = 3, ['9'] = 3,   \
    ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3, ['G'] = 3, ['H'] = 3, ['I'] = 3, ['J'] = 3,   \
    ['K'] = 3, ['L'] = 3, ['M'] = 3, ['N'] = 3, ['O'] = 3, ['P'] = 3, ['Q'] = 3, ['R'] = 3, ['S'] = 3, ['T'] = 3,   \
    ['U'] = 3, ['V'] = 3, ['W'] = 3, ['X'] = 3, ['Y'] = 3, ['Z'] = 3, ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3,   \
    ['e'] = 3, ['f'] = 3, ['g'] = 3, ['h'] = 3, ['i'] = 3, ['j'] = 3, ['k'] = 3, ['l'] = 3, ['m'] = 3, ['n'] = 3,   \
    ['o'] = 3, ['p'] = 3, ['q'] = 3, ['r'] = 3, ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3, ['w'] = 3, ['x'] = 3,   \
    ['y'] = 3, ['z'] = 3
/* Bit 1: kept by RFC 3986 (unreserved), bit 2: kept by PHP's urlencode. */
static const unsigned char KEPT[256] = {KEPT_ALNUM, ['-'] = 3, ['.'] = 3, ['_'] = 3, ['~'] = 1};

static int kept(unsigned char c, int form) {
    return KEPT[c] & (form ? 2 : 1);
}

/* Each byte's encoding as url_encode writes it, in the low three bytes of
 * a word (the first lowest), and its length in the top byte: "c" or "%XY",
 * or "+" for a space in form mode. Written at compile time. */
#define HEX_DIGIT(d) ((d) < 10 ? '0' + (d) : 'A' + (d) - 10)
#define IS_ALNUM(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define KEPT_RFC(c) (IS_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define KEPT_FORM(c) (IS_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_')
#define PCT(c) ((uint32_t)'%' | (uint32_t)HEX_DIGIT((c) >> 4) << 8 | (uint32_t)HEX_DIGIT((c) & 15) << 16 | 3u << 24)
#define ENC_RFC(c) (KEPT_RFC(c) ? (uint32_t)(c) | 1u << 24 : PCT(c))
#define ENC_FORM(c) (KEPT_FORM(c) ? (uint32_t)(c) | 1u << 24 : (c) == ' ' ? (uint32_t)'+' | 1u << 24 : PCT(c))
#define R4(E, b) E(b), E(b + 1), E(b + 2), E(b + 3)
#define R16(E, b) R4(E, b), R4(E, b + 4), R4(E, b + 8), R4(E, b + 12)
#define R64(E, b) R16(E, b), R16(E, b + 16), R16(E, b + 32), R16(E, b + 48)
#define R256(E) R64(E, 0), R64(E, 64), R64(E, 128), R64(E, 192)
static const uint32_t ENCODED[2][256] = {{R256(ENC_RFC)}, {R256(ENC_FORM)}};

/* Writes s percent-encoded as url_encode does at out, which has room for
 * 3 * n + 1 bytes; returns the end. Every byte costs the same few
 * instructions, with no branch on what it is: its word is stored whole
 * (the fourth byte is overwritten by the next, or lies past the end) and
 * the cursor moves by its length. */
char *luapay_url_encode_to(char *out, const char *s, size_t n, int form) {
    const uint32_t *enc = ENCODED[form != 0];
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    for (; p < end; p++) {
        uint32_t e = enc[*p];
        memcpy(out, &e, 4);
        out += e >> 24;
    }
    return out;
}

/* Appends s percent-encoded as url_encode does: room for the worst case
 * made once, then written in place. */
void luapay_url_encode_add(luapay_buf *b, const char *s, size_t n, int form) {
    if (n > SIZE_MAX / 3 - 1 || !luapay_buf_reserve(b, 3 * n + 1)) return;
    b->len = (size_t)(luapay_url_encode_to(b->data + b->len, s, n, form) - b->data);
}

static int l_url_encode(lua_State *L) {
    size_t n;
    const char *s = luapay_check_string(L, 1, "url_encode", "s", &n);
    int form = lua_toboolean(L, 2);
    size_t i = 0;
    while (i < n && kept((unsigned char)s[i], form)) i++;
    if (i == n) {
        lua_settop(L, 1);
        return 1;
    }
    luapay_buf *b = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    luapay_buf_add(b, s, i);
    luapay_url_encode_add(b, s + i, n - i, form);
    if (b->oom) {
        luapay_scratch_done(b);
        return luaL_error(L, "url_encode: out of memory");
    }
    lua_pushlstring(L, b->data, b->len);
    luapay_scratch_done(b);
    return 1;
}

/* core.form_encode(list [, form [, prefix]]) -> prefix .. "k1=v1&k2=v2...":
 * list = {k1, v1, k2, v2, ...} of strings, in the order given, each encoded
 * as url_encode(s, form) does; prefix (e.g. "https://host/path?") as it is.
 * One string built in C where a query was a concatenation per pair. */
static int l_form_encode(lua_State *L) {
    if (lua_type(L, 1) != LUA_TTABLE)
        luapay_arg_error(L, 1, "form_encode", "list", lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 1)));
    int form = lua_toboolean(L, 2);
    size_t n = lua_rawlen(L, 1);
    if (n % 2) luapay_arg_error(L, 1, "form_encode", "list", "names and values in pairs expected (an odd length)");
    size_t plen = 0;
    const char *prefix = lua_isnoneornil(L, 3) ? "" : luapay_check_string(L, 3, "form_encode", "prefix", &plen);
    luapay_buf *b = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    luapay_buf_add(b, prefix, plen);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING) {
            luapay_scratch_done(b);
            luapay_arg_error(L, 1, "form_encode", "list",
                             lua_pushfstring(L, "item %d: string expected, got %s", (int)i, luaL_typename(L, -1)));
        }
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (i > 1) luapay_buf_add(b, i % 2 ? "&" : "=", 1);
        luapay_url_encode_add(b, s, len, form);
        lua_pop(L, 1);
    }
    if (b->oom) {
        luapay_scratch_done(b);
        return luaL_error(L, "form_encode: out of memory");
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    luapay_scratch_done(b);
    return 1;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 32;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends the n bytes at s decoded: every %XX (two hex digits) to its
 * byte, with plus every '+' to a space first; a '%' without two hex digits
 * stays. Written in place: the text never grows. */
void luapay_url_decode_add(luapay_buf *b, const char *s, size_t n, int plus) {
    if (!luapay_buf_reserve(b, n)) return;
    char *out = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int hi, lo;
        if (c == '+' && plus) {
            c = ' ';
        } else if (c == '%' && i + 2 < n && (hi = hex_value((unsigned char)s[i + 1])) >= 0 &&
                   (lo = hex_value((unsigned char)s[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        *out++ = c;
    }
    b->len = (size_t)(out - b->data);
}

/* Pushes the n bytes at s decoded (luapay_url_decode_add). */
static void push_url_decoded(lua_State *L, const char *s, size_t n, int plus) {
    size_t i = 0;
    while (i < n && s[i] != '%' && !(plus && s[i] == '+')) i++;
    if (i == n) {
        lua_pushlstring(L, s, n);
        return;
    }
    luapay_buf *b = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    luapay_buf_add(b, s, i);
    luapay_url_decode_add(b, s + i, n - i, plus);
    if (b->oom) {
        luapay_scratch_done(b);
        luaL_error(L, "url_decode: out of memory");
        return;
    }
    lua_pushlstring(L, b->data, b->len);
    luapay_scratch_done(b);
}

/* core.url_decode(s [, plus]) -> s decoded as push_url_decoded does. */
static int l_url_decode(lua_State *L) {
    size_t n;
    const char *s = luapay_check_string(L, 1, "url_decode", "s", &n);
    push_url_decoded(L, s, n, lua_toboolean(L, 2));
    return 1;
}

/* core.query_pairs(text) -> {{name, value}, ...} in the order of text: pairs
 * split at '&' (empty pieces skipped), each at its first '=' (none: the
 * value is ""), names and values decoded as url_decode(s, true) does. */
static int l_query_pairs(lua_State *L) {
    size_t n;
    const char *s = luapay_check_string(L, 1, "query_pairs", "text", &n);
    const char *p = s, *end = s + n;
    lua_newtable(L);
    int count = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            lua_createtable(L, 2, 0);
            push_url_decoded(L, p, (size_t)((eq ? eq : stop) - p), 1);
            lua_rawseti(L, -2, 1);
            if (eq) push_url_decoded(L, eq + 1, (size_t)(stop - eq - 1), 1);
            else lua_pushliteral(L, "");
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, ++count);
        }
        if (amp == NULL) break;
        p = amp + 1;
    }
    return 1;
}

const luaL_Reg luapay_encode_funcs[] = {
    {"url_decode", l_url_decode},
    {"query_pairs", l_query_pairs},
    {"url_encode", l_url_encode},
    {"form_encode", l_form_encode},
    {"base64_encode", l_base64_encode},
    {"base64_decode", l_base64_decode},
    {"hex_encode", l_hex_encode},
    {NULL, NULL},
};

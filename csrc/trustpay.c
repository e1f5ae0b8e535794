/* TrustPay's hot paths in one pass each (luapay.trustpay calls them first):
 *
 *   core.trustpay_url(schema, params, names, account_id, payment_type, secret, base_url, path)
 *       -> base_url .. path .. "?" .. the signed query | nil
 *   core.trustpay_notification(text, secret, account_id, signed_fields)
 *       -> params, method, result_code, amount | nil
 *
 * Each does only the common case, where what luapay.trustpay would answer is
 * certain: every value a plain string (and Amount an integer, for a URL),
 * the schema holds, the signature matches, every field reads. Anything else
 * gives nil, and the Lua code takes its general path, which words the error
 * (or accepts what only it handles): the answers never differ, only the cost.
 * signed_fields / names are luapay.trustpay's lists, so the order of the
 * signed values has one source. */
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "checks.h"
#include "core.h"

#define MAX_FIELDS 48
#define MAX_NAMES 32 /* in a kind's list of signed names (a notification's: 11) */

typedef struct {
    const char *k, *v;
    size_t kn, vn;
} field;

static int lit_eq(const char *s, size_t n, const char *lit) {
    size_t ln = strlen(lit);
    return n == ln && memcmp(s, lit, n) == 0;
}

/* v >= 0 in decimal into out (20 bytes); its length. */
static size_t digits(int64_t v, char *out) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* Amount as TrustPay writes it, from minor units (trustpay.amount): 0 if
 * luapay.trustpay would refuse it. out: 32 bytes. */
static size_t amount_text(int64_t v, const luapay_currency *cur, char *out) {
    static const int64_t pow10[] = {1, 10, 100, 1000, 10000};
    if (v < 0 || v > LUAPAY_MINOR_LIMIT || cur->exponent > 4) return 0;
    int64_t unit = pow10[cur->exponent], whole = v / unit, frac = v % unit;
    if (cur->exponent == 0) frac = 0;
    else if (cur->exponent == 1) frac *= 10;
    else if (cur->exponent > 2) {
        int64_t drop = pow10[cur->exponent - 2];
        if (frac % drop) return 0; /* not writable with two decimals */
        frac /= drop;
    }
    if (whole > 99999999999LL) return 0; /* Numeric(13,2) */
    size_t n = digits(whole, out);
    out[n] = '.';
    out[n + 1] = (char)('0' + frac / 10);
    out[n + 2] = (char)('0' + frac % 10);
    return n + 3;
}

/* "^%-?%d+%.%d%d$" */
static int is_amount2(const char *s, size_t n) {
    size_t i = (n > 0 && s[0] == '-') ? 1 : 0, d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    return i > d && n - i == 3 && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9' && s[i + 2] >= '0' &&
           s[i + 2] <= '9';
}

static int field_cmp(const field *a, const field *b) {
    int c = memcmp(a->k, b->k, a->kn < b->kn ? a->kn : b->kn);
    return c ? c : (a->kn > b->kn) - (a->kn < b->kn);
}

static void sort_fields(field *f, size_t n) {
    for (size_t i = 1; i < n; i++) {
        field x = f[i];
        size_t j = i;
        for (; j > 0 && field_cmp(&f[j - 1], &x) > 0; j--) f[j] = f[j - 1];
        f[j] = x;
    }
}

/* The HMAC-SHA256 of b's bytes in uppercase hex into hex (64 bytes + NUL). */
static int hmac_hex(lua_State *L, const char *secret, size_t slen, const luapay_buf *b, char *hex) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    if (!luapay_hmac(luapay_ctx_get(L), LUAPAY_SHA256, secret, slen, b->data ? b->data : "", b->len, mac, &maclen) ||
        maclen != 32)
        return 0;
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
    return 1;
}

/* core.trustpay_url: the card and wire pop-up URLs of luapay.trustpay (its
 * normalize, schema check, trustpay.message, trustpay.signature and
 * http.encode_query in one pass). */
static int l_trustpay_url(lua_State *L) {
    size_t accn, secn, basen, pathn;
    lua_settop(L, 8);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *account = luapay_check_string(L, 4, "trustpay_url", "account_id", &accn);
    lua_Integer ptype = luaL_checkinteger(L, 5);
    const char *secret = luapay_check_string(L, 6, "trustpay_url", "secret", &secn);
    const char *base = luapay_check_string(L, 7, "trustpay_url", "base_url", &basen);
    const char *path = luapay_check_string(L, 8, "trustpay_url", "path", &pathn);
    if (lua_getmetatable(L, 2)) return 0; /* pairs may differ from next */

    field f[MAX_FIELDS];
    size_t nf = 0;
    int64_t amount = -1;
    const char *currency = NULL;
    size_t curn = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING || nf >= MAX_FIELDS - 3) return 0;
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        if (lua_type(L, -1) == LUA_TSTRING) {
            f[nf].v = lua_tolstring(L, -1, &f[nf].vn);
            if (lit_eq(k, kn, "Currency")) currency = f[nf].v, curn = f[nf].vn;
        } else if (lit_eq(k, kn, "Amount") && luapay_read_minor(L, -1, &amount) == LUAPAY_MINOR_OK && amount >= 0) {
            f[nf].v = NULL; /* written below, with the currency */
            f[nf].vn = 0;
        } else {
            return 0; /* normalize's conversions, or a refusal: the general path */
        }
        f[nf].k = k;
        f[nf].kn = kn;
        nf++;
        lua_pop(L, 1);
    }
    if (!luapay_schema_holds(L, 1, 2)) return 0;

    char amount_buf[32], ptype_buf[24];
    size_t amount_n = 0;
    if (amount >= 0) {
        const luapay_currency *cur = currency ? luapay_currency_find(currency, curn) : NULL;
        if (cur == NULL || (amount_n = amount_text(amount, cur, amount_buf)) == 0) return 0;
        for (size_t i = 0; i < nf; i++)
            if (f[i].v == NULL) f[i].v = amount_buf, f[i].vn = amount_n;
    }
    if (ptype < 0 || ptype > 99) return luaL_error(L, "trustpay_url: payment_type out of range");
    size_t ptype_n = digits((int64_t)ptype, ptype_buf);

    /* the signed values, in the kind's order, joined by "/" */
    luapay_buf *msg = luapay_scratch(L, LUAPAY_SCRATCH_CANON_OUT);
    size_t nnames = lua_rawlen(L, 3);
    int first = 1, ok = 1;
    for (size_t i = 1; i <= nnames && ok; i++) {
        lua_rawgeti(L, 3, (int)i);
        size_t nn;
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &nn) : NULL;
        const char *v = NULL;
        size_t vn = 0;
        if (name == NULL) {
            ok = 0;
            break;
        }
        if (lit_eq(name, nn, "AccountId")) v = account, vn = accn;
        else if (lit_eq(name, nn, "PaymentType")) v = ptype_buf, vn = ptype_n;
        else
            for (size_t j = 0; j < nf; j++)
                if (f[j].kn == nn && memcmp(f[j].k, name, nn) == 0) {
                    v = f[j].v, vn = f[j].vn;
                    if (lit_eq(name, nn, "Amount") && v != amount_buf && !is_amount2(v, vn)) ok = 0;
                    break;
                }
        lua_pop(L, 1);
        if (vn == 0) { /* absent or "": skipped, unless required (the schema sees to them) */
            if (lit_eq(name, nn, "Amount") || lit_eq(name, nn, "Currency") || lit_eq(name, nn, "Reference")) ok = 0;
            continue;
        }
        if (!first) luapay_buf_add(msg, "/", 1);
        luapay_buf_add(msg, v, vn);
        first = 0;
    }
    char sig[65];
    if (!ok || msg->oom || !hmac_hex(L, secret, secn, msg, sig)) {
        luapay_scratch_done(msg);
        return 0;
    }
    luapay_scratch_done(msg);

    /* the query: every non-empty field, AccountId, PaymentType, Signature, in byte order */
    size_t nq = 0;
    for (size_t i = 0; i < nf; i++)
        if (f[i].vn > 0) f[nq++] = f[i];
    f[nq++] = (field){"AccountId", account, 9, accn};
    f[nq++] = (field){"PaymentType", ptype_buf, 11, ptype_n};
    f[nq++] = (field){"Signature", sig, 9, 64};
    sort_fields(f, nq);
    luapay_buf *out = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    luapay_buf_add(out, base, basen);
    luapay_buf_add(out, path, pathn);
    luapay_buf_add(out, "?", 1);
    for (size_t i = 0; i < nq; i++) {
        if (i) luapay_buf_add(out, "&", 1);
        luapay_url_encode_add(out, f[i].k, f[i].kn, 0);
        luapay_buf_add(out, "=", 1);
        luapay_url_encode_add(out, f[i].v, f[i].vn, 0);
    }
    if (out->oom) {
        luapay_scratch_done(out);
        return luaL_error(L, "trustpay_url: out of memory");
    }
    lua_pushlstring(L, out->data, out->len);
    luapay_scratch_done(out);
    return 1;
}

#ifndef __SSE2__
/* A hex digit in upper case, 0 for any other byte. */
static const char HEX_UPPER[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6', ['7'] = '7',
    ['8'] = '8', ['9'] = '9', ['A'] = 'A', ['B'] = 'B', ['C'] = 'C', ['D'] = 'D', ['E'] = 'E', ['F'] = 'F',
    ['a'] = 'A', ['b'] = 'B', ['c'] = 'C', ['d'] = 'D', ['e'] = 'E', ['f'] = 'F'};
#endif

/* The 64 bytes at s, hex digits, into out in upper case; 0 if one is not
 * a hex digit. SSE2: sixteen at a time (bytes >= 0x80 compare as negative:
 * never digits). */
static int hex_upper64(const char *s, char *out) {
#ifdef __SSE2__
    const __m128i d0 = _mm_set1_epi8('0' - 1), d9 = _mm_set1_epi8('9' + 1), la = _mm_set1_epi8('a' - 1),
                  lf = _mm_set1_epi8('f' + 1), bit = _mm_set1_epi8(0x20);
    for (int i = 0; i < 64; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i)), l = _mm_or_si128(x, bit);
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, d0), _mm_cmpgt_epi8(d9, x));
        __m128i af = _mm_and_si128(_mm_cmpgt_epi8(l, la), _mm_cmpgt_epi8(lf, l));
        if (_mm_movemask_epi8(_mm_or_si128(digit, af)) != 0xFFFF) return 0;
        _mm_storeu_si128((__m128i *)(void *)(out + i), _mm_andnot_si128(_mm_and_si128(af, bit), x));
    }
    return 1;
#else
    char bad = 0;
    for (size_t i = 0; i < 64; i++) {
        out[i] = HEX_UPPER[(unsigned char)s[i]];
        bad |= (char)(out[i] == 0);
    }
    return !bad;
#endif
}

/* Amount ("^%-?%d+%.%d%d$") in minor units of a two-decimal currency, as
 * trustpay.minor reads it; 0 if it does not (the general path words why). */
static int minor_of(const char *s, size_t n, const char *cur, size_t curn, int64_t *out) {
    const luapay_currency *c = luapay_currency_find(cur, curn);
    if (c == NULL || c->exponent != 2 || !is_amount2(s, n)) return 0;
    int neg = s[0] == '-';
    int64_t v = 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        if (s[i] == '.') continue;
        v = v * 10 + (s[i] - '0');
        if (v > LUAPAY_MINOR_LIMIT) return 0;
    }
    if (neg && v == 0) return 0; /* -0: a float -0 under LuaJIT */
    *out = neg ? -v : v;
    return 1;
}

static void push_int(lua_State *L, int64_t v) {
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* The parameters a notification's check reads, and the other signed ones, by name. */
enum { P_ACCOUNT, P_AMOUNT, P_CURRENCY, P_REFERENCE, P_TYPE, P_RESULT, P_PAYMENT, P_REQUEST, P_SIGNATURE,
       P_CARDID, P_CARDMASK, P_CARDEXP, P_AUTH, P_COUNTER, P_COUNTERNAME, P_ORDER, P_REFUSE, P_NKNOWN };
static const char *const KNOWN[P_NKNOWN] = {
    "AccountId", "Amount",   "Currency",       "Reference",  "Type",           "ResultCode",
    "PaymentId", "PaymentRequestId", "Signature", "CardId",  "CardMask",       "CardExpiration",
    "AuthNumber", "CounterAccount", "CounterAccountName", "OrderId", "RefuseReason"};

/* Which of them k is (by length, then a byte), or -1. */
static int known_of(const char *k, size_t kn) {
    int i;
    switch (kn) {
    case 4: i = P_TYPE; break;
    case 6: i = k[0] == 'A' ? P_AMOUNT : P_CARDID; break;
    case 7: i = P_ORDER; break;
    case 8: i = k[0] == 'C' && k[1] == 'u' ? P_CURRENCY : P_CARDMASK; break;
    case 9: i = k[0] == 'A' ? P_ACCOUNT : k[0] == 'R' ? P_REFERENCE : k[0] == 'P' ? P_PAYMENT : P_SIGNATURE; break;
    case 10: i = k[0] == 'R' ? P_RESULT : P_AUTH; break;
    case 12: i = P_REFUSE; break;
    case 14: i = k[1] == 'a' ? P_CARDEXP : P_COUNTER; break;
    case 16: i = P_REQUEST; break;
    case 18: i = P_COUNTERNAME; break;
    default: return -1;
    }
    return memcmp(k, KNOWN[i], kn) == 0 ? i : -1;
}

/* Pushes t[i] (t at idx); whether it is a string. */
static int rawgeti_string(lua_State *L, int idx, int i) {
#if LUA_VERSION_NUM >= 503
    return lua_rawgeti(L, idx, i) == LUA_TSTRING;
#else
    lua_rawgeti(L, idx, i);
    return lua_type(L, -1) == LUA_TSTRING;
#endif
}

/* A notification's fields as luapay.trustpay's check wants them (at: each
 * known name's field + 1, 0 if absent), and its signature right (the
 * signed names from the list at names): the method's first letter ('w' or
 * 'c'), with the result code and the amount; 0 for anything else. */
static int notification_holds(lua_State *L, const field *f, size_t nf, const int *at, const char *account,
                              size_t accn, const char *secret, size_t secn, int names, int64_t *code,
                              int64_t *amount) {
#define VAL(name) (f[at[name] - 1])
    char method = at[P_PAYMENT] ? 'w' : at[P_REQUEST] ? 'c' : 0;
    if (method == 0 || !at[P_SIGNATURE] || !at[P_TYPE] || !at[P_RESULT] || !at[P_AMOUNT] || !at[P_CURRENCY] ||
        !at[P_ACCOUNT] || VAL(P_SIGNATURE).vn != 64)
        return 0;
    const char *sig = VAL(P_SIGNATURE).v, *rc = VAL(P_RESULT).v;
    char got[64];
    if (!hex_upper64(sig, got)) return 0;
    if (VAL(P_ACCOUNT).vn != accn || memcmp(VAL(P_ACCOUNT).v, account, accn) != 0) return 0;
    if (!lit_eq(VAL(P_TYPE).v, VAL(P_TYPE).vn, "CRDT") && !lit_eq(VAL(P_TYPE).v, VAL(P_TYPE).vn, "DBIT")) return 0;
    size_t rn = VAL(P_RESULT).vn;
    if (rn == 0 || rn > 9) return 0;
    *code = 0;
    for (size_t i = 0; i < rn; i++) {
        if (rc[i] < '0' || rc[i] > '9') return 0;
        *code = *code * 10 + (rc[i] - '0');
    }
    if (!minor_of(VAL(P_AMOUNT).v, VAL(P_AMOUNT).vn, VAL(P_CURRENCY).v, VAL(P_CURRENCY).vn, amount)) return 0;
#undef VAL

    /* the signed values of the kind, absent and empty ones skipped, joined by "/" */
    lua_getfield(L, names, method == 'w' ? "wire_notification" : "card_notification");
    if (!lua_istable(L, -1)) return 0;
    int list = lua_gettop(L);
    size_t nnames = lua_rawlen(L, list), total = 0, nsel = 0, sel[MAX_NAMES];
    if (nnames > MAX_NAMES || !lua_checkstack(L, (int)nnames)) return 0;
    for (size_t i = 1; i <= nnames; i++) { /* each name stays on the stack until the end */
        size_t nn = 0, j;
        if (!rawgeti_string(L, list, (int)i)) return 0;
        const char *name = lua_tolstring(L, -1, &nn);
        int known = known_of(name, nn);
        if (known >= 0) j = at[known] ? (size_t)at[known] - 1 : nf;
        else
            for (j = 0; j < nf; j++)
                if (f[j].kn == nn && memcmp(f[j].k, name, nn) == 0) break;
        if (j == nf || f[j].vn == 0) continue;
        total += f[j].vn + (nsel > 0);
        sel[nsel++] = j;
    }
    lua_settop(L, list - 1);
    luapay_buf *msg = luapay_scratch(L, LUAPAY_SCRATCH_CANON_OUT);
    int ok = luapay_buf_reserve(msg, total);
    if (ok) {
        char *out = msg->data;
        for (size_t i = 0; i < nsel; i++) {
            if (i > 0) *out++ = '/';
            memcpy(out, f[sel[i]].v, f[sel[i]].vn);
            out += f[sel[i]].vn;
        }
        msg->len = total;
    }
    char want[65];
    ok = ok && !msg->oom && hmac_hex(L, secret, secn, msg, want);
    luapay_scratch_done(msg);
    unsigned char diff = 0; /* in constant time */
    for (size_t i = 0; i < 64; i++) diff |= (unsigned char)(want[i] ^ got[i]);
    return ok && diff == 0 ? method : 0;
}

/* Bytes that end a name or a value, or make it need decoding. */
static const unsigned char QUERY_CLASS[256] = {['&'] = 1, ['='] = 1, ['%'] = 1, ['+'] = 1};

/* The first of those bytes at or after c, or end: sixteen bytes at a time
 * (SSE2), then eight (each of them a zero byte of x ^ the byte repeated;
 * the lowest flag of (y - ones) & ~y & highs is always a true zero byte,
 * the first in memory when little-endian), then one. */
static inline const char *next_special(const char *c, const char *end) {
#ifdef __SSE2__
    const __m128i amp = _mm_set1_epi8('&'), eq = _mm_set1_epi8('='), pct = _mm_set1_epi8('%'),
                  plus = _mm_set1_epi8('+');
    for (; end - c >= 16; c += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)c);
        int hit = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, amp), _mm_cmpeq_epi8(x, eq)),
                                                 _mm_or_si128(_mm_cmpeq_epi8(x, pct), _mm_cmpeq_epi8(x, plus))));
        if (hit) return c + __builtin_ctz((unsigned)hit);
    }
#endif
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (; end - c >= 8; c += 8) {
        uint64_t x, a, b, p, q, hit;
        memcpy(&x, c, 8);
        a = x ^ (ones * '&'), b = x ^ (ones * '='), p = x ^ (ones * '%'), q = x ^ (ones * '+');
        hit = (((a - ones) & ~a) | ((b - ones) & ~b) | ((p - ones) & ~p) | ((q - ones) & ~q)) & highs;
        if (hit) return c + (__builtin_ctzll(hit) >> 3);
    }
#endif
    while (c < end && !QUERY_CLASS[(unsigned char)*c]) c++;
    return c;
}

/* core.trustpay_notification: luapay.trustpay's notification check for a
 * query string in one pass: the query read (http.decode_query), the fields
 * the check reads (signature, account, Type, ResultCode, Amount), the signed
 * message and its HMAC. Names are never percent-encoded on this path: a
 * query that encodes one takes the general path. */
static int l_trustpay_notification(lua_State *L) {
    size_t n, secn, accn;
    lua_settop(L, 4);
    const char *s = luapay_check_string(L, 1, "trustpay_notification", "text", &n);
    const char *secret = luapay_check_string(L, 2, "trustpay_notification", "secret", &secn);
    const char *account = luapay_check_string(L, 3, "trustpay_notification", "account_id", &accn);
    luaL_checktype(L, 4, LUA_TTABLE);
    const char *end = s + n, *q;
    for (q = s; q < end && (*q == ' ' || (*q >= '\t' && *q <= '\r')); q++) {}
    if (q < end && *q == '{') return 0; /* JSON: the general path */
    if ((q = memchr(s, '?', n)) != NULL) s = q + 1;
    if ((q = memchr(s, '#', (size_t)(end - s))) != NULL) end = q;

    /* The pairs, split at "&" and at each one's first "=", a name repeated
     * with the same text kept once; a value still encoded (coded) until pushed. */
    field f[MAX_FIELDS];
    unsigned char coded[MAX_FIELDS];
    size_t nf = 0;
    uint64_t seen = 0; /* a bit per name length and first byte: most names need no comparing */
    for (const char *p = s; p < end;) {
        const char *c = next_special(p, end), *eq = NULL;
        int enc = 0;
        while (c < end && *c != '&') {
            if (*c == '=' && eq == NULL) eq = c;
            else if (*c != '=') {
                if (eq == NULL) return 0; /* an encoded name */
                enc = 1;
            }
            c = next_special(c + 1, end);
        }
        const char *k = p, *v = eq ? eq + 1 : c;
        size_t kn = (size_t)((eq ? eq : c) - p), vn = (size_t)(c - v), i = nf;
        p = c < end ? c + 1 : end;
        if (kn == 0) continue; /* an empty name is skipped (an empty piece too) */
        uint64_t bit = (uint64_t)1 << ((kn * 7 + (unsigned char)k[0]) & 63);
        if (seen & bit)
            for (i = 0; i < nf; i++)
                if (f[i].kn == kn && memcmp(f[i].k, k, kn) == 0) break;
        seen |= bit;
        if (i < nf) {
            if (f[i].vn != vn || memcmp(f[i].v, v, vn) != 0) return 0; /* the general path decides */
            continue;
        }
        if (nf == MAX_FIELDS) return 0;
        f[nf] = (field){k, v, kn, vn};
        coded[nf++] = (unsigned char)enc;
    }

    /* The parameters (5), decoded as http.decode_query does; at: the
     * known names' fields, + 1 (0: absent). */
    int at[P_NKNOWN] = {0};
    lua_createtable(L, 0, (int)nf);
    luapay_buf *b = luapay_scratch(L, LUAPAY_SCRATCH_FORM); /* the decoded values, one after another */
    for (size_t i = 0; i < nf; i++) {
        if (coded[i]) {
            size_t off = b->len;
            luapay_url_decode_add(b, f[i].v, f[i].vn, 1);
            if (b->oom) {
                luapay_scratch_done(b);
                return luaL_error(L, "trustpay_notification: out of memory");
            }
            f[i].v = NULL; /* found at off once b stops growing */
            f[i].vn = b->len - off;
            lua_pushlstring(L, b->data + off, f[i].vn);
        } else {
            lua_pushlstring(L, f[i].v, f[i].vn);
        }
        int known = known_of(f[i].k, f[i].kn);
        if (known >= 0) {
            lua_setfield(L, 5, KNOWN[known]); /* a name the Lua state has at hand */
            at[known] = (int)i + 1;
        } else {
            lua_pushlstring(L, f[i].k, f[i].kn);
            lua_insert(L, -2);
            lua_rawset(L, 5);
        }
    }
    for (size_t i = 0, off = 0; i < nf; i++)
        if (f[i].v == NULL) f[i].v = b->data + off, off += f[i].vn;
    int64_t code = 0, amount = 0;
    char method = (char)notification_holds(L, f, nf, at, account, accn, secret, secn, 4, &code, &amount);
    luapay_scratch_done(b);
    if (method == 0) return 0;
    lua_pushvalue(L, 5);
    lua_pushstring(L, method == 'w' ? "wire" : "card");
    push_int(L, code);
    push_int(L, amount);
    return 4;
}

const luaL_Reg luapay_trustpay_funcs[] = {
    {"trustpay_url", l_trustpay_url},
    {"trustpay_notification", l_trustpay_notification},
    {NULL, NULL},
};

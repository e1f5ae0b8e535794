/* TrustPay's hot paths in one pass each (luapay.trustpay calls them first):
 *
 *   core.trustpay_url(plan, params, account_id, secret, base_url)
 *       -> base_url .. path .. "?" .. the signed query | nil
 *       (plan: core.trustpay_url_plan(schema, names, required, payment_type, path, roles), once per builder)
 *   core.trustpay_notification(text, secret, account_id, plan)
 *       -> params, method, result_code, amount | nil
 *       (plan: core.trustpay_notification_plan(roles, types, methods), once)
 *
 * Each does only the common case, where what luapay.trustpay would answer is
 * certain: every value a plain string (and Amount an integer, for a URL),
 * the schema holds, the signature matches, every field reads. Anything else
 * gives nil, and the Lua code takes its general path, which words the error
 * (or accepts what only it handles): the answers never differ, only the cost.
 * Every field name is luapay.trustpay's, handed over as data when a plan is
 * made (the C core knows no provider's field names): roles names the fields
 * these passes read ({account, payment_type, signature, amount, currency,
 * type, result}), and the signed names are luapay.trustpay's lists, so
 * the order of the signed values has one source. */
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "checks.h"
#include "core.h"
#include "names.h"

#define MAX_FIELDS 48
#define MAX_NAMES 32 /* in a kind's list of signed names (a notification's: 11) */

typedef struct {
    const char *k, *v;
    size_t kn, vn;
} field;

/* roles[key] (roles at its argument's index): a non-empty string, which
 * roles holds while the plan is made. fn's argument error if not. */
static luapay_text role(lua_State *L, int roles, const char *fn, const char *key) {
    luapay_text t = {NULL, 0};
    lua_getfield(L, roles, key);
    if (lua_type(L, -1) == LUA_TSTRING) t.s = lua_tolstring(L, -1, &t.n);
    if (t.n == 0)
        luapay_arg_error(L, roles, fn, "roles", lua_pushfstring(L, "roles.%s: a field name expected", key));
    lua_pop(L, 1);
    return t;
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
    luapay_hex_encode(hex, mac, 32, 1);
    hex[64] = '\0';
    return 1;
}

/* ---- core.trustpay_url ------------------------------------------------
 * What does not change between calls of one URL builder is worked out once,
 * in a plan: the schema's fields (in byte order, so also the query's order),
 * where each signed value comes from, the query's names already encoded. A
 * call then reads the parameters once (lua_next), checks them against the
 * schema without another Lua call (luapay_schema_holds_values), and writes
 * the message and the URL from the values in hand. */

#define PLAN_MT "luapay.trustpay_url_plan"
#define NAME_PAD 24

/* Where a value comes from: a schema field's index, or one of these. */
enum { SLOT_NONE = -1, SLOT_ACCOUNT = -2, SLOT_PTYPE = -3, SLOT_SIGNATURE = -4 };

typedef struct {
    int slot;
    int required;   /* signed: absent or empty leaves the call to the general path */
    size_t at, len; /* query: "&Name=" (encoded) in the plan's names text */
} url_entry;

typedef struct {
    luapay_schema *S; /* kept alive by the plan's uservalue */
    int nfields, amount, currency; /* the schema's field count; Amount's and Currency's indexes (-1: none) */
    int nsigned, nquery;
    url_entry sig[MAX_FIELDS], query[MAX_FIELDS];
    const char *names, *path; /* Lua strings in the uservalue; names padded with NAME_PAD bytes */
    size_t namesn, pathn, ptypen;
    char ptype[24];
} url_plan;

/* The names a URL's query holds besides the schema's fields. */
typedef struct {
    luapay_text account, ptype, signature;
} url_roles;

static int slot_of(const luapay_schema *S, const url_roles *r, const char *name, size_t n) {
    if (luapay_text_eq(name, n, r->account)) return SLOT_ACCOUNT;
    if (luapay_text_eq(name, n, r->ptype)) return SLOT_PTYPE;
    int i = luapay_schema_find(S, name, n);
    return i >= 0 ? i : SLOT_NONE;
}

/* core.trustpay_url_plan(schema, names, required, payment_type, path,
 * roles) -> plan: for one URL builder of luapay.trustpay, its schema, the
 * signed names in order, those the message cannot do without, the
 * PaymentType, the endpoint's path, and the names of the account, payment
 * type, signature, amount and currency fields (roles). */
static int l_trustpay_url_plan(lua_State *L) {
    static const char *const fn = "trustpay_url_plan";
    lua_settop(L, 6);
    luapay_schema *S = luapay_schema_test(L, 1);
    int nf = S ? luapay_schema_nfields(S) : -1;
    if (nf < 0) luapay_arg_error(L, 1, fn, "schema", "an open compiled schema of an object expected");
    if (nf > MAX_FIELDS - 3) luapay_arg_error(L, 1, fn, "schema", "too many fields");
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer ptype = luaL_checkinteger(L, 4);
    if (ptype < 0 || ptype > 99) luapay_arg_error(L, 4, fn, "payment_type", "0..99 expected");
    size_t pathn;
    luapay_check_string(L, 5, fn, "path", &pathn);
    luaL_checktype(L, 6, LUA_TTABLE);
    url_roles r = {role(L, 6, fn, "account"), role(L, 6, fn, "payment_type"), role(L, 6, fn, "signature")};
    luapay_text amount = role(L, 6, fn, "amount"), currency = role(L, 6, fn, "currency");

    url_plan *P = (url_plan *)lua_newuserdata(L, sizeof *P); /* 7 */
    memset(P, 0, sizeof *P);
    P->S = S;
    P->nfields = nf;
    P->amount = luapay_schema_find(S, amount.s, amount.n);
    P->currency = luapay_schema_find(S, currency.s, currency.n);
    P->ptypen = digits((int64_t)ptype, P->ptype);

    size_t nnames = lua_rawlen(L, 2), nreq = lua_rawlen(L, 3);
    if (nnames > MAX_FIELDS) luapay_arg_error(L, 2, fn, "names", "too many names");
    for (size_t i = 1; i <= nnames; i++) {
        size_t n;
        lua_rawgeti(L, 2, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING) luapay_arg_error(L, 2, fn, "names", "a list of strings expected");
        const char *name = lua_tolstring(L, -1, &n);
        url_entry *e = &P->sig[P->nsigned++];
        e->slot = slot_of(S, &r, name, n);
        for (size_t j = 1; j <= nreq && !e->required; j++) {
            lua_rawgeti(L, 3, (int)j);
            e->required = lua_rawequal(L, -1, -2);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }

    /* the query: every field, the account, the payment type, the signature, in byte order */
    field f[MAX_FIELDS];
    int nq = 0;
    for (int i = 0; i < nf; i++) {
        f[nq].k = luapay_schema_field(S, i, &f[nq].kn);
        if (slot_of(S, &r, f[nq].k, f[nq].kn) != i || luapay_text_eq(f[nq].k, f[nq].kn, r.signature))
            luapay_arg_error(L, 1, fn, "schema", "declares the account, payment type or signature field");
        f[nq].vn = (size_t)i; /* the slot rides in vn through the sort */
        nq++;
    }
    f[nq++] = (field){r.account.s, NULL, r.account.n, (size_t)SLOT_ACCOUNT};
    f[nq++] = (field){r.ptype.s, NULL, r.ptype.n, (size_t)SLOT_PTYPE};
    f[nq++] = (field){r.signature.s, NULL, r.signature.n, (size_t)SLOT_SIGNATURE};
    sort_fields(f, (size_t)nq);
    luapay_buf *b = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    for (int i = 0; i < nq; i++) {
        url_entry *e = &P->query[i];
        e->slot = (int)f[i].vn;
        e->at = b->len;
        luapay_buf_add(b, "&", 1);
        luapay_url_encode_add(b, f[i].k, f[i].kn, 0);
        luapay_buf_add(b, "=", 1);
        e->len = b->len - e->at;
    }
    P->nquery = nq;
    P->namesn = b->len;
    static const char pad[NAME_PAD];
    luapay_buf_add(b, pad, NAME_PAD);
    if (b->oom) {
        luapay_scratch_done(b);
        return luaL_error(L, "%s: out of memory", fn);
    }
    lua_createtable(L, 3, 0); /* 8: the uservalue */
    lua_pushvalue(L, 1);
    lua_rawseti(L, 8, 1);
    lua_pushlstring(L, b->data, b->len);
    luapay_scratch_done(b);
    P->names = lua_tostring(L, -1);
    lua_rawseti(L, 8, 2);
    lua_pushvalue(L, 5);
    P->path = lua_tostring(L, -1);
    P->pathn = pathn;
    lua_rawseti(L, 8, 3);
    luapay_setuservalue(L, 7);
    luaL_newmetatable(L, PLAN_MT); /* or the one made before */
    lua_setmetatable(L, 7);
    return 1;
}

/* core.trustpay_url(plan, params, account_id, secret, base_url)
 *     -> base_url .. path .. "?" .. the signed query | nil (params of any type):
 * the card and wire pop-up URLs of luapay.trustpay (its normalize, schema
 * check, trustpay.message, trustpay.signature and http.encode_query in one
 * pass). */
static int l_trustpay_url(lua_State *L) {
    size_t accn, secn, basen;
    url_plan *P = (url_plan *)luaL_checkudata(L, 1, PLAN_MT);
    const char *account = luapay_check_string(L, 3, "trustpay_url", "account_id", &accn);
    const char *secret = luapay_check_string(L, 4, "trustpay_url", "secret", &secn);
    const char *base = luapay_check_string(L, 5, "trustpay_url", "base_url", &basen);
    lua_settop(L, 5);
    if (!lua_istable(L, 2) || lua_getmetatable(L, 2)) return 0; /* not a table, or pairs may differ from next */
    if (luapay_schema_nfields(P->S) != P->nfields) return 0; /* closed: the general path says so */

    /* one read of the parameters: each a declared field, a string (or Amount in minor units) */
    luapay_field_value v[MAX_FIELDS];
    memset(v, 0, (size_t)P->nfields * sizeof v[0]);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        size_t kn;
        if (lua_type(L, -2) != LUA_TSTRING) return 0;
        const char *k = lua_tolstring(L, -2, &kn);
        int i = luapay_schema_find(P->S, k, kn);
        if (i < 0) return 0; /* unknown: the general path names it */
        if (lua_type(L, -1) == LUA_TSTRING) {
            v[i].kind = LUAPAY_VALUE_STRING;
            v[i].s = lua_tolstring(L, -1, &v[i].n); /* the table holds it */
        } else if (i == P->amount && luapay_read_minor(L, -1, &v[i].minor) == LUAPAY_MINOR_OK && v[i].minor >= 0) {
            v[i].kind = LUAPAY_VALUE_MINOR;
        } else {
            return 0; /* normalize's conversions, or a refusal: the general path */
        }
        lua_pop(L, 1);
    }
    if (!luapay_schema_holds_values(P->S, v)) return 0;

    char amount_buf[32];
    if (P->amount >= 0 && v[P->amount].kind == LUAPAY_VALUE_MINOR) {
        luapay_field_value *a = &v[P->amount], *c = P->currency >= 0 ? &v[P->currency] : NULL;
        const luapay_currency *cur =
            c && c->kind == LUAPAY_VALUE_STRING ? luapay_currency_find(c->s, c->n) : NULL;
        size_t n = cur ? amount_text(a->minor, cur, amount_buf) : 0;
        if (n == 0) return 0;
        a->kind = LUAPAY_VALUE_STRING;
        a->s = amount_buf;
        a->n = n;
    } else if (P->amount >= 0 && v[P->amount].kind == LUAPAY_VALUE_STRING &&
               !is_amount2(v[P->amount].s, v[P->amount].n)) {
        return 0;
    }

    /* the signed values, in the kind's order, joined by "/"; absent and
     * empty ones skipped, unless required (then the general path words it) */
    luapay_buf *msg = luapay_scratch(L, LUAPAY_SCRATCH_CANON_OUT);
    int first = 1;
    for (int i = 0; i < P->nsigned; i++) {
        const url_entry *e = &P->sig[i];
        const char *s = NULL;
        size_t n = 0;
        if (e->slot == SLOT_ACCOUNT) s = account, n = accn;
        else if (e->slot == SLOT_PTYPE) s = P->ptype, n = P->ptypen;
        else if (e->slot >= 0 && v[e->slot].kind == LUAPAY_VALUE_STRING) s = v[e->slot].s, n = v[e->slot].n;
        if (n == 0) {
            if (!e->required) continue;
            luapay_scratch_done(msg);
            return 0;
        }
        if (!first) luapay_buf_add(msg, "/", 1);
        luapay_buf_add(msg, s, n);
        first = 0;
    }
    char sig[65];
    int ok = !msg->oom && hmac_hex(L, secret, secn, msg, sig);
    luapay_scratch_done(msg);
    if (!ok) return 0;

    /* the query: every non-empty field, AccountId, PaymentType, Signature,
     * in byte order (the plan's); room for the worst case made once, then
     * written in place */
    size_t room = basen + P->pathn + 1 + P->namesn + NAME_PAD + 3 * accn + 1 + 64 + P->ptypen;
    for (int i = 0; i < P->nfields; i++) room += 3 * v[i].n + 1; /* luapay_url_encode_to's room */
    luapay_buf *out = luapay_scratch(L, LUAPAY_SCRATCH_FORM);
    if (!luapay_buf_reserve(out, room)) {
        luapay_scratch_done(out);
        return luaL_error(L, "trustpay_url: out of memory");
    }
    char *o = out->data;
    memcpy(o, base, basen);
    o += basen;
    memcpy(o, P->path, P->pathn);
    o += P->pathn;
    *o++ = '?';
    first = 1;
    for (int i = 0; i < P->nquery; i++) {
        const url_entry *e = &P->query[i];
        if (e->slot >= 0 && v[e->slot].n == 0) continue; /* absent or "" */
        const char *name = P->names + e->at + first; /* no "&" before the first */
        size_t namen = e->len - (size_t)first;
        memcpy(o, name, NAME_PAD); /* a short name in one fixed-size copy: the text is padded */
        if (namen > NAME_PAD) memcpy(o, name, namen);
        o += namen;
        first = 0;
        if (e->slot >= 0) {
            o = luapay_url_encode_to(o, v[e->slot].s, v[e->slot].n, 0);
        } else if (e->slot == SLOT_ACCOUNT) {
            o = luapay_url_encode_to(o, account, accn, 0);
        } else if (e->slot == SLOT_PTYPE) {
            memcpy(o, P->ptype, P->ptypen); /* digits */
            o += P->ptypen;
        } else {
            memcpy(o, sig, 64); /* hex digits */
            o += 64;
        }
    }
    out->len = (size_t)(o - out->data);
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

/* ---- core.trustpay_notification_plan --------------------------------
 * A notification's names, from luapay.trustpay: the fields the check reads
 * (roles), the values the type field may take, and the methods: the field
 * whose presence names each (the first present wins), the name the call
 * returns for it and its signed names in order. Every name is kept once,
 * found by a hash of its length and ends (open addressing). */
#define NOTE_MT "luapay.trustpay_notification_plan"
#define NOTE_TYPES 4
#define NOTE_METHODS 4

typedef struct {
    int field; /* the name (its index) that names the method */
    luapay_text name; /* returned for it */
    int nsigned;
    unsigned char sig[MAX_NAMES]; /* the signed names' indexes, in order */
} note_method;

typedef struct {
    luapay_names names; /* strings the plan's uservalue holds */
    int account, amount, currency, signature, type, result;
    luapay_text types[NOTE_TYPES];
    int ntypes, nmethods;
    note_method method[NOTE_METHODS];
} note_plan;

static int plan_role(lua_State *L, note_plan *P, int uv, const char *key) {
    luapay_text t = role(L, 1, "trustpay_notification_plan", key);
    lua_pushlstring(L, t.s, t.n);
    return luapay_names_take(L, &P->names, uv, "trustpay_notification_plan", 1, "roles");
}

/* core.trustpay_notification_plan(roles, types, methods) -> plan. roles:
 * {account, amount, currency, signature, type, result}, field names;
 * types: the values the type field may take; methods: a list of {field,
 * name, signed}, signed a list of field names. */
static int l_trustpay_notification_plan(lua_State *L) {
    static const char *const fn = "trustpay_notification_plan";
    lua_settop(L, 3);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    note_plan *P = (note_plan *)lua_newuserdata(L, sizeof *P); /* 4 */
    memset(P, 0, sizeof *P);
    lua_createtable(L, LUAPAY_NAMES_MAX + NOTE_TYPES + NOTE_METHODS, 0); /* 5: the uservalue, holding every text */
    P->account = plan_role(L, P, 5, "account");
    P->amount = plan_role(L, P, 5, "amount");
    P->currency = plan_role(L, P, 5, "currency");
    P->signature = plan_role(L, P, 5, "signature");
    P->type = plan_role(L, P, 5, "type");
    P->result = plan_role(L, P, 5, "result");
    size_t ntypes = lua_rawlen(L, 2), nmethods = lua_rawlen(L, 3);
    if (ntypes == 0 || ntypes > NOTE_TYPES) luapay_arg_error(L, 2, fn, "types", "1 to 4 values expected");
    for (size_t i = 0; i < ntypes; i++) {
        luapay_text *t = &P->types[P->ntypes++];
        lua_rawgeti(L, 2, (int)i + 1);
        t->s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &t->n) : NULL;
        if (t->s == NULL) luapay_arg_error(L, 2, fn, "types", "a list of strings expected");
        lua_rawseti(L, 5, LUAPAY_NAMES_MAX + (int)i + 1);
    }
    if (nmethods == 0 || nmethods > NOTE_METHODS) luapay_arg_error(L, 3, fn, "methods", "1 to 4 methods expected");
    for (size_t i = 0; i < nmethods; i++) {
        note_method *m = &P->method[P->nmethods++];
        lua_rawgeti(L, 3, (int)i + 1); /* 6 */
        if (lua_type(L, 6) != LUA_TTABLE)
            luapay_arg_error(L, 3, fn, "methods", "a list of {field, name, signed} expected");
        lua_getfield(L, 6, "field");
        m->field = luapay_names_take(L, &P->names, 5, fn, 3, "methods");
        lua_getfield(L, 6, "name");
        m->name.s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &m->name.n) : NULL;
        if (m->name.s == NULL) luapay_arg_error(L, 3, fn, "methods", "a method's name must be a string");
        lua_rawseti(L, 5, LUAPAY_NAMES_MAX + NOTE_TYPES + (int)i + 1);
        lua_getfield(L, 6, "signed"); /* 7 */
        if (lua_type(L, 7) != LUA_TTABLE)
            luapay_arg_error(L, 3, fn, "methods", "a method's signed names must be a list");
        size_t nsigned = lua_rawlen(L, 7);
        if (nsigned > MAX_NAMES) luapay_arg_error(L, 3, fn, "methods", "too many signed names");
        for (size_t j = 0; j < nsigned; j++) {
            lua_rawgeti(L, 7, (int)j + 1);
            m->sig[m->nsigned++] = (unsigned char)luapay_names_take(L, &P->names, 5, fn, 3, "methods");
        }
        lua_settop(L, 5);
    }
    luapay_setuservalue(L, 4);
    luaL_newmetatable(L, NOTE_MT); /* or the one made before */
    lua_setmetatable(L, 4);
    return 1;
}

/* A notification's fields as luapay.trustpay's check wants them (at: each
 * plan name's field + 1, 0 if absent), and its signature right: the
 * method, with the result code and the amount; NULL for anything else. */
static const note_method *notification_holds(lua_State *L, const note_plan *P, const field *f, const int *at,
                                             const char *account, size_t accn, const char *secret, size_t secn,
                                             int64_t *code, int64_t *amount) {
#define VAL(name) (f[at[name] - 1])
    const note_method *m = NULL;
    for (int i = 0; i < P->nmethods && m == NULL; i++)
        if (at[P->method[i].field]) m = &P->method[i];
    if (m == NULL || !at[P->signature] || !at[P->type] || !at[P->result] || !at[P->amount] || !at[P->currency] ||
        !at[P->account] || VAL(P->signature).vn != 64)
        return NULL;
    const char *sig = VAL(P->signature).v, *rc = VAL(P->result).v;
    char got[64];
    if (!hex_upper64(sig, got)) return NULL;
    if (VAL(P->account).vn != accn || memcmp(VAL(P->account).v, account, accn) != 0) return NULL;
    int typed = 0;
    for (int i = 0; i < P->ntypes && !typed; i++) typed = luapay_text_eq(VAL(P->type).v, VAL(P->type).vn, P->types[i]);
    if (!typed) return NULL;
    size_t rn = VAL(P->result).vn;
    if (rn == 0 || rn > 9) return NULL;
    *code = 0;
    for (size_t i = 0; i < rn; i++) {
        if (rc[i] < '0' || rc[i] > '9') return NULL;
        *code = *code * 10 + (rc[i] - '0');
    }
    if (!minor_of(VAL(P->amount).v, VAL(P->amount).vn, VAL(P->currency).v, VAL(P->currency).vn, amount))
        return NULL;

    /* the signed values of the method, absent and empty ones skipped, joined by "/" */
    size_t total = 0, nsel = 0, sel[MAX_NAMES];
    for (int i = 0; i < m->nsigned; i++) {
        int j = at[m->sig[i]] - 1;
        if (j < 0 || f[j].vn == 0) continue;
        total += f[j].vn + (nsel > 0);
        sel[nsel++] = (size_t)j;
    }
#undef VAL
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
    return ok && diff == 0 ? m : NULL;
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

/* core.trustpay_notification(text, secret, account_id, plan):
 * luapay.trustpay's notification check for a query string in one pass: the
 * query read (http.decode_query), the fields the check reads (signature,
 * account, type, result code, amount: the plan's roles), the signed message
 * and its HMAC. Names are never percent-encoded on this path: a query that
 * encodes one takes the general path. */
static int l_trustpay_notification(lua_State *L) {
    size_t n, secn, accn;
    lua_settop(L, 4);
    const char *s = luapay_check_string(L, 1, "trustpay_notification", "text", &n);
    const char *secret = luapay_check_string(L, 2, "trustpay_notification", "secret", &secn);
    const char *account = luapay_check_string(L, 3, "trustpay_notification", "account_id", &accn);
    const note_plan *P = (const note_plan *)luaL_checkudata(L, 4, NOTE_MT);
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
     * plan's names' fields, + 1 (0: absent). */
    int at[LUAPAY_NAMES_MAX] = {0};
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
        int known = luapay_names_find(&P->names, f[i].k, f[i].kn);
        if (known >= 0) {
            lua_setfield(L, 5, P->names.name[known].s); /* a string the Lua state has at hand */
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
    const note_method *m = notification_holds(L, P, f, at, account, accn, secret, secn, &code, &amount);
    luapay_scratch_done(b);
    if (m == NULL) return 0;
    lua_pushvalue(L, 5);
    lua_pushlstring(L, m->name.s, m->name.n);
    push_int(L, code);
    push_int(L, amount);
    return 4;
}

const luaL_Reg luapay_trustpay_funcs[] = {
    {"trustpay_url", l_trustpay_url},
    {"trustpay_url_plan", l_trustpay_url_plan},
    {"trustpay_notification", l_trustpay_notification},
    {"trustpay_notification_plan", l_trustpay_notification_plan},
    {NULL, NULL},
};

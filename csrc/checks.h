/* Internal interface of validation and money: the reference tables
 * (refdata.c), the single-value format checks (checks.c), the
 * pattern matcher (pattern.c) and the amount rule (money.c). Nothing here
 * touches Lua except luapay_read_minor. */
#ifndef LUAPAY_CHECKS_H
#define LUAPAY_CHECKS_H

#include <stddef.h>
#include <stdint.h>
#include <locale.h>
#include <regex.h>

#include "core.h"

/* refdata.c: ISO 4217 / 3166-1 / 639-1 and the IBAN registry. */
typedef struct {
    char code[4]; /* first: the search key */
    unsigned short numeric;
    unsigned char exponent; /* minor-unit digits, 0..4 */
} luapay_currency;

const luapay_currency *luapay_currency_find(const char *s, size_t len);
const luapay_currency *luapay_currency_at(size_t i); /* NULL past the end */
int luapay_is_country(const char *s, size_t len);
int luapay_is_language(const char *s, size_t len);
size_t luapay_iban_length(const char *cc); /* 0: not an IBAN country */

/* checks.c: each takes bytes and a length (embedded NULs fail) and returns 1
 * when the value is well-formed. */
int luapay_utf8_count(const char *s, size_t n, size_t *chars); /* 0: invalid UTF-8 */
int luapay_is_email(const char *s, size_t n);
int luapay_is_url(const char *s, size_t n);
int luapay_is_date(const char *s, size_t n);
int luapay_is_datetime(const char *s, size_t n);
int luapay_is_ipv4(const char *s, size_t n);
int luapay_is_ipv6(const char *s, size_t n);
int luapay_is_bic(const char *s, size_t n);
int luapay_is_locale(const char *s, size_t n);

enum luapay_iban_status { LUAPAY_IBAN_OK, LUAPAY_IBAN_FORMAT, LUAPAY_IBAN_CHECKSUM };
enum luapay_iban_status luapay_check_iban(const char *s, size_t n);

/* A plain decimal: [-]digits[.digits], no leading zeros (but "0.xx"), no
 * exponent, no spaces, no "+". */
typedef struct {
    int negative;
    const char *int_digits; /* without sign */
    size_t int_len;
    size_t frac_len; /* digits after the point; 0 if there is no point */
    int has_point;
} luapay_decimal;

int luapay_scan_decimal(const char *s, size_t n, luapay_decimal *d);
/* Compares two scanned decimals with the same number of decimals: -1, 0, 1. */
int luapay_decimal_cmp(const luapay_decimal *a, const luapay_decimal *b);

/* pattern.c: a POSIX ERE compiled once (regcomp, REG_EXTENDED | REG_NOSUB)
 * plus, for the common anchored shape ^[class]{m,n}...$, a small
 * single-character-atom program that answers without regexec. regcomp and
 * regexec always run in the C locale (uselocale), whatever locale the host
 * process has set: a pattern means the same bytes everywhere. */
#define LUAPAY_PAT_MAX_ATOMS 32

typedef struct {
    unsigned char set[32]; /* bit per byte value */
    unsigned short min, max; /* max 0xFFFF: unbounded */
} luapay_pat_atom;

typedef struct luapay_pattern {
    regex_t re;
    int compiled;           /* re needs regfree */
    locale_t c_locale;      /* the C locale regcomp and regexec run in; (locale_t)0: none */
    int natoms;             /* -1: no fast program, use regexec */
    int linear;             /* only the last atom has a repeat range */
    size_t max_len;         /* longest match of the fast program, SIZE_MAX if unbounded */
    luapay_pat_atom atoms[LUAPAY_PAT_MAX_ATOMS];
    const char *source;
    struct luapay_pattern *next; /* the owner's list, for regfree */
} luapay_pattern;

/* Compiles into p (zeroed by the caller); returns 0, or the regcomp error
 * code with the message in err. */
int luapay_pattern_compile(luapay_pattern *p, const char *source, char *err, size_t errlen);
int luapay_pattern_match(const luapay_pattern *p, const char *s, size_t n);
void luapay_pattern_free(luapay_pattern *p);

/* money.c: the amount rule shared by core.validate and the money functions.
 * An amount is a Lua integer (Lua 5.4: integer subtype; LuaJIT: an integral
 * double) with |v| <= 2^53, so both VMs accept exactly the same values. */
#define LUAPAY_MINOR_LIMIT 9007199254740992LL /* 2^53 */

enum luapay_minor_status {
    LUAPAY_MINOR_OK,
    LUAPAY_MINOR_NOT_NUMBER,
    LUAPAY_MINOR_FLOAT,    /* Lua 5.4 float subtype, or a fraction */
    LUAPAY_MINOR_NOT_FINITE,
    LUAPAY_MINOR_TOO_LARGE /* beyond 2^53 */
};

enum luapay_minor_status luapay_read_minor(lua_State *L, int idx, int64_t *out);

/* core.to_minor's reading of a decimal text in a currency (money.c): the
 * minor units, or why not (the currency, the text, its decimals, 2^53). */
enum luapay_to_minor_status { LUAPAY_TO_MINOR_OK, LUAPAY_TO_MINOR_CURRENCY, LUAPAY_TO_MINOR_TEXT,
                              LUAPAY_TO_MINOR_DECIMALS, LUAPAY_TO_MINOR_LARGE };
enum luapay_to_minor_status luapay_to_minor(const char *s, size_t n, const char *code, size_t clen, int64_t *out,
                                            const luapay_currency **cur);

/* Integral value of a number within +-2^53 (floats with an integral value
 * allowed in both VMs): for the "integer" field type. */
enum luapay_minor_status luapay_read_integer(lua_State *L, int idx, int64_t *out);

#endif

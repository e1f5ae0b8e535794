/* Single-value format checks on bytes: UTF-8, e-mail, URL, date, date-time,
 * IP addresses, IBAN, BIC, locale and plain decimals. Each is a strict
 * recogniser, not a normaliser: what providers receive is exactly what was
 * checked. An embedded NUL fails every format, never truncates it. */
#include <arpa/inet.h>
#include <string.h>

#include "checks.h"

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_alnum_upper(unsigned char c) { return is_upper(c) || is_digit(c); }
static int is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Counts characters. */
int luapay_utf8_count(const char *str, size_t n, size_t *chars) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, count = 0;
    while (i < n) {
        uint64_t word;
        if (n - i >= 8) {
            memcpy(&word, s + i, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8, count += 8; /* eight ASCII bytes at once */
                continue;
            }
        } else if (n >= 8) {
            memcpy(&word, s + n - 8, 8); /* the last eight bytes, overlapping */
            if ((word & 0x8080808080808080ULL) == 0) {
                count += n - i;
                break;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
        } else {
            size_t len;
            unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
            if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
            } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                if (c == 0xE0) lo = 0xA0;      /* overlong */
                else if (c == 0xED) hi = 0x9F; /* surrogates */
            } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                if (c == 0xF0) lo = 0x90;      /* overlong */
                else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
            } else {
                return 0;
            }
            if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
            for (size_t k = 2; k < len; k++)
                if ((s[i + k] & 0xC0) != 0x80) return 0;
            i += len;
        }
        count++;
    }
    *chars = count;
    return 1;
}

/* In valid UTF-8: a C1 control (U+0080..U+009F) or a Unicode White_Space
 * character beyond ASCII (U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). */
static int has_wide_space_or_control(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0xC2 && s[i + 1] <= 0xA0) return 1; /* U+0080..U+00A0 */
        if (s[i] == 0xE1 && s[i + 1] == 0x9A && s[i + 2] == 0x80) return 1;
        if (s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] <= 0x8A || s[i + 2] == 0xA8 || s[i + 2] == 0xA9 || s[i + 2] == 0xAF))
            return 1;
        if (s[i] == 0xE2 && s[i + 1] == 0x81 && s[i + 2] == 0x9F) return 1;
        if (s[i] == 0xE3 && s[i + 1] == 0x80 && s[i + 2] == 0x80) return 1;
    }
    return 0;
}

/* Pragmatic, as providers check it: one '@', a non-empty local part, a
 * domain of non-empty dot-separated labels with at least one dot, no white
 * space or control characters (ASCII or not), valid UTF-8, at most 254
 * characters. */
int luapay_is_email(const char *s, size_t n) {
    size_t at = SIZE_MAX;
    int high = 0, dot = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7F) return 0;
        if (c >= 0x80) {
            high = 1;
        } else if (c == '@') {
            if (at != SIZE_MAX) return 0;
            at = i;
        } else if (c == '.' && at != SIZE_MAX) {
            if (i == at + 1 || s[i - 1] == '.') return 0; /* empty domain label */
            dot = 1;
        }
    }
    if (at == SIZE_MAX || at == 0 || !dot || s[n - 1] == '.') return 0;
    size_t chars;
    if (!high) return n <= 254;
    return luapay_utf8_count(s, n, &chars) && chars <= 254 &&
           !has_wide_space_or_control((const unsigned char *)s, n);
}

/* ASCII classes for URLs: 1 letter or digit, 2 '-', 3 '.', 4 another RFC 3986
 * unreserved or reserved character, 5 '%'; 0 is not allowed. */
static const unsigned char url_chars[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 4, 0, 4, 4, 5, 4, 4, 4, 4, 4, 4, 4, 2, 3, 4,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 0, 4, 0, 4,
    4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 0, 4, 0, 4,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 4, 0,
};

static int url_class(unsigned char c) { return c < 128 ? url_chars[c] : 0; }

/* An absolute http or https URL (RFC 3986 characters only, so non-ASCII must
 * be percent-encoded): scheme "://" host [":" port] then an optional path,
 * query and fragment. The host is LDH labels (a trailing dot allowed; an
 * IPv4 address is such a name) or an IPv6 address in brackets. No
 * user:password@ part: a callback or return URL with credentials in it is a
 * mistake. */
int luapay_is_url(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 4;
    if (n < 8 || (s[0] | 0x20) != 'h' || (s[1] | 0x20) != 't' || (s[2] | 0x20) != 't' || (s[3] | 0x20) != 'p')
        return 0;
    if ((s[4] | 0x20) == 's') i++;
    if (n - i < 4 || s[i] != ':' || s[i + 1] != '/' || s[i + 2] != '/') return 0;
    i += 3;
    if (s[i] == '[') {
        size_t start = ++i;
        while (i < n && s[i] != ']') i++;
        if (i == n || !luapay_is_ipv6(str + start, i - start)) return 0;
        i++;
    } else {
        size_t label = 0, start = i;
        for (; i < n; i++) {
            int k = url_class(s[i]);
            if (k == 1) {
                label++;
            } else if (k == 2) {
                if (label++ == 0) return 0; /* labels start with a letter or digit */
            } else if (k == 3) {
                if (label == 0 || s[i - 1] == '-') return 0;
                label = 0;
            } else {
                break;
            }
            if (label > 63) return 0;
        }
        /* not empty, no '-' at the end, at most one trailing dot */
        if (i == start || s[i - 1] == '-' || (label == 0 && (i - start < 2 || s[i - 2] == '.'))) return 0;
    }
    if (i < n && s[i] == ':') {
        size_t digits = 0;
        unsigned long port = 0;
        for (i++; i < n && is_digit(s[i]) && digits < 6; i++, digits++) port = port * 10 + (unsigned long)(s[i] - '0');
        if (digits == 0 || port == 0 || port > 65535) return 0;
    }
    if (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#') return 0;
    for (; i < n; i++) {
        int k = url_class(s[i]);
        if (k == 5) {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
        } else if (k == 0) {
            return 0;
        }
    }
    return 1;
}

static int digits_value(const char *s, size_t n, int *out) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* YYYY-MM-DD, a real day of the proleptic Gregorian calendar, year 0001-9999. */
int luapay_is_date(const char *s, size_t n) {
    int y, m, d;
    if (n != 10 || s[4] != '-' || s[7] != '-') return 0;
    if (!digits_value(s, 4, &y) || !digits_value(s + 5, 2, &m) || !digits_value(s + 8, 2, &d)) return 0;
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

/* ISO 8601 extended format: date "T" hh:mm:ss [.fraction (1-9 digits)]
 * [Z | +hh:mm | -hh:mm]. Seconds may be 60 (a leap second). */
int luapay_is_datetime(const char *s, size_t n) {
    int h, mi, sec;
    if (n < 19 || !luapay_is_date(s, 10) || s[10] != 'T' || s[13] != ':' || s[16] != ':') return 0;
    if (!digits_value(s + 11, 2, &h) || !digits_value(s + 14, 2, &mi) || !digits_value(s + 17, 2, &sec)) return 0;
    if (h > 23 || mi > 59 || sec > 60) return 0;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit((unsigned char)s[i])) i++;
        if (i == start || i - start > 9) return 0;
    }
    if (i == n) return 1;
    if (s[i] == 'Z') return i + 1 == n;
    if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':') {
        int zh, zm;
        return digits_value(s + i + 1, 2, &zh) && digits_value(s + i + 4, 2, &zm) && zh <= 23 && zm <= 59;
    }
    return 0;
}

/* inet_pton needs a C string; an address is short, so copy it. */
static int pton(int af, const char *s, size_t n) {
    char buf[64];
    unsigned char addr[16];
    if (n == 0 || n >= sizeof buf || memchr(s, 0, n) != NULL) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, addr) == 1;
}

/* Dotted decimal, four parts 0-255, no leading zeros (as inet_pton). */
int luapay_is_ipv4(const char *s, size_t n) {
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && (i >= n || s[i++] != '.')) return 0;
        size_t start = i;
        unsigned v = 0;
        while (i < n && is_digit((unsigned char)s[i]) && i - start < 3) v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (s[start] == '0' && i - start > 1)) return 0;
    }
    return i == n;
}

/* RFC 4291 text forms, "::" and an embedded IPv4 tail; no zone ("%eth0"). */
int luapay_is_ipv6(const char *s, size_t n) { return pton(AF_INET6, s, n); }

/* ISO 9362: 4 letters (institution), an ISO 3166 country (or XK, Kosovo),
 * 2 letters or digits (location), optionally 3 more (branch). */
int luapay_is_bic(const char *s, size_t n) {
    if (n != 8 && n != 11) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i < 6 ? !is_upper(c) : !is_alnum_upper(c)) return 0;
    }
    return luapay_is_country(s + 4, 2) || memcmp(s + 4, "XK", 2) == 0;
}

/* A locale ll_CC: an ISO 639-1 language and an ISO 3166 country. */
int luapay_is_locale(const char *s, size_t n) {
    return n == 5 && s[2] == '_' && is_lower((unsigned char)s[0]) && is_lower((unsigned char)s[1]) &&
           luapay_is_language(s, 2) && luapay_is_country(s + 3, 2);
}

/* ISO 13616, electronic format (no spaces, upper case): a registry country,
 * its length, two check digits, then the mod-97 check over BBAN + country +
 * check digits with letters as 10..35. */
enum luapay_iban_status luapay_check_iban(const char *s, size_t n) {
    if (n < 5 || !is_upper((unsigned char)s[0]) || !is_upper((unsigned char)s[1]) ||
        !is_digit((unsigned char)s[2]) || !is_digit((unsigned char)s[3]))
        return LUAPAY_IBAN_FORMAT;
    for (size_t i = 4; i < n; i++)
        if (!is_alnum_upper((unsigned char)s[i])) return LUAPAY_IBAN_FORMAT;
    if (luapay_iban_length(s) != n) return LUAPAY_IBAN_FORMAT;
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[(k + 4) % n];
        if (is_digit(c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return rem == 1 ? LUAPAY_IBAN_OK : LUAPAY_IBAN_CHECKSUM;
}

int luapay_scan_decimal(const char *s, size_t n, luapay_decimal *d) {
    size_t i = 0;
    memset(d, 0, sizeof *d);
    if (i < n && s[i] == '-') d->negative = 1, i++;
    d->int_digits = s + i;
    while (i < n && is_digit((unsigned char)s[i])) i++, d->int_len++;
    if (d->int_len == 0 || (d->int_len > 1 && d->int_digits[0] == '0')) return 0;
    if (i < n && s[i] == '.') {
        d->has_point = 1;
        i++;
        while (i < n && is_digit((unsigned char)s[i])) i++, d->frac_len++;
        if (d->frac_len == 0) return 0;
    }
    return i == n;
}

/* The digits (integer part then fraction) of equal-scale decimals compare
 * like numbers once the integer parts have equal length. */
int luapay_decimal_cmp(const luapay_decimal *a, const luapay_decimal *b) {
    int zero_a = a->int_len == 1 && a->int_digits[0] == '0', zero_b = b->int_len == 1 && b->int_digits[0] == '0';
    for (size_t k = 0; zero_a && k < a->frac_len; k++) zero_a = a->int_digits[2 + k] == '0';
    for (size_t k = 0; zero_b && k < b->frac_len; k++) zero_b = b->int_digits[2 + k] == '0';
    int neg_a = a->negative && !zero_a, neg_b = b->negative && !zero_b;
    if (neg_a != neg_b) return neg_a ? -1 : 1;
    int mag;
    if (a->int_len != b->int_len) {
        mag = a->int_len < b->int_len ? -1 : 1;
    } else {
        int c = memcmp(a->int_digits, b->int_digits, a->int_len);
        if (c == 0 && a->frac_len > 0) c = memcmp(a->int_digits + a->int_len + 1, b->int_digits + b->int_len + 1, a->frac_len);
        mag = c < 0 ? -1 : c > 0;
    }
    return neg_a ? -mag : mag;
}

/* Reference data compiled into the core: const tables, sorted, binary-searched.
 *
 * Cross-checked against public datasets (facts only, no code taken):
 * - ISO 4217 List One, active entries: datasets/currency-codes data/codes-all.csv
 *   (ab9b0ae, 2026-02-01; SIX table of 2024-06-25 plus later amendments: XAD and
 *   XCG added, ANG and BGN withdrawn, ZWG in place of ZWL); numeric codes agree
 *   with Debian iso-codes 4.15, minor units with moneyphp/iso-currencies.
 *   Entries whose minor unit is "N.A." (XAU, XAG, XPD, XPT, XBA..XBD, XDR, XSU,
 *   XUA, XTS, XXX) are left out: no amount of them is counted in minor units.
 * - ISO 3166-1 alpha-2, the 249 officially assigned codes: datasets/country-codes
 *   (caa72d1), Debian iso-codes 4.15 and tzdata 2025b iso3166.tab agree.
 * - ISO 639-1, 183 codes: datasets/language-codes (2787e94); Debian iso-codes
 *   agrees but still lists the withdrawn "bh".
 * - IBAN lengths: the SWIFT IBAN registry release 96 (TXT, 2024-02) as kept in
 *   jschaedl/iban-validation, plus what releases 97..101 changed (HN 28, YE 30)
 *   and PK 24, which the TXT export dropped while the registry PDF keeps it.
 *   Territories that use a parent's prefix (AX uses FI, GF uses FR, ...) have
 *   no entry of their own. */
#include <string.h>

#include "checks.h"

static const luapay_currency currencies[] = {
    {"AED", 784, 2}, {"AFN", 971, 2}, {"ALL", 8, 2}, {"AMD", 51, 2},
    {"AOA", 973, 2}, {"ARS", 32, 2}, {"AUD", 36, 2}, {"AWG", 533, 2},
    {"AZN", 944, 2}, {"BAM", 977, 2}, {"BBD", 52, 2}, {"BDT", 50, 2},
    {"BHD", 48, 3}, {"BIF", 108, 0}, {"BMD", 60, 2}, {"BND", 96, 2},
    {"BOB", 68, 2}, {"BOV", 984, 2}, {"BRL", 986, 2}, {"BSD", 44, 2},
    {"BTN", 64, 2}, {"BWP", 72, 2}, {"BYN", 933, 2}, {"BZD", 84, 2},
    {"CAD", 124, 2}, {"CDF", 976, 2}, {"CHE", 947, 2}, {"CHF", 756, 2},
    {"CHW", 948, 2}, {"CLF", 990, 4}, {"CLP", 152, 0}, {"CNY", 156, 2},
    {"COP", 170, 2}, {"COU", 970, 2}, {"CRC", 188, 2}, {"CUP", 192, 2},
    {"CVE", 132, 2}, {"CZK", 203, 2}, {"DJF", 262, 0}, {"DKK", 208, 2},
    {"DOP", 214, 2}, {"DZD", 12, 2}, {"EGP", 818, 2}, {"ERN", 232, 2},
    {"ETB", 230, 2}, {"EUR", 978, 2}, {"FJD", 242, 2}, {"FKP", 238, 2},
    {"GBP", 826, 2}, {"GEL", 981, 2}, {"GHS", 936, 2}, {"GIP", 292, 2},
    {"GMD", 270, 2}, {"GNF", 324, 0}, {"GTQ", 320, 2}, {"GYD", 328, 2},
    {"HKD", 344, 2}, {"HNL", 340, 2}, {"HTG", 332, 2}, {"HUF", 348, 2},
    {"IDR", 360, 2}, {"ILS", 376, 2}, {"INR", 356, 2}, {"IQD", 368, 3},
    {"IRR", 364, 2}, {"ISK", 352, 0}, {"JMD", 388, 2}, {"JOD", 400, 3},
    {"JPY", 392, 0}, {"KES", 404, 2}, {"KGS", 417, 2}, {"KHR", 116, 2},
    {"KMF", 174, 0}, {"KPW", 408, 2}, {"KRW", 410, 0}, {"KWD", 414, 3},
    {"KYD", 136, 2}, {"KZT", 398, 2}, {"LAK", 418, 2}, {"LBP", 422, 2},
    {"LKR", 144, 2}, {"LRD", 430, 2}, {"LSL", 426, 2}, {"LYD", 434, 3},
    {"MAD", 504, 2}, {"MDL", 498, 2}, {"MGA", 969, 2}, {"MKD", 807, 2},
    {"MMK", 104, 2}, {"MNT", 496, 2}, {"MOP", 446, 2}, {"MRU", 929, 2},
    {"MUR", 480, 2}, {"MVR", 462, 2}, {"MWK", 454, 2}, {"MXN", 484, 2},
    {"MXV", 979, 2}, {"MYR", 458, 2}, {"MZN", 943, 2}, {"NAD", 516, 2},
    {"NGN", 566, 2}, {"NIO", 558, 2}, {"NOK", 578, 2}, {"NPR", 524, 2},
    {"NZD", 554, 2}, {"OMR", 512, 3}, {"PAB", 590, 2}, {"PEN", 604, 2},
    {"PGK", 598, 2}, {"PHP", 608, 2}, {"PKR", 586, 2}, {"PLN", 985, 2},
    {"PYG", 600, 0}, {"QAR", 634, 2}, {"RON", 946, 2}, {"RSD", 941, 2},
    {"RUB", 643, 2}, {"RWF", 646, 0}, {"SAR", 682, 2}, {"SBD", 90, 2},
    {"SCR", 690, 2}, {"SDG", 938, 2}, {"SEK", 752, 2}, {"SGD", 702, 2},
    {"SHP", 654, 2}, {"SLE", 925, 2}, {"SOS", 706, 2}, {"SRD", 968, 2},
    {"SSP", 728, 2}, {"STN", 930, 2}, {"SVC", 222, 2}, {"SYP", 760, 2},
    {"SZL", 748, 2}, {"THB", 764, 2}, {"TJS", 972, 2}, {"TMT", 934, 2},
    {"TND", 788, 3}, {"TOP", 776, 2}, {"TRY", 949, 2}, {"TTD", 780, 2},
    {"TWD", 901, 2}, {"TZS", 834, 2}, {"UAH", 980, 2}, {"UGX", 800, 0},
    {"USD", 840, 2}, {"USN", 997, 2}, {"UYI", 940, 0}, {"UYU", 858, 2},
    {"UYW", 927, 4}, {"UZS", 860, 2}, {"VED", 926, 2}, {"VES", 928, 2},
    {"VND", 704, 0}, {"VUV", 548, 0}, {"WST", 882, 2}, {"XAD", 396, 2},
    {"XAF", 950, 0}, {"XCD", 951, 2}, {"XCG", 532, 2}, {"XOF", 952, 0},
    {"XPF", 953, 0}, {"YER", 886, 2}, {"ZAR", 710, 2}, {"ZMW", 967, 2},
    {"ZWG", 924, 2},
};

/* Officially assigned ISO 3166-1 alpha-2 codes. */
static const char countries[][3] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

/* ISO 639-1 two-letter language codes. */
static const char languages[][3] = {
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi",
    "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de",
    "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy",
    "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia",
    "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
    "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo",
    "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd",
    "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl",
    "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl",
    "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
    "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa",
    "wo", "xh", "yi", "yo", "za", "zh", "zu",
};

/* IBAN registry: country prefix and total IBAN length. */
typedef struct {
    char cc[3];
    unsigned char length;
} iban_row;

static const iban_row iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
    {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20},
    {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
    {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24},
    {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25},
    {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
    {"YE", 30},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Binary search over rows of `width` bytes whose first `keylen` (2 or 3)
 * bytes are the key; the bytes are compared inline, as one integer. */
static const void *find(const void *base, size_t n, size_t width, const char *key, size_t keylen) {
    unsigned k = 0;
    for (size_t i = 0; i < keylen; i++) k = k << 8 | (unsigned char)key[i];
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unsigned char *row = (const unsigned char *)base + mid * width;
        unsigned r = 0;
        for (size_t i = 0; i < keylen; i++) r = r << 8 | row[i];
        if (k == r) return row;
        if (k < r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const luapay_currency *luapay_currency_find(const char *s, size_t len) {
    if (len != 3) return NULL;
    return (const luapay_currency *)find(currencies, COUNT(currencies), sizeof currencies[0], s, 3);
}

const luapay_currency *luapay_currency_at(size_t i) {
    return i < COUNT(currencies) ? &currencies[i] : NULL;
}

int luapay_is_country(const char *s, size_t len) {
    return len == 2 && find(countries, COUNT(countries), sizeof countries[0], s, 2) != NULL;
}

int luapay_is_language(const char *s, size_t len) {
    return len == 2 && find(languages, COUNT(languages), sizeof languages[0], s, 2) != NULL;
}

size_t luapay_iban_length(const char *cc) {
    const iban_row *row = (const iban_row *)find(iban_lengths, COUNT(iban_lengths), sizeof iban_lengths[0], cc, 2);
    return row ? row->length : 0;
}

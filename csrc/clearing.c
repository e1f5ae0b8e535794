/* ecommpay's payout account table for the Trustly method ("Figure 32" of
 * ../shared/seeds/000_143fbb12043a44fc.txt): for each clearinghouse, the
 * pattern for account.bank_code where the table gives one and the pattern for
 * account.number. The regexes are kept exactly as printed. The printed table
 * has 29 rows (the brief speaks of 32); every printed row is here. Where the
 * bank_code cell is blank the docs say bank_code is a BIC/SWIFT code. */
#include "checks.h"

/* Sorted by name (byte order), as printed. */
const luapay_clearing_row luapay_clearing_rows[] = {
    {"AUSTRIA", NULL, "^AT[0-9]{18}$"},
    {"BELGIUM", NULL, "^BE[0-9]{14}$"},
    {"BULGARIA", NULL, "^BG[0-9]{2}[A-Z]{4}[0-9]{4}[0-9]{2}[A-Z0-9]{8}$"},
    {"CROATIA", NULL, "^HR[0-9]{2}[0-9]{7}[0-9]{10}$"},
    {"CYPRUS", NULL, "^CY[0-9]{10}[0-9A-Z]{16}$"},
    {"CZECH_REPUBLIC", "^[0-9]{4}$", "^[0-9]{16}$"},
    {"DENMARK", "^[0-9]{4}$", "^[0-9]{4,10}$"},
    {"ESTONIA", "^[0-9]{2}$", "^[0-9]{4,14}$"},
    {"FINLAND", NULL, "^FI[0-9]{16}$"},
    {"FRANCE", NULL, "^FR[0-9]{12}[0-9A-Z]{11}[0-9]{2}$"},
    {"GERMANY", NULL, "^DE[0-9]{20}$"},
    {"GREECE", NULL, "^GR[0-9]{25}$"},
    {"HUNGARY", "^[0-9]{8}$", "^[0-9]{24}$"},
    {"IRELAND", NULL, "^IE[0-9]{2}[A-Z]{4}[0-9]{14}$"},
    {"ITALY", NULL, "^IT[0-9]{2}[A-Z][0-9]{10}[0-9A-Z]{12}$"},
    {"LATVIA", NULL, "^LV[0-9]{2}[A-Z]{4}[0-9A-Z]{13}$"},
    {"LITHUANIA", NULL, "^LT[0-9]{18}$"},
    {"LUXEMBOURG", NULL, "^LU[0-9]{18}$"},
    {"MALTA", NULL, "^MT[0-9]{2}[A-Z]{4}[0-9]{5}[0-9A-Z]{18}$"},
    {"NETHERLANDS", NULL, "^NL[0-9]{2}[A-Z]{4}[0-9]{10}$"},
    {"NORWAY", "^[0-9]{4}$", "^[0-9]{7}$"},
    {"POLAND", NULL, "^PL[0-9]{26}$"},
    {"PORTUGAL", "^[0-9]{8}$", "^[0-9]{13}$"},
    {"ROMANIA", NULL, "^RO[0-9]{2}[A-Z]{4}[0-9A-Z]{16}$"},
    {"SLOVAKIA", NULL, "^SK[0-9]{22}$"},
    {"SLOVENIA", NULL, "^SI56[0-9]{15}$"},
    {"SPAIN", NULL, "^ES[0-9]{22}$"},
    {"SWEDEN", "^[0-9]{4,5}$", "^[0-9]{1,15}$"},
    {"UNITED_KINGDOM", "^[0-9]{6}$", "^[0-9]{8}$"},
};

const size_t luapay_clearing_count = sizeof luapay_clearing_rows / sizeof luapay_clearing_rows[0];

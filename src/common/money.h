/*
 * money.h — KES amounts, quantities and VAT by eTIMS tax band.
 *
 * Money is always int64 cents. Prices are VAT-inclusive (what the shelf label says).
 * Quantities are int64 thousandths of a unit ("milli"), so 0.5 kg of sugar is 500.
 *
 * Rounding (documented in docs/ARCHITECTURE.md, "Money and tax"):
 *   line total = round_half_up(unit_price_cents * qty_milli / 1000)
 *   line tax   = round_half_up(line_total * rate / (100 + rate))   (rate in percent)
 *   sale total = sum of line totals;  sale tax = sum of line taxes
 * Tax is computed per line, as eTIMS does per item, so a receipt's tax lines add up exactly.
 */
#ifndef DUKA_MONEY_H
#define DUKA_MONEY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* eTIMS tax bands: A exempt, B 16 % VAT, C 0 % (zero-rated), D non-VAT, E 8 %. */
typedef enum duka_tax_band {
    DUKA_TAX_A = 'A',
    DUKA_TAX_B = 'B',
    DUKA_TAX_C = 'C',
    DUKA_TAX_D = 'D',
    DUKA_TAX_E = 'E',
} duka_tax_band;

/* True for 'A'..'E'. */
bool duka_tax_band_valid(int band);

/* VAT rate in percent of the band (16 for B, 8 for E, 0 otherwise). */
int duka_tax_band_rate(duka_tax_band band);

/* VAT contained in a VAT-inclusive gross amount, rounded half up. gross_cents >= 0. */
int64_t duka_tax_of_gross(int64_t gross_cents, duka_tax_band band);

/* round_half_up(unit_price_cents * qty_milli / 1000); both within limits.h bounds. */
int64_t duka_line_total(int64_t unit_price_cents, int64_t qty_milli);

/* Parses "120", "120.5", "120.50" (KES, up to 2 decimals, no sign, no exponent) into cents.
 * Returns DUKA_INPUT with a sentence naming `what` on anything else or out of range. */
duka_rc duka_parse_price(const char *text, int64_t *cents_out, const char *what, duka_err *err);

/* Parses a KES amount like duka_parse_price, up to limit_cents instead of the price limit
 * (an amount in a setting, cash tendered). */
duka_rc duka_parse_amount(const char *text, int64_t limit_cents, int64_t *cents_out,
                          const char *what, duka_err *err);

/* Formats cents with thousands separators, "185,000,000.00" (buf >= 40). */
void duka_format_cents_grouped(int64_t cents, char *buf, unsigned long buflen);

/* Parses a quantity "2", "0.5", "1.250" (up to 3 decimals, > 0) into thousandths. */
duka_rc duka_parse_qty(const char *text, int64_t *milli_out, const char *what, duka_err *err);

/* Formats cents as "1234.50" (buf >= 32). */
void duka_format_cents(int64_t cents, char *buf, unsigned long buflen);

/* Formats a quantity in thousandths as "2", "0.5" or "-2.5" (a stock level) (buf >= 32). */
void duka_format_qty(int64_t milli, char *buf, unsigned long buflen);

#endif

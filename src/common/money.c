/* money.c — amounts, quantities and tax (see money.h for the rounding rules). */
#include "common/money.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/limits.h"

bool duka_tax_band_valid(int band)
{
    return band >= 'A' && band <= 'E';
}

int duka_tax_band_rate(duka_tax_band band)
{
    switch (band) {
    case DUKA_TAX_B:
        return 16;
    case DUKA_TAX_E:
        return 8;
    case DUKA_TAX_A:
    case DUKA_TAX_C:
    case DUKA_TAX_D:
        return 0;
    }
    return 0;
}

/* round_half_up(num / den) for num >= 0, den > 0. */
static int64_t div_round_half_up(int64_t num, int64_t den)
{
    return (num + den / 2) / den;
}

int64_t duka_tax_of_gross(int64_t gross_cents, duka_tax_band band)
{
    int rate = duka_tax_band_rate(band);
    if (rate == 0 || gross_cents <= 0)
        return 0;
    return div_round_half_up(gross_cents * rate, 100 + rate);
}

int64_t duka_line_total(int64_t unit_price_cents, int64_t qty_milli)
{
    return div_round_half_up(unit_price_cents * qty_milli, 1000);
}

/* Parses digits[.digits] with at most max_decimals decimals into value * 10^max_decimals. */
static bool parse_fixed(const char *text, int max_decimals, int64_t limit, int64_t *out)
{
    if (text == NULL || *text == '\0')
        return false;
    int64_t whole = 0;
    const char *p = text;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        if (whole > limit)
            return false;
        whole = whole * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || digits > 15)
        return false;
    int64_t frac = 0;
    int decimals = 0;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (decimals == max_decimals)
                return false;
            frac = frac * 10 + (*p - '0');
            p++;
            decimals++;
        }
        if (decimals == 0)
            return false;
    }
    if (*p != '\0')
        return false;
    int64_t scale = 1;
    for (int i = 0; i < max_decimals; i++)
        scale *= 10;
    for (int i = decimals; i < max_decimals; i++)
        frac *= 10;
    if (whole > limit / scale)
        return false;
    int64_t v = whole * scale + frac;
    if (v > limit)
        return false;
    *out = v;
    return true;
}

duka_rc duka_parse_price(const char *text, int64_t *cents_out, const char *what, duka_err *err)
{
    int64_t v = 0;
    if (!parse_fixed(text, 2, DUKA_PRICE_CENTS_MAX, &v))
        return duka_err_set(err, DUKA_INPUT,
                            "%s: '%s' is not an amount in KES like 120.00 (at most %lld)",
                            what, text ? text : "", DUKA_PRICE_CENTS_MAX / 100);
    *cents_out = v;
    return DUKA_OK;
}

duka_rc duka_parse_amount(const char *text, int64_t limit_cents, int64_t *cents_out,
                          const char *what, duka_err *err)
{
    int64_t v = 0;
    if (!parse_fixed(text, 2, limit_cents, &v)) {
        char max[48];
        duka_format_cents_grouped(limit_cents, max, sizeof(max));
        return duka_err_set(err, DUKA_INPUT,
                            "%s: '%s' is not an amount in KES like 500.00 (at most %s)", what,
                            text ? text : "", max);
    }
    *cents_out = v;
    return DUKA_OK;
}

duka_rc duka_parse_qty(const char *text, int64_t *milli_out, const char *what, duka_err *err)
{
    int64_t v = 0;
    if (text != NULL && text[0] == '-')
        return duka_err_set(err, DUKA_INPUT, "%s: quantity '%s' is negative", what, text);
    if (!parse_fixed(text, DUKA_QTY_DECIMALS, DUKA_QTY_MILLI_MAX, &v))
        return duka_err_set(err, DUKA_INPUT,
                            "%s: quantity '%s' is not a number like 2 or 0.5 (at most 3 "
                            "decimals, at most %lld)",
                            what, text ? text : "", DUKA_QTY_MILLI_MAX / 1000);
    if (v == 0)
        return duka_err_set(err, DUKA_INPUT, "%s: quantity '%s' is zero", what, text);
    *milli_out = v;
    return DUKA_OK;
}

void duka_format_cents(int64_t cents, char *buf, unsigned long buflen)
{
    const char *sign = cents < 0 ? "-" : "";
    int64_t a = cents < 0 ? -cents : cents;
    snprintf(buf, buflen, "%s%" PRId64 ".%02" PRId64, sign, a / 100, a % 100);
}

void duka_format_cents_grouped(int64_t cents, char *buf, unsigned long buflen)
{
    char plain[40];
    duka_format_cents(cents, plain, sizeof(plain));
    const char *sign = plain[0] == '-' ? "-" : "";
    const char *digits = plain + (sign[0] != '\0');
    size_t whole = strcspn(digits, ".");
    char out[64];
    size_t n = 0;
    for (size_t i = 0; i < whole && n + 2 < sizeof(out); i++) {
        if (i > 0 && (whole - i) % 3 == 0)
            out[n++] = ',';
        out[n++] = digits[i];
    }
    out[n] = '\0';
    snprintf(buf, buflen, "%s%s%s", sign, out, digits + whole);
}

void duka_format_qty(int64_t milli, char *buf, unsigned long buflen)
{
    /* A stock level may be below zero: the sign once, then the magnitude. */
    const char *sign = milli < 0 ? "-" : "";
    uint64_t a = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
    if (a % 1000 == 0) {
        snprintf(buf, buflen, "%s%" PRIu64, sign, a / 1000);
        return;
    }
    snprintf(buf, buflen, "%s%" PRIu64 ".%03" PRIu64, sign, a / 1000, a % 1000);
    /* trim trailing zeros of the fraction */
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
}

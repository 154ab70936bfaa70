/*
 * invoice.h — a duka sale as the body of KRA eTIMS's saveTrnsSalesOsdc (contract 12, section 1).
 *
 * The hub builds the body once, when the sale arrives, stores its text with the invoice and
 * sends that text (with invcNo and orgInvcNo put in at send time, etims_client.h) until eTIMS
 * has signed it. Everything here is pure: no clock (dates come from the sale's created_ms), no
 * time zone of the process (Kenya is UTC+3 all year), no I/O. Thread safe.
 *
 * The tax rule (shared with the simulator, which implements it independently): prices are VAT
 * inclusive; per item splyAmt = taxblAmt = totAmt = the line total and taxAmt =
 * round_half_up(taxblAmt × rate / (100 + rate)) (money.h duka_tax_of_gross); per band X the
 * sums of its items; totTaxblAmt, totTaxAmt the sums over the bands, totAmt = totTaxblAmt.
 *
 * Amounts go on the wire as JSON reals in KES made from cents, exact only when dumped with
 * DUKA_ETIMS_JSON_FLAGS (jansson's default precision, 17, writes 0.01 as
 * 0.010000000000000002). Whoever turns a body into text uses those flags.
 */
#ifndef DUKA_ETIMS_INVOICE_H
#define DUKA_ETIMS_INVOICE_H

#include <jansson.h>
#include <stdint.h>

#include "protocol/sale.h"

/* json_dumps flags for every eTIMS body: compact, order kept, 15 significant digits (below
 * DUKA_ETIMS_AMOUNT_CENTS_MAX an amount made by duka_etims_amount_json prints exactly:
 * 116.0, 1160.5, 0.01). */
#define DUKA_ETIMS_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

typedef struct duka_etims_shop {
    const char *name;
} duka_etims_shop;

/* The saveTrnsSalesOsdc body of a sale WITHOUT invcNo/orgInvcNo (set at send time): every
 * other member of the contract's example, in its order. rcpt_ty 'S' (sale) or 'R' (credit
 * note; amounts positive as in the sale given); rfd_rsn_cd "01".."06" for 'R', NULL for 'S'.
 * cfmDt/salesDt from sale->created_ms in Africa/Nairobi time (UTC+3, no DST). pmtTyCd from the
 * payments: all cash "01", all card "05", all mpesa "06", more than one method "07" (none:
 * "01"). Amounts of a band without items are the integer 0 (as in the example), all others
 * reals. shop_name is the receipt's trdeNm and topMsg. The sale must be valid
 * (duka_sale_validate), rcpt_ty and rfd_rsn_cd as above (asserted). A new reference, the
 * caller's; NULL on out of memory. */
json_t *duka_etims_invoice_body(const duka_sale *sale, char rcpt_ty, const char *rfd_rsn_cd,
                                const char *shop_name);

/* Band totals of a sale by the rule above, for the checker and the hub. Index 0..4 = band
 * A..E. */
typedef struct duka_etims_bands {
    int64_t taxbl_cents[5], tax_cents[5];
} duka_etims_bands;
void duka_etims_sale_bands(const duka_sale *sale, duka_etims_bands *out);

/* An amount of cents (0..DUKA_ETIMS_AMOUNT_CENTS_MAX) as the JSON real eTIMS expects
 * (cents / 100.0, which dumped with DUKA_ETIMS_JSON_FLAGS is the exact decimal). A new
 * reference; NULL on out of memory. */
json_t *duka_etims_amount_json(int64_t cents);

/* The VAT rate eTIMS carries for band index 0..4 (A 0, B 16, C 0, D 0, E 8). */
int duka_etims_band_rate(int band_index);

#endif

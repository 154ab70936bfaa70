/*
 * sale_input.h — what the cashier asks for, before the till prices it: the items (SKU and
 * quantity) and the tenders (how the customer pays), read from the command line
 * (`duka sell SKU[*QTY]… --pay TENDER…`) or from the local API (POST /api/sales).
 *
 * One reader per form and one vocabulary: both forms fill the same duka_sale_input through the
 * same checks, so they accept exactly the same sales and refuse the same mistakes in the same
 * words, naming the field ("items[0].qty: must be a positive number with at most 3 decimals,
 * not -0.5"). Nothing here touches the database: unknown SKUs, amounts above the sale bounds
 * and tenders that do not cover the total are the checkout's to refuse (till/checkout.h),
 * once the sale is priced.
 *
 * Tender syntax (the --pay argument; in JSON a string or an array of strings):
 *   cash | cash:AMOUNT                  cash; AMOUNT = what the customer handed over
 *   mpesa:CODE | mpesa:CODE:AMOUNT      M-Pesa confirmation code typed by the cashier
 *   card:REF | card:REF:AMOUNT          the card terminal's approval reference
 * AMOUNT is KES with up to 2 decimals. A tender without an amount pays the rest of the total
 * (at most one may leave it out). Cash may exceed what is left (the change is given back);
 * M-Pesa and card may not. No tender at all means cash for the whole total.
 */
#ifndef DUKA_SALE_INPUT_H
#define DUKA_SALE_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

typedef struct duka_checkout_item {
    char sku[DUKA_SKU_MAX + 1];
    int64_t qty_milli; /* 1..DUKA_QTY_MILLI_MAX */
} duka_checkout_item;

/* One tender. amount_cents 0: the rest of the total (no amount given); for cash, what the
 * customer handed over, which may be more than is left to pay. */
typedef struct duka_checkout_payment {
    char method[8];                           /* cash | mpesa | card */
    char reference[DUKA_PAYMENT_REF_MAX + 1]; /* M-Pesa code or card reference; "" for cash */
    int64_t amount_cents;
} duka_checkout_payment;

/* The largest cash amount handed over that a tender may name: a sale's largest total. */
#define DUKA_TENDER_CENTS_MAX DUKA_SALE_BOUND_CENTS_MAX

typedef struct duka_sale_input {
    int item_count;
    int payment_count; /* 0: cash for the whole total */
    bool confirm_amount; /* the cashier confirmed a sale above the sanity bounds */
    duka_checkout_payment payments[DUKA_SALE_PAYMENTS_MAX];
    duka_checkout_item items[DUKA_SALE_LINES_MAX];
} duka_sale_input;

/* Heap allocation (the item array is ~36 KB); zeroed. NULL on out of memory. */
duka_sale_input *duka_sale_input_new(void);
void duka_sale_input_free(duka_sale_input *in);

/* A quantity as text (digits with up to 3 decimals, trailing zeros beyond them allowed) or as
 * a JSON number, in thousandths 1..DUKA_QTY_MILLI_MAX; false when it is not one. */
bool duka_qty_from_text(const char *text, int64_t *milli);
bool duka_qty_from_json(const json_t *v, int64_t *milli);

/* DUKA_INPUT "WHEREkey: unknown member (expected EXPECTED)" for the first member of obj not in
 * the NULL-terminated allowed list (a misspelt member must not silently mean its default). */
duka_rc duka_input_only_members(const json_t *obj, const char *where, const char *const *allowed,
                                const char *expected, duka_err *err);

/* Parses "SKU" or "SKU*QTY" (QTY: digits with up to 3 decimals, trailing zeros beyond them
 * allowed: "0.5", "2", "1.2500") into item `index` (0-based, for messages: items[index]). */
duka_rc duka_checkout_parse_item(const char *text, int index, duka_checkout_item *out,
                                 duka_err *err);

/* Parses one tender (syntax above) as pay[index]. NULL text is "cash". */
duka_rc duka_checkout_parse_payment(const char *text, int index, duka_checkout_payment *out,
                                    duka_err *err);

/* Appends an item / a tender given as text (the command line). DUKA_INPUT naming the field
 * when it is malformed or one too many; in is unchanged then. */
duka_rc duka_sale_input_add_item(duka_sale_input *in, const char *text, duka_err *err);
duka_rc duka_sale_input_add_payment(duka_sale_input *in, const char *text, duka_err *err);

/* Reads a POST /api/sales body: {"items": [{"sku": "SUGAR1KG", "qty": 0.5}, …],
 * "pay": TENDER | [TENDER, …], "confirm_amount": bool}. qty is a JSON number (absent: 1);
 * pay and confirm_amount may be absent. Every member of another type, and every member it does
 * not know, is refused naming the field (a misspelt "pay" must not silently become cash). */
duka_rc duka_sale_input_from_json(const json_t *body, duka_sale_input *out, duka_err *err);

/* What both forms check once complete: 1..DUKA_SALE_LINES_MAX items, at most one tender
 * without an amount, at most one cash tender, an M-Pesa code at most once in a sale. */
duka_rc duka_sale_input_validate(const duka_sale_input *in, duka_err *err);

#endif

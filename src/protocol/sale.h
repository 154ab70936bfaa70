/*
 * sale.h — a sale as a fact: what the till committed and the hub stores, and its JSON form
 * on the wire (the payload of a "sale.create" command; see docs/PROTOCOL.md).
 *
 * The same struct is filled by the till when it commits a sale and by the hub when it
 * decodes a pushed one; duka_sale_validate() checks the arithmetic both ways, so a hub never
 * stores a sale whose lines do not add up to its total.
 */
#ifndef DUKA_SALE_H
#define DUKA_SALE_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

typedef struct duka_sale_line {
    char sku[DUKA_SKU_MAX + 1];
    char name[DUKA_PRODUCT_NAME_MAX + 1];
    int64_t qty_milli;
    int64_t unit_price_cents; /* VAT inclusive, at the time of sale */
    char tax_band;            /* 'A'..'E' */
    int64_t line_total_cents;
    int64_t tax_cents;
    /* A refund's line: the line (1-based) of the original sale it gives back; 0 in a sale. */
    int original_line;
} duka_sale_line;

/* Payment methods and states. The table already fits M-Pesa and card:
 *   cash:  captured
 *   mpesa: pending_verification (offline, code typed by the cashier) -> verified | flagged
 *   card:  pending_capture (offline) -> captured | declined */
typedef struct duka_payment {
    char method[8];                       /* "cash" | "mpesa" | "card" */
    int64_t amount_cents;
    char reference[DUKA_PAYMENT_REF_MAX + 1]; /* M-Pesa code or card reference; never a PAN */
    char status[24];
    /* The till's own: cash handed over (>= amount_cents; the change is the difference), 0 when
     * not recorded. Not part of the wire form: the hub counts what was paid, not the change. */
    int64_t tendered_cents;
    /* The till's own too: why the hub flagged an M-Pesa code (its verification), "" when none. */
    char note[DUKA_PAYMENT_NOTE_MAX + 1];
} duka_payment;

/* What a receipt is: a sale, or a refund of (part of) one sale of the same till. A refund is
 * a receipt like a sale — the next number of the till's series, lines, payments (the money
 * given back, status "refunded") — that names its original and a reason; its amounts are
 * positive. On the wire a refund is the payload of "refund.create": the sale's members plus
 * "kind": "refund", "original_receipt_no", "reason" and each line's "original_line" (a sale's
 * payload has none of them, byte for byte as before refunds). */
typedef enum duka_receipt_kind { DUKA_KIND_SALE = 0, DUKA_KIND_REFUND = 1 } duka_receipt_kind;

/* eTIMS refund reason codes (rfdRsnCd), which a refund carries: "01".."06". */
#define DUKA_REFUND_REASON_DEFAULT "06"

typedef struct duka_sale {
    duka_receipt_kind kind;
    char original_receipt_no[DUKA_RECEIPT_NO_MAX + 1]; /* a refund's sale; "" for a sale */
    char reason[3];                                     /* a refund's rfdRsnCd; "" for a sale */
    char receipt_no[DUKA_RECEIPT_NO_MAX + 1];
    char terminal[DUKA_TERMINAL_ID_MAX + 1];
    int64_t created_ms;
    int64_t total_cents;
    int64_t tax_cents;
    /* Who rang it up: the till's cashier logged in (or named by `duka sell --cashier`), as
     * the cashier was then — a later rename on the hub does not rewrite history. Both ""
     * for none; on the wire the optional member "cashier": {"id", "name"}. */
    char cashier_id[DUKA_UUID_STR_LEN + 1];
    char cashier_name[DUKA_CASHIER_NAME_MAX + 1];
    int line_count;
    int payment_count;
    duka_payment payments[DUKA_SALE_PAYMENTS_MAX];
    duka_sale_line lines[DUKA_SALE_LINES_MAX];
} duka_sale;

/* Heap allocation (a sale with its line array is ~120 KB). NULL on out of memory. */
duka_sale *duka_sale_new(void);
void duka_sale_free(duka_sale *sale);

/* Checks bounds and arithmetic (a refund's as below): lines present and within limits, each line total and tax as
 * money.h computes them, totals their sums, payments adding up to the total, receipt number
 * shaped {terminal}-{YYYYMMDD}-{seq}, created_ms within 0..DUKA_TIME_MS_MAX. Quantities are
 * 1..DUKA_QTY_MILLI_MAX, prices 0..DUKA_PRICE_CENTS_MAX, payments 0..the total, a cashier
 * either none (both "") or a UUID with a valid name; with those
 * bounds no sum can overflow int64 (the _Static_asserts in limits.h).
 * A refund: an original_receipt_no of the same terminal other than its own number, a reason
 * "01".."06", each line's original_line 1..DUKA_SALE_LINES_MAX and no two lines giving back
 * the same one, each line total at most unit price x quantity (the last part of a line gives
 * back what is left of its total, which rounding can make a cent less) with its tax as
 * money.h computes it, payments of status "refunded" (and only a refund's are). Whether it
 * stays within its original is for whoever holds the original (till/refund.c, the hub). */
duka_rc duka_sale_validate(const duka_sale *sale, duka_err *err);

/* "sale" or "refund"; the command type that carries it ("sale.create" | "refund.create"). */
const char *duka_receipt_kind_name(duka_receipt_kind kind);
const char *duka_receipt_command_type(duka_receipt_kind kind);

/* True for an eTIMS refund reason code "01".."06"; its words ("Damaged") for the receipt, or
 * NULL for an unknown code. */
int duka_refund_reason_valid(const char *code);
const char *duka_refund_reason_text(const char *code);

/* JSON form (a new reference; NULL on out of memory). */
json_t *duka_sale_to_json(const duka_sale *sale);

/* Decodes and validates; on error names the field ("lines[3].qty_milli: …"). */
duka_rc duka_sale_from_json(const json_t *obj, duka_sale *out, duka_err *err);

/* True when s is a terminal id: 1..16 of [A-Za-z0-9_]. */
int duka_terminal_id_valid(const char *s);

/* True when s is a SKU: 1..64 printable ASCII characters, no spaces, commas or '*'. */
int duka_sku_valid(const char *s);

/* True when s is a cashier's name: 1..DUKA_CASHIER_NAME_MAX bytes of well-formed UTF-8 with no
 * control character, not starting or ending with a space. */
int duka_cashier_name_valid(const char *s);

/* True when pin is DUKA_PIN_LEN_MIN..DUKA_PIN_LEN_MAX ASCII digits. */
int duka_pin_valid(const char *pin);

/* True for "cashier" or "manager". */
int duka_cashier_role_valid(const char *role);

/* Payment methods and states, for validation. */
int duka_payment_method_valid(const char *method);

/* True for a payment reference: up to 64 letters, digits and '-', and never something that
 * looks like a card number (12 or more digits). */
int duka_payment_reference_valid(const char *ref);

#endif

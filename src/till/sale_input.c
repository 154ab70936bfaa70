/* sale_input.c — reading a sale's items and tenders from text and JSON (see sale_input.h). */
#include "till/sale_input.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "protocol/sale.h"

#define QTY_RULE "must be a positive number with at most 3 decimals"
#define TENDER_RULE "is not cash, mpesa:CODE or card:REF (each may end with :AMOUNT in KES)"
#define VALUE_TEXT_MAX 40 /* how much of a bad value a message quotes */

duka_sale_input *duka_sale_input_new(void)
{
    return calloc(1, sizeof(duka_sale_input));
}

void duka_sale_input_free(duka_sale_input *in)
{
    free(in);
}

static bool all_alnum_upper(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
            return false;
    return true;
}

/* Quantity text to thousandths: digits[.digits], at most 3 significant decimals (zeros past
 * them are fine: "1.2500"), 1..DUKA_QTY_MILLI_MAX. */
bool duka_qty_from_text(const char *text, int64_t *milli)
{
    char buf[48];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, text, n + 1);
    const char *dot = strchr(buf, '.');
    if (dot != NULL) {
        while (n > (size_t)(dot - buf) + 4 && buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    return text[0] != '-' && duka_parse_qty(buf, milli, "qty", NULL) == DUKA_OK;
}

/* The quantity of a JSON number: integral thousandths (within rounding of the decimal the
 * client wrote: 3.7 is 3700.0000000000005 thousandths as a double), 1..DUKA_QTY_MILLI_MAX. */
bool duka_qty_from_json(const json_t *v, int64_t *milli)
{
    if (json_is_integer(v)) {
        json_int_t q = json_integer_value(v);
        if (q < 1 || q > DUKA_QTY_MILLI_MAX / 1000)
            return false;
        *milli = (int64_t)q * 1000;
        return true;
    }
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    if (!(d > 0) || d > (double)(DUKA_QTY_MILLI_MAX / 1000))
        return false;
    double m = d * 1000.0, r = nearbyint(m);
    if (fabs(m - r) > 1e-6 || r < 1)
        return false;
    *milli = (int64_t)r;
    return true;
}

/* A short rendering of a JSON value for a message: 0.5, "abc", true, an object. */
static void describe_json(const json_t *v, char *buf, size_t n)
{
    if (v == NULL) {
        snprintf(buf, n, "missing");
        return;
    }
    if (json_is_object(v) || json_is_array(v)) {
        snprintf(buf, n, "%s", json_is_object(v) ? "an object" : "an array");
        return;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (json_is_string(v))
        snprintf(buf, n, "the string %.*s", VALUE_TEXT_MAX, text ? text : "\"\"");
    else
        snprintf(buf, n, "%.*s", VALUE_TEXT_MAX, text ? text : "?");
    free(text);
}

static duka_rc check_sku(const char *sku, int index, duka_err *err)
{
    if (!duka_sku_valid(sku))
        return duka_err_set(err, DUKA_INPUT,
                            "items[%d].sku: '%.*s' is not a SKU (1 to %d printable characters, no "
                            "spaces, ',', '*' or '\"')",
                            index, DUKA_SKU_MAX + 1, sku, DUKA_SKU_MAX);
    return DUKA_OK;
}

duka_rc duka_checkout_parse_item(const char *text, int index, duka_checkout_item *out,
                                 duka_err *err)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        text = "";
    const char *star = strchr(text, '*');
    size_t sku_len = star ? (size_t)(star - text) : strlen(text);
    if (sku_len > DUKA_SKU_MAX)
        return duka_err_set(err, DUKA_INPUT, "items[%d].sku: longer than %d characters", index,
                            DUKA_SKU_MAX);
    memcpy(out->sku, text, sku_len);
    out->sku[sku_len] = '\0';
    if (check_sku(out->sku, index, err) != DUKA_OK)
        return DUKA_INPUT;
    if (star == NULL) {
        out->qty_milli = 1000;
        return DUKA_OK;
    }
    if (!duka_qty_from_text(star + 1, &out->qty_milli))
        return duka_err_set(err, DUKA_INPUT, "items[%d].qty: " QTY_RULE ", at most %lld, not '%.*s'",
                            index, DUKA_QTY_MILLI_MAX / 1000, VALUE_TEXT_MAX, star + 1);
    return DUKA_OK;
}

/* Splits "REF:AMOUNT" (or "AMOUNT" for cash) off the part after the method. */
static duka_rc parse_amount_part(const char *text, int index, const char *method,
                                 int64_t *amount, duka_err *err)
{
    char what[48];
    snprintf(what, sizeof(what), "pay[%d] (%s amount)", index, method);
    duka_err e = {0};
    if (duka_parse_amount(text, DUKA_TENDER_CENTS_MAX, amount, what, &e) != DUKA_OK)
        return duka_err_set(err, DUKA_INPUT, "%s", e.msg);
    if (*amount == 0)
        return duka_err_set(err, DUKA_INPUT,
                            "pay[%d]: %s amount is zero; leave the amount out to pay the rest",
                            index, method);
    return DUKA_OK;
}

duka_rc duka_checkout_parse_payment(const char *text, int index, duka_checkout_payment *out,
                                    duka_err *err)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        text = "cash";
    const char *colon = strchr(text, ':');
    size_t mlen = colon ? (size_t)(colon - text) : strlen(text);
    const char *rest = colon ? colon + 1 : NULL;
    if (mlen == 4 && strncmp(text, "cash", 4) == 0) {
        snprintf(out->method, sizeof(out->method), "cash");
        return rest == NULL ? DUKA_OK : parse_amount_part(rest, index, "cash", &out->amount_cents, err);
    }
    bool mpesa = mlen == 5 && strncmp(text, "mpesa", 5) == 0;
    bool card = mlen == 4 && strncmp(text, "card", 4) == 0;
    if (!mpesa && !card)
        return duka_err_set(err, DUKA_INPUT, "pay[%d]: '%.*s' " TENDER_RULE, index, VALUE_TEXT_MAX,
                            text);
    const char *ref = rest ? rest : "";
    const char *amount = strchr(ref, ':');
    size_t rlen = amount ? (size_t)(amount - ref) : strlen(ref);
    if (mpesa) {
        /* M-Pesa confirmation codes are 10 upper-case letters and digits, e.g. QK12AB34CD. */
        if (rlen != 10 || !all_alnum_upper(ref, 10))
            return duka_err_set(err, DUKA_INPUT,
                                "pay[%d]: M-Pesa code '%.*s' is not 10 capital letters and digits "
                                "like QK12AB34CD",
                                index, (int)(rlen < VALUE_TEXT_MAX ? rlen : VALUE_TEXT_MAX), ref);
        snprintf(out->method, sizeof(out->method), "mpesa");
    } else {
        if (rlen == 0 || rlen > DUKA_PAYMENT_REF_MAX)
            return duka_err_set(err, DUKA_INPUT,
                                "pay[%d]: card reference must be 1 to %d characters (card:REF)",
                                index, DUKA_PAYMENT_REF_MAX);
        char r[DUKA_PAYMENT_REF_MAX + 1];
        memcpy(r, ref, rlen);
        r[rlen] = '\0';
        if (!duka_payment_reference_valid(r))
            return duka_err_set(err, DUKA_INPUT,
                                "pay[%d]: card reference '%.*s…' must be the terminal's approval "
                                "reference (letters, digits, '-'), never the card number",
                                index, 4, r);
        snprintf(out->method, sizeof(out->method), "card");
    }
    memcpy(out->reference, ref, rlen);
    out->reference[rlen] = '\0';
    return amount == NULL ? DUKA_OK
                          : parse_amount_part(amount + 1, index, out->method, &out->amount_cents, err);
}

duka_rc duka_sale_input_add_item(duka_sale_input *in, const char *text, duka_err *err)
{
    if (in->item_count >= DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_INPUT, "items: a sale has at most %d items",
                            DUKA_SALE_LINES_MAX);
    if (duka_checkout_parse_item(text, in->item_count, &in->items[in->item_count], err) != DUKA_OK)
        return DUKA_INPUT;
    in->item_count++;
    return DUKA_OK;
}

duka_rc duka_sale_input_add_payment(duka_sale_input *in, const char *text, duka_err *err)
{
    if (in->payment_count >= DUKA_SALE_PAYMENTS_MAX)
        return duka_err_set(err, DUKA_INPUT, "pay: a sale has at most %d payments",
                            DUKA_SALE_PAYMENTS_MAX);
    if (duka_checkout_parse_payment(text, in->payment_count, &in->payments[in->payment_count],
                                    err) != DUKA_OK)
        return DUKA_INPUT;
    in->payment_count++;
    return DUKA_OK;
}

/* Refuses members of obj other than the allowed ones (NULL-terminated), naming the first. */
duka_rc duka_input_only_members(const json_t *obj, const char *where, const char *const *allowed,
                                const char *expected, duka_err *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, key, v) {
        bool known = false;
        for (int i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return duka_err_set(err, DUKA_INPUT, "%s%.*s: unknown member (expected %s)", where,
                                VALUE_TEXT_MAX, key, expected);
    }
    return DUKA_OK;
}

static duka_rc item_from_json(const json_t *it, int index, duka_checkout_item *out,
                              duka_err *err)
{
    static const char *const allowed[] = {"sku", "qty", NULL};
    char what[64], where[32];
    memset(out, 0, sizeof(*out));
    if (!json_is_object(it)) {
        describe_json(it, what, sizeof(what));
        return duka_err_set(err, DUKA_INPUT, "items[%d]: must be an object {\"sku\", \"qty\"}, not %s",
                            index, what);
    }
    snprintf(where, sizeof(where), "items[%d].", index);
    if (duka_input_only_members(it, where, allowed, "sku, qty", err) != DUKA_OK)
        return DUKA_INPUT;
    const json_t *sku = json_object_get(it, "sku");
    if (!json_is_string(sku)) {
        describe_json(sku, what, sizeof(what));
        return duka_err_set(err, DUKA_INPUT, "items[%d].sku: must be a string, not %s", index, what);
    }
    if (json_string_length(sku) > DUKA_SKU_MAX)
        return duka_err_set(err, DUKA_INPUT, "items[%d].sku: longer than %d characters", index,
                            DUKA_SKU_MAX);
    snprintf(out->sku, sizeof(out->sku), "%s", json_string_value(sku));
    if (strlen(out->sku) != json_string_length(sku))
        return duka_err_set(err, DUKA_INPUT, "items[%d].sku: contains a NUL character", index);
    if (check_sku(out->sku, index, err) != DUKA_OK)
        return DUKA_INPUT;
    const json_t *qty = json_object_get(it, "qty");
    if (qty == NULL) {
        out->qty_milli = 1000;
        return DUKA_OK;
    }
    if (!duka_qty_from_json(qty, &out->qty_milli)) {
        describe_json(qty, what, sizeof(what));
        return duka_err_set(err, DUKA_INPUT, "items[%d].qty: " QTY_RULE ", at most %lld, not %s",
                            index, DUKA_QTY_MILLI_MAX / 1000, what);
    }
    return DUKA_OK;
}

static duka_rc payment_from_json(const json_t *p, int index, duka_sale_input *out, duka_err *err)
{
    if (!json_is_string(p)) {
        char what[64];
        describe_json(p, what, sizeof(what));
        return duka_err_set(err, DUKA_INPUT,
                            "pay[%d]: must be a string like \"cash\", \"cash:500\", "
                            "\"mpesa:QK12AB34CD\" or \"card:REF\", not %s",
                            index, what);
    }
    if (strlen(json_string_value(p)) != json_string_length(p))
        return duka_err_set(err, DUKA_INPUT, "pay[%d]: contains a NUL character", index);
    return duka_sale_input_add_payment(out, json_string_value(p), err);
}

duka_rc duka_sale_input_from_json(const json_t *body, duka_sale_input *out, duka_err *err)
{
    static const char *const allowed[] = {"items", "pay", "confirm_amount", NULL};
    char what[64];
    out->item_count = 0;
    out->payment_count = 0;
    out->confirm_amount = false;
    if (!json_is_object(body)) {
        describe_json(body, what, sizeof(what));
        return duka_err_set(err, DUKA_INPUT,
                            "body: must be an object {\"items\": [...], \"pay\": ...}, not %s", what);
    }
    if (duka_input_only_members(body, "", allowed, "items, pay, confirm_amount", err) != DUKA_OK)
        return DUKA_INPUT;
    const json_t *items = json_object_get(body, "items");
    if (!json_is_array(items) || json_array_size(items) < 1 ||
        json_array_size(items) > DUKA_SALE_LINES_MAX) {
        describe_json(items, what, sizeof(what));
        if (json_is_array(items))
            snprintf(what, sizeof(what), "%zu items", json_array_size(items));
        return duka_err_set(err, DUKA_INPUT, "items: must be an array of 1 to %d items, not %s",
                            DUKA_SALE_LINES_MAX, what);
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        if (item_from_json(json_array_get(items, i), (int)i, &out->items[i], err) != DUKA_OK)
            return DUKA_INPUT;
        out->item_count++;
    }
    const json_t *pay = json_object_get(body, "pay");
    if (json_is_array(pay)) {
        if (json_array_size(pay) < 1 || json_array_size(pay) > DUKA_SALE_PAYMENTS_MAX)
            return duka_err_set(err, DUKA_INPUT, "pay: must hold 1 to %d payments, not %zu",
                                DUKA_SALE_PAYMENTS_MAX, json_array_size(pay));
        for (size_t i = 0; i < json_array_size(pay); i++)
            if (payment_from_json(json_array_get(pay, i), (int)i, out, err) != DUKA_OK)
                return DUKA_INPUT;
    } else if (pay != NULL && payment_from_json(pay, 0, out, err) != DUKA_OK) {
        return DUKA_INPUT;
    }
    const json_t *confirm = json_object_get(body, "confirm_amount");
    if (confirm != NULL && !json_is_boolean(confirm)) {
        describe_json(confirm, what, sizeof(what));
        return duka_err_set(err, DUKA_INPUT, "confirm_amount: must be true or false, not %s", what);
    }
    out->confirm_amount = json_is_true(confirm);
    return duka_sale_input_validate(out, err);
}

duka_rc duka_sale_input_validate(const duka_sale_input *in, duka_err *err)
{
    if (in->item_count < 1 || in->item_count > DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_INPUT, "items: a sale needs 1 to %d items, not %d",
                            DUKA_SALE_LINES_MAX, in->item_count);
    if (in->payment_count < 0 || in->payment_count > DUKA_SALE_PAYMENTS_MAX)
        return duka_err_set(err, DUKA_INPUT, "pay: a sale has at most %d payments",
                            DUKA_SALE_PAYMENTS_MAX);
    int rest = -1, cash = -1;
    for (int i = 0; i < in->payment_count; i++) {
        const duka_checkout_payment *p = &in->payments[i];
        if (p->amount_cents == 0) {
            if (rest >= 0)
                return duka_err_set(err, DUKA_INPUT,
                                    "pay[%d]: pay[%d] already pays the rest; give this one an "
                                    "amount (%s:…:AMOUNT)",
                                    i, rest, p->method);
            rest = i;
        }
        if (strcmp(p->method, "cash") == 0) {
            if (cash >= 0)
                return duka_err_set(err, DUKA_INPUT,
                                    "pay[%d]: a second cash payment; give the cash handed over "
                                    "once (cash:AMOUNT)",
                                    i);
            cash = i;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(p->method, "mpesa") == 0 && strcmp(in->payments[j].method, "mpesa") == 0 &&
                strcmp(p->reference, in->payments[j].reference) == 0)
                return duka_err_set(err, DUKA_INPUT,
                                    "pay[%d]: M-Pesa code %s is already pay[%d] of this sale", i,
                                    p->reference, j);
    }
    return DUKA_OK;
}

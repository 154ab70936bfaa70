/* sale.c — sale validation and its JSON form (see sale.h, docs/PROTOCOL.md). */
#include "protocol/sale.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "common/text.h"
#include "common/uuid.h"

duka_sale *duka_sale_new(void)
{
    return calloc(1, sizeof(duka_sale));
}

void duka_sale_free(duka_sale *sale)
{
    free(sale);
}

int duka_terminal_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DUKA_TERMINAL_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

int duka_sku_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DUKA_SKU_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == ',' || c == '*' || c == '"')
            return 0;
    }
    return 1;
}

int duka_cashier_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DUKA_CASHIER_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        size_t len = duka_utf8_sequence(s + i);
        if (len == 0)
            return 0;
        /* C1 controls (U+0080..U+009F) are two bytes, C2 80..C2 9F. */
        if (len == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)
            return 0;
        i += len;
    }
    return 1;
}

int duka_pin_valid(const char *pin)
{
    size_t n = pin ? strlen(pin) : 0;
    if (n < DUKA_PIN_LEN_MIN || n > DUKA_PIN_LEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (pin[i] < '0' || pin[i] > '9')
            return 0;
    return 1;
}

int duka_cashier_role_valid(const char *role)
{
    return role && (strcmp(role, "cashier") == 0 || strcmp(role, "manager") == 0);
}

int duka_payment_reference_valid(const char *ref)
{
    size_t n = ref ? strlen(ref) : 0, digits = 0;
    if (ref == NULL || n > DUKA_PAYMENT_REF_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)ref[i]) && ref[i] != '-')
            return 0;
        digits += isdigit((unsigned char)ref[i]) != 0;
    }
    /* A card number must never be stored anywhere: 12 or more digits look like one. */
    return digits < 12;
}

/* A sale's payment states; a refund's money given back is "refunded", and only that. */
static int payment_status_valid(const char *status, duka_receipt_kind kind)
{
    static const char *const known[] = {"captured", "pending_verification", "verified",
                                        "flagged", "pending_capture", "declined"};
    if (kind == DUKA_KIND_REFUND)
        return strcmp(status, "refunded") == 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(status, known[i]) == 0)
            return 1;
    return 0;
}

/* The eTIMS code list of refund reasons (rfdRsnCd). */
static const char *const refund_reasons[][2] = {
    {"01", "Missing quantity"}, {"02", "Missing item"},          {"03", "Damaged"},
    {"04", "Wasted"},           {"05", "Raw material shortage"}, {"06", "Refund"},
};

const char *duka_refund_reason_text(const char *code)
{
    for (size_t i = 0; code && i < sizeof(refund_reasons) / sizeof(refund_reasons[0]); i++)
        if (strcmp(code, refund_reasons[i][0]) == 0)
            return refund_reasons[i][1];
    return NULL;
}

int duka_refund_reason_valid(const char *code)
{
    return duka_refund_reason_text(code) != NULL;
}

const char *duka_receipt_kind_name(duka_receipt_kind kind)
{
    return kind == DUKA_KIND_REFUND ? "refund" : "sale";
}

const char *duka_receipt_command_type(duka_receipt_kind kind)
{
    return kind == DUKA_KIND_REFUND ? "refund.create" : "sale.create";
}

int duka_payment_method_valid(const char *m)
{
    return m && (strcmp(m, "cash") == 0 || strcmp(m, "mpesa") == 0 || strcmp(m, "card") == 0);
}

static int receipt_shape_valid(const char *receipt, const char *terminal)
{
    size_t tl = strlen(terminal);
    if (strncmp(receipt, terminal, tl) != 0 || receipt[tl] != '-')
        return 0;
    const char *p = receipt + tl + 1;
    for (int i = 0; i < 8; i++)
        if (!isdigit((unsigned char)p[i]))
            return 0;
    if (p[8] != '-')
        return 0;
    p += 9;
    size_t digits = strlen(p);
    if (digits < 5 || digits > 12)
        return 0;
    for (size_t i = 0; i < digits; i++)
        if (!isdigit((unsigned char)p[i]))
            return 0;
    return 1;
}

duka_rc duka_sale_validate(const duka_sale *s, duka_err *err)
{
    if (!duka_terminal_id_valid(s->terminal))
        return duka_err_set(err, DUKA_INPUT, "terminal: '%s' is not a terminal id", s->terminal);
    if (!receipt_shape_valid(s->receipt_no, s->terminal))
        return duka_err_set(err, DUKA_INPUT,
                            "receipt_no: '%s' is not {terminal}-{YYYYMMDD}-{seq} of terminal %s",
                            s->receipt_no, s->terminal);
    if (s->created_ms < 0 || s->created_ms > DUKA_TIME_MS_MAX)
        return duka_err_set(err, DUKA_INPUT, "created_ms: %lld out of range 0..%lld",
                            (long long)s->created_ms, DUKA_TIME_MS_MAX);
    bool refund = s->kind == DUKA_KIND_REFUND;
    if (s->kind != DUKA_KIND_SALE && !refund)
        return duka_err_set(err, DUKA_INPUT, "kind: neither a sale nor a refund");
    if (refund) {
        if (!receipt_shape_valid(s->original_receipt_no, s->terminal) ||
            strcmp(s->original_receipt_no, s->receipt_no) == 0)
            return duka_err_set(err, DUKA_INPUT,
                                "original_receipt_no: '%s' is not another receipt of terminal %s",
                                s->original_receipt_no, s->terminal);
        if (!duka_refund_reason_valid(s->reason))
            return duka_err_set(err, DUKA_INPUT, "reason: '%s' is not a refund reason 01..06",
                                s->reason);
    } else if (s->original_receipt_no[0] != '\0' || s->reason[0] != '\0') {
        return duka_err_set(err, DUKA_INPUT, "original_receipt_no: a sale refunds nothing");
    }
    if (s->cashier_id[0] != '\0' || s->cashier_name[0] != '\0') {
        if (!duka_uuid_valid(s->cashier_id))
            return duka_err_set(err, DUKA_INPUT, "cashier.id: '%s' is not a UUID", s->cashier_id);
        if (!duka_cashier_name_valid(s->cashier_name))
            return duka_err_set(err, DUKA_INPUT,
                                "cashier.name: 1 to %d bytes of UTF-8 text, no control characters",
                                DUKA_CASHIER_NAME_MAX);
    }
    if (s->line_count < 1 || s->line_count > DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_INPUT, "lines: a sale has 1 to %d lines, not %d",
                            DUKA_SALE_LINES_MAX, s->line_count);
    if (s->payment_count < 1 || s->payment_count > DUKA_SALE_PAYMENTS_MAX)
        return duka_err_set(err, DUKA_INPUT, "payments: a sale has 1 to %d payments, not %d",
                            DUKA_SALE_PAYMENTS_MAX, s->payment_count);
    int64_t total = 0, tax = 0;
    for (int i = 0; i < s->line_count; i++) {
        const duka_sale_line *l = &s->lines[i];
        if (!duka_sku_valid(l->sku))
            return duka_err_set(err, DUKA_INPUT, "lines[%d].sku: '%s' is not a SKU", i, l->sku);
        if (l->qty_milli <= 0 || l->qty_milli > DUKA_QTY_MILLI_MAX)
            return duka_err_set(err, DUKA_INPUT, "lines[%d].qty_milli: %lld out of range 1..%lld",
                                i, (long long)l->qty_milli, DUKA_QTY_MILLI_MAX);
        if (l->unit_price_cents < 0 || l->unit_price_cents > DUKA_PRICE_CENTS_MAX)
            return duka_err_set(err, DUKA_INPUT, "lines[%d].unit_price_cents: %lld out of range",
                                i, (long long)l->unit_price_cents);
        if (!duka_tax_band_valid(l->tax_band))
            return duka_err_set(err, DUKA_INPUT, "lines[%d].tax_band: not one of A-E", i);
        int64_t lt = duka_line_total(l->unit_price_cents, l->qty_milli);
        if (refund) {
            if (l->original_line < 1 || l->original_line > DUKA_SALE_LINES_MAX)
                return duka_err_set(err, DUKA_INPUT, "lines[%d].original_line: %d out of range 1..%d",
                                    i, l->original_line, DUKA_SALE_LINES_MAX);
            for (int j = 0; j < i; j++)
                if (s->lines[j].original_line == l->original_line)
                    return duka_err_set(err, DUKA_INPUT,
                                        "lines[%d].original_line: line %d is given back twice", i,
                                        l->original_line);
            if (l->line_total_cents < 0 || l->line_total_cents > lt)
                return duka_err_set(err, DUKA_INPUT,
                                    "lines[%d].line_total_cents: %lld, at most %lld", i,
                                    (long long)l->line_total_cents, (long long)lt);
            lt = l->line_total_cents;
        } else if (l->original_line != 0) {
            return duka_err_set(err, DUKA_INPUT, "lines[%d].original_line: a sale's line has none",
                                i);
        }
        if (lt != l->line_total_cents)
            return duka_err_set(err, DUKA_INPUT, "lines[%d].line_total_cents: %lld, expected %lld",
                                i, (long long)l->line_total_cents, (long long)lt);
        int64_t lx = duka_tax_of_gross(lt, (duka_tax_band)l->tax_band);
        if (lx != l->tax_cents)
            return duka_err_set(err, DUKA_INPUT, "lines[%d].tax_cents: %lld, expected %lld", i,
                                (long long)l->tax_cents, (long long)lx);
        total += lt;
        tax += lx;
    }
    if (total != s->total_cents)
        return duka_err_set(err, DUKA_INPUT, "total_cents: %lld, but the lines add up to %lld",
                            (long long)s->total_cents, (long long)total);
    if (tax != s->tax_cents)
        return duka_err_set(err, DUKA_INPUT, "tax_cents: %lld, but the lines add up to %lld",
                            (long long)s->tax_cents, (long long)tax);
    int64_t paid = 0;
    for (int i = 0; i < s->payment_count; i++) {
        const duka_payment *p = &s->payments[i];
        if (!duka_payment_method_valid(p->method))
            return duka_err_set(err, DUKA_INPUT, "payments[%d].method: '%s' is not cash, mpesa or card",
                                i, p->method);
        if (!duka_payment_reference_valid(p->reference))
            return duka_err_set(err, DUKA_INPUT,
                                "payments[%d].reference: letters, digits and '-' only, and never "
                                "a card number",
                                i);
        if (!payment_status_valid(p->status, s->kind))
            return duka_err_set(err, DUKA_INPUT, "payments[%d].status: '%s' is not a payment state",
                                i, p->status);
        if (p->amount_cents < 0 || p->amount_cents > total)
            return duka_err_set(err, DUKA_INPUT, "payments[%d].amount_cents: %lld out of range", i,
                                (long long)p->amount_cents);
        paid += p->amount_cents;
    }
    if (paid != total)
        return duka_err_set(err, DUKA_INPUT, "payments: %lld paid for a total of %lld",
                            (long long)paid, (long long)total);
    return DUKA_OK;
}

json_t *duka_sale_to_json(const duka_sale *s)
{
    json_t *lines = json_array();
    json_t *pays = json_array();
    for (int i = 0; i < s->line_count; i++) {
        const duka_sale_line *l = &s->lines[i];
        char band[2] = {l->tax_band, '\0'};
        json_t *jl = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "sku", l->sku, "name",
                               l->name, "qty_milli", (json_int_t)l->qty_milli,
                               "unit_price_cents", (json_int_t)l->unit_price_cents, "tax_band",
                               band, "line_total_cents", (json_int_t)l->line_total_cents,
                               "tax_cents", (json_int_t)l->tax_cents);
        if (jl != NULL && s->kind == DUKA_KIND_REFUND)
            json_object_set_new(jl, "original_line", json_integer(l->original_line));
        json_array_append_new(lines, jl);
    }
    for (int i = 0; i < s->payment_count; i++) {
        const duka_payment *p = &s->payments[i];
        json_array_append_new(pays, json_pack("{s:s, s:I, s:s, s:s}", "method", p->method,
                                              "amount_cents", (json_int_t)p->amount_cents,
                                              "reference", p->reference, "status", p->status));
    }
    json_t *js = json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "receipt_no", s->receipt_no,
                           "terminal", s->terminal, "created_ms", (json_int_t)s->created_ms,
                           "total_cents", (json_int_t)s->total_cents, "tax_cents",
                           (json_int_t)s->tax_cents, "lines", lines, "payments", pays);
    /* Absent for a sale with no cashier: the payload of such a sale is byte for byte what it
     * was before cashiers, so a resend from an older queue hashes the same. */
    if (js != NULL && s->cashier_id[0] != '\0' &&
        json_object_set_new(js, "cashier",
                            json_pack("{s:s, s:s}", "id", s->cashier_id, "name",
                                      s->cashier_name)) != 0) {
        json_decref(js);
        return NULL;
    }
    if (js != NULL && s->kind == DUKA_KIND_REFUND &&
        (json_object_set_new(js, "kind", json_string("refund")) != 0 ||
         json_object_set_new(js, "original_receipt_no", json_string(s->original_receipt_no)) !=
             0 ||
         json_object_set_new(js, "reason", json_string(s->reason)) != 0)) {
        json_decref(js);
        return NULL;
    }
    return js;
}

/* Copies a string member into buf, failing when missing, not a string, or too long. */
static duka_rc get_str(const json_t *obj, const char *key, char *buf, size_t buflen,
                       const char *where, duka_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return duka_err_set(err, DUKA_INPUT, "%s%s: missing or not a string", where, key);
    size_t n = json_string_length(v);
    if (n >= buflen)
        return duka_err_set(err, DUKA_INPUT, "%s%s: longer than %zu characters", where, key,
                            buflen - 1);
    memcpy(buf, json_string_value(v), n + 1);
    if (memchr(buf, '\0', n) != NULL)
        return duka_err_set(err, DUKA_INPUT, "%s%s: contains a NUL character", where, key);
    return DUKA_OK;
}

static duka_rc get_int(const json_t *obj, const char *key, int64_t *out, const char *where,
                       duka_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return duka_err_set(err, DUKA_INPUT, "%s%s: missing or not an integer", where, key);
    *out = (int64_t)json_integer_value(v);
    return DUKA_OK;
}

duka_rc duka_sale_from_json(const json_t *obj, duka_sale *s, duka_err *err)
{
    memset(s, 0, offsetof(duka_sale, lines));
    if (!json_is_object(obj))
        return duka_err_set(err, DUKA_INPUT, "payload: not a JSON object");
    if (get_str(obj, "receipt_no", s->receipt_no, sizeof(s->receipt_no), "", err) ||
        get_str(obj, "terminal", s->terminal, sizeof(s->terminal), "", err) ||
        get_int(obj, "created_ms", &s->created_ms, "", err) ||
        get_int(obj, "total_cents", &s->total_cents, "", err) ||
        get_int(obj, "tax_cents", &s->tax_cents, "", err))
        return DUKA_INPUT;
    const json_t *kind = json_object_get(obj, "kind");
    if (kind != NULL) {
        if (!json_is_string(kind) || (strcmp(json_string_value(kind), "refund") != 0 &&
                                      strcmp(json_string_value(kind), "sale") != 0))
            return duka_err_set(err, DUKA_INPUT, "kind: not \"sale\" or \"refund\"");
        s->kind = strcmp(json_string_value(kind), "refund") == 0 ? DUKA_KIND_REFUND
                                                                  : DUKA_KIND_SALE;
    }
    if (s->kind == DUKA_KIND_REFUND &&
        (get_str(obj, "original_receipt_no", s->original_receipt_no,
                 sizeof(s->original_receipt_no), "", err) ||
         get_str(obj, "reason", s->reason, sizeof(s->reason), "", err)))
        return DUKA_INPUT;
    const json_t *cashier = json_object_get(obj, "cashier");
    if (cashier != NULL && !json_is_null(cashier)) {
        if (!json_is_object(cashier))
            return duka_err_set(err, DUKA_INPUT, "cashier: not an object");
        if (get_str(cashier, "id", s->cashier_id, sizeof(s->cashier_id), "cashier.", err) ||
            get_str(cashier, "name", s->cashier_name, sizeof(s->cashier_name), "cashier.", err))
            return DUKA_INPUT;
        if (s->cashier_id[0] == '\0')
            return duka_err_set(err, DUKA_INPUT, "cashier.id: '' is not a UUID");
    }
    const json_t *lines = json_object_get(obj, "lines");
    const json_t *pays = json_object_get(obj, "payments");
    if (!json_is_array(lines) || json_array_size(lines) < 1 ||
        json_array_size(lines) > DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_INPUT, "lines: must be an array of 1 to %d lines",
                            DUKA_SALE_LINES_MAX);
    if (!json_is_array(pays) || json_array_size(pays) < 1 ||
        json_array_size(pays) > DUKA_SALE_PAYMENTS_MAX)
        return duka_err_set(err, DUKA_INPUT, "payments: must be an array of 1 to %d payments",
                            DUKA_SALE_PAYMENTS_MAX);
    char where[48];
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const json_t *l = json_array_get(lines, i);
        duka_sale_line *sl = &s->lines[i];
        char band[4];
        snprintf(where, sizeof(where), "lines[%zu].", i);
        if (!json_is_object(l))
            return duka_err_set(err, DUKA_INPUT, "lines[%zu]: not an object", i);
        if (get_str(l, "sku", sl->sku, sizeof(sl->sku), where, err) ||
            get_str(l, "name", sl->name, sizeof(sl->name), where, err) ||
            get_int(l, "qty_milli", &sl->qty_milli, where, err) ||
            get_int(l, "unit_price_cents", &sl->unit_price_cents, where, err) ||
            get_str(l, "tax_band", band, sizeof(band), where, err) ||
            get_int(l, "line_total_cents", &sl->line_total_cents, where, err) ||
            get_int(l, "tax_cents", &sl->tax_cents, where, err))
            return DUKA_INPUT;
        sl->original_line = 0;
        if (s->kind == DUKA_KIND_REFUND) {
            int64_t ol = 0;
            if (get_int(l, "original_line", &ol, where, err))
                return DUKA_INPUT;
            if (ol < 1 || ol > DUKA_SALE_LINES_MAX)
                return duka_err_set(err, DUKA_INPUT, "%soriginal_line: %lld out of range 1..%d",
                                    where, (long long)ol, DUKA_SALE_LINES_MAX);
            sl->original_line = (int)ol;
        }
        if (strlen(band) != 1 || !duka_tax_band_valid(band[0]))
            return duka_err_set(err, DUKA_INPUT, "%stax_band: '%s' is not one of A-E", where, band);
        sl->tax_band = band[0];
        s->line_count++;
    }
    for (size_t i = 0; i < json_array_size(pays); i++) {
        const json_t *p = json_array_get(pays, i);
        duka_payment *sp = &s->payments[i];
        snprintf(where, sizeof(where), "payments[%zu].", i);
        if (!json_is_object(p))
            return duka_err_set(err, DUKA_INPUT, "payments[%zu]: not an object", i);
        if (get_str(p, "method", sp->method, sizeof(sp->method), where, err) ||
            get_int(p, "amount_cents", &sp->amount_cents, where, err) ||
            get_str(p, "reference", sp->reference, sizeof(sp->reference), where, err) ||
            get_str(p, "status", sp->status, sizeof(sp->status), where, err))
            return DUKA_INPUT;
        s->payment_count++;
    }
    return duka_sale_validate(s, err);
}

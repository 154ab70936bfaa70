/* sale_view.c — the sale reply, the printed receipt, a sale read back (see sale_view.h). */
#include "till/sale_view.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/money.h"
#include "common/text.h"
#include "store/db.h"
#include "till/till_db.h"

duka_rc duka_receipt_shop_load(sqlite3 *db, duka_receipt_shop *out, duka_err *err)
{
    memset(out, 0, sizeof(*out));
    if (duka_meta_get(db, DUKA_META_SHOP_NAME, out->name, sizeof(out->name), NULL, err) ||
        duka_meta_get(db, DUKA_META_KRA_PIN, out->kra_pin, sizeof(out->kra_pin), NULL, err))
        return DUKA_STORE;
    return DUKA_OK;
}

const char *duka_sale_payment_status(const duka_sale *s)
{
    if (s->kind == DUKA_KIND_REFUND)
        return "refunded";
    const char *worst = "captured";
    for (int i = 0; i < s->payment_count; i++) {
        if (strcmp(s->payments[i].status, "flagged") == 0)
            return "flagged";
        if (strcmp(s->payments[i].status, "pending_verification") == 0)
            worst = "pending_verification";
        if (strcmp(s->payments[i].status, "pending_capture") == 0 &&
            strcmp(worst, "captured") == 0)
            worst = "pending_capture";
    }
    return worst;
}

/* Cash handed back: what the cash payment's tender exceeded its amount by. */
static int64_t change_of(const duka_sale *s)
{
    for (int i = 0; i < s->payment_count; i++)
        if (strcmp(s->payments[i].method, "cash") == 0 &&
            s->payments[i].tendered_cents > s->payments[i].amount_cents)
            return s->payments[i].tendered_cents - s->payments[i].amount_cents;
    return 0;
}

json_t *duka_sale_reply_json(const duka_sale *s, const duka_checkout_result *res)
{
    json_t *pays = json_array(), *warnings = json_array();
    for (int i = 0; i < s->payment_count; i++) {
        const duka_payment *p = &s->payments[i];
        json_t *o = json_pack("{s:s, s:I, s:s, s:s}", "method", p->method, "amount",
                              (json_int_t)p->amount_cents, "reference", p->reference, "status",
                              p->status);
        if (strcmp(p->method, "cash") == 0 && p->tendered_cents > 0)
            json_object_set_new(o, "tendered", json_integer(p->tendered_cents));
        if (p->note[0] != '\0')
            json_object_set_new(o, "note", json_string(p->note));
        json_array_append_new(pays, o);
    }
    for (int i = 0; res != NULL && i < res->warning_count; i++)
        json_array_append_new(warnings, json_pack("{s:s, s:s}", "code", res->warnings[i].code,
                                                  "message", res->warnings[i].message));
    json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:I, s:o, s:o}", "receipt_no", s->receipt_no,
                          "total", (json_int_t)s->total_cents, "tax", (json_int_t)s->tax_cents,
                          "sync", "pending", "payment_status", duka_sale_payment_status(s),
                          "change", (json_int_t)change_of(s), "payments", pays, "warnings",
                          warnings);
    if (o != NULL && res != NULL && res->command_id[0] != '\0')
        json_object_set_new(o, "command_id", json_string(res->command_id));
    if (o != NULL) {
        json_object_set_new(o, "kind", json_string(duka_receipt_kind_name(s->kind)));
        if (s->kind == DUKA_KIND_REFUND) {
            json_object_set_new(o, "original_receipt_no", json_string(s->original_receipt_no));
            json_object_set_new(o, "reason", json_string(s->reason));
            const char *why = duka_refund_reason_text(s->reason);
            json_object_set_new(o, "reason_text", json_string(why ? why : ""));
        }
    }
    if (o != NULL)
        json_object_set_new(o, "cashier",
                            s->cashier_id[0] != '\0'
                                ? json_pack("{s:s, s:s}", "id", s->cashier_id, "name",
                                            s->cashier_name)
                                : json_null());
    return o;
}

/* ---- the printed receipt ---- */

typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_buf *b, const char *fmt, ...)
{
    if (b->n + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n += (size_t)k < b->cap - b->n ? (size_t)k : b->cap - b->n - 1;
}

/* "left ............. right": right-aligned in DUKA_RECEIPT_WIDTH columns (ASCII only). */
static void put_row(text_buf *b, const char *left, const char *right)
{
    int pad = DUKA_RECEIPT_WIDTH - (int)strlen(left) - (int)strlen(right);
    put(b, "%s%*s%s\n", left, pad > 1 ? pad : 1, "", right);
}

static void put_centered(text_buf *b, const char *text)
{
    int pad = (DUKA_RECEIPT_WIDTH - (int)strlen(text)) / 2;
    put(b, "%*s%s\n", pad > 0 ? pad : 0, "", text);
}

static void put_rule(text_buf *b)
{
    put(b, "%.*s\n", DUKA_RECEIPT_WIDTH, "----------------------------------------------------");
}

static const char *method_label(const char *m)
{
    return strcmp(m, "mpesa") == 0 ? "M-Pesa" : strcmp(m, "card") == 0 ? "Card" : "Cash";
}

/* "label value" on one line when it fits, else the label and the value indented below. */
static void put_label(text_buf *b, const char *label, const char *value)
{
    if (strlen(label) + 1 + strlen(value) <= DUKA_RECEIPT_WIDTH)
        put(b, "%s %s\n", label, value);
    else
        put(b, "%s\n  %s\n", label, value);
}

/* The control unit's block, as Odoo's l10n_ke_edi_oscu prints it (docs: EXTERNAL_APIS.md). */
static void put_etims(text_buf *b, const duka_etims_receipt *e)
{
    char row[2 * DUKA_ETIMS_CODE_MAX + 8];
    put_centered(b, strcmp(e->kind, "credit_note") == 0 ? "eTIMS CREDIT NOTE" : "eTIMS TAX INVOICE");
    put_label(b, "CU invoice no:", e->cu_invoice_no);
    if (e->org_cu_invoice_no[0] != '\0') /* a credit note names the invoice it credits */
        put_label(b, "Original CU invoice no:", e->org_cu_invoice_no);
    put_label(b, "SCU ID:", e->sdc_id);
    put_label(b, "CU date/time:", e->signed_at);
    snprintf(row, sizeof(row), "%lld/%lld", (long long)e->rcpt_no, (long long)e->tot_rcpt_no);
    put_label(b, "Receipt no:", row);
    put_label(b, "MRC no:", e->mrc_no);
    duka_etims_group4(e->intrl_data, row, sizeof(row));
    put_label(b, "Internal data:", row);
    duka_etims_group4(e->rcpt_sign, row, sizeof(row));
    put_label(b, "Receipt signature:", row);
    /* The QR code's URL on lines of their own (a URL has no spaces to break at): a customer
     * or an inspector types it in or a printer draws the code from it. */
    put(b, "Verify at:\n");
    size_t n = strlen(e->qr_url);
    for (size_t i = 0; i < n; i += DUKA_RECEIPT_WIDTH)
        put(b, "%.*s\n", DUKA_RECEIPT_WIDTH, e->qr_url + i);
}

void duka_receipt_text(const duka_sale *s, const duka_receipt_shop *shop,
                       const duka_checkout_result *res, const char *sync_state, char *buf,
                       size_t buflen)
{
    duka_receipt_text_etims(s, shop, res, sync_state, NULL, buf, buflen);
}

void duka_receipt_text_etims(const duka_sale *s, const duka_receipt_shop *shop,
                             const duka_checkout_result *res, const char *sync_state,
                             const duka_etims_receipt *etims, char *buf, size_t buflen)
{
    text_buf b = {buf, 0, buflen};
    if (buflen == 0)
        return;
    buf[0] = '\0';
    char a[48], c[48], q[32], when[40], row[96];
    if (shop != NULL && shop->name[0] != '\0')
        put_centered(&b, shop->name);
    if (shop != NULL && shop->kra_pin[0] != '\0') {
        snprintf(row, sizeof(row), "KRA PIN %s", shop->kra_pin);
        put_centered(&b, row);
    }
    bool refund = s->kind == DUKA_KIND_REFUND;
    if (refund) {
        /* A credit note says so before anything else, and names the sale it gives back. */
        put_centered(&b, "REFUND / CREDIT NOTE");
        put(&b, "Refund %s\n", s->receipt_no);
        put(&b, "of sale %s\n", s->original_receipt_no);
        const char *why = duka_refund_reason_text(s->reason);
        put(&b, "Reason: %s %s\n", s->reason, why ? why : "");
    } else {
        put(&b, "Receipt %s\n", s->receipt_no);
    }
    duka_clock_format_local(s->created_ms, when, sizeof(when));
    snprintf(row, sizeof(row), "Till %s", s->terminal);
    put_row(&b, when, row);
    if (s->cashier_name[0] != '\0') {
        /* "Cashier: " and the name fitted to the rest of the line (a name is 40 bytes, and
         * may be wider than the 31 columns left). */
        char fit[4 * DUKA_RECEIPT_WIDTH + 1];
        duka_text_fit(fit, sizeof(fit), s->cashier_name, DUKA_RECEIPT_WIDTH - 9);
        put(&b, "Cashier: %s\n", duka_trim(fit));
    }
    put_rule(&b);
    for (int i = 0; i < s->line_count; i++) {
        const duka_sale_line *l = &s->lines[i];
        duka_format_cents(l->unit_price_cents, a, sizeof(a));
        duka_format_qty(l->qty_milli, q, sizeof(q));
        duka_format_cents_grouped(l->line_total_cents, c, sizeof(c));
        put(&b, "%s\n", l->name);
        snprintf(row, sizeof(row), "  %s x %s", q, a);
        char right[64];
        snprintf(right, sizeof(right), "%s %c", c, l->tax_band);
        put_row(&b, row, right);
    }
    put_rule(&b);
    duka_format_cents_grouped(s->total_cents, a, sizeof(a));
    snprintf(row, sizeof(row), "KES %s", a);
    put_row(&b, refund ? "REFUNDED" : "TOTAL", row);
    /* VAT per band, as eTIMS reports it: the taxable amount and the tax in each. */
    for (char band = 'A'; band <= 'E'; band++) {
        int64_t gross = 0, tax = 0;
        bool any = false;
        for (int i = 0; i < s->line_count; i++)
            if (s->lines[i].tax_band == band) {
                any = true;
                gross += s->lines[i].line_total_cents;
                tax += s->lines[i].tax_cents;
            }
        if (!any)
            continue;
        duka_format_cents_grouped(gross, a, sizeof(a));
        duka_format_cents_grouped(tax, c, sizeof(c));
        snprintf(row, sizeof(row), "  %c %d%% on %s", band,
                 duka_tax_band_rate((duka_tax_band)band), a);
        char right[64];
        snprintf(right, sizeof(right), "VAT %s", c);
        put_row(&b, row, right);
    }
    put_rule(&b);
    for (int i = 0; i < s->payment_count; i++) {
        const duka_payment *p = &s->payments[i];
        duka_format_cents_grouped(p->amount_cents, a, sizeof(a));
        if (refund) {
            snprintf(row, sizeof(row), "%s given back", method_label(p->method));
            put_row(&b, row, a);
            continue;
        }
        if (strcmp(p->method, "cash") == 0) {
            put_row(&b, "Cash", a);
            if (p->tendered_cents > p->amount_cents) {
                duka_format_cents_grouped(p->tendered_cents, a, sizeof(a));
                put_row(&b, "  tendered", a);
                duka_format_cents_grouped(p->tendered_cents - p->amount_cents, a, sizeof(a));
                put_row(&b, "  CHANGE", a);
            }
            continue;
        }
        snprintf(row, sizeof(row), "%s %s", method_label(p->method), p->reference);
        put_row(&b, row, a);
        if (strcmp(p->status, "pending_verification") == 0)
            put(&b, "  (to be verified when online)\n");
        else if (strcmp(p->status, "verified") == 0)
            put(&b, "  (verified with M-Pesa)\n");
        else if (strcmp(p->status, "flagged") == 0)
            put(&b, "  FLAGGED: %s\n", p->note[0] ? p->note : "not verified");
        else if (strcmp(p->status, "pending_capture") == 0)
            put(&b, "  (to be captured when online)\n");
    }
    for (int i = 0; res != NULL && i < res->warning_count; i++)
        put(&b, "WARNING: %s\n", res->warnings[i].message);
    const char *word = etims != NULL ? "signed" : "pending";
    if (sync_state != NULL)
        put(&b, "eTIMS: %s; sync: %s\n", word, sync_state);
    else
        put(&b, "eTIMS: %s\n", word);
    if (etims != NULL) {
        put_rule(&b);
        put_etims(&b, etims);
    }
}

duka_rc duka_till_sale_sync_state(sqlite3 *db, const char *receipt_no, char *out, size_t n,
                                  duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT status FROM outbox WHERE entity_type IN ('sale', 'refund')"
                        " AND entity_id = ?1"
                        " ORDER BY id DESC LIMIT 1",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, receipt_no);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        duka_db_column_copy(st, 0, out, n);
    else
        snprintf(out, n, "unknown");
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(db, "reading the outbox", err);
    return DUKA_OK;
}

/* ---- a committed sale, read back ---- */

duka_rc duka_till_sale_load(sqlite3 *db, const char *receipt_no, duka_sale *s, duka_err *err)
{
    memset(s, 0, offsetof(duka_sale, lines));
    sqlite3_stmt *st = NULL;
    if (duka_db_prepare(db,
                        "SELECT id, receipt_no, created_ms, total_cents, tax_cents, cashier_id,"
                        " cashier_name, kind, coalesce(original_receipt_no, ''),"
                        " coalesce(refund_reason, '') FROM sales WHERE receipt_no = ?1",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, receipt_no);
    int rc = sqlite3_step(st);
    sqlite3_int64 id = 0;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        duka_db_column_copy(st, 1, s->receipt_no, sizeof(s->receipt_no));
        s->created_ms = sqlite3_column_int64(st, 2);
        s->total_cents = sqlite3_column_int64(st, 3);
        s->tax_cents = sqlite3_column_int64(st, 4);
        duka_db_column_copy(st, 5, s->cashier_id, sizeof(s->cashier_id));
        duka_db_column_copy(st, 6, s->cashier_name, sizeof(s->cashier_name));
        const unsigned char *kind = sqlite3_column_text(st, 7);
        s->kind = kind && strcmp((const char *)kind, "refund") == 0 ? DUKA_KIND_REFUND
                                                                    : DUKA_KIND_SALE;
        duka_db_column_copy(st, 8, s->original_receipt_no, sizeof(s->original_receipt_no));
        duka_db_column_copy(st, 9, s->reason, sizeof(s->reason));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return duka_err_set(err, DUKA_NOTFOUND, "no sale '%s' on this till (see: duka queue)",
                            receipt_no);
    if (rc != SQLITE_ROW)
        return duka_db_fail(db, "reading the sale", err);
    if (duka_meta_get(db, DUKA_META_TERMINAL, s->terminal, sizeof(s->terminal), NULL, err))
        return DUKA_STORE;
    if (duka_db_prepare(db,
                        "SELECT sku, name, qty_milli, unit_price_cents, tax_band, line_total_cents,"
                        " tax_cents, coalesce(original_line, 0) FROM sale_lines WHERE sale_id = ?1"
                        " ORDER BY line_no",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && s->line_count < DUKA_SALE_LINES_MAX) {
        duka_sale_line *l = &s->lines[s->line_count++];
        duka_db_column_copy(st, 0, l->sku, sizeof(l->sku));
        duka_db_column_copy(st, 1, l->name, sizeof(l->name));
        l->qty_milli = sqlite3_column_int64(st, 2);
        l->unit_price_cents = sqlite3_column_int64(st, 3);
        const unsigned char *band = sqlite3_column_text(st, 4);
        l->tax_band = band ? (char)band[0] : 'B';
        l->line_total_cents = sqlite3_column_int64(st, 5);
        l->tax_cents = sqlite3_column_int64(st, 6);
        l->original_line = sqlite3_column_int(st, 7);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return duka_db_fail(db, "reading the sale's lines", err);
    if (duka_db_prepare(db,
                        "SELECT method, amount_cents, reference, status, coalesce(tendered_cents, 0),"
                        " coalesce(note, '') FROM payments WHERE sale_id = ?1 ORDER BY id",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && s->payment_count < DUKA_SALE_PAYMENTS_MAX) {
        duka_payment *p = &s->payments[s->payment_count++];
        duka_db_column_copy(st, 0, p->method, sizeof(p->method));
        p->amount_cents = sqlite3_column_int64(st, 1);
        duka_db_column_copy(st, 2, p->reference, sizeof(p->reference));
        duka_db_column_copy(st, 3, p->status, sizeof(p->status));
        p->tendered_cents = sqlite3_column_int64(st, 4);
        duka_db_column_copy(st, 5, p->note, sizeof(p->note));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return duka_db_fail(db, "reading the sale's payments", err);
    return DUKA_OK;
}

json_t *duka_sale_detail_json(const duka_sale *s, const duka_etims_receipt *etims)
{
    json_t *lines = json_array();
    int64_t gross[5] = {0}, tax[5] = {0};
    for (int i = 0; i < s->line_count; i++) {
        const duka_sale_line *l = &s->lines[i];
        json_t *jl = json_pack("{s:s, s:s, s:I, s:I, s:s#, s:I, s:I}", "sku", l->sku, "name",
                               l->name, "qty_milli", (json_int_t)l->qty_milli, "unit_price",
                               (json_int_t)l->unit_price_cents, "tax_band", &l->tax_band, 1,
                               "total", (json_int_t)l->line_total_cents, "tax",
                               (json_int_t)l->tax_cents);
        if (jl != NULL && s->kind == DUKA_KIND_REFUND)
            json_object_set_new(jl, "original_line", json_integer(l->original_line));
        json_array_append_new(lines, jl);
        int b = l->tax_band - 'A';
        if (b >= 0 && b < 5) {
            gross[b] += l->line_total_cents;
            tax[b] += l->tax_cents;
        }
    }
    json_t *bands = json_array();
    for (int b = 0; b < 5; b++)
        if (gross[b] > 0 || tax[b] > 0)
            json_array_append_new(
                bands, json_pack("{s:s#, s:i, s:I, s:I}", "band", &"ABCDE"[b], 1, "rate",
                                 duka_tax_band_rate((duka_tax_band)("ABCDE"[b])), "gross",
                                 (json_int_t)gross[b], "tax", (json_int_t)tax[b]));
    char iso[40];
    duka_clock_format_iso(s->created_ms, iso, sizeof(iso));
    return json_pack("{s:o, s:o, s:s, s:I, s:s, s:o}", "lines", lines, "bands", bands, "created",
                     iso, "created_ms", (json_int_t)s->created_ms, "terminal", s->terminal,
                     "etims", duka_etims_receipt_json(etims));
}

/* refund.c — a refund receipt on the till (see refund.h). */
#include "till/refund.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "store/db.h"
#include "till/sale_input.h"
#include "till/sale_view.h"
#include "till/till_db.h"

duka_refund_input *duka_refund_input_new(void)
{
    return calloc(1, sizeof(duka_refund_input));
}

void duka_refund_input_free(duka_refund_input *in)
{
    free(in);
}

/* A line number 1..DUKA_SALE_LINES_MAX from its digits. */
static bool line_from_text(const char *text, size_t len, int *out)
{
    if (len == 0 || len > 3)
        return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return v >= 1 && v <= DUKA_SALE_LINES_MAX;
}

static duka_rc add_line(duka_refund_input *in, int line, int64_t qty_milli, duka_err *err)
{
    if (in->line_count >= DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_LIMIT, "lines: at most %d lines in a refund",
                            DUKA_SALE_LINES_MAX);
    for (int i = 0; i < in->line_count; i++)
        if (in->lines[i].line == line)
            return duka_err_set(err, DUKA_INPUT, "lines[%d]: line %d is named twice",
                                in->line_count, line);
    in->lines[in->line_count++] = (duka_refund_line_input){.line = line, .qty_milli = qty_milli};
    return DUKA_OK;
}

duka_rc duka_refund_input_add_line(duka_refund_input *in, const char *text, duka_err *err)
{
    const char *star = strchr(text, '*');
    size_t len = star ? (size_t)(star - text) : strlen(text);
    int line = 0;
    if (!line_from_text(text, len, &line))
        return duka_err_set(err, DUKA_INPUT,
                            "lines[%d]: '%.40s' is not LINE or LINE*QTY (LINE 1..%d, as printed "
                            "on the receipt)",
                            in->line_count, text, DUKA_SALE_LINES_MAX);
    int64_t qty = 0; /* 0: what is left of the line */
    if (star != NULL && !duka_qty_from_text(star + 1, &qty))
        return duka_err_set(err, DUKA_INPUT,
                            "lines[%d].qty: must be a positive number with at most 3 decimals, "
                            "not '%.40s'",
                            in->line_count, star + 1);
    return add_line(in, line, qty, err);
}

/* A string member (absent: left as it is) of at most cap - 1 bytes. */
static duka_rc opt_str(const json_t *body, const char *key, char *out, size_t cap, duka_err *err)
{
    const json_t *v = json_object_get(body, key);
    if (v == NULL)
        return DUKA_OK;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return duka_err_set(err, DUKA_INPUT, "%s: must be a string of at most %zu characters",
                            key, cap - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return DUKA_OK;
}

duka_rc duka_refund_input_from_json(const json_t *body, duka_refund_input *in, duka_err *err)
{
    static const char *const top[] = {"receipt_no", "lines", "reason", "refund_to", NULL};
    static const char *const per_line[] = {"line", "qty", NULL};
    memset(in, 0, offsetof(duka_refund_input, lines));
    if (!json_is_object(body))
        return duka_err_set(err, DUKA_INPUT, "body: expected a JSON object");
    if (duka_input_only_members(body, "", top, "receipt_no, lines, reason, refund_to", err) !=
        DUKA_OK)
        return DUKA_INPUT;
    const json_t *receipt = json_object_get(body, "receipt_no");
    if (!json_is_string(receipt) || json_string_length(receipt) == 0 ||
        json_string_length(receipt) > DUKA_RECEIPT_NO_MAX)
        return duka_err_set(err, DUKA_INPUT, "receipt_no: the sale's receipt number, a string");
    memcpy(in->receipt_no, json_string_value(receipt), json_string_length(receipt) + 1);
    if (opt_str(body, "reason", in->reason, sizeof(in->reason), err) != DUKA_OK ||
        opt_str(body, "refund_to", in->refund_to, sizeof(in->refund_to), err) != DUKA_OK)
        return DUKA_INPUT;
    const json_t *lines = json_object_get(body, "lines");
    if (!json_is_array(lines) || json_array_size(lines) < 1 ||
        json_array_size(lines) > DUKA_SALE_LINES_MAX)
        return duka_err_set(err, DUKA_INPUT, "lines: an array of 1 to %d lines to give back",
                            DUKA_SALE_LINES_MAX);
    for (size_t i = 0; i < json_array_size(lines); i++) {
        const json_t *l = json_array_get(lines, i);
        char where[32];
        snprintf(where, sizeof(where), "lines[%zu].", i);
        if (!json_is_object(l))
            return duka_err_set(err, DUKA_INPUT, "lines[%zu]: must be an object {line, qty}", i);
        if (duka_input_only_members(l, where, per_line, "line, qty", err) != DUKA_OK)
            return DUKA_INPUT;
        const json_t *line = json_object_get(l, "line"), *qty = json_object_get(l, "qty");
        if (!json_is_integer(line) || json_integer_value(line) < 1 ||
            json_integer_value(line) > DUKA_SALE_LINES_MAX)
            return duka_err_set(err, DUKA_INPUT, "lines[%zu].line: the sale's line, 1..%d", i,
                                DUKA_SALE_LINES_MAX);
        int64_t q = 0;
        if (qty != NULL && !(json_is_string(qty) ? duka_qty_from_text(json_string_value(qty), &q)
                                                 : duka_qty_from_json(qty, &q)))
            return duka_err_set(err, DUKA_INPUT,
                                "lines[%zu].qty: must be a positive number with at most 3 "
                                "decimals",
                                i);
        if (add_line(in, (int)json_integer_value(line), q, err) != DUKA_OK)
            return DUKA_INPUT;
    }
    return DUKA_OK;
}

duka_rc duka_refund_state_load(sqlite3 *db, const char *receipt_no, duka_refund_state *out,
                               duka_err *err)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                     "SELECT r.receipt_no, l.original_line, l.qty_milli, l.line_total_cents"
                     " FROM sales r JOIN sale_lines l ON l.sale_id = r.id"
                     " WHERE r.original_receipt_no = ?1 AND r.kind = 'refund'"
                     " ORDER BY r.id, l.line_no",
                     &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, receipt_no);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *no = (const char *)sqlite3_column_text(st, 0);
        int line = sqlite3_column_int(st, 1);
        if (line >= 1 && line <= DUKA_SALE_LINES_MAX) {
            out->qty_milli[line - 1] += sqlite3_column_int64(st, 2);
            out->cents[line - 1] += sqlite3_column_int64(st, 3);
        }
        if (no != NULL && (out->refund_count == 0 ||
                           strcmp(out->refunds[out->refund_count - 1], no) != 0)) {
            if (out->refund_count < DUKA_REFUNDS_PER_SALE_MAX)
                snprintf(out->refunds[out->refund_count], sizeof(out->refunds[0]), "%s", no);
            out->refund_count++; /* counted past the list: the commit refuses one more */
        }
    }
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "reading the sale's refunds", err);
    return DUKA_OK;
}

void duka_refund_state_json(const duka_refund_state *st, json_t *detail)
{
    json_t *list = json_array();
    int shown = st->refund_count < DUKA_REFUNDS_PER_SALE_MAX ? st->refund_count
                                                             : DUKA_REFUNDS_PER_SALE_MAX;
    for (int i = 0; i < shown; i++)
        json_array_append_new(list, json_string(st->refunds[i]));
    json_object_set_new(detail, "refunds", list);
    json_t *lines = json_object_get(detail, "lines");
    for (size_t i = 0; i < json_array_size(lines) && i < DUKA_SALE_LINES_MAX; i++) {
        json_t *l = json_array_get(lines, i);
        json_object_set_new(l, "refunded_qty_milli", json_integer(st->qty_milli[i]));
        json_object_set_new(l, "refunded", json_integer(st->cents[i]));
    }
}

/* The refund's lines from the sale's, within what is left of each (refund.h). */
static duka_rc build_lines(const duka_refund_input *in, const duka_sale *sale,
                           const duka_refund_state *done, duka_sale *r, duka_checkout_result *res,
                           duka_err *err)
{
    for (int i = 0; i < in->line_count; i++) {
        int n = in->lines[i].line;
        if (n > sale->line_count)
            return duka_checkout_refuse(res, "invalid_refund", err, DUKA_INPUT,
                          "lines[%d].line: sale %s has %d line%s, not %d", i, sale->receipt_no,
                          sale->line_count, sale->line_count == 1 ? "" : "s", n);
        const duka_sale_line *o = &sale->lines[n - 1];
        int64_t left_qty = o->qty_milli - done->qty_milli[n - 1];
        int64_t left_cents = o->line_total_cents - done->cents[n - 1];
        int64_t qty = in->lines[i].qty_milli ? in->lines[i].qty_milli : left_qty;
        if (left_qty <= 0 || qty > left_qty) {
            char q[32], l[32];
            duka_format_qty(qty, q, sizeof(q));
            duka_format_qty(left_qty > 0 ? left_qty : 0, l, sizeof(l));
            return duka_checkout_refuse(res, "refund_exceeds_sale", err, DUKA_CONFLICT,
                          "lines[%d]: line %d (%s) of sale %s has %s left to refund, not %s", i,
                          n, o->sku, sale->receipt_no, l, left_qty > 0 ? q : "more");
        }
        duka_sale_line *l = &r->lines[r->line_count++];
        *l = *o;
        l->qty_milli = qty;
        l->line_total_cents = duka_line_total(o->unit_price_cents, qty);
        if (l->line_total_cents > left_cents)
            l->line_total_cents = left_cents > 0 ? left_cents : 0;
        l->tax_cents = duka_tax_of_gross(l->line_total_cents, (duka_tax_band)l->tax_band);
        l->original_line = n;
        r->total_cents += l->line_total_cents;
        r->tax_cents += l->tax_cents;
    }
    return DUKA_OK;
}

/* The input's own checks, before any read. */
static duka_rc check_input(const duka_refund_input *in, duka_checkout_result *res,
                           duka_err *err)
{
    if (in->line_count < 1)
        return duka_checkout_refuse(res, "invalid_refund", err, DUKA_INPUT,
                      "lines: name at least one line of the sale to give back");
    if (in->reason[0] != '\0' && !duka_refund_reason_valid(in->reason))
        return duka_checkout_refuse(res, "invalid_refund", err, DUKA_INPUT,
                      "reason: '%s' is not a refund reason 01..06 (01 missing quantity, 02 "
                      "missing item, 03 damaged, 04 wasted, 05 raw material shortage, 06 refund)",
                      in->reason);
    if (in->refund_to[0] != '\0' && !duka_payment_method_valid(in->refund_to))
        return duka_checkout_refuse(res, "invalid_refund", err, DUKA_INPUT,
                      "refund_to: '%s' is not cash, mpesa or card", in->refund_to);
    return DUKA_OK;
}

duka_rc duka_refund_commit(sqlite3 *db, const duka_clock *clock, const duka_refund_input *in,
                           const duka_cashier *cashier, duka_sale *r, duka_checkout_result *res,
                           duka_err *err)
{
    memset(res, 0, sizeof(*res));
    memset(r, 0, offsetof(duka_sale, lines));
    if (check_input(in, res, err) != DUKA_OK)
        return DUKA_INPUT;
    duka_sale *sale = duka_sale_new();
    duka_refund_state *done = malloc(sizeof(*done));
    if (sale == NULL || done == NULL) {
        duka_sale_free(sale);
        free(done);
        return duka_checkout_refuse(res, "store", err, DUKA_NOMEM, "out of memory making a refund");
    }
    duka_till_identity id;
    duka_rc rc = duka_db_begin(db, err);
    if (rc != DUKA_OK) {
        res->refusal = "store";
        goto done;
    }
    if ((rc = duka_till_identity_load(db, &id, err)) != DUKA_OK) {
        res->refusal = rc == DUKA_NOTFOUND ? "not_initialised" : "store";
        goto out;
    }
    /* Read inside the transaction (BEGIN IMMEDIATE): no other refund of the sale can commit
     * between the check and this one's commit. */
    if ((rc = duka_till_sale_load(db, in->receipt_no, sale, err)) != DUKA_OK) {
        res->refusal = rc == DUKA_NOTFOUND ? "not_found" : "store";
        goto out;
    }
    if (sale->kind != DUKA_KIND_SALE) {
        rc = duka_checkout_refuse(res, "not_a_sale", err, DUKA_INPUT,
                    "receipt_no: %s is a refund (of %s); name the sale", sale->receipt_no,
                    sale->original_receipt_no);
        goto out;
    }
    if ((rc = duka_refund_state_load(db, sale->receipt_no, done, err)) != DUKA_OK) {
        res->refusal = "store";
        goto out;
    }
    if (done->refund_count >= DUKA_REFUNDS_PER_SALE_MAX) {
        rc = duka_checkout_refuse(res, "too_many_refunds", err, DUKA_LIMIT,
                    "sale %s has been refunded %d times; at most %d refunds of one sale",
                    sale->receipt_no, done->refund_count, DUKA_REFUNDS_PER_SALE_MAX);
        goto out;
    }
    r->kind = DUKA_KIND_REFUND;
    snprintf(r->original_receipt_no, sizeof(r->original_receipt_no), "%s", sale->receipt_no);
    snprintf(r->reason, sizeof(r->reason), "%s",
             in->reason[0] ? in->reason : DUKA_REFUND_REASON_DEFAULT);
    if ((rc = build_lines(in, sale, done, r, res, err)) != DUKA_OK)
        goto out;
    r->payment_count = 1;
    duka_payment *p = &r->payments[0];
    snprintf(p->method, sizeof(p->method), "%s", in->refund_to[0] ? in->refund_to : "cash");
    snprintf(p->status, sizeof(p->status), "refunded");
    p->amount_cents = r->total_cents;
    r->created_ms = duka_clock_now_ms(clock);
    /* A clock set back must not date a refund before its sale (eTIMS refuses that). */
    if (r->created_ms < sale->created_ms)
        r->created_ms = sale->created_ms;
    snprintf(r->terminal, sizeof(r->terminal), "%s", id.terminal);
    rc = duka_checkout_record(db, &id, cashier, r, res, err);
out:
    if (rc != DUKA_OK) {
        if (res->refusal == NULL)
            res->refusal = "store";
        duka_db_rollback(db);
    }
done:
    duka_sale_free(sale);
    free(done);
    return rc;
}

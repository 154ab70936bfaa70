/* hub_report.c — the sales report with its conflicts, and stock levels (see hub_report.h). */
#include "hub/hub_report.h"

#include <string.h>

#include "common/clock.h"
#include "common/json_limits.h"
#include "common/limits.h"
#include "hub/hub_store_impl.h"

/* The largest total a sale can have (limits.h proves it fits in int64). */
#define SALE_TOTAL_MAX (DUKA_PRICE_CENTS_MAX * (DUKA_QTY_MILLI_MAX / 1000) * DUKA_SALE_LINES_MAX)

bool duka_hub_conflict_payload_total(const char *payload, int64_t *total_cents)
{
    if (payload == NULL)
        return false;
    json_error_t jerr;
    json_t *v = json_loads(payload, JSON_REJECT_DUPLICATES, &jerr);
    bool ok = false;
    if (v != NULL && duka_json_depth_check(v, DUKA_JSON_DEPTH_MAX, "payload", NULL) == DUKA_OK) {
        const json_t *t = json_object_get(v, "total_cents");
        if (json_is_integer(t) && json_integer_value(t) >= 0 &&
            json_integer_value(t) <= SALE_TOTAL_MAX) {
            *total_cents = (int64_t)json_integer_value(t);
            ok = true;
        }
    }
    json_decref(v);
    return ok;
}

/* One conflict as the report lists it. */
static json_t *conflict_detail(const json_t *row, bool has_total, int64_t total)
{
    char iso[40];
    duka_clock_format_iso((int64_t)json_integer_value(json_object_get(row, "detected")), iso,
                          sizeof(iso));
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:o, s:s}", "receipt_no",
                     json_object_get(row, "receipt_no"), "kind", json_object_get(row, "kind"),
                     "command_id", json_object_get(row, "command_id"), "existing_command_id",
                     json_object_get(row, "existing_command_id"), "terminal",
                     json_object_get(row, "terminal"), "total_cents",
                     has_total ? json_integer((json_int_t)total) : json_null(), "detected",
                     iso);
}

/* Adds the conflicts to the report: every one counted in conflict_total_cents, the newest
 * DUKA_REPORT_CONFLICTS_MAX listed. Pages go newest first by row id, each page's last id the
 * next one's bound, so the walk ends (ids strictly decrease) and holds one page at a time. */
static duka_rc add_conflicts(duka_hub_store *s, const char *business_id, json_t *report,
                             duka_err *err)
{
    json_t *details = json_array();
    int64_t total = 0, omitted = 0, before = 0;
    duka_rc rc = details != NULL
                     ? DUKA_OK
                     : duka_err_set(err, DUKA_NOMEM, "out of memory reading the report");
    for (bool more = true; rc == DUKA_OK && more;) {
        json_t *page = NULL;
        rc = duka_hub_conflict_page(s, business_id, before, DUKA_REPORT_CONFLICTS_MAX, &page, err);
        if (rc != DUKA_OK)
            break;
        const json_t *rows = json_object_get(page, "conflicts");
        more = json_array_size(rows) == DUKA_REPORT_CONFLICTS_MAX;
        size_t i;
        const json_t *row;
        json_array_foreach(rows, i, row) {
            int64_t t = 0;
            bool has_total = duka_hub_conflict_payload_total(
                json_string_value(json_object_get(row, "payload")), &t);
            if (has_total && total > INT64_MAX - t) {
                rc = duka_err_set(err, DUKA_LIMIT,
                                  "report of business %s: its conflicts' total_cents add up to "
                                  "more than %lld, which a report cannot show",
                                  business_id, (long long)INT64_MAX);
                break;
            }
            if (has_total)
                total += t;
            if (json_array_size(details) < DUKA_REPORT_CONFLICTS_MAX)
                json_array_append_new(details, conflict_detail(row, has_total, t));
            else
                omitted++;
            int64_t id = (int64_t)json_integer_value(json_object_get(row, "id"));
            if (before != 0 && id >= before) { /* a store that does not page as asked */
                rc = duka_err_set(err, DUKA_INTERNAL, "conflicts of business %s: page out of "
                                  "order (id %lld after %lld)", business_id, (long long)id,
                                  (long long)before);
                break;
            }
            before = id;
        }
        json_decref(page);
    }
    if (rc == DUKA_OK) {
        json_object_set_new(report, "conflict_details", details);
        json_object_set_new(report, "conflict_details_omitted", json_integer((json_int_t)omitted));
        json_object_set_new(report, "conflict_total_cents", json_integer((json_int_t)total));
    } else {
        json_decref(details);
    }
    return rc;
}

duka_rc duka_hub_report(duka_hub_store *s, const char *business_id, json_t **out, duka_err *err)
{
    *out = NULL;
    json_t *report = NULL;
    duka_rc rc = s->ops->report(s, business_id, &report, err);
    if (rc == DUKA_OK)
        rc = add_conflicts(s, business_id, report, err);
    json_t *cashiers = NULL;
    if (rc == DUKA_OK)
        rc = duka_hub_report_cashiers(s, business_id, &cashiers, err);
    if (rc == DUKA_OK)
        json_object_set(report, "cashiers", json_object_get(cashiers, "cashiers"));
    json_decref(cashiers);
    if (rc != DUKA_OK) {
        json_decref(report);
        return rc;
    }
    *out = report;
    return DUKA_OK;
}

duka_rc duka_hub_stock(duka_hub_store *s, const char *business_id, bool negative_only,
                       json_t **out, duka_err *err)
{
    *out = NULL;
    json_t *levels = NULL;
    duka_rc rc = duka_hub_stock_levels(s, business_id, &levels, err);
    if (rc != DUKA_OK)
        return rc;
    json_t *list = json_array();
    json_int_t negative = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(levels, "products"), i, p) {
        bool below = json_integer_value(json_object_get(p, "stock_milli")) < 0;
        negative += below;
        json_object_set_new(p, "negative", json_boolean(below));
        if (below || !negative_only)
            json_array_append(list, p);
    }
    json_decref(levels);
    *out = json_pack("{s:o, s:I}", "products", list, "negative", negative);
    return DUKA_OK;
}

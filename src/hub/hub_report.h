/*
 * hub_report.h — what the back office reads about a business's trade: the sales report with
 * its conflicts (duka_hub_report, declared in hub_store.h) and the stock levels (duka stock).
 *
 * Written once, above the stores: the stores return rows (totals, conflict pages, levels);
 * what a conflict adds up to, which levels are negative and what is listed are decided here.
 * Workload: an admin command at a time; each reads a business's rows whole, as a report
 * must, holding at most DUKA_REPORT_CONFLICTS_MAX conflict payloads at once.
 */
#ifndef DUKA_HUB_REPORT_H
#define DUKA_HUB_REPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "hub/hub_store.h"

/* Stock levels of a business (duka_hub_stock_levels) with each flagged:
 * {"products":[{"sku","name","stock_milli","negative":bool}],"negative":N}, N counting every
 * product below zero; with negative_only, only those are listed. Stock may go negative: sales
 * are facts and are never refused for stock, so a negative level is a count to reconcile. */
duka_rc duka_hub_stock(duka_hub_store *s, const char *business_id, bool negative_only,
                       json_t **out, duka_err *err);

/* What a conflict's stored payload says it was for: its total_cents, or false when the
 * payload cannot be read as a sale's JSON (it passed validation when stored, so that is a
 * damaged row, reported as unknown rather than failing the report). */
bool duka_hub_conflict_payload_total(const char *payload, int64_t *total_cents);

#endif

/*
 * till_status.h — what the till reports about itself: connectivity as last seen, the
 * outbox by status and type, the last sync; and the queue listing. Used by `duka status`,
 * `duka queue` and the local API.
 */
#ifndef DUKA_TILL_STATUS_H
#define DUKA_TILL_STATUS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* Thresholds for status alerts (from configuration). */
typedef struct duka_alert_settings {
    int64_t pending_threshold;  /* OFFLINE_QUEUE_ALERT_THRESHOLD */
    int64_t offline_after_ms;   /* ALERT_OFFLINE_AFTER */
    const char *config_problems; /* duka_config_problems_summary: "" or NULL when none */
} duka_alert_settings;

/* {"connectivity","connectivity_since","connectivity_seen","connectivity_age_s",
 *  "offline_switch","pending","processing","failed","conflicts","done","last_sync",
 *  "last_error","oldest_pending_age_s","pending_by_type":{…},"alerts":[{"code","message"}],
 *  "terminal","hub"}. Connectivity is what the till last recorded (its worker's monitor, or
 * the last `duka sync`), seen at connectivity_seen, connectivity_age_s ago; the caller says
 * whether that is live (a running service) or old news. Alerts include config_invalid when
 * settings were ignored. */
duka_rc duka_till_status_json(sqlite3 *db, const duka_alert_settings *alerts, json_t **out,
                              duka_err *err);

/* Records the connectivity state observed now: since_ms is kept while the state is
 * unchanged. One transaction. */
duka_rc duka_till_record_connectivity(sqlite3 *db, const char *state, int64_t since_ms,
                                      bool forced_offline, const char *last_error,
                                      duka_err *err);

/* Sync history, newest first: {"attempts":[{"started","direction","items","ok",
 * "duplicates","failed","conflicts","http_status","duration_ms","error","repeats","last"}]}.
 * repeats > 1: that many empty pulls in a row folded into the row, the last at "last". */
duka_rc duka_till_history_json(sqlite3 *db, int limit, json_t **out, duka_err *err);

/* Removes history older than before_ms (retention). */
duka_rc duka_till_history_cleanup(sqlite3 *db, int64_t before_ms, duka_err *err);

/* {"items":[…],"total","offset","limit","more"} of the outbox, at most limit from offset.
 * Ordered so what needs attention is never out of reach behind synced items: failed first,
 * then conflicts, processing, pending (each oldest first: the order they go out), then done
 * (newest first). status_filter NULL for all. */
duka_rc duka_till_queue_json(sqlite3 *db, const char *status_filter, int limit, int64_t offset,
                             json_t **out, duka_err *err);

#endif

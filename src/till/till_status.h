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
} duka_alert_settings;

/* {"connectivity","connectivity_since","offline_switch","pending","processing","failed",
 *  "conflicts","done","last_sync","last_error","oldest_pending_age_s","pending_by_type":{…},
 *  "alerts":[{"code","message"}],"terminal","hub"}. Connectivity is what the till last
 * recorded (its worker's monitor, or the last `duka sync`). */
duka_rc duka_till_status_json(sqlite3 *db, const duka_alert_settings *alerts, json_t **out,
                              duka_err *err);

/* Records the connectivity state observed now: since_ms is kept while the state is
 * unchanged. One transaction. */
duka_rc duka_till_record_connectivity(sqlite3 *db, const char *state, int64_t since_ms,
                                      bool forced_offline, const char *last_error,
                                      duka_err *err);

/* Sync history, newest first: {"attempts":[{"started","direction","items","ok",
 * "duplicates","failed","conflicts","http_status","duration_ms","error"}]}. */
duka_rc duka_till_history_json(sqlite3 *db, int limit, json_t **out, duka_err *err);

/* Removes history older than before_ms (retention). */
duka_rc duka_till_history_cleanup(sqlite3 *db, int64_t before_ms, duka_err *err);

/* {"items":[…]} of the outbox, newest last; status_filter NULL for all; at most limit. */
duka_rc duka_till_queue_json(sqlite3 *db, const char *status_filter, int limit, json_t **out,
                             duka_err *err);

#endif

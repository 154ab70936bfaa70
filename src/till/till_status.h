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
#include "common/limits.h"

/* Thresholds for status alerts (from configuration). */
typedef struct duka_alert_settings {
    int64_t pending_threshold;  /* OFFLINE_QUEUE_ALERT_THRESHOLD */
    int64_t offline_after_ms;   /* ALERT_OFFLINE_AFTER */
    const char *config_problems; /* duka_config_problems_summary: "" or NULL when none */
} duka_alert_settings;

#define DUKA_STATUS_TYPES_MAX 16  /* queue types counted one by one; more are summed as "other" */
#define DUKA_STATUS_ALERTS_MAX 8

/* The till's state as one struct: what `duka status`, the local API's /api/status and the web
 * UI's status bar all show (encoded at the edge: duka_till_status_to_json). Times are epoch ms,
 * 0 when never. */
typedef struct duka_till_status {
    int64_t now_ms;
    char connectivity[16]; /* online | degraded | offline | unknown */
    int64_t connectivity_since_ms;
    int64_t connectivity_seen_ms; /* when it was last observed */
    bool offline_switch;
    char last_error[DUKA_ERR_MSG_MAX];
    int64_t pending; /* pending + processing: what has not reached the hub */
    int64_t processing, failed, conflicts, done;
    int64_t oldest_pending_ms;
    int64_t last_sync_ms;
    int type_count;
    struct {
        char type[32];
        int64_t count;
    } pending_by_type[DUKA_STATUS_TYPES_MAX];
    int alert_count;
    struct {
        char code[24];
        char message[256];
    } alerts[DUKA_STATUS_ALERTS_MAX];
    char terminal[32];
    char hub[DUKA_URL_MAX + 1];
    /* The status light (duka_till_status_light): green ONLY when the hub answered and nothing
     * waits or failed; yellow when the hub answers but is slow, or sales wait or failed; red when
     * the hub cannot be reached. light_reason is a sentence for the cashier. */
    char light[8];
    char light_reason[160];
    int64_t etims_pending; /* this till's sales with no eTIMS signature (all until one arrives) */
    /* This till's typed M-Pesa codes not verified yet, and those the hub flagged; the hub's
     * M-Pesa state as last pulled ("" never). */
    int64_t mpesa_pending, mpesa_flagged;
    char mpesa_state[12];
    /* eTIMS as the hub last said it (services.etims of a pull; etims_receipt.h): state ""
     * until a pull brought one. "offline" / "degraded" turn a green light yellow. */
    char etims_state[12];
    int64_t etims_since_ms;
    int64_t etims_hub_pending; /* the business's invoices the hub holds unsigned */
} duka_till_status;

/* Loads the status as the database recorded it. Connectivity is what the till last recorded
 * (its worker's monitor, or the last `duka sync`); a caller with a live monitor overlays it
 * and calls duka_till_status_light again. Alerts include config_invalid when settings were
 * ignored. */
duka_rc duka_till_status_load(sqlite3 *db, const duka_alert_settings *alerts,
                              duka_till_status *out, duka_err *err);

/* Sets light and light_reason from connectivity and the counts. When it would be green and
 * the hub said eTIMS is "offline" it is yellow, "eTIMS unreachable from the hub: N invoices
 * wait"; "degraded": yellow, "eTIMS is slow or failing at the hub". "off" (no eTIMS at the
 * hub) or never said: no effect. */
void duka_till_status_light(duka_till_status *s);

/* {"connectivity","connectivity_since","connectivity_seen","connectivity_age_s",
 *  "offline_switch","pending","processing","failed","conflicts","done","last_sync",
 *  "last_sync_ms","last_error","oldest_pending_age_s","pending_by_type":{…},
 *  "alerts":[{"code","message"}],"terminal","hub","light","light_reason","etims_pending",
 *  "etims":{"state","since_ms","pending"}} — etims.state "unknown" (since_ms and pending
 *  null) until a pull brought the hub's word on it. */
json_t *duka_till_status_to_json(const duka_till_status *s);

/* duka_till_status_load, then duka_till_status_to_json. */
duka_rc duka_till_status_json(sqlite3 *db, const duka_alert_settings *alerts, json_t **out,
                              duka_err *err);

/* Records the connectivity state observed now: since_ms is kept while the state is
 * unchanged. One transaction. */
duka_rc duka_till_record_connectivity(sqlite3 *db, const char *state, int64_t since_ms,
                                      bool forced_offline, const char *last_error,
                                      duka_err *err);

/* Sync history, newest first, at most limit rows from offset: {"attempts":[{"started",
 * "direction","items","ok","duplicates","failed","conflicts","http_status","duration_ms",
 * "error","repeats","last"}],"total","offset","more"}. repeats > 1: that many empty pulls in a
 * row folded into the row, the last at "last". */
duka_rc duka_till_history_json(sqlite3 *db, int limit, int64_t offset, json_t **out,
                               duka_err *err);

/* Connectivity changes since since_ms, newest first, at most limit:
 * {"changes":[{"at","at_ms","state","error"}],"more"}. */
duka_rc duka_till_connectivity_log_json(sqlite3 *db, int64_t since_ms, int limit, json_t **out,
                                        duka_err *err);

/* Removes sync history and connectivity changes older than before_ms (retention). Each
 * DELETE is its own statement: what one removed stays removed if the next fails. */
duka_rc duka_till_history_cleanup(sqlite3 *db, int64_t before_ms, duka_err *err);

/* {"items":[…],"total","offset","limit","more"} of the outbox, at most limit from offset.
 * Ordered so what needs attention is never out of reach behind synced items: failed first,
 * then conflicts, processing, pending (each oldest first: the order they go out), then done
 * (newest first). status_filter NULL for all. */
duka_rc duka_till_queue_json(sqlite3 *db, const char *status_filter, int limit, int64_t offset,
                             json_t **out, duka_err *err);

#endif

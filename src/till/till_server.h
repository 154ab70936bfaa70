/*
 * till_server.h — `duka till`: the till's local API on loopback, with the background sync
 * worker and connectivity monitor (sync/sync_worker.h).
 *
 *   GET  /api/status   status JSON (as `duka status --json`), connectivity live
 *   GET  /api/catalog  the catalog (as `duka catalog --json`)
 *   GET  /api/history  sync attempts, newest first (?limit=N)
 *   POST /api/sales    {"items":[{"sku","qty"}], "pay":"cash"} -> 201 {"receipt_no","total","sync"}
 *   POST /api/sync     sync now -> the sync result (as `duka sync --json`); 409 while offline by hand
 *   POST /api/offline  {"offline": true|false} the offline switch -> the status
 *
 * Every request uses its own SQLite connection (a transaction never spans threads); the
 * worker has its own. A sale never waits for the network.
 */
#ifndef DUKA_TILL_SERVER_H
#define DUKA_TILL_SERVER_H

#include <stdbool.h>

#include "common/error.h"
#include "config/config.h"

typedef struct duka_till_server_options {
    const char *db;
    const char *listen;
    const duka_config *config;
    bool start_offline; /* --offline: the offline switch on at start */
} duka_till_server_options;

/* Serves until SIGINT/SIGTERM. A sync in progress stops between batches; a request in flight
 * is abandoned and its batch returns to pending (resent at the next start, where the hub
 * answers "duplicate" for what it had already committed). */
duka_rc duka_till_serve(const duka_till_server_options *opt, duka_err *err);

#endif

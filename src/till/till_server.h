/*
 * till_server.h — `duka till`: the till's local API on loopback and a periodic background
 * sync. (The connectivity monitor and the full sync worker build on this.)
 *
 *   GET  /api/status   status JSON (as `duka status --json`)
 *   GET  /api/catalog  the catalog (as `duka catalog --json`)
 *   POST /api/sales    {"items":[{"sku","qty"}], "pay":"cash"} -> {"receipt_no","total","sync"}
 *   POST /api/sync     sync now -> the sync result (as `duka sync --json`)
 *
 * Every request uses its own SQLite connection (a transaction never spans threads); the
 * background sync has its own. Sales never wait for the network.
 */
#ifndef DUKA_TILL_SERVER_H
#define DUKA_TILL_SERVER_H

#include "common/error.h"

typedef struct duka_till_server_options {
    const char *db;
    const char *listen;
    int sync_interval_s; /* 0 disables the periodic sync */
    int batch_size;
} duka_till_server_options;

/* Serves until SIGINT/SIGTERM; a sync in progress finishes its batch first. */
duka_rc duka_till_serve(const duka_till_server_options *opt, duka_err *err);

#endif

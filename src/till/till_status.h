/*
 * till_status.h — what the till reports about itself: connectivity as last seen, the
 * outbox by status and type, the last sync; and the queue listing. Used by `duka status`,
 * `duka queue` and the local API.
 */
#ifndef DUKA_TILL_STATUS_H
#define DUKA_TILL_STATUS_H

#include <jansson.h>
#include <sqlite3.h>

#include "common/error.h"

/* {"connectivity","pending","processing","failed","conflicts","done","last_sync",
 *  "last_error","pending_by_type":{…},"terminal","hub"} */
duka_rc duka_till_status_json(sqlite3 *db, json_t **out, duka_err *err);

/* {"items":[…]} of the outbox, newest last; status_filter NULL for all; at most limit. */
duka_rc duka_till_queue_json(sqlite3 *db, const char *status_filter, int limit, json_t **out,
                             duka_err *err);

#endif

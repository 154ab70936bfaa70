/*
 * sync_worker.h — the till's background sync worker and its connectivity monitor.
 *
 * One thread with its own SQLite connection. It probes the hub's health on the monitor's
 * schedule (every 30 s online; 1 s, 2 s, 4 s … while offline), and syncs:
 *   - at once when the hub comes back (offline/unknown -> online/degraded): within the
 *     offline re-check delay (≤ 4 s by default) plus one round trip;
 *   - every OFFLINE_QUEUE_PROCESS_INTERVAL while online;
 *   - when items in backoff come due, and when asked ("sync now", a new sale);
 *   - after a failed sync, only after a backoff (1 s, 2 s, 4 s … 5 min, with jitter), never
 *     sooner than the hub's Retry-After.
 * It persists the connectivity state for `duka status`, cleans synced items past their
 * retention, and stops promptly: a sync in progress ends between batches and abandons a
 * request in flight, whose batch returns to pending with the same command ids (every outbox
 * transition is one transaction), so nothing is lost, doubled or half-marked.
 * Between wake-ups it sleeps on a condition variable: no busy polling.
 */
#ifndef DUKA_SYNC_WORKER_H
#define DUKA_SYNC_WORKER_H

#include <stdbool.h>

#include "common/clock.h"
#include "common/error.h"
#include "config/config.h"
#include "sync/connectivity.h"
#include "sync/sync_client.h"

typedef struct duka_sync_worker duka_sync_worker;

typedef struct duka_sync_worker_options {
    const char *db_path;
    const duka_config *config;
    bool start_offline; /* the offline switch on at start (duka till --offline) */
} duka_sync_worker_options;

/* Opens the database, loads the till's identity and starts the thread. */
duka_rc duka_sync_worker_start(const duka_sync_worker_options *opt, duka_sync_worker **out,
                               duka_err *err);

/* Stops the thread (waits for a running sync to finish its batch) and frees. NULL is fine. */
void duka_sync_worker_stop(duka_sync_worker *w);

/* Asks for a sync as soon as possible (returns at once). */
void duka_sync_worker_request_sync(duka_sync_worker *w);

/* Runs a sync now in the calling thread, on its own connection, and feeds the monitor. If the
 * worker is syncing, waits for it first (the sync lock). DUKA_BUSY while switched offline. */
duka_rc duka_sync_worker_sync_now(duka_sync_worker *w, duka_sync_result *res, duka_err *err);

/* The offline switch. */
void duka_sync_worker_set_offline(duka_sync_worker *w, bool offline);

/* The monitor's current picture, its times as wall-clock ms. */
void duka_sync_worker_connectivity(duka_sync_worker *w, duka_monitor_snapshot *out);

/* Sets the process's outbox policy (backoff, queue types) from configuration. */
void duka_sync_apply_config(const duka_config *cfg);

#endif

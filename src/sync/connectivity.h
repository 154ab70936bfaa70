/*
 * connectivity.h — the till's connectivity monitor: a state machine fed by probes of the
 * hub's /v1/health and by the outcome of every sync request.
 *
 *   unknown ──ok──▶ online ◀──ok── degraded
 *      │             │  ▲             ▲  │
 *      │   no answer │  │ ok    slow, │  │ no answer
 *      ▼             ▼  │  5xx × N,  │  ▼
 *   offline ◀────────┘  └─ services down ─ offline
 *
 * - online: the hub answered quickly (under the latency threshold) with its services up;
 * - degraded: it answered, but slowly, or reports an external service down, or has failed
 *   with 5xx N times in a row, or refused our token (reachable but not usable);
 * - offline: no answer (refused, timeout, reset) — or forced by the cashier's offline switch.
 * While online or degraded the hub is probed every interval (30 s). While offline it is
 * re-probed after 1 s, 2 s, 4 s … capped at min(recheck max, interval), so a hub coming back
 * is noticed within seconds. Every state change is an event for the subscribers (the sync
 * worker, the UI, metrics), delivered outside the monitor's lock.
 *
 * Time comes from an injectable clock: tests drive every transition without sleeping.
 * Thread safe.
 */
#ifndef DUKA_CONNECTIVITY_H
#define DUKA_CONNECTIVITY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"

typedef enum duka_conn_state {
    DUKA_CONN_UNKNOWN,
    DUKA_CONN_ONLINE,
    DUKA_CONN_DEGRADED,
    DUKA_CONN_OFFLINE,
} duka_conn_state;

const char *duka_conn_state_name(duka_conn_state s);

typedef struct duka_monitor_settings {
    int64_t probe_interval_ms;      /* 30 s */
    int64_t offline_recheck_max_ms; /* 4 s */
    int64_t degraded_latency_ms;    /* 2 s */
    int degraded_failures;          /* 3 consecutive 5xx */
} duka_monitor_settings;

/* What one exchange with the hub (a probe or a sync request) showed. */
typedef struct duka_hub_outcome {
    bool reached;        /* an HTTP answer came back */
    long http_status;    /* when reached */
    int64_t latency_ms;  /* when reached */
    bool services_down;  /* the hub's health reports an external service down */
    const char *error;   /* a sentence when something failed, else NULL */
} duka_hub_outcome;

typedef void (*duka_monitor_listener)(void *ctx, duka_conn_state from, duka_conn_state to,
                                      int64_t at_ms);

#define DUKA_MONITOR_LISTENERS_MAX 8
#define DUKA_MONITOR_ERROR_MAX 300

typedef struct duka_monitor_snapshot {
    duka_conn_state state;
    int64_t since_ms;        /* time of the last state change */
    int64_t last_ok_ms;      /* last time the hub answered well; 0 never */
    int64_t last_sync_ms;    /* last successful sync; 0 never */
    int64_t next_probe_ms;   /* when the next probe is due; INT64_MAX while forced offline */
    int consecutive_failures;
    bool forced_offline;
    char last_error[DUKA_MONITOR_ERROR_MAX];
} duka_monitor_snapshot;

typedef struct duka_monitor duka_monitor;

/* Starts in `unknown` with a probe due now. clock may be NULL (system clock). */
duka_monitor *duka_monitor_create(const duka_monitor_settings *settings, const duka_clock *clock);
void duka_monitor_destroy(duka_monitor *m);

/* Adds a listener; false when DUKA_MONITOR_LISTENERS_MAX are already registered. */
bool duka_monitor_subscribe(duka_monitor *m, duka_monitor_listener fn, void *ctx);

/* Feeds one outcome (probe or sync request). Ignored while forced offline. */
void duka_monitor_report(duka_monitor *m, const duka_hub_outcome *outcome);

/* Records a successful sync (the time shows in status). */
void duka_monitor_sync_succeeded(duka_monitor *m);

/* The offline switch: forced offline stops probing and reports `offline`; switching it off
 * returns to `unknown` with a probe due at once. */
void duka_monitor_force_offline(duka_monitor *m, bool offline);

void duka_monitor_get(duka_monitor *m, duka_monitor_snapshot *out);

/* The delay before the next probe after the k-th consecutive failed probe (k >= 1):
 * 1 s, 2 s, 4 s … capped at min(recheck max, interval). Exposed for tests. */
int64_t duka_monitor_offline_delay_ms(const duka_monitor_settings *s, int k);

#endif

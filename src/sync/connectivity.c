/* connectivity.c — the connectivity state machine (see connectivity.h). */
#include "sync/connectivity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct duka_monitor {
    pthread_mutex_t lock;
    duka_monitor_settings settings;
    const duka_clock *clock;
    duka_monitor_snapshot snap;
    int consecutive_5xx;
    int consecutive_unreached; /* drives the offline re-probe backoff: 1 s, 2 s, 4 s … */
    struct {
        duka_monitor_listener fn;
        void *ctx;
    } listeners[DUKA_MONITOR_LISTENERS_MAX];
    int listener_count;
};

static const char *const state_names[] = {"unknown", "online", "degraded", "offline"};

const char *duka_conn_state_name(duka_conn_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "unknown";
}

int64_t duka_monitor_offline_delay_ms(const duka_monitor_settings *s, int k)
{
    int64_t cap = s->offline_recheck_max_ms < s->probe_interval_ms ? s->offline_recheck_max_ms
                                                                   : s->probe_interval_ms;
    int64_t d = 1000;
    for (int i = 1; i < k && d < cap; i++)
        d *= 2;
    return d < cap ? d : cap;
}

duka_monitor *duka_monitor_create(const duka_monitor_settings *settings, const duka_clock *clock)
{
    duka_monitor *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->settings = *settings;
    m->clock = clock;
    m->snap.state = DUKA_CONN_UNKNOWN;
    m->snap.since_ms = duka_clock_now_ms(clock);
    m->snap.next_probe_ms = m->snap.since_ms;
    return m;
}

void duka_monitor_destroy(duka_monitor *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

bool duka_monitor_subscribe(duka_monitor *m, duka_monitor_listener fn, void *ctx)
{
    pthread_mutex_lock(&m->lock);
    bool ok = m->listener_count < DUKA_MONITOR_LISTENERS_MAX;
    if (ok) {
        m->listeners[m->listener_count].fn = fn;
        m->listeners[m->listener_count].ctx = ctx;
        m->listener_count++;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* Changes state under the lock; returns true when it changed (listeners to be told). */
static bool set_state(duka_monitor *m, duka_conn_state to, int64_t now)
{
    if (m->snap.state == to)
        return false;
    m->snap.state = to;
    m->snap.since_ms = now;
    return true;
}

/* Calls the listeners outside the lock (a listener may call back into the monitor). */
static void notify(duka_monitor *m, duka_conn_state from, duka_conn_state to, int64_t at)
{
    pthread_mutex_lock(&m->lock);
    int n = m->listener_count;
    duka_monitor_listener fns[DUKA_MONITOR_LISTENERS_MAX];
    void *ctxs[DUKA_MONITOR_LISTENERS_MAX];
    for (int i = 0; i < n; i++) {
        fns[i] = m->listeners[i].fn;
        ctxs[i] = m->listeners[i].ctx;
    }
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < n; i++)
        fns[i](ctxs[i], from, to, at);
}

void duka_monitor_report(duka_monitor *m, const duka_hub_outcome *o)
{
    int64_t now = duka_clock_now_ms(m->clock);
    pthread_mutex_lock(&m->lock);
    if (m->snap.forced_offline) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    duka_conn_state from = m->snap.state, to;
    if (!o->reached) {
        to = DUKA_CONN_OFFLINE;
        m->snap.consecutive_failures++;
        m->consecutive_5xx = 0;
        m->consecutive_unreached++;
        m->snap.next_probe_ms =
            now + duka_monitor_offline_delay_ms(&m->settings, m->consecutive_unreached);
    } else if (o->http_status >= 500) {
        m->consecutive_unreached = 0;
        m->snap.consecutive_failures++;
        m->consecutive_5xx++;
        /* Reachable but failing: degraded once it keeps failing, or at once when we had no
         * better picture (unknown/offline) — it answered, just not well. */
        to = (m->consecutive_5xx >= m->settings.degraded_failures || from == DUKA_CONN_UNKNOWN ||
              from == DUKA_CONN_OFFLINE)
                 ? DUKA_CONN_DEGRADED
                 : from;
        m->snap.next_probe_ms = now + m->settings.probe_interval_ms;
    } else {
        m->consecutive_5xx = 0;
        m->consecutive_unreached = 0;
        bool unusable = o->http_status == 401 || o->http_status == 403;
        bool slow = o->latency_ms > m->settings.degraded_latency_ms;
        to = (unusable || slow || o->services_down) ? DUKA_CONN_DEGRADED : DUKA_CONN_ONLINE;
        if (to == DUKA_CONN_ONLINE) {
            m->snap.consecutive_failures = 0;
            m->snap.last_ok_ms = now;
        }
        m->snap.next_probe_ms = now + m->settings.probe_interval_ms;
    }
    /* The error describes the state it caused: a hub that answers well again leaves none
     * behind ("hub unreachable" under a green light is a lie). */
    if (o->error != NULL)
        snprintf(m->snap.last_error, sizeof(m->snap.last_error), "%s", o->error);
    else if (to == DUKA_CONN_ONLINE)
        m->snap.last_error[0] = '\0';
    bool changed = set_state(m, to, now);
    pthread_mutex_unlock(&m->lock);
    if (changed)
        notify(m, from, to, now);
}

void duka_monitor_sync_succeeded(duka_monitor *m)
{
    int64_t now = duka_clock_now_ms(m->clock);
    pthread_mutex_lock(&m->lock);
    m->snap.last_sync_ms = now;
    pthread_mutex_unlock(&m->lock);
}

void duka_monitor_force_offline(duka_monitor *m, bool offline)
{
    int64_t now = duka_clock_now_ms(m->clock);
    pthread_mutex_lock(&m->lock);
    duka_conn_state from = m->snap.state;
    bool changed = false;
    if (offline && !m->snap.forced_offline) {
        m->snap.forced_offline = true;
        m->snap.next_probe_ms = INT64_MAX;
        snprintf(m->snap.last_error, sizeof(m->snap.last_error), "switched offline by hand");
        changed = set_state(m, DUKA_CONN_OFFLINE, now);
    } else if (!offline && m->snap.forced_offline) {
        m->snap.forced_offline = false;
        m->snap.last_error[0] = '\0'; /* "switched offline by hand" no longer holds */
        m->snap.consecutive_failures = 0;
        m->consecutive_5xx = 0;
        m->consecutive_unreached = 0;
        m->snap.next_probe_ms = now;
        changed = set_state(m, DUKA_CONN_UNKNOWN, now);
    }
    duka_conn_state to = m->snap.state;
    pthread_mutex_unlock(&m->lock);
    if (changed)
        notify(m, from, to, now);
}

void duka_monitor_get(duka_monitor *m, duka_monitor_snapshot *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->snap;
    pthread_mutex_unlock(&m->lock);
}

/* hub_forwarder.c — claim, send in parallel, record; and the service's health (see .h). */
#include "outbox/hub_forwarder.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/random.h"
#include "common/uuid.h"
#include "hub/hub_store.h"
#include "outbox/outbox.h"

/* One request in flight. The forwarder thread fills a FREE slot (claimed and prepared) and
 * makes it QUEUED; a worker takes it (RUNNING), sends, and makes it DONE; the forwarder
 * records every DONE slot's outcome and frees it. A slow request holds its own slot only:
 * the others keep going. */
typedef enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE } slot_state;

typedef struct slot {
    slot_state state; /* under the lock; the rest belongs to whoever moved it last */
    duka_hub_outbox_item item; /* owns item.payload */
    bool ready;                /* prepared: to be sent (else DONE with prepare's outcome) */
    duka_hub_outbox_outcome outcome;
    void *prepared;
    char *result;
    char err[DUKA_ERR_MSG_MAX];
} slot;

typedef enum health { H_ONLINE, H_DEGRADED, H_OFFLINE } health;
static const char *const health_names[] = {"online", "degraded", "offline"};

struct duka_forwarder {
    duka_forwarder_service svc;
    const duka_clock *clock;
    duka_hub_store *store;
    char owner[DUKA_HUB_OUTBOX_OWNER_LEN + 1];
    pthread_t thread;
    pthread_t workers[DUKA_FORWARDER_IN_FLIGHT_MAX];
    int worker_count;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* the forwarder: a kick, a slot done, a stop */
    pthread_cond_t work; /* the workers: a slot queued, a stop */
    bool stop, kicked;
    slot slots[DUKA_FORWARDER_IN_FLIGHT_MAX];

    /* Health (forwarder thread only). */
    health state;
    int64_t state_since_ms, health_written_ms;
    int server_failures, timeouts;
    int64_t probe_delay_ms, next_probe_ms;
    int64_t last_cleanup_ms, last_alert_ms;
    char detail[DUKA_ERR_MSG_MAX];
};

static int64_t now_ms(const duka_forwarder *f)
{
    return duka_clock_now_ms(f->clock);
}

static void *worker_main(void *arg)
{
    duka_forwarder *f = arg;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        slot *sl = NULL;
        while (!f->stop && sl == NULL) {
            for (int i = 0; i < f->svc.in_flight && sl == NULL; i++)
                if (f->slots[i].state == SLOT_QUEUED)
                    sl = &f->slots[i];
            if (sl == NULL)
                pthread_cond_wait(&f->work, &f->lock);
        }
        if (sl == NULL)
            break; /* stopping: what is still queued is given back by the forwarder */
        sl->state = SLOT_RUNNING;
        pthread_mutex_unlock(&f->lock);
        int64_t t0 = duka_monotonic_ms();
        f->svc.send(f->svc.ctx, &sl->item, sl->prepared, &sl->outcome, &sl->result, sl->err,
                    sizeof(sl->err));
        sl->outcome.duration_ms = duka_monotonic_ms() - t0;
        pthread_mutex_lock(&f->lock);
        sl->state = SLOT_DONE;
        pthread_cond_signal(&f->wake);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static void health_write(duka_forwarder *f, int64_t t)
{
    duka_service_health h = {.since_ms = f->state_since_ms, .updated_ms = t};
    snprintf(h.state, sizeof(h.state), "%s", health_names[f->state]);
    snprintf(h.detail, sizeof(h.detail), "%s", f->detail);
    duka_err err = {0};
    if (duka_hub_health_put(f->store, f->svc.destination, &h, &err) == DUKA_OK)
        f->health_written_ms = t;
    else
        duka_log(DUKA_LOG_WARN, f->svc.destination, "recording the service's health: %s",
                 err.msg);
}

static void health_set(duka_forwarder *f, health s, const char *detail, int64_t t)
{
    snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "");
    if (s == f->state) {
        if (t - f->health_written_ms >= DUKA_FORWARDER_HEARTBEAT_MS)
            health_write(f, t);
        return;
    }
    health was = f->state;
    f->state = s;
    f->state_since_ms = t;
    duka_log(s == H_ONLINE ? DUKA_LOG_INFO : DUKA_LOG_WARN, f->svc.destination, "%s -> %s%s%s",
             health_names[was], health_names[s], detail && detail[0] ? ": " : "",
             detail ? detail : "");
    health_write(f, t);
    if (s != H_OFFLINE) {
        /* Answering again: what the outage backed off is due now, not at the end of its
         * backoff. */
        int64_t woken = 0;
        duka_err err = {0};
        if (duka_hub_outbox_wake(f->store, f->svc.destination, t, &woken, &err) != DUKA_OK)
            duka_log(DUKA_LOG_WARN, f->svc.destination, "waking items: %s", err.msg);
        else if (woken > 0)
            duka_log(DUKA_LOG_INFO, f->svc.destination, "%lld items due again",
                     (long long)woken);
        f->probe_delay_ms = 0;
    }
}

/* What the attempts just finished say about the service. */
static void health_observe(duka_forwarder *f, const int *done, int n, int64_t t)
{
    int sent = 0, offline = 0, unclear = 0, server = 0;
    int64_t slowest = 0;
    const char *last_error = NULL;
    for (int k = 0; k < n; k++) {
        const slot *sl = &f->slots[done[k]];
        const duka_hub_outbox_outcome *o = &sl->outcome;
        if (!sl->ready) {
            /* Not sent. Its preparation may have called the service (eTIMS's device
             * registration) and found it unreachable: that is the service offline; anything
             * else (no KRA PIN, the store) says nothing of it. */
            if (o->verdict == DUKA_HUB_OUTBOX_DEFER && o->error_category != NULL &&
                strcmp(o->error_category, DUKA_OUTBOX_ERR_NETWORK) == 0) {
                offline++;
                last_error = sl->err;
            }
            continue;
        }
        switch (o->verdict) {
        case DUKA_HUB_OUTBOX_SENT:
        case DUKA_HUB_OUTBOX_AWAIT:
        case DUKA_HUB_OUTBOX_REFUSED: /* it answered */
        case DUKA_HUB_OUTBOX_WAIT:
            sent++;
            if (o->duration_ms > slowest)
                slowest = o->duration_ms;
            break;
        case DUKA_HUB_OUTBOX_DEFER: offline++; last_error = sl->err; break;
        case DUKA_HUB_OUTBOX_UNCLEAR: unclear++; last_error = sl->err; break;
        case DUKA_HUB_OUTBOX_RETRY: server++; last_error = sl->err; break;
        }
    }
    if (sent + offline + unclear + server == 0)
        return;
    if (sent > 0) {
        f->server_failures = f->timeouts = 0;
        if (offline + unclear + server > 0)
            health_set(f, H_DEGRADED, last_error, t);
        else if (slowest > DUKA_FORWARDER_DEGRADED_LATENCY_MS)
            health_set(f, H_DEGRADED, "slow answers", t);
        else
            health_set(f, H_ONLINE, "", t);
        return;
    }
    if (offline > 0) {
        health_set(f, H_OFFLINE, last_error, t);
    } else if (unclear > 0) {
        f->timeouts += unclear;
        health_set(f, f->timeouts >= DUKA_FORWARDER_FAILURES_TO_DEGRADE ? H_OFFLINE : H_DEGRADED,
                   last_error, t);
    } else {
        f->server_failures += server;
        health_set(f, f->server_failures >= DUKA_FORWARDER_FAILURES_TO_DEGRADE ? H_DEGRADED
                                                                                : f->state,
                   last_error, t);
    }
    if (f->state == H_OFFLINE) {
        f->probe_delay_ms = f->probe_delay_ms ? f->probe_delay_ms * 2 : 1000;
        if (f->probe_delay_ms > DUKA_FORWARDER_PROBE_MAX_MS)
            f->probe_delay_ms = DUKA_FORWARDER_PROBE_MAX_MS;
        f->next_probe_ms = t + f->probe_delay_ms;
    }
}

duka_hub_outbox_outcome duka_forwarder_outcome(const duka_hub_outbox_item *item,
                                               const duka_hub_outbox_outcome *o,
                                               const char *errbuf, const char *result)
{
    duka_hub_outbox_outcome r = *o;
    r.id = item->id;
    if (r.verdict != DUKA_HUB_OUTBOX_SENT) {
        r.error = errbuf[0] ? errbuf : "failed";
        if (r.error_category == NULL)
            r.error_category = DUKA_OUTBOX_ERR_SERVER;
    }
    r.result = result;
    return r;
}

/* Records the outcomes of the slots in done[] (one transaction) and frees them. */
static void record_done(duka_forwarder *f, const int *done, int n)
{
    duka_hub_outbox_item items[DUKA_FORWARDER_IN_FLIGHT_MAX];
    duka_hub_outbox_outcome outcomes[DUKA_FORWARDER_IN_FLIGHT_MAX];
    for (int k = 0; k < n; k++) {
        slot *sl = &f->slots[done[k]];
        items[k] = sl->item;
        outcomes[k] = duka_forwarder_outcome(&sl->item, &sl->outcome, sl->err, sl->result);
    }
    int64_t t = now_ms(f);
    int lost = 0;
    duka_err err = {0};
    if (duka_hub_outbox_finish(f->store, f->owner, items, outcomes, n, t, &lost, &err) !=
        DUKA_OK)
        /* The leases run out and the items are claimed again, unclear: asked before resent. */
        duka_log(DUKA_LOG_WARN, f->svc.destination, "recording %d outcomes: %s", n, err.msg);
    else if (lost > 0)
        duka_log(DUKA_LOG_WARN, f->svc.destination,
                 "%d items' leases ran out before their outcome was recorded", lost);
    health_observe(f, done, n, t);
    pthread_mutex_lock(&f->lock);
    for (int k = 0; k < n; k++) {
        slot *sl = &f->slots[done[k]];
        free(sl->item.payload);
        free(sl->prepared);
        free(sl->result);
        sl->item.payload = NULL;
        sl->prepared = NULL;
        sl->result = NULL;
        sl->state = SLOT_FREE;
    }
    pthread_mutex_unlock(&f->lock);
}

/* Claims up to `room` due items into free slots, prepares them and queues them for the
 * workers. Returns the number claimed. */
static int fill_slots(duka_forwarder *f, int room)
{
    int64_t t = now_ms(f);
    duka_err err = {0};
    duka_hub_outbox_claim c;
    c.count = 0;
    if (duka_hub_outbox_claim_due(f->store, f->svc.destination, f->owner, room,
                                  t + f->svc.lease_ms, t, &c, &err) != DUKA_OK) {
        duka_log(DUKA_LOG_WARN, f->svc.destination, "claiming: %s", err.msg);
        return 0;
    }
    int next = 0;
    for (int k = 0; k < c.count; k++) {
        pthread_mutex_lock(&f->lock);
        while (next < f->svc.in_flight && f->slots[next].state != SLOT_FREE)
            next++;
        pthread_mutex_unlock(&f->lock);
        if (next >= f->svc.in_flight) { /* cannot happen: room counted free slots */
            free(c.items[k].payload);
            continue;
        }
        slot *sl = &f->slots[next];
        sl->item = c.items[k]; /* takes the payload */
        c.items[k].payload = NULL;
        memset(&sl->outcome, 0, sizeof(sl->outcome));
        sl->prepared = NULL;
        sl->result = NULL;
        sl->err[0] = '\0';
        sl->ready = f->svc.prepare(f->svc.ctx, f->store, &sl->item, &sl->prepared, &sl->outcome,
                                   sl->err, sizeof(sl->err));
        pthread_mutex_lock(&f->lock);
        sl->state = sl->ready ? SLOT_QUEUED : SLOT_DONE;
        pthread_cond_signal(&f->work);
        pthread_mutex_unlock(&f->lock);
    }
    return c.count;
}

static void housekeeping(duka_forwarder *f)
{
    int64_t t = now_ms(f);
    if (f->health_written_ms == 0 || t - f->health_written_ms >= DUKA_FORWARDER_HEARTBEAT_MS)
        health_write(f, t);
    duka_err err = {0};
    if (t - f->last_cleanup_ms >= 3600000) {
        int64_t deleted = 0;
        if (duka_hub_outbox_cleanup(f->store, t - f->svc.retention_ms, &deleted, &err) !=
            DUKA_OK)
            duka_log(DUKA_LOG_WARN, f->svc.destination, "retention: %s", err.msg);
        f->last_cleanup_ms = t;
    }
    if (f->svc.max_unsent_ms > 0 && t - f->last_alert_ms >= 3600000) {
        duka_hub_outbox_counts k;
        if (duka_hub_outbox_count_unsent(f->store, NULL, f->svc.destination, &k, &err) == DUKA_OK &&
            k.oldest_unsent_ms > 0 && t - k.oldest_unsent_ms > f->svc.max_unsent_ms) {
            duka_log(DUKA_LOG_WARN, f->svc.destination,
                     "ALERT: %lld items not sent, the oldest for %lld min (limit %lld min)",
                     (long long)(k.pending + k.processing + k.awaiting + k.failed),
                     (long long)((t - k.oldest_unsent_ms) / 60000),
                     (long long)(f->svc.max_unsent_ms / 60000));
            f->last_alert_ms = t;
        }
    }
}

static void *forwarder_main(void *arg)
{
    duka_forwarder *f = arg;
    for (;;) {
        int done[DUKA_FORWARDER_IN_FLIGHT_MAX], ndone = 0, busy = 0;
        pthread_mutex_lock(&f->lock);
        bool stop = f->stop;
        f->kicked = false;
        for (int i = 0; i < f->svc.in_flight; i++) {
            if (f->slots[i].state == SLOT_DONE)
                done[ndone++] = i;
            else if (f->slots[i].state != SLOT_FREE)
                busy++;
        }
        pthread_mutex_unlock(&f->lock);
        if (ndone > 0)
            record_done(f, done, ndone);
        if (stop && busy == 0)
            break;
        if (stop) {
            /* Queue nothing new; what no worker took yet goes back unsent (no attempt used),
             * and the requests in flight are waited for. */
            pthread_mutex_lock(&f->lock);
            bool running = false;
            for (int i = 0; i < f->svc.in_flight; i++) {
                slot *sl = &f->slots[i];
                if (sl->state == SLOT_QUEUED) {
                    sl->outcome.verdict = DUKA_HUB_OUTBOX_DEFER;
                    sl->outcome.error_category = DUKA_OUTBOX_ERR_NETWORK;
                    snprintf(sl->err, sizeof(sl->err), "the hub stopped before sending it");
                    sl->ready = false;
                    sl->state = SLOT_DONE;
                } else if (sl->state == SLOT_RUNNING) {
                    running = true;
                }
            }
            if (running)
                pthread_cond_wait(&f->wake, &f->lock);
            pthread_mutex_unlock(&f->lock);
            continue;
        }
        housekeeping(f);
        int64_t t = now_ms(f);
        /* Offline: one probe at a time, when it is due. */
        int room = f->state == H_OFFLINE ? (busy == 0 && t >= f->next_probe_ms ? 1 : 0)
                                         : f->svc.in_flight - busy;
        int claimed = room > 0 ? fill_slots(f, room) : 0;
        if (claimed > 0 && claimed == room)
            continue; /* more may be due: look again as soon as a slot frees */
        int64_t wait = DUKA_FORWARDER_IDLE_POLL_MS;
        if (f->state == H_OFFLINE && f->next_probe_ms - t < wait)
            wait = f->next_probe_ms - t;
        if (wait < 10)
            wait = 10;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(wait / 1000);
        until.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&f->lock);
        bool any_done = false;
        for (int i = 0; i < f->svc.in_flight; i++)
            any_done = any_done || f->slots[i].state == SLOT_DONE;
        if (!f->stop && !f->kicked && !any_done)
            pthread_cond_timedwait(&f->wake, &f->lock, &until);
        pthread_mutex_unlock(&f->lock);
    }
    return NULL;
}

duka_rc duka_forwarder_start(const char *location, const duka_forwarder_service *svc,
                             const duka_clock *clock, duka_forwarder **out, duka_err *err)
{
    *out = NULL;
    if (svc->in_flight < 1 || svc->in_flight > DUKA_FORWARDER_IN_FLIGHT_MAX)
        return duka_err_set(err, DUKA_INPUT, "%s: %d requests in flight, expected 1..%d",
                            svc->destination, svc->in_flight, DUKA_FORWARDER_IN_FLIGHT_MAX);
    if (svc->lease_ms <= 0 || svc->lease_ms > DUKA_HUB_OUTBOX_LEASE_MAX_MS)
        return duka_err_set(err, DUKA_INPUT, "%s: a lease of %ld ms, expected 1..%ld",
                            svc->destination, svc->lease_ms, DUKA_HUB_OUTBOX_LEASE_MAX_MS);
    duka_forwarder *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the %s forwarder",
                            svc->destination);
    f->svc = *svc;
    f->clock = clock;
    duka_random_hex(f->owner, DUKA_HUB_OUTBOX_OWNER_LEN);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->wake, NULL);
    pthread_cond_init(&f->work, NULL);
    f->state = H_ONLINE;
    f->state_since_ms = now_ms(f);
    f->last_cleanup_ms = f->state_since_ms - 3600000 + 60000; /* the first a minute in */
    duka_rc rc = duka_hub_store_open(location, false, &f->store, err);
    if (rc != DUKA_OK) {
        free(f);
        return rc;
    }
    /* A restart after kill -9 on the embedded hub: what it was sending is asked about now,
     * not after its lease. */
    int64_t recovered = 0;
    duka_err rerr = {0};
    if (duka_hub_outbox_recover_own(f->store, svc->destination, f->state_since_ms, &recovered,
                                    &rerr) != DUKA_OK)
        duka_log(DUKA_LOG_WARN, svc->destination, "recovering items: %s", rerr.msg);
    else if (recovered > 0)
        duka_log(DUKA_LOG_INFO, svc->destination,
                 "%lld items left in flight by the last run are due again (asked first)",
                 (long long)recovered);
    for (int i = 0; i < svc->in_flight; i++) {
        if (pthread_create(&f->workers[i], NULL, worker_main, f) != 0)
            break;
        f->worker_count++;
    }
    if (f->worker_count != svc->in_flight ||
        pthread_create(&f->thread, NULL, forwarder_main, f) != 0) {
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        pthread_cond_broadcast(&f->work);
        pthread_mutex_unlock(&f->lock);
        for (int i = 0; i < f->worker_count; i++)
            pthread_join(f->workers[i], NULL);
        duka_hub_store_close(f->store);
        free(f);
        return duka_err_set(err, DUKA_INTERNAL, "starting the %s forwarder's threads",
                            svc->destination);
    }
    *out = f;
    return DUKA_OK;
}

void duka_forwarder_kick(duka_forwarder *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->kicked = true;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

void duka_forwarder_stop(duka_forwarder *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_signal(&f->wake);
    pthread_cond_broadcast(&f->work);
    pthread_mutex_unlock(&f->lock);
    /* The forwarder records what was in flight (at most a request's timeout) before it ends. */
    pthread_join(f->thread, NULL);
    for (int i = 0; i < f->worker_count; i++)
        pthread_join(f->workers[i], NULL);
    duka_hub_store_close(f->store);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->wake);
    pthread_cond_destroy(&f->work);
    free(f);
}

const char *duka_forwarder_reported_state(const duka_service_health *h, bool found,
                                          int64_t t)
{
    if (!found)
        return "off";
    if (t - h->updated_ms > DUKA_FORWARDER_HEALTH_STALE_MS)
        return "offline";
    return h->state;
}

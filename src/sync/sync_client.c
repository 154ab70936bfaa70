/* sync_client.c — push and pull on the till (see sync_client.h). */
#include "sync/sync_client.h"

#include <fcntl.h>
#include <pthread.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "net/http_client.h"
#include "outbox/outbox.h"
#include "store/db.h"
#include "till/cashier.h"
#include "till/catalog.h"
#include "till/etims_receipt.h"
#include "till/mpesa_verify.h"
#include "till/receipt.h"
#include "till/till_db.h"
#include "till/till_status.h"

/* ---- the per-database sync lock ---- */

static int lock_sync(sqlite3 *db, const duka_sync_options *opt, int64_t *waited_ms,
                     duka_err *err)
{
    const char *path = sqlite3_db_filename(db, "main");
    char lock_path[4096];
    snprintf(lock_path, sizeof(lock_path), "%s.sync-lock", path ? path : "duka");
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        duka_err_set(err, DUKA_STORE, "cannot open sync lock %s", lock_path);
        return -1;
    }
    int64_t t0 = duka_monotonic_ms();
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* Another sync of this database (the till's worker, another `duka sync`) is running:
         * wait for it rather than sending the same items twice at once. */
        if (opt != NULL && opt->on_wait != NULL)
            opt->on_wait(opt->on_wait_ctx);
        if (flock(fd, LOCK_EX) != 0) {
            close(fd);
            duka_err_set(err, DUKA_STORE, "cannot take sync lock %s", lock_path);
            return -1;
        }
    }
    if (waited_ms)
        *waited_ms = duka_monotonic_ms() - t0;
    return fd;
}

static void unlock_sync(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

/* ---- sync history ---- */

/* Writes one sync attempt to sync_log. A pull that brought nothing and failed nowhere, right
 * after another such one, is folded into it (repeats + 1, last_ms = now): a till online all
 * day pulls every 30 s, and 2,880 empty rows a day would bury what moved. They stay countable
 * (repeats) and the row says when the last one was. */
static void log_attempt(sqlite3 *db, int64_t started_ms, const char *direction, int64_t items,
                        int64_t ok, int64_t dups, int64_t failed, int64_t conflicts,
                        long http_status, int64_t duration_ms, const char *error)
{
    sqlite3_stmt *st = NULL;
    if (strcmp(direction, "pull") == 0 && items == 0 && error == NULL && http_status == 200 &&
        duka_db_prepare(db,
                        "UPDATE sync_log SET repeats = repeats + 1, last_ms = ?1,"
                        " duration_ms = max(duration_ms, ?2)"
                        " WHERE id = (SELECT max(id) FROM sync_log) AND direction = 'pull'"
                        " AND items = 0 AND error IS NULL AND http_status = 200",
                        &st, NULL) == DUKA_OK) {
        sqlite3_bind_int64(st, 1, started_ms);
        sqlite3_bind_int64(st, 2, duration_ms);
        bool folded = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1;
        sqlite3_finalize(st);
        st = NULL;
        if (folded)
            return;
    }
    if (duka_db_prepare(db,
                        "INSERT INTO sync_log(started_ms, direction, items, ok, duplicates, failed,"
                        " conflicts, http_status, duration_ms, error)"
                        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                        &st, NULL) != DUKA_OK)
        return;
    sqlite3_bind_int64(st, 1, started_ms);
    duka_db_bind_text(st, 2, direction);
    sqlite3_bind_int64(st, 3, items);
    sqlite3_bind_int64(st, 4, ok);
    sqlite3_bind_int64(st, 5, dups);
    sqlite3_bind_int64(st, 6, failed);
    sqlite3_bind_int64(st, 7, conflicts);
    sqlite3_bind_int64(st, 8, http_status);
    sqlite3_bind_int64(st, 9, duration_ms);
    duka_db_bind_text(st, 10, error);
    sqlite3_step(st); /* history is best effort: a full disk must not fail the sync itself */
    sqlite3_finalize(st);
}

/* Reads {"error":{"message"}} of an error reply, if any. */
static void error_message(const duka_http_reply *r, char *buf, size_t buflen)
{
    json_t *o = json_loads(r->body ? r->body : "", 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    snprintf(buf, buflen, "%s", m ? m : "no error message");
    json_decref(o);
}

/* "Duka-Till-Id: <id>" into buf, or NULL when the till has no id (a database made before
 * schema version 2 gets one when it migrates, so only tests' hand-made tills lack it). */
static const char *till_id_header(const char *till_id, char *buf, size_t n)
{
    if (till_id == NULL || till_id[0] == '\0')
        return NULL;
    snprintf(buf, n, "Duka-Till-Id: %s", till_id);
    return buf;
}

/* Keeps the shop's name and KRA PIN a pull reply carries ({"business": {"name", "kra_pin"}})
 * for the receipts. Absent (an older hub) changes nothing; malformed is the hub's fault. */
static duka_rc store_shop(sqlite3 *db, const json_t *business, duka_err *err)
{
    if (business == NULL)
        return DUKA_OK;
    const char *name = json_string_value(json_object_get(business, "name"));
    const char *pin = json_string_value(json_object_get(business, "kra_pin"));
    if (!json_is_object(business) || name == NULL || pin == NULL ||
        strlen(name) > DUKA_BUSINESS_NAME_MAX || strlen(pin) > DUKA_KRA_PIN_LEN)
        return duka_err_set(err, DUKA_PROTOCOL, "hub pull reply has an invalid business member");
    char old_name[DUKA_BUSINESS_NAME_MAX + 1], old_pin[DUKA_KRA_PIN_LEN + 1];
    if (duka_meta_get(db, DUKA_META_SHOP_NAME, old_name, sizeof(old_name), NULL, err) ||
        duka_meta_get(db, DUKA_META_KRA_PIN, old_pin, sizeof(old_pin), NULL, err))
        return DUKA_STORE;
    if (strcmp(old_name, name) == 0 && strcmp(old_pin, pin) == 0)
        return DUKA_OK; /* the common case: no write on every pull */
    duka_rc rc = duka_db_begin(db, err);
    if (rc == DUKA_OK && (duka_meta_set(db, DUKA_META_SHOP_NAME, name, err) ||
                          duka_meta_set(db, DUKA_META_KRA_PIN, pin, err) ||
                          duka_db_commit(db, err)))
        rc = DUKA_STORE;
    if (rc != DUKA_OK)
        duka_db_rollback(db);
    return rc;
}

/* Classifies a non-200 reply into an error. */
static duka_rc reply_error(const char *url, const duka_http_reply *r, duka_err *err)
{
    char m[256];
    error_message(r, m, sizeof(m));
    if (r->status == 401 || r->status == 403)
        return duka_err_set(err, DUKA_AUTH, "token rejected by the hub at %s", url);
    if (r->status == 409)
        /* token_in_use: the token is bound to another till database. Like a rejected token it
         * is the hub's refusal of this till, not of its items: they wait, no attempt used. */
        return duka_err_set(err, DUKA_AUTH, "hub at %s refused this till: %s", url, m);
    if (r->status == 404)
        return duka_err_set(err, DUKA_PROTOCOL, "not a duka hub at %s (HTTP 404)", url);
    if (r->status >= 500 || r->status == 429)
        return duka_err_set(err, DUKA_OFFLINE, "hub at %s answered HTTP %ld: %s", url, r->status, m);
    return duka_err_set(err, DUKA_PROTOCOL, "hub at %s answered HTTP %ld: %s", url, r->status, m);
}

/* ---- push ---- */

static void note_reply(duka_sync_result *res, const duka_http_reply *reply, int64_t latency_ms)
{
    if (res == NULL)
        return;
    res->reached = reply->status != 0;
    res->http_status = reply->status;
    res->latency_ms = latency_ms;
    res->retry_after_s = reply->retry_after_s;
}


/* Builds {"commands":[{"id","type","entity_id","payload":<stored JSON>}…]} without re-parsing
 * the stored payloads (they were produced by duka_sale_to_json and validated at commit). */
static char *build_push_body(const duka_outbox_batch *b, size_t *len)
{
    size_t cap = b->payload_bytes + (size_t)b->count * 160 + 32;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t n = (size_t)snprintf(buf, cap, "{\"commands\":[");
    for (int i = 0; i < b->count; i++) {
        const duka_outbox_item *it = &b->items[i];
        n += (size_t)snprintf(buf + n, cap - n,
                              "%s{\"id\":\"%s\",\"type\":\"%s\",\"entity_id\":\"%s\",\"payload\":",
                              i ? "," : "", it->command_id, it->command_type, it->entity_id);
        size_t pl = strlen(it->payload);
        memcpy(buf + n, it->payload, pl);
        n += pl;
        buf[n++] = '}';
    }
    n += (size_t)snprintf(buf + n, cap - n, "]}");
    *len = n;
    return buf;
}

/* Turns the hub's results into outcomes for the claimed batch. Items the hub did not answer
 * for stay pending. */
static duka_rc read_results(const duka_outbox_batch *b, const json_t *reply,
                            duka_outbox_outcome *oc, duka_sync_result *res, duka_err *err)
{
    const json_t *results = json_object_get(reply, "results");
    if (!json_is_array(results))
        return duka_err_set(err, DUKA_PROTOCOL, "hub reply has no results array");
    for (int i = 0; i < b->count; i++) {
        oc[i] = (duka_outbox_outcome){.id = b->items[i].id, .status = DUKA_OUTBOX_PENDING,
                                      .error = "hub did not answer for this command",
                                      .error_category = DUKA_OUTBOX_ERR_SERVER};
    }
    size_t idx;
    const json_t *r;
    json_array_foreach(results, idx, r) {
        const char *id = json_string_value(json_object_get(r, "id"));
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *msg =
            json_string_value(json_object_get(json_object_get(r, "error"), "message"));
        if (id == NULL || status == NULL)
            continue;
        /* Results come back in request order; fall back to a search if not. */
        int k = (idx < (size_t)b->count && strcmp(b->items[idx].command_id, id) == 0) ? (int)idx : -1;
        for (int j = 0; k < 0 && j < b->count; j++)
            if (strcmp(b->items[j].command_id, id) == 0)
                k = j;
        if (k < 0)
            continue;
        if (strcmp(status, "applied") == 0 || strcmp(status, "duplicate") == 0) {
            oc[k].status = DUKA_OUTBOX_DONE;
            oc[k].error = NULL;
            oc[k].error_category = NULL;
            res->pushed++;
            res->duplicates += status[0] == 'd';
        } else if (strcmp(status, "conflict") == 0) {
            oc[k].status = DUKA_OUTBOX_CONFLICT;
            oc[k].error = msg ? msg : "conflict";
            oc[k].error_category = DUKA_OUTBOX_ERR_CONFLICT;
            res->conflicts++;
        } else if (strcmp(status, "retry") == 0) {
            /* Not yet (a refund that overtook its sale): sent again, no attempt used. */
            oc[k].status = DUKA_OUTBOX_PENDING;
            oc[k].error = msg ? msg : "the hub asked for it again later";
            oc[k].error_category = DUKA_OUTBOX_ERR_NETWORK;
        } else if (strcmp(status, "rejected") == 0) {
            oc[k].status = DUKA_OUTBOX_FAILED;
            oc[k].error = msg ? msg : "rejected by the hub";
            oc[k].error_category = DUKA_OUTBOX_ERR_VALIDATION;
            res->failed++;
        }
    }
    return DUKA_OK;
}

/* Sends one request through the options' transport, or over HTTP. */
static duka_rc send_request(const duka_sync_options *opt, const char *method, const char *url,
                            const char *token, const char *body, size_t len,
                            const duka_http_options *ho, duka_http_reply *out, duka_err *err)
{
    if (opt != NULL && opt->transport != NULL)
        return opt->transport(opt->transport_ctx, method, url, token, body, len, ho, out, err);
    return duka_http_send(method, url, token, body, len, ho, out, err);
}

/* A batch on its way: claimed and sent (on a thread of its own when it goes over HTTP), its
 * answer not yet recorded. Only that thread touches it between push_start and push_finish. */
typedef struct push_slot {
    duka_outbox_batch b;
    char *body;
    size_t len;
    char url[DUKA_URL_MAX + 16];
    const duka_till_identity *id;
    const duka_sync_options *opt;
    int64_t started, t0, latency_ms;
    duka_http_reply reply;
    duka_rc rc;
    duka_err err;
    bool threaded;
    pthread_t thread;
} push_slot;

static void send_slot(push_slot *p)
{
    int64_t t_send = duka_monotonic_ms();
    duka_http_options ho = {.ca_file = p->id->ca_file, .cancel = p->opt->cancel};
    char till_header[DUKA_TILL_HEADER_MAX];
    ho.headers[0] = till_id_header(p->id->till_id, till_header, sizeof(till_header));
    memset(&p->err, 0, sizeof(p->err));
    p->rc = send_request(p->opt, "POST", p->url, p->id->token, p->body, p->len, &ho, &p->reply,
                         &p->err);
    p->latency_ms = duka_monotonic_ms() - t_send;
}

static void *send_slot_thread(void *arg)
{
    send_slot(arg);
    return NULL;
}

/* Claims the next batch and sends it: on a thread when threaded (and a thread could be
 * started), else before returning. *drained is set when nothing was pending (no batch). */
static duka_rc push_start(sqlite3 *db, const duka_till_identity *id, const duka_sync_options *opt,
                          bool threaded, push_slot *p, bool *drained, duka_err *err)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->opt = opt;
    p->started = duka_clock_now_ms(opt->clock);
    p->t0 = duka_monotonic_ms();
    duka_rc rc = duka_outbox_claim(db, opt->batch_size, DUKA_PUSH_BODY_TARGET_BYTES, p->started,
                                   &p->b, err);
    if (rc != DUKA_OK)
        return rc;
    *drained = p->b.count == 0;
    if (p->b.count == 0) {
        duka_outbox_batch_free(&p->b);
        return DUKA_OK;
    }
    snprintf(p->url, sizeof(p->url), "%s/v1/push", id->hub_url);
    p->body = build_push_body(&p->b, &p->len);
    if (p->body == NULL) {
        duka_outbox_release(db, &p->b, "out of memory", DUKA_OUTBOX_ERR_NETWORK, p->started, NULL);
        duka_outbox_batch_free(&p->b);
        return duka_err_set(err, DUKA_NOMEM, "out of memory building a push");
    }
    p->threaded = threaded && pthread_create(&p->thread, NULL, send_slot_thread, p) == 0;
    if (!p->threaded)
        send_slot(p);
    return DUKA_OK;
}

/* Waits for the batch's answer and records it: outcomes, or the whole batch back to pending
 * when nothing is known about it. */
static duka_rc push_finish(sqlite3 *db, push_slot *p, duka_sync_result *res, duka_err *err)
{
    if (p->threaded)
        pthread_join(p->thread, NULL);
    const duka_sync_result before = *res; /* history rows count this batch only */
    duka_rc rc = p->rc;
    if (rc != DUKA_OK && err != NULL)
        *err = p->err;
    note_reply(res, &p->reply, p->latency_ms);
    duka_outbox_outcome *oc = calloc((size_t)p->b.count, sizeof(*oc));
    json_t *js = NULL;
    if (rc == DUKA_OK && p->reply.status != 200)
        rc = reply_error(p->id->hub_url, &p->reply, err);
    if (rc == DUKA_OK && oc == NULL)
        rc = duka_err_set(err, DUKA_NOMEM, "out of memory reading a push reply");
    if (rc == DUKA_OK) {
        js = json_loadb(p->reply.body, p->reply.len, 0, NULL);
        if (js == NULL)
            rc = duka_err_set(err, DUKA_PROTOCOL, "hub reply from %s is not valid JSON", p->url);
        else
            rc = read_results(&p->b, js, oc, res, err);
    }
    const duka_sync_options *opt = p->opt;
    if (rc == DUKA_OK) {
        rc = duka_outbox_finish(db, oc, p->b.count, duka_clock_now_ms(opt->clock), err);
    } else {
        /* Nothing known about this batch: all of it goes back, same ids, resent next time.
         * Only a batch the hub refused as malformed costs the items an attempt. */
        long status = p->reply.status;
        const char *cat = rc == DUKA_AUTH      ? DUKA_OUTBOX_ERR_AUTH
                          : rc == DUKA_OFFLINE ? DUKA_OUTBOX_ERR_NETWORK
                          : status == 400 || status == 413 || status == 422
                              ? DUKA_OUTBOX_ERR_VALIDATION
                              : DUKA_OUTBOX_ERR_NETWORK;
        /* A hub that asked for time (503/429 + Retry-After) gets it before these items. */
        int64_t now = duka_clock_now_ms(opt->clock);
        int64_t wait = p->reply.retry_after_s > 0 ? p->reply.retry_after_s * 1000 : 0;
        if (wait > DUKA_OUTBOX_RETRY_AFTER_MAX_MS)
            wait = DUKA_OUTBOX_RETRY_AFTER_MAX_MS;
        int64_t not_before = wait > 0 ? now + wait : 0;
        duka_outbox_release_until(db, &p->b, err ? err->msg : "sync failed", cat, now,
                                  not_before, NULL);
    }
    log_attempt(db, p->started, "push", p->b.count, res->pushed - before.pushed,
                res->duplicates - before.duplicates, res->failed - before.failed,
                res->conflicts - before.conflicts, p->reply.status,
                duka_monotonic_ms() - p->t0, rc == DUKA_OK ? NULL : (err ? err->msg : "failed"));
    json_decref(js);
    duka_http_reply_free(&p->reply);
    free(oc);
    free(p->body);
    duka_outbox_batch_free(&p->b);
    return rc;
}

/* Pushes until the outbox is drained, with up to opt->pipeline batches in flight: the next
 * batch is claimed and sent while the hub applies the one before, so the till, the hub and
 * its database work at once instead of in turn. Batches are claimed in outbox order and their
 * answers recorded in that order. After a failure no new batch starts; those already sent are
 * still recorded (each is applied or not at the hub, whatever happened to the other). */
static duka_rc push_all(sqlite3 *db, const duka_till_identity *id, const duka_sync_options *opt,
                        duka_sync_result *res, duka_err *err)
{
    push_slot slots[DUKA_SYNC_PIPELINE_MAX];
    int head = 0, in_flight = 0, started = 0;
    /* The simulator's transport is deterministic and single-threaded: sent in turn there,
     * still claimed ahead, so it sees the same orderings. */
    bool threaded = opt->transport == NULL && opt->pipeline > 1;
    bool drained = false, stop = false;
    duka_rc rc = DUKA_OK;
    for (;;) {
        while (!stop && !drained && in_flight < opt->pipeline) {
            if (started == DUKA_SYNC_ROUNDS_MAX) {
                stop = true; /* a bound, not a goal: the next sync goes on */
                break;
            }
            if (opt->cancel != NULL && atomic_load(opt->cancel)) {
                if (rc == DUKA_OK)
                    rc = duka_err_set(err, DUKA_BUSY, "sync stopped: the till is shutting down");
                stop = true;
                break;
            }
            push_slot *p = &slots[(head + in_flight) % DUKA_SYNC_PIPELINE_MAX];
            duka_err serr = {0};
            duka_rc src = push_start(db, id, opt, threaded, p, &drained, &serr);
            if (src != DUKA_OK) {
                if (rc == DUKA_OK) {
                    rc = src;
                    if (err != NULL)
                        *err = serr;
                }
                stop = true;
            } else if (!drained) {
                in_flight++;
                started++;
            }
        }
        if (in_flight == 0)
            break;
        duka_err ferr = {0};
        duka_rc frc = push_finish(db, &slots[head], res, &ferr);
        head = (head + 1) % DUKA_SYNC_PIPELINE_MAX;
        in_flight--;
        if (frc != DUKA_OK) {
            stop = true;
            if (rc == DUKA_OK) {
                rc = frc;
                if (err != NULL)
                    *err = ferr;
            }
        }
    }
    return rc;
}

/* ---- pull ---- */

static duka_rc pull_locked(sqlite3 *db, const duka_till_identity *id,
                           const duka_sync_options *opt, int64_t *pulled, duka_sync_result *res,
                           duka_err *err)
{
    char cursor_text[32];
    bool found = false;
    *pulled = 0;
    if (duka_meta_get(db, DUKA_META_PULL_CURSOR, cursor_text, sizeof(cursor_text), &found, err))
        return DUKA_STORE;
    long long cursor = found ? strtoll(cursor_text, NULL, 10) : 0;
    for (int page = 0; page < DUKA_SYNC_ROUNDS_MAX; page++) {
        char url[DUKA_URL_MAX + 128];
        /* The version of the cashier list this till holds: the hub sends the whole list only
         * when its own differs (cashier.h). */
        int64_t cashiers_version = 0, invoice_cursor = 0, mpesa_cursor = 0;
        if (duka_cashiers_version(db, &cashiers_version, err) != DUKA_OK ||
            duka_etims_invoice_cursor(db, &invoice_cursor, err) != DUKA_OK ||
            duka_mpesa_cursor(db, &mpesa_cursor, err) != DUKA_OK)
            return DUKA_STORE;
        /* invoice_cursor: the eTIMS signatures of this till's receipts after the last one it
         * stored (etims_receipt.h); the hub answers with an invoices member. mpesa_cursor: the
         * same for the verdicts on its typed M-Pesa codes (mpesa_verify.h). */
        snprintf(url, sizeof(url),
                 "%s/v1/pull?cursor=%lld&limit=%d&cashiers_version=%lld&invoice_cursor=%lld"
                 "&mpesa_cursor=%lld",
                 id->hub_url, cursor, DUKA_PULL_PAGE_DEFAULT, (long long)cashiers_version,
                 (long long)invoice_cursor, (long long)mpesa_cursor);
        duka_http_reply reply = {0};
        int64_t t0 = duka_monotonic_ms();
        duka_http_options ho = {.ca_file = id->ca_file};
        char till_header[DUKA_TILL_HEADER_MAX];
        ho.headers[0] = till_id_header(id->till_id, till_header, sizeof(till_header));
        duka_rc rc = send_request(opt, "GET", url, id->token, NULL, 0, &ho, &reply, err);
        note_reply(res, &reply, duka_monotonic_ms() - t0);
        if (rc == DUKA_OK && reply.status != 200)
            rc = reply_error(id->hub_url, &reply, err);
        json_t *js = rc == DUKA_OK ? json_loadb(reply.body, reply.len, 0, NULL) : NULL;
        duka_http_reply_free(&reply);
        if (rc != DUKA_OK)
            return rc;
        const json_t *changes = json_object_get(js, "changes");
        const json_t *next = json_object_get(js, "cursor");
        if (!json_is_array(changes) || !json_is_integer(next) ||
            json_integer_value(next) < cursor) {
            json_decref(js);
            return duka_err_set(err, DUKA_PROTOCOL, "hub pull reply from %s is not valid", url);
        }
        int applied = 0;
        rc = duka_catalog_apply_page(db, changes, (int64_t)json_integer_value(next), &applied, err);
        if (rc == DUKA_OK)
            rc = duka_receipt_apply_floor(db, json_object_get(js, "receipt_floor"), err);
        if (rc == DUKA_OK && page == 0)
            rc = store_shop(db, json_object_get(js, "business"), err);
        if (rc == DUKA_OK)
            rc = duka_cashiers_apply_pull(db, json_object_get(js, "cashiers"), err);
        duka_etims_pull_result etims = {0};
        if (rc == DUKA_OK)
            rc = duka_etims_apply_pull(db, json_object_get(js, "invoices"),
                                       json_object_get(js, "services"),
                                       duka_clock_now_ms(opt->clock), &etims, err);
        if (rc == DUKA_OK && etims.ignored > 0)
            duka_log(DUKA_LOG_WARN, "sync",
                     "pull: %d eTIMS signatures of receipts this till does not hold, ignored",
                     etims.ignored);
        duka_mpesa_pull_result mpesa = {0};
        if (rc == DUKA_OK)
            rc = duka_mpesa_apply_pull(db, json_object_get(js, "mpesa"),
                                       json_object_get(js, "services"),
                                       duka_clock_now_ms(opt->clock), &mpesa, err);
        if (rc == DUKA_OK && mpesa.ignored > 0)
            duka_log(DUKA_LOG_WARN, "sync",
                     "pull: %d M-Pesa verdicts for payments this till does not hold pending, "
                     "ignored",
                     mpesa.ignored);
        /* Another page while the catalog, the signatures or the verdicts have more (the
         * loop's bound, DUKA_SYNC_ROUNDS_MAX, holds for all: the next sync goes on). */
        bool more = json_is_true(json_object_get(js, "more")) || etims.more || mpesa.more;
        cursor = (long long)json_integer_value(next);
        json_decref(js);
        if (rc != DUKA_OK)
            return rc;
        *pulled += applied;
        if (!more)
            return DUKA_OK;
    }
    return DUKA_OK;
}

static void record_state(sqlite3 *db, const duka_sync_options *opt, duka_rc rc, const duka_err *err);

duka_rc duka_sync_pull(sqlite3 *db, int64_t *pulled, duka_err *err)
{
    duka_till_identity id;
    duka_rc rc = duka_till_identity_load(db, &id, err);
    if (rc != DUKA_OK)
        return rc;
    int fd = lock_sync(db, NULL, NULL, err);
    if (fd < 0)
        return DUKA_STORE;
    duka_sync_options opt = {0};
    int64_t t0 = duka_monotonic_ms(), started = duka_clock_now_ms(NULL);
    rc = pull_locked(db, &id, &opt, pulled, NULL, err);
    /* A pull is a sync with the hub like any other: history and "last sync" say so (till init
     * pulled the catalog: "last sync: never" after it was wrong). */
    log_attempt(db, started, "pull", *pulled, *pulled, 0, 0, 0, rc == DUKA_OK ? 200 : 0,
                duka_monotonic_ms() - t0, rc == DUKA_OK ? NULL : err->msg);
    if (rc == DUKA_OK || rc == DUKA_OFFLINE || rc == DUKA_AUTH || rc == DUKA_PROTOCOL)
        record_state(db, &opt, rc, err);
    unlock_sync(fd);
    return rc;
}

static void record_state(sqlite3 *db, const duka_sync_options *opt, duka_rc rc, const duka_err *err)
{
    int64_t now = duka_clock_now_ms(opt->clock);
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", (long long)now);
    if (rc == DUKA_OK)
        duka_meta_set(db, DUKA_META_LAST_SYNC_MS, ms, NULL);
    /* What this sync saw of the hub is the till's connectivity until the next observation. */
    const char *state = rc == DUKA_OK ? "online" : rc == DUKA_OFFLINE ? "offline" : "degraded";
    duka_till_record_connectivity(db, state, now, false, rc == DUKA_OK ? "" : err->msg, NULL);
}

duka_rc duka_sync_run(sqlite3 *db, const duka_sync_options *opt_in, duka_sync_result *res,
                      duka_err *err)
{
    duka_sync_options opt = *opt_in;
    if (opt.batch_size <= 0)
        opt.batch_size = DUKA_SYNC_BATCH_DEFAULT;
    if (opt.batch_size > DUKA_SYNC_BATCH_MAX)
        opt.batch_size = DUKA_SYNC_BATCH_MAX;
    if (opt.pipeline <= 0)
        opt.pipeline = DUKA_SYNC_PIPELINE_DEFAULT;
    if (opt.pipeline > DUKA_SYNC_PIPELINE_MAX)
        opt.pipeline = DUKA_SYNC_PIPELINE_MAX;
    memset(res, 0, sizeof(*res));
    res->connectivity = "offline";
    res->retry_after_s = -1;
    int64_t t0 = duka_monotonic_ms();
    duka_till_identity id;
    duka_rc rc = duka_till_identity_load(db, &id, err);
    if (rc != DUKA_OK)
        return rc;
    int fd = lock_sync(db, &opt, &res->waited_ms, err);
    if (fd < 0)
        return DUKA_STORE;
    /* We hold the lock, so 'processing' items are leftovers of a crashed sync: resend them. */
    rc = duka_outbox_recover(db, NULL, err);
    if (rc == DUKA_OK)
        rc = push_all(db, &id, &opt, res, err);
    if (rc == DUKA_OK) {
        int64_t t1 = duka_monotonic_ms();
        rc = pull_locked(db, &id, &opt, &res->pulled, res, err);
        log_attempt(db, duka_clock_now_ms(opt.clock), "pull", res->pulled, res->pulled, 0, 0, 0,
                    rc == DUKA_OK ? 200 : 0, duka_monotonic_ms() - t1,
                    rc == DUKA_OK ? NULL : err->msg);
    }
    bool cancelled = opt.cancel != NULL && atomic_load(opt.cancel);
    if (!cancelled && (rc == DUKA_OK || rc == DUKA_OFFLINE || rc == DUKA_AUTH || rc == DUKA_PROTOCOL))
        record_state(db, &opt, rc, err);
    unlock_sync(fd);
    res->connectivity = rc == DUKA_OK ? "online" : "offline";
    res->duration_ms = duka_monotonic_ms() - t0;
    return rc;
}

duka_rc duka_sync_check_hub(const char *hub_url, const char *token, const char *terminal,
                            const char *ca_file, const char *till_id, bool replace,
                            duka_hub_whoami *who_out, duka_err *err)
{
    char url[DUKA_URL_MAX + 16];
    snprintf(url, sizeof(url), "%s/v1/whoami", hub_url);
    duka_http_reply reply = {0};
    duka_http_options ho = {.timeout_ms = 10000, .ca_file = ca_file};
    char till_header[DUKA_TILL_HEADER_MAX];
    ho.headers[0] = till_id_header(till_id, till_header, sizeof(till_header));
    if (replace)
        ho.headers[1] = "Duka-Till-Replace: 1";
    duka_rc rc = duka_http_send("GET", url, token, NULL, 0, &ho, &reply, err);
    if (rc != DUKA_OK)
        return rc;
    json_t *js = json_loadb(reply.body, reply.len, 0, NULL);
    const char *who = json_string_value(json_object_get(js, "terminal"));
    const json_t *error = json_object_get(js, "error");
    const char *message = json_string_value(json_object_get(error, "message"));
    if (reply.status == 401 && json_is_object(error))
        rc = duka_err_set(err, DUKA_AUTH, "token rejected by the hub at %s", hub_url);
    else if (reply.status == 409 && message != NULL)
        rc = duka_err_set(err, DUKA_CONFLICT, "%s", message);
    else if (reply.status != 200 || who == NULL)
        rc = duka_err_set(err, DUKA_PROTOCOL, "not a duka hub at %s (HTTP %ld to /v1/whoami)",
                          hub_url, reply.status);
    else if (strcmp(who, terminal) != 0)
        rc = duka_err_set(err, DUKA_INPUT,
                          "the token belongs to terminal %s, not %s (see: duka device add)", who,
                          terminal);
    if (rc == DUKA_OK && who_out != NULL) {
        memset(who_out, 0, sizeof(*who_out));
        const char *name = json_string_value(json_object_get(js, "business_name"));
        const char *pin = json_string_value(json_object_get(js, "kra_pin"));
        snprintf(who_out->business_name, sizeof(who_out->business_name), "%s", name ? name : "");
        snprintf(who_out->kra_pin, sizeof(who_out->kra_pin), "%s", pin ? pin : "");
    }
    json_decref(js);
    duka_http_reply_free(&reply);
    return rc;
}

json_t *duka_sync_result_json(const duka_sync_result *r)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "pushed", (json_int_t)r->pushed,
                     "duplicates", (json_int_t)r->duplicates, "pulled", (json_int_t)r->pulled,
                     "failed", (json_int_t)r->failed, "conflicts", (json_int_t)r->conflicts,
                     "duration_ms", (json_int_t)r->duration_ms, "connectivity",
                     r->connectivity);
}

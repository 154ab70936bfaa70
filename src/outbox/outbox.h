/*
 * outbox.h — the transactional outbox: durable commands waiting to be sent to another party.
 *
 * One engine for both hops (till -> hub now; hub -> eTIMS / M-Pesa / card later). An item is
 * written by the caller INSIDE the caller's own write transaction (the sale and the command
 * that forwards it commit together or not at all). The sender then:
 *   1. duka_outbox_recover()   at start: items left 'processing' by a crash become 'pending'
 *   2. duka_outbox_claim()     one transaction: the next batch, FIFO by id within priority,
 *                              marked 'processing' (attempts + 1)
 *   3. sends them, and only from the other side's answer:
 *   4. duka_outbox_finish()    one transaction: each item 'done', 'conflict' or 'failed'
 *      or duka_outbox_release() one transaction: the batch back to 'pending' with the error
 * An item's command id is made when it is enqueued and never changes, so a resend after a
 * lost reply carries the same id and the receiver answers "duplicate".
 *
 * Workload: a till writes one item per sale (tens to thousands a day, 100,000 queued after a
 * long outage is the design point); the table is indexed for claim order.
 */
#ifndef DUKA_OUTBOX_H
#define DUKA_OUTBOX_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

/* DDL of the outbox table; part of each database's first migration (a macro so it can be
 * glued onto a schema string at compile time). */
#define DUKA_OUTBOX_SCHEMA_SQL\
    "CREATE TABLE outbox ("\
    "  id INTEGER PRIMARY KEY," /* FIFO order: always above every existing id */\
    "  command_id TEXT NOT NULL UNIQUE,"\
    "  queue_type TEXT NOT NULL,"\
    "  command_type TEXT NOT NULL,"\
    "  entity_type TEXT NOT NULL,"\
    "  entity_id TEXT NOT NULL,"\
    "  stream TEXT NOT NULL,"\
    "  payload TEXT NOT NULL,"\
    "  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"\
    "    ('pending','processing','done','failed','conflict')),"\
    "  priority INTEGER NOT NULL,"\
    "  attempts INTEGER NOT NULL DEFAULT 0,"\
    "  max_attempts INTEGER NOT NULL,"\
    "  next_attempt_ms INTEGER NOT NULL,"\
    "  last_error TEXT,"\
    "  error_category TEXT,"\
    "  created_ms INTEGER NOT NULL,"\
    "  processed_ms INTEGER,"\
    "  device_id TEXT NOT NULL"\
    ");"\
    "CREATE INDEX outbox_claim ON outbox(status, priority, id);"
extern const char duka_outbox_schema_sql[];

typedef enum duka_outbox_status {
    DUKA_OUTBOX_PENDING,
    DUKA_OUTBOX_PROCESSING,
    DUKA_OUTBOX_DONE,
    DUKA_OUTBOX_FAILED,
    DUKA_OUTBOX_CONFLICT,
} duka_outbox_status;

/* "pending", "processing", … and back; -1 for an unknown name. */
const char *duka_outbox_status_name(duka_outbox_status s);
int duka_outbox_status_parse(const char *name);

/* Error categories of the last failed attempt. */
#define DUKA_OUTBOX_ERR_NETWORK "network"
#define DUKA_OUTBOX_ERR_SERVER "server"
#define DUKA_OUTBOX_ERR_VALIDATION "validation"
#define DUKA_OUTBOX_ERR_CONFLICT "conflict"
#define DUKA_OUTBOX_ERR_AUTH "auth"

/* Priorities: lower number goes first (tax invoices, then payments, then backup, then bulk). */
#define DUKA_PRIORITY_TAX 10
#define DUKA_PRIORITY_SALE 20
#define DUKA_PRIORITY_PAYMENT 30
#define DUKA_PRIORITY_BACKUP 60
#define DUKA_PRIORITY_BULK 90

/* Named queue types and their settings. */
#define DUKA_QUEUE_TYPES_MAX 8
typedef struct duka_queue_type {
    const char *name; /* "sale", "tax", "payment", "backup", "bulk" */
    int priority;     /* lower goes first */
    int max_attempts;
} duka_queue_type;

/* The process-wide retry policy: backoff and the queue types. Set once at start (from
 * configuration) before any thread uses the outbox; read-only afterwards. */
typedef struct duka_outbox_policy {
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    duka_queue_type types[DUKA_QUEUE_TYPES_MAX];
    int type_count;
} duka_outbox_policy;

void duka_outbox_set_policy(const duka_outbox_policy *policy);
const duka_outbox_policy *duka_outbox_get_policy(void);

/* Settings of a queue type, or NULL for an unknown name. */
const duka_queue_type *duka_outbox_queue_type(const char *name);

/* The retry delay after `attempts` failures, before jitter: base, 2 × base, 4 × base …
 * capped at the policy's maximum. Up to 20 % jitter is added when it is applied. */
int64_t duka_outbox_backoff_ms(int attempts);

/* The longest any item can be asked to wait: the backoff cap with its jitter, or the longest
 * Retry-After honoured. An item whose next attempt lies further ahead than this was scheduled
 * by a wall clock that has since been set back (found by the simulator: a clock corrected by
 * two hours held every backed-off sale for two hours), so it is due now. */
int64_t duka_outbox_wait_max_ms(void);

typedef struct duka_outbox_new {
    const char *queue_type;  /* "sale", … : which queue (and settings) the item belongs to */
    const char *command_type;/* "sale.create" : what the receiver does with it */
    const char *entity_type; /* "sale" */
    const char *entity_id;   /* the receipt number */
    const char *stream;      /* FIFO stream key, e.g. the terminal id */
    const char *payload;     /* JSON text, the command's body */
    const char *device_id;
    int priority;
    int max_attempts;
} duka_outbox_new;

/* Appends an item inside the caller's open write transaction. command_id_out receives the new
 * command id (UUIDv7 made here, now). */
duka_rc duka_outbox_enqueue(sqlite3 *db, const duka_outbox_new *item, int64_t now_ms,
                            char command_id_out[DUKA_UUID_STR_LEN + 1], duka_err *err);

/* One claimed item. payload is owned by the batch. */
typedef struct duka_outbox_item {
    int64_t id;
    char command_id[DUKA_UUID_STR_LEN + 1];
    char command_type[32];
    char entity_id[DUKA_RECEIPT_NO_MAX + 1];
    char *payload;
    int attempts;
} duka_outbox_item;

typedef struct duka_outbox_batch {
    duka_outbox_item *items;
    int count;
    unsigned long payload_bytes;
} duka_outbox_batch;

/* Moves every 'processing' item back to 'pending' (what a crash left half-sent). Returns the
 * number moved in *moved (may be NULL). One transaction. */
duka_rc duka_outbox_recover(sqlite3 *db, int *moved, duka_err *err);

/* Claims up to max_items pending items whose next attempt time has come (or lies impossibly
 * far ahead: see duka_outbox_wait_max_ms), in priority then FIFO
 * order, stopping before payload_budget bytes, and marks them processing. One transaction.
 * An empty batch is not an error. Free with duka_outbox_batch_free. */
duka_rc duka_outbox_claim(sqlite3 *db, int max_items, unsigned long payload_budget,
                          int64_t now_ms, duka_outbox_batch *out, duka_err *err);

void duka_outbox_batch_free(duka_outbox_batch *batch);

/* The receiver's answer for one item. */
typedef struct duka_outbox_outcome {
    int64_t id;
    duka_outbox_status status;  /* DONE, CONFLICT, FAILED or PENDING (retry later) */
    const char *error;          /* NULL when done */
    const char *error_category; /* DUKA_OUTBOX_ERR_*, NULL when done */
} duka_outbox_outcome;

/* Records outcomes for claimed items. One transaction. A PENDING outcome whose attempts have
 * reached max_attempts becomes FAILED; otherwise it is retried after an exponential backoff
 * (1 s, 2 s, 4 s … capped at 5 min, with jitter). A PENDING outcome of category
 * DUKA_OUTBOX_ERR_NETWORK or _AUTH (not the item's fault: a refund that overtook its sale)
 * gives its attempt back, as duka_outbox_release does. */
duka_rc duka_outbox_finish(sqlite3 *db, const duka_outbox_outcome *outcomes, int count,
                           int64_t now_ms, duka_err *err);

/* Puts the whole batch back to pending with one error (the send failed as a whole). A
 * DUKA_OUTBOX_ERR_NETWORK or _AUTH failure does not use up an attempt; others do, and an item out of
 * attempts becomes failed. */
duka_rc duka_outbox_release(sqlite3 *db, const duka_outbox_batch *batch, const char *error,
                            const char *error_category, int64_t now_ms, duka_err *err);

/* As duka_outbox_release, and no item is due again before not_before_ms (a Retry-After). */
duka_rc duka_outbox_release_until(sqlite3 *db, const duka_outbox_batch *batch, const char *error,
                                  const char *error_category, int64_t now_ms,
                                  int64_t not_before_ms, duka_err *err);

/* Manual retry: failed items back to pending with attempts reset, due now. id is an outbox id
 * or a command id; NULL retries every failed item. *retried gets the count. One transaction. */
duka_rc duka_outbox_retry(sqlite3 *db, const char *id, int64_t now_ms, int *retried,
                          duka_err *err);

/* Retention: removes done items processed before done_before_ms, never any other status.
 * Bounded chunks, each its own transaction. */
duka_rc duka_outbox_cleanup(sqlite3 *db, int64_t done_before_ms, int64_t *deleted,
                            duka_err *err);

/* Earliest next_attempt_ms of pending items, and the creation time of the oldest item still
 * to send (pending or processing); *found false when there is none. */
duka_rc duka_outbox_next_due(sqlite3 *db, int64_t *due_ms, bool *found, duka_err *err);
duka_rc duka_outbox_oldest_pending(sqlite3 *db, int64_t *created_ms, bool *found, duka_err *err);

/* Counts by status. */
typedef struct duka_outbox_counts {
    int64_t pending, processing, done, failed, conflict;
} duka_outbox_counts;
duka_rc duka_outbox_count(sqlite3 *db, duka_outbox_counts *out, duka_err *err);

#endif

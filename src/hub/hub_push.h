/*
 * hub_push.h — applying a pushed batch of commands exactly once.
 *
 * The whole batch is one transaction; each command inside it is a savepoint, so a rejected
 * command leaves no trace while the rest apply. For each command:
 *   - a command id seen before from the same device with the same payload: "duplicate",
 *     answering the first outcome (applied or conflict) and changing nothing;
 *   - the same id from another device, or with a different payload: "rejected", logged;
 *   - a sale whose receipt number the business already has under another command id:
 *     "conflict", logged with both versions (never a silent second sale or a silent drop);
 *   - otherwise the sale, its lines, payments and stock deltas are stored together with the
 *     command id: "applied".
 * The caller sends the reply only after duka_hub_push_apply() returned DUKA_OK, i.e. after
 * COMMIT: a reply never claims what is not durable.
 *
 * Before the commands, the store may load every id and receipt number the batch looks up in
 * one round trip (duka_hub_store_prefetch). When several hub processes share one PostgreSQL,
 * the database's unique constraints decide a race: the store's commit answers DUKA_BUSY when
 * another hub committed one of these command ids (or receipt numbers) first, nothing of the
 * batch is kept, and the batch is applied again — the loser then answers "duplicate".
 */
#ifndef DUKA_HUB_PUSH_H
#define DUKA_HUB_PUSH_H

#include <jansson.h>

#include "hub/hub_store.h"

/* Validates and applies body {"commands":[…]} for dev. On DUKA_OK *reply is the
 * {"results":[…]} object (new reference). DUKA_INPUT: the body itself is malformed or nested
 * deeper than DUKA_JSON_DEPTH_MAX (nothing applied; err names the problem and where);
 * DUKA_LIMIT: more than DUKA_SYNC_BATCH_MAX commands (nothing applied); DUKA_STORE: storage
 * failed (nothing applied). A duplicate that arrives while its original is being applied
 * cannot overlap it: the caller serialises calls on one store (hub_server.c holds the store
 * mutex), so it finds the original committed and answers "duplicate". */
duka_rc duka_hub_push_apply(duka_hub_store *store, const duka_hub_device *dev,
                            const json_t *body, int64_t now_ms, json_t **reply, duka_err *err);

/* The same in two steps, so that the work that needs no store runs without holding one
 * (hub_server.c: a SQLite hub has a single store, and while one push holds it the next
 * can be checked and hashed). prepare checks the body's shape, depth and size (DUKA_INPUT,
 * DUKA_LIMIT as above) and computes each command's payload hash; the batch refers to body,
 * which must outlive it. apply_prepared is duka_hub_push_apply's store part. */
typedef struct duka_hub_push_batch {
    const json_t *commands; /* the body's array */
    size_t count;
    char (*hashes)[65];     /* per command: its payload's hash (payload_hash.h), in hex */
} duka_hub_push_batch;

duka_rc duka_hub_push_prepare(const json_t *body, duka_hub_push_batch *out, duka_err *err);
duka_rc duka_hub_push_apply_prepared(duka_hub_store *store, const duka_hub_device *dev,
                                     const duka_hub_push_batch *b, int64_t now_ms,
                                     json_t **reply, duka_err *err);
void duka_hub_push_batch_free(duka_hub_push_batch *b);

#endif

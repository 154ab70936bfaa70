/*
 * mpesa_verify.h — the hub's verdicts on this till's typed M-Pesa codes, as pulls bring them
 * (docs/PROTOCOL.md, the pull's "mpesa" member), and what the till shows of them.
 *
 * A code typed at checkout is stored "pending_verification"; the hub verifies it against what
 * Safaricom reported (payments/mpesa/mpesa_sender.h) and answers, by pull, verified or
 * flagged with the reason. Applying a page sets each named payment's status and note, the
 * cursor and the hub's M-Pesa state in one transaction. Nothing else changes a payment's
 * status, and never back: a verdict is for payments still pending_verification only.
 */
#ifndef DUKA_TILL_MPESA_VERIFY_H
#define DUKA_TILL_MPESA_VERIFY_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* A page holds at most this many sales' verdicts (the hub's DUKA_PULL_INVOICES_MAX). */
#define DUKA_MPESA_PULL_LIST_MAX 500

typedef struct duka_mpesa_pull_result {
    int updated;     /* payments whose status the page set */
    int ignored;     /* verdicts for sales or codes this till does not hold pending */
    int64_t cursor;  /* the mpesa cursor after the page */
    bool more;       /* mpesa.more: ask again */
} duka_mpesa_pull_result;

/* The cursor to send (`mpesa_cursor=K`): 0 before the first page. */
duka_rc duka_mpesa_cursor(sqlite3 *db, int64_t *cursor, duka_err *err);

/* Applies a pull reply's `mpesa` member ({"cursor","more","list":[{"seq","receipt_no",
 * "payments":[{"code","status","reason",…}]}]}) and services.mpesa ({"state","pending",…}) in
 * ONE transaction. Both may be NULL (absent: nothing of it changes). The whole member is
 * checked before anything is written: a malformed one is DUKA_PROTOCOL naming the field and
 * nothing changes. out may be NULL. */
duka_rc duka_mpesa_apply_pull(sqlite3 *db, const json_t *mpesa, const json_t *services,
                              int64_t now_ms, duka_mpesa_pull_result *out, duka_err *err);

/* This till's M-Pesa payments still pending verification, and those flagged. */
typedef struct duka_mpesa_counts {
    int64_t pending_verification, flagged;
    char hub_state[12]; /* services.mpesa.state as last pulled; "" when never */
} duka_mpesa_counts;
duka_rc duka_mpesa_counts_load(sqlite3 *db, duka_mpesa_counts *out, duka_err *err);

#endif

/*
 * storage_util.h — what the power-loss and storage-fault programs share: failing loudly with
 * the crash point or fault in the message, a scratch directory, the till and hub workloads
 * (a till selling through duka_checkout_commit, a hub applying batches through
 * duka_hub_push_apply), and the checks made after every crash or fault.
 *
 * Workloads start from template databases made once per program (created, catalog loaded,
 * checkpointed, closed) and copied for each run, so a run pays for no migration.
 */
#ifndef DUKA_STORAGE_UTIL_H
#define DUKA_STORAGE_UTIL_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/limits.h"
#include "hub/hub_store.h"

/* ---- failing ---- */

/* What is being run, printed with every failure ("sale path, crash point 57, seed …"). */
extern char st_context[256];

/* Prints "FAILED (context): message" and where the databases are kept (the scratch directory
 * is left for a look), and exits 1. */
void st_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define ST_FAIL(...) st_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define ST_CHECK(cond, ...)                                                                  \
    do {                                                                                     \
        if (!(cond))                                                                         \
            st_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)

/* An integer from the environment, or def when unset; fails on garbage or out of [lo, hi]. */
int64_t st_env_int(const char *name, int64_t def, int64_t lo, int64_t hi);

/* ---- files ---- */

/* A fresh directory under $DUKA_STORAGE_DIR, else /dev/shm, else $TMPDIR or /tmp;
 * st_dir_remove deletes it and its files. A failure leaves the last one made in place and
 * names it. */
void st_dir_make(char *out, size_t outlen, const char *prefix);
void st_dir_remove(const char *dir);
/* Removes a database and its -wal, -shm and -journal. */
void st_db_remove(const char *path);
/* Copies a database file (only the main file: templates are checkpointed and closed). */
void st_db_copy(const char *from, const char *to);

/* ---- SQL ---- */

/* The first column of the first row as an integer; *ok false (and 0) on any SQL error. */
int64_t st_sql_int(sqlite3 *db, const char *sql, const char *text_arg, bool *ok);
/* PRAGMA integrity_check: true when "ok"; otherwise its first line in msg. */
bool st_integrity_ok(sqlite3 *db, char *msg, size_t msglen);

/* ---- the till ---- */

#define ST_TERMINAL "T01"
#define ST_DAY_PREFIX "T01-20261121-" /* the fixed clock's day */
#define ST_NOW_MS 1795251600000LL     /* 2026-11-21 12:00:00 Africa/Nairobi */

/* The fixed clock every sale uses. */
const duka_clock *st_clock(void);

/* Creates the till template at path: identity T01, a catalog of four products. */
void st_till_template(const char *path);

/* One sale the till acknowledged: duka_checkout_commit returned DUKA_OK. */
typedef struct st_ack {
    char receipt_no[DUKA_RECEIPT_NO_MAX + 1];
    char command_id[DUKA_UUID_STR_LEN + 1];
    int64_t total_cents;
    int line_count;
} st_ack;

/* Makes sale number i (its items vary with i). On DUKA_OK fills *ack. */
duka_rc st_sell(sqlite3 *db, int i, st_ack *ack, duka_err *err);

/* Opens a till database for a run; normal_sync sets PRAGMA synchronous=NORMAL afterwards
 * (the negative control). */
duka_rc st_till_open(const char *path, bool normal_sync, sqlite3 **out, duka_err *err);

typedef struct st_till_report {
    int64_t sales, last_seq, max_acked_seq;
    int64_t lost;            /* acknowledged sales not in the database */
    int64_t mismatched;      /* acknowledged sales there but different (total, lines, command) */
    int64_t unacked;         /* sales there that were never acknowledged (commit cut short) */
    int64_t receipt_gaps, receipt_dupes, counter_behind, counter_ahead;
    int64_t orphan_sales;    /* a sale without its outbox command */
    int64_t orphan_commands; /* an outbox command without its sale */
    int64_t half_sales;      /* a sale whose lines or payment do not add up */
    int64_t reused;          /* the next sale took a number already shown to a customer */
    bool integrity_ok;
    char first_problem[512];
} st_till_report;

/* Checks the till database at path against the acknowledgements (it must be closed; it is
 * reopened through duka_till_db_open): integrity, every acknowledged sale whole with its
 * payment and outbox command, receipt numbers 1..N without gap or repeat and the counter at
 * N, every sale whole with its command and every command with its sale. Returns false only
 * when the database cannot be opened at all (message in rep->first_problem). */
bool st_till_check(const char *path, const st_ack *acks, int ack_count, st_till_report *rep);

/* Then makes one more sale and checks its number follows the counter and is above every
 * acknowledged one (a number shown to a customer is never reused); adds to rep. On success
 * *ack (may be NULL) is that sale's acknowledgement. */
void st_till_next_sale(const char *path, st_till_report *rep, st_ack *ack);

/* True when the report shows nothing wrong (unacked sales are allowed). */
bool st_till_report_clean(const st_till_report *rep);

/* Runs the shared checker (tests/checker) on the till alone when it is built in; returns
 * true when it passes or is not built in, with its one-line verdict printed on failure
 * unless quiet. *lost_out: the sales it found lost (-1 when not built in). */
bool st_checker_till(const char *path, const st_ack *acks, int ack_count, bool quiet,
                     int64_t *lost_out);

/* ---- the hub ---- */

typedef struct st_hub_fixture {
    char template_path[512];
    duka_hub_device device;
    int batches, per_batch, lines;
    json_t **bodies;                  /* {"commands":[…]} per batch */
    char (*command_ids)[DUKA_UUID_STR_LEN + 1]; /* batches × per_batch */
    char (*receipts)[DUKA_RECEIPT_NO_MAX + 1];
} st_hub_fixture;

/* Creates the hub template (a business, device T01, a catalog by CSV import) in dir and
 * builds the batches (same command ids for every run). */
void st_hub_fixture_make(st_hub_fixture *fx, const char *dir, int batches, int per_batch);
void st_hub_fixture_free(st_hub_fixture *fx);

/* Pushes batch b; returns duka_hub_push_apply's rc. On DUKA_OK checks every result is one of
 * the allowed statuses ("applied" when only_applied, else "applied" or "duplicate") and
 * adds the count of each to *applied / *duplicate (may be NULL); any other result is
 * DUKA_PROTOCOL with err saying which. */
duka_rc st_hub_push(duka_hub_store *store, const st_hub_fixture *fx, int b, bool only_applied,
                    int *applied, int *duplicate, duka_err *err);

typedef enum st_batch_state {
    ST_BATCH_ABSENT,
    ST_BATCH_PRESENT,
    ST_BATCH_HALF,
    ST_BATCH_UNREADABLE, /* the queries failed (why says how) */
} st_batch_state;

/* What of batch b the hub database holds, counting per command: processed_commands, sales,
 * lines, payments and stock-ledger rows. db is a plain connection to the hub file. */
st_batch_state st_hub_batch_state(sqlite3 *db, const st_hub_fixture *fx, int b, char *why,
                                  size_t whylen);

/* After every batch was (re)pushed: each sale exactly once with its lines, payment, ledger
 * rows and processed command; the stock ledger equals minus the lines; no conflict;
 * integrity ok; and the shared checker agrees. False with the first problem in why. */
bool st_hub_check_final(const char *path, const st_hub_fixture *fx, char *why, size_t whylen);

#endif

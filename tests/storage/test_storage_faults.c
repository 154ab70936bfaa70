/*
 * test_storage_faults.c — failing storage under the sale path and the hub's push path, through
 * the crash VFS's fault injection (crashvfs.h).
 *
 * For each kind of fault — a write (SQLITE_IOERR_WRITE), a full disk (SQLITE_FULL on a
 * write), an fsync (SQLITE_IOERR_FSYNC), a read (SQLITE_IOERR_READ), a truncate — once
 * transient (only the Nth operation of that kind fails) and once persistent (every one from
 * the Nth on fails, until the disk is "repaired"), and every operation failing from the Nth
 * on, for N = 1, 2, 3 … until a run finishes without reaching N:
 *   - every failure comes back as DUKA_STORE with a message naming what failed;
 *   - after a transient failure the next sale or push succeeds on the same connection (or,
 *     counted separately, after reopening);
 *   - after the run (the disk repaired, the database reopened): integrity_check ok, every
 *     acknowledged sale whole with its payment and outbox command, no sale without its command
 *     or command without its sale, receipt numbers without gap or repeat, the next sale
 *     numbered after every acknowledged one; at the hub no push half applied, and re-pushing
 *     everything leaves each sale exactly once.
 *
 * Environment: DUKA_FAULT_SALES (6), DUKA_FAULT_BATCHES (3), DUKA_FAULT_BATCH_SIZE (3),
 * DUKA_FAULT_STRIDE (1: try every N; k: every kth N past the first 64, for quick runs),
 * DUKA_FAULT_ONLY ("sale:read:persistent:17" replays one run), DUKA_FAULT_STRICT=1 (a commit
 * reported failed but found committed after the repair fails the run; off by default: see
 * README.md, "What it found"), DUKA_STORAGE_VERBOSE (each sale's outcome).
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/random.h"
#include "crashvfs.h"
#include "hub/hub_store.h"
#include "storage_util.h"
#include "store/db.h"
#include "till/till_db.h"

#define CHECKPOINT_EVERY 2 /* sales between checkpoints */
#define REOPEN_EVERY 3     /* sales per connection */

typedef struct fault_kind {
    crashvfs_op op;
    int code; /* 0: the operation's own I/O error */
    const char *name;
    bool transient, persistent; /* the modes that are run */
} fault_kind;

/* "any" only persistent: failing the Nth operation of any kind once is exactly failing the
 * Mth of its own kind once, which the kinds above it already do; failing everything from the
 * Nth on is not. */
static const fault_kind kinds[] = {
    {CRASHVFS_OP_WRITE, 0, "write", true, true},
    {CRASHVFS_OP_WRITE, SQLITE_FULL, "full", true, true},
    {CRASHVFS_OP_SYNC, 0, "sync", true, true},
    {CRASHVFS_OP_READ, 0, "read", true, true},
    {CRASHVFS_OP_TRUNCATE, 0, "truncate", true, true},
    {CRASHVFS_OP_ANY, 0, "any", false, true},
};
#define KIND_COUNT ((int)(sizeof(kinds) / sizeof(kinds[0])))

typedef struct figures {
    int64_t iterations;   /* runs (one per N) */
    int64_t ops;          /* operations of the kind in a run with no fault */
    int64_t errors;       /* failures reported to the caller, each DUKA_STORE with a message */
    int64_t retried_ok;   /* transient: the next try on the same connection succeeded */
    int64_t reopened_ok;  /* transient: it needed a reopen first */
    int64_t open_retried; /* transient: opening failed, the second try worked */
    int64_t acked;        /* sales / pushes acknowledged */
    int64_t ambiguous;    /* failed commits found durable afterwards */
} figures;

static struct {
    char dir[512], till_template[600], till[600], hub[600];
    int sales, stride;
    bool verbose; /* DUKA_STORAGE_VERBOSE: each sale's outcome */
    bool strict;  /* DUKA_FAULT_STRICT: a failed commit found committed fails the run */
    st_hub_fixture hub_fx;
    st_ack *acks;
    /* DUKA_FAULT_ONLY */
    char only_path[8], only_kind[16], only_mode[16];
    int64_t only_n;
} T;

/* The distinct messages duka gave (the scratch directory's path cut out), printed at the
 * end so a reader can judge whether each says what failed. */
#define MESSAGES_MAX 64
static char messages[MESSAGES_MAX][DUKA_ERR_MSG_MAX];
static int64_t message_counts[MESSAGES_MAX];
static int message_count;

static void remember_message(const char *msg)
{
    char clean[DUKA_ERR_MSG_MAX];
    const char *p = strstr(msg, T.dir);
    if (p != NULL)
        snprintf(clean, sizeof(clean), "%.*s…%s", (int)(p - msg), msg, p + strlen(T.dir));
    else
        snprintf(clean, sizeof(clean), "%s", msg);
    for (int i = 0; i < message_count; i++)
        if (strcmp(messages[i], clean) == 0) {
            message_counts[i]++;
            return;
        }
    if (message_count < MESSAGES_MAX) {
        snprintf(messages[message_count], sizeof(messages[0]), "%s", clean);
        message_counts[message_count++] = 1;
    }
}

/* A failure reported by duka must be a storage error that says what failed. */
static void expect_clean_error(duka_rc rc, const duka_err *err, const char *what, figures *fig)
{
    ST_CHECK(rc == DUKA_STORE && err->rc == DUKA_STORE && err->msg[0] != '\0',
             "%s failed with rc %d (%s), not DUKA_STORE with a message: '%s'", what, (int)rc,
             duka_rc_name(rc), err->msg);
    remember_message(err->msg);
    fig->errors++;
}

/* ---- the sale path ---- */

/* Opens the till; a failure must be clean. In transient mode a second try must work. */
static sqlite3 *open_till(bool persistent, figures *fig)
{
    sqlite3 *db = NULL;
    duka_err err = {0};
    duka_rc rc = duka_till_db_open(T.till, false, &db, &err);
    if (rc == DUKA_OK)
        return db;
    if (T.verbose)
        fprintf(stderr, "  open: %s\n", err.msg);
    expect_clean_error(rc, &err, "opening the till", fig);
    if (persistent)
        return NULL;
    err = (duka_err){0};
    rc = duka_till_db_open(T.till, false, &db, &err);
    ST_CHECK(rc == DUKA_OK, "opening the till again after a transient fault: %s", err.msg);
    fig->open_retried++;
    return db;
}

/* One run with the fault at n; *fired: the fault was reached. */
static void sale_run(const fault_kind *k, bool persistent, int64_t n, figures *fig, bool *fired)
{
    int acked = 0;
    st_db_copy(T.till_template, T.till);
    crashvfs_fault_set(k->op, n, persistent, k->code);
    sqlite3 *db = open_till(persistent, fig);
    int64_t maybe_saved = 0; /* failures that said the sale may have been saved */
    for (int i = 0; i < T.sales; i++) {
        if (i > 0 && i % REOPEN_EVERY == 0) {
            duka_db_close(db);
            db = open_till(persistent, fig);
        }
        if (db == NULL && (db = open_till(persistent, fig)) == NULL)
            continue; /* persistent: the till cannot even open; the cashier sees the error */
        duka_err err = {0};
        duka_rc rc = st_sell(db, i, &T.acks[acked], &err);
        if (T.verbose)
            fprintf(stderr, "  sale %d: %s\n", i,
                    rc == DUKA_OK ? T.acks[acked].receipt_no : err.msg);
        if (rc == DUKA_OK) {
            acked++;
        } else {
            char what[64];
            snprintf(what, sizeof(what), "sale %d", i);
            expect_clean_error(rc, &err, what, fig);
            if (strstr(err.msg, "may have been saved") != NULL)
                maybe_saved++;
            if (!persistent) {
                /* The fault was transient: the cashier rings the sale again. */
                err = (duka_err){0};
                if (st_sell(db, i, &T.acks[acked], &err) == DUKA_OK) {
                    fig->retried_ok++;
                } else {
                    duka_db_close(db);
                    err = (duka_err){0};
                    ST_CHECK(duka_till_db_open(T.till, false, &db, &err) == DUKA_OK,
                             "reopening after a transient fault: %s", err.msg);
                    ST_CHECK(st_sell(db, i, &T.acks[acked], &err) == DUKA_OK,
                             "sale %d after a transient fault and a reopen: %s", i, err.msg);
                    fig->reopened_ok++;
                }
                acked++;
            }
        }
        if (i % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1)
            duka_db_checkpoint(db); /* its failure is silent by design; checked below */
    }
    duka_db_close(db); /* still on the failing disk */
    *fired = crashvfs_fault_hits() > 0;
    if (!*fired)
        fig->ops = crashvfs_fault_seen();
    crashvfs_fault_clear(); /* the disk is repaired (or space freed) */
    fig->acked += acked;

    st_till_report rep;
    ST_CHECK(st_till_check(T.till, T.acks, acked, &rep), "%s", rep.first_problem);
    int64_t checker_lost = -1;
    bool checker_ok = st_checker_till(T.till, T.acks, acked, false, &checker_lost);
    st_till_next_sale(T.till, &rep, NULL);
    ST_CHECK(st_till_report_clean(&rep), "%s", rep.first_problem);
    ST_CHECK(checker_ok, "the shared checker failed the till");
    fig->ambiguous += rep.unacked;
    /* A sale reported failed but found saved must have been reported as "may have been
     * saved" (a failed COMMIT), never as a plain failure: the cashier must not ring it again
     * believing nothing happened. */
    ST_CHECK(rep.unacked <= maybe_saved,
             "%lld sales reported failed are committed after all, but only %lld failures said "
             "the sale may have been saved",
             (long long)rep.unacked, (long long)maybe_saved);
    ST_CHECK(!T.strict || rep.unacked == 0,
             "%lld sales reported failed (COMMIT: disk I/O error) are committed after all",
             (long long)rep.unacked);
    if (T.verbose)
        fprintf(stderr, "  after the repair: %lld sales, %d acknowledged\n", (long long)rep.sales,
                acked);
}

/* ---- the hub path ---- */

static duka_hub_store *open_hub(bool persistent, figures *fig)
{
    duka_hub_store *store = NULL;
    duka_err err = {0};
    duka_rc rc = duka_hub_store_open(T.hub, false, &store, &err);
    if (rc == DUKA_OK)
        return store;
    expect_clean_error(rc, &err, "opening the hub", fig);
    if (persistent)
        return NULL;
    err = (duka_err){0};
    rc = duka_hub_store_open(T.hub, false, &store, &err);
    ST_CHECK(rc == DUKA_OK, "opening the hub again after a transient fault: %s", err.msg);
    fig->open_retried++;
    return store;
}

static void hub_run(const fault_kind *k, bool persistent, int64_t n, figures *fig, bool *fired)
{
    const st_hub_fixture *fx = &T.hub_fx;
    bool acked[64] = {false};
    st_db_copy(fx->template_path, T.hub);
    crashvfs_fault_set(k->op, n, persistent, k->code);
    duka_hub_store *store = open_hub(persistent, fig);
    for (int b = 0; b < fx->batches; b++) {
        if (store == NULL && (store = open_hub(persistent, fig)) == NULL)
            continue;
        duka_err err = {0};
        duka_rc rc = st_hub_push(store, fx, b, false, NULL, NULL, &err);
        if (rc != DUKA_OK) {
            char what[64];
            snprintf(what, sizeof(what), "push %d", b);
            expect_clean_error(rc, &err, what, fig);
            if (!persistent) {
                /* The till got no reply: it resends the same batch. */
                err = (duka_err){0};
                if ((rc = st_hub_push(store, fx, b, false, NULL, NULL, &err)) == DUKA_OK) {
                    fig->retried_ok++;
                } else {
                    duka_hub_store_close(store);
                    err = (duka_err){0};
                    ST_CHECK(duka_hub_store_open(T.hub, false, &store, &err) == DUKA_OK,
                             "reopening the hub after a transient fault: %s", err.msg);
                    rc = st_hub_push(store, fx, b, false, NULL, NULL, &err);
                    ST_CHECK(rc == DUKA_OK, "push %d after a transient fault and a reopen: %s",
                             b, err.msg);
                    fig->reopened_ok++;
                }
            }
        }
        acked[b] = rc == DUKA_OK;
        fig->acked += acked[b];
        duka_hub_store_checkpoint(store);
    }
    duka_hub_store_close(store);
    *fired = crashvfs_fault_hits() > 0;
    if (!*fired)
        fig->ops = crashvfs_fault_seen();
    crashvfs_fault_clear();

    sqlite3 *db = NULL;
    ST_CHECK(sqlite3_open_v2(T.hub, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
             "opening the hub file: %s", sqlite3_errmsg(db));
    char msg[256];
    ST_CHECK(st_integrity_ok(db, msg, sizeof(msg)), "hub integrity_check: %s", msg);
    st_batch_state state[64];
    for (int b = 0; b < fx->batches; b++) {
        char why[256];
        state[b] = st_hub_batch_state(db, fx, b, why, sizeof(why));
        ST_CHECK(state[b] == ST_BATCH_PRESENT || state[b] == ST_BATCH_ABSENT,
                 "push %d is half applied or unreadable: %s", b, why);
        ST_CHECK(!acked[b] || state[b] == ST_BATCH_PRESENT,
                 "push %d was acknowledged but is not at the hub", b);
        if (!acked[b] && state[b] == ST_BATCH_PRESENT) {
            fig->ambiguous++;
            ST_CHECK(!T.strict, "push %d was reported failed but is applied after all", b);
        }
    }
    sqlite3_close(db);
    duka_err err = {0};
    ST_CHECK(duka_hub_store_open(T.hub, false, &store, &err) == DUKA_OK,
             "the hub does not open after the disk is repaired: %s", err.msg);
    for (int b = 0; b < fx->batches; b++) {
        int applied = 0, duplicate = 0;
        err = (duka_err){0};
        ST_CHECK(st_hub_push(store, fx, b, false, &applied, &duplicate, &err) == DUKA_OK,
                 "re-pushing batch %d: %s", b, err.msg);
        ST_CHECK(state[b] == ST_BATCH_PRESENT ? duplicate == fx->per_batch
                                              : applied == fx->per_batch,
                 "re-push of batch %d: %d applied, %d duplicates", b, applied, duplicate);
    }
    duka_hub_store_close(store);
    char why[512];
    ST_CHECK(st_hub_check_final(T.hub, fx, why, sizeof(why)), "%s", why);
}

/* ---- the loops ---- */

typedef void (*run_fn)(const fault_kind *, bool, int64_t, figures *, bool *);

static bool selected(const char *path, const fault_kind *k, bool persistent)
{
    if (T.only_path[0] == '\0')
        return true;
    return strcmp(T.only_path, path) == 0 && strcmp(T.only_kind, k->name) == 0 &&
           strcmp(T.only_mode, persistent ? "persistent" : "transient") == 0;
}

static void loop(const char *path, run_fn run, const fault_kind *k, bool persistent,
                 figures *fig)
{
    const char *mode = persistent ? "persistent" : "transient";
    int64_t n = T.only_n ? T.only_n : 1;
    for (;;) {
        snprintf(st_context, sizeof(st_context),
                 "%s path, %s fault (%s) at operation %" PRId64
                 " (rerun: DUKA_FAULT_ONLY=%s:%s:%s:%" PRId64 ")",
                 path, k->name, mode, n, path, k->name, mode, n);
        bool fired = false;
        /* Command ids drawn from a seed of this run alone: a replay is the same run. */
        duka_random_seed_for_simulation((uint64_t)n * 0x9e3779b97f4a7c15ULL ^
                                        (uint64_t)(k - kinds) << 8 ^ (uint64_t)persistent);
        run(k, persistent, n, fig, &fired);
        fig->iterations++;
        if (!fired || T.only_n)
            break;
        n += n < 64 ? 1 : T.stride;
    }
}

static void parse_only(void)
{
    const char *v = getenv("DUKA_FAULT_ONLY");
    if (v == NULL || v[0] == '\0')
        return;
    long long n = 0;
    ST_CHECK(sscanf(v, "%7[a-z]:%15[a-z]:%15[a-z]:%lld", T.only_path, T.only_kind, T.only_mode,
                    &n) == 4 &&
                 n > 0,
             "DUKA_FAULT_ONLY=%s: expected PATH:KIND:MODE:N like sale:read:persistent:17", v);
    T.only_n = n;
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
    ST_CHECK(crashvfs_install() == SQLITE_OK, "installing the crash VFS");
    duka_random_seed_for_simulation(1);
    T.sales = (int)st_env_int("DUKA_FAULT_SALES", 6, 1, 100000);
    int batches = (int)st_env_int("DUKA_FAULT_BATCHES", 3, 1, 64);
    int batch_size = (int)st_env_int("DUKA_FAULT_BATCH_SIZE", 3, 1, 500);
    T.stride = (int)st_env_int("DUKA_FAULT_STRIDE", 1, 1, 1000);
    parse_only();
    T.verbose = getenv("DUKA_STORAGE_VERBOSE") != NULL;
    T.strict = st_env_int("DUKA_FAULT_STRICT", 0, 0, 1) == 1;
    T.acks = calloc((size_t)T.sales, sizeof(*T.acks));
    ST_CHECK(T.acks != NULL, "out of memory");

    int64_t started = duka_monotonic_ms();
    st_dir_make(T.dir, sizeof(T.dir), "duka-faults");
    snprintf(T.till_template, sizeof(T.till_template), "%s/till-template.db", T.dir);
    snprintf(T.till, sizeof(T.till), "%s/till.db", T.dir);
    snprintf(T.hub, sizeof(T.hub), "%s/hub.db", T.dir);
    st_till_template(T.till_template);
    st_hub_fixture_make(&T.hub_fx, T.dir, batches, batch_size);
    crashvfs_forget();

    printf("storage faults: %d sales per run (checkpoint every %d, reopen every %d), %d pushes "
           "of %d sales, N stride %d past 64\n",
           T.sales, CHECKPOINT_EVERY, REOPEN_EVERY, batches, batch_size, T.stride);
    printf("  %-5s %-8s %-10s %5s %5s %6s %7s %8s %6s %6s %9s\n", "path", "fault", "mode", "ops",
           "runs", "errors", "retried", "reopened", "reopen", "acked", "ambiguous");
    int64_t total_runs = 0, total_errors = 0;
    static const struct {
        const char *name;
        run_fn run;
    } paths[] = {{"sale", sale_run}, {"hub", hub_run}};
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < KIND_COUNT; i++) {
            for (int m = 0; m < 2; m++) {
                if (!(m == 1 ? kinds[i].persistent : kinds[i].transient) ||
                    !selected(paths[p].name, &kinds[i], m == 1))
                    continue;
                figures fig = {0};
                loop(paths[p].name, paths[p].run, &kinds[i], m == 1, &fig);
                printf("  %-5s %-8s %-10s %5" PRId64 " %5" PRId64 " %6" PRId64 " %7" PRId64
                       " %8" PRId64 " %6" PRId64 " %6" PRId64 " %9" PRId64 "\n",
                       paths[p].name, kinds[i].name, m == 1 ? "persistent" : "transient",
                       fig.ops, fig.iterations, fig.errors, fig.retried_ok, fig.reopened_ok,
                       fig.open_retried, fig.acked, fig.ambiguous);
                fflush(stdout);
                total_runs += fig.iterations;
                total_errors += fig.errors;
            }
        }
    }
    printf("storage faults: ok — %" PRId64 " runs, %" PRId64 " failures reported as clean "
           "storage errors, no half-written sale, no lost command, integrity ok (%.1f s)\n",
           total_runs, total_errors, (double)(duka_monotonic_ms() - started) / 1000.0);

    printf("  the messages duka gave (count, text):\n");
    for (int i = 0; i < message_count; i++)
        printf("  %6" PRId64 "  %s\n", message_counts[i], messages[i]);

    st_hub_fixture_free(&T.hub_fx);
    st_dir_remove(T.dir);
    crashvfs_uninstall();
    free(T.acks);
    return 0;
}

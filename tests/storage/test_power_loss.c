/*
 * test_power_loss.c — power cuts at every I/O operation of the sale path and the hub's push
 * path, through the crash VFS (crashvfs.h), and negative controls proving the harness sees
 * loss.
 *
 * For N = 1, 2, 3 … until a run finishes without reaching it:
 *   - copy a template database, arm a crash at the Nth write/truncate/sync, run the workload;
 *   - at the crash the VFS is powered off (nothing more reaches the disk); close everything,
 *     simulate the power loss (unsynced writes kept, dropped or torn by a seeded choice, -shm
 *     gone), reopen through duka and check.
 * Sale path: a till makes SALES sales (checkpointing every 4, closing and reopening every 10
 * like `duka sell`); every sale duka_checkout_commit acknowledged must be back whole with its
 * payment and outbox command, receipt numbers 1..N with no gap or repeat, integrity ok, and
 * the next sale takes the next number (none shown to a customer is ever reused).
 * Hub path: BATCHES pushes of BATCH_SIZE sales through duka_hub_push_apply (checkpoint after
 * each, as the hub server does); every acknowledged push is whole, the push cut short is whole
 * or absent (never half), re-pushing everything gives applied/duplicate and leaves each sale
 * exactly once.
 * Every third crash point of the sale path gets a second life: the recovered till sells on
 * and loses power again early in its run, and is checked again.
 * Negative controls: the sale path with PRAGMA synchronous=NORMAL (commits not fsynced), and
 * the hub path on a disk whose fsync does nothing, must be caught losing acknowledged sales
 * and pushes, or the harness is blind and the test fails.
 *
 * Environment: DUKA_STORAGE_SALES (16), DUKA_STORAGE_BATCHES (4), DUKA_STORAGE_BATCH_SIZE (5),
 * DUKA_STORAGE_CUTS (power cuts per crash point, 1), DUKA_STORAGE_SEED (1),
 * DUKA_STORAGE_POINT (run only that crash point: to replay a failure), DUKA_STORAGE_VERBOSE
 * (what each caught point of the hub control found).
 */
#include <errno.h>
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

#define CHECKPOINT_EVERY 4 /* sales between checkpoints (the sync worker's, between syncs) */
#define REOPEN_EVERY 10    /* sales per connection (each `duka sell` is one) */
#define AFTERLIFE_EVERY 3  /* every third crash point gets a second life … */
#define AFTERLIFE_SALES 6  /* … of this many sales after the first power cut, … */
#define AFTERLIFE_SPAN 100 /* … cut again at 1 + a hash of N modulo this: within its first
                            * hundred operations (recovery leftovers, the WAL restarting, the
                            * first checkpoint and reopen) */

typedef struct path_figures {
    int64_t points, cuts, acked, lost, unacked;
    int64_t second_cuts;                 /* a second power cut after recovering from the first */
    int64_t caught_points, caught_sales; /* the controls: crash points that lost sales */
    int64_t checker_lost;                /* … and the sales the shared checker found lost */
    int64_t inflight_whole, inflight_absent;
} path_figures;

static struct {
    char dir[512], till_template[600], till[600], hub[600];
    int sales, batches, batch_size, cuts_per_point;
    uint64_t seed;
    int64_t only_point;
    st_hub_fixture hub_fx;
    crashvfs_cut_stats cut;
    st_ack *acks;
} T;

static uint64_t seed_for(int path, int64_t n, int cut)
{
    return T.seed * 0x100000001b3ULL ^ ((uint64_t)path << 56) ^ ((uint64_t)n << 12) ^
           (uint64_t)cut;
}

static void set_context(const char *what, int64_t n, uint64_t seed)
{
    snprintf(st_context, sizeof(st_context),
             "%s, crash point %" PRId64 ", seed %#" PRIx64 " (rerun: DUKA_STORAGE_SEED=%" PRIu64
             " DUKA_STORAGE_POINT=%" PRId64 ")",
             what, n, seed, T.seed, n);
}

/* ---- the sale path ---- */

typedef struct sale_run {
    int acked; /* new acknowledgements, stored from T.acks[ack_base] on */
    bool crashed;
    const char *where;
} sale_run;

/* Makes sales first .. first+count-1 until done or until the VFS powers off. */
static void run_sales(bool normal_sync, int first, int count, int ack_base, sale_run *r)
{
    sqlite3 *db = NULL;
    duka_err err = {0};
    memset(r, 0, sizeof(*r));
    r->where = "open";
    if (st_till_open(T.till, normal_sync, &db, &err) != DUKA_OK) {
        ST_CHECK(crashvfs_powered_off(), "opening the till with no fault: %s", err.msg);
        goto crashed;
    }
    for (int k = 0; k < count; k++) {
        if (k > 0 && k % REOPEN_EVERY == 0) {
            duka_db_close(db);
            db = NULL;
            r->where = "close";
            if (crashvfs_powered_off())
                goto crashed;
            duka_err_clear(&err);
            r->where = "reopen";
            if (st_till_open(T.till, normal_sync, &db, &err) != DUKA_OK) {
                ST_CHECK(crashvfs_powered_off(), "reopening the till with no fault: %s",
                         err.msg);
                goto crashed;
            }
        }
        duka_err_clear(&err);
        duka_rc rc = st_sell(db, first + k, &T.acks[ack_base + r->acked], &err);
        if (rc == DUKA_OK)
            r->acked++; /* the receipt number is shown to the customer */
        r->where = rc == DUKA_OK ? "after a sale" : "sale";
        if (crashvfs_powered_off())
            goto crashed;
        ST_CHECK(rc == DUKA_OK, "sale %d failed with no fault: %s", first + k, err.msg);
        if (k % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1) {
            duka_db_checkpoint(db);
            r->where = "checkpoint";
            if (crashvfs_powered_off())
                goto crashed;
        }
    }
    duka_db_close(db);
    r->where = "final close";
    r->crashed = crashvfs_powered_off();
    return;
crashed:
    duka_db_close(db); /* its errors mean nothing: the machine is off */
    r->crashed = true;
}

/* After a power cut: the checks, the shared checker, then the next sale (appended to the
 * acknowledgements when it succeeds). Returns true when all is well; in the control, counts. */
static bool after_cut(bool control, const sale_run *run, int *acked, path_figures *fig)
{
    st_till_report rep;
    bool opened = st_till_check(T.till, T.acks, *acked, &rep);
    int64_t checker_lost = -1;
    bool checker_ok =
        opened && st_checker_till(T.till, T.acks, *acked, control, &checker_lost);
    if (opened)
        st_till_next_sale(T.till, &rep, &T.acks[*acked]);
    bool clean = opened && st_till_report_clean(&rep) && checker_ok;
    if (control) {
        if (!clean) {
            fig->caught_points++;
            fig->caught_sales += opened ? rep.lost : *acked;
            if (checker_lost >= 0)
                fig->checker_lost += checker_lost;
        }
        return clean;
    }
    ST_CHECK(opened, "crash at %s: %s", run->where, rep.first_problem);
    ST_CHECK(st_till_report_clean(&rep), "crash at %s: %s (lost %" PRId64 ")", run->where,
             rep.first_problem, rep.lost);
    ST_CHECK(checker_ok, "the shared checker failed the till after a crash at %s", run->where);
    fig->unacked += rep.unacked;
    (*acked)++; /* the next sale */
    return true;
}

static void sale_point(bool control, int64_t n, int c, path_figures *fig, bool *finished)
{
    uint64_t seed = seed_for(control ? 2 : 1, n, c);
    const char *what = control ? "negative control, synchronous=NORMAL" : "sale path";
    set_context(what, n, seed);
    duka_random_seed_for_simulation(seed); /* command ids: the same run for the same point */
    st_db_copy(T.till_template, T.till);
    crashvfs_crash_at(n);
    sale_run run;
    run_sales(control, 0, T.sales, 0, &run);
    if (!run.crashed) {
        crashvfs_crash_at(0);
        *finished = true;
        return;
    }
    ST_CHECK(crashvfs_power_cut(seed, &T.cut) == 0, "power cut: %s", strerror(errno));
    fig->cuts++;
    fig->acked += run.acked;
    int acked = run.acked;
    if (!after_cut(control, &run, &acked, fig) || control || n % AFTERLIFE_EVERY != 0)
        return;

    /* A second life: the recovered till sells on and loses power again, somewhere in its
     * first operations (recovery leftovers, the WAL restarting, the first checkpoint). */
    int64_t m = 1 + (int64_t)((uint64_t)n * 2654435761u % AFTERLIFE_SPAN);
    uint64_t seed2 = seed ^ 0x5ec0dULL;
    char what2[96];
    snprintf(what2, sizeof(what2), "sale path, second power cut at %" PRId64 " after", m);
    set_context(what2, n, seed2);
    crashvfs_crash_at(m);
    sale_run run2;
    run_sales(false, 1000, AFTERLIFE_SALES, acked, &run2);
    acked += run2.acked;
    fig->acked += run2.acked;
    if (!run2.crashed) {
        crashvfs_crash_at(0);
        return;
    }
    ST_CHECK(crashvfs_power_cut(seed2, &T.cut) == 0, "power cut: %s", strerror(errno));
    fig->second_cuts++;
    after_cut(false, &run2, &acked, fig);
}

static void sale_path(bool control, path_figures *fig)
{
    for (int64_t n = T.only_point ? T.only_point : 1;; n++) {
        bool finished = false;
        for (int c = 0; c < T.cuts_per_point && !finished; c++)
            sale_point(control, n, c, fig, &finished);
        if (!finished)
            fig->points++;
        if (finished || T.only_point)
            break;
    }
}

/* ---- the hub path ---- */

#define HUB_CHECK(cond, ...)                                                                 \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            snprintf(problem, problem_len, __VA_ARGS__);                                     \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)

/* After the power cut: no push half there, every acknowledged one whole, the one cut short
 * whole or absent; re-pushing all answers duplicate for what is there and applied for the
 * rest; then each sale exactly once. False with the first problem. */
static bool hub_after_cut(const bool acked[], int inflight, path_figures *fig, char *problem,
                          size_t problem_len)
{
    const st_hub_fixture *fx = &T.hub_fx;
    duka_hub_store *store = NULL;
    sqlite3 *db = NULL;
    duka_err err = {0};
    bool ok = false;
    st_batch_state state[64];
    char msg[256], why[256], half_why[256] = "";
    HUB_CHECK(duka_hub_store_open(T.hub, false, &store, &err) == DUKA_OK,
              "the hub does not open after the power cut: %s", err.msg);
    HUB_CHECK(sqlite3_open_v2(T.hub, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
              "opening the hub file: %s", sqlite3_errmsg(db));
    HUB_CHECK(st_integrity_ok(db, msg, sizeof(msg)), "hub integrity_check: %s", msg);
    for (int b = 0; b < fx->batches; b++) {
        state[b] = st_hub_batch_state(db, fx, b, why, sizeof(why));
        if (state[b] != ST_BATCH_PRESENT && state[b] != ST_BATCH_ABSENT && !half_why[0])
            snprintf(half_why, sizeof(half_why), "%s", why);
        if (acked[b]) {
            fig->acked++;
            fig->lost += state[b] != ST_BATCH_PRESENT;
        }
    }
    for (int b = 0; b < fx->batches; b++) {
        HUB_CHECK(state[b] == ST_BATCH_PRESENT || state[b] == ST_BATCH_ABSENT,
                  "push %d is half there after the power cut: %s", b, half_why);
        HUB_CHECK(!acked[b] || state[b] == ST_BATCH_PRESENT,
                  "push %d was acknowledged but is gone after the power cut", b);
        HUB_CHECK(acked[b] || b == inflight || state[b] == ST_BATCH_ABSENT,
                  "push %d was never sent but is there", b);
        if (b == inflight && state[b] == ST_BATCH_PRESENT)
            fig->inflight_whole++;
        else if (b == inflight)
            fig->inflight_absent++;
    }
    sqlite3_close(db);
    db = NULL;
    /* The till resends everything it had no answer for (and here, everything). */
    for (int b = 0; b < fx->batches; b++) {
        int applied = 0, duplicate = 0;
        err = (duka_err){0};
        HUB_CHECK(st_hub_push(store, fx, b, false, &applied, &duplicate, &err) == DUKA_OK,
                  "re-pushing batch %d after the power cut: %s", b, err.msg);
        HUB_CHECK(state[b] == ST_BATCH_PRESENT ? duplicate == fx->per_batch
                                               : applied == fx->per_batch,
                  "re-push of batch %d (%s): %d applied, %d duplicates of %d", b,
                  state[b] == ST_BATCH_PRESENT ? "there" : "absent", applied, duplicate,
                  fx->per_batch);
    }
    duka_hub_store_close(store);
    store = NULL;
    HUB_CHECK(st_hub_check_final(T.hub, fx, why, sizeof(why)), "%s", why);
    ok = true;
out:
    sqlite3_close(db);
    duka_hub_store_close(store);
    return ok;
}

/* One crash point. control: a lying disk (fsync skipped) that must be caught losing. */
static void hub_point(bool control, int64_t n, uint64_t seed, path_figures *fig, bool *finished)
{
    const st_hub_fixture *fx = &T.hub_fx;
    bool acked[64] = {false};
    int inflight = -1; /* the push the crash cut short, if any */
    duka_hub_store *store = NULL;
    duka_err err = {0};
    duka_random_seed_for_simulation(seed);
    st_db_copy(fx->template_path, T.hub);
    crashvfs_set_lying_sync(control);
    crashvfs_crash_at(n);
    if (duka_hub_store_open(T.hub, false, &store, &err) != DUKA_OK) {
        ST_CHECK(crashvfs_powered_off(), "opening the hub with no fault: %s", err.msg);
        goto crashed;
    }
    for (int b = 0; b < fx->batches; b++) {
        duka_err_clear(&err);
        duka_rc rc = st_hub_push(store, fx, b, true, NULL, NULL, &err);
        acked[b] = rc == DUKA_OK; /* the reply would be sent now */
        if (crashvfs_powered_off()) {
            inflight = acked[b] ? -1 : b;
            goto crashed;
        }
        ST_CHECK(rc == DUKA_OK, "push %d failed with no fault: %s", b, err.msg);
        duka_hub_store_checkpoint(store);
        if (crashvfs_powered_off())
            goto crashed;
    }
    duka_hub_store_close(store);
    store = NULL;
    if (!crashvfs_powered_off()) {
        crashvfs_crash_at(0);
        crashvfs_set_lying_sync(false);
        *finished = true;
        return;
    }
crashed:
    duka_hub_store_close(store);
    crashvfs_set_lying_sync(false); /* the disk after the cut is an honest one */
    ST_CHECK(crashvfs_power_cut(seed, &T.cut) == 0, "power cut: %s", strerror(errno));
    fig->cuts++;
    char problem[600];
    int64_t lost_before = fig->lost;
    bool clean = hub_after_cut(acked, inflight, fig, problem, sizeof(problem));
    if (control) {
        if (!clean) {
            fig->caught_points++;
            fig->caught_sales += (fig->lost - lost_before) * fx->per_batch;
            if (getenv("DUKA_STORAGE_VERBOSE"))
                fprintf(stderr, "(%s) caught: %s\n", st_context, problem);
        }
        return;
    }
    ST_CHECK(clean, "%s", problem);
}

static void hub_path(bool control, path_figures *fig)
{
    for (int64_t n = T.only_point ? T.only_point : 1;; n++) {
        bool finished = false;
        for (int c = 0; c < T.cuts_per_point && !finished; c++) {
            uint64_t seed = seed_for(control ? 4 : 3, n, c);
            set_context(control ? "hub negative control, fsync skipped" : "hub apply path", n,
                        seed);
            hub_point(control, n, seed, fig, &finished);
        }
        if (!finished)
            fig->points++;
        if (finished || T.only_point)
            break;
    }
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
    ST_CHECK(crashvfs_install() == SQLITE_OK, "installing the crash VFS");
    T.seed = (uint64_t)st_env_int("DUKA_STORAGE_SEED", 1, 0, INT64_MAX);
    duka_random_seed_for_simulation(T.seed); /* the templates' command ids */
    T.sales = (int)st_env_int("DUKA_STORAGE_SALES", 16, 1, 100000);
    T.batches = (int)st_env_int("DUKA_STORAGE_BATCHES", 4, 1, 64);
    T.batch_size = (int)st_env_int("DUKA_STORAGE_BATCH_SIZE", 5, 1, 500);
    T.cuts_per_point = (int)st_env_int("DUKA_STORAGE_CUTS", 1, 1, 1000);
    T.only_point = st_env_int("DUKA_STORAGE_POINT", 0, 0, INT64_MAX);
    T.acks = calloc((size_t)T.sales + AFTERLIFE_SALES + 2, sizeof(*T.acks));
    ST_CHECK(T.acks != NULL, "out of memory");

    int64_t started = duka_monotonic_ms();
    st_dir_make(T.dir, sizeof(T.dir), "duka-power");
    snprintf(T.till_template, sizeof(T.till_template), "%s/till-template.db", T.dir);
    snprintf(T.till, sizeof(T.till), "%s/till.db", T.dir);
    snprintf(T.hub, sizeof(T.hub), "%s/hub.db", T.dir);
    st_till_template(T.till_template);
    st_hub_fixture_make(&T.hub_fx, T.dir, T.batches, T.batch_size);
    crashvfs_forget(); /* the templates are the durable starting point */

    path_figures sale = {0}, hub = {0}, control = {0}, hub_control = {0};
    clock_t c0 = clock();
    sale_path(false, &sale);
    clock_t c1 = clock();
    hub_path(false, &hub);
    clock_t c2 = clock();
    sale_path(true, &control);
    clock_t c3 = clock();
    hub_path(true, &hub_control);
    clock_t c4 = clock();

    snprintf(st_context, sizeof(st_context), "summary");
    printf("power loss: seed %" PRIu64 ", %d sales per run (+%d after a first cut), %d pushes of "
           "%d sales, %d power cut(s) per crash point\n",
           T.seed, T.sales, AFTERLIFE_SALES, T.batches, T.batch_size, T.cuts_per_point);
    printf("  sale path:        crash points %" PRId64 ", power cuts %" PRId64 " (+%" PRId64
           " second cuts after recovery), sales acknowledged %" PRId64 ", lost %" PRId64
           ", unacknowledged sales found committed %" PRId64 "\n",
           sale.points, sale.cuts, sale.second_cuts, sale.acked, sale.lost, sale.unacked);
    printf("  hub apply path:   crash points %" PRId64 ", power cuts %" PRId64
           ", pushes acknowledged %" PRId64 ", lost %" PRId64 ", pushes cut short found whole %"
           PRId64 " / absent %" PRId64 ", half 0\n",
           hub.points, hub.cuts, hub.acked, hub.lost, hub.inflight_whole, hub.inflight_absent);
    printf("  negative control (till, synchronous=NORMAL): crash points %" PRId64
           ", sales acknowledged %" PRId64 ", crash points caught losing %" PRId64 " (%" PRId64
           " sales lost; the shared checker counted %" PRId64 ")\n",
           control.points, control.acked, control.caught_points, control.caught_sales,
           control.checker_lost);
    printf("  negative control (hub, fsync skipped):       crash points %" PRId64
           ", pushes acknowledged %" PRId64 ", crash points caught %" PRId64 " (%" PRId64
           " acknowledged pushes lost)\n",
           hub_control.points, hub_control.acked, hub_control.caught_points, hub_control.lost);
    printf("  unsynced changes at the cuts: %" PRId64 " files, writes kept %" PRId64
           " / dropped %" PRId64 " / torn %" PRId64 ", truncates kept %" PRId64 " / dropped %"
           PRId64 ", -shm deleted %" PRId64 "\n",
           T.cut.files, T.cut.writes_kept, T.cut.writes_dropped, T.cut.writes_torn,
           T.cut.truncates_kept, T.cut.truncates_dropped, T.cut.shm_deleted);
    printf("  time %.1f s (CPU: sale path %.1f s, hub %.1f s, controls %.1f s and %.1f s)\n",
           (double)(duka_monotonic_ms() - started) / 1000.0,
           (double)(c1 - c0) / CLOCKS_PER_SEC, (double)(c2 - c1) / CLOCKS_PER_SEC,
           (double)(c3 - c2) / CLOCKS_PER_SEC, (double)(c4 - c3) / CLOCKS_PER_SEC);

    st_hub_fixture_free(&T.hub_fx);
    st_dir_remove(T.dir);
    crashvfs_uninstall();
    free(T.acks);
    if (!T.only_point && (control.caught_points == 0 || hub_control.lost == 0)) {
        fprintf(stderr,
                "FAILED: a negative control was not caught (till, synchronous=NORMAL: %" PRId64
                " crash points lost sales; hub, fsync skipped: %" PRId64
                " acknowledged pushes lost): the harness cannot see loss\n",
                control.caught_points, hub_control.lost);
        return 1;
    }
    printf("power loss: ok — lost 0; the negative controls were caught (till at %" PRId64
           " crash points, hub at %" PRId64 ")\n",
           control.caught_points, hub_control.caught_points);
    return 0;
}

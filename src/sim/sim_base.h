/*
 * sim_base.h — what every `duka sim` simulator shares: its state file (one SQLite file,
 * marked as a simulator's), seeded fault draws, an outage schedule, waits that end when the
 * simulator stops, a reply held until its client gives up, the /_sim control's guards and
 * JSON replies written as text. The simulators (etims_sim.c, mpesa_sim.c) embed a
 * duka_sim_base and keep their own knobs; the lock guards the base's fields and whatever the
 * simulator adds under it.
 */
#ifndef DUKA_SIM_BASE_H
#define DUKA_SIM_BASE_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "net/http_server.h"

#define DUKA_SIM_APP_ID 0x64756b53 /* "dukS": PRAGMA application_id of a state file */

typedef struct duka_sim_base {
    sqlite3 *db;
    pthread_mutex_t lock; /* guards the fields below (and the simulator's own, if it says so) */
    pthread_cond_t wake;  /* broadcast on stop */
    bool stopping;
    uint64_t rng;            /* splitmix64 state of the fault draws */
    int64_t outage_epoch_ms; /* monotonic start of the outage schedule */
    long held;               /* replies being held now */
} duka_sim_base;

/* The lock, the condition (monotonic clock), the draws seeded with seed, the schedule from
 * now. No state file yet. */
void duka_sim_base_init(duka_sim_base *b, uint64_t seed);
/* Closes the state file and destroys the lock. */
void duka_sim_base_destroy(duka_sim_base *b);

/* Opens (creating when missing) the state file at path: refused when it is another
 * application's database (a till's or a hub's); WAL with synchronous=NORMAL (a committed
 * request survives a kill -9 of the simulator, not a power cut); then schema and init(ctx)
 * (NULL: none) in one transaction. */
duka_rc duka_sim_state_open(duka_sim_base *b, const char *path, const char *schema,
                            duka_rc (*init)(void *ctx, duka_err *err), void *ctx,
                            duka_err *err);

/* Helpers over the state file; errors name "simulator state". */
duka_rc duka_sim_fail(sqlite3 *db, const char *what, duka_err *err);
duka_rc duka_sim_exec(sqlite3 *db, const char *sql, duka_err *err);
void duka_sim_rollback(sqlite3 *db);
sqlite3_stmt *duka_sim_prepare(sqlite3 *db, const char *sql); /* NULL: logged */
int64_t duka_sim_scalar_int(sqlite3 *db, const char *sql, int64_t fallback);

/* The next 64 random bits of the seeded draws (lock held by the caller): simulated
 * identifiers (tokens, receipt numbers) that a seeded run replays. */
uint64_t duka_sim_next_u64(duka_sim_base *b);
/* A draw in [0, 1) (lock held by the caller), and true with probability p (takes the lock;
 * draws only when 0 < p < 1, so fault-free runs draw nothing). */
double duka_sim_draw_unit(duka_sim_base *b);
bool duka_sim_draw(duka_sim_base *b, double p);

/* Whether an outage is on: forced, or inside a scheduled one (for_s seconds starting at every
 * multiple of every_s after the schedule began). Restarting the schedule: now. */
bool duka_sim_outage_on(duka_sim_base *b, bool forced, long every_s, long for_s);
void duka_sim_outage_reschedule(duka_sim_base *b);

/* Waits ms, or less when the simulator stops. */
void duka_sim_wait_ms(duka_sim_base *b, long ms);
/* True when the client of ex has closed its connection (or it broke). */
bool duka_sim_client_gone(const duka_http_exchange *ex);
/* A reply that is lost: holds the connection until its client gives up, max_ms pass, or the
 * simulator stops. Only the connection's own thread waits. */
void duka_sim_hold_reply(duka_sim_base *b, const duka_http_exchange *ex, int64_t max_ms);
/* Wakes every wait and makes new ones return at once (before stopping the HTTP server). */
void duka_sim_wake_all(duka_sim_base *b);
bool duka_sim_stopping(duka_sim_base *b);

/* The /_sim control answers loopback peers only: false with a 403 set otherwise. */
bool duka_sim_control_allowed(duka_http_exchange *ex);
/* A number member of a /_sim body within [lo, hi] (whole: no fraction); false with a 400. */
bool duka_sim_knob_number(duka_http_exchange *ex, const char *key, const json_t *v, double lo,
                          double hi, bool whole, double *out);
/* A JSON object body of a /_sim request; NULL with a 400 set. */
json_t *duka_sim_body_object(duka_http_exchange *ex);
/* Sends ex's JSON reply as text written here: amounts that are reals of KES with 2 decimals
 * would print 409.99 as 409.99000000000001 with jansson's default 17 significant digits; 15
 * print every amount the simulators accept exactly. */
void duka_sim_reply_as_text(duka_http_exchange *ex);

/* How a simulator serves (duka_sim_serve). */
typedef struct duka_sim_run {
    const char *listen;         /* HOST:PORT, for messages */
    int listen_fd;              /* from duka_http_listen_open; the server owns it */
    size_t max_body_bytes;      /* 413 beyond it */
    duka_http_handler handler;
    void *app;
    void *(*worker)(void *app); /* NULL, or a thread run beside the server until stop */
    const char *banner;         /* the start line printed on stdout */
} duka_sim_run;

/* Blocks SIGINT/SIGTERM, serves HTTP on run->listen_fd, starts the worker, prints the banner,
 * waits for a stop signal, then wakes every wait, stops the server and joins the worker. */
duka_rc duka_sim_serve(duka_sim_base *b, const duka_sim_run *run, duka_err *err);

#endif

/*
 * etims_sim.h — `duka sim etims`: a simulator of KRA's eTIMS OSCU web service.
 *
 * It answers selectInitOsdcInfo, saveTrnsSalesOsdc and selectInvoiceDetails as
 * docs/PROTOCOL.md ("eTIMS") describes them (the wire shape of the real service, as far as
 * public sources tell), and checks what it receives independently of duka's own invoice
 * builder: every field's presence and type, the tax arithmetic re-derived from the items, the
 * no-gap invoice numbers, duplicates (994) and credit notes (922). Faults can be injected
 * (latency, failures, replies lost after the invoice was kept, outages), from the command line
 * or at run time through /_sim/faults, and everything it accepted is listed by /_sim/invoices,
 * so end-to-end tests and the chaos checker can compare what duka believes with what "KRA"
 * holds. docs/ARCHITECTURE.md, "The eTIMS simulator", says where it is a guess.
 *
 * State (devices, accepted invoices with their full body text, counters, the signing secret)
 * lives in one SQLite file; each request is one transaction, so a restarted simulator
 * remembers. Workload: a test's or a demo's traffic, a few hundred requests a second at most;
 * requests are served one at a time against the file (one lock), while waits (latency, a held
 * reply) happen outside the lock on each connection's own thread.
 */
#ifndef DUKA_ETIMS_SIM_H
#define DUKA_ETIMS_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "net/http_server.h"

/* ---- limits of the simulator (what it refuses, and why) ---- */

/* A request body: 1,000 items of a few hundred bytes each stay far below it; beyond it 413. */
#define DUKA_ETIMS_SIM_BODY_MAX_BYTES (1024u * 1024u)
/* Items of one invoice: KRA documents no bound; a trolley holds far fewer (duka: 500). */
#define DUKA_ETIMS_SIM_ITEMS_MAX 1000
/* trdInvcNo: KRA's field is 50 characters. */
#define DUKA_ETIMS_SIM_TRD_INVC_NO_MAX 50
/* Any other text field (names, codes, messages): generous, so that the simulator refuses
 * garbage, not a long product name. KRA's own bounds are narrower for some codes (itemCd 20);
 * they are not known well enough to enforce. */
#define DUKA_ETIMS_SIM_TEXT_MAX 200
#define DUKA_ETIMS_SIM_SERIAL_MAX 100 /* dvcSrlNo */
/* Amounts: at most KES 1,000,000,000,000.00 each (exact in a double, and 1,000 items of it
 * added up stay far inside int64). Quantities: up to 1,000,000,000 units with 3 decimals. */
#define DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX 100000000000000LL
#define DUKA_ETIMS_SIM_QTY_MILLI_MAX 1000000000000LL
/* invcNo: a positive whole number JSON carries exactly (2^53). */
#define DUKA_ETIMS_SIM_INVC_NO_MAX 9007199254740991LL
/* A reply held after accepting (--timeout-after-accept): longer than any client waits (one
 * integration waits 120 s). Released earlier when the client closes or the simulator stops. */
#define DUKA_ETIMS_SIM_HOLD_MS 130000
/* Knob bounds. */
#define DUKA_ETIMS_SIM_LATENCY_MS_MAX 600000
#define DUKA_ETIMS_SIM_OUTAGE_S_MAX 86400
#define DUKA_ETIMS_SIM_WINDOW_MAX 1000000
#define DUKA_ETIMS_SIM_NAME_MAX 100 /* --taxpayer-name */
/* /_sim/invoices lists at most this many missing numbers (a client may send invcNo 10^12). */
#define DUKA_ETIMS_SIM_GAPS_MAX 10000

_Static_assert(DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX * DUKA_ETIMS_SIM_ITEMS_MAX * 20
                   < 9223372036854775807LL,
               "1,000 items' amounts times a tax rate fit int64");
_Static_assert(DUKA_ETIMS_SIM_AMOUNT_CENTS_MAX < 9007199254740992LL,
               "an amount in cents is exact in a double");

/* What the simulator starts with (the command line). */
typedef struct duka_etims_sim_options {
    const char *listen;        /* HOST:PORT */
    const char *state_path;    /* the SQLite file (created when missing) */
    long latency_ms;           /* every answer of the eTIMS API waits this long */
    double fail_rate;          /* 0..1: that share of saves answers 999, nothing kept */
    double timeout_after_accept; /* 0..1: that share of accepted saves is kept, reply held */
    long outage_every_s;       /* > 0: an outage starts every this many seconds ... */
    long outage_for_s;         /* ... and lasts this long (< outage_every_s) */
    long sequence_window;      /* > 0: 921 for an invcNo beyond contiguous + window */
    uint64_t seed;             /* of the fault draws */
    const char *taxpayer_name; /* taxprNm of new devices; NULL: a default */
    bool single_credit_note;   /* a second credit note of one invoice is 922 */
    /* The time it signs with (sdcDateTime, resultDt); NULL: the system's. The deterministic
     * simulator (tests/sim) passes its simulated clock. */
    const duka_clock *clock;
} duka_etims_sim_options;

typedef struct duka_etims_sim duka_etims_sim;

/* Opens (creating when missing) the state file and sets the knobs. A file that is not a
 * simulator's state (another application_id: a till's or hub's database) is refused. *out is
 * the caller's, to give to duka_etims_sim_close; NULL on error. */
duka_rc duka_etims_sim_open(const duka_etims_sim_options *opt, duka_etims_sim **out,
                            duka_err *err);

/* Answers one request (the http_server handler; runs on the connection's thread, may wait). */
void duka_etims_sim_handle(duka_etims_sim *sim, duka_http_exchange *ex);

/* Wakes every wait (latency, held replies) and makes new ones return at once: call before
 * stopping the HTTP server, which waits for its handlers. */
void duka_etims_sim_wake_all(duka_etims_sim *sim);

/* Closes the state file and frees. NULL is fine. */
void duka_etims_sim_close(duka_etims_sim *sim);

/* The whole command: opens the state, listens, prints the start line on stdout, serves until
 * SIGINT/SIGTERM, then stops cleanly. */
duka_rc duka_etims_sim_serve(const duka_etims_sim_options *opt, duka_err *err);

#endif

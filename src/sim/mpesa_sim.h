/*
 * mpesa_sim.h — `duka sim mpesa`: a simulator of Safaricom's M-Pesa Daraja API.
 *
 * It answers what duka's hub (and any third-party Daraja client: the npm mpesa-node and
 * mpesa-api are tested against it) calls: OAuth, STK push and STK query, C2B URL
 * registration and simulate, and the transaction status query, with the real field names,
 * result codes and error shapes as docs/PROTOCOL.md ("M-Pesa Daraja") gives them. Behind the
 * API stand simulated customers: each prompt reaches a phone whose owner pays, cancels, types
 * a wrong PIN, has too little money, cannot be reached, or ignores it — by default, or as a
 * test scripts per phone — and the outcome is posted to the CallBackURL as Safaricom posts it
 * (late, twice or never, as knobs say). A customer can also pay the shop's till or paybill
 * from their own phone (C2B): validation, then confirmation, to the registered URLs.
 *
 * Faults (latency, spike arrest, outages, a reply held after the prompt went out, callbacks
 * delayed, doubled or dropped) come from the command line or POST /_sim/faults. /_sim/prompts,
 * /_sim/payments and /_sim/callbacks list what "Safaricom" holds, so tests and the chaos
 * checker can compare it with what duka believes (a customer prompted twice for one sale, a
 * receipt credited to two sales). docs/ARCHITECTURE.md, "The M-Pesa simulator", says where it
 * is a guess.
 *
 * State (tokens, prompts, payments, registered URLs, scripted customers, callbacks due) lives
 * in one SQLite file; each request is one transaction, so a restarted simulator remembers,
 * and callbacks due when it was killed are sent after it restarts. Outgoing posts (callbacks,
 * validation, confirmation, status results) are made by one delivery thread, outside the lock,
 * through a transport the deterministic simulator (tests/sim) can replace.
 */
#ifndef DUKA_MPESA_SIM_H
#define DUKA_MPESA_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "net/http_client.h"
#include "net/http_server.h"

/* ---- limits of the simulator (what it refuses, and why) ---- */

/* A request body: Daraja's are a few hundred bytes. Beyond it 413. */
#define DUKA_MPESA_SIM_BODY_MAX_BYTES (64u * 1024u)
/* Amount: whole shillings, 1 .. 250,000 (M-Pesa's limit per transaction since 2023). */
#define DUKA_MPESA_SIM_AMOUNT_MAX 250000
/* AccountReference: Daraja documents 12 characters and duka keeps to it. */
#define DUKA_MPESA_SIM_ACCOUNT_REF_MAX 12
/* TransactionDesc: documented as 13, but clients send more (mpesa-node's default is 20
 * characters) and the sandbox takes them; refused only beyond this. */
#define DUKA_MPESA_SIM_DESC_MAX 100
/* BillRefNumber of a C2B payment, Remarks/Occasion/Initiator: generous text. */
#define DUKA_MPESA_SIM_TEXT_MAX 100
/* SecurityCredential: base64 of an RSA-4096 ciphertext is 684 characters. */
#define DUKA_MPESA_SIM_CREDENTIAL_MAX 1024
/* A consumer key, secret or passkey given on the command line. */
#define DUKA_MPESA_SIM_SECRET_MAX 128
/* A reply held after the prompt went out (--timeout-after-accept): longer than clients wait
 * (mpesa-node: 5 s; duka's hub: DAR_TIMEOUT). Released earlier when the client closes. */
#define DUKA_MPESA_SIM_HOLD_MS 60000
/* One outgoing post (callback, validation, confirmation, result) waits at most this long.
 * Safaricom gives a validation URL about 8 s before it applies the ResponseType. */
#define DUKA_MPESA_SIM_POST_TIMEOUT_MS 8000
/* Posts made per round of the delivery thread; the rest wait for the next round. */
#define DUKA_MPESA_SIM_DELIVER_BATCH 32
/* Rows a /_sim listing returns at most (the rest: "truncated": true). */
#define DUKA_MPESA_SIM_LIST_MAX 50000
/* Knob bounds. */
#define DUKA_MPESA_SIM_LATENCY_MS_MAX 600000
#define DUKA_MPESA_SIM_OUTAGE_S_MAX 86400
#define DUKA_MPESA_SIM_ANSWER_MS_MAX 3600000 /* a customer answers within an hour */
#define DUKA_MPESA_SIM_TOKEN_LIFE_S_MAX 86400
#define DUKA_MPESA_SIM_RATE_MAX 100000 /* spike arrest: calls a second */

/* How a simulated customer answers a prompt. */
typedef enum duka_mpesa_answer {
    DUKA_MPESA_PAY,          /* ResultCode 0: paid, a receipt number */
    DUKA_MPESA_CANCEL,       /* 1032 */
    DUKA_MPESA_WRONG_PIN,    /* 2001 */
    DUKA_MPESA_INSUFFICIENT, /* 1 */
    DUKA_MPESA_UNREACHABLE,  /* 1037 (phone off, no network) */
    DUKA_MPESA_IGNORE,       /* 1037 when the prompt expires */
} duka_mpesa_answer;

/* How C2B notifications carry the customer's MSISDN: Safaricom has masked it and, later,
 * hashed it; sources disagree on which a shortcode gets, so it is a knob. */
typedef enum duka_mpesa_msisdn {
    DUKA_MPESA_MSISDN_PLAIN,  /* 254708374149 */
    DUKA_MPESA_MSISDN_MASKED, /* 2547****149 */
    DUKA_MPESA_MSISDN_SHA256, /* hex SHA-256 of the 12 digits */
} duka_mpesa_msisdn;

/* The answer named (pay, cancel, wrong_pin or wrong-pin, insufficient, unreachable, ignore);
 * false when none. */
bool duka_mpesa_answer_parse(const char *name, duka_mpesa_answer *out);
const char *duka_mpesa_answer_name(duka_mpesa_answer a);
bool duka_mpesa_msisdn_parse(const char *name, duka_mpesa_msisdn *out);

/* What the simulator starts with (the command line). */
typedef struct duka_mpesa_sim_options {
    const char *listen;     /* HOST:PORT */
    const char *state_path; /* the SQLite file (created when missing) */
    const char *consumer_key, *consumer_secret, *passkey; /* NULL: the defaults below */
    long latency_ms;             /* every Daraja answer waits this long */
    double fail_rate;            /* 0..1: that share of pushes and queries: 500.003.02 */
    double timeout_after_accept; /* 0..1: that share of pushes prompts, reply held */
    long outage_every_s, outage_for_s;
    long callback_delay_ms;      /* a callback goes this long after the answer */
    double callback_twice;       /* 0..1: that share of callbacks is posted twice */
    double callback_never;       /* 0..1: that share is never posted */
    long spike_arrest_per_s;     /* > 0: calls beyond this many a second: 500.003.02 */
    duka_mpesa_answer answer;    /* customers not scripted */
    long answer_after_ms;        /* ... answer this long after the prompt */
    long prompt_expiry_ms;       /* an unanswered prompt ends (1037) this long after */
    long token_life_s;           /* an access token's life */
    duka_mpesa_msisdn msisdn;
    uint64_t seed;               /* of the fault draws and the identifiers */
    const duka_clock *clock;     /* NULL: the system's */
    /* Outgoing posts; NULL: duka_http_send. */
    duka_http_transport transport;
    void *transport_ctx;
} duka_mpesa_sim_options;

#define DUKA_MPESA_SIM_DEFAULT_KEY "duka-sim-key"
#define DUKA_MPESA_SIM_DEFAULT_SECRET "duka-sim-secret"
/* The sandbox's published Lipa na M-Pesa passkey (shortcode 174379): public, not a secret. */
#define DUKA_MPESA_SIM_DEFAULT_PASSKEY \
    "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
#define DUKA_MPESA_SIM_DEFAULT_ANSWER_MS 2000
#define DUKA_MPESA_SIM_DEFAULT_EXPIRY_MS 60000
#define DUKA_MPESA_SIM_DEFAULT_TOKEN_LIFE_S 3599

/* Fills o with the defaults (listen and state_path NULL). */
void duka_mpesa_sim_defaults(duka_mpesa_sim_options *o);

typedef struct duka_mpesa_sim duka_mpesa_sim;

/* Opens (creating when missing) the state file and sets the knobs; another application's
 * database is refused. *out is the caller's, to give to duka_mpesa_sim_close. */
duka_rc duka_mpesa_sim_open(const duka_mpesa_sim_options *opt, duka_mpesa_sim **out,
                            duka_err *err);

/* Answers one request (the http_server handler; runs on the connection's thread, may wait). */
void duka_mpesa_sim_handle(duka_mpesa_sim *sim, duka_http_exchange *ex);

/* One round of the simulated world at the clock's now: prompts whose customer answered are
 * settled (payments made, callbacks queued), C2B payments validated and confirmed, and due
 * posts sent (at most DUKA_MPESA_SIM_DELIVER_BATCH). Returns the posts made. The delivery
 * thread calls it; the deterministic simulator calls it itself. */
int duka_mpesa_sim_deliver_due(duka_mpesa_sim *sim);

/* Wakes every wait (latency, held replies) and makes new ones return at once. */
void duka_mpesa_sim_wake_all(duka_mpesa_sim *sim);

/* Closes the state file and frees. NULL is fine. */
void duka_mpesa_sim_close(duka_mpesa_sim *sim);

/* The whole command: opens the state, listens, starts the delivery thread, prints the start
 * line on stdout, serves until SIGINT/SIGTERM, then stops cleanly. */
duka_rc duka_mpesa_sim_serve(const duka_mpesa_sim_options *opt, duka_err *err);

#endif

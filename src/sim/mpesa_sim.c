/*
 * mpesa_sim.c — the M-Pesa Daraja simulator (see mpesa_sim.h).
 *
 * Layout: the knobs, the state file, small helpers (times, identifiers, Daraja's error shape,
 * the fields of a request), the gate every Daraja call passes (latency, outage, token, spike
 * arrest), OAuth, STK push and query with the simulated customers, C2B, the transaction
 * status query, the deliveries (what "Safaricom" posts to the shop), the /_sim control, and
 * the server's start and stop.
 *
 * Time: prompts are answered at a time set when they are made (now + the customer's delay),
 * and settled lazily — by the next query or the delivery thread's next round — at the
 * answer's own time, not when it was noticed: a run with the simulated clock (tests/sim)
 * replays exactly.
 */
#include "sim/mpesa_sim.h"
#include "sim/sim_base.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json_limits.h"
#include "common/limits.h"
#include "common/log.h"
#include "net/http_router.h"

#define SIM_NAIROBI_OFFSET_S (3 * 3600) /* Daraja's times are Kenyan (UTC+3, no DST) */
#define SIM_MSG_MAX 200
#define SIM_ID_MAX 64         /* CheckoutRequestID, MerchantRequestID, conversation ids */
#define SIM_RECEIPT_LEN 10    /* MpesaReceiptNumber / TransID */
#define SIM_TOKEN_LEN 28      /* an access token */
#define SIM_PHONE_LEN 12      /* 2547XXXXXXXX */
#define SIM_SETTLE_BATCH 256  /* prompts settled per transaction */
#define SIM_DELIVERY_TICK_MS 50

/* ------------------------------------------------------------------------------------------
 * knobs
 * ---------------------------------------------------------------------------------------- */

typedef struct sim_knobs {
    bool outage_forced;
    long outage_every_s, outage_for_s;
    long latency_ms;
    double fail_rate, timeout_after_accept;
    long callback_delay_ms;
    double callback_twice, callback_never;
    long spike_arrest_per_s;
    long answer; /* duka_mpesa_answer */
    long answer_after_ms, prompt_expiry_ms;
    long token_life_s;
    long msisdn; /* duka_mpesa_msisdn */
} sim_knobs;

typedef enum { KNOB_BOOL, KNOB_SHARE, KNOB_WHOLE, KNOB_ANSWER, KNOB_MSISDN } knob_type;

/* The knobs of /_sim/faults: name, type, upper bound of a whole number, place. */
static const struct knob_def {
    const char *name;
    knob_type type;
    long hi;
    size_t off;
} knob_defs[] = {
    {"outage", KNOB_BOOL, 0, offsetof(sim_knobs, outage_forced)},
    {"outage_every_s", KNOB_WHOLE, DUKA_MPESA_SIM_OUTAGE_S_MAX,
     offsetof(sim_knobs, outage_every_s)},
    {"outage_for_s", KNOB_WHOLE, DUKA_MPESA_SIM_OUTAGE_S_MAX, offsetof(sim_knobs, outage_for_s)},
    {"latency_ms", KNOB_WHOLE, DUKA_MPESA_SIM_LATENCY_MS_MAX, offsetof(sim_knobs, latency_ms)},
    {"fail_rate", KNOB_SHARE, 0, offsetof(sim_knobs, fail_rate)},
    {"timeout_after_accept", KNOB_SHARE, 0, offsetof(sim_knobs, timeout_after_accept)},
    {"callback_delay_ms", KNOB_WHOLE, DUKA_MPESA_SIM_ANSWER_MS_MAX,
     offsetof(sim_knobs, callback_delay_ms)},
    {"callback_twice", KNOB_SHARE, 0, offsetof(sim_knobs, callback_twice)},
    {"callback_never", KNOB_SHARE, 0, offsetof(sim_knobs, callback_never)},
    {"spike_arrest_per_s", KNOB_WHOLE, DUKA_MPESA_SIM_RATE_MAX,
     offsetof(sim_knobs, spike_arrest_per_s)},
    {"answer", KNOB_ANSWER, 0, offsetof(sim_knobs, answer)},
    {"answer_after_ms", KNOB_WHOLE, DUKA_MPESA_SIM_ANSWER_MS_MAX,
     offsetof(sim_knobs, answer_after_ms)},
    {"prompt_expiry_ms", KNOB_WHOLE, DUKA_MPESA_SIM_ANSWER_MS_MAX,
     offsetof(sim_knobs, prompt_expiry_ms)},
    {"token_life_s", KNOB_WHOLE, DUKA_MPESA_SIM_TOKEN_LIFE_S_MAX,
     offsetof(sim_knobs, token_life_s)},
    {"msisdn", KNOB_MSISDN, 0, offsetof(sim_knobs, msisdn)},
};
#define KNOB_COUNT (sizeof(knob_defs) / sizeof(knob_defs[0]))

struct duka_mpesa_sim {
    duka_sim_base base; /* its lock guards the knobs and the spike-arrest window too */
    sim_knobs knobs;
    int64_t window_s;   /* spike arrest: the second counted, and the calls in it */
    long window_calls;
    char consumer_key[DUKA_MPESA_SIM_SECRET_MAX + 1];
    char consumer_secret[DUKA_MPESA_SIM_SECRET_MAX + 1];
    char passkey[DUKA_MPESA_SIM_SECRET_MAX + 1];
    const duka_clock *clock;
    duka_http_transport transport;
    void *transport_ctx;
};

/* ------------------------------------------------------------------------------------------
 * names
 * ---------------------------------------------------------------------------------------- */

/* Each answer: its name, the ResultCode and ResultDesc Safaricom gives for it. */
static const struct answer_def {
    const char *name;
    int code;
    const char *desc;
} answer_defs[] = {
    [DUKA_MPESA_PAY] = {"pay", 0, "The service request is processed successfully."},
    [DUKA_MPESA_CANCEL] = {"cancel", 1032, "Request cancelled by user"},
    [DUKA_MPESA_WRONG_PIN] = {"wrong_pin", 2001, "The initiator information is invalid."},
    [DUKA_MPESA_INSUFFICIENT] = {"insufficient", 1,
                                 "The balance is insufficient for the transaction."},
    [DUKA_MPESA_UNREACHABLE] = {"unreachable", 1037, "DS timeout user cannot be reached"},
    [DUKA_MPESA_IGNORE] = {"ignore", 1037, "DS timeout user cannot be reached"},
};
#define ANSWER_COUNT ((int)(sizeof(answer_defs) / sizeof(answer_defs[0])))

/* A push to a phone that still shows another prompt: the prompt never reaches it. */
#define LOCKED_ANSWER "locked"
#define LOCKED_CODE 1001
#define LOCKED_DESC "Unable to lock subscriber, a transaction is already in process for the " \
                    "current subscriber"

static const char *const msisdn_names[] = {"plain", "masked", "sha256"};

bool duka_mpesa_answer_parse(const char *name, duka_mpesa_answer *out)
{
    char norm[32];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(norm))
        return false;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : name[i];
    for (int a = 0; a < ANSWER_COUNT; a++)
        if (strcmp(norm, answer_defs[a].name) == 0) {
            *out = (duka_mpesa_answer)a;
            return true;
        }
    return false;
}

const char *duka_mpesa_answer_name(duka_mpesa_answer a)
{
    return (int)a >= 0 && (int)a < ANSWER_COUNT ? answer_defs[a].name : "?";
}

bool duka_mpesa_msisdn_parse(const char *name, duka_mpesa_msisdn *out)
{
    for (size_t i = 0; i < sizeof(msisdn_names) / sizeof(msisdn_names[0]); i++)
        if (strcmp(name, msisdn_names[i]) == 0) {
            *out = (duka_mpesa_msisdn)i;
            return true;
        }
    return false;
}

void duka_mpesa_sim_defaults(duka_mpesa_sim_options *o)
{
    memset(o, 0, sizeof(*o));
    o->answer = DUKA_MPESA_PAY;
    o->answer_after_ms = DUKA_MPESA_SIM_DEFAULT_ANSWER_MS;
    o->prompt_expiry_ms = DUKA_MPESA_SIM_DEFAULT_EXPIRY_MS;
    o->token_life_s = DUKA_MPESA_SIM_DEFAULT_TOKEN_LIFE_S;
    o->msisdn = DUKA_MPESA_MSISDN_PLAIN;
    o->seed = 1;
}

/* ------------------------------------------------------------------------------------------
 * the state file
 * ---------------------------------------------------------------------------------------- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS tokens(token TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);"
    /* Every accepted STK push; answer: how its customer answers (a duka_mpesa_answer name or
     * 'locked'), at answer_due_ms; the result once answered. */
    "CREATE TABLE IF NOT EXISTS prompts("
    " id INTEGER PRIMARY KEY, checkout_id TEXT NOT NULL UNIQUE, merchant_id TEXT NOT NULL,"
    " shortcode TEXT NOT NULL, party_b TEXT NOT NULL, phone TEXT NOT NULL,"
    " amount INTEGER NOT NULL, account_ref TEXT NOT NULL, description TEXT NOT NULL,"
    " transaction_type TEXT NOT NULL, callback_url TEXT NOT NULL,"
    " requested_ms INTEGER NOT NULL, answer TEXT NOT NULL, answer_due_ms INTEGER NOT NULL,"
    " shown INTEGER NOT NULL, reply_held INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL DEFAULT 'pending', result_code INTEGER, result_desc TEXT,"
    " receipt TEXT, answered_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS prompts_due ON prompts(answer_due_ms) WHERE status = 'pending';"
    "CREATE INDEX IF NOT EXISTS prompts_phone ON prompts(phone, status);"
    /* Money that moved: STK payments and C2B payments; receipt = MpesaReceiptNumber / TransID.
     * shortcode: the one credited (PartyB of a push). */
    "CREATE TABLE IF NOT EXISTS payments("
    " receipt TEXT PRIMARY KEY, kind TEXT NOT NULL, amount INTEGER NOT NULL,"
    " phone TEXT NOT NULL, shortcode TEXT NOT NULL, reference TEXT NOT NULL,"
    " trans_time TEXT NOT NULL, checkout_id TEXT, first_name TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS c2b_urls(shortcode TEXT PRIMARY KEY,"
    " response_type TEXT NOT NULL, confirmation_url TEXT NOT NULL,"
    " validation_url TEXT NOT NULL, registered_ms INTEGER NOT NULL);"
    /* C2B payments begun by a customer: 'queued' until validated, then completed/rejected. */
    "CREATE TABLE IF NOT EXISTS c2b_requests("
    " id INTEGER PRIMARY KEY, trans_id TEXT NOT NULL UNIQUE, shortcode TEXT NOT NULL,"
    " command_id TEXT NOT NULL, amount INTEGER NOT NULL, phone TEXT NOT NULL,"
    " bill_ref TEXT NOT NULL, first_name TEXT NOT NULL, middle_name TEXT NOT NULL,"
    " last_name TEXT NOT NULL, trans_time TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'queued');"
    "CREATE INDEX IF NOT EXISTS c2b_queued ON c2b_requests(id) WHERE state = 'queued';"
    "CREATE TABLE IF NOT EXISTS customers(phone TEXT PRIMARY KEY, answer TEXT NOT NULL,"
    " after_ms INTEGER NOT NULL);"
    /* What "Safaricom" posts to the shop: due, then sent / failed (one try each, as
     * Safaricom's own), or dropped (callback_never). ref: the CheckoutRequestID or TransID. */
    "CREATE TABLE IF NOT EXISTS deliveries("
    " id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ref TEXT NOT NULL, url TEXT NOT NULL,"
    " body TEXT NOT NULL, due_ms INTEGER NOT NULL, state TEXT NOT NULL,"
    " http_status INTEGER, sent_ms INTEGER, error TEXT);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(due_ms) WHERE state = 'due';";

/* ------------------------------------------------------------------------------------------
 * small helpers: knobs, times, identifiers, replies
 * ---------------------------------------------------------------------------------------- */

static sim_knobs knobs_now(duka_mpesa_sim *sim)
{
    pthread_mutex_lock(&sim->base.lock);
    sim_knobs k = sim->knobs;
    pthread_mutex_unlock(&sim->base.lock);
    return k;
}

static int64_t now_ms(const duka_mpesa_sim *sim)
{
    return duka_clock_now_ms(sim->clock);
}

/* ms in Nairobi time as "YYYYMMDDHHmmss" (day_first: "DDMMYYYYHHmmss", as in ws_CO_ ids). */
static void nairobi_stamp(int64_t ms, bool day_first, char out[15])
{
    time_t t = (time_t)(ms / 1000) + SIM_NAIROBI_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (day_first)
        snprintf(out, 15, "%02d%02d%04d%02d%02d%02d", tm.tm_mday, tm.tm_mon + 1,
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(out, 15, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* n random characters of [A-Z0-9] (lock held). */
static void random_alnum(duka_mpesa_sim *sim, char *out, size_t n)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (size_t i = 0; i < n; i++)
        out[i] = set[duka_sim_next_u64(&sim->base) % (sizeof(set) - 1)];
    out[n] = '\0';
}

/* Safaricom's ids of the shape "29115-34620561-1" (lock held). */
static void random_request_id(duka_mpesa_sim *sim, char out[SIM_ID_MAX])
{
    uint64_t r = duka_sim_next_u64(&sim->base);
    snprintf(out, SIM_ID_MAX, "%05u-%08u-%u", (unsigned)(r % 100000u),
             (unsigned)((r >> 17) % 100000000u), (unsigned)((r >> 50) % 3u) + 1u);
}

/* The error shape of Daraja: {"requestId","errorCode","errorMessage"}. */
static void daraja_error(duka_mpesa_sim *sim, duka_http_exchange *ex, unsigned status,
                         const char *code, const char *message)
{
    char id[SIM_ID_MAX];
    pthread_mutex_lock(&sim->base.lock);
    random_request_id(sim, id);
    pthread_mutex_unlock(&sim->base.lock);
    ex->status = status;
    ex->reply = json_pack("{s:s, s:s, s:s}", "requestId", id, "errorCode", code, "errorMessage",
                          message);
}

static void bad_request(duka_mpesa_sim *sim, duka_http_exchange *ex, const char *field)
{
    char msg[SIM_MSG_MAX];
    snprintf(msg, sizeof(msg), "Bad Request - Invalid %s", field);
    daraja_error(sim, ex, 400, "400.002.02", msg);
}

static void spike_arrest(duka_mpesa_sim *sim, duka_http_exchange *ex)
{
    daraja_error(sim, ex, 500, "500.003.02",
                 "Error occurred: Spike arrest violation (simulated; nothing was done)");
}

static void state_failed(duka_mpesa_sim *sim, duka_http_exchange *ex)
{
    daraja_error(sim, ex, 500, "500.003.1001",
                 "Internal Server Error (the simulator's state file failed; see its log)");
}

/* A JSON text of v for a post (reals of whole shillings print as 10.0, not 10.000000000001). */
static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
}

static bool begin(duka_mpesa_sim *sim)
{
    duka_err err = {0};
    if (duka_sim_exec(sim->base.db, "BEGIN IMMEDIATE", &err) == DUKA_OK)
        return true;
    duka_log(DUKA_LOG_ERROR, "sim", "%s", err.msg);
    return false;
}

static bool commit(duka_mpesa_sim *sim, bool ok)
{
    duka_err err = {0};
    if (ok && duka_sim_exec(sim->base.db, "COMMIT", &err) == DUKA_OK)
        return true;
    if (ok)
        duka_log(DUKA_LOG_ERROR, "sim", "%s", err.msg);
    duka_sim_rollback(sim->base.db);
    return false;
}

/* Runs a prepared statement that returns no rows and finalises it. */
static bool step_done(duka_mpesa_sim *sim, sqlite3_stmt *st)
{
    if (st == NULL)
        return false;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return true;
    duka_log(DUKA_LOG_ERROR, "sim", "simulator state: %s", sqlite3_errmsg(sim->base.db));
    return false;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

/* ------------------------------------------------------------------------------------------
 * the fields of a request
 * ---------------------------------------------------------------------------------------- */

/* A text member of 1..max bytes (trailing spaces dropped when trim: mpesa-api sends
 * "CustomerPayBillOnline "); false when absent, not a string, empty or too long. */
static bool get_text(const json_t *body, const char *key, size_t max, bool trim, char *out,
                     size_t n)
{
    const json_t *v = json_object_get(body, key);
    if (!json_is_string(v))
        return false;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    while (trim && len > 0 && s[len - 1] == ' ')
        len--;
    if (len == 0 || len > max || len >= n || memchr(s, '\0', len) != NULL)
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

/* As get_text, where absent or null is "" (optional members). */
static bool get_optional_text(const json_t *body, const char *key, size_t max, char *out,
                              size_t n)
{
    const json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
        out[0] = '\0';
        return true;
    }
    return get_text(body, key, max, false, out, n);
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* A number written as digits, min..max of them: a string of digits or a whole JSON number
 * (clients send shortcodes and phones both ways). */
static bool get_digits(const json_t *body, const char *key, size_t min, size_t max, char *out,
                       size_t n)
{
    const json_t *v = json_object_get(body, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (!get_text(body, key, max, false, out, n))
        return false;
    size_t len = strlen(out);
    return len >= min && len <= max && all_digits(out);
}

static bool get_phone(const json_t *body, const char *key, char out[SIM_PHONE_LEN + 1])
{
    return get_digits(body, key, SIM_PHONE_LEN, SIM_PHONE_LEN, out, SIM_PHONE_LEN + 1) &&
           (strncmp(out, "2547", 4) == 0 || strncmp(out, "2541", 4) == 0);
}

/* Whole shillings 1..DUKA_MPESA_SIM_AMOUNT_MAX: a whole number, a real without fraction, or a
 * string of one ("10", "10.00"). */
static bool get_amount(const json_t *body, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(body, key);
    double d = NAN;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 16) {
        const char *s = json_string_value(v);
        char *end = NULL;
        d = strtod(s, &end);
        if (*end != '\0' || s[0] < '0' || s[0] > '9')
            return false;
    }
    if (!isfinite(d) || d != nearbyint(d) || d < 1 || d > DUKA_MPESA_SIM_AMOUNT_MAX)
        return false;
    *out = (int64_t)d;
    return true;
}

static bool get_url(const json_t *body, const char *key, char *out, size_t n)
{
    return get_text(body, key, DUKA_URL_MAX, false, out, n) && duka_http_url_valid(out);
}

/* A YYYYMMDDHHmmss stamp with every field in range (any zone: clients send UTC or Nairobi). */
static bool valid_stamp(const char *s)
{
    if (strlen(s) != 14 || !all_digits(s))
        return false;
    int mon = (s[4] - '0') * 10 + (s[5] - '0'), day = (s[6] - '0') * 10 + (s[7] - '0');
    int hh = (s[8] - '0') * 10 + (s[9] - '0'), mm = (s[10] - '0') * 10 + (s[11] - '0');
    int ss = (s[12] - '0') * 10 + (s[13] - '0');
    return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hh < 24 && mm < 60 && ss < 60;
}

/* Whether the body's Password is base64(shortcode + passkey + Timestamp). */
static bool password_matches(const duka_mpesa_sim *sim, const char *shortcode,
                             const char *password, const char *stamp)
{
    char plain[DUKA_MPESA_SIM_SECRET_MAX + 32];
    int n = snprintf(plain, sizeof(plain), "%s%s%s", shortcode, sim->passkey, stamp);
    if (n < 0 || (size_t)n >= sizeof(plain))
        return false;
    char want[sizeof(plain) * 4 / 3 + 8];
    sodium_bin2base64(want, sizeof(want), (const unsigned char *)plain, (size_t)n,
                      sodium_base64_VARIANT_ORIGINAL);
    return strcmp(want, password) == 0;
}

/* Parses ex's body as a JSON object; NULL with 400.002.02 set. */
static json_t *parse_body(duka_mpesa_sim *sim, duka_http_exchange *ex)
{
    json_error_t jerr;
    json_t *v = json_loadb(ex->body, ex->body_len, JSON_REJECT_DUPLICATES, &jerr);
    duka_err err = {0};
    if (v == NULL || !json_is_object(v) ||
        duka_json_depth_check(v, DUKA_JSON_DEPTH_MAX, "body", &err) != DUKA_OK) {
        json_decref(v);
        daraja_error(sim, ex, 400, "400.002.02", "Bad Request - Invalid JSON body");
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------------------------------------
 * the gate of every Daraja call: latency, outage, the access token, spike arrest
 * ---------------------------------------------------------------------------------------- */

static bool outage_on(duka_mpesa_sim *sim, const sim_knobs *k)
{
    return duka_sim_outage_on(&sim->base, k->outage_forced, k->outage_every_s, k->outage_for_s);
}

/* Whether the bearer token of ex is one the simulator issued and still alive. */
static bool token_valid(duka_mpesa_sim *sim, const duka_http_exchange *ex)
{
    const char *token = duka_http_bearer(ex);
    if (token == NULL || strlen(token) != SIM_TOKEN_LEN)
        return false;
    pthread_mutex_lock(&sim->base.lock);
    sqlite3_stmt *st = duka_sim_prepare(sim->base.db,
                                        "SELECT expires_ms FROM tokens WHERE token = ?1");
    bool ok = false;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, token, -1, SQLITE_TRANSIENT);
        ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > now_ms(sim);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sim->base.lock);
    return ok;
}

/* Whether one more call fits this second's spike-arrest allowance (counted when it does). */
static bool within_rate(duka_mpesa_sim *sim, long per_s)
{
    if (per_s <= 0)
        return true;
    int64_t s = duka_monotonic_ms() / 1000;
    pthread_mutex_lock(&sim->base.lock);
    if (s != sim->window_s) {
        sim->window_s = s;
        sim->window_calls = 0;
    }
    bool ok = sim->window_calls < per_s;
    if (ok)
        sim->window_calls++;
    pthread_mutex_unlock(&sim->base.lock);
    return ok;
}

/* Latency, outage (503, not JSON, as a gateway answers), then for API calls (not OAuth) the
 * token (404.001.03) and spike arrest (500.003.02). False with the reply set. */
static bool gate(duka_mpesa_sim *sim, duka_http_exchange *ex, bool api, sim_knobs *k)
{
    *k = knobs_now(sim);
    duka_sim_wait_ms(&sim->base, k->latency_ms);
    if (outage_on(sim, k)) {
        static const char down[] = "503 Service Unavailable (simulated Daraja outage)\n";
        duka_http_reply_bytes(ex, 503, "text/plain; charset=utf-8", down, sizeof(down) - 1,
                              false);
        return false;
    }
    if (!api)
        return true;
    if (!token_valid(sim, ex)) {
        daraja_error(sim, ex, 404, "404.001.03", "Invalid Access Token");
        return false;
    }
    if (!within_rate(sim, k->spike_arrest_per_s)) {
        spike_arrest(sim, ex);
        return false;
    }
    return true;
}

/* An API call's gate, then its body (a JSON object); NULL with the reply set. */
static json_t *api_request(duka_mpesa_sim *sim, duka_http_exchange *ex, sim_knobs *k)
{
    return gate(sim, ex, true, k) ? parse_body(sim, ex) : NULL;
}

/* ------------------------------------------------------------------------------------------
 * OAuth
 * ---------------------------------------------------------------------------------------- */

/* Whether "Basic base64(key:secret)" names the simulator's consumer key and secret. */
static bool basic_auth_ok(const duka_mpesa_sim *sim, const char *header)
{
    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
        return false;
    const char *b64 = header + 6;
    while (*b64 == ' ')
        b64++;
    unsigned char plain[2 * DUKA_MPESA_SIM_SECRET_MAX + 2];
    size_t len = 0;
    if (sodium_base642bin(plain, sizeof(plain) - 1, b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    plain[len] = '\0';
    char want[sizeof(plain) + 2];
    int n = snprintf(want, sizeof(want), "%s:%s", sim->consumer_key, sim->consumer_secret);
    return n > 0 && (size_t)n == len && sodium_memcmp(want, plain, len) == 0;
}

static void route_oauth(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    sim_knobs k;
    if (!gate(sim, ex, false, &k))
        return;
    const char *grant = duka_http_query(ex, "grant_type");
    if (grant == NULL || strcmp(grant, "client_credentials") != 0) {
        daraja_error(sim, ex, 400, "400.008.02", "Invalid grant type passed");
        return;
    }
    if (!basic_auth_ok(sim, duka_http_header(ex, "Authorization"))) {
        daraja_error(sim, ex, 400, "400.008.01", "Invalid Authentication passed");
        return;
    }
    char token[SIM_TOKEN_LEN + 1];
    pthread_mutex_lock(&sim->base.lock);
    random_alnum(sim, token, SIM_TOKEN_LEN);
    for (char *c = token; *c; c++) /* Safaricom's tokens mix cases */
        if (*c >= 'A' && *c <= 'Z' && (c - token) % 2 == 1)
            *c = (char)(*c - 'A' + 'a');
    int64_t now = now_ms(sim);
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "INSERT OR REPLACE INTO tokens(token, expires_ms) VALUES (?1, ?2)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, token, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now + (int64_t)k.token_life_s * 1000);
    }
    bool ok = step_done(sim, st);
    /* Expired tokens go: the table holds the live ones (and a few just dead). */
    st = duka_sim_prepare(sim->base.db, "DELETE FROM tokens WHERE expires_ms < ?1");
    if (st != NULL)
        sqlite3_bind_int64(st, 1, now - 3600 * 1000);
    step_done(sim, st);
    pthread_mutex_unlock(&sim->base.lock);
    if (!ok) {
        state_failed(sim, ex);
        return;
    }
    char life[24];
    snprintf(life, sizeof(life), "%ld", k.token_life_s);
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s}", "access_token", token, "expires_in", life);
}

/* ------------------------------------------------------------------------------------------
 * what "Safaricom" posts: queued in the caller's transaction, sent by duka_mpesa_sim_deliver_due
 * ---------------------------------------------------------------------------------------- */

static bool insert_delivery(duka_mpesa_sim *sim, const char *kind, const char *ref,
                            const char *url, const char *body, int64_t due_ms,
                            const char *state)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "INSERT INTO deliveries(kind, ref, url, body, due_ms, state)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, body, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, due_ms);
    sqlite3_bind_text(st, 6, state, -1, SQLITE_STATIC);
    return step_done(sim, st);
}

/* Queues a notification of kind for ref to url, due at due_ms plus the callback delay; the
 * knobs may drop it (kept as 'dropped', never sent) or post it twice. Takes body. Lock held,
 * in the caller's transaction. */
static bool queue_post(duka_mpesa_sim *sim, const sim_knobs *k, const char *kind,
                       const char *ref, const char *url, json_t *body, int64_t due_ms)
{
    char *text = dump(body);
    json_decref(body);
    if (text == NULL)
        return false;
    due_ms += k->callback_delay_ms;
    bool ok;
    if (k->callback_never > 0 && duka_sim_draw_unit(&sim->base) < k->callback_never) {
        ok = insert_delivery(sim, kind, ref, url, text, due_ms, "dropped");
    } else {
        ok = insert_delivery(sim, kind, ref, url, text, due_ms, "due");
        if (ok && k->callback_twice > 0 && duka_sim_draw_unit(&sim->base) < k->callback_twice)
            ok = insert_delivery(sim, kind, ref, url, text, due_ms + 1, "due");
    }
    free(text);
    return ok;
}

/* ------------------------------------------------------------------------------------------
 * receipts: MpesaReceiptNumber and TransID share one space of 10 characters
 * ---------------------------------------------------------------------------------------- */

/* A receipt number not used before: a letter for the year (2026: U), one for the month, then
 * 8 of [A-Z0-9], as Safaricom's look. Lock held. */
static bool new_receipt(duka_mpesa_sim *sim, int64_t ms, char out[SIM_RECEIPT_LEN + 1])
{
    time_t t = (time_t)(ms / 1000) + SIM_NAIROBI_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    int year = tm.tm_year + 1900 - 2006;
    out[0] = (char)('A' + (year < 0 ? 0 : year % 26));
    out[1] = (char)('A' + tm.tm_mon);
    for (int tries = 0; tries < 16; tries++) {
        random_alnum(sim, out + 2, SIM_RECEIPT_LEN - 2);
        sqlite3_stmt *st = duka_sim_prepare(
            sim->base.db, "SELECT 1 FROM payments WHERE receipt = ?1 UNION ALL"
                          " SELECT 1 FROM c2b_requests WHERE trans_id = ?1");
        if (st == NULL)
            return false;
        sqlite3_bind_text(st, 1, out, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return true;
        if (rc != SQLITE_ROW)
            return false;
    }
    return false;
}

static bool receipt_taken(duka_mpesa_sim *sim, const char *receipt)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT 1 FROM payments WHERE receipt = ?1 UNION ALL"
                      " SELECT 1 FROM c2b_requests WHERE trans_id = ?1");
    if (st == NULL)
        return true;
    sqlite3_bind_text(st, 1, receipt, -1, SQLITE_TRANSIENT);
    bool taken = sqlite3_step(st) != SQLITE_DONE;
    sqlite3_finalize(st);
    return taken;
}

static bool insert_payment(duka_mpesa_sim *sim, const char *receipt, const char *kind,
                           int64_t amount, const char *phone, const char *shortcode,
                           const char *reference, const char *trans_time,
                           const char *checkout_id, const char *first_name, int64_t now)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "INSERT INTO payments(receipt, kind, amount, phone, shortcode, reference,"
                      " trans_time, checkout_id, first_name, created_ms)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, receipt, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, amount);
    sqlite3_bind_text(st, 4, phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, shortcode, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, reference, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, trans_time, -1, SQLITE_TRANSIENT);
    if (checkout_id != NULL)
        sqlite3_bind_text(st, 8, checkout_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, first_name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 10, now);
    return step_done(sim, st);
}

/* ------------------------------------------------------------------------------------------
 * STK push, the customers' answers, STK query
 * ---------------------------------------------------------------------------------------- */

/* How the customer of phone answers, and after how long: scripted, or the knobs. Lock held. */
static void customer_of(duka_mpesa_sim *sim, const sim_knobs *k, const char *phone,
                        char answer[32], long *after_ms)
{
    snprintf(answer, 32, "%s", answer_defs[k->answer].name);
    *after_ms = k->answer_after_ms;
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT answer, after_ms FROM customers WHERE phone = ?1");
    if (st == NULL)
        return;
    sqlite3_bind_text(st, 1, phone, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(answer, 32, "%s", col_text(st, 0));
        *after_ms = (long)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
}

/* Whether phone shows a prompt not answered yet (a new one cannot lock the subscriber). */
static bool phone_busy(duka_mpesa_sim *sim, const char *phone)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT 1 FROM prompts WHERE phone = ?1 AND status = 'pending' AND shown");
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, phone, -1, SQLITE_TRANSIENT);
    bool busy = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return busy;
}

typedef struct stk_request {
    char shortcode[8], party_b[8], phone[SIM_PHONE_LEN + 1], party_a[SIM_PHONE_LEN + 1];
    char password[256], stamp[16], type[32];
    char callback_url[DUKA_URL_MAX + 1];
    char account_ref[DUKA_MPESA_SIM_ACCOUNT_REF_MAX + 1];
    char description[DUKA_MPESA_SIM_DESC_MAX + 1];
    int64_t amount;
} stk_request;

/* The fields of a push; NULL, or the name of the first bad one. */
static const char *check_push(const json_t *b, stk_request *r)
{
    if (!get_digits(b, "BusinessShortCode", 5, 7, r->shortcode, sizeof(r->shortcode)))
        return "BusinessShortCode";
    if (!get_text(b, "Password", sizeof(r->password) - 1, false, r->password,
                  sizeof(r->password)))
        return "Password";
    if (!get_digits(b, "Timestamp", 14, 14, r->stamp, sizeof(r->stamp)) ||
        !valid_stamp(r->stamp))
        return "Timestamp";
    if (!get_text(b, "TransactionType", sizeof(r->type) - 1, true, r->type, sizeof(r->type)) ||
        (strcmp(r->type, "CustomerPayBillOnline") != 0 &&
         strcmp(r->type, "CustomerBuyGoodsOnline") != 0))
        return "TransactionType";
    if (!get_amount(b, "Amount", &r->amount))
        return "Amount";
    if (!get_phone(b, "PartyA", r->party_a))
        return "PartyA";
    if (!get_digits(b, "PartyB", 5, 7, r->party_b, sizeof(r->party_b)))
        return "PartyB";
    if (!get_phone(b, "PhoneNumber", r->phone))
        return "PhoneNumber";
    if (!get_url(b, "CallBackURL", r->callback_url, sizeof(r->callback_url)))
        return "CallBackURL";
    if (!get_text(b, "AccountReference", DUKA_MPESA_SIM_ACCOUNT_REF_MAX, false, r->account_ref,
                  sizeof(r->account_ref)))
        return "AccountReference";
    if (!get_text(b, "TransactionDesc", DUKA_MPESA_SIM_DESC_MAX, false, r->description,
                  sizeof(r->description)))
        return "TransactionDesc";
    return NULL;
}

/* Records an accepted push (lock held, one transaction): the prompt reaches the phone unless
 * another still shows there. */
static bool record_push(duka_mpesa_sim *sim, const sim_knobs *k, const stk_request *r,
                        bool held, char checkout_id[SIM_ID_MAX], char merchant_id[SIM_ID_MAX])
{
    int64_t now = now_ms(sim);
    char answer[32];
    long after = 0;
    bool shown = !phone_busy(sim, r->phone);
    if (shown) {
        customer_of(sim, k, r->phone, answer, &after);
        if (strcmp(answer, answer_defs[DUKA_MPESA_IGNORE].name) == 0 ||
            after > k->prompt_expiry_ms) {
            snprintf(answer, sizeof(answer), "%s", answer_defs[DUKA_MPESA_IGNORE].name);
            after = k->prompt_expiry_ms;
        }
    } else {
        snprintf(answer, sizeof(answer), "%s", LOCKED_ANSWER);
    }
    random_request_id(sim, merchant_id);
    char day_first[15];
    nairobi_stamp(now, true, day_first);
    int64_t next = duka_sim_scalar_int(sim->base.db, "SELECT coalesce(max(id), 0) + 1 FROM prompts",
                                       -1);
    if (next < 0)
        return false;
    snprintf(checkout_id, SIM_ID_MAX, "ws_CO_%s%03d%06" PRId64, day_first, (int)(now % 1000),
             next % 1000000);
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db,
        "INSERT INTO prompts(id, checkout_id, merchant_id, shortcode, party_b, phone, amount,"
        " account_ref, description, transaction_type, callback_url, requested_ms, answer,"
        " answer_due_ms, shown, reply_held)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, next);
    sqlite3_bind_text(st, 2, checkout_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, merchant_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->shortcode, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->party_b, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, r->phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, r->amount);
    sqlite3_bind_text(st, 8, r->account_ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, r->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, r->type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 11, r->callback_url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 12, now);
    sqlite3_bind_text(st, 13, answer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 14, now + after);
    sqlite3_bind_int(st, 15, shown);
    sqlite3_bind_int(st, 16, held);
    if (!step_done(sim, st))
        return false;
    duka_log(DUKA_LOG_INFO, "sim", "STK push %s: KES %" PRId64 " to %s (%s), %s%s", checkout_id,
             r->amount, r->phone, r->account_ref, shown ? "answer " : "not shown: ",
             shown ? answer : "another prompt shows");
    return true;
}

static void route_stk_push(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    sim_knobs k;
    json_t *body = api_request(sim, ex, &k);
    if (body == NULL)
        return;
    stk_request r;
    memset(&r, 0, sizeof(r));
    const char *bad = check_push(body, &r);
    json_decref(body);
    if (bad != NULL) {
        bad_request(sim, ex, bad);
        return;
    }
    if (!password_matches(sim, r.shortcode, r.password, r.stamp)) {
        daraja_error(sim, ex, 500, "500.001.1001", "Wrong credentials");
        return;
    }
    if (duka_sim_draw(&sim->base, k.fail_rate)) {
        spike_arrest(sim, ex);
        return;
    }
    bool held = duka_sim_draw(&sim->base, k.timeout_after_accept);
    char checkout_id[SIM_ID_MAX], merchant_id[SIM_ID_MAX];
    pthread_mutex_lock(&sim->base.lock);
    bool ok = begin(sim);
    ok = commit(sim, ok && record_push(sim, &k, &r, held, checkout_id, merchant_id));
    pthread_mutex_unlock(&sim->base.lock);
    if (!ok) {
        state_failed(sim, ex);
        return;
    }
    if (held) {
        duka_log(DUKA_LOG_INFO, "sim", "%s: the prompt went out; holding the reply",
                 checkout_id);
        duka_sim_hold_reply(&sim->base, ex, DUKA_MPESA_SIM_HOLD_MS);
    }
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s, s:s, s:s, s:s}", "MerchantRequestID", merchant_id,
                          "CheckoutRequestID", checkout_id, "ResponseCode", "0",
                          "ResponseDescription", "Success. Request accepted for processing",
                          "CustomerMessage", "Success. Request accepted for processing");
}

/* The callback of an answered prompt, as Safaricom posts it (no AccountReference). */
static json_t *stk_callback_body(const char *merchant_id, const char *checkout_id, int code,
                                 const char *desc, const char *receipt, int64_t amount,
                                 const char *stamp, const char *phone)
{
    json_t *cb = json_pack("{s:s, s:s, s:i, s:s}", "MerchantRequestID", merchant_id,
                           "CheckoutRequestID", checkout_id, "ResultCode", code, "ResultDesc",
                           desc);
    if (cb != NULL && code == 0) {
        json_t *items = json_pack(
            "[{s:s, s:f}, {s:s, s:s}, {s:s}, {s:s, s:I}, {s:s, s:I}]", "Name", "Amount", "Value",
            (double)amount, "Name", "MpesaReceiptNumber", "Value", receipt, "Name", "Balance",
            "Name", "TransactionDate", "Value", (json_int_t)strtoll(stamp, NULL, 10), "Name",
            "PhoneNumber", "Value", (json_int_t)strtoll(phone, NULL, 10));
        json_object_set_new(cb, "CallbackMetadata", json_pack("{s:o}", "Item", items));
    }
    return cb == NULL ? NULL : json_pack("{s:{s:o}}", "Body", "stkCallback", cb);
}

/* Settles one prompt whose answer is due (the row of the settle query). */
static bool settle_prompt(duka_mpesa_sim *sim, const sim_knobs *k, sqlite3_stmt *row)
{
    int64_t id = sqlite3_column_int64(row, 0);
    const char *checkout_id = col_text(row, 1), *merchant_id = col_text(row, 2);
    const char *phone = col_text(row, 3), *answer = col_text(row, 5);
    const char *callback_url = col_text(row, 6), *party_b = col_text(row, 7);
    const char *account_ref = col_text(row, 8);
    int64_t amount = sqlite3_column_int64(row, 4), due = sqlite3_column_int64(row, 9);
    int code = LOCKED_CODE;
    const char *desc = LOCKED_DESC;
    duka_mpesa_answer a;
    if (duka_mpesa_answer_parse(answer, &a)) {
        code = answer_defs[a].code;
        desc = answer_defs[a].desc;
    }
    char receipt[SIM_RECEIPT_LEN + 1] = "", stamp[15];
    nairobi_stamp(due, false, stamp);
    if (code == 0 && (!new_receipt(sim, due, receipt) ||
                      !insert_payment(sim, receipt, "stk", amount, phone, party_b, account_ref,
                                      stamp, checkout_id, "", due)))
        return false;
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "UPDATE prompts SET status = 'answered', result_code = ?2,"
                      " result_desc = ?3, receipt = ?4, answered_ms = ?5 WHERE id = ?1");
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, code);
    sqlite3_bind_text(st, 3, desc, -1, SQLITE_STATIC);
    if (code == 0)
        sqlite3_bind_text(st, 4, receipt, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, due);
    if (!step_done(sim, st))
        return false;
    json_t *cb =
        stk_callback_body(merchant_id, checkout_id, code, desc, receipt, amount, stamp, phone);
    return cb != NULL && queue_post(sim, k, "stk_callback", checkout_id, callback_url, cb, due);
}

/* Settles every prompt whose answer is due by now (lock held, in the caller's transaction). */
static bool settle_due(duka_mpesa_sim *sim, const sim_knobs *k, int64_t now)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT id, checkout_id, merchant_id, phone, amount, answer, callback_url,"
                      " party_b, account_ref, answer_due_ms FROM prompts"
                      " WHERE status = 'pending' AND answer_due_ms <= ?1"
                      " ORDER BY answer_due_ms, id LIMIT " DUKA_STRINGIFY(SIM_SETTLE_BATCH));
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, now);
    bool ok = true;
    int rc;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ok = settle_prompt(sim, k, st);
    sqlite3_finalize(st);
    return ok;
}

static void route_stk_query(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    sim_knobs k;
    json_t *body = api_request(sim, ex, &k);
    if (body == NULL)
        return;
    char shortcode[8], password[256], stamp[16], checkout_id[SIM_ID_MAX];
    const char *bad = NULL;
    if (!get_digits(body, "BusinessShortCode", 5, 7, shortcode, sizeof(shortcode)))
        bad = "BusinessShortCode";
    else if (!get_text(body, "Password", sizeof(password) - 1, false, password,
                       sizeof(password)))
        bad = "Password";
    else if (!get_digits(body, "Timestamp", 14, 14, stamp, sizeof(stamp)) || !valid_stamp(stamp))
        bad = "Timestamp";
    else if (!get_text(body, "CheckoutRequestID", SIM_ID_MAX - 1, false, checkout_id,
                       sizeof(checkout_id)))
        bad = "CheckoutRequestID";
    json_decref(body);
    if (bad != NULL) {
        bad_request(sim, ex, bad);
        return;
    }
    if (!password_matches(sim, shortcode, password, stamp)) {
        daraja_error(sim, ex, 500, "500.001.1001", "Wrong credentials");
        return;
    }
    if (duka_sim_draw(&sim->base, k.fail_rate)) {
        spike_arrest(sim, ex);
        return;
    }
    pthread_mutex_lock(&sim->base.lock);
    bool ok = begin(sim);
    ok = commit(sim, ok && settle_due(sim, &k, now_ms(sim)));
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT merchant_id, status, result_code, result_desc FROM prompts"
                      " WHERE checkout_id = ?1 AND shortcode = ?2");
    int found = -1; /* -1 state failed, 0 none, 1 pending, 2 answered */
    char merchant_id[SIM_ID_MAX] = "", desc[SIM_MSG_MAX] = "";
    int code = 0;
    if (ok && st != NULL) {
        sqlite3_bind_text(st, 1, checkout_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, shortcode, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            snprintf(merchant_id, sizeof(merchant_id), "%s", col_text(st, 0));
            found = strcmp(col_text(st, 1), "pending") == 0 ? 1 : 2;
            code = sqlite3_column_int(st, 2);
            snprintf(desc, sizeof(desc), "%s", col_text(st, 3));
        } else if (rc == SQLITE_DONE) {
            found = 0;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&sim->base.lock);
    if (found < 0) {
        state_failed(sim, ex);
    } else if (found == 0) {
        bad_request(sim, ex, "CheckoutRequestID");
    } else if (found == 1) {
        daraja_error(sim, ex, 500, "500.001.1001", "The transaction is being processed");
    } else {
        char code_text[16];
        snprintf(code_text, sizeof(code_text), "%d", code);
        ex->status = 200;
        ex->reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ResponseCode", "0",
                              "ResponseDescription",
                              "The service request has been accepted successsfully",
                              "MerchantRequestID", merchant_id, "CheckoutRequestID",
                              checkout_id, "ResultCode", code_text, "ResultDesc", desc);
    }
}

/* ------------------------------------------------------------------------------------------
 * C2B: the customer pays the till or paybill from their own phone
 * ---------------------------------------------------------------------------------------- */

static void route_c2b_register(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    sim_knobs k;
    json_t *body = api_request(sim, ex, &k);
    if (body == NULL)
        return;
    char shortcode[8], type[16], confirm[DUKA_URL_MAX + 1], validate[DUKA_URL_MAX + 1];
    const char *bad = NULL;
    if (!get_digits(body, "ShortCode", 5, 7, shortcode, sizeof(shortcode)))
        bad = "ShortCode";
    else if (!get_text(body, "ResponseType", sizeof(type) - 1, true, type, sizeof(type)) ||
             (strcasecmp(type, "Completed") != 0 && strcasecmp(type, "Cancelled") != 0))
        bad = "ResponseType";
    else if (!get_url(body, "ConfirmationURL", confirm, sizeof(confirm)))
        bad = "ConfirmationURL";
    else if (!get_url(body, "ValidationURL", validate, sizeof(validate)))
        bad = "ValidationURL";
    json_decref(body);
    if (bad != NULL) {
        bad_request(sim, ex, bad);
        return;
    }
    char id[SIM_ID_MAX];
    pthread_mutex_lock(&sim->base.lock);
    random_request_id(sim, id);
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "INSERT OR REPLACE INTO c2b_urls(shortcode, response_type,"
                      " confirmation_url, validation_url, registered_ms)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, shortcode, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, strcasecmp(type, "Completed") == 0 ? "Completed" : "Cancelled",
                          -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, confirm, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, validate, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, now_ms(sim));
    }
    bool ok = step_done(sim, st);
    pthread_mutex_unlock(&sim->base.lock);
    if (!ok) {
        state_failed(sim, ex);
        return;
    }
    duka_log(DUKA_LOG_INFO, "sim", "C2B URLs of %s: confirmation %s, validation %s (%s)",
             shortcode, confirm, validate, type);
    ex->status = 200;
    /* "OriginatorCoverstionID": Safaricom's own spelling. */
    ex->reply = json_pack("{s:s, s:s, s:s}", "OriginatorCoverstionID", id, "ResponseCode", "0",
                          "ResponseDescription", "Success");
}

typedef struct c2b_payment {
    char trans_id[SIM_RECEIPT_LEN + 1], shortcode[8], command_id[32];
    char phone[SIM_PHONE_LEN + 1], bill_ref[DUKA_MPESA_SIM_TEXT_MAX + 1];
    char first[DUKA_MPESA_SIM_TEXT_MAX + 1], middle[DUKA_MPESA_SIM_TEXT_MAX + 1];
    char last[DUKA_MPESA_SIM_TEXT_MAX + 1];
    int64_t amount;
} c2b_payment;

/* The fields of a C2B payment (Daraja's simulate names, or /_sim/c2b's); NULL or the bad one. */
static const char *check_c2b(const json_t *b, c2b_payment *p)
{
    if (!get_digits(b, "ShortCode", 5, 7, p->shortcode, sizeof(p->shortcode)))
        return "ShortCode";
    if (json_object_get(b, "CommandID") == NULL) {
        snprintf(p->command_id, sizeof(p->command_id), "CustomerPayBillOnline");
    } else if (!get_text(b, "CommandID", sizeof(p->command_id) - 1, true, p->command_id,
                         sizeof(p->command_id)) ||
               (strcmp(p->command_id, "CustomerPayBillOnline") != 0 &&
                strcmp(p->command_id, "CustomerBuyGoodsOnline") != 0)) {
        return "CommandID";
    }
    if (!get_amount(b, "Amount", &p->amount))
        return "Amount";
    if (!get_phone(b, "Msisdn", p->phone))
        return "Msisdn";
    if (!get_optional_text(b, "BillRefNumber", DUKA_MPESA_SIM_TEXT_MAX, p->bill_ref,
                           sizeof(p->bill_ref)))
        return "BillRefNumber";
    return NULL;
}

/* Queues a C2B payment (lock held): validated and confirmed by the next delivery round. */
static bool queue_c2b(duka_mpesa_sim *sim, c2b_payment *p)
{
    int64_t now = now_ms(sim);
    if (p->trans_id[0] == '\0' && !new_receipt(sim, now, p->trans_id))
        return false;
    char stamp[15];
    nairobi_stamp(now, false, stamp);
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "INSERT INTO c2b_requests(trans_id, shortcode, command_id, amount, phone,"
                      " bill_ref, first_name, middle_name, last_name, trans_time, created_ms)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    if (st == NULL)
        return false;
    sqlite3_bind_text(st, 1, p->trans_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, p->shortcode, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, p->command_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, p->amount);
    sqlite3_bind_text(st, 5, p->phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, p->bill_ref, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, p->first, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, p->middle, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, p->last, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, stamp, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 11, now);
    if (!step_done(sim, st))
        return false;
    duka_log(DUKA_LOG_INFO, "sim", "C2B %s: KES %" PRId64 " from %s to %s (%s)", p->trans_id,
             p->amount, p->phone, p->shortcode, p->bill_ref);
    return true;
}

static void route_c2b_simulate(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    sim_knobs k;
    json_t *body = api_request(sim, ex, &k);
    if (body == NULL)
        return;
    c2b_payment p;
    memset(&p, 0, sizeof(p));
    snprintf(p.first, sizeof(p.first), "John");
    snprintf(p.last, sizeof(p.last), "Doe");
    const char *bad = check_c2b(body, &p);
    json_decref(body);
    if (bad != NULL) {
        bad_request(sim, ex, bad);
        return;
    }
    char id[SIM_ID_MAX];
    pthread_mutex_lock(&sim->base.lock);
    random_request_id(sim, id);
    bool ok = begin(sim);
    ok = commit(sim, ok && queue_c2b(sim, &p));
    pthread_mutex_unlock(&sim->base.lock);
    if (!ok) {
        state_failed(sim, ex);
        return;
    }
    ex->status = 200;
    /* "OriginatorCoversationID": Safaricom's own spelling, again. */
    ex->reply = json_pack("{s:s, s:s, s:s}", "OriginatorCoversationID", id, "ResponseCode", "0",
                          "ResponseDescription", "Accept the service request successfully.");
}

/* The MSISDN as C2B notifications carry it under the msisdn knob. */
static void c2b_msisdn(long how, const char *phone, char *out, size_t n)
{
    if (how == DUKA_MPESA_MSISDN_MASKED && strlen(phone) == SIM_PHONE_LEN) {
        snprintf(out, n, "%.4s****%.3s", phone, phone + 9);
    } else if (how == DUKA_MPESA_MSISDN_SHA256) {
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, (const unsigned char *)phone, strlen(phone));
        sodium_bin2hex(out, n, h, sizeof(h));
    } else {
        snprintf(out, n, "%s", phone);
    }
}

/* A queued C2B payment as the delivery round reads it, with its shortcode's URLs. */
typedef struct c2b_row {
    c2b_payment p;
    char trans_time[15];
    int64_t id;
    bool registered, completes_alone;
    char validation_url[DUKA_URL_MAX + 1], confirmation_url[DUKA_URL_MAX + 1];
} c2b_row;

/* The body of a validation or confirmation; balance < 0: none yet (validation). */
static json_t *c2b_body(const sim_knobs *k, const c2b_row *r, int64_t balance)
{
    char amount[32], bal[32] = "", msisdn[2 * crypto_hash_sha256_BYTES + 1];
    snprintf(amount, sizeof(amount), "%" PRId64 ".00", r->p.amount);
    if (balance >= 0)
        snprintf(bal, sizeof(bal), "%" PRId64 ".00", balance);
    c2b_msisdn(k->msisdn, r->p.phone, msisdn, sizeof(msisdn));
    bool buy_goods = strcmp(r->p.command_id, "CustomerBuyGoodsOnline") == 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                     "TransactionType", buy_goods ? "Buy Goods" : "Pay Bill", "TransID",
                     r->p.trans_id, "TransTime", r->trans_time, "TransAmount", amount,
                     "BusinessShortCode", r->p.shortcode, "BillRefNumber", r->p.bill_ref,
                     "InvoiceNumber", "", "OrgAccountBalance", bal, "ThirdPartyTransID", "",
                     "MSISDN", msisdn, "FirstName", r->p.first, "MiddleName", r->p.middle,
                     "LastName", r->p.last);
}

/* ------------------------------------------------------------------------------------------
 * transaction status: the answer goes to ResultURL
 * ---------------------------------------------------------------------------------------- */

typedef struct status_request {
    char initiator[DUKA_MPESA_SIM_TEXT_MAX + 1], command[32];
    char credential[DUKA_MPESA_SIM_CREDENTIAL_MAX + 1];
    char trans_id[SIM_ID_MAX], party_a[16], id_type[4];
    char result_url[DUKA_URL_MAX + 1], timeout_url[DUKA_URL_MAX + 1];
    char remarks[DUKA_MPESA_SIM_TEXT_MAX + 1], occasion[DUKA_MPESA_SIM_TEXT_MAX + 1];
} status_request;

static const char *check_status(const json_t *b, status_request *r)
{
    if (!get_text(b, "Initiator", DUKA_MPESA_SIM_TEXT_MAX, false, r->initiator,
                  sizeof(r->initiator)))
        return "Initiator";
    if (!get_text(b, "SecurityCredential", DUKA_MPESA_SIM_CREDENTIAL_MAX, false, r->credential,
                  sizeof(r->credential)))
        return "SecurityCredential";
    if (!get_text(b, "CommandID", sizeof(r->command) - 1, true, r->command,
                  sizeof(r->command)) ||
        strcmp(r->command, "TransactionStatusQuery") != 0)
        return "CommandID";
    if (!get_text(b, "TransactionID", SIM_ID_MAX - 1, false, r->trans_id, sizeof(r->trans_id)))
        return "TransactionID";
    if (!get_digits(b, "PartyA", 5, SIM_PHONE_LEN, r->party_a, sizeof(r->party_a)))
        return "PartyA";
    if (!get_digits(b, "IdentifierType", 1, 1, r->id_type, sizeof(r->id_type)) ||
        (r->id_type[0] != '1' && r->id_type[0] != '2' && r->id_type[0] != '4'))
        return "IdentifierType";
    if (!get_url(b, "ResultURL", r->result_url, sizeof(r->result_url)))
        return "ResultURL";
    if (!get_url(b, "QueueTimeOutURL", r->timeout_url, sizeof(r->timeout_url)))
        return "QueueTimeOutURL";
    if (!get_optional_text(b, "Remarks", DUKA_MPESA_SIM_TEXT_MAX, r->remarks,
                           sizeof(r->remarks)))
        return "Remarks";
    if (!get_optional_text(b, "Occasion", DUKA_MPESA_SIM_TEXT_MAX, r->occasion,
                           sizeof(r->occasion)))
        return "Occasion";
    return NULL;
}

static json_t *result_parameter(const char *key, json_t *value)
{
    return json_pack("{s:s, s:o}", "Key", key, "Value", value);
}

/* The Result of a status query (lock held): the payment's parameters when the receipt was
 * credited to PartyA (a shortcode; or paid by PartyA, a phone), else "does not exist". */
static json_t *status_result(duka_mpesa_sim *sim, const status_request *r,
                             const char *originator, const char *conversation)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT amount, phone, shortcode, kind, trans_time, first_name"
                      " FROM payments WHERE receipt = ?1 AND (shortcode = ?2 OR phone = ?2)");
    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, r->trans_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, r->party_a, -1, SQLITE_TRANSIENT);
    json_t *result;
    if (sqlite3_step(st) == SQLITE_ROW) {
        char debit[SIM_MSG_MAX], credit[SIM_MSG_MAX];
        snprintf(debit, sizeof(debit), "%s - %s", col_text(st, 1),
                 col_text(st, 5)[0] ? col_text(st, 5) : "John Doe");
        snprintf(credit, sizeof(credit), "%s - duka simulated shop", col_text(st, 2));
        json_int_t when = (json_int_t)strtoll(col_text(st, 4), NULL, 10);
        bool stk = strcmp(col_text(st, 3), "stk") == 0;
        json_t *params = json_pack(
            "[o, o, o, o, o, o, o, o, o, o, o, o]",
            result_parameter("DebitPartyName", json_string(debit)),
            result_parameter("CreditPartyName", json_string(credit)),
            result_parameter("OriginatorConversationID", json_string(originator)),
            result_parameter("InitiatedTime", json_integer(when)),
            result_parameter("DebitAccountType", json_string("MMF Account For Customer")),
            result_parameter("DebitPartyCharges", json_string("")),
            result_parameter("TransactionReason", json_string("")),
            result_parameter("ReasonType",
                             json_string(stk ? "Pay Merchant via STK" : "Pay Bill Online")),
            result_parameter("TransactionStatus", json_string("Completed")),
            result_parameter("FinalisedTime", json_integer(when)),
            result_parameter("Amount", json_real((double)sqlite3_column_int64(st, 0))),
            result_parameter("ReceiptNo", json_string(r->trans_id)));
        result = json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:{s:o}}", "ResultType", 0,
                           "ResultCode", 0, "ResultDesc",
                           "The service request is processed successfully.",
                           "OriginatorConversationID", originator, "ConversationID",
                           conversation, "TransactionID", r->trans_id, "ResultParameters",
                           "ResultParameter", params);
    } else {
        /* A guess: public integrations show this sentence; the code is marked so in the docs. */
        result = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "ResultType", 0, "ResultCode",
                           "R000001", "ResultDesc",
                           "The transaction receipt number does not exist.",
                           "OriginatorConversationID", originator, "ConversationID",
                           conversation, "TransactionID", r->trans_id);
    }
    sqlite3_finalize(st);
    if (result != NULL)
        json_object_set_new(result, "ReferenceData",
                            json_pack("{s:{s:s, s:s}}", "ReferenceItem", "Key", "Occasion",
                                      "Value", r->occasion));
    return result == NULL ? NULL : json_pack("{s:o}", "Result", result);
}

static void route_status(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    sim_knobs k;
    json_t *body = api_request(sim, ex, &k);
    if (body == NULL)
        return;
    status_request *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        json_decref(body);
        state_failed(sim, ex);
        return;
    }
    const char *bad = check_status(body, r);
    json_decref(body);
    if (bad != NULL) {
        bad_request(sim, ex, bad);
        free(r);
        return;
    }
    char originator[SIM_ID_MAX], conversation[SIM_ID_MAX], day[15], tail[21];
    pthread_mutex_lock(&sim->base.lock);
    int64_t now = now_ms(sim);
    random_request_id(sim, originator);
    nairobi_stamp(now, false, day);
    random_alnum(sim, tail, 20);
    for (char *c = tail; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    snprintf(conversation, sizeof(conversation), "AG_%.8s_%s", day, tail);
    bool ok = begin(sim);
    json_t *result = ok ? status_result(sim, r, originator, conversation) : NULL;
    ok = commit(sim, result != NULL && queue_post(sim, &k, "status_result", r->trans_id,
                                                  r->result_url, result, now));
    pthread_mutex_unlock(&sim->base.lock);
    free(r);
    if (!ok) {
        state_failed(sim, ex);
        return;
    }
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s, s:s, s:s}", "OriginatorConversationID", originator,
                          "ConversationID", conversation, "ResponseCode", "0",
                          "ResponseDescription", "Accept the service request successfully.");
}

/* ------------------------------------------------------------------------------------------
 * deliveries: one round of the simulated world
 * ---------------------------------------------------------------------------------------- */

typedef struct post_job {
    int64_t id;
    char *url, *body;
} post_job;

/* Posts body to url; the HTTP status (0: none came) and, on a transport error, its sentence.
 * *reply_body (may be NULL) gets the reply's body. */
static long post(duka_mpesa_sim *sim, const char *url, const char *body, char **reply_body,
                 char *error, size_t error_n)
{
    duka_http_options o = {.timeout_ms = DUKA_MPESA_SIM_POST_TIMEOUT_MS};
    duka_http_reply reply = {0};
    duka_err err = {0};
    duka_rc rc = sim->transport
                     ? sim->transport(sim->transport_ctx, "POST", url, NULL, body, strlen(body),
                                      &o, &reply, &err)
                     : duka_http_send("POST", url, NULL, body, strlen(body), &o, &reply, &err);
    long status = rc == DUKA_OK ? reply.status : 0;
    snprintf(error, error_n, "%s", rc == DUKA_OK ? "" : err.msg);
    if (reply_body != NULL) {
        *reply_body = reply.body;
        reply.body = NULL;
    }
    duka_http_reply_free(&reply);
    return status;
}

/* Whether a validation reply accepts: {"ResultCode": "0"} or 0. */
static bool validation_accepts(const char *reply)
{
    json_t *v = reply ? json_loads(reply, 0, NULL) : NULL;
    const json_t *code = json_object_get(v, "ResultCode");
    bool yes = (json_is_string(code) && strcmp(json_string_value(code), "0") == 0) ||
               (json_is_integer(code) && json_integer_value(code) == 0);
    json_decref(v);
    return yes;
}

static bool record_sent(duka_mpesa_sim *sim, int64_t id, long status, const char *error)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "UPDATE deliveries SET state = ?2, http_status = ?3, sent_ms = ?4,"
                      " error = ?5 WHERE id = ?1");
    if (st == NULL)
        return false;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status >= 200 && status < 300 ? "sent" : "failed", -1,
                      SQLITE_STATIC);
    if (status > 0)
        sqlite3_bind_int64(st, 3, status);
    sqlite3_bind_int64(st, 4, now_ms(sim));
    if (error[0] != '\0')
        sqlite3_bind_text(st, 5, error, -1, SQLITE_TRANSIENT);
    return step_done(sim, st);
}

/* Reads the oldest queued C2B payment (lock held); false when none. */
static bool next_c2b(duka_mpesa_sim *sim, c2b_row *r)
{
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db,
        "SELECT r.trans_id, r.shortcode, r.command_id, r.amount, r.phone, r.bill_ref,"
        " r.first_name, r.middle_name, r.last_name, r.trans_time, r.id, u.response_type,"
        " u.validation_url, u.confirmation_url FROM c2b_requests r"
        " LEFT JOIN c2b_urls u ON u.shortcode = r.shortcode"
        " WHERE r.state = 'queued' ORDER BY r.id LIMIT 1");
    bool found = st != NULL && sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        memset(r, 0, sizeof(*r));
        snprintf(r->p.trans_id, sizeof(r->p.trans_id), "%s", col_text(st, 0));
        snprintf(r->p.shortcode, sizeof(r->p.shortcode), "%s", col_text(st, 1));
        snprintf(r->p.command_id, sizeof(r->p.command_id), "%s", col_text(st, 2));
        r->p.amount = sqlite3_column_int64(st, 3);
        snprintf(r->p.phone, sizeof(r->p.phone), "%s", col_text(st, 4));
        snprintf(r->p.bill_ref, sizeof(r->p.bill_ref), "%s", col_text(st, 5));
        snprintf(r->p.first, sizeof(r->p.first), "%s", col_text(st, 6));
        snprintf(r->p.middle, sizeof(r->p.middle), "%s", col_text(st, 7));
        snprintf(r->p.last, sizeof(r->p.last), "%s", col_text(st, 8));
        snprintf(r->trans_time, sizeof(r->trans_time), "%s", col_text(st, 9));
        r->id = sqlite3_column_int64(st, 10);
        r->registered = sqlite3_column_type(st, 11) != SQLITE_NULL;
        r->completes_alone = !r->registered || strcmp(col_text(st, 11), "Completed") == 0;
        snprintf(r->validation_url, sizeof(r->validation_url), "%s", col_text(st, 12));
        snprintf(r->confirmation_url, sizeof(r->confirmation_url), "%s", col_text(st, 13));
    }
    sqlite3_finalize(st);
    return found;
}

/* Completes (or rejects) a validated C2B payment, in one transaction (lock held). */
static bool finish_c2b(duka_mpesa_sim *sim, const sim_knobs *k, const c2b_row *r, bool accept,
                       const char *vtext, long vstatus, const char *verror)
{
    int64_t now = now_ms(sim);
    bool ok = begin(sim);
    if (ok && vtext != NULL) {
        ok = insert_delivery(sim, "c2b_validation", r->p.trans_id, r->validation_url, vtext,
                             now, "due") &&
             record_sent(sim, sqlite3_last_insert_rowid(sim->base.db), vstatus, verror);
    }
    if (ok && accept)
        ok = insert_payment(sim, r->p.trans_id, "c2b", r->p.amount, r->p.phone, r->p.shortcode,
                            r->p.bill_ref, r->trans_time, NULL, r->p.first, now);
    if (ok && accept && r->registered) {
        int64_t balance = 0;
        sqlite3_stmt *b = duka_sim_prepare(
            sim->base.db, "SELECT coalesce(sum(amount), 0) FROM payments WHERE shortcode = ?1");
        if (b != NULL) {
            sqlite3_bind_text(b, 1, r->p.shortcode, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(b) == SQLITE_ROW)
                balance = sqlite3_column_int64(b, 0);
            sqlite3_finalize(b);
        }
        json_t *cbody = c2b_body(k, r, balance);
        ok = cbody != NULL && queue_post(sim, k, "c2b_confirmation", r->p.trans_id,
                                         r->confirmation_url, cbody, now);
    }
    sqlite3_stmt *st = ok ? duka_sim_prepare(sim->base.db,
                                             "UPDATE c2b_requests SET state = ?2 WHERE id = ?1")
                          : NULL;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_text(st, 2, accept ? "completed" : "rejected", -1, SQLITE_STATIC);
    }
    ok = commit(sim, ok && step_done(sim, st));
    duka_log(DUKA_LOG_INFO, "sim", "C2B %s %s", r->p.trans_id,
             !ok ? "failed (state file)" : accept ? "completed" : "rejected by validation");
    return ok;
}

/* Validates and completes (or rejects) the oldest queued C2B payment; false when none. The
 * validation request goes outside the lock; without an answer the registered ResponseType
 * decides (Completed: the payment goes through). */
static bool c2b_round(duka_mpesa_sim *sim, const sim_knobs *k)
{
    c2b_row *r = malloc(sizeof(*r));
    if (r == NULL)
        return false;
    pthread_mutex_lock(&sim->base.lock);
    bool found = next_c2b(sim, r);
    pthread_mutex_unlock(&sim->base.lock);
    if (!found) {
        free(r);
        return false;
    }
    bool accept = r->completes_alone;
    long vstatus = 0;
    char verror[DUKA_ERR_MSG_MAX] = "";
    json_t *vbody = r->registered ? c2b_body(k, r, -1) : NULL;
    char *vtext = vbody ? dump(vbody) : NULL;
    json_decref(vbody);
    if (vtext != NULL) {
        char *reply = NULL;
        vstatus = post(sim, r->validation_url, vtext, &reply, verror, sizeof(verror));
        if (vstatus >= 200 && vstatus < 300)
            accept = validation_accepts(reply);
        free(reply);
    }
    pthread_mutex_lock(&sim->base.lock);
    bool ok = finish_c2b(sim, k, r, accept, vtext, vstatus, verror);
    pthread_mutex_unlock(&sim->base.lock);
    free(vtext);
    free(r);
    return ok;
}

int duka_mpesa_sim_deliver_due(duka_mpesa_sim *sim)
{
    sim_knobs k = knobs_now(sim);
    int made = 0;
    /* The customers' answers due by now, then the C2B payments waiting (each validated). */
    pthread_mutex_lock(&sim->base.lock);
    bool ok = begin(sim);
    commit(sim, ok && settle_due(sim, &k, now_ms(sim)));
    pthread_mutex_unlock(&sim->base.lock);
    for (int i = 0; i < DUKA_MPESA_SIM_DELIVER_BATCH && !duka_sim_stopping(&sim->base); i++) {
        if (!c2b_round(sim, &k))
            break;
        made++;
    }

    post_job jobs[DUKA_MPESA_SIM_DELIVER_BATCH];
    int n = 0;
    pthread_mutex_lock(&sim->base.lock);
    sqlite3_stmt *st = duka_sim_prepare(
        sim->base.db, "SELECT id, url, body FROM deliveries WHERE state = 'due' AND due_ms <= ?1"
                      " ORDER BY due_ms, id LIMIT " DUKA_STRINGIFY(DUKA_MPESA_SIM_DELIVER_BATCH));
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now_ms(sim));
        while (n < DUKA_MPESA_SIM_DELIVER_BATCH && sqlite3_step(st) == SQLITE_ROW) {
            jobs[n].id = sqlite3_column_int64(st, 0);
            jobs[n].url = strdup(col_text(st, 1));
            jobs[n].body = strdup(col_text(st, 2));
            if (jobs[n].url == NULL || jobs[n].body == NULL) {
                free(jobs[n].url);
                free(jobs[n].body);
                break;
            }
            n++;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sim->base.lock);

    for (int i = 0; i < n; i++) {
        char error[DUKA_ERR_MSG_MAX] = "";
        long status = duka_sim_stopping(&sim->base)
                          ? -1
                          : post(sim, jobs[i].url, jobs[i].body, NULL, error, sizeof(error));
        if (status >= 0) {
            /* Stopping leaves the rest due: a restarted simulator sends them. */
            pthread_mutex_lock(&sim->base.lock);
            record_sent(sim, jobs[i].id, status, error);
            pthread_mutex_unlock(&sim->base.lock);
            made++;
        }
        free(jobs[i].url);
        free(jobs[i].body);
    }
    return made;
}

/* ------------------------------------------------------------------------------------------
 * the control endpoints (loopback only)
 * ---------------------------------------------------------------------------------------- */

static json_t *knobs_json(duka_mpesa_sim *sim)
{
    sim_knobs k = knobs_now(sim);
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < KNOB_COUNT; i++) {
        const struct knob_def *d = &knob_defs[i];
        const char *p = (const char *)&k + d->off;
        json_t *v = NULL;
        switch (d->type) {
        case KNOB_BOOL: v = json_boolean(*(const bool *)p); break;
        case KNOB_SHARE: v = json_real(*(const double *)p); break;
        case KNOB_WHOLE: v = json_integer(*(const long *)p); break;
        case KNOB_ANSWER: v = json_string(answer_defs[*(const long *)p].name); break;
        case KNOB_MSISDN: v = json_string(msisdn_names[*(const long *)p]); break;
        }
        json_object_set_new(o, d->name, v);
    }
    pthread_mutex_lock(&sim->base.lock);
    long held = sim->base.held;
    pthread_mutex_unlock(&sim->base.lock);
    if (o != NULL) {
        json_object_set_new(o, "outage_now", json_boolean(outage_on(sim, &k)));
        json_object_set_new(o, "held_now", json_integer(held));
    }
    return o;
}

static void route_faults_get(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)ctx;
    ex->status = 200;
    ex->reply = knobs_json(app);
}

/* Sets one knob of k from v; false with a 400 set. */
static bool set_knob(duka_http_exchange *ex, const struct knob_def *d, const json_t *v,
                     sim_knobs *k)
{
    char *p = (char *)k + d->off;
    double n = 0;
    duka_mpesa_answer a;
    duka_mpesa_msisdn m;
    switch (d->type) {
    case KNOB_BOOL:
        if (!json_is_boolean(v))
            break;
        *(bool *)p = json_is_true(v);
        return true;
    case KNOB_SHARE:
        if (!duka_sim_knob_number(ex, d->name, v, 0, 1, false, &n))
            return false;
        *(double *)p = n;
        return true;
    case KNOB_WHOLE:
        if (!duka_sim_knob_number(ex, d->name, v, 0, (double)d->hi, true, &n))
            return false;
        *(long *)p = (long)n;
        return true;
    case KNOB_ANSWER:
        if (!json_is_string(v) || !duka_mpesa_answer_parse(json_string_value(v), &a))
            break;
        *(long *)p = a;
        return true;
    case KNOB_MSISDN:
        if (!json_is_string(v) || !duka_mpesa_msisdn_parse(json_string_value(v), &m))
            break;
        *(long *)p = m;
        return true;
    }
    duka_http_error(ex, 400, "invalid_knob", "%s must be %s", d->name,
                    d->type == KNOB_BOOL     ? "true or false"
                    : d->type == KNOB_ANSWER ? "one of pay, cancel, wrong_pin, insufficient, "
                                               "unreachable, ignore"
                                             : "one of plain, masked, sha256");
    return false;
}

/* POST /_sim/faults: changes the knobs the body names, all or none; answers the knobs. */
static void route_faults_post(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    json_t *body = duka_sim_body_object(ex);
    if (body == NULL)
        return;
    sim_knobs k = knobs_now(sim);
    bool reschedule = false;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        const struct knob_def *d = NULL;
        for (size_t i = 0; i < KNOB_COUNT && d == NULL; i++)
            if (strcmp(key, knob_defs[i].name) == 0)
                d = &knob_defs[i];
        if (d == NULL) {
            char names[400] = "";
            for (size_t i = 0; i < KNOB_COUNT; i++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                         i ? ", " : "", knob_defs[i].name);
            duka_http_error(ex, 400, "unknown_knob", "unknown knob '%.60s' (%s)", key, names);
            json_decref(body);
            return;
        }
        if (!set_knob(ex, d, v, &k)) {
            json_decref(body);
            return;
        }
        if (strncmp(key, "outage", 6) == 0) {
            reschedule = true;
            /* Off also ends a schedule: "no outage now" means none. */
            if (strcmp(key, "outage") == 0 && !k.outage_forced)
                k.outage_every_s = k.outage_for_s = 0;
        }
    }
    json_decref(body);
    if (k.outage_every_s > 0 && k.outage_for_s >= k.outage_every_s) {
        duka_http_error(ex, 400, "invalid_knob", "outage_for_s must be less than outage_every_s");
        return;
    }
    pthread_mutex_lock(&sim->base.lock);
    sim->knobs = k;
    pthread_mutex_unlock(&sim->base.lock);
    if (reschedule)
        duka_sim_outage_reschedule(&sim->base);
    duka_log(DUKA_LOG_INFO, "sim", "knobs changed: %.*s", (int)ex->body_len, ex->body);
    ex->status = 200;
    ex->reply = knobs_json(sim);
}

/* The rows of st as an array of objects named by names (NULL-terminated; a column that is
 * NULL gives null, an integer column an integer). At most limit rows; *truncated when more. */
static json_t *rows_json(sqlite3_stmt *st, const char *const *names, int64_t limit,
                         bool *truncated)
{
    json_t *list = json_array();
    int rc;
    *truncated = false;
    while (list != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)json_array_size(list) >= limit) {
            *truncated = true;
            break;
        }
        json_t *o = json_object();
        for (int i = 0; o != NULL && names[i] != NULL; i++) {
            json_t *v;
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_NULL: v = json_null(); break;
            case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
            default: v = json_string(col_text(st, i)); break;
            }
            if (names[i][0] == '?') /* a flag stored as 0/1 */
                json_object_set_new(o, names[i] + 1, json_boolean(sqlite3_column_int(st, i)));
            else
                json_object_set_new(o, names[i], v);
            if (names[i][0] == '?')
                json_decref(v);
        }
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    if (list != NULL && !*truncated && rc != SQLITE_DONE) {
        json_decref(list);
        return NULL;
    }
    return list;
}

/* Answers {"<what>": [rows], "truncated"} for sql with up to two text filters from the query
 * string (bound as ?1, ?2; NULL: no filter). Settles due prompts first, so a listing is as of
 * now. */
static void list_reply(duka_mpesa_sim *sim, duka_http_exchange *ex, const char *what,
                       const char *sql, const char *const *names, const char *f1,
                       const char *f2)
{
    int64_t limit = DUKA_MPESA_SIM_LIST_MAX;
    const char *l = duka_http_query(ex, "limit");
    if (l != NULL) {
        char *end = NULL;
        long long n = strtoll(l, &end, 10);
        if (*end != '\0' || n < 1 || n > DUKA_MPESA_SIM_LIST_MAX) {
            duka_http_error(ex, 400, "invalid_query", "limit must be 1..%d",
                            DUKA_MPESA_SIM_LIST_MAX);
            return;
        }
        limit = n;
    }
    sim_knobs k = knobs_now(sim);
    pthread_mutex_lock(&sim->base.lock);
    bool ok = begin(sim);
    commit(sim, ok && settle_due(sim, &k, now_ms(sim)));
    sqlite3_stmt *st = duka_sim_prepare(sim->base.db, sql);
    json_t *list = NULL;
    bool truncated = false;
    if (st != NULL) {
        if (f1 != NULL)
            sqlite3_bind_text(st, 1, f1, -1, SQLITE_TRANSIENT);
        if (f2 != NULL)
            sqlite3_bind_text(st, 2, f2, -1, SQLITE_TRANSIENT);
        list = rows_json(st, names, limit, &truncated);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sim->base.lock);
    if (list == NULL) {
        duka_http_error(ex, 500, "state", "reading the simulator's state failed");
        return;
    }
    ex->status = 200;
    ex->reply = json_pack("{s:o, s:b}", what, list, "truncated", truncated);
}

static void route_prompts(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)ctx;
    static const char *const names[] = {
        "CheckoutRequestID", "MerchantRequestID", "BusinessShortCode", "PartyB",
        "PhoneNumber", "Amount", "AccountReference", "TransactionDesc", "TransactionType",
        "status", "answer", "ResultCode", "ResultDesc", "MpesaReceiptNumber", "?shown",
        "?reply_held", "requested_ms", "answer_due_ms", "answered_ms", NULL};
    list_reply(app, ex, "prompts",
               "SELECT checkout_id, merchant_id, shortcode, party_b, phone, amount, account_ref,"
               " description, transaction_type, status, answer, result_code, result_desc,"
               " receipt, shown, reply_held, requested_ms, answer_due_ms, answered_ms"
               " FROM prompts WHERE (?1 IS NULL OR phone = ?1)"
               " AND (?2 IS NULL OR account_ref = ?2) ORDER BY id",
               names, duka_http_query(ex, "phone"), duka_http_query(ex, "account_reference"));
}

static void route_payments(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)ctx;
    static const char *const names[] = {"receipt", "kind", "amount", "phone", "shortcode",
                                        "reference", "time", "checkout_request_id",
                                        "created_ms", NULL};
    list_reply(app, ex, "payments",
               "SELECT receipt, kind, amount, phone, shortcode, reference, trans_time,"
               " checkout_id, created_ms FROM payments WHERE (?1 IS NULL OR phone = ?1)"
               " AND (?2 IS NULL OR shortcode = ?2) ORDER BY created_ms, receipt",
               names, duka_http_query(ex, "phone"), duka_http_query(ex, "shortcode"));
}

static void route_callbacks(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)ctx;
    static const char *const names[] = {"id", "kind", "ref", "url", "state", "http_status",
                                        "due_ms", "sent_ms", "error", "body", NULL};
    list_reply(app, ex, "callbacks",
               "SELECT id, kind, ref, url, state, http_status, due_ms, sent_ms, error, body"
               " FROM deliveries WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR ref = ?2)"
               " ORDER BY id",
               names, duka_http_query(ex, "kind"), duka_http_query(ex, "ref"));
}

static void route_customers_get(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)ctx;
    static const char *const names[] = {"phone", "answer", "after_ms", NULL};
    list_reply(app, ex, "customers",
               "SELECT phone, answer, after_ms FROM customers WHERE (?1 IS NULL OR phone = ?1)"
               " AND ?2 IS NULL ORDER BY phone",
               names, duka_http_query(ex, "phone"), NULL);
}

/* POST /_sim/customers {"phone","answer"[,"after_ms"]}: how that phone's owner answers from
 * now on ("default": as the knobs say). */
static void route_customers_post(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    json_t *body = duka_sim_body_object(ex);
    if (body == NULL)
        return;
    char phone[SIM_PHONE_LEN + 1];
    const json_t *answer = json_object_get(body, "answer"), *after = json_object_get(body, "after_ms");
    duka_mpesa_answer a = DUKA_MPESA_PAY;
    bool forget = json_is_string(answer) && strcmp(json_string_value(answer), "default") == 0;
    double ms = (double)knobs_now(sim).answer_after_ms;
    if (!get_phone(body, "phone", phone)) {
        duka_http_error(ex, 400, "invalid_customer", "phone must be 12 digits 2547… or 2541…");
    } else if (!forget && (!json_is_string(answer) ||
                           !duka_mpesa_answer_parse(json_string_value(answer), &a))) {
        duka_http_error(ex, 400, "invalid_customer",
                        "answer must be one of pay, cancel, wrong_pin, insufficient, "
                        "unreachable, ignore, default");
    } else if (after == NULL ||
               duka_sim_knob_number(ex, "after_ms", after, 0, DUKA_MPESA_SIM_ANSWER_MS_MAX,
                                    true, &ms)) {
        pthread_mutex_lock(&sim->base.lock);
        sqlite3_stmt *st = duka_sim_prepare(
            sim->base.db, forget ? "DELETE FROM customers WHERE phone = ?1"
                                 : "INSERT OR REPLACE INTO customers(phone, answer, after_ms)"
                                   " VALUES (?1, ?2, ?3)");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, phone, -1, SQLITE_TRANSIENT);
            if (!forget) {
                sqlite3_bind_text(st, 2, answer_defs[a].name, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, (int64_t)ms);
            }
        }
        bool ok = step_done(sim, st);
        pthread_mutex_unlock(&sim->base.lock);
        if (!ok) {
            duka_http_error(ex, 500, "state", "writing the simulator's state failed");
        } else {
            ex->status = 200;
            ex->reply = forget ? json_pack("{s:s, s:s}", "phone", phone, "answer", "default")
                               : json_pack("{s:s, s:s, s:I}", "phone", phone, "answer",
                                           answer_defs[a].name, "after_ms", (json_int_t)ms);
        }
    }
    json_decref(body);
}

/* POST /_sim/c2b: a customer pays the shortcode from their own phone, with the TransID the
 * test chooses (or a new one), and names. */
static void route_c2b_pay(void *app, void *ctx, duka_http_exchange *ex)
{
    duka_mpesa_sim *sim = app;
    (void)ctx;
    json_t *body = duka_sim_body_object(ex);
    if (body == NULL)
        return;
    c2b_payment p;
    memset(&p, 0, sizeof(p));
    const char *bad = check_c2b(body, &p);
    const json_t *id = json_object_get(body, "TransID");
    if (bad == NULL && id != NULL &&
        (!get_text(body, "TransID", SIM_RECEIPT_LEN, false, p.trans_id, sizeof(p.trans_id)) ||
         strlen(p.trans_id) != SIM_RECEIPT_LEN ||
         strspn(p.trans_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != SIM_RECEIPT_LEN))
        bad = "TransID (10 of A-Z 0-9)";
    if (bad == NULL && (!get_optional_text(body, "FirstName", DUKA_MPESA_SIM_TEXT_MAX, p.first,
                                           sizeof(p.first)) ||
                        !get_optional_text(body, "MiddleName", DUKA_MPESA_SIM_TEXT_MAX,
                                           p.middle, sizeof(p.middle)) ||
                        !get_optional_text(body, "LastName", DUKA_MPESA_SIM_TEXT_MAX, p.last,
                                           sizeof(p.last))))
        bad = "FirstName, MiddleName or LastName";
    json_decref(body);
    if (bad != NULL) {
        duka_http_error(ex, 400, "invalid_payment", "%s is missing or invalid", bad);
        return;
    }
    pthread_mutex_lock(&sim->base.lock);
    bool taken = p.trans_id[0] != '\0' && receipt_taken(sim, p.trans_id);
    bool ok = !taken && begin(sim);
    ok = !taken && commit(sim, ok && queue_c2b(sim, &p));
    pthread_mutex_unlock(&sim->base.lock);
    if (taken) {
        duka_http_error(ex, 409, "duplicate_trans_id", "TransID %s is already used", p.trans_id);
        return;
    }
    if (!ok) {
        duka_http_error(ex, 500, "state", "writing the simulator's state failed");
        return;
    }
    ex->status = 200;
    ex->reply = json_pack("{s:s, s:s}", "TransID", p.trans_id, "state", "queued");
}

static void route_health(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)app;
    (void)ctx;
    ex->status = 200;
    ex->reply = json_pack("{s:b}", "ok", 1);
}

/* ------------------------------------------------------------------------------------------
 * dispatch, open, close, serve
 * ---------------------------------------------------------------------------------------- */

enum { ROUTE_CONTROL = 1u << 0 };

static const duka_http_route sim_routes[] = {
    {"GET", "/oauth/v1/generate", route_oauth, 0},
    {"POST", "/mpesa/stkpush/v1/processrequest", route_stk_push, 0},
    {"POST", "/mpesa/stkpushquery/v1/query", route_stk_query, 0},
    {"POST", "/mpesa/c2b/v1/registerurl", route_c2b_register, 0},
    {"POST", "/mpesa/c2b/v2/registerurl", route_c2b_register, 0},
    {"POST", "/mpesa/c2b/v1/simulate", route_c2b_simulate, 0},
    {"POST", "/mpesa/transactionstatus/v1/query", route_status, 0},
    {"GET", "/_sim/faults", route_faults_get, ROUTE_CONTROL},
    {"POST", "/_sim/faults", route_faults_post, ROUTE_CONTROL},
    {"GET", "/_sim/customers", route_customers_get, ROUTE_CONTROL},
    {"POST", "/_sim/customers", route_customers_post, ROUTE_CONTROL},
    {"GET", "/_sim/prompts", route_prompts, ROUTE_CONTROL},
    {"GET", "/_sim/payments", route_payments, ROUTE_CONTROL},
    {"GET", "/_sim/callbacks", route_callbacks, ROUTE_CONTROL},
    {"POST", "/_sim/c2b", route_c2b_pay, ROUTE_CONTROL},
    {"GET", "/_sim/health", route_health, ROUTE_CONTROL},
};

void duka_mpesa_sim_handle(duka_mpesa_sim *sim, duka_http_exchange *ex)
{
    const duka_http_route *r =
        duka_http_route_find(sim_routes, sizeof(sim_routes) / sizeof(sim_routes[0]), ex);
    if (r != NULL && (!(r->flags & ROUTE_CONTROL) || duka_sim_control_allowed(ex)))
        r->fn(sim, NULL, ex);
    duka_sim_reply_as_text(ex);
}

duka_rc duka_mpesa_sim_open(const duka_mpesa_sim_options *opt, duka_mpesa_sim **out,
                            duka_err *err)
{
    *out = NULL;
    duka_mpesa_sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the simulator");
    duka_sim_base_init(&sim->base, opt->seed);
    sim->knobs = (sim_knobs){
        .outage_every_s = opt->outage_every_s,
        .outage_for_s = opt->outage_for_s,
        .latency_ms = opt->latency_ms,
        .fail_rate = opt->fail_rate,
        .timeout_after_accept = opt->timeout_after_accept,
        .callback_delay_ms = opt->callback_delay_ms,
        .callback_twice = opt->callback_twice,
        .callback_never = opt->callback_never,
        .spike_arrest_per_s = opt->spike_arrest_per_s,
        .answer = opt->answer,
        .answer_after_ms = opt->answer_after_ms,
        .prompt_expiry_ms = opt->prompt_expiry_ms,
        .token_life_s = opt->token_life_s,
        .msisdn = opt->msisdn,
    };
    snprintf(sim->consumer_key, sizeof(sim->consumer_key), "%s",
             opt->consumer_key ? opt->consumer_key : DUKA_MPESA_SIM_DEFAULT_KEY);
    snprintf(sim->consumer_secret, sizeof(sim->consumer_secret), "%s",
             opt->consumer_secret ? opt->consumer_secret : DUKA_MPESA_SIM_DEFAULT_SECRET);
    snprintf(sim->passkey, sizeof(sim->passkey), "%s",
             opt->passkey ? opt->passkey : DUKA_MPESA_SIM_DEFAULT_PASSKEY);
    sim->clock = opt->clock;
    sim->transport = opt->transport;
    sim->transport_ctx = opt->transport_ctx;
    duka_rc rc = duka_sim_state_open(&sim->base, opt->state_path, schema_sql, NULL, NULL, err);
    if (rc != DUKA_OK) {
        duka_mpesa_sim_close(sim);
        return rc;
    }
    *out = sim;
    return DUKA_OK;
}

void duka_mpesa_sim_wake_all(duka_mpesa_sim *sim)
{
    duka_sim_wake_all(&sim->base);
}

void duka_mpesa_sim_close(duka_mpesa_sim *sim)
{
    if (sim == NULL)
        return;
    duka_sim_base_destroy(&sim->base);
    sodium_memzero(sim->consumer_secret, sizeof(sim->consumer_secret));
    sodium_memzero(sim->passkey, sizeof(sim->passkey));
    free(sim);
}

static void handle(void *app, duka_http_exchange *ex)
{
    duka_mpesa_sim_handle(app, ex);
}

/* The delivery thread: a round every tick until the simulator stops. */
static void *deliverer(void *arg)
{
    duka_mpesa_sim *sim = arg;
    while (!duka_sim_stopping(&sim->base))
        if (duka_mpesa_sim_deliver_due(sim) == 0)
            duka_sim_wait_ms(&sim->base, SIM_DELIVERY_TICK_MS);
    return NULL;
}

duka_rc duka_mpesa_sim_serve(const duka_mpesa_sim_options *opt, duka_err *err)
{
    duka_mpesa_sim *sim = NULL;
    int fd = -1;
    /* The address first: a busy port stops the command before the state file is made. */
    duka_rc rc = duka_http_listen_open(opt->listen, false, &fd, err);
    if (rc != DUKA_OK)
        return rc;
    rc = duka_mpesa_sim_open(opt, &sim, err);
    if (rc != DUKA_OK) {
        close(fd);
        return rc;
    }
    char banner[DUKA_URL_MAX * 2];
    snprintf(banner, sizeof(banner), "duka sim mpesa listening on http://%s (state %s)",
             opt->listen, opt->state_path);
    duka_sim_run run = {
        .listen = opt->listen,
        .listen_fd = fd,
        .max_body_bytes = DUKA_MPESA_SIM_BODY_MAX_BYTES,
        .handler = handle,
        .app = sim,
        .worker = deliverer,
        .banner = banner,
    };
    rc = duka_sim_serve(&sim->base, &run, err);
    duka_mpesa_sim_close(sim);
    return rc;
}

/*
 * test_daraja_client.c — the pure parts of the Daraja client (payments/mpesa/daraja_client.h):
 *   - replies: each row of the classification table (OK, PENDING from a query's 500.001.1001,
 *     REFUSED from a push's, RETRY on spike arrest, 5xx and 429, REFUSED on other 4xx, a 200
 *     that is not Daraja's shape RETRY), every message one printable line;
 *   - notifications: an STK callback's metadata in any order (Balance without a value, Amount
 *     integer or real, PhoneNumber number or string), a cancelled one without metadata; C2B
 *     confirmations with "100.00" and "100"; status results found (ResultParameter an array
 *     or one object) and not found (ResultCode as string or number); malformed bodies refused
 *     naming the member, and nothing half-filled;
 *   - Nairobi stamps both ways, and impossible dates refused.
 * The client's network calls, against the real simulator (sim/mpesa_sim.h): in-process
 * through a transport that hands each request to duka_mpesa_sim_handle (counting OAuth calls;
 * one fake clock for both, or one each), for the token fetched once, reused and renewed
 * before Daraja's expiry, a refused token dropped and the call made once more, STK push and
 * query (PENDING, then the customer's ResultCode), pushes refused (a bad field, a wrong
 * passkey), spike arrest, C2B registration and the transaction status query; and over real
 * HTTP (libcurl to the simulator served on a port of its own) for a reply held after the
 * prompt went out (UNCLEAR) and a connection refused (OFFLINE). Hub-level use:
 * tests/e2e/test_mpesa_verify.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "net/http_server.h"
#include "payments/mpesa/daraja_client.h"
#include "sim/mpesa_sim.h"
#include "test_util.h"

static void reply(long status, const char *body, void (*parse)(long, const char *, size_t,
                                                                duka_daraja_answer *),
                  duka_daraja_verdict want)
{
    duka_daraja_answer a;
    parse(status, body, body ? strlen(body) : 0, &a);
    if (a.verdict != want)
        fail_msg("HTTP %ld %s: %s, wanted %s (%s)", status, body ? body : "(none)",
                 duka_daraja_verdict_name(a.verdict), duka_daraja_verdict_name(want), a.message);
    assert_true(strlen(a.message) > 0);
    for (const char *c = a.message; *c; c++)
        assert_true(*c >= ' ' && *c <= '~');
}

static void test_replies_are_classified(void **state)
{
    (void)state;
    const char *ok_push = "{\"MerchantRequestID\":\"1-2-3\",\"CheckoutRequestID\":\"ws_CO_1\","
                          "\"ResponseCode\":\"0\",\"ResponseDescription\":\"Success\"}";
    reply(200, ok_push, duka_daraja_parse_stk_push, DUKA_DARAJA_OK);
    duka_daraja_answer a;
    duka_daraja_parse_stk_push(200, ok_push, strlen(ok_push), &a);
    assert_string_equal(a.checkout_request_id, "ws_CO_1");
    assert_string_equal(a.merchant_request_id, "1-2-3");
    reply(200, "{\"ResponseCode\":\"0\"}", duka_daraja_parse_stk_push, DUKA_DARAJA_UNCLEAR);
    reply(200, "{\"ResponseCode\":\"1\",\"CheckoutRequestID\":\"x\",\"MerchantRequestID\":\"y\"}",
          duka_daraja_parse_stk_push, DUKA_DARAJA_RETRY);
    const char *locked = "{\"requestId\":\"1\",\"errorCode\":\"500.001.1001\","
                         "\"errorMessage\":\"Unable to lock subscriber\"}";
    reply(500, locked, duka_daraja_parse_stk_push, DUKA_DARAJA_REFUSED);
    reply(500, locked, duka_daraja_parse_stk_query, DUKA_DARAJA_REFUSED);
    reply(500, "{\"requestId\":\"1\",\"errorCode\":\"500.001.1001\",\"errorMessage\":"
               "\"The transaction is being processed\"}",
          duka_daraja_parse_stk_query, DUKA_DARAJA_PENDING);
    reply(500, "{\"requestId\":\"1\",\"errorCode\":\"500.003.02\",\"errorMessage\":\"Spike\"}",
          duka_daraja_parse_stk_push, DUKA_DARAJA_RETRY);
    reply(503, "<html>down</html>", duka_daraja_parse_stk_push, DUKA_DARAJA_RETRY);
    reply(429, NULL, duka_daraja_parse_accepted, DUKA_DARAJA_RETRY);
    reply(400, "{\"requestId\":\"1\",\"errorCode\":\"400.002.02\",\"errorMessage\":\"Bad "
               "Request - Invalid Amount\"}",
          duka_daraja_parse_stk_push, DUKA_DARAJA_REFUSED);
    reply(404, "{\"errorCode\":\"404.001.03\",\"errorMessage\":\"Invalid Access Token\"}",
          duka_daraja_parse_accepted, DUKA_DARAJA_REFUSED);
    reply(200, "not json\n\x01", duka_daraja_parse_accepted, DUKA_DARAJA_RETRY);
    reply(200, "[1,2]", duka_daraja_parse_accepted, DUKA_DARAJA_RETRY);
    reply(200, "{\"a\":1,\"a\":2}", duka_daraja_parse_accepted, DUKA_DARAJA_RETRY);
    const char *query = "{\"ResponseCode\":\"0\",\"ResultCode\":\"1032\",\"ResultDesc\":"
                        "\"Request cancelled by user\"}";
    duka_daraja_parse_stk_query(200, query, strlen(query), &a);
    assert_int_equal(a.verdict, DUKA_DARAJA_OK);
    assert_int_equal(a.result_code, 1032);
    assert_string_equal(a.result_desc, "Request cancelled by user");
    reply(200, "{\"ResponseCode\":\"0\",\"ResultCode\":\"x1\"}", duka_daraja_parse_stk_query,
          DUKA_DARAJA_RETRY);
    const char *accepted = "{\"OriginatorConversationID\":\"1-2-3\",\"ConversationID\":\"AG_1\","
                           "\"ResponseCode\":\"0\",\"ResponseDescription\":\"Accept\"}";
    duka_daraja_parse_accepted(200, accepted, strlen(accepted), &a);
    assert_int_equal(a.verdict, DUKA_DARAJA_OK);
    assert_string_equal(a.conversation_id, "AG_1");
    /* Too big: refused before parsing. */
    char *big = malloc(DUKA_DARAJA_REPLY_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, ' ', DUKA_DARAJA_REPLY_MAX_BYTES + 1);
    big[0] = '{';
    big[DUKA_DARAJA_REPLY_MAX_BYTES] = '}';
    big[DUKA_DARAJA_REPLY_MAX_BYTES + 1] = '\0';
    reply(200, big, duka_daraja_parse_accepted, DUKA_DARAJA_RETRY);
    free(big);
}

static void test_stk_callbacks(void **state)
{
    (void)state;
    char why[256];
    duka_daraja_stk_callback cb;
    const char *paid =
        "{\"Body\":{\"stkCallback\":{\"MerchantRequestID\":\"29115-1\",\"CheckoutRequestID\":"
        "\"ws_CO_9\",\"ResultCode\":0,\"ResultDesc\":\"ok\",\"CallbackMetadata\":{\"Item\":["
        "{\"Name\":\"PhoneNumber\",\"Value\":\"254708374149\"},{\"Name\":\"Balance\"},"
        "{\"Name\":\"MpesaReceiptNumber\",\"Value\":\"UL8OALU9GQ\"},{\"Name\":\"Amount\","
        "\"Value\":1234.5},{\"Name\":\"TransactionDate\",\"Value\":20261205001030},"
        "{\"Name\":\"Other\",\"Value\":[1]}]}}}}";
    assert_true(duka_daraja_parse_stk_callback(paid, strlen(paid), &cb, why, sizeof(why)));
    assert_string_equal(cb.checkout_request_id, "ws_CO_9");
    assert_int_equal(cb.result_code, 0);
    assert_string_equal(cb.payment.receipt, "UL8OALU9GQ");
    assert_int_equal(cb.payment.amount_cents, 123450);
    assert_string_equal(cb.payment.phone, "254708374149");
    assert_int_equal(cb.payment.paid_ms, duka_daraja_time_ms("20261205001030"));
    const char *cancelled = "{\"Body\":{\"stkCallback\":{\"MerchantRequestID\":\"1\","
                            "\"CheckoutRequestID\":\"ws_CO_2\",\"ResultCode\":1032,"
                            "\"ResultDesc\":\"Request cancelled by user\"}}}";
    assert_true(
        duka_daraja_parse_stk_callback(cancelled, strlen(cancelled), &cb, why, sizeof(why)));
    assert_int_equal(cb.result_code, 1032);
    assert_string_equal(cb.payment.receipt, "");
    const char *bad[] = {
        "{}", "{\"Body\":{\"stkCallback\":{\"ResultCode\":0}}}",
        "{\"Body\":{\"stkCallback\":{\"CheckoutRequestID\":\"x\",\"ResultCode\":\"zero\"}}}",
        /* paid, but the receipt is not a receipt */
        "{\"Body\":{\"stkCallback\":{\"CheckoutRequestID\":\"x\",\"ResultCode\":0,"
        "\"CallbackMetadata\":{\"Item\":[{\"Name\":\"MpesaReceiptNumber\",\"Value\":\"short\"},"
        "{\"Name\":\"Amount\",\"Value\":10}]}}}}",
        /* paid, no amount */
        "{\"Body\":{\"stkCallback\":{\"CheckoutRequestID\":\"x\",\"ResultCode\":0,"
        "\"CallbackMetadata\":{\"Item\":[{\"Name\":\"MpesaReceiptNumber\",\"Value\":"
        "\"UL8OALU9GQ\"}]}}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (duka_daraja_parse_stk_callback(bad[i], strlen(bad[i]), &cb, why, sizeof(why)))
            fail_msg("accepted %s", bad[i]);
        assert_true(strlen(why) > 0);
        assert_string_equal(cb.checkout_request_id, "");
    }
}

static void test_c2b_and_status_results(void **state)
{
    (void)state;
    char why[256];
    duka_mpesa_payment p;
    const char *c2b = "{\"TransactionType\":\"Pay Bill\",\"TransID\":\"ULNLF1BP05\",\"TransTime\":"
                      "\"20261205001031\",\"TransAmount\":\"100.00\",\"BusinessShortCode\":"
                      "\"600000\",\"BillRefNumber\":\"T01-2\",\"MSISDN\":\"2547****149\"}";
    assert_true(duka_daraja_parse_c2b(c2b, strlen(c2b), &p, why, sizeof(why)));
    assert_string_equal(p.receipt, "ULNLF1BP05");
    assert_int_equal(p.amount_cents, 10000);
    assert_string_equal(p.shortcode, "600000");
    assert_string_equal(p.phone, "2547****149");
    assert_string_equal(p.reference, "T01-2");
    const char *whole = "{\"TransID\":\"ULNLF1BP05\",\"TransTime\":\"20261205001031\","
                        "\"TransAmount\":\"100\",\"BusinessShortCode\":600000}";
    assert_true(duka_daraja_parse_c2b(whole, strlen(whole), &p, why, sizeof(why)));
    assert_int_equal(p.amount_cents, 10000);
    const char *amounts[] = {"1000000.00", "0x64", "1e2", " 100", "100.005", "0", "-5", "."};
    for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"TransID\":\"ULNLF1BP05\",\"TransTime\":\"20261205001031\","
                 "\"TransAmount\":\"%s\",\"BusinessShortCode\":\"600000\"}",
                 amounts[i]);
        if (duka_daraja_parse_c2b(body, strlen(body), &p, why, sizeof(why)))
            fail_msg("TransAmount '%s' taken as %lld cents", amounts[i], (long long)p.amount_cents);
    }
    const char *max = "{\"TransID\":\"ULNLF1BP05\",\"TransTime\":\"20261205001031\","
                      "\"TransAmount\":\"250000.5\",\"BusinessShortCode\":\"600000\"}";
    assert_false(duka_daraja_parse_c2b(max, strlen(max), &p, why, sizeof(why)));
    const char *edge = "{\"TransID\":\"ULNLF1BP05\",\"TransTime\":\"20261205001031\","
                       "\"TransAmount\":\"250000.00\",\"BusinessShortCode\":\"600000\"}";
    assert_true(duka_daraja_parse_c2b(edge, strlen(edge), &p, why, sizeof(why)));
    assert_int_equal(p.amount_cents, 25000000);
    const char *no_time = "{\"TransID\":\"ULNLF1BP05\",\"TransTime\":\"20261305001031\","
                          "\"TransAmount\":\"100\",\"BusinessShortCode\":\"600000\"}";
    assert_false(duka_daraja_parse_c2b(no_time, strlen(no_time), &p, why, sizeof(why)));
    assert_non_null(strstr(why, "TransTime"));
    assert_string_equal(p.receipt, "");

    duka_daraja_status_result r;
    const char *found =
        "{\"Result\":{\"ResultType\":0,\"ResultCode\":0,\"ResultDesc\":\"ok\",\"TransactionID\":"
        "\"ULNLF1BP05\",\"ResultParameters\":{\"ResultParameter\":[{\"Key\":\"DebitPartyName\","
        "\"Value\":\"254708374149 - John Doe\"},{\"Key\":\"TransactionStatus\",\"Value\":"
        "\"Completed\"},{\"Key\":\"FinalisedTime\",\"Value\":20261205001031},{\"Key\":\"Amount\","
        "\"Value\":100.0},{\"Key\":\"ReceiptNo\",\"Value\":\"ULNLF1BP05\"}]},\"ReferenceData\":"
        "{\"ReferenceItem\":{\"Key\":\"Occasion\",\"Value\":\"T01-20261205-00001\"}}}}";
    assert_true(duka_daraja_parse_status_result(found, strlen(found), &r, why, sizeof(why)));
    assert_true(r.found);
    assert_string_equal(r.payment.receipt, "ULNLF1BP05");
    assert_int_equal(r.payment.amount_cents, 10000);
    assert_string_equal(r.payment.phone, "254708374149");
    assert_string_equal(r.occasion, "T01-20261205-00001");
    const char *one = "{\"Result\":{\"ResultCode\":\"0\",\"TransactionID\":\"ULNLF1BP05\","
                      "\"ResultParameters\":{\"ResultParameter\":{\"Key\":\"ReceiptNo\",\"Value\":"
                      "\"ULNLF1BP05\"}}}}";
    assert_true(duka_daraja_parse_status_result(one, strlen(one), &r, why, sizeof(why)));
    assert_false(r.found); /* a receipt but no amount: not a payment to credit */
    const char *missing = "{\"Result\":{\"ResultType\":0,\"ResultCode\":\"R000001\","
                          "\"ResultDesc\":\"does not exist\",\"TransactionID\":\"ZZZZZZZZZZ\"}}";
    assert_true(duka_daraja_parse_status_result(missing, strlen(missing), &r, why, sizeof(why)));
    assert_false(r.found);
    assert_string_equal(r.result_code, "R000001");
    const char *numeric = "{\"Result\":{\"ResultCode\":2001,\"TransactionID\":\"X\"}}";
    assert_true(duka_daraja_parse_status_result(numeric, strlen(numeric), &r, why, sizeof(why)));
    assert_string_equal(r.result_code, "2001");
    assert_false(r.found);
    assert_false(duka_daraja_parse_status_result("{\"Result\":{}}", 13, &r, why, sizeof(why)));
}

static void test_stamps(void **state)
{
    (void)state;
    /* 2026-12-05 00:10:30 in Nairobi is 2026-12-04 21:10:30 UTC. */
    assert_int_equal(duka_daraja_time_ms("20261205001030"), 1796418630000LL);
    char out[15];
    duka_daraja_stamp(1796418630000LL, out);
    assert_string_equal(out, "20261205001030");
    const char *bad[] = {"", "2026120500103", "20261305001030", "20260230001030",
                         "20250229000000", "20261205241030", "2026120500103x", "19991231235959"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (duka_daraja_time_ms(bad[i]) != -1)
            fail_msg("'%s' taken as a time", bad[i]);
    assert_true(duka_daraja_time_ms("20280229120000") > 0);
    assert_true(duka_mpesa_receipt_valid("UL8OALU9GQ"));
    assert_false(duka_mpesa_receipt_valid("ul8oalu9gq"));
    assert_false(duka_mpesa_receipt_valid("UL8OALU9G"));
    assert_false(duka_mpesa_receipt_valid(NULL));
}

/* ---- the client against the simulator, in-process ---- */

#define SIM_BASE_URL "http://sim.mpesa"
#define SHORTCODE "174379"
#define PHONE "254708374149"
#define CALLBACK_URL "http://127.0.0.1:9/v1/mpesa/stk"
#define TOKEN_LIFE_S 3599

/* Hands each request to the simulator's handler, as its HTTP server would, and counts. */
typedef struct sim_link {
    duka_mpesa_sim *sim;
    int oauth_calls, api_calls;
    bool bogus_bearer; /* every API call carries a token the simulator never issued */
} sim_link;

/* url's path into path and its query's key, value pairs into args (NULL-terminated). */
static void split_url(const char *url, char *path, size_t path_len, char *query,
                      size_t query_len, const char **args, int args_max)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    snprintf(path, path_len, "%s", p ? p : "/");
    query[0] = '\0';
    char *q = strchr(path, '?');
    if (q != NULL) {
        snprintf(query, query_len, "%s", q + 1);
        *q = '\0';
    }
    int n = 0;
    for (char *save = NULL, *kv = strtok_r(query, "&", &save); kv != NULL && n + 2 < args_max;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        args[n++] = kv;
        args[n++] = eq + 1;
    }
    args[n] = NULL;
}

/* Runs one request through duka_mpesa_sim_handle; the reply's text (malloc'd) into *reply. */
static unsigned sim_request(duka_mpesa_sim *sim, const char *method, const char *url,
                            const char *const *headers, const char *body, size_t len,
                            char **reply, long *retry_after_s)
{
    char path[512], query[512];
    const char *args[16];
    split_url(url, path, sizeof(path), query, sizeof(query), args, 16);
    duka_http_exchange ex = {.method = method, .path = path, .body = body ? body : "",
                             .body_len = len, .retry_after_s = -1, .local_args = args,
                             .local_headers = headers};
    duka_mpesa_sim_handle(sim, &ex);
    *reply = calloc(1, ex.bytes_len + 1);
    assert_non_null(*reply);
    if (ex.bytes != NULL)
        memcpy(*reply, ex.bytes, ex.bytes_len);
    if (ex.bytes_owned)
        free((void *)(uintptr_t)ex.bytes);
    json_decref(ex.reply);
    if (retry_after_s != NULL)
        *retry_after_s = ex.retry_after_s;
    return ex.status;
}

static duka_rc sim_transport(void *ctx, const char *method, const char *url,
                             const char *bearer_token, const char *body, size_t body_len,
                             const duka_http_options *opt, duka_http_reply *out, duka_err *err)
{
    (void)err;
    sim_link *link = ctx;
    char names[DUKA_HTTP_EXTRA_HEADERS_MAX][64], values[DUKA_HTTP_EXTRA_HEADERS_MAX][1024];
    char auth[DUKA_DARAJA_TOKEN_MAX + 16];
    const char *headers[2 * DUKA_HTTP_EXTRA_HEADERS_MAX + 4] = {0};
    int nh = 0;
    for (int k = 0; k < DUKA_HTTP_EXTRA_HEADERS_MAX && opt->headers[k] != NULL; k++) {
        const char *colon = strchr(opt->headers[k], ':');
        assert_non_null(colon);
        snprintf(names[k], sizeof(names[k]), "%.*s", (int)(colon - opt->headers[k]),
                 opt->headers[k]);
        snprintf(values[k], sizeof(values[k]), "%s", colon[1] == ' ' ? colon + 2 : colon + 1);
        headers[nh++] = names[k];
        headers[nh++] = values[k];
    }
    bool oauth = strstr(url, "/oauth/v1/generate") != NULL;
    if (oauth)
        link->oauth_calls++;
    else
        link->api_calls++;
    /* The client sends its token in a header of its own (opt->headers); a bogus one takes
     * its place. */
    for (int k = 0; k + 1 < nh && !oauth && link->bogus_bearer; k += 2)
        if (strcmp(headers[k], "Authorization") == 0)
            snprintf(values[k / 2], sizeof(values[k / 2]), "Bearer NotATokenTheSimulatorIssued");
    if (bearer_token != NULL) {
        snprintf(auth, sizeof(auth), "Bearer %s", bearer_token);
        headers[nh++] = "Authorization";
        headers[nh++] = auth;
    }
    memset(out, 0, sizeof(*out));
    out->status = sim_request(link->sim, method, url, headers, body, body_len, &out->body,
                              &out->retry_after_s);
    out->len = strlen(out->body);
    return DUKA_OK;
}

/* A simulator on fake clocks (one for it, one for the client: the same unless split) and a
 * client that reaches it in-process. */
typedef struct rig {
    test_dir dir;
    fake_clock sim_clock, client_clock;
    duka_mpesa_sim *sim;
    sim_link link;
    duka_daraja_client *client;
} rig;

typedef struct rig_options {
    double fail_rate;
    bool split_clocks;
    const char *passkey; /* the client's; NULL: the simulator's */
} rig_options;

static void client_conf(duka_daraja_conf *conf, const char *base_url, const char *passkey)
{
    memset(conf, 0, sizeof(*conf));
    snprintf(conf->base_url, sizeof(conf->base_url), "%s", base_url);
    snprintf(conf->consumer_key, sizeof(conf->consumer_key), DUKA_MPESA_SIM_DEFAULT_KEY);
    snprintf(conf->consumer_secret, sizeof(conf->consumer_secret), DUKA_MPESA_SIM_DEFAULT_SECRET);
    snprintf(conf->passkey, sizeof(conf->passkey), "%s",
             passkey ? passkey : DUKA_MPESA_SIM_DEFAULT_PASSKEY);
    snprintf(conf->initiator, sizeof(conf->initiator), "testapi");
    snprintf(conf->security_credential, sizeof(conf->security_credential), "c2VjcmV0");
}

static void sim_open_in(test_dir *dir, duka_mpesa_sim_options *o, duka_mpesa_sim **sim)
{
    char state[512];
    test_dir_file(dir, "mpesa-sim.db", state, sizeof(state));
    o->state_path = state;
    duka_err err = {0};
    assert_ok(duka_mpesa_sim_open(o, sim, &err), &err);
}

static void rig_open(rig *r, const rig_options *ro)
{
    memset(r, 0, sizeof(*r));
    test_dir_make(&r->dir);
    fake_clock_init(&r->sim_clock, T_2026_11_21_NOON_MS);
    fake_clock_init(&r->client_clock, T_2026_11_21_NOON_MS);
    duka_mpesa_sim_options o;
    duka_mpesa_sim_defaults(&o);
    o.fail_rate = ro->fail_rate;
    o.token_life_s = TOKEN_LIFE_S;
    o.clock = &r->sim_clock.clock;
    sim_open_in(&r->dir, &o, &r->sim);
    r->link.sim = r->sim;
    duka_daraja_conf conf;
    client_conf(&conf, SIM_BASE_URL, ro->passkey);
    conf.clock = ro->split_clocks ? &r->client_clock.clock : &r->sim_clock.clock;
    conf.transport = sim_transport;
    conf.transport_ctx = &r->link;
    r->client = duka_daraja_new(&conf);
    assert_non_null(r->client);
}

static void rig_close(rig *r)
{
    duka_daraja_free(r->client);
    duka_mpesa_sim_close(r->sim);
    test_dir_remove(&r->dir);
}

/* Moves both clocks on. */
static void rig_advance(rig *r, int64_t ms)
{
    r->sim_clock.now_ms += ms;
    r->client_clock.now_ms += ms;
}

static void expect_answer(const duka_daraja_answer *a, duka_daraja_verdict want,
                          const char *what)
{
    if (a->verdict != want)
        fail_msg("%s: %s (%s), wanted %s", what, duka_daraja_verdict_name(a->verdict),
                 a->message, duka_daraja_verdict_name(want));
    assert_true(strlen(a->message) > 0);
    for (const char *c = a->message; *c; c++)
        assert_true(*c >= ' ' && *c <= '~');
}

static duka_daraja_stk stk_request(int64_t amount_kes, const char *phone)
{
    duka_daraja_stk s = {.shortcode = SHORTCODE, .party_b = SHORTCODE, .amount_kes = amount_kes,
                         .phone = phone, .callback_url = CALLBACK_URL,
                         .account_ref = "T01-00042", .desc = "Duka sale"};
    return s;
}

static void register_ok(rig *r, const char *what)
{
    duka_daraja_answer a;
    duka_err err = {0};
    assert_ok(duka_daraja_register_c2b(r->client, SHORTCODE, "http://127.0.0.1:9/c",
                                       "http://127.0.0.1:9/v", &a, &err),
              &err);
    expect_answer(&a, DUKA_DARAJA_OK, what);
}

/* GET or POST of a /_sim control path, its reply parsed. */
static json_t *sim_control(rig *r, const char *method, const char *path, const char *body)
{
    char url[256], *text = NULL;
    snprintf(url, sizeof(url), "%s%s", SIM_BASE_URL, path);
    const char *headers[] = {NULL};
    unsigned status = sim_request(r->sim, method, url, headers, body, body ? strlen(body) : 0,
                                  &text, NULL);
    if (status != 200)
        fail_msg("%s %s: %u %s", method, path, status, text);
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(v);
    return v;
}

static void test_token_fetched_once_and_renewed(void **state)
{
    (void)state;
    rig r;
    rig_options ro = {0};
    rig_open(&r, &ro);
    for (int i = 0; i < 3; i++)
        register_ok(&r, "registerurl with the cached token");
    assert_int_equal(r.link.oauth_calls, 1);
    assert_int_equal(r.link.api_calls, 3);
    /* Used until DUKA_DARAJA_TOKEN_MARGIN_MS before Daraja's expiry, then renewed. */
    int64_t until = TOKEN_LIFE_S * 1000LL - DUKA_DARAJA_TOKEN_MARGIN_MS;
    rig_advance(&r, until - 1);
    register_ok(&r, "registerurl just before the margin");
    assert_int_equal(r.link.oauth_calls, 1);
    rig_advance(&r, 1);
    register_ok(&r, "registerurl in the margin");
    assert_int_equal(r.link.oauth_calls, 2);
    register_ok(&r, "registerurl with the new token");
    assert_int_equal(r.link.oauth_calls, 2);
    rig_close(&r);
}

static void test_refused_token_dropped_and_retried_once(void **state)
{
    (void)state;
    rig r;
    rig_options ro = {.split_clocks = true};
    rig_open(&r, &ro);
    register_ok(&r, "first call");
    assert_int_equal(r.link.oauth_calls, 1);
    /* Daraja's clock says the token is dead, ours does not: 404.001.03, a new token, OK. */
    r.sim_clock.now_ms += (TOKEN_LIFE_S + 1) * 1000LL;
    register_ok(&r, "after 404.001.03");
    assert_int_equal(r.link.oauth_calls, 2);
    assert_int_equal(r.link.api_calls, 3);
    register_ok(&r, "the new token cached");
    assert_int_equal(r.link.oauth_calls, 2);
    /* Refused again with the new token: RETRY, after exactly one more try. */
    r.link.bogus_bearer = true;
    int api = r.link.api_calls;
    duka_daraja_answer a;
    duka_err err = {0};
    assert_ok(duka_daraja_register_c2b(r.client, SHORTCODE, "http://127.0.0.1:9/c",
                                       "http://127.0.0.1:9/v", &a, &err),
              &err);
    expect_answer(&a, DUKA_DARAJA_RETRY, "a token refused twice");
    assert_string_equal(a.error_code, "404.001.03");
    assert_int_equal(r.link.api_calls, api + 2);
    assert_int_equal(r.link.oauth_calls, 3);
    rig_close(&r);
}

/* Pushes and queries until the customer's answer; returns the query's answer. */
static duka_daraja_answer push_then_query(rig *r, const char *phone, duka_daraja_answer *push)
{
    duka_err err = {0};
    duka_daraja_stk s = stk_request(10, phone);
    assert_ok(duka_daraja_stk_push(r->client, &s, push, &err), &err);
    expect_answer(push, DUKA_DARAJA_OK, "STK push");
    duka_daraja_answer q;
    assert_ok(duka_daraja_stk_query(r->client, SHORTCODE, push->checkout_request_id, &q, &err),
              &err);
    expect_answer(&q, DUKA_DARAJA_PENDING, "STK query before the customer answered");
    assert_int_equal(q.http_status, 500);
    assert_string_equal(q.error_code, "500.001.1001");
    rig_advance(r, DUKA_MPESA_SIM_DEFAULT_ANSWER_MS + 1);
    assert_ok(duka_daraja_stk_query(r->client, SHORTCODE, push->checkout_request_id, &q, &err),
              &err);
    expect_answer(&q, DUKA_DARAJA_OK, "STK query after the customer answered");
    return q;
}

static void test_stk_push_and_query(void **state)
{
    (void)state;
    rig r;
    rig_options ro = {0};
    rig_open(&r, &ro);
    duka_daraja_answer push;
    duka_daraja_answer q = push_then_query(&r, PHONE, &push);
    assert_int_equal(q.result_code, 0);
    assert_int_equal(q.http_status, 200);
    assert_true(strncmp(push.checkout_request_id, "ws_CO_", 6) == 0);
    assert_true(strlen(push.merchant_request_id) > 0);
    /* What the simulator holds: the prompt as the client sent it (its Password and Timestamp
     * were accepted, or there would be no prompt). */
    json_t *list = sim_control(&r, "GET", "/_sim/prompts", NULL);
    json_t *p = json_array_get(json_object_get(list, "prompts"), 0);
    assert_int_equal(json_array_size(json_object_get(list, "prompts")), 1);
    assert_string_equal(json_string_value(json_object_get(p, "CheckoutRequestID")),
                        push.checkout_request_id);
    assert_string_equal(json_string_value(json_object_get(p, "MerchantRequestID")),
                        push.merchant_request_id);
    assert_int_equal(json_integer_value(json_object_get(p, "Amount")), 10);
    assert_string_equal(json_string_value(json_object_get(p, "PhoneNumber")), PHONE);
    assert_string_equal(json_string_value(json_object_get(p, "AccountReference")), "T01-00042");
    assert_string_equal(json_string_value(json_object_get(p, "TransactionType")),
                        "CustomerPayBillOnline");
    json_decref(list);
    /* A customer who cancels: the query carries 1032. */
    json_decref(sim_control(&r, "POST", "/_sim/customers",
                            "{\"phone\":\"254708374150\",\"answer\":\"cancel\"}"));
    q = push_then_query(&r, "254708374150", &push);
    assert_int_equal(q.result_code, 1032);
    assert_true(strlen(q.result_desc) > 0);
    assert_int_equal(r.link.oauth_calls, 1);
    rig_close(&r);
}

static void test_stk_push_refused(void **state)
{
    (void)state;
    rig r;
    rig_options ro = {0};
    rig_open(&r, &ro);
    duka_daraja_answer a;
    duka_err err = {0};
    /* A field Daraja refuses (400.002.02), whether the client sends it or refuses it first. */
    duka_daraja_stk s = stk_request(10, "254000000001");
    duka_rc rc = duka_daraja_stk_push(r.client, &s, &a, &err);
    expect_answer(&a, DUKA_DARAJA_REFUSED, "a phone Daraja does not know");
    if (rc == DUKA_OK)
        assert_string_equal(a.error_code, "400.002.02");
    else
        assert_int_equal(rc, DUKA_INPUT);
    /* Fields out of bounds are refused before anything is sent. */
    int api = r.link.api_calls, oauth = r.link.oauth_calls;
    const duka_daraja_stk bad[] = {stk_request(0, PHONE), stk_request(250001, PHONE),
                                   stk_request(10, "2547083741"), stk_request(10, NULL)};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        duka_err e = {0};
        assert_rc(duka_daraja_stk_push(r.client, &bad[i], &a, &e), DUKA_INPUT, &e);
        expect_answer(&a, DUKA_DARAJA_REFUSED, "a push out of bounds");
        assert_true(strlen(e.msg) > 0);
    }
    duka_err e = {0};
    assert_rc(duka_daraja_stk_query(r.client, SHORTCODE, "", &a, &e), DUKA_INPUT, &e);
    assert_int_equal(r.link.api_calls, api);
    assert_int_equal(r.link.oauth_calls, oauth);
    rig_close(&r);

    /* The wrong passkey: 500.001.1001 "Wrong credentials" on a push, nothing prompted. */
    rig_options wrong = {.passkey = "not-the-passkey"};
    rig_open(&r, &wrong);
    s = stk_request(10, PHONE);
    assert_ok(duka_daraja_stk_push(r.client, &s, &a, &err), &err);
    expect_answer(&a, DUKA_DARAJA_REFUSED, "a push with the wrong passkey");
    assert_string_equal(a.error_code, "500.001.1001");
    assert_int_equal(a.http_status, 500);
    assert_string_equal(a.checkout_request_id, "");
    json_t *list = sim_control(&r, "GET", "/_sim/prompts", NULL);
    assert_int_equal(json_array_size(json_object_get(list, "prompts")), 0);
    json_decref(list);
    rig_close(&r);
}

static void test_spike_arrest_is_retry(void **state)
{
    (void)state;
    rig r;
    rig_options ro = {.fail_rate = 1};
    rig_open(&r, &ro);
    duka_daraja_answer a;
    duka_err err = {0};
    duka_daraja_stk s = stk_request(10, PHONE);
    assert_ok(duka_daraja_stk_push(r.client, &s, &a, &err), &err);
    expect_answer(&a, DUKA_DARAJA_RETRY, "a push under spike arrest");
    assert_string_equal(a.error_code, "500.003.02");
    assert_string_equal(a.checkout_request_id, "");
    assert_ok(duka_daraja_stk_query(r.client, SHORTCODE, "ws_CO_1", &a, &err), &err);
    expect_answer(&a, DUKA_DARAJA_RETRY, "a query under spike arrest");
    assert_string_equal(a.error_code, "500.003.02");
    json_t *list = sim_control(&r, "GET", "/_sim/prompts", NULL);
    assert_int_equal(json_array_size(json_object_get(list, "prompts")), 0);
    json_decref(list);
    rig_close(&r);
}

static void test_register_and_transaction_status(void **state)
{
    (void)state;
    rig r;
    rig_options ro = {0};
    rig_open(&r, &ro);
    register_ok(&r, "registerurl");
    duka_daraja_answer a;
    duka_err err = {0};
    assert_ok(duka_daraja_transaction_status(r.client, SHORTCODE, "ULNLF1BP05",
                                             "http://127.0.0.1:9/r", "http://127.0.0.1:9/t",
                                             "T01-20261121-00042", &a, &err),
              &err);
    expect_answer(&a, DUKA_DARAJA_OK, "transaction status");
    assert_true(strncmp(a.conversation_id, "AG_", 3) == 0);
    assert_true(strlen(a.originator_conversation_id) > 0);
    /* Its result waits in the simulator for ResultURL, with the Occasion we gave. */
    json_t *list = sim_control(&r, "GET", "/_sim/callbacks?kind=status_result", NULL);
    json_t *cb = json_array_get(json_object_get(list, "callbacks"), 0);
    assert_non_null(cb);
    const char *body = json_string_value(json_object_get(cb, "body"));
    duka_daraja_status_result res;
    char why[256] = "";
    if (!duka_daraja_parse_status_result(body, strlen(body), &res, why, sizeof(why)))
        fail_msg("the simulator's status result: %s", why);
    assert_false(res.found); /* no such payment */
    assert_string_equal(res.trans_id, "ULNLF1BP05");
    assert_string_equal(res.occasion, "T01-20261121-00042");
    json_decref(list);
    /* A receipt that is not one, a missing initiator: refused before anything is sent. */
    int api = r.link.api_calls;
    duka_err e = {0};
    assert_rc(duka_daraja_transaction_status(r.client, SHORTCODE, "short", "http://127.0.0.1:9/r",
                                             "http://127.0.0.1:9/t", NULL, &a, &e),
              DUKA_INPUT, &e);
    expect_answer(&a, DUKA_DARAJA_REFUSED, "a bad TransactionID");
    assert_int_equal(r.link.api_calls, api);
    rig_close(&r);
}

static void test_bad_base_url(void **state)
{
    (void)state;
    const char *urls[] = {"", "ftp://sandbox.safaricom.co.ke", "sandbox.safaricom.co.ke"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        duka_daraja_conf conf;
        client_conf(&conf, urls[i], NULL);
        duka_daraja_client *c = duka_daraja_new(&conf);
        assert_non_null(c);
        duka_daraja_answer a;
        duka_err err = {0};
        assert_rc(duka_daraja_register_c2b(c, SHORTCODE, "http://127.0.0.1:9/c",
                                           "http://127.0.0.1:9/v", &a, &err),
                  DUKA_INPUT, &err);
        expect_answer(&a, DUKA_DARAJA_REFUSED, urls[i]);
        duka_daraja_free(c);
    }
    duka_daraja_free(NULL);
}

/* ---- the client against the simulator over real HTTP ---- */

/* A TCP socket on 127.0.0.1 and a port the kernel chose; listening when asked (else bound
 * only: a connection to it is refused, and no other process can take the port meanwhile). */
static int loopback_socket(bool listening, unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (const struct sockaddr *)&sa, sizeof(sa)), 0);
    if (listening)
        assert_int_equal(listen(fd, SOMAXCONN), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void serve_sim(void *app, duka_http_exchange *ex)
{
    duka_mpesa_sim_handle(app, ex);
}

static void test_over_http_held_reply_and_refused(void **state)
{
    (void)state;
    test_dir dir;
    test_dir_make(&dir);
    duka_mpesa_sim_options o;
    duka_mpesa_sim_defaults(&o);
    o.timeout_after_accept = 1; /* every prompt goes out, its reply is held */
    duka_mpesa_sim *sim = NULL;
    sim_open_in(&dir, &o, &sim);
    unsigned port = 0;
    int fd = loopback_socket(true, &port);
    char listen_at[64], base[96];
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%u", port);
    snprintf(base, sizeof(base), "http://%s", listen_at);
    duka_http_server_options so = {.max_body_bytes = DUKA_MPESA_SIM_BODY_MAX_BYTES,
                                   .have_listen_fd = true, .listen_fd = fd};
    duka_http_server *srv = NULL;
    duka_err err = {0};
    assert_ok(duka_http_server_start_opts(listen_at, &so, serve_sim, sim, &srv, &err), &err);

    duka_daraja_conf conf;
    client_conf(&conf, base, NULL);
    conf.timeout_ms = 700;
    duka_daraja_client *c = duka_daraja_new(&conf);
    assert_non_null(c);
    duka_daraja_answer a;
    /* OAuth (Basic) and an API call (Bearer) through libcurl. */
    assert_ok(duka_daraja_register_c2b(c, SHORTCODE, "http://127.0.0.1:9/c",
                                       "http://127.0.0.1:9/v", &a, &err),
              &err);
    expect_answer(&a, DUKA_DARAJA_OK, "registerurl over HTTP");
    /* The prompt went out and no answer came back in time: it may have been done. */
    duka_daraja_stk s = stk_request(10, PHONE);
    int64_t t0 = duka_monotonic_ms();
    assert_ok(duka_daraja_stk_push(c, &s, &a, &err), &err);
    expect_answer(&a, DUKA_DARAJA_UNCLEAR, "a push whose reply is held");
    assert_true(duka_monotonic_ms() - t0 < 10000);
    assert_string_equal(a.checkout_request_id, "");
    duka_daraja_free(c);
    duka_mpesa_sim_wake_all(sim);
    duka_http_server_stop(srv);
    duka_mpesa_sim_close(sim);
    test_dir_remove(&dir);

    /* Nothing listens: OFFLINE, from the OAuth call, before anything of the push was sent. */
    int closed = loopback_socket(false, &port);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);
    client_conf(&conf, base, NULL);
    c = duka_daraja_new(&conf);
    assert_non_null(c);
    assert_ok(duka_daraja_stk_push(c, &s, &a, &err), &err);
    expect_answer(&a, DUKA_DARAJA_OFFLINE, "a push to a port nothing listens on");
    assert_ok(duka_daraja_register_c2b(c, SHORTCODE, "http://127.0.0.1:9/c",
                                       "http://127.0.0.1:9/v", &a, &err),
              &err);
    expect_answer(&a, DUKA_DARAJA_OFFLINE, "registerurl to a port nothing listens on");
    duka_daraja_free(c);
    close(closed);
}

int main(void)
{
    setenv("DUKA_LOG_LEVEL", "warn", 0); /* the simulator's info lines */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_are_classified),
        cmocka_unit_test(test_stk_callbacks),
        cmocka_unit_test(test_c2b_and_status_results),
        cmocka_unit_test(test_stamps),
        cmocka_unit_test(test_token_fetched_once_and_renewed),
        cmocka_unit_test(test_refused_token_dropped_and_retried_once),
        cmocka_unit_test(test_stk_push_and_query),
        cmocka_unit_test(test_stk_push_refused),
        cmocka_unit_test(test_spike_arrest_is_retry),
        cmocka_unit_test(test_register_and_transaction_status),
        cmocka_unit_test(test_bad_base_url),
        cmocka_unit_test(test_over_http_held_reply_and_refused),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}

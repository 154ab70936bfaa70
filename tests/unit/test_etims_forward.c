/*
 * test_etims_forward.c — duka_etims_forward (tax/etims/etims_forward.h) and the client's
 * requests against a tiny scripted eTIMS on loopback (net/http_server.h): each test lists the
 * answers the server gives in order, runs one forward, and checks the decision, which
 * requests were made (never two saves in one call) and what they carried.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "net/http_server.h"
#include "tax/etims/etims_client.h"
#include "tax/etims/etims_forward.h"
#include "tax/etims/invoice.h"
#include "test_util.h"

#define STEPS_MAX 8

#define SAVE_OK                                                                              \
    "{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"resultDt\":\"20261203143005\","  \
    "\"data\":{\"curRcptNo\":17,\"totRcptNo\":18,\"intrlData\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ\"," \
    "\"rcptSign\":\"ABCDEFGHIJKLMNOP\",\"sdcDateTime\":\"20261203143005\"}}"
#define SELECT_FOUND_OF(trd, tot)                                                            \
    "{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"resultDt\":\"20261203150000\","  \
    "\"data\":{\"salesList\":[{\"invcNo\":17,\"trdInvcNo\":\"" trd "\","                      \
    "\"rcptTyCd\":\"S\",\"totAmt\":" tot ",\"receipt\":{\"curRcptNo\":17,\"totRcptNo\":18,"    \
    "\"intrlData\":\"QRSTUVWXYZABCDEFGHIJKLMNOP\",\"rcptSign\":\"QRSTUVWXYZ234567\","          \
    "\"sdcDateTime\":\"2026-12-03 14:30:05.0\"}}]}}"
#define SELECT_FOUND SELECT_FOUND_OF("T01-20261203-00042", "116.0")
#define NOT_FOUND                                                                            \
    "{\"resultCd\":\"001\",\"resultMsg\":\"There is no search result\",\"resultDt\":"          \
    "\"20261203150000\",\"data\":null}"
#define CODE(cd, msg)                                                                        \
    "{\"resultCd\":\"" cd "\",\"resultMsg\":\"" msg "\",\"resultDt\":\"20261203150000\","      \
    "\"data\":null}"

typedef struct step {
    const char *path; /* expected, after the base path: "/saveTrnsSalesOsdc" */
    unsigned status;
    const char *body;
    int delay_ms;
    long retry_after_s; /* 0: none */
} step;

typedef struct fake_etims {
    pthread_mutex_t mu;
    step steps[STEPS_MAX];
    int step_count, calls;
    char paths[STEPS_MAX][128];
    char bodies[STEPS_MAX][4096];
    char tin[STEPS_MAX][32], bhf[STEPS_MAX][32], key[STEPS_MAX][160], ctype[STEPS_MAX][64];
    duka_http_server *server;
    int port;
} fake_etims;

static void copy_header(const duka_http_exchange *ex, const char *name, char *out, size_t len)
{
    const char *v = duka_http_header(ex, name);
    snprintf(out, len, "%s", v ? v : "");
}

static void handle(void *app, duka_http_exchange *ex)
{
    fake_etims *f = app;
    pthread_mutex_lock(&f->mu);
    int i = f->calls++;
    if (i < STEPS_MAX) {
        snprintf(f->paths[i], sizeof(f->paths[i]), "%s", ex->path);
        snprintf(f->bodies[i], sizeof(f->bodies[i]), "%.*s", (int)ex->body_len, ex->body);
        copy_header(ex, "tin", f->tin[i], sizeof(f->tin[i]));
        copy_header(ex, "bhfId", f->bhf[i], sizeof(f->bhf[i]));
        copy_header(ex, "cmcKey", f->key[i], sizeof(f->key[i]));
        copy_header(ex, "Content-Type", f->ctype[i], sizeof(f->ctype[i]));
    }
    step s = i < f->step_count ? f->steps[i] : (step){NULL, 500, "no more steps", 0, 0};
    pthread_mutex_unlock(&f->mu);
    if (s.delay_ms > 0) {
        struct timespec ts = {s.delay_ms / 1000, (long)(s.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    char want[160];
    snprintf(want, sizeof(want), "/etims-api%s", s.path ? s.path : "");
    if (s.path != NULL && strcmp(ex->path, want) != 0) {
        duka_http_reply_bytes(ex, 404, "text/plain", "wrong path", 10, false);
        return;
    }
    ex->retry_after_s = s.retry_after_s > 0 ? s.retry_after_s : -1;
    duka_http_reply_bytes(ex, s.status, "application/json", s.body, strlen(s.body), false);
}

/* A socket on 127.0.0.1 with a port the kernel chose. */
static int loopback_socket(int *port, bool do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static fake_etims *fake_start(const step *steps, int n)
{
    fake_etims *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pthread_mutex_init(&f->mu, NULL);
    assert_true(n <= STEPS_MAX);
    for (int i = 0; i < n; i++)
        f->steps[i] = steps[i];
    f->step_count = n;
    int fd = loopback_socket(&f->port, true);
    char listen_at[64];
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", f->port);
    duka_http_server_options opt = {.max_body_bytes = 1u << 20, .have_listen_fd = true,
                                    .listen_fd = fd};
    duka_err err = {0};
    assert_ok(duka_http_server_start_opts(listen_at, &opt, handle, f, &f->server, &err), &err);
    return f;
}

static void fake_stop(fake_etims *f)
{
    duka_http_server_stop(f->server);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int saves_of(const fake_etims *f)
{
    int n = 0;
    for (int i = 0; i < f->calls && i < STEPS_MAX; i++)
        n += strstr(f->paths[i], "/saveTrnsSalesOsdc") != NULL;
    return n;
}

static duka_etims_conf conf_for(int port, long timeout_ms)
{
    duka_etims_conf c;
    memset(&c, 0, sizeof(c));
    snprintf(c.base_url, sizeof(c.base_url), "http://127.0.0.1:%d/etims-api/", port);
    c.timeout_ms = timeout_ms;
    return c;
}

static duka_etims_device device(void)
{
    duka_etims_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.tin, sizeof(d.tin), "P051234567X");
    snprintf(d.bhf_id, sizeof(d.bhf_id), "00");
    snprintf(d.dvc_srl_no, sizeof(d.dvc_srl_no), "duka-hub-1");
    snprintf(d.sdc_id, sizeof(d.sdc_id), "KRACU0100000001");
    snprintf(d.mrc_no, sizeof(d.mrc_no), "WIS00000001");
    snprintf(d.cmc_key, sizeof(d.cmc_key), "0123456789abcdef0123456789abcdef");
    return d;
}

/* The example sale's body text, as the hub stores it. */
static char *example_body(void)
{
    const line_spec lines[] = {{"SKU1", 2000, 5800, 'B'}};
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    sale_build(s, "T01", "T01-20261203-00042", 1796297400000LL, lines, 1, "cash", NULL);
    json_t *b = duka_etims_invoice_body(s, 'S', NULL, "Mama Duka");
    char *text = json_dumps(b, DUKA_ETIMS_JSON_FLAGS);
    if (text == NULL)
        abort();
    json_decref(b);
    duka_sale_free(s);
    return text;
}

typedef struct outcome {
    duka_rc rc;
    duka_etims_decision d;
    int calls, saves;
    int64_t elapsed_ms;
} outcome;

/* Runs one forward of invoice 17 against the steps. f_out keeps the server's record (the
 * caller stops it) when not NULL. */
static outcome run(const step *steps, int n, bool unclear, long timeout_ms, fake_etims **f_out)
{
    fake_etims *f = fake_start(steps, n);
    duka_etims_conf c = conf_for(f->port, timeout_ms);
    duka_etims_device dev = device();
    char *body = example_body();
    duka_etims_job job = {.invc_no = 17, .org_invc_no = 0, .body_json = body, .unclear = unclear};
    outcome o;
    memset(&o, 0, sizeof(o));
    duka_err err = {0};
    int64_t t0 = duka_monotonic_ms();
    o.rc = duka_etims_forward(&c, &dev, &job, &o.d, &err);
    o.elapsed_ms = duka_monotonic_ms() - t0;
    free(body);
    if (o.rc != DUKA_OK)
        fail_msg("forward: %s", err.msg);
    pthread_mutex_lock(&f->mu);
    o.calls = f->calls;
    o.saves = saves_of(f);
    pthread_mutex_unlock(&f->mu);
    assert_true(o.saves <= 1); /* never two saves in one call */
    assert_true(o.d.answer.message[0] != '\0');
    if (f_out != NULL)
        *f_out = f;
    else
        fake_stop(f);
    return o;
}

static void expect_kind(const outcome *o, duka_fwd_kind kind, const char *category,
                        const char *needle)
{
    if (o->d.kind != kind)
        fail_msg("decision %s (%s), expected %s", duka_etims_fwd_kind_name(o->d.kind),
                 o->d.answer.message, duka_etims_fwd_kind_name(kind));
    if (category == NULL)
        assert_null(o->d.error_category);
    else
        assert_string_equal(o->d.error_category, category);
    if (needle != NULL)
        assert_contains(o->d.answer.message, needle);
}

/* ---- the protocol ---- */

static void test_save_ok_done(void **state)
{
    (void)state;
    const step steps[] = {{"/saveTrnsSalesOsdc", 200, SAVE_OK, 0, 0}};
    fake_etims *f = NULL;
    outcome o = run(steps, 1, false, 5000, &f);
    expect_kind(&o, DUKA_FWD_DONE, NULL, NULL);
    assert_int_equal(o.calls, 1);
    assert_string_equal(o.d.answer.rcpt_sign, "ABCDEFGHIJKLMNOP");
    assert_string_equal(o.d.answer.intrl_data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    assert_string_equal(o.d.answer.sdc_datetime, "2026-12-03 14:30:05");
    assert_int_equal(o.d.answer.cur_rcpt_no, 17);
    /* The request: headers, and invcNo/orgInvcNo first, then the stored body unchanged. */
    assert_string_equal(f->tin[0], "P051234567X");
    assert_string_equal(f->bhf[0], "00");
    assert_string_equal(f->key[0], "0123456789abcdef0123456789abcdef");
    assert_string_equal(f->ctype[0], "application/json");
    char *body = example_body();
    char want[4096];
    snprintf(want, sizeof(want), "{\"invcNo\":17,\"orgInvcNo\":0,%s", body + 1);
    assert_string_equal(f->bodies[0], want);
    free(body);
    fake_stop(f);
}

static void test_unclear_found_no_save(void **state)
{
    (void)state;
    const step steps[] = {{"/selectInvoiceDetails", 200, SELECT_FOUND, 0, 0}};
    fake_etims *f = NULL;
    outcome o = run(steps, 1, true, 5000, &f);
    expect_kind(&o, DUKA_FWD_DONE, NULL, NULL);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.saves, 0);
    assert_string_equal(f->bodies[0], "{\"invcNo\":17}");
    assert_string_equal(f->key[0], "0123456789abcdef0123456789abcdef");
    assert_string_equal(o.d.answer.rcpt_sign, "QRSTUVWXYZ234567");
    assert_string_equal(o.d.answer.sdc_datetime, "2026-12-03 14:30:05");
    fake_stop(f);
}

static void test_unclear_not_found_saves(void **state)
{
    (void)state;
    const step steps[] = {{"/selectInvoiceDetails", 200, NOT_FOUND, 0, 0},
                          {"/saveTrnsSalesOsdc", 200, SAVE_OK, 0, 0}};
    outcome o = run(steps, 2, true, 5000, NULL);
    expect_kind(&o, DUKA_FWD_DONE, NULL, NULL);
    assert_int_equal(o.calls, 2);
    assert_int_equal(o.saves, 1);
    assert_string_equal(o.d.answer.rcpt_sign, "ABCDEFGHIJKLMNOP");
}

static void test_unclear_found_other_invoice(void **state)
{
    (void)state;
    const step steps[] = {
        {"/selectInvoiceDetails", 200, SELECT_FOUND_OF("T02-20261203-00001", "116.0"), 0, 0}};
    outcome o = run(steps, 1, true, 5000, NULL);
    expect_kind(&o, DUKA_FWD_FAILED, "validation", "trdInvcNo T02-20261203-00001");
    assert_int_equal(o.saves, 0);
    const step other_total[] = {
        {"/selectInvoiceDetails", 200, SELECT_FOUND_OF("T01-20261203-00042", "115.99"), 0, 0}};
    o = run(other_total, 1, true, 5000, NULL);
    expect_kind(&o, DUKA_FWD_FAILED, "validation", "totAmt 115.99, not 116.00");
}

static void test_save_timeout_unclear(void **state)
{
    (void)state;
    const step steps[] = {{"/saveTrnsSalesOsdc", 200, SAVE_OK, 1500, 0}};
    outcome o = run(steps, 1, false, 300, NULL);
    expect_kind(&o, DUKA_FWD_UNCLEAR, "network", "may have arrived");
    assert_int_equal(o.calls, 1);
    assert_true(o.elapsed_ms < 1400);
}

static void test_select_timeout_unclear(void **state)
{
    (void)state;
    const step steps[] = {{"/selectInvoiceDetails", 200, SELECT_FOUND, 1500, 0}};
    outcome o = run(steps, 1, true, 300, NULL);
    expect_kind(&o, DUKA_FWD_UNCLEAR, "network", NULL);
    assert_int_equal(o.saves, 0);
}

static void test_duplicate_then_select(void **state)
{
    (void)state;
    const step steps[] = {{"/saveTrnsSalesOsdc", 200, CODE("994", "Overlapped data"), 0, 0},
                          {"/selectInvoiceDetails", 200, SELECT_FOUND, 0, 0}};
    outcome o = run(steps, 2, false, 5000, NULL);
    expect_kind(&o, DUKA_FWD_DONE, NULL, NULL);
    assert_int_equal(o.calls, 2);
    assert_string_equal(o.d.answer.rcpt_sign, "QRSTUVWXYZ234567");

    const step gone[] = {{"/saveTrnsSalesOsdc", 200, CODE("994", "Overlapped data"), 0, 0},
                         {"/selectInvoiceDetails", 200, NOT_FOUND, 0, 0}};
    o = run(gone, 2, false, 5000, NULL);
    expect_kind(&o, DUKA_FWD_RETRY, "server", "994 but not found");
    assert_int_equal(o.calls, 2);

    /* unclear, not found, save 994, found: two selects, one save. */
    const step three[] = {{"/selectInvoiceDetails", 200, NOT_FOUND, 0, 0},
                          {"/saveTrnsSalesOsdc", 200, CODE("994", "Overlapped data"), 0, 0},
                          {"/selectInvoiceDetails", 200, SELECT_FOUND, 0, 0}};
    o = run(three, 3, true, 5000, NULL);
    expect_kind(&o, DUKA_FWD_DONE, NULL, NULL);
    assert_int_equal(o.calls, 3);
    assert_int_equal(o.saves, 1);
}

static void test_refused_failed(void **state)
{
    (void)state;
    const step steps[] = {
        {"/saveTrnsSalesOsdc", 200, CODE("910", "taxAmtB 15.00 is not the sum"), 0, 0}};
    outcome o = run(steps, 1, false, 5000, NULL);
    expect_kind(&o, DUKA_FWD_FAILED, "validation", "taxAmtB 15.00 is not the sum");
    assert_string_equal(o.d.answer.result_cd, "910");
    const step bad_key[] = {{"/saveTrnsSalesOsdc", 200, CODE("901", "invalid device"), 0, 0}};
    o = run(bad_key, 1, false, 5000, NULL);
    expect_kind(&o, DUKA_FWD_FAILED, "validation", "901");
    const step http400[] = {{"/saveTrnsSalesOsdc", 400, "{}", 0, 0}};
    o = run(http400, 1, false, 5000, NULL);
    expect_kind(&o, DUKA_FWD_FAILED, "validation", "HTTP 400");
}

static void test_retry(void **state)
{
    (void)state;
    const struct {
        step s;
        const char *needle;
    } cases[] = {
        {{"/saveTrnsSalesOsdc", 200, CODE("999", "injected"), 0, 0}, "999"},
        {{"/saveTrnsSalesOsdc", 200, CODE("921", "sequence"), 0, 0}, "921"},
        {{"/saveTrnsSalesOsdc", 503, "Service Unavailable", 0, 0}, "HTTP 503"},
        {{"/saveTrnsSalesOsdc", 200, "{\"resultCd\":", 0, 0}, "not JSON"},
        {{"/saveTrnsSalesOsdc", 429, "{}", 0, 7}, "Retry-After 7 s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        outcome o = run(&cases[i].s, 1, false, 5000, NULL);
        expect_kind(&o, DUKA_FWD_RETRY, "server", cases[i].needle);
        assert_int_equal(o.calls, 1);
        if (cases[i].s.retry_after_s > 0)
            assert_int_equal(o.d.answer.retry_after_s, 7);
        else
            assert_int_equal(o.d.answer.retry_after_s, -1);
    }
}

static void test_huge_and_wrong_number(void **state)
{
    (void)state;
    static char big[300 * 1024];
    memset(big, ' ', sizeof(big) - 1);
    memcpy(big, SAVE_OK, strlen(SAVE_OK));
    const step huge[] = {{"/saveTrnsSalesOsdc", 200, big, 0, 0}};
    outcome o = run(huge, 1, false, 5000, NULL);
    expect_kind(&o, DUKA_FWD_RETRY, "server", "reply too large");
    /* selectInvoiceDetails for 17 answering invoice 18 is not an answer about ours. */
    const step other[] = {{"/selectInvoiceDetails", 200,
                           "{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"invcNo\":18,"
                           "\"receipt\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
                           "\"rcptSign\":\"CD\",\"sdcDateTime\":\"20261203143005\"}}]}}",
                           0, 0}};
    o = run(other, 1, true, 5000, NULL);
    expect_kind(&o, DUKA_FWD_RETRY, "server", "answered invcNo 18");
    assert_int_equal(o.saves, 0);
    assert_string_equal(o.d.answer.rcpt_sign, "");
}

static void test_server_down_offline(void **state)
{
    (void)state;
    int port = 0;
    int fd = loopback_socket(&port, false); /* bound, never listening: refused */
    duka_etims_conf c = conf_for(port, 2000);
    duka_etims_device dev = device();
    char *body = example_body();
    for (int unclear = 0; unclear <= 1; unclear++) {
        duka_etims_job job = {.invc_no = 17, .body_json = body, .unclear = unclear};
        duka_etims_decision d;
        duka_err err = {0};
        assert_ok(duka_etims_forward(&c, &dev, &job, &d, &err), &err);
        if (d.kind != DUKA_FWD_OFFLINE)
            fail_msg("%s: %s", duka_etims_fwd_kind_name(d.kind), d.answer.message);
        assert_string_equal(d.error_category, "network");
        assert_contains(d.answer.message, "eTIMS unreachable at http://127.0.0.1:");
        assert_contains(d.answer.message, "connect");
    }
    free(body);
    close(fd);
}

static void test_cancel_is_unclear(void **state)
{
    (void)state;
    const step steps[] = {{"/saveTrnsSalesOsdc", 200, SAVE_OK, 1500, 0}};
    fake_etims *f = fake_start(steps, 1);
    duka_etims_conf c = conf_for(f->port, 30000);
    atomic_bool cancel = true;
    c.cancel = &cancel;
    duka_etims_device dev = device();
    char *body = example_body();
    duka_etims_job job = {.invc_no = 17, .body_json = body};
    duka_etims_decision d;
    duka_err err = {0};
    int64_t t0 = duka_monotonic_ms();
    assert_ok(duka_etims_forward(&c, &dev, &job, &d, &err), &err);
    assert_true(duka_monotonic_ms() - t0 < 1400);
    assert_int_equal(d.kind, DUKA_FWD_UNCLEAR);
    free(body);
    fake_stop(f);
}

static void test_bad_conf_and_device(void **state)
{
    (void)state;
    duka_etims_conf c;
    memset(&c, 0, sizeof(c));
    snprintf(c.base_url, sizeof(c.base_url), "ftp://example");
    duka_etims_device dev = device();
    char *body = example_body();
    duka_etims_job job = {.invc_no = 17, .body_json = body};
    duka_etims_decision d;
    duka_err err = {0};
    assert_rc(duka_etims_forward(&c, &dev, &job, &d, &err), DUKA_INPUT, &err);
    assert_int_equal(d.kind, DUKA_FWD_FAILED);
    assert_contains(err.msg, "ETIMS_BASE_URL 'ftp://example'");
    /* A cmcKey that would inject a header is never sent. */
    c = conf_for(1, 1000);
    snprintf(dev.cmc_key, sizeof(dev.cmc_key), "abc\r\nX-Evil: 1");
    duka_err_clear(&err);
    assert_rc(duka_etims_forward(&c, &dev, &job, &d, &err), DUKA_INPUT, &err);
    assert_contains(d.answer.message, "not allowed in a header");
    /* A stored body that is not an object. */
    dev = device();
    job.body_json = "[1]";
    duka_err_clear(&err);
    assert_rc(duka_etims_forward(&c, &dev, &job, &d, &err), DUKA_INPUT, &err);
    assert_contains(err.msg, "not a JSON object");
    free(body);
}

/* ---- init ---- */

static void test_init_device(void **state)
{
    (void)state;
    const step steps[] = {
        {"/selectInitOsdcInfo", 200,
         "{\"resultCd\":\"902\",\"resultMsg\":\"This device is installed\",\"data\":{\"info\":{"
         "\"tin\":\"P051234567X\",\"bhfId\":\"00\",\"sdcId\":\"KRACU0100000001\","
         "\"mrcNo\":\"WIS00000001\",\"cmcKey\":\"feedface\"}}}",
         0, 0},
        {"/selectInitOsdcInfo", 200, CODE("910", "tin is not valid"), 0, 0}};
    fake_etims *f = fake_start(steps, 2);
    duka_etims_conf c = conf_for(f->port, 5000);
    duka_etims_device dev;
    memset(&dev, 0, sizeof(dev));
    duka_etims_answer a;
    duka_err err = {0};
    assert_ok(duka_etims_init_device(&c, "P051234567X", "00", "duka-hub-1", &dev, &a, &err), &err);
    assert_int_equal(a.verdict, DUKA_ETIMS_OK);
    assert_string_equal(dev.tin, "P051234567X");
    assert_string_equal(dev.bhf_id, "00");
    assert_string_equal(dev.dvc_srl_no, "duka-hub-1");
    assert_string_equal(dev.sdc_id, "KRACU0100000001");
    assert_string_equal(dev.mrc_no, "WIS00000001");
    assert_string_equal(dev.cmc_key, "feedface");
    assert_string_equal(f->bodies[0],
                        "{\"tin\":\"P051234567X\",\"bhfId\":\"00\",\"dvcSrlNo\":\"duka-hub-1\"}");
    duka_etims_device untouched = dev;
    assert_ok(duka_etims_init_device(&c, "X1", "00", "duka-hub-1", &dev, &a, &err), &err);
    assert_int_equal(a.verdict, DUKA_ETIMS_REFUSED);
    assert_contains(a.message, "tin is not valid");
    assert_memory_equal(&dev, &untouched, sizeof(dev));
    fake_stop(f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_ok_done),
        cmocka_unit_test(test_unclear_found_no_save),
        cmocka_unit_test(test_unclear_not_found_saves),
        cmocka_unit_test(test_unclear_found_other_invoice),
        cmocka_unit_test(test_save_timeout_unclear),
        cmocka_unit_test(test_select_timeout_unclear),
        cmocka_unit_test(test_duplicate_then_select),
        cmocka_unit_test(test_refused_failed),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_huge_and_wrong_number),
        cmocka_unit_test(test_server_down_offline),
        cmocka_unit_test(test_cancel_is_unclear),
        cmocka_unit_test(test_bad_conf_and_device),
        cmocka_unit_test(test_init_device),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

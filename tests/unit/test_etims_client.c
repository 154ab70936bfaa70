/*
 * test_etims_client.c — the parsers of eTIMS's answers (tax/etims/etims_client.h): every
 * resultCd, both date formats, HTTP statuses, and replies that are malformed, truncated,
 * huge, too deep or of the wrong types. Each must end as a verdict with a one-line printable
 * message, never a crash and never an OK with an empty or strange signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "tax/etims/etims_client.h"
#include "test_util.h"

#define SAVE_OK                                                                              \
    "{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"resultDt\":\"20261203143005\","  \
    "\"data\":{\"curRcptNo\":17,\"totRcptNo\":18,\"intrlData\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ\"," \
    "\"rcptSign\":\"ABCDEFGHIJKLMNOP\",\"sdcDateTime\":\"20261203143005\"}}"

#define SELECT_OK                                                                            \
    "{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"resultDt\":\"20261203150000\","  \
    "\"data\":{\"salesList\":[{\"invcNo\":17,\"trdInvcNo\":\"T01-20261203-00042\","            \
    "\"rcptTyCd\":\"S\",\"totAmt\":116.0,\"receipt\":{\"curRcptNo\":17,\"totRcptNo\":18,"      \
    "\"intrlData\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ\",\"rcptSign\":\"ABCDEFGHIJKLMNOP\","          \
    "\"sdcDateTime\":\"2026-12-03 14:30:05.0\"}}]}}"

#define INIT_OK                                                                              \
    "{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"resultDt\":\"20261203143005\","  \
    "\"data\":{\"info\":{\"tin\":\"P051234567X\",\"taxprNm\":\"Mama Duka\",\"bhfId\":\"00\","   \
    "\"bhfNm\":\"Head office\",\"dvcId\":\"1\",\"sdcId\":\"KRACU0100000001\","                \
    "\"mrcNo\":\"WIS00000001\",\"cmcKey\":\"0123456789abcdef0123456789abcdef\"}}}"

/* What every answer must be, whatever came in. */
static void check_shape(const duka_etims_answer *a, bool signs)
{
    assert_true(a->verdict >= DUKA_ETIMS_OK && a->verdict <= DUKA_ETIMS_OFFLINE);
    size_t n = strlen(a->message);
    if (n == 0)
        fail_msg("verdict %s without a message", duka_etims_verdict_name(a->verdict));
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a->message[i] < 0x20 || (unsigned char)a->message[i] > 0x7e)
            fail_msg("message byte %zu is 0x%02x: %s", i, (unsigned char)a->message[i],
                     a->message);
    if (a->verdict == DUKA_ETIMS_OK && signs) {
        assert_int_equal(strlen(a->sdc_datetime), 19);
        assert_true(a->rcpt_sign[0] != '\0' || a->cur_rcpt_no == 0);
    } else {
        assert_string_equal(a->rcpt_sign, "");
        assert_string_equal(a->sdc_datetime, "");
    }
}

#define check_answer_shape(a) check_shape((a), true)

static duka_etims_answer save_of(long status, const char *body)
{
    duka_etims_answer a;
    memset(&a, 0x5a, sizeof(a)); /* the parser must set everything */
    duka_etims_parse_save(status, body, body ? strlen(body) : 0, &a);
    check_answer_shape(&a);
    return a;
}

static duka_etims_answer select_of(long status, const char *body)
{
    duka_etims_answer a;
    memset(&a, 0x5a, sizeof(a));
    duka_etims_parse_select(status, body, body ? strlen(body) : 0, &a);
    check_answer_shape(&a);
    return a;
}

static void expect(const duka_etims_answer *a, duka_etims_verdict v, const char *needle,
                   const char *body)
{
    if (a->verdict != v)
        fail_msg("verdict %s (%s), expected %s, for %s", duka_etims_verdict_name(a->verdict),
                 a->message, duka_etims_verdict_name(v), body ? body : "(null)");
    if (needle != NULL)
        assert_contains(a->message, needle);
}

/* A reply of the given code and message, data null. */
static void code_reply(char *buf, size_t len, const char *cd, const char *msg)
{
    snprintf(buf, len, "{\"resultCd\":\"%s\",\"resultMsg\":\"%s\",\"resultDt\":\"20261203143005\","
                       "\"data\":null}",
             cd, msg);
}

/* ---- save ---- */

static void test_save_ok(void **state)
{
    (void)state;
    duka_etims_answer a = save_of(200, SAVE_OK);
    expect(&a, DUKA_ETIMS_OK, "17/18", SAVE_OK);
    assert_string_equal(a.result_cd, "000");
    assert_int_equal(a.http_status, 200);
    assert_int_equal(a.retry_after_s, -1);
    assert_int_equal(a.cur_rcpt_no, 17);
    assert_int_equal(a.tot_rcpt_no, 18);
    assert_string_equal(a.intrl_data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    assert_string_equal(a.rcpt_sign, "ABCDEFGHIJKLMNOP");
    assert_string_equal(a.sdc_datetime, "2026-12-03 14:30:05");
}

static void test_codes(void **state)
{
    (void)state;
    const struct {
        const char *cd;
        duka_etims_verdict save, select;
        const char *needle;
    } cases[] = {
        {"994", DUKA_ETIMS_DUPLICATE, DUKA_ETIMS_RETRY, "994"},
        {"001", DUKA_ETIMS_RETRY, DUKA_ETIMS_NOT_FOUND, "001"},
        {"910", DUKA_ETIMS_REFUSED, DUKA_ETIMS_REFUSED, "910"},
        {"901", DUKA_ETIMS_REFUSED, DUKA_ETIMS_REFUSED, "901"},
        {"890", DUKA_ETIMS_REFUSED, DUKA_ETIMS_REFUSED, "890"},
        {"891", DUKA_ETIMS_REFUSED, DUKA_ETIMS_REFUSED, "891"},
        {"899", DUKA_ETIMS_REFUSED, DUKA_ETIMS_REFUSED, "899"},
        {"999", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "999"},
        {"921", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "921"},
        {"922", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "original"},
        {"902", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "unknown resultCd 902"},
        {"123", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "unknown resultCd 123"},
        {"89", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "unknown"},
        {"8900", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "unknown"},
        {"0000", DUKA_ETIMS_RETRY, DUKA_ETIMS_RETRY, "unknown"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        code_reply(body, sizeof(body), cases[i].cd, "taxAmtB 15.00 is not the sum");
        duka_etims_answer a = save_of(200, body);
        expect(&a, cases[i].save, cases[i].needle, body);
        assert_string_equal(a.result_cd, cases[i].cd);
        a = select_of(200, body);
        expect(&a, cases[i].select, cases[i].needle, body);
        assert_string_equal(a.result_cd, cases[i].cd);
    }
    /* The message quotes resultMsg (for the refused invoice's last_error). */
    char body[512];
    code_reply(body, sizeof(body), "910", "taxAmtB 15.00 is not the sum of items' taxAmt 16.00");
    duka_etims_answer a = save_of(200, body);
    expect(&a, DUKA_ETIMS_REFUSED, "taxAmtB 15.00 is not the sum of items' taxAmt 16.00", body);
}

static void test_http_statuses(void **state)
{
    (void)state;
    const struct {
        long status;
        const char *body;
        duka_etims_verdict v;
        const char *needle;
    } cases[] = {
        {503, "Service Unavailable", DUKA_ETIMS_RETRY, "HTTP 503"},
        {500, "", DUKA_ETIMS_RETRY, "HTTP 500"},
        {502, NULL, DUKA_ETIMS_RETRY, "HTTP 502"},
        {429, "{}", DUKA_ETIMS_RETRY, "429"},
        {400, "{\"error\":\"bad\"}", DUKA_ETIMS_REFUSED, "HTTP 400"},
        {404, "not here", DUKA_ETIMS_REFUSED, "HTTP 404"},
        {413, "", DUKA_ETIMS_REFUSED, "HTTP 413"},
        {401, "", DUKA_ETIMS_REFUSED, "HTTP 401"},
        {302, "", DUKA_ETIMS_RETRY, "HTTP 302"},
        {204, "", DUKA_ETIMS_RETRY, "HTTP 204"},
        {201, SAVE_OK, DUKA_ETIMS_RETRY, "HTTP 201"},
        {0, "", DUKA_ETIMS_RETRY, "HTTP 0"},
        {999, "", DUKA_ETIMS_RETRY, "HTTP 999"},
        {503, "line one\nline two\r\x01\x7f\xff", DUKA_ETIMS_RETRY, "line one?line two"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_etims_answer a = save_of(cases[i].status, cases[i].body);
        expect(&a, cases[i].v, cases[i].needle, cases[i].body);
        assert_int_equal(a.http_status, cases[i].status);
        assert_string_equal(a.result_cd, "");
        a = select_of(cases[i].status, cases[i].body);
        expect(&a, cases[i].v, cases[i].needle, cases[i].body);
    }
}

static void test_malformed_replies(void **state)
{
    (void)state;
    const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        {"", "not JSON"},
        {NULL, "not JSON"},
        {"{", "not JSON"},
        {"<html>503</html>", "not JSON"},
        {"null", "not JSON"}, /* jansson wants an object or array at the top */
        {"[]", "not a JSON object"},
        {"[{\"resultCd\":\"000\"}]", "not a JSON object"},
        {"{}", "resultCd is missing"},
        {"{\"resultCd\":0}", "resultCd is not a string"},
        {"{\"resultCd\":null}", "resultCd is not a string"},
        {"{\"resultCd\":\"\"}", "resultCd is not a code"},
        {"{\"resultCd\":\"OK\"}", "resultCd is not a code: 'OK'"},
        {"{\"resultCd\":\"000\\n\"}", "resultCd is not a code"},
        {"{\"resultCd\":\"00000000\"}", "resultCd is not a code"},
        {"{\"resultCd\":\"000\",\"resultCd\":\"994\"}", "not JSON"}, /* duplicate keys */
        {"{\"resultCd\":\"000\"}", "without a data object"},
        {"{\"resultCd\":\"000\",\"data\":null}", "without a data object"},
        {"{\"resultCd\":\"000\",\"data\":[]}", "without a data object"},
        {"{\"resultCd\":\"000\",\"data\":{}}", "curRcptNo is missing"},
        {"{\"resultCd\":\"000\",\"resultMsg\":\"It is succeeded\",\"data\":{\"curRcptNo\":\"17\","
         "\"totRcptNo\":18}}",
         "curRcptNo is not an integer"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":17.0,\"totRcptNo\":18}}",
         "curRcptNo is not an integer"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":0,\"totRcptNo\":18}}",
         "curRcptNo is out of range"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":-3,\"totRcptNo\":18}}",
         "curRcptNo is out of range"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1e3}}",
         "totRcptNo is not an integer"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":99999999999999999999}}",
         "not JSON"}, /* beyond int64: jansson refuses */
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":7}}",
         "intrlData is not a string"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\"}}",
         "rcptSign is missing"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"\"}}",
         "intrlData '' is not 1 to 63"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"AB CD\"}}",
         "rcptSign 'AB CD'"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"AB\\r\\nX-Injected: 1\"}}",
         "rcptSign 'AB??X-Injected: 1'"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"AB\\u0000CD\"}}",
         "not JSON"}, /* jansson refuses NUL in strings */
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"\\u00e9t\\u00e9\"}}",
         "rcptSign '\?\?t\?\?'"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"0123456789012345678901234567890123456789012345678901234567890123\"}}",
         "is not 1 to 63"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"CD\"}}",
         "bad sdcDateTime (missing)"},
        {"{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,\"intrlData\":\"AB\","
         "\"rcptSign\":\"CD\",\"sdcDateTime\":20261203143005}}",
         "bad sdcDateTime (not a string)"},
        {"{\"resultCd\":\"000\",\"data\":\"signed\"}", "without a data object"},
        {"\xef\xbb\xbf{\"resultCd\":\"000\"}", "not JSON"},
        {"{\"resultCd\":\"\xff\"}", "not JSON"}, /* invalid UTF-8 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_etims_answer a = save_of(200, cases[i].body);
        expect(&a, DUKA_ETIMS_RETRY, cases[i].needle, cases[i].body);
    }
    /* Nesting: 16 levels pass the depth check, 17 do not (data holds the arrays). */
    for (int depth = 15; depth <= 40; depth++) {
        char body[256];
        int n = snprintf(body, sizeof(body), "{\"resultCd\":\"999\",\"data\":");
        for (int k = 0; k < depth - 1; k++)
            body[n++] = '[';
        for (int k = 0; k < depth - 1; k++)
            body[n++] = ']';
        snprintf(body + n, sizeof(body) - (size_t)n, "}");
        duka_etims_answer a = save_of(200, body);
        expect(&a, DUKA_ETIMS_RETRY, depth <= 16 ? "999" : "deeper than", body);
    }
}

static void test_dates(void **state)
{
    (void)state;
    const struct {
        const char *in, *out; /* out NULL: bad */
    } cases[] = {
        {"20261203143005", "2026-12-03 14:30:05"},
        {"2026-12-03 14:30:05.0", "2026-12-03 14:30:05"},
        {"2026-12-03 14:30:05", "2026-12-03 14:30:05"},
        {"2026-12-03 14:30:05.123456", "2026-12-03 14:30:05"},
        {"20280229000000", "2028-02-29 00:00:00"},
        {"20261231235959", "2026-12-31 23:59:59"},
        {"19700101000000", "1970-01-01 00:00:00"},
        {"20000229120000", "2000-02-29 12:00:00"},
        {"20270229120000", NULL}, /* not a leap year */
        {"21000229120000", NULL},
        {"20261301143005", NULL},
        {"20261200143005", NULL},
        {"20261232143005", NULL},
        {"20261131143005", NULL},
        {"20261203243005", NULL},
        {"20261203146005", NULL},
        {"20261203143060", NULL},
        {"19691231235959", NULL},
        {"2026120314300", NULL},
        {"202612031430050", NULL},
        {"2026-12-03T14:30:05", NULL},
        {"2026-12-03 14:30:05.", NULL},
        {"2026-12-03 14:30:05.0Z", NULL},
        {"2026-12-03 14:30:05,0", NULL},
        {"2026-12-03 14:30:05.1234567890", NULL},
        {"2026/12/03 14:30:05", NULL},
        {"2026-12-3 14:30:05.0", NULL},
        {"+026-12-03 14:30:05", NULL},
        {"2026120314300a", NULL},
        {"", NULL},
        {"now", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body),
                 "{\"resultCd\":\"000\",\"data\":{\"curRcptNo\":1,\"totRcptNo\":1,"
                 "\"intrlData\":\"AB\",\"rcptSign\":\"CD\",\"sdcDateTime\":\"%s\"}}",
                 cases[i].in);
        duka_etims_answer a = save_of(200, body);
        if (cases[i].out != NULL) {
            expect(&a, DUKA_ETIMS_OK, NULL, body);
            assert_string_equal(a.sdc_datetime, cases[i].out);
        } else {
            expect(&a, DUKA_ETIMS_RETRY, "bad sdcDateTime", body);
        }
        snprintf(body, sizeof(body),
                 "{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"receipt\":{\"curRcptNo\":1,"
                 "\"totRcptNo\":1,\"intrlData\":\"AB\",\"rcptSign\":\"CD\",\"sdcDateTime\":"
                 "\"%s\"}}]}}",
                 cases[i].in);
        a = select_of(200, body);
        if (cases[i].out != NULL) {
            expect(&a, DUKA_ETIMS_OK, NULL, body);
            assert_string_equal(a.sdc_datetime, cases[i].out);
        } else {
            expect(&a, DUKA_ETIMS_RETRY, "bad sdcDateTime", body);
        }
    }
}

static void test_truncated_replies(void **state)
{
    (void)state;
    const char *full[] = {SAVE_OK, SELECT_OK};
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(full[k]);
        for (size_t cut = 0; cut < n; cut++) {
            char *copy = malloc(cut + 1); /* exactly the bytes: ASan sees any overread */
            assert_non_null(copy);
            memcpy(copy, full[k], cut);
            copy[cut] = '\0';
            duka_etims_answer a;
            if (k == 0)
                duka_etims_parse_save(200, copy, cut, &a);
            else
                duka_etims_parse_select(200, copy, cut, &a);
            check_answer_shape(&a);
            if (a.verdict != DUKA_ETIMS_RETRY)
                fail_msg("prefix of %zu bytes: %s", cut, a.message);
            free(copy);
        }
    }
    /* Not NUL-terminated: the length is what counts. */
    char raw[sizeof(SAVE_OK) - 1];
    memcpy(raw, SAVE_OK, sizeof(raw));
    duka_etims_answer a;
    duka_etims_parse_save(200, raw, sizeof(raw), &a);
    expect(&a, DUKA_ETIMS_OK, NULL, SAVE_OK);
}

static void test_huge_reply(void **state)
{
    (void)state;
    size_t n = DUKA_ETIMS_REPLY_MAX_BYTES + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, SAVE_OK, strlen(SAVE_OK)); /* valid JSON and spaces: still too large */
    big[n] = '\0';
    duka_etims_answer a;
    duka_etims_parse_save(200, big, n, &a);
    check_answer_shape(&a);
    expect(&a, DUKA_ETIMS_RETRY, "too large", NULL);
    duka_etims_parse_select(503, big, n, &a);
    expect(&a, DUKA_ETIMS_RETRY, "too large", NULL);
    /* At the limit exactly it is read. */
    duka_etims_parse_save(200, big, n - 1, &a);
    expect(&a, DUKA_ETIMS_OK, NULL, NULL);
    /* A long resultMsg is cut, the message stays one bounded line. */
    memset(big, 'x', n);
    memcpy(big, "{\"resultCd\":\"910\",\"resultMsg\":\"", 31);
    memcpy(big + 4000, "\"}", 3);
    a = save_of(200, big);
    expect(&a, DUKA_ETIMS_REFUSED, "xxx...", NULL);
    assert_true(strlen(a.message) < DUKA_ETIMS_RESULT_MSG_QUOTE_MAX + 80);
    free(big);
}

/* ---- select ---- */

static void test_select_ok(void **state)
{
    (void)state;
    duka_etims_answer a = select_of(200, SELECT_OK);
    expect(&a, DUKA_ETIMS_OK, "17/18", SELECT_OK);
    assert_int_equal(a.cur_rcpt_no, 17);
    assert_int_equal(a.tot_rcpt_no, 18);
    assert_string_equal(a.rcpt_sign, "ABCDEFGHIJKLMNOP");
    assert_string_equal(a.intrl_data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    assert_string_equal(a.sdc_datetime, "2026-12-03 14:30:05");
    assert_int_equal(a.found_invc_no, 17);
    assert_string_equal(a.found_trd_invc_no, "T01-20261203-00042");
    assert_string_equal(a.found_rcpt_ty_cd, "S");
    assert_int_equal(a.found_tot_amt_cents, 11600);
    /* A save reply is not a select reply. */
    a = select_of(200, SAVE_OK);
    expect(&a, DUKA_ETIMS_RETRY, "salesList is missing", SAVE_OK);
    a = save_of(200, SELECT_OK);
    expect(&a, DUKA_ETIMS_RETRY, "curRcptNo is missing", SELECT_OK);
}

static void test_select_malformed(void **state)
{
    (void)state;
    const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"resultCd\":\"000\",\"data\":null}", "without a data object"},
        {"{\"resultCd\":\"000\",\"data\":{}}", "salesList is missing"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":{}}}", "salesList is not an array"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[]}}", "empty data.salesList"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[7]}}", "salesList[0] is not an object"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{}]}}", "receipt is missing"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"receipt\":\"x\"}]}}",
         "receipt is not an object"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"receipt\":{}}]}}",
         "receipt.curRcptNo is missing"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"invcNo\":\"17\",\"receipt\":{}}]}}",
         "salesList[0].invcNo is not an integer"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"totAmt\":\"116\",\"receipt\":{}}]}}",
         "totAmt is not a number"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"totAmt\":-1.0,\"receipt\":{}}]}}",
         "totAmt is out of range"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"totAmt\":1e300,\"receipt\":{}}]}}",
         "totAmt is out of range"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"trdInvcNo\":\"\",\"receipt\":{}}]}}",
         "trdInvcNo '' is not"},
        {"{\"resultCd\":\"000\",\"data\":{\"salesList\":[{\"rcptTyCd\":\"SALE\",\"receipt\":{}}]}}",
         "rcptTyCd 'SALE' is not"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_etims_answer a = select_of(200, cases[i].body);
        expect(&a, DUKA_ETIMS_RETRY, cases[i].needle, cases[i].body);
        assert_int_equal(a.found_invc_no, -1);
        assert_string_equal(a.found_trd_invc_no, "");
    }
    char body[512];
    code_reply(body, sizeof(body), "001", "There is no search result");
    duka_etims_answer a = select_of(200, body);
    expect(&a, DUKA_ETIMS_NOT_FOUND, "There is no search result", body);
}

/* ---- init ---- */

static void test_init(void **state)
{
    (void)state;
    duka_etims_device dev;
    memset(&dev, 0, sizeof(dev));
    duka_etims_answer a;
    duka_etims_parse_init(200, INIT_OK, strlen(INIT_OK), &a, &dev);
    check_shape(&a, false);
    expect(&a, DUKA_ETIMS_OK, "KRACU0100000001", INIT_OK);
    assert_string_equal(dev.sdc_id, "KRACU0100000001");
    assert_string_equal(dev.mrc_no, "WIS00000001");
    assert_string_equal(dev.cmc_key, "0123456789abcdef0123456789abcdef");

    /* 902 with the info is the same device again: OK. */
    char again[1024];
    snprintf(again, sizeof(again), "%s", INIT_OK);
    memcpy(strstr(again, "\"000\""), "\"902\"", 5);
    memset(&dev, 0, sizeof(dev));
    duka_etims_parse_init(200, again, strlen(again), &a, &dev);
    expect(&a, DUKA_ETIMS_OK, "already installed", again);
    assert_string_equal(dev.cmc_key, "0123456789abcdef0123456789abcdef");

    const struct {
        const char *body;
        duka_etims_verdict v;
        const char *needle;
    } cases[] = {
        {"{\"resultCd\":\"902\",\"resultMsg\":\"This device is installed\",\"data\":null}",
         DUKA_ETIMS_REFUSED, "no data.info"},
        {"{\"resultCd\":\"910\",\"resultMsg\":\"tin is invalid\",\"data\":null}",
         DUKA_ETIMS_REFUSED, "tin is invalid"},
        {"{\"resultCd\":\"000\",\"data\":{}}", DUKA_ETIMS_RETRY, "without data.info"},
        {"{\"resultCd\":\"000\",\"data\":{\"info\":{\"sdcId\":\"KRACU0100000001\","
         "\"mrcNo\":\"WIS1\"}}}",
         DUKA_ETIMS_RETRY, "cmcKey is missing"},
        {"{\"resultCd\":\"000\",\"data\":{\"info\":{\"sdcId\":\"KRACU0100000001\","
         "\"mrcNo\":\"WIS1\",\"cmcKey\":\"abc\\r\\nX-Evil: 1\"}}}",
         DUKA_ETIMS_RETRY, "cmcKey 'abc??X-Evil: 1'"},
        {"{\"resultCd\":\"000\",\"data\":{\"info\":{\"sdcId\":\"KRACU01000000010000000000000000000\","
         "\"mrcNo\":\"WIS1\",\"cmcKey\":\"k\"}}}",
         DUKA_ETIMS_RETRY, "sdcId"},
        {"{\"resultCd\":\"999\",\"data\":null}", DUKA_ETIMS_RETRY, "999"},
        {"{\"resultCd\":\"994\",\"data\":null}", DUKA_ETIMS_RETRY, "unknown"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&dev, 0, sizeof(dev));
        duka_etims_parse_init(200, cases[i].body, strlen(cases[i].body), &a, &dev);
        check_shape(&a, false);
        expect(&a, cases[i].v, cases[i].needle, cases[i].body);
        assert_string_equal(dev.cmc_key, ""); /* untouched unless OK */
    }
    duka_etims_parse_init(503, "down", 4, &a, &dev);
    expect(&a, DUKA_ETIMS_RETRY, "HTTP 503", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_ok),           cmocka_unit_test(test_codes),
        cmocka_unit_test(test_http_statuses),     cmocka_unit_test(test_malformed_replies),
        cmocka_unit_test(test_dates),             cmocka_unit_test(test_truncated_replies),
        cmocka_unit_test(test_huge_reply),        cmocka_unit_test(test_select_ok),
        cmocka_unit_test(test_select_malformed),  cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
 * The client's network calls are exercised against the real simulator end to end
 * (tests/e2e/test_mpesa_verify.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payments/mpesa/daraja_client.h"
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
    reply(200, "{\"ResponseCode\":\"0\"}", duka_daraja_parse_stk_push, DUKA_DARAJA_RETRY);
    reply(200, "{\"ResponseCode\":\"1\",\"CheckoutRequestID\":\"x\",\"MerchantRequestID\":\"y\"}",
          duka_daraja_parse_stk_push, DUKA_DARAJA_RETRY);
    const char *locked = "{\"requestId\":\"1\",\"errorCode\":\"500.001.1001\","
                         "\"errorMessage\":\"Unable to lock subscriber\"}";
    reply(500, locked, duka_daraja_parse_stk_push, DUKA_DARAJA_REFUSED);
    reply(500, locked, duka_daraja_parse_stk_query, DUKA_DARAJA_PENDING);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_are_classified),
        cmocka_unit_test(test_stk_callbacks),
        cmocka_unit_test(test_c2b_and_status_results),
        cmocka_unit_test(test_stamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_daraja_reply.c — what Daraja answers and what it posts to the hub, under a fuzzer.
 *
 * Each input is a body, as raw bytes (a copy of exactly that many, so ASan sees any overread),
 * given to the three reply parsers with HTTP 200 and with a status picked by the first byte,
 * and to the three notification parsers (STK callback, C2B confirmation, transaction status
 * result). The parsers promise a verdict with a one-line printable message for any reply, and
 * for a notification either false with a reason or a well-formed payment: a receipt number of
 * 10 of [A-Z0-9] and an amount above zero wherever one is reported. Any broken promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payments/mpesa/daraja_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t min, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n < min || n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            abort();
}

static void check_answer(const duka_daraja_answer *a)
{
    if (a->verdict < DUKA_DARAJA_OK || a->verdict > DUKA_DARAJA_OFFLINE)
        abort();
    check_text(a->message, 1, sizeof(a->message) - 1);
}

static void check_payment(const duka_mpesa_payment *p)
{
    if (!duka_mpesa_receipt_valid(p->receipt) || p->amount_cents <= 0)
        abort();
}

static void replies(long status, const char *body, size_t len)
{
    duka_daraja_answer a;
    duka_daraja_parse_stk_push(status, body, len, &a);
    check_answer(&a);
    if (a.verdict == DUKA_DARAJA_OK && a.checkout_request_id[0] == '\0')
        abort();
    duka_daraja_parse_stk_query(status, body, len, &a);
    check_answer(&a);
    duka_daraja_parse_accepted(status, body, len, &a);
    check_answer(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    static const long statuses[] = {200, 400, 401, 404, 429, 500, 502, 503};
    replies(200, body, size);
    replies(size ? statuses[data[0] % 8] : 500, body, size);
    char why[256];
    duka_daraja_stk_callback cb;
    if (duka_daraja_parse_stk_callback(body, size, &cb, why, sizeof(why))) {
        if (cb.checkout_request_id[0] == '\0')
            abort();
        if (cb.result_code == 0)
            check_payment(&cb.payment);
    }
    duka_mpesa_payment p;
    if (duka_daraja_parse_c2b(body, size, &p, why, sizeof(why))) {
        check_payment(&p);
        if (p.paid_ms <= 0)
            abort();
    }
    duka_daraja_status_result r;
    if (duka_daraja_parse_status_result(body, size, &r, why, sizeof(why)) && r.found)
        check_payment(&r.payment);
    free(body);
    return 0;
}

/*
 * fuzz_etims_reply.c — eTIMS's answers (saveTrnsSalesOsdc, selectInvoiceDetails,
 * selectInitOsdcInfo) under a fuzzer.
 *
 * Each input is a reply body, given as raw bytes (no NUL needed, a copy of exactly that many
 * bytes so ASan sees any overread) to duka_etims_parse_save, _parse_select and _parse_init
 * with HTTP 200, then again with a status picked by the first byte. The parsers promise a
 * verdict with a one-line printable message for anything; on OK a normalised date and
 * signatures of 1..63 printable ASCII characters; a device updated only on OK. Any broken
 * promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tax/etims/etims_client.h"

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

static void check(const duka_etims_answer *a, int signs)
{
    if (a->verdict < DUKA_ETIMS_OK || a->verdict > DUKA_ETIMS_OFFLINE)
        abort();
    check_text(a->message, 1, sizeof(a->message) - 1);
    check_text(a->result_cd, 0, sizeof(a->result_cd) - 1);
    if (a->verdict == DUKA_ETIMS_OK && signs) {
        check_text(a->rcpt_sign, 1, 63);
        check_text(a->intrl_data, 1, 63);
        const char *d = a->sdc_datetime;
        if (strlen(d) != 19 || d[4] != '-' || d[7] != '-' || d[10] != ' ' || d[13] != ':' ||
            d[16] != ':' || a->cur_rcpt_no < 1 || a->tot_rcpt_no < 1)
            abort();
    } else if (a->rcpt_sign[0] != '\0' || a->sdc_datetime[0] != '\0') {
        abort(); /* no signature without an OK */
    }
}

static void run(long status, const char *body, size_t len)
{
    duka_etims_answer a;
    memset(&a, 0xa5, sizeof(a));
    duka_etims_parse_save(status, body, len, &a);
    check(&a, 1);
    memset(&a, 0xa5, sizeof(a));
    duka_etims_parse_select(status, body, len, &a);
    check(&a, 1);
    duka_etims_device dev;
    memset(&dev, 0, sizeof(dev));
    memset(&a, 0xa5, sizeof(a));
    duka_etims_parse_init(status, body, len, &a, &dev);
    check(&a, 0);
    if (a.verdict == DUKA_ETIMS_OK) {
        check_text(dev.sdc_id, 1, sizeof(dev.sdc_id) - 1);
        check_text(dev.mrc_no, 1, sizeof(dev.mrc_no) - 1);
        check_text(dev.cmc_key, 1, sizeof(dev.cmc_key) - 1);
    } else if (dev.cmc_key[0] != '\0' || dev.sdc_id[0] != '\0') {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 200, 429, 503, 500, 400, 404, 302, 0, 201};
    char *body = malloc(size ? size : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    run(200, body, size);
    if (size > 0)
        run(statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))], body + 1, size - 1);
    free(body);
    return 0;
}

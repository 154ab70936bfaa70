/* invoice.c — a sale as a saveTrnsSalesOsdc body (see invoice.h). At most 500 items, each a
 * handful of members: a body is built in well under a millisecond. */
#include "tax/etims/invoice.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/money.h"

/* Kenya has kept UTC+3 all year since 1960: KRA's dates are that, whatever TZ this process
 * runs in. */
#define NAIROBI_OFFSET_S (3 * 3600)

static const char band_letters[5] = {'A', 'B', 'C', 'D', 'E'};

int duka_etims_band_rate(int band_index)
{
    assert(band_index >= 0 && band_index < 5);
    return duka_tax_band_rate((duka_tax_band)band_letters[band_index]);
}

json_t *duka_etims_amount_json(int64_t cents)
{
    assert(cents >= 0);
    /* cents is exact as a double below 2^53, and IEEE division rounds the exact quotient to
     * the nearest double, which prints back as that quotient with 15 significant digits. */
    return json_real((double)cents / 100.0);
}

void duka_etims_sale_bands(const duka_sale *sale, duka_etims_bands *out)
{
    assert(sale->line_count >= 0 && sale->line_count <= DUKA_SALE_LINES_MAX);
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < sale->line_count; i++) {
        const duka_sale_line *l = &sale->lines[i];
        assert(duka_tax_band_valid(l->tax_band));
        int b = l->tax_band - 'A';
        out->taxbl_cents[b] += l->line_total_cents;
        out->tax_cents[b] += duka_tax_of_gross(l->line_total_cents, (duka_tax_band)l->tax_band);
    }
}

/* "01" cash, "05" card, "06" mpesa; "07" when the payments use more than one method. */
static const char *payment_type_code(const duka_sale *sale)
{
    const char *method = NULL;
    for (int i = 0; i < sale->payment_count && i < DUKA_SALE_PAYMENTS_MAX; i++) {
        if (method == NULL)
            method = sale->payments[i].method;
        else if (strcmp(method, sale->payments[i].method) != 0)
            return "07";
    }
    if (method == NULL || strcmp(method, "cash") == 0)
        return "01"; /* nothing paid (a free sale): cash, the neutral one */
    if (strcmp(method, "card") == 0)
        return "05";
    if (strcmp(method, "mpesa") == 0)
        return "06";
    return "07";
}

/* created_ms in Nairobi as YYYYMMDDhhmmss (cfm, >= 15 bytes) and YYYYMMDD (day, >= 9). */
static void nairobi_dates(int64_t created_ms, char *cfm, size_t cfm_len, char *day,
                          size_t day_len)
{
    assert(created_ms >= 0 && created_ms <= DUKA_TIME_MS_MAX);
    time_t t = (time_t)(created_ms / 1000 + NAIROBI_OFFSET_S);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(cfm, cfm_len, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(day, day_len, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* Sets o[key] = v, stealing v; remembers a failure (v NULL: out of memory) in *ok. */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0)
        *ok = false;
}

static json_t *item_json(const duka_sale_line *l, int seq, bool *ok)
{
    json_t *it = json_object();
    if (it == NULL) {
        *ok = false;
        return NULL;
    }
    char band[2] = {l->tax_band, '\0'};
    int64_t tax = duka_tax_of_gross(l->line_total_cents, (duka_tax_band)l->tax_band);
    put(it, "itemSeq", json_integer(seq), ok);
    put(it, "itemCd", json_string(l->sku), ok);
    put(it, "itemClsCd", json_string("99000000"), ok);
    put(it, "itemNm", json_string(l->name), ok);
    put(it, "bcd", json_null(), ok);
    put(it, "pkgUnitCd", json_string("NT"), ok);
    put(it, "pkg", json_integer(1), ok);
    put(it, "qtyUnitCd", json_string("U"), ok);
    put(it, "qty", json_real((double)l->qty_milli / 1000.0), ok);
    put(it, "prc", duka_etims_amount_json(l->unit_price_cents), ok);
    put(it, "splyAmt", duka_etims_amount_json(l->line_total_cents), ok);
    put(it, "dcRt", json_integer(0), ok);
    put(it, "dcAmt", json_integer(0), ok);
    put(it, "isrccCd", json_null(), ok);
    put(it, "isrccNm", json_null(), ok);
    put(it, "isrcRt", json_null(), ok);
    put(it, "isrcAmt", json_null(), ok);
    put(it, "taxTyCd", json_string(band), ok);
    put(it, "taxblAmt", duka_etims_amount_json(l->line_total_cents), ok);
    put(it, "taxAmt", duka_etims_amount_json(tax), ok);
    put(it, "totAmt", duka_etims_amount_json(l->line_total_cents), ok);
    return it;
}

json_t *duka_etims_invoice_body(const duka_sale *sale, char rcpt_ty, const char *rfd_rsn_cd,
                                const char *shop_name)
{
    assert(rcpt_ty == 'S' || rcpt_ty == 'R');
    assert((rcpt_ty == 'S') == (rfd_rsn_cd == NULL));
    assert(rfd_rsn_cd == NULL || (strlen(rfd_rsn_cd) == 2 && rfd_rsn_cd[0] == '0' &&
                                  rfd_rsn_cd[1] >= '1' && rfd_rsn_cd[1] <= '6'));
    assert(shop_name != NULL);
    assert(sale->line_count >= 1 && sale->line_count <= DUKA_SALE_LINES_MAX);

    duka_etims_bands bands;
    duka_etims_sale_bands(sale, &bands);
    bool band_used[5] = {false, false, false, false, false};
    for (int i = 0; i < sale->line_count; i++)
        band_used[sale->lines[i].tax_band - 'A'] = true;
    int64_t tot_taxbl = 0, tot_tax = 0;
    for (int b = 0; b < 5; b++) {
        tot_taxbl += bands.taxbl_cents[b];
        tot_tax += bands.tax_cents[b];
    }
    char cfm[32], day[16], key[16];
    nairobi_dates(sale->created_ms, cfm, sizeof(cfm), day, sizeof(day));
    char ty[2] = {rcpt_ty, '\0'};

    bool ok = true;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    put(o, "trdInvcNo", json_string(sale->receipt_no), &ok);
    put(o, "custTin", json_string(""), &ok);
    put(o, "custNm", json_string(""), &ok);
    put(o, "salesTyCd", json_string("N"), &ok);
    put(o, "rcptTyCd", json_string(ty), &ok);
    put(o, "pmtTyCd", json_string(payment_type_code(sale)), &ok);
    put(o, "salesSttsCd", json_string("02"), &ok);
    put(o, "cfmDt", json_string(cfm), &ok);
    put(o, "salesDt", json_string(day), &ok);
    put(o, "stockRlsDt", json_null(), &ok);
    put(o, "cnclReqDt", json_null(), &ok);
    put(o, "cnclDt", json_null(), &ok);
    put(o, "rfdDt", json_null(), &ok);
    put(o, "rfdRsnCd", rfd_rsn_cd ? json_string(rfd_rsn_cd) : json_null(), &ok);
    put(o, "totItemCnt", json_integer(sale->line_count), &ok);
    for (int b = 0; b < 5; b++) {
        snprintf(key, sizeof(key), "taxblAmt%c", band_letters[b]);
        put(o, key, band_used[b] ? duka_etims_amount_json(bands.taxbl_cents[b]) : json_integer(0),
            &ok);
    }
    for (int b = 0; b < 5; b++) {
        snprintf(key, sizeof(key), "taxRt%c", band_letters[b]);
        put(o, key, json_integer(duka_etims_band_rate(b)), &ok);
    }
    for (int b = 0; b < 5; b++) {
        snprintf(key, sizeof(key), "taxAmt%c", band_letters[b]);
        put(o, key, band_used[b] ? duka_etims_amount_json(bands.tax_cents[b]) : json_integer(0),
            &ok);
    }
    put(o, "totTaxblAmt", duka_etims_amount_json(tot_taxbl), &ok);
    put(o, "totTaxAmt", duka_etims_amount_json(tot_tax), &ok);
    put(o, "totAmt", duka_etims_amount_json(tot_taxbl), &ok);
    put(o, "prchrAcptcYn", json_string("N"), &ok);
    put(o, "remark", json_null(), &ok);
    put(o, "regrId", json_string("duka"), &ok);
    put(o, "regrNm", json_string("duka"), &ok);
    put(o, "modrId", json_string("duka"), &ok);
    put(o, "modrNm", json_string("duka"), &ok);

    json_t *receipt = json_object();
    if (receipt != NULL) {
        put(receipt, "custTin", json_null(), &ok);
        put(receipt, "custMblNo", json_null(), &ok);
        put(receipt, "rptNo", json_null(), &ok);
        put(receipt, "trdeNm", json_string(shop_name), &ok);
        put(receipt, "adrs", json_null(), &ok);
        put(receipt, "topMsg", json_string(shop_name), &ok);
        put(receipt, "btmMsg", json_string("Thank you"), &ok);
        put(receipt, "prchrAcptcYn", json_string("N"), &ok);
    }
    put(o, "receipt", receipt, &ok);

    json_t *items = json_array();
    for (int i = 0; items != NULL && i < sale->line_count && ok; i++) {
        json_t *it = item_json(&sale->lines[i], i + 1, &ok);
        if (it == NULL || json_array_append_new(items, it) != 0)
            ok = false;
    }
    put(o, "itemList", items, &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

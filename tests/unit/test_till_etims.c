/*
 * test_till_etims.c — the till's side of eTIMS (issue 12; till/etims_receipt.h):
 *
 *   - a pull page's invoices and services members: a good page stores the signatures of the
 *     receipts the till holds, skips (and counts) the others, stores the cursor and the hub's
 *     eTIMS state in one transaction; applying it again changes nothing; every malformed field
 *     of an entry, and a malformed member, is a protocol error naming it with nothing changed;
 *   - the receipt text without a signature ("eTIMS: pending", never a made-up block) and with
 *     one (the control-unit block in 40 columns, the verification URL on lines of its own);
 *   - the QR code's SVG: well formed, as many modules as the URL's QR version has, and read
 *     back by zbarimg (zbar-tools, scripts/deps.sh test) to the URL when it is installed;
 *   - the status: etims_pending counts this till's unsigned sales, and the light rule for
 *     services.etims ("offline" / "degraded" turn green to yellow; "off" or never: nothing);
 *   - the pull loop (sync_client.c, with a scripted hub): invoice_cursor on every pull, another
 *     page while invoices.more, a malformed page a protocol error that keeps nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "store/db.h"
#include "sync/sync_client.h"
#include "till/etims_receipt.h"
#include "till/sale_view.h"
#include "till/till_db.h"
#include "till/till_status.h"
#include "test_util.h"

#define QR_BASE "https://etims-sbx.kra.go.ke/common/link/etims/receipt/indexEtimsReceiptData"
#define NOW_MS 1764772300000LL

typedef struct fixture {
    test_dir dir;
    char path[300];
    sqlite3 *db;
} fixture;

/* Three sales of T01 in the till's database (the rows a checkout writes; enough here). */
static void add_sale(sqlite3 *db, const char *receipt_no)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO sales(receipt_no, created_ms, total_cents,"
                                        " tax_cents, command_id) VALUES(?1, 1764772200000, 11600,"
                                        " 1600, ?1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, receipt_no, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    test_dir_make(&f->dir);
    f->db = test_till_db(&f->dir, f->path, sizeof(f->path), "T01");
    add_sale(f->db, "T01-20261203-00041");
    add_sale(f->db, "T01-20261203-00042");
    add_sale(f->db, "T01-20261203-00043");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duka_db_close(f->db);
    test_dir_remove(&f->dir);
    free(f);
    return 0;
}

/* One entry as the contract's section 4 shows it, for receipt_no with seq and invc_no. */
static json_t *entry(int64_t seq, const char *receipt_no, int64_t invc_no, const char *sign)
{
    char cu[64], url[256];
    snprintf(cu, sizeof(cu), "KRACU0100000001/%lld", (long long)invc_no);
    snprintf(url, sizeof(url), QR_BASE "?Data=P051234567X00%s", sign);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "seq",
                     (json_int_t)seq, "receipt_no", receipt_no, "kind", "sale", "cu_invoice_no",
                     cu, "sdc_id", "KRACU0100000001", "invc_no", (json_int_t)invc_no, "rcpt_no",
                     (json_int_t)invc_no, "tot_rcpt_no", (json_int_t)invc_no, "intrl_data",
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "rcpt_sign", sign, "signed_at",
                     "2026-12-03 14:30:05", "mrc_no", "WIS00000001", "qr_url", url);
}

/* {"cursor": 31, "more": false, "list": [17 for …42, 18 for a receipt of another till's
 * number this till does not hold, 19 for …41]}. */
static json_t *good_invoices(void)
{
    json_t *list = json_array();
    json_array_append_new(list, entry(17, "T01-20261203-00042", 17, "ABCDEFGHIJKLMNOP"));
    json_array_append_new(list, entry(18, "T01-20261203-00099", 18, "QRSTUVWXYZ234567"));
    json_array_append_new(list, entry(19, "T01-20261203-00041", 19, "ZYXWVUTSRQPONMLK"));
    return json_pack("{s:i, s:b, s:o}", "cursor", 31, "more", 0, "list", list);
}

static json_t *services(const char *state, int pending)
{
    return json_pack("{s:{s:s, s:I, s:i, s:I}}", "etims", "state", state, "since_ms",
                     (json_int_t)1764772205000LL, "pending", pending, "oldest_pending_ms",
                     (json_int_t)0);
}

static int64_t rows(sqlite3 *db)
{
    return sql_int(db, "SELECT count(*) FROM etims_receipts");
}

static int64_t cursor_of(sqlite3 *db)
{
    int64_t c = -1;
    duka_err err = {0};
    assert_ok(duka_etims_invoice_cursor(db, &c, &err), &err);
    return c;
}

static void test_good_page_stores_cursor_and_state(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_etims_pull_result res;
    json_t *inv = good_invoices(), *svc = services("offline", 3);
    assert_int_equal(cursor_of(f->db), 0);
    assert_ok(duka_etims_apply_pull(f->db, inv, svc, NOW_MS, &res, &err), &err);
    assert_int_equal(res.stored, 2);
    assert_int_equal(res.ignored, 1); /* …00099: not a receipt of this till */
    assert_int_equal(res.cursor, 31);
    assert_false(res.more);
    assert_true(res.services_seen);
    assert_int_equal(rows(f->db), 2);
    assert_int_equal(cursor_of(f->db), 31);

    duka_etims_receipt r;
    bool found = false;
    assert_ok(duka_etims_receipt_load(f->db, "T01-20261203-00042", &r, &found, &err), &err);
    assert_true(found);
    assert_string_equal(r.cu_invoice_no, "KRACU0100000001/17");
    assert_string_equal(r.sdc_id, "KRACU0100000001");
    assert_int_equal(r.invc_no, 17);
    assert_int_equal(r.rcpt_no, 17);
    assert_int_equal(r.tot_rcpt_no, 17);
    assert_string_equal(r.intrl_data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    assert_string_equal(r.rcpt_sign, "ABCDEFGHIJKLMNOP");
    assert_string_equal(r.signed_at, "2026-12-03 14:30:05");
    assert_string_equal(r.mrc_no, "WIS00000001");
    assert_string_equal(r.qr_url, QR_BASE "?Data=P051234567X00ABCDEFGHIJKLMNOP");
    assert_string_equal(r.kind, "sale");
    assert_int_equal(r.seq, 17);
    assert_int_equal(r.received_ms, NOW_MS);
    assert_ok(duka_etims_receipt_load(f->db, "T01-20261203-00043", &r, &found, &err), &err);
    assert_false(found);

    duka_etims_service s;
    assert_ok(duka_etims_service_load(f->db, &s, &err), &err);
    assert_true(s.known);
    assert_string_equal(s.state, "offline");
    assert_int_equal(s.since_ms, 1764772205000LL);
    assert_int_equal(s.pending, 3);
    assert_int_equal(s.seen_ms, NOW_MS);

    /* The same page again (a reply lost in transit, asked for again): nothing new. */
    assert_ok(duka_etims_apply_pull(f->db, inv, svc, NOW_MS + 1000, &res, &err), &err);
    assert_int_equal(res.ignored, 1);
    assert_int_equal(rows(f->db), 2);
    assert_int_equal(cursor_of(f->db), 31);
    duka_etims_receipt again;
    assert_ok(duka_etims_receipt_load(f->db, "T01-20261203-00042", &again, &found, &err), &err);
    assert_int_equal(again.received_ms, NOW_MS + 1000);
    again.received_ms = r.received_ms = 0;
    duka_etims_receipt_load(f->db, "T01-20261203-00042", &r, &found, &err);
    r.received_ms = 0;
    assert_memory_equal(&r, &again, sizeof(r));

    /* Both members absent (an older hub): nothing at all. */
    assert_ok(duka_etims_apply_pull(f->db, NULL, NULL, NOW_MS, &res, &err), &err);
    assert_int_equal(res.cursor, 31);
    json_decref(inv);
    json_decref(svc);
}

/* A receipt already signed as a sale gets no credit-note signature over it. */
static void test_other_kind_is_ignored(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_etims_pull_result res;
    json_t *inv = good_invoices();
    assert_ok(duka_etims_apply_pull(f->db, inv, NULL, NOW_MS, &res, &err), &err);
    json_t *cn = entry(40, "T01-20261203-00042", 40, "CCCCDDDDEEEEFFFF");
    json_object_set_new(cn, "kind", json_string("credit_note"));
    json_t *page = json_pack("{s:i, s:b, s:[o]}", "cursor", 40, "more", 1, "list", cn);
    assert_ok(duka_etims_apply_pull(f->db, page, NULL, NOW_MS, &res, &err), &err);
    assert_int_equal(res.ignored, 1);
    assert_int_equal(res.stored, 0);
    assert_true(res.more);
    assert_int_equal(cursor_of(f->db), 40);
    assert_int_equal(sql_int(f->db, "SELECT invc_no FROM etims_receipts WHERE receipt_no ="
                                    " 'T01-20261203-00042'"),
                     17);
    json_decref(inv);
    json_decref(page);
}

/* One bad field of the second entry: the member is refused whole. */
typedef struct bad_case {
    const char *field;
    const char *json; /* the field's bad value as JSON; NULL: the field is left out */
} bad_case;

static const bad_case bad_cases[] = {
    {"seq", NULL}, {"seq", "0"}, {"seq", "\"18\""}, {"seq", "1.5"},
    {"receipt_no", NULL}, {"receipt_no", "\"T01-2026120-00042\""},
    {"receipt_no", "\"T01-20261203-0042\""}, {"receipt_no", "\"T 1-20261203-00042\""},
    {"receipt_no", "42"},
    {"kind", NULL}, {"kind", "\"refund\""}, {"kind", "\"SALE\""},
    {"cu_invoice_no", NULL}, {"cu_invoice_no", "\"KRACU0100000001/19\""},
    {"cu_invoice_no", "\"KRACU0100000001-18\""},
    {"sdc_id", NULL}, {"sdc_id", "\"\""}, {"sdc_id", "\"kracu0100000001\""},
    {"sdc_id", "\"KRACU01000000010123456789012345678\""},
    {"invc_no", NULL}, {"invc_no", "0"}, {"invc_no", "-18"}, {"invc_no", "\"18\""},
    {"rcpt_no", NULL}, {"rcpt_no", "0"}, {"rcpt_no", "-19"},
    {"tot_rcpt_no", NULL}, {"tot_rcpt_no", "17"}, {"tot_rcpt_no", "null"}, /* 17 < rcpt_no 18 */
    {"intrl_data", NULL}, {"intrl_data", "\"\""}, {"intrl_data", "\"ABCD-EFGH\""},
    {"intrl_data", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""},
    {"rcpt_sign", NULL}, {"rcpt_sign", "\"qrstuvwxyz234567\""}, {"rcpt_sign", "16"},
    {"signed_at", NULL}, {"signed_at", "\"20261203143005\""},
    {"signed_at", "\"2026-13-03 14:30:05\""}, {"signed_at", "\"2026-12-03 24:30:05\""},
    {"signed_at", "\"2026-12-03T14:30:05\""},
    {"mrc_no", NULL}, {"mrc_no", "\"WIS 0001\""}, {"mrc_no", "\"\""},
    {"qr_url", NULL}, {"qr_url", "\"javascript:alert(1)QRSTUVWXYZ234567\""},
    {"qr_url", "\"" QR_BASE "?Data=P051234567X00OTHERSIGNATURE1\""},
    {"qr_url", "\"https://kra.example/ QRSTUVWXYZ234567\""},
};

static void assert_nothing_changed(fixture *f, const char *what)
{
    if (rows(f->db) != 0 || cursor_of(f->db) != 0 ||
        sql_int(f->db, "SELECT count(*) FROM meta WHERE key LIKE 'etims%'") != 0)
        fail_msg("%s: something was written", what);
}

static void test_malformed_fields_change_nothing(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case *c = &bad_cases[i];
        json_t *inv = good_invoices();
        json_t *e = json_array_get(json_object_get(inv, "list"), 1);
        /* The second entry is for a receipt the till holds, so nothing hides the check. */
        json_object_set_new(e, "receipt_no", json_string("T01-20261203-00043"));
        if (c->json == NULL)
            json_object_del(e, c->field);
        else
            json_object_set_new(e, c->field, json_loads(c->json, JSON_DECODE_ANY, NULL));
        duka_err err = {0};
        json_t *svc = services("online", 0);
        duka_rc rc = duka_etims_apply_pull(f->db, inv, svc, NOW_MS, NULL, &err);
        json_decref(svc);
        char want[96];
        snprintf(want, sizeof(want), "invoices.list[1].%s", c->field);
        if (rc != DUKA_PROTOCOL || strstr(err.msg, want) == NULL)
            fail_msg("%s = %s: rc %d, message '%s' (want DUKA_PROTOCOL naming %s)", c->field,
                     c->json ? c->json : "(absent)", (int)rc, err.msg, want);
        assert_nothing_changed(f, c->field);
        json_decref(inv);
    }
}

static void expect_refused(fixture *f, json_t *inv, json_t *svc, const char *needle)
{
    duka_err err = {0};
    duka_rc rc = duka_etims_apply_pull(f->db, inv, svc, NOW_MS, NULL, &err);
    if (rc != DUKA_PROTOCOL || strstr(err.msg, needle) == NULL)
        fail_msg("rc %d, message '%s' (want DUKA_PROTOCOL naming %s)", (int)rc, err.msg, needle);
    assert_nothing_changed(f, needle);
    json_decref(inv);
    json_decref(svc);
}

static void test_malformed_members_change_nothing(void **state)
{
    fixture *f = *state;
    json_t *inv;
    expect_refused(f, json_string("x"), NULL, "invoices.cursor");
    inv = good_invoices();
    json_object_set_new(inv, "cursor", json_integer(18)); /* before seq 19 of the list */
    expect_refused(f, inv, NULL, "invoices.list[2].seq");
    inv = good_invoices();
    json_object_set_new(inv, "cursor", json_integer(-1));
    expect_refused(f, inv, NULL, "invoices.cursor");
    inv = good_invoices();
    json_object_del(inv, "more");
    expect_refused(f, inv, NULL, "invoices.more");
    inv = good_invoices();
    json_object_set_new(inv, "list", json_object());
    expect_refused(f, inv, NULL, "invoices.list");
    inv = good_invoices(); /* seq not rising */
    json_object_set_new(json_array_get(json_object_get(inv, "list"), 2), "seq", json_integer(17));
    expect_refused(f, inv, NULL, "invoices.list[2].seq");
    inv = good_invoices();
    json_array_append_new(json_object_get(inv, "list"), json_string("T01-20261203-00043"));
    expect_refused(f, inv, NULL, "invoices.list[3]");
    inv = json_pack("{s:i, s:b, s:o}", "cursor", 600, "more", 1, "list", json_array());
    for (int i = 0; i < DUKA_ETIMS_PULL_LIST_MAX + 1; i++)
        json_array_append_new(json_object_get(inv, "list"),
                              entry(i + 1, "T01-20261203-00043", i + 1, "ABCDEFGHIJKLMNOP"));
    expect_refused(f, inv, NULL, "at most 500");
    /* services: a bad state refuses the invoices of the same page too (one transaction). */
    expect_refused(f, good_invoices(), services("down", 1), "services.etims.state");
    json_t *svc = services("online", 1);
    json_object_set_new(json_object_get(svc, "etims"), "pending", json_integer(-1));
    expect_refused(f, good_invoices(), svc, "services.etims.pending");
    svc = services("online", 1);
    json_object_del(json_object_get(svc, "etims"), "since_ms");
    expect_refused(f, good_invoices(), svc, "services.etims.since_ms");
    expect_refused(f, NULL, json_string("online"), "services");

    /* A cursor behind the one stored: the hub went back; refused, the stored one stays. */
    duka_err err = {0};
    inv = good_invoices();
    assert_ok(duka_etims_apply_pull(f->db, inv, NULL, NOW_MS, NULL, &err), &err);
    json_decref(inv);
    inv = json_pack("{s:i, s:b, s:[]}", "cursor", 30, "more", 0, "list");
    assert_int_equal(duka_etims_apply_pull(f->db, inv, NULL, NOW_MS, NULL, &err), DUKA_PROTOCOL);
    assert_contains(err.msg, "behind");
    assert_int_equal(cursor_of(f->db), 31);
    json_decref(inv);
}

/* ---- the receipt ---- */

static void signature(duka_etims_receipt *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->receipt_no, sizeof(r->receipt_no), "T01-20261203-00042");
    snprintf(r->kind, sizeof(r->kind), "sale");
    snprintf(r->cu_invoice_no, sizeof(r->cu_invoice_no), "KRACU0100000001/17");
    snprintf(r->sdc_id, sizeof(r->sdc_id), "KRACU0100000001");
    r->invc_no = r->rcpt_no = r->tot_rcpt_no = 17;
    snprintf(r->intrl_data, sizeof(r->intrl_data), "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    snprintf(r->rcpt_sign, sizeof(r->rcpt_sign), "ABCDEFGHIJKLMNOP");
    snprintf(r->signed_at, sizeof(r->signed_at), "2026-12-03 14:30:05");
    snprintf(r->mrc_no, sizeof(r->mrc_no), "WIS00000001");
    snprintf(r->qr_url, sizeof(r->qr_url), QR_BASE "?Data=P051234567X00ABCDEFGHIJKLMNOP");
}

static void test_receipt_text_with_and_without_signature(void **state)
{
    (void)state;
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    const line_spec lines[] = {{"SUGAR", 2000, 5800, 'B'}};
    sale_build(s, "T01", "T01-20261203-00042", 1764772200000LL, lines, 1, "cash", NULL);
    duka_receipt_shop shop = {.name = "Mama Njeri's Duka", .kra_pin = "P051234567X"};
    static char plain[DUKA_RECEIPT_TEXT_MAX], pending[DUKA_RECEIPT_TEXT_MAX],
        text[DUKA_RECEIPT_TEXT_MAX];
    duka_receipt_text(s, &shop, NULL, "done", plain, sizeof(plain));
    duka_receipt_text_etims(s, &shop, NULL, "done", NULL, pending, sizeof(pending));
    assert_string_equal(plain, pending); /* unsigned: exactly as before */
    assert_contains(pending, "eTIMS: pending; sync: done\n");
    assert_not_contains(pending, "CU invoice");
    assert_not_contains(pending, "signature");

    duka_etims_receipt r;
    signature(&r);
    duka_receipt_text_etims(s, &shop, NULL, "done", &r, text, sizeof(text));
    printf("%s", text);
    assert_not_contains(text, "eTIMS: pending");
    assert_contains(text, "eTIMS: signed; sync: done\n");
    assert_contains(text, "CU invoice no: KRACU0100000001/17\n");
    assert_contains(text, "SCU ID: KRACU0100000001\n");
    assert_contains(text, "CU date/time: 2026-12-03 14:30:05\n");
    assert_contains(text, "Receipt no: 17/17\n");
    assert_contains(text, "MRC no: WIS00000001\n");
    assert_contains(text, "Internal data:\n  ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ\n");
    assert_contains(text, "Receipt signature: ABCD-EFGH-IJKL-MNOP\n");
    /* Every line fits the paper, and the URL's lines put together are the URL. */
    char url[1024] = "";
    bool in_url = false;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        if (nl - line > DUKA_RECEIPT_WIDTH)
            fail_msg("line wider than %d: '%.*s'", DUKA_RECEIPT_WIDTH, (int)(nl - line), line);
        if (in_url)
            strncat(url, line, (size_t)(nl - line));
        if (strncmp(line, "Verify at:", 10) == 0)
            in_url = true;
    }
    assert_string_equal(url, r.qr_url);

    /* The sale's JSON: the signature, or null while pending. */
    json_t *d = duka_sale_detail_json(s, &r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "etims"),
                                                          "cu_invoice_no")),
                        "KRACU0100000001/17");
    json_decref(d);
    d = duka_sale_detail_json(s, NULL);
    assert_true(json_is_null(json_object_get(d, "etims")));
    json_decref(d);
    duka_sale_free(s);
}

static void test_group4(void **state)
{
    (void)state;
    char out[64];
    duka_etims_group4("ABCDEFGHIJKLMNOP", out, sizeof(out));
    assert_string_equal(out, "ABCD-EFGH-IJKL-MNOP");
    duka_etims_group4("ABCDE", out, sizeof(out));
    assert_string_equal(out, "ABCD-E");
    duka_etims_group4("", out, sizeof(out));
    assert_string_equal(out, "");
    duka_etims_group4("ABCDEFGH", out, 7); /* truncated, never a dash at the end */
    assert_string_equal(out, "ABCD-E");
}

/* ---- the QR code ---- */

/* The smallest QR version holding n bytes in byte mode at level M (ISO/IEC 18004 table 7). */
static int qr_version_for(size_t n)
{
    static const int cap_m[] = {14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331};
    for (int v = 0; v < (int)(sizeof(cap_m) / sizeof(cap_m[0])); v++)
        if (n <= (size_t)cap_m[v])
            return v + 1;
    return -1;
}

/* The SVG's dark modules back into a w x w bitmap (the runs "Mx yhNv4h-Nz" it draws). */
static int svg_modules(const char *svg, int w, unsigned char *bits)
{
    const char *d = strstr(svg, " d=\"");
    assert_non_null(d);
    d += 4;
    int dark = 0;
    while (*d == 'M') {
        int x = 0, y = 0, h = 0, v = 0, back = 0, used = 0;
        assert_int_equal(sscanf(d, "M%d %dh%dv%dh-%dz%n", &x, &y, &h, &v, &back, &used), 5);
        assert_int_equal(h, back);
        assert_int_equal(v, 4);
        assert_true(x % 4 == 0 && y % 4 == 0 && h % 4 == 0);
        int mx = x / 4 - 4, my = y / 4 - 4;
        assert_true(mx >= 0 && my >= 0 && mx + h / 4 <= w && my < w);
        for (int i = 0; i < h / 4; i++, dark++)
            bits[my * w + mx + i] = 1;
        d += used;
    }
    assert_int_equal(*d, '"');
    return dark;
}

static void test_qr_svg(void **state)
{
    (void)state;
    const char *url = QR_BASE "?Data=P051234567X00ABCDEFGHIJKLMNOP";
    char *svg = NULL;
    size_t len = 0;
    int w = 0;
    duka_err err = {0};
    assert_ok(duka_etims_qr_svg(url, &svg, &len, &w, &err), &err);
    assert_int_equal(strlen(svg), len);
    /* libqrencode splits the text into segments (the digits of the Data part more compactly
     * than bytes), so the symbol is at most the version that plain bytes would need. */
    const char *v = strstr(svg, "data-version=\"");
    assert_non_null(v);
    int version = atoi(v + 14);
    printf("url %zu bytes: version %d (bytes alone: %d), %d modules\n", strlen(url), version,
           qr_version_for(strlen(url)), w);
    assert_true(version >= 1 && version <= qr_version_for(strlen(url)));
    assert_int_equal(w, 17 + 4 * version);
    assert_true(strncmp(svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44) == 0);
    assert_contains(svg, "xmlns=\"http://www.w3.org/2000/svg\"");
    char want[96];
    snprintf(want, sizeof(want), "viewBox=\"0 0 %d %d\"", (w + 8) * 4, (w + 8) * 4);
    assert_contains(svg, want);
    snprintf(want, sizeof(want), "data-modules=\"%d\" data-version=\"%d\"", w, version);
    assert_contains(svg, want);
    assert_true(len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0);
    assert_null(strchr(svg, '&'));

    unsigned char *bits = calloc((size_t)(w * w), 1);
    assert_non_null(bits);
    int dark = svg_modules(svg, w, bits);
    assert_true(dark > w * w / 4 && dark < w * w * 3 / 4);
    /* The three finder patterns: 7 x 7 rings, dark border, light ring, dark 3 x 3 centre. */
    const int corners[3][2] = {{0, 0}, {w - 7, 0}, {0, w - 7}};
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 7; x++) {
                bool ring = x == 0 || y == 0 || x == 6 || y == 6;
                bool centre = x >= 2 && x <= 4 && y >= 2 && y <= 4;
                assert_int_equal(bits[(corners[c][1] + y) * w + corners[c][0] + x],
                                 ring || centre ? 1 : 0);
            }

    /* Read back by a real decoder when the machine has one (scripts/deps.sh test installs
     * zbar-tools): the SVG's modules drawn 4 px each into a PGM with its quiet zone. */
    if (system("command -v zbarimg >/dev/null 2>&1") != 0) {
        printf("SKIP zbarimg decode: zbarimg not installed (scripts/deps.sh test: zbar-tools)\n");
    } else {
        test_dir dir;
        test_dir_make(&dir);
        char pgm[512], out[512], cmd[1200];
        test_dir_file(&dir, "qr.pgm", pgm, sizeof(pgm));
        test_dir_file(&dir, "qr.txt", out, sizeof(out));
        int side = (w + 8) * 4;
        FILE *fp = fopen(pgm, "wb");
        assert_non_null(fp);
        fprintf(fp, "P5\n%d %d\n255\n", side, side);
        for (int py = 0; py < side; py++)
            for (int px = 0; px < side; px++) {
                int mx = px / 4 - 4, my = py / 4 - 4;
                bool on = mx >= 0 && my >= 0 && mx < w && my < w && bits[my * w + mx];
                fputc(on ? 0 : 255, fp);
            }
        fclose(fp);
        /* stdout only: zbarimg's stderr may carry a D-Bus complaint of the sandbox. */
        snprintf(cmd, sizeof(cmd), "zbarimg -q --raw %s > %s 2>/dev/null", pgm, out);
        int rc = system(cmd);
        char got[1024] = "";
        fp = fopen(out, "r");
        assert_non_null(fp);
        size_t n = fread(got, 1, sizeof(got) - 1, fp);
        fclose(fp);
        got[n] = '\0';
        while (n > 0 && (got[n - 1] == '\n' || got[n - 1] == '\r'))
            got[--n] = '\0';
        if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
            fail_msg("zbarimg could not read the QR code (exit %d): %s", rc, got);
        assert_string_equal(got, url);
        printf("zbarimg read back: %s\n", got);
        test_dir_remove(&dir);
    }
    free(bits);
    free(svg);

    assert_int_equal(duka_etims_qr_svg("", &svg, &len, NULL, &err), DUKA_INPUT);
    assert_null(svg);
}

/* ---- the status ---- */

static void test_status_counts_unsigned_sales(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_till_status *st = malloc(sizeof(*st));
    assert_non_null(st);
    assert_ok(duka_till_status_load(f->db, NULL, st, &err), &err);
    assert_int_equal(st->etims_pending, 3); /* all, until the first signature */
    assert_string_equal(st->etims_state, "");
    json_t *o = duka_till_status_to_json(st);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "etims"), "state")),
                        "unknown");
    assert_true(json_is_null(json_object_get(json_object_get(o, "etims"), "pending")));
    json_decref(o);
    json_t *inv = good_invoices(), *svc = services("degraded", 7);
    assert_ok(duka_etims_apply_pull(f->db, inv, svc, NOW_MS, NULL, &err), &err);
    json_decref(inv);
    json_decref(svc);
    assert_ok(duka_till_status_load(f->db, NULL, st, &err), &err);
    assert_int_equal(st->etims_pending, 1);
    assert_string_equal(st->etims_state, "degraded");
    o = duka_till_status_to_json(st);
    json_t *e = json_object_get(o, "etims");
    assert_int_equal(json_integer_value(json_object_get(o, "etims_pending")), 1);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "degraded");
    assert_int_equal(json_integer_value(json_object_get(e, "since_ms")), 1764772205000LL);
    assert_int_equal(json_integer_value(json_object_get(e, "pending")), 7);
    json_decref(o);
    free(st);
}

static void light_of(const char *connectivity, int64_t pending, int64_t failed,
                     const char *etims_state, int64_t hub_pending, const char *light,
                     const char *reason)
{
    duka_till_status s;
    memset(&s, 0, sizeof(s));
    snprintf(s.connectivity, sizeof(s.connectivity), "%s", connectivity);
    s.pending = pending;
    s.failed = failed;
    snprintf(s.etims_state, sizeof(s.etims_state), "%s", etims_state);
    s.etims_hub_pending = hub_pending;
    duka_till_status_light(&s);
    if (strcmp(s.light, light) != 0 || strstr(s.light_reason, reason) == NULL)
        fail_msg("%s, pending %lld, failed %lld, eTIMS '%s': %s (%s), want %s (%s)",
                 connectivity, (long long)pending, (long long)failed, etims_state, s.light,
                 s.light_reason, light, reason);
}

static void test_light_rule(void **state)
{
    (void)state;
    light_of("online", 0, 0, "", 0, "green", "everything is at the hub");
    light_of("online", 0, 0, "online", 0, "green", "everything is at the hub");
    light_of("online", 0, 0, "off", 12, "green", "everything is at the hub");
    light_of("online", 0, 0, "offline", 3, "yellow", "eTIMS unreachable from the hub: 3 invoices wait");
    light_of("online", 0, 0, "offline", 1, "yellow", "eTIMS unreachable from the hub: 1 invoice waits");
    light_of("online", 0, 0, "degraded", 3, "yellow", "eTIMS is slow or failing at the hub");
    /* Only a light that would be green: the till's own trouble keeps its own reason. */
    light_of("online", 2, 0, "offline", 3, "yellow", "2 items wait to be synced");
    light_of("online", 0, 1, "offline", 3, "yellow", "1 item failed");
    light_of("offline", 0, 0, "offline", 3, "red", "hub not reachable");
    light_of("degraded", 0, 0, "offline", 3, "yellow", "hub slow");
}

/* ---- the pull loop (sync_client.c) with a scripted hub ---- */

typedef struct fake_hub {
    json_t *pages[4]; /* the invoices member of each pull, in turn (NULL: none) */
    int served;
    char urls[4][DUKA_URL_MAX + 128];
} fake_hub;

static duka_rc fake_transport(void *ctx, const char *method, const char *url, const char *token,
                              const char *body, size_t len, const duka_http_options *ho,
                              duka_http_reply *out, duka_err *err)
{
    (void)token; (void)body; (void)len; (void)ho; (void)err;
    fake_hub *h = ctx;
    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    out->status = 200;
    json_t *reply = NULL;
    if (strcmp(method, "POST") == 0) {
        reply = json_pack("{s:[]}", "results");
    } else {
        assert_true(h->served < 4);
        snprintf(h->urls[h->served], sizeof(h->urls[0]), "%s", url);
        reply = json_pack("{s:[], s:i, s:b}", "changes", "cursor", 0, "more", 0);
        if (h->pages[h->served] != NULL)
            json_object_set(reply, "invoices", h->pages[h->served]);
        h->served++;
    }
    out->body = json_dumps(reply, JSON_COMPACT);
    out->len = strlen(out->body);
    json_decref(reply);
    return DUKA_OK;
}

static void test_pull_loop_sends_the_cursor_and_asks_while_more(void **state)
{
    fixture *f = *state;
    fake_hub hub = {0};
    hub.pages[0] = json_pack("{s:i, s:b, s:[o]}", "cursor", 17, "more", 1, "list",
                             entry(17, "T01-20261203-00042", 17, "ABCDEFGHIJKLMNOP"));
    hub.pages[1] = json_pack("{s:i, s:b, s:[o]}", "cursor", 19, "more", 0, "list",
                             entry(19, "T01-20261203-00041", 19, "ZYXWVUTSRQPONMLK"));
    duka_sync_options opt = {.transport = fake_transport, .transport_ctx = &hub};
    duka_sync_result res;
    duka_err err = {0};
    assert_ok(duka_sync_run(f->db, &opt, &res, &err), &err);
    assert_int_equal(hub.served, 2);
    assert_contains(hub.urls[0], "&invoice_cursor=0");
    assert_contains(hub.urls[1], "&invoice_cursor=17");
    assert_int_equal(rows(f->db), 2);
    assert_int_equal(cursor_of(f->db), 19);

    /* A malformed page: the sync fails as a protocol error and nothing of it is kept. */
    fake_hub bad = {0};
    bad.pages[0] = json_pack("{s:i, s:b, s:[o]}", "cursor", 20, "more", 0, "list",
                             entry(20, "T01-20261203-00043", 20, "abc"));
    opt.transport_ctx = &bad;
    assert_int_equal(duka_sync_run(f->db, &opt, &res, &err), DUKA_PROTOCOL);
    assert_contains(err.msg, "invoices.list[0].rcpt_sign");
    assert_contains(bad.urls[0], "&invoice_cursor=19");
    assert_int_equal(rows(f->db), 2);
    assert_int_equal(cursor_of(f->db), 19);
    for (int i = 0; i < 4; i++) {
        json_decref(hub.pages[i]);
        json_decref(bad.pages[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_page_stores_cursor_and_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_kind_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_fields_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_members_change_nothing, setup, teardown),
        cmocka_unit_test(test_receipt_text_with_and_without_signature),
        cmocka_unit_test(test_group4),
        cmocka_unit_test(test_qr_svg),
        cmocka_unit_test_setup_teardown(test_status_counts_unsigned_sales, setup, teardown),
        cmocka_unit_test(test_light_rule),
        cmocka_unit_test_setup_teardown(test_pull_loop_sends_the_cursor_and_asks_while_more,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

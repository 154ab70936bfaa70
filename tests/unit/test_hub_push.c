/*
 * test_hub_push.c — the hub applying pushed commands exactly once (hub/hub_push.h) on a real
 * hub store: device tokens, applied / duplicate / rejected / conflict outcomes, a bad command
 * in a batch leaving no trace, repeats inside one batch, savepoints, body limits, the stock
 * ledger, business isolation, paging of catalog changes for pull, and a late catalog commit
 * that a pull cursor must not skip.
 *
 * The same tests run on both stores (test_hub_db.h): a temporary SQLite file by default, and
 * with DUKA_TEST_HUB_STORE=pg a PostgreSQL schema (CTest pg/unit/test_hub_push starts a
 * throwaway server around it), where a few more run: two stores racing on one batch, row-level
 * security, the roles, a connection the server dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <pthread.h>

#include "common/limits.h"
#include "common/money.h"
#include "common/uuid.h"
#include "hub/hub_business.h"
#include "hub/hub_cashiers.h"
#include "hub/hub_push.h"
#include "hub/hub_report.h"
#include "hub/hub_store_impl.h"
#include "hub/payload_hash.h"
#include "hub/hub_store.h"
#include "hub/product_import.h"
#include "hub/till_binding.h"
#include "protocol/sale.h"
#include "test_util.h"
#include "test_hub_db.h"

#define T0 T_2026_11_21_NOON_MS

typedef struct fixture {
    hub_db db; /* a SQLite file, or a PostgreSQL schema (DUKA_TEST_HUB_STORE=pg) */
    duka_hub_store *store;
    char business[DUKA_BUSINESS_ID_LEN + 1];
    char token1[DUKA_TOKEN_MAX + 1], token2[DUKA_TOKEN_MAX + 1];
    duka_hub_device t01, t02;
    duka_sale *sale; /* scratch */
    int next_id;     /* for command ids */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    hub_db_make(&f->db);
    duka_err err = {0};
    assert_ok(duka_hub_store_open(f->db.url, true, &f->store, &err), &err);
    assert_ok(duka_hub_business_create(f->store, "Duka ya Mama", f->business, &err), &err);
    assert_int_equal(strlen(f->business), DUKA_BUSINESS_ID_LEN);
    assert_ok(duka_hub_device_add(f->store, f->business, "T01", f->token1, &err), &err);
    assert_ok(duka_hub_device_add(f->store, f->business, "T02", f->token2, &err), &err);
    assert_ok(duka_hub_device_authenticate(f->store, f->token1, &f->t01, &err), &err);
    assert_ok(duka_hub_device_authenticate(f->store, f->token2, &f->t02, &err), &err);

    /* The catalog, through the real CSV import: stock SUGAR 40, RICE 10, MILK 100. */
    char csv[320];
    test_dir_file(&f->db.dir, "products.csv", csv, sizeof(csv));
    FILE *fp = fopen(csv, "w");
    assert_non_null(fp);
    fputs("sku,name,price,tax,stock,category\n"
          "SUGAR1KG,Sugar 1 kg,230.50,B,40,Groceries\n"
          "RICE,Rice (per kg),180.00,E,10,Groceries\n"
          "MILK500,Milk 500 ml,65.00,A,100,Dairy\n",
          fp);
    fclose(fp);
    int imported = 0;
    assert_ok(duka_product_import_file(f->store, f->business, csv, &imported, &err), &err);
    assert_int_equal(imported, 3);

    f->sale = duka_sale_new();
    assert_non_null(f->sale);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duka_sale_free(f->sale);
    duka_hub_store_close(f->store);
    hub_db_remove(&f->db);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static void new_id(fixture *f, char out[DUKA_UUID_STR_LEN + 1])
{
    duka_uuid_v7(T0 + f->next_id++, out);
}

static const line_spec default_lines[] = {
    {"SUGAR1KG", 2000, 23050, 'B'}, /* 461.00 */
    {"RICE", 500, 18000, 'E'},      /* 90.00 */
};

/* A valid sale of terminal with sequence seq on 2026-11-21. */
static const duka_sale *sale_of(fixture *f, const char *terminal, int seq,
                                const line_spec *lines, int n)
{
    char receipt[DUKA_RECEIPT_NO_MAX + 1];
    snprintf(receipt, sizeof(receipt), "%s-20261121-%05d", terminal, seq);
    if (lines == NULL) {
        lines = default_lines;
        n = 2;
    }
    sale_build(f->sale, terminal, receipt, T0 + seq, lines, n, "cash", NULL);
    duka_err err = {0};
    assert_ok(duka_sale_validate(f->sale, &err), &err);
    return f->sale;
}

static json_t *command(const char *id, const duka_sale *s)
{
    json_t *payload = duka_sale_to_json(s);
    assert_non_null(payload);
    json_t *c = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type", "sale.create", "entity_id",
                          s->receipt_no, "payload", payload);
    assert_non_null(c);
    return c;
}

/* {"commands":[c]} taking the reference of c. */
static json_t *body1(json_t *c)
{
    json_t *b = json_pack("{s:[o]}", "commands", c);
    assert_non_null(b);
    return b;
}

/* Applies body (released here) and returns the reply (the caller releases it). */
static json_t *push(fixture *f, const duka_hub_device *dev, json_t *body)
{
    duka_err err = {0};
    json_t *reply = NULL;
    duka_rc rc = duka_hub_push_apply(f->store, dev, body, T0, &reply, &err);
    json_decref(body);
    assert_ok(rc, &err);
    assert_non_null(reply);
    return reply;
}

static const json_t *result_at(const json_t *reply, size_t i)
{
    const json_t *r = json_array_get(json_object_get(reply, "results"), i);
    assert_non_null(r);
    return r;
}

/* Asserts one result: its id, status and (when code is not NULL) error code. */
static void assert_result(const json_t *reply, size_t i, const char *id, const char *status,
                          const char *code)
{
    const json_t *r = result_at(reply, i);
    const char *got = json_string_value(json_object_get(r, "status"));
    const char *got_code =
        json_string_value(json_object_get(json_object_get(r, "error"), "code"));
    if (got == NULL || strcmp(got, status) != 0 ||
        (code && (got_code == NULL || strcmp(got_code, code) != 0)) ||
        (!code && got_code != NULL)) {
        char *text = json_dumps(r, JSON_COMPACT);
        char shown[512];
        snprintf(shown, sizeof(shown), "%s", text ? text : "?");
        free(text);
        fail_msg("result %zu is %s, expected status %s code %s", i, shown, status,
                 code ? code : "(none)");
    }
    assert_string_equal(json_string_value(json_object_get(r, "id")), id);
}

static int64_t report_int(fixture *f, const char *business, const char *key)
{
    json_t *rep = NULL;
    duka_err err = {0};
    assert_ok(duka_hub_report(f->store, business, &rep, &err), &err);
    int64_t v = (int64_t)json_integer_value(json_object_get(rep, key));
    assert_true(json_is_integer(json_object_get(rep, key)));
    json_decref(rep);
    return v;
}

/* A second connection to the hub database, to look at its tables (as the fixture's
 * business on PostgreSQL). */
static hub_peek *peek(fixture *f)
{
    return hub_peek_open(&f->db, f->business);
}

static int64_t stock_of(hub_peek *db, const char *sku)
{
    return hub_peek_int_text(db,
                             "SELECT coalesce(sum(delta_milli), 0) FROM stock_movements"
                             " WHERE sku=?1",
                             sku);
}

/* ---- devices and tokens ---- */

static void test_device_tokens(void **state)
{
    fixture *f = *state;
    assert_string_equal(f->t01.terminal, "T01");
    assert_string_equal(f->t02.terminal, "T02");
    assert_string_equal(f->t01.business_id, f->business);
    assert_string_equal(f->t02.business_id, f->business);
    assert_true(f->t01.id > 0);
    assert_true(f->t01.id != f->t02.id);
    assert_int_equal(strncmp(f->token1, "duka1.", 6), 0);

    /* The token's parts: duka1.<device id>.<64 hex>. */
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "duka1.%lld.", (long long)f->t01.id);
    assert_int_equal(strncmp(f->token1, prefix, strlen(prefix)), 0);
    const char *secret1 = f->token1 + strlen(prefix);
    assert_int_equal(strlen(secret1), 64);

    char wrong[DUKA_TOKEN_MAX + 1];
    char bad[8][DUKA_TOKEN_MAX + 80];
    int nbad = 0;
    /* one secret character changed */
    snprintf(wrong, sizeof(wrong), "%s", f->token1);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == '0' ? '1' : '0';
    snprintf(bad[nbad++], sizeof(bad[0]), "%s", wrong);
    /* T01's secret presented with T02's device id */
    snprintf(bad[nbad++], sizeof(bad[0]), "duka1.%lld.%s", (long long)f->t02.id, secret1);
    /* an unknown device id */
    snprintf(bad[nbad++], sizeof(bad[0]), "duka1.999.%s", secret1);
    /* malformed: short secret, long secret, trailing text, upper case, other prefix */
    snprintf(bad[nbad++], sizeof(bad[0]), "%.*s", (int)strlen(f->token1) - 1, f->token1);
    snprintf(bad[nbad++], sizeof(bad[0]), "%s0", f->token1);
    snprintf(bad[nbad++], sizeof(bad[0]), "%s ", f->token1);
    snprintf(bad[nbad++], sizeof(bad[0]), "duka2.%lld.%s", (long long)f->t01.id, secret1);
    snprintf(bad[nbad++], sizeof(bad[0]), "Bearer %s", f->token1);
    const char *literal_bad[] = {"", "duka1", "duka1.1", "duka1..", "duka1.x.abc"};
    for (int i = 0; i < nbad + 5; i++) {
        const char *tok = i < nbad ? bad[i] : literal_bad[i - nbad];
        duka_err err = {0};
        duka_hub_device dev;
        duka_rc rc = duka_hub_device_authenticate(f->store, tok, &dev, &err);
        if (rc != DUKA_AUTH)
            fail_msg("token '%s' gave rc %d, expected DUKA_AUTH", tok, rc);
        assert_contains(err.msg, "token rejected");
    }
    duka_err err = {0};
    duka_hub_device dev;
    assert_int_equal(duka_hub_device_authenticate(f->store, NULL, &dev, &err), DUKA_AUTH);

    /* Upper-case hex is not the token that was issued. */
    char upper[DUKA_TOKEN_MAX + 1];
    snprintf(upper, sizeof(upper), "%s", f->token1);
    for (char *p = upper + strlen(prefix); *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    duka_err_clear(&err);
    if (strcmp(upper, f->token1) != 0)
        assert_int_equal(duka_hub_device_authenticate(f->store, upper, &dev, &err), DUKA_AUTH);

    /* A terminal id is registered once per business. */
    char token[DUKA_TOKEN_MAX + 1];
    duka_err_clear(&err);
    assert_int_equal(duka_hub_device_add(f->store, f->business, "T01", token, &err),
                     DUKA_CONFLICT);
    assert_contains(err.msg, "T01");

    /* A revoked device is rejected. */
    hub_peek *db = peek(f);
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE devices SET revoked_ms = 1 WHERE id = %lld",
             (long long)f->t02.id);
    hub_peek_exec(db, sql);
    hub_peek_close(db);
    duka_err_clear(&err);
    assert_int_equal(duka_hub_device_authenticate(f->store, f->token2, &dev, &err), DUKA_AUTH);
    /* T01 still works. */
    duka_err_clear(&err);
    assert_ok(duka_hub_device_authenticate(f->store, f->token1, &dev, &err), &err);
    assert_int_equal(dev.id, f->t01.id);
}

/* ---- push outcomes ---- */

static void test_applied_duplicate_reused_foreign(void **state)
{
    fixture *f = *state;
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    const duka_sale *s = sale_of(f, "T01", 1, NULL, 0);
    json_t *first_cmd = command(id, s);

    /* First push: applied. */
    json_t *reply = push(f, &f->t01, body1(json_incref(first_cmd)));
    assert_int_equal(json_array_size(json_object_get(reply, "results")), 1);
    assert_result(reply, 0, id, "applied", NULL);
    assert_string_equal(json_string_value(json_object_get(result_at(reply, 0), "receipt_no")),
                        "T01-20261121-00001");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
    assert_int_equal(report_int(f, f->business, "total_cents"), 55100);
    assert_int_equal(report_int(f, f->business, "tax_cents"), 6359 + 667);

    /* The same command again (a lost reply): duplicate, first outcome applied, no change. */
    reply = push(f, &f->t01, body1(json_incref(first_cmd)));
    assert_result(reply, 0, id, "duplicate", NULL);
    assert_string_equal(json_string_value(json_object_get(result_at(reply, 0), "first_status")),
                        "applied");
    assert_string_equal(json_string_value(json_object_get(result_at(reply, 0), "receipt_no")),
                        "T01-20261121-00001");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);

    /* Key order does not make a payload different: a re-serialised resend is a duplicate. */
    char *sorted = json_dumps(first_cmd, JSON_SORT_KEYS | JSON_INDENT(2));
    json_error_t jerr;
    json_t *again = json_loads(sorted, 0, &jerr);
    free(sorted);
    assert_non_null(again);
    reply = push(f, &f->t01, body1(again));
    assert_result(reply, 0, id, "duplicate", NULL);
    json_decref(reply);

    /* The same id with another payload (still a valid sale): rejected, nothing changes. */
    const duka_sale *other = sale_of(f, "T01", 2, NULL, 0);
    reply = push(f, &f->t01, body1(command(id, other)));
    assert_result(reply, 0, id, "rejected", "command_id_reused");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);

    /* The same id pushed by another device: rejected. */
    reply = push(f, &f->t02, body1(json_incref(first_cmd)));
    assert_result(reply, 0, id, "rejected", "foreign_command_id");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);

    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 1);
    assert_int_equal(hub_peek_int_text(db,
                                  "SELECT count(*) FROM processed_commands WHERE command_id=?1"
                                  " AND status='applied' AND receipt_no='T01-20261121-00001'",
                                  id),
                     1);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sale_lines"), 2);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM payments WHERE amount_cents=55100"), 1);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM conflicts"), 0);
    hub_peek_close(db);
    json_decref(first_cmd);
}

/* A command id stored with the earlier payload hash (the sorted dump's, payload_hash.h) — by
 * a hub from before the canonical hash — still answers "duplicate" to a resend of its
 * payload, and still refuses another payload under it. */
static void test_id_stored_with_the_earlier_hash(void **state)
{
    fixture *f = *state;
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_t *cmd = command(id, sale_of(f, "T01", 1, NULL, 0));
    json_t *reply = push(f, &f->t01, body1(json_incref(cmd)));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    char dump[DUKA_PAYLOAD_HASH_HEX_LEN + 1], canonical[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    duka_payload_hash_dump(json_object_get(cmd, "payload"), dump);
    assert_int_equal(duka_payload_hash(json_object_get(cmd, "payload"), canonical), 0);
    assert_string_not_equal(dump, canonical);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int_text(db, "SELECT count(*) FROM processed_commands"
                                           " WHERE payload_hash = ?1", canonical),
                     1);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE processed_commands SET payload_hash = '%s' WHERE command_id = '%s'", dump,
             id);
    hub_peek_exec(db, sql);
    hub_peek_close(db);

    reply = push(f, &f->t01, body1(json_incref(cmd)));
    assert_result(reply, 0, id, "duplicate", NULL);
    json_decref(reply);
    reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 2, NULL, 0))));
    assert_result(reply, 0, id, "rejected", "command_id_reused");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
    json_decref(cmd);
}

static void test_receipt_reused_is_conflict(void **state)
{
    fixture *f = *state;
    char id1[DUKA_UUID_STR_LEN + 1], id2[DUKA_UUID_STR_LEN + 1];
    new_id(f, id1);
    new_id(f, id2);
    json_t *reply = push(f, &f->t01, body1(command(id1, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id1, "applied", NULL);
    json_decref(reply);

    /* A restored till sells again under the same receipt number: another sale, new id. */
    const line_spec milk[] = {{"MILK500", 1000, 6500, 'A'}};
    json_t *conflicting = command(id2, sale_of(f, "T01", 1, milk, 1));
    reply = push(f, &f->t01, body1(json_incref(conflicting)));
    assert_result(reply, 0, id2, "conflict", "receipt_reused");
    assert_contains(json_string_value(json_object_get(
                        json_object_get(result_at(reply, 0), "error"), "message")),
                    id1);
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
    assert_int_equal(report_int(f, f->business, "conflicts"), 1);
    assert_int_equal(report_int(f, f->business, "total_cents"), 55100); /* the first sale */

    /* Resending the conflicting command: duplicate of a conflict, still one conflict row. */
    reply = push(f, &f->t01, body1(json_incref(conflicting)));
    assert_result(reply, 0, id2, "duplicate", NULL);
    assert_string_equal(json_string_value(json_object_get(result_at(reply, 0), "first_status")),
                        "conflict");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
    assert_int_equal(report_int(f, f->business, "conflicts"), 1);

    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int_text(db,
                                  "SELECT count(*) FROM conflicts WHERE kind='receipt_reused'"
                                  " AND entity_id='T01-20261121-00001' AND command_id=?1"
                                  " AND payload LIKE '%MILK500%'",
                                  id2),
                     1);
    assert_int_equal(
        hub_peek_int_text(db,
                          "SELECT count(*) FROM conflicts WHERE existing_command_id=?1", id1),
        1);
    assert_int_equal(hub_peek_int_text(db,
                                  "SELECT count(*) FROM processed_commands WHERE command_id=?1"
                                  " AND status='conflict'",
                                  id2),
                     1);
    /* The conflicting sale moved no stock. */
    assert_int_equal(stock_of(db, "MILK500"), 100000);
    hub_peek_close(db);
    json_decref(conflicting);
}

/* A refund of receipt seq_of_sale, numbered seq, giving back the whole of the default sale's
 * first line (2 kg of sugar). */
static json_t *refund_command(fixture *f, const char *id, int seq, int seq_of_sale)
{
    const line_spec sugar[] = {{"SUGAR1KG", 2000, 23050, 'B'}};
    char receipt[DUKA_RECEIPT_NO_MAX + 1];
    snprintf(receipt, sizeof(receipt), "T01-20261121-%05d", seq);
    sale_build(f->sale, "T01", receipt, T0 + seq, sugar, 1, "cash", NULL);
    f->sale->kind = DUKA_KIND_REFUND;
    snprintf(f->sale->original_receipt_no, sizeof(f->sale->original_receipt_no),
             "T01-20261121-%05d", seq_of_sale);
    snprintf(f->sale->reason, sizeof(f->sale->reason), "03");
    f->sale->lines[0].original_line = 1;
    snprintf(f->sale->payments[0].status, sizeof(f->sale->payments[0].status), "refunded");
    duka_err err = {0};
    assert_ok(duka_sale_validate(f->sale, &err), &err);
    json_t *c = command(id, f->sale);
    json_object_set_new(c, "type", json_string("refund.create"));
    return c;
}

/* A till keeps several pushes in flight: when the one carrying a sale is lost and the next,
 * carrying its refund, gets through, the refund is answered "retry" (its sale is on its
 * way), with nothing kept — not a conflict, which would never be sent again — and applies
 * once the sale is there. */
static void test_refund_before_its_sale_is_retried(void **state)
{
    fixture *f = *state;
    char sale_id[DUKA_UUID_STR_LEN + 1], refund_id[DUKA_UUID_STR_LEN + 1];
    new_id(f, sale_id);
    new_id(f, refund_id);
    json_t *refund = refund_command(f, refund_id, 2, 1);
    json_t *reply = push(f, &f->t01, body1(json_incref(refund)));
    assert_result(reply, 0, refund_id, "retry", "original_not_received");
    assert_contains(json_string_value(json_object_get(
                        json_object_get(result_at(reply, 0), "error"), "message")),
                    "T01-20261121-00001 has not reached the hub yet");
    json_decref(reply);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int_text(db, "SELECT count(*) FROM processed_commands WHERE"
                                           " command_id=?1", refund_id), 0);
    assert_int_equal(hub_peek_int_text(db, "SELECT count(*) FROM conflicts WHERE"
                                           " command_id=?1", refund_id), 0);
    assert_int_equal(report_int(f, f->business, "refunds"), 0);

    /* The sale arrives, then the refund again (the same command): applied, once. */
    reply = push(f, &f->t01, body1(command(sale_id, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, sale_id, "applied", NULL);
    json_decref(reply);
    reply = push(f, &f->t01, body1(json_incref(refund)));
    assert_result(reply, 0, refund_id, "applied", NULL);
    json_decref(reply);
    reply = push(f, &f->t01, body1(json_incref(refund)));
    assert_result(reply, 0, refund_id, "duplicate", NULL);
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "refunds"), 1);
    assert_int_equal(report_int(f, f->business, "refund_cents"), 46100);
    assert_int_equal(stock_of(db, "SUGAR1KG"), 40000); /* sold 2, given back 2 */

    /* A refund of a refund stays a conflict: that never becomes right. */
    char again_id[DUKA_UUID_STR_LEN + 1];
    new_id(f, again_id);
    reply = push(f, &f->t01, body1(refund_command(f, again_id, 3, 2)));
    assert_result(reply, 0, again_id, "conflict", "refund_original_unknown");
    json_decref(reply);
    hub_peek_close(db);
    json_decref(refund);
}

static void test_bad_command_in_batch_leaves_no_trace(void **state)
{
    fixture *f = *state;
    char ids[5][DUKA_UUID_STR_LEN + 1];
    for (int i = 0; i < 5; i++)
        new_id(f, ids[i]);
    json_t *cmds = json_array();
    json_array_append_new(cmds, command(ids[0], sale_of(f, "T01", 1, NULL, 0)));
    /* A sale whose total does not add up. */
    const duka_sale *bad = sale_of(f, "T01", 2, NULL, 0);
    f->sale->total_cents += 1;
    f->sale->payments[0].amount_cents += 1;
    json_array_append_new(cmds, command(ids[1], bad));
    json_array_append_new(cmds, command(ids[2], sale_of(f, "T01", 3, NULL, 0)));
    /* An id that is not a UUID and an unknown command type. */
    json_array_append_new(cmds, json_pack("{s:s, s:s, s:{}}", "id", "not-a-uuid", "type",
                                          "sale.create", "payload"));
    json_array_append_new(cmds, json_pack("{s:s, s:s, s:{}}", "id", ids[4], "type",
                                          "sale.delete", "payload"));
    /* The first command again, in the same batch: a duplicate of what this batch applied. */
    json_array_append(cmds, json_array_get(cmds, 0));
    json_t *reply = push(f, &f->t01, json_pack("{s:o}", "commands", cmds));
    assert_int_equal(json_array_size(json_object_get(reply, "results")), 6);
    assert_result(reply, 5, ids[0], "duplicate", NULL);
    assert_string_equal(json_string_value(json_object_get(result_at(reply, 5), "first_status")),
                        "applied");
    assert_result(reply, 0, ids[0], "applied", NULL);
    assert_result(reply, 1, ids[1], "rejected", "invalid_sale");
    const char *msg = json_string_value(
        json_object_get(json_object_get(result_at(reply, 1), "error"), "message"));
    assert_contains(msg, "commands[1].payload.");
    assert_contains(msg, "total_cents");
    assert_result(reply, 2, ids[2], "applied", NULL);
    assert_result(reply, 3, "not-a-uuid", "rejected", "invalid_command");
    assert_contains(json_string_value(json_object_get(
                        json_object_get(result_at(reply, 3), "error"), "message")),
                    "commands[3].id");
    assert_result(reply, 4, ids[4], "rejected", "unknown_command");
    json_decref(reply);

    assert_int_equal(report_int(f, f->business, "sales"), 2);
    hub_peek *db = peek(f);
    assert_int_equal(
        hub_peek_int(db, "SELECT count(*) FROM sales WHERE receipt_no='T01-20261121-00002'"),
        0);
    assert_int_equal(
        hub_peek_int(db, "SELECT count(*) FROM stock_ledger WHERE ref='T01-20261121-00002'"),
        0);
    assert_int_equal(
        hub_peek_int_text(db,
                          "SELECT count(*) FROM processed_commands WHERE command_id=?1", ids[1]),
        0);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 2);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sale_lines"), 4);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM payments"), 2);
    hub_peek_close(db);

    /* Since nothing of it was recorded, the corrected sale under the same id applies. */
    reply = push(f, &f->t01, body1(command(ids[1], sale_of(f, "T01", 2, NULL, 0))));
    assert_result(reply, 0, ids[1], "applied", NULL);
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 3);
}

static void test_terminal_mismatch(void **state)
{
    fixture *f = *state;
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_t *reply = push(f, &f->t02, body1(command(id, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id, "rejected", "terminal_mismatch");
    assert_contains(json_string_value(json_object_get(
                        json_object_get(result_at(reply, 0), "error"), "message")),
                    "sale of terminal T01 pushed by terminal T02");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 0);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 0);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM stock_ledger WHERE reason='sale'"), 0);
    hub_peek_close(db);
    /* The rightful terminal can still push it. */
    reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
}

static void test_malformed_bodies(void **state)
{
    fixture *f = *state;
    const char *bodies[] = {
        "[]", "\"commands\"", "42", "null", "{}", "{\"commands\":{}}", "{\"commands\":null}",
        "{\"commands\":\"[]\"}", "{\"cmds\":[]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_error_t jerr;
        json_t *body = json_loads(bodies[i], JSON_DECODE_ANY, &jerr);
        assert_non_null(body);
        duka_err err = {0};
        json_t *reply = json_true(); /* must be reset to NULL */
        duka_rc rc = duka_hub_push_apply(f->store, &f->t01, body, T0, &reply, &err);
        json_decref(body);
        if (rc != DUKA_INPUT)
            fail_msg("body %s: rc %d, expected DUKA_INPUT", bodies[i], rc);
        assert_null(reply);
        assert_contains(err.msg, "commands");
    }
    duka_err err = {0};
    json_t *reply = NULL;
    assert_int_equal(duka_hub_push_apply(f->store, &f->t01, NULL, T0, &reply, &err), DUKA_INPUT);

    /* An empty batch is fine. */
    reply = push(f, &f->t01, json_pack("{s:[]}", "commands"));
    assert_int_equal(json_array_size(json_object_get(reply, "results")), 0);
    json_decref(reply);
}

static void test_batch_size_limit(void **state)
{
    fixture *f = *state;
    const line_spec milk[] = {{"MILK500", 1000, 6500, 'A'}};
    json_t *cmds = json_array();
    for (int i = 1; i <= DUKA_SYNC_BATCH_MAX + 1; i++) {
        char id[DUKA_UUID_STR_LEN + 1];
        new_id(f, id);
        json_array_append_new(cmds, command(id, sale_of(f, "T01", i, milk, 1)));
    }
    json_t *body = json_pack("{s:O}", "commands", cmds);
    duka_err err = {0};
    json_t *reply = NULL;
    assert_int_equal(duka_hub_push_apply(f->store, &f->t01, body, T0, &reply, &err), DUKA_LIMIT);
    assert_null(reply);
    assert_contains(err.msg, "1001");
    assert_contains(err.msg, "1000");
    json_decref(body);
    assert_int_equal(report_int(f, f->business, "sales"), 0);

    /* Exactly the maximum applies, all of it, in one go. */
    assert_int_equal(json_array_remove(cmds, DUKA_SYNC_BATCH_MAX), 0);
    reply = push(f, &f->t01, json_pack("{s:o}", "commands", cmds));
    size_t n = json_array_size(json_object_get(reply, "results"));
    assert_int_equal(n, DUKA_SYNC_BATCH_MAX);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(result_at(reply, i), "status")),
                            "applied");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), DUKA_SYNC_BATCH_MAX);
    hub_peek *db = peek(f);
    assert_int_equal(stock_of(db, "MILK500"), 100000 - 1000 * DUKA_SYNC_BATCH_MAX);
    hub_peek_close(db);
}

static void test_stock_ledger(void **state)
{
    fixture *f = *state;
    hub_peek *db = peek(f);
    assert_int_equal(stock_of(db, "SUGAR1KG"), 40000);
    assert_int_equal(stock_of(db, "RICE"), 10000);
    assert_int_equal(stock_of(db, "MILK500"), 100000);

    /* Three sales on two tills: 2 + 1.5 sugar, 0.5 + 12 rice (more than in stock). */
    const line_spec s1[] = {{"SUGAR1KG", 2000, 23050, 'B'}, {"RICE", 500, 18000, 'E'}};
    const line_spec s2[] = {{"SUGAR1KG", 1500, 23050, 'B'}};
    const line_spec s3[] = {{"RICE", 12000, 18000, 'E'}, {"MILK500", 3000, 6500, 'A'}};
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_t *reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, s1, 2))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    new_id(f, id);
    reply = push(f, &f->t02, body1(command(id, sale_of(f, "T02", 1, s2, 1))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    new_id(f, id);
    json_t *third = command(id, sale_of(f, "T01", 2, s3, 2));
    reply = push(f, &f->t01, body1(json_incref(third)));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    /* A duplicate moves no stock. */
    reply = push(f, &f->t01, body1(third));
    assert_result(reply, 0, id, "duplicate", NULL);
    json_decref(reply);

    assert_int_equal(stock_of(db, "SUGAR1KG"), 40000 - 2000 - 1500);
    assert_int_equal(stock_of(db, "RICE"), 10000 - 500 - 12000); /* negative: a fact */
    assert_int_equal(stock_of(db, "MILK500"), 100000 - 3000);
    /* A sale's deltas are its lines (stock_movements): the ledger itself holds none. */
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM stock_movements WHERE reason='sale'"),
                     5);
    assert_int_equal(hub_peek_int(db, "SELECT delta_milli FROM stock_movements"
                                 " WHERE reason='sale' AND ref='T02-20261121-00001'"),
                     -1500);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM stock_ledger WHERE reason='sale'"), 0);

    /* A stock count sets the level: the ledger gets the difference. */
    duka_hub_product p = {.price_cents = 23050, .tax_band = 'B', .stock_milli = 50000,
                          .has_stock = true};
    snprintf(p.sku, sizeof(p.sku), "SUGAR1KG");
    snprintf(p.name, sizeof(p.name), "Sugar 1 kg");
    duka_err err = {0};
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_product_upsert(f->store, f->business, &p, T0, &err), &err);
    assert_ok(duka_hub_store_commit(f->store, &err), &err);
    assert_int_equal(stock_of(db, "SUGAR1KG"), 50000);
    assert_int_equal(hub_peek_int(db, "SELECT delta_milli FROM stock_ledger WHERE sku='SUGAR1KG'"
                                 " ORDER BY id DESC LIMIT 1"),
                     50000 - 36500);
    hub_peek_close(db);
}

/* Takes the schema back from version 7 to 6 by hand: M-Pesa's receipts. */
static void schema_back_to_v6(const fixture *f, hub_peek *db)
{
    hub_peek_exec(db, "DROP TABLE mpesa_receipts;");
    hub_peek_exec(db, f->db.pg ? "DELETE FROM schema_migrations WHERE version = 7"
                               : "PRAGMA user_version = 6");
}

/* Takes the schema back from version 6 to 5 by hand: refunds' columns, the view as before. */
static void schema_back_to_v5(const fixture *f, hub_peek *db)
{
    schema_back_to_v6(f, db);
    if (!f->db.pg) {
        hub_peek_exec(db, "DROP VIEW stock_movements;"
                          "CREATE VIEW stock_movements(business_id, sku, delta_milli, reason, ref,"
                          " created_ms) AS SELECT business_id, sku, delta_milli, reason, ref,"
                          " created_ms FROM stock_ledger UNION ALL SELECT s.business_id, l.sku,"
                          " -l.qty_milli, 'sale', s.receipt_no, s.received_ms FROM sale_lines l"
                          " JOIN sales s ON s.id = l.sale_id;"
                          "DROP INDEX sales_original; DROP INDEX outbox_results_entity;"
                          "ALTER TABLE sales DROP COLUMN kind;"
                          "ALTER TABLE sales DROP COLUMN original_receipt_no;"
                          "ALTER TABLE sales DROP COLUMN refund_reason;"
                          "ALTER TABLE sale_lines DROP COLUMN original_line;"
                          "PRAGMA user_version = 5");
        return;
    }
    hub_peek_exec(db, "CREATE OR REPLACE VIEW stock_movements WITH (security_invoker = true) AS"
                      " SELECT business_id, sku, delta_milli, reason, ref, created_ms"
                      " FROM stock_ledger UNION ALL SELECT l.business_id, l.sku, -l.qty_milli,"
                      " 'sale', s.receipt_no, s.received_ms FROM sale_lines l"
                      " JOIN sales s ON s.id = l.sale_id;"
                      "DROP INDEX sales_original; DROP INDEX outbox_results_entity;"
                      "ALTER TABLE sales DROP COLUMN kind, DROP COLUMN original_receipt_no,"
                      " DROP COLUMN refund_reason;"
                      "ALTER TABLE sale_lines DROP COLUMN original_line;"
                      "DELETE FROM schema_migrations WHERE version = 6");
}

/* Takes the schema back from version 5 to 4 by hand: the hub outbox's tables. */
static void schema_back_to_v4(const fixture *f, hub_peek *db)
{
    schema_back_to_v5(f, db);
    hub_peek_exec(db, "DROP TABLE hub_outbox; DROP TABLE hub_outbox_attempts;"
                      " DROP TABLE outbox_sequences; DROP TABLE outbox_results;"
                      " DROP TABLE hub_kv; DROP TABLE service_health;");
    hub_peek_exec(db, f->db.pg ? "DELETE FROM schema_migrations WHERE version = 5"
                               : "PRAGMA user_version = 4");
}

/* Takes the schema back from version 3 to 2 by hand: the columns, and on PostgreSQL the
 * directory exception and the token function as version 1 made it. */
static void schema_back_to_v3(const fixture *f, hub_peek *db)
{
    schema_back_to_v4(f, db);
    if (!f->db.pg) {
        hub_peek_exec(db, "DROP TABLE cashiers;"
                          "ALTER TABLE businesses DROP COLUMN cashiers_version;"
                          "ALTER TABLE sales DROP COLUMN cashier_id;"
                          "ALTER TABLE sales DROP COLUMN cashier_name;"
                          "PRAGMA user_version = 3");
        return;
    }
    hub_peek_exec(db, "DROP TABLE cashiers;"
                      "ALTER TABLE businesses DROP COLUMN cashiers_version;"
                      "ALTER TABLE sales DROP COLUMN cashier_id, DROP COLUMN cashier_name;"
                      "DELETE FROM schema_migrations WHERE version = 4");
}

static void schema_back_to_v2(const fixture *f, hub_peek *db)
{
    schema_back_to_v3(f, db);
    if (!f->db.pg) {
        hub_peek_exec(db, "ALTER TABLE businesses DROP COLUMN kra_pin;"
                          "ALTER TABLE devices DROP COLUMN till_id;"
                          "ALTER TABLE devices DROP COLUMN till_bound_ms;"
                          "PRAGMA user_version = 2");
        return;
    }
    hub_peek_exec(db,
                  "DROP POLICY businesses_directory ON businesses;"
                  "DROP FUNCTION duka_business_directory(boolean);"
                  "DROP FUNCTION duka_device_for_token(bigint);"
                  "CREATE FUNCTION duka_device_for_token(p_device_id bigint)"
                  "  RETURNS TABLE (o_business_id text, o_terminal text, o_token_hash text)"
                  "  LANGUAGE plpgsql AS $$"
                  "BEGIN"
                  "  PERFORM set_config('duka.auth_device_id', p_device_id::text, true);"
                  "  RETURN QUERY SELECT d.business_id, d.terminal, d.token_hash FROM devices d"
                  "    WHERE d.id = p_device_id AND d.revoked_ms IS NULL;"
                  "  PERFORM set_config('duka.auth_device_id', '', true);"
                  "END $$;"
                  "REVOKE ALL ON FUNCTION duka_device_for_token(bigint) FROM PUBLIC;"
                  "GRANT EXECUTE ON FUNCTION duka_device_for_token(bigint) TO duka_hub;"
                  "ALTER TABLE businesses DROP COLUMN kra_pin;"
                  "ALTER TABLE devices DROP COLUMN till_id, DROP COLUMN till_bound_ms;"
                  "DELETE FROM schema_migrations WHERE version = 3");
}

/* duka hub init's step on a hub taken back by hand: the owner opens it and migrates; then the
 * fixture's store is the hub's again. */
static void migrate_as_hub_init(fixture *f)
{
    duka_hub_store_close(f->store);
    f->store = NULL;
    duka_err err = {0};
    assert_ok(duka_hub_store_open(f->db.pg ? f->db.admin_url : f->db.url, true, &f->store, &err),
              &err);
    duka_hub_store_close(f->store);
    assert_ok(duka_hub_store_open(f->db.url, false, &f->store, &err), &err);
}

/* A hub from before version 2 wrote a stock-ledger row for every sale line. Migrating it
 * (the schema is taken back to version 1 by hand: the view and index gone, the ledger's sale
 * rows written as they were, and on PostgreSQL the unique command id) keeps every level:
 * the ledger's sale rows go, the lines stand for them, and later sales move stock once. */
static void test_migration_to_lines_as_deltas_keeps_levels(void **state)
{
    fixture *f = *state;
    char id[DUKA_UUID_STR_LEN + 1];
    const line_spec lines[] = {{"SUGAR1KG", 2000, 23050, 'B'}, {"RICE", 500, 18000, 'E'}};
    for (int seq = 1; seq <= 2; seq++) {
        new_id(f, id);
        json_decref(push(f, &f->t01, body1(command(id, sale_of(f, "T01", seq, lines, 2)))));
    }
    hub_peek *db = peek(f);
    assert_int_equal(stock_of(db, "SUGAR1KG"), 40000 - 4000);
    schema_back_to_v2(f, db);
    static const char as_v1[] =
        "DROP VIEW stock_movements; DROP INDEX sale_lines_sku;"
        "INSERT INTO stock_ledger(business_id, sku, delta_milli, reason, ref, created_ms)"
        " SELECT s.business_id, l.sku, -l.qty_milli, 'sale', s.receipt_no, s.received_ms"
        " FROM sale_lines l JOIN sales s ON s.id = l.sale_id;";
    if (f->db.pg) {
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "%s ALTER TABLE sales ADD CONSTRAINT sales_command_id_key UNIQUE (command_id);"
                 " DELETE FROM schema_migrations WHERE version = 2",
                 as_v1);
        hub_peek_exec(db, sql);
    } else {
        hub_peek_exec(db, as_v1);
        hub_peek_exec(db, "PRAGMA user_version = 1");
    }
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM stock_ledger WHERE reason = 'sale'"),
                     4);
    hub_peek_close(db);
    migrate_as_hub_init(f);

    db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM stock_ledger WHERE reason = 'sale'"),
                     0);
    assert_int_equal(stock_of(db, "SUGAR1KG"), 40000 - 4000);
    assert_int_equal(stock_of(db, "RICE"), 10000 - 1000);
    new_id(f, id);
    json_decref(push(f, &f->t01, body1(command(id, sale_of(f, "T01", 3, lines, 2)))));
    assert_int_equal(stock_of(db, "SUGAR1KG"), 40000 - 6000);
    hub_peek_close(db);
}

static void test_businesses_are_isolated(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char other[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    assert_ok(duka_hub_business_create(f->store, "Other shop", other, &err), &err);
    assert_string_not_equal(other, f->business);
    /* T01 exists in both businesses. */
    assert_ok(duka_hub_device_add(f->store, other, "T01", token, &err), &err);
    duka_hub_device o01;
    assert_ok(duka_hub_device_authenticate(f->store, token, &o01, &err), &err);
    assert_string_equal(o01.business_id, other);

    char id1[DUKA_UUID_STR_LEN + 1], id2[DUKA_UUID_STR_LEN + 1];
    new_id(f, id1);
    new_id(f, id2);
    json_t *reply = push(f, &f->t01, body1(command(id1, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id1, "applied", NULL);
    json_decref(reply);
    /* The same receipt number in another business is not a conflict. */
    reply = push(f, &o01, body1(command(id2, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id2, "applied", NULL);
    json_decref(reply);
    /* A command id of the first business replayed by the other's device is rejected. */
    reply = push(f, &o01, body1(command(id1, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id1, "rejected", "foreign_command_id");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
    assert_int_equal(report_int(f, other, "sales"), 1);
    assert_int_equal(report_int(f, f->business, "conflicts"), 0);
    assert_int_equal(report_int(f, other, "conflicts"), 0);

    /* Unknown business. */
    duka_err_clear(&err);
    assert_int_equal(duka_hub_business_check(f->store, "0000000000000000", &err), DUKA_NOTFOUND);
    assert_contains(err.msg, "0000000000000000");
    duka_err_clear(&err);
    assert_ok(duka_hub_business_check(f->store, other, &err), &err);
}

/* ---- cashiers (issue 11) ---- */

static json_t *cashiers_of(fixture *f, const char *business, int64_t known)
{
    json_t *m = NULL;
    duka_err err = {0};
    assert_ok(duka_hub_cashier_list(f->store, business, known, &m, &err), &err);
    return m;
}

static int64_t cashiers_version(fixture *f, const char *business)
{
    json_t *m = cashiers_of(f, business, -1);
    int64_t v = (int64_t)json_integer_value(json_object_get(m, "version"));
    json_decref(m);
    return v;
}

/* Add, list, set on either store: the version rises with each change, an unchanged version
 * lists nothing, names are unique ignoring case, a business sees only its own cashiers (on
 * PostgreSQL by row-level security too), and a pushed sale keeps its cashier for the report. */
static void test_cashiers_at_the_hub(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_hub_cashier amina, baraka;
    assert_int_equal(cashiers_version(f, f->business), 0);
    assert_ok(duka_hub_cashier_add(f->store, f->business, "Amina", "cashier", "1234", T0, &amina,
                                   &err),
              &err);
    assert_ok(duka_hub_cashier_add(f->store, f->business, " Baraka ", "manager", "56781234", T0,
                                   &baraka, &err),
              &err);
    assert_string_equal(baraka.name, "Baraka");
    assert_true(duka_uuid_valid(amina.id));
    json_t *m = cashiers_of(f, f->business, 0);
    assert_int_equal(json_integer_value(json_object_get(m, "version")), 2);
    const json_t *list = json_object_get(m, "list");
    assert_int_equal(json_array_size(list), 2);
    const json_t *a = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")), amina.id);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "Amina");
    assert_string_equal(json_string_value(json_object_get(a, "role")), "cashier");
    assert_true(json_is_true(json_object_get(a, "active")));
    const char *hash = json_string_value(json_object_get(a, "pin_hash"));
    assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
    assert_int_equal(crypto_pwhash_str_verify(hash, "1234", 4), 0);
    json_decref(m);
    assert_null(cashiers_of(f, f->business, 2)); /* the till's version: nothing to send */

    /* refusals change nothing */
    assert_rc(duka_hub_cashier_add(f->store, f->business, "AMINA", "cashier", "1234", T0, NULL,
                                   &err),
              DUKA_CONFLICT, &err);
    assert_contains(err.msg, "--name: a cashier 'Amina' exists already");
    duka_err_clear(&err);
    assert_rc(duka_hub_cashier_add(f->store, f->business, "Neema", "cashier", "12", T0, NULL,
                                   &err),
              DUKA_INPUT, &err);
    duka_err_clear(&err);
    assert_rc(duka_hub_cashier_set(f->store, f->business, "Nobody", NULL, NULL, 0, T0, NULL,
                                   &err),
              DUKA_NOTFOUND, &err);
    duka_err_clear(&err);
    assert_int_equal(cashiers_version(f, f->business), 2);

    /* set: deactivated, by any case of the name; the version moves */
    duka_hub_cashier after;
    assert_ok(duka_hub_cashier_set(f->store, f->business, "amina", "4321", NULL, 0, T0 + 1,
                                   &after, &err),
              &err);
    assert_false(after.active);
    assert_string_equal(after.role, "cashier");
    m = cashiers_of(f, f->business, 2);
    assert_non_null(m);
    a = json_array_get(json_object_get(m, "list"), 0);
    assert_false(json_is_true(json_object_get(a, "active")));
    assert_int_equal(crypto_pwhash_str_verify(json_string_value(json_object_get(a, "pin_hash")),
                                              "4321", 4),
                     0);
    json_decref(m);
    assert_int_equal(cashiers_version(f, f->business), 3);

    /* another business sees none of them */
    char other[DUKA_BUSINESS_ID_LEN + 1];
    assert_ok(duka_hub_business_create(f->store, "Other shop", other, &err), &err);
    assert_int_equal(cashiers_version(f, other), 0);
    m = cashiers_of(f, other, -1);
    assert_int_equal(json_array_size(json_object_get(m, "list")), 0);
    json_decref(m);
    assert_rc(duka_hub_cashier_set(f->store, other, "Amina", NULL, NULL, 1, T0, NULL, &err),
              DUKA_NOTFOUND, &err);
    duka_err_clear(&err);
    assert_ok(duka_hub_cashier_add(f->store, other, "Amina", "cashier", "1234", T0, NULL, &err),
              &err); /* the same name in another business is fine */
    assert_rc(duka_hub_cashier_list(f->store, "0000000000000000", 0, &m, &err), DUKA_NOTFOUND,
              &err);
    duka_err_clear(&err);
    if (f->db.pg) {
        hub_peek *db = hub_peek_open(&f->db, other);
        assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM cashiers"), 1);
        hub_peek_close(db);
    }

    /* a sale pushed with a cashier keeps it; the report counts per cashier */
    char id[DUKA_UUID_STR_LEN + 1];
    sale_of(f, "T01", 1, NULL, 0);
    duka_sale *s = f->sale;
    snprintf(s->cashier_id, sizeof(s->cashier_id), "%s", amina.id);
    snprintf(s->cashier_name, sizeof(s->cashier_name), "%s", "Amina");
    new_id(f, id);
    json_t *reply = push(f, &f->t01, body1(command(id, s)));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    new_id(f, id);
    reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 2, NULL, 0))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    json_t *rep = NULL;
    assert_ok(duka_hub_report(f->store, f->business, &rep, &err), &err);
    const json_t *per = json_object_get(rep, "cashiers");
    assert_int_equal(json_array_size(per), 2);
    const json_t *none = json_array_get(per, 0), *am = json_array_get(per, 1);
    assert_string_equal(json_string_value(json_object_get(none, "cashier_id")), "");
    assert_string_equal(json_string_value(json_object_get(am, "cashier_id")), amina.id);
    assert_string_equal(json_string_value(json_object_get(am, "name")), "Amina");
    assert_int_equal(json_integer_value(json_object_get(am, "sales")), 1);
    assert_int_equal(json_integer_value(json_object_get(am, "total_cents")), 55100);
    json_decref(rep);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sales WHERE cashier_name = 'Amina'"),
                     1);
    hub_peek_close(db);
}

/* ---- limits: JSON depth, numeric ranges, string lengths ---- */

/* k nested arrays: [] (k = 1), [[]] (k = 2) … */
static json_t *nested_arrays(int k)
{
    json_t *v = json_array();
    for (int i = 1; i < k; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    return v;
}

static void test_json_depth_limit(void **state)
{
    fixture *f = *state;
    /* body {1} commands [2] command {3} extra: the rest. At the limit: applied (a member the
     * hub does not know is ignored). */
    char id1[DUKA_UUID_STR_LEN + 1], id2[DUKA_UUID_STR_LEN + 1], id3[DUKA_UUID_STR_LEN + 1];
    new_id(f, id1);
    new_id(f, id2);
    new_id(f, id3);
    json_t *c = command(id1, sale_of(f, "T01", 1, NULL, 0));
    json_object_set_new(c, "extra", nested_arrays(DUKA_JSON_DEPTH_MAX - 3));
    json_t *reply = push(f, &f->t01, body1(c));
    assert_result(reply, 0, id1, "applied", NULL);
    json_decref(reply);

    /* One level more, in the last command of a batch: the whole batch is refused before
     * anything is looked at, and the error names the limit and where. */
    json_t *cmds = json_array();
    json_array_append_new(cmds, command(id2, sale_of(f, "T01", 2, NULL, 0)));
    c = command(id3, sale_of(f, "T01", 3, NULL, 0));
    json_object_set_new(json_object_get(c, "payload"), "note",
                        nested_arrays(DUKA_JSON_DEPTH_MAX - 3));
    json_array_append_new(cmds, c);
    json_t *body = json_pack("{s:o}", "commands", cmds);
    duka_err err = {0};
    reply = NULL;
    assert_int_equal(duka_hub_push_apply(f->store, &f->t01, body, T0, &reply, &err), DUKA_INPUT);
    json_decref(body);
    assert_null(reply);
    assert_contains(err.msg, "JSON depth limit of " DUKA_STRINGIFY(DUKA_JSON_DEPTH_MAX) " levels");
    assert_contains(err.msg, "body.commands[1].payload.note[0][0][0][0]:");
    assert_int_equal(report_int(f, f->business, "sales"), 1);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 1);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM audit_log"), 0);
    hub_peek_close(db);

    /* Far deeper than jansson would parse is refused just the same (built in memory). */
    c = command(id2, sale_of(f, "T01", 2, NULL, 0));
    json_object_set_new(c, "extra", nested_arrays(5000));
    body = body1(c);
    duka_err_clear(&err);
    assert_int_equal(duka_hub_push_apply(f->store, &f->t01, body, T0, &reply, &err), DUKA_INPUT);
    json_decref(body);
    assert_contains(err.msg, "body.commands[0].extra[0][0][0][0][0]:");
    assert_int_equal(report_int(f, f->business, "sales"), 1);
}

/* Sets key of the holder in a command's payload: the payload (array NULL), lines[i] or
 * payments[i]. Takes the reference of v. */
static void payload_set(json_t *cmd, const char *array, size_t i, const char *key, json_t *v)
{
    json_t *h = json_object_get(cmd, "payload");
    if (array != NULL)
        h = json_array_get(json_object_get(h, array), i);
    assert_non_null(h);
    assert_int_equal(json_object_set_new(h, key, v), 0);
}

static json_t *string_of(char c, size_t n)
{
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    memset(buf, c, n);
    buf[n] = '\0';
    json_t *s = json_string(buf);
    free(buf);
    return s;
}

/* The largest sale every bound allows, on a terminal id of the longest length: 500 lines of
 * the longest SKU and name at the highest quantity and price, eight payments with the
 * longest references, created at the last millisecond allowed. */
/* A sale paid with a typed M-Pesa code gets a verification job in its own transaction, beside
 * its invoice; a cash sale, a duplicate push or a conflict gets none. */
static void test_typed_code_is_enqueued_for_verification(void **state)
{
    fixture *f = *state;
    char cash_id[DUKA_UUID_STR_LEN + 1], mpesa_id[DUKA_UUID_STR_LEN + 1];
    new_id(f, cash_id);
    json_t *reply = push(f, &f->t01, body1(command(cash_id, sale_of(f, "T01", 1, NULL, 0))));
    json_decref(reply);
    sale_of(f, "T01", 2, NULL, 0);
    duka_sale *s = f->sale;
    snprintf(s->payments[0].method, sizeof(s->payments[0].method), "mpesa");
    snprintf(s->payments[0].status, sizeof(s->payments[0].status), "pending_verification");
    snprintf(s->payments[0].reference, sizeof(s->payments[0].reference), "UL8OALU9GQ");
    new_id(f, mpesa_id);
    json_t *cmd = command(mpesa_id, s);
    json_incref(cmd);
    reply = push(f, &f->t01, body1(cmd));
    assert_result(reply, 0, mpesa_id, "applied", NULL);
    json_decref(reply);
    reply = push(f, &f->t01, body1(cmd)); /* again: a duplicate, no second job */
    assert_result(reply, 0, mpesa_id, "duplicate", NULL);
    json_decref(reply);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM hub_outbox WHERE destination ="
                                      " 'etims'"),
                     2);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM hub_outbox WHERE destination ="
                                      " 'mpesa' AND command_type = 'mpesa.verify'"
                                      " AND entity_id = 'T01-20261121-00002'"
                                      " AND terminal = 'T01' AND status = 'pending'"),
                     1);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM hub_outbox"), 3);
    hub_peek_close(db);
}

static void test_largest_sale_is_applied(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char token[DUKA_TOKEN_MAX + 1];
    duka_hub_device big;
    const char *terminal = "ABCDEFGHIJKLMNOP";
    assert_int_equal(strlen(terminal), DUKA_TERMINAL_ID_MAX);
    assert_ok(duka_hub_device_add(f->store, f->business, terminal, token, &err), &err);
    assert_ok(duka_hub_device_authenticate(f->store, token, &big, &err), &err);

    duka_sale *s = f->sale;
    memset(s, 0, sizeof(*s));
    snprintf(s->terminal, sizeof(s->terminal), "%s", terminal);
    snprintf(s->receipt_no, sizeof(s->receipt_no), "%s-20261121-999999999999", terminal);
    s->created_ms = DUKA_TIME_MS_MAX;
    for (int i = 0; i < DUKA_SALE_LINES_MAX; i++) {
        duka_sale_line *l = &s->lines[i];
        memset(l->sku, 'S', DUKA_SKU_MAX);
        memset(l->name, 'n', DUKA_PRODUCT_NAME_MAX);
        l->qty_milli = DUKA_QTY_MILLI_MAX;
        l->unit_price_cents = DUKA_PRICE_CENTS_MAX;
        l->tax_band = 'B';
        l->line_total_cents = duka_line_total(l->unit_price_cents, l->qty_milli);
        l->tax_cents = duka_tax_of_gross(l->line_total_cents, DUKA_TAX_B);
        s->total_cents += l->line_total_cents;
        s->tax_cents += l->tax_cents;
    }
    s->line_count = DUKA_SALE_LINES_MAX;
    s->payment_count = DUKA_SALE_PAYMENTS_MAX;
    for (int i = 0; i < DUKA_SALE_PAYMENTS_MAX; i++) {
        duka_payment *p = &s->payments[i];
        snprintf(p->method, sizeof(p->method), "%s", i % 2 ? "mpesa" : "card");
        snprintf(p->status, sizeof(p->status), "%s",
                 i % 2 ? "pending_verification" : "pending_capture");
        memset(p->reference, 'R', DUKA_PAYMENT_REF_MAX);
        p->reference[0] = (char)('0' + i);
        p->amount_cents = s->total_cents / DUKA_SALE_PAYMENTS_MAX;
    }
    s->payments[0].amount_cents += s->total_cents % DUKA_SALE_PAYMENTS_MAX;
    assert_int_equal(s->total_cents, DUKA_SALE_LINES_MAX * 1000000000000000LL);
    assert_ok(duka_sale_validate(s, &err), &err);

    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_t *reply = push(f, &big, body1(command(id, s)));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "total_cents"), s->total_cents);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sale_lines"), DUKA_SALE_LINES_MAX);
    assert_int_equal(
        hub_peek_int(db, "SELECT max(length(sku)) + max(length(name)) FROM sale_lines"),
        DUKA_SKU_MAX + DUKA_PRODUCT_NAME_MAX);
    assert_int_equal(hub_peek_int(db, "SELECT sum(amount_cents) FROM payments"), s->total_cents);
    hub_peek_close(db);
}

/* Sales each within bounds can still add up past int64 (19 of the largest). The report says
 * so in a sentence instead of failing as a storage error or wrapping around. */
static void test_report_beyond_int64(void **state)
{
    fixture *f = *state;
    const line_spec big[] = {{"BIG", DUKA_QTY_MILLI_MAX, DUKA_PRICE_CENTS_MAX, 'A'}};
    int64_t per_sale = 1000000000000000LL * DUKA_SALE_LINES_MAX;
    static line_spec lines[DUKA_SALE_LINES_MAX];
    for (int i = 0; i < DUKA_SALE_LINES_MAX; i++)
        lines[i] = big[0];
    int n = (int)(INT64_MAX / per_sale) + 1;
    json_t *cmds = json_array();
    for (int i = 1; i <= n; i++) {
        char id[DUKA_UUID_STR_LEN + 1];
        new_id(f, id);
        json_array_append_new(cmds, command(id, sale_of(f, "T01", i, lines, DUKA_SALE_LINES_MAX)));
    }
    json_t *reply = push(f, &f->t01, json_pack("{s:o}", "commands", cmds));
    for (int i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(result_at(reply, (size_t)i), "status")),
                            "applied");
    json_decref(reply);
    json_t *rep = NULL;
    duka_err err = {0};
    assert_int_equal(duka_hub_report(f->store, f->business, &rep, &err), DUKA_LIMIT);
    assert_null(rep);
    assert_contains(err.msg, "total_cents");
    assert_contains(err.msg, "9223372036854775807");
}

/* One past every bound of a pushed sale: each command rejected, naming the field, and
 * nothing of it stored. */
static void test_one_past_each_bound_is_rejected(void **state)
{
    fixture *f = *state;
    const line_spec one[] = {{"MILK500", 1000, 6500, 'A'}};
    const struct {
        const char *array; /* NULL: the payload itself; "-": the command */
        size_t index;
        const char *key;
        json_t *value;
        const char *code, *says;
    } cases[] = {
        {"lines", 0, "qty_milli", json_integer(0), "invalid_sale", "lines[0].qty_milli: 0 out"},
        {"lines", 0, "qty_milli", json_integer(-1000), "invalid_sale", "lines[0].qty_milli: -1000"},
        {"lines", 0, "qty_milli", json_integer(DUKA_QTY_MILLI_MAX + 1), "invalid_sale",
         "lines[0].qty_milli: 1000000001 out of range"},
        {"lines", 0, "qty_milli", json_real(1000.0), "invalid_sale", "not an integer"},
        {"lines", 0, "unit_price_cents", json_integer(-1), "invalid_sale",
         "lines[0].unit_price_cents: -1 out of range"},
        {"lines", 0, "unit_price_cents", json_integer(DUKA_PRICE_CENTS_MAX + 1), "invalid_sale",
         "lines[0].unit_price_cents: 1000000001"},
        {"lines", 0, "line_total_cents", json_integer(INT64_MAX), "invalid_sale",
         "lines[0].line_total_cents: 9223372036854775807, expected 6500"},
        {"lines", 0, "tax_cents", json_integer(-1), "invalid_sale", "lines[0].tax_cents: -1"},
        {NULL, 0, "total_cents", json_integer(INT64_MAX), "invalid_sale",
         "total_cents: 9223372036854775807, but the lines add up to 6500"},
        {NULL, 0, "total_cents", json_integer(INT64_MIN), "invalid_sale", "total_cents: -9223"},
        {"payments", 0, "amount_cents", json_integer(-1), "invalid_sale",
         "payments[0].amount_cents: -1 out of range"},
        {NULL, 0, "created_ms", json_integer(-1), "invalid_sale", "created_ms: -1 out of range"},
        {NULL, 0, "created_ms", json_integer(DUKA_TIME_MS_MAX + 1), "invalid_sale",
         "created_ms: 253402300800000 out of range"},
        {"lines", 0, "sku", string_of('S', DUKA_SKU_MAX + 1), "invalid_sale",
         "lines[0].sku: longer than 64 characters"},
        {"lines", 0, "name", string_of('n', DUKA_PRODUCT_NAME_MAX + 1), "invalid_sale",
         "lines[0].name: longer than 128 characters"},
        {NULL, 0, "receipt_no", string_of('1', DUKA_RECEIPT_NO_MAX + 1), "invalid_sale",
         "receipt_no: longer than 48 characters"},
        {NULL, 0, "terminal", string_of('T', DUKA_TERMINAL_ID_MAX + 1), "invalid_sale",
         "terminal: longer than 16 characters"},
        {"payments", 0, "reference", string_of('R', DUKA_PAYMENT_REF_MAX + 1), "invalid_sale",
         "payments[0].reference: longer than 64 characters"},
        {"payments", 0, "reference", json_string("4111111111111111"), "invalid_sale",
         "never a card number"},
        {"payments", 0, "method", string_of('m', 100000), "invalid_sale",
         "payments[0].method: longer than 7 characters"},
        {"-", 0, "id", json_string("01a20071-8595-7bab-b6c3-056cd3ebd0931"), "invalid_command",
         "commands[0].id: missing or not a UUID"},
        {"-", 0, "type", string_of('t', 100000), "unknown_command", "is not a known command"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[DUKA_UUID_STR_LEN + 1];
        new_id(f, id);
        json_t *c = command(id, sale_of(f, "T01", 1, one, 1));
        if (cases[i].array != NULL && strcmp(cases[i].array, "-") == 0)
            json_object_set_new(c, cases[i].key, cases[i].value);
        else
            payload_set(c, cases[i].array, cases[i].index, cases[i].key, cases[i].value);
        json_t *reply = push(f, &f->t01, body1(c));
        const json_t *r = result_at(reply, 0);
        const char *status = json_string_value(json_object_get(r, "status"));
        const json_t *e = json_object_get(r, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (status == NULL || strcmp(status, "rejected") != 0 || code == NULL ||
            strcmp(code, cases[i].code) != 0 || msg == NULL || strstr(msg, cases[i].says) == NULL)
            fail_msg("case %zu (%s): status %s code %s message \"%s\", want rejected %s \"%s\"", i,
                     cases[i].key, status ? status : "-", code ? code : "-", msg ? msg : "-",
                     cases[i].code, cases[i].says);
        /* A message stays one bounded line however long the input was. */
        assert_true(strlen(msg) < DUKA_ERR_MSG_MAX);
        json_decref(reply);
    }
    assert_int_equal(report_int(f, f->business, "sales"), 0);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 0);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM stock_ledger WHERE reason='sale'"), 0);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM audit_log"),
                     (int64_t)(sizeof(cases) / sizeof(cases[0])));
    hub_peek_close(db);

    /* The same sale within bounds applies (so the cases above failed for their field). */
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_t *reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, one, 1))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
}

/* ---- pull paging ---- */

static void test_changes_since_paging(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char biz[DUKA_BUSINESS_ID_LEN + 1];
    assert_ok(duka_hub_business_create(f->store, "Paging", biz, &err), &err);
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    for (int i = 0; i < 25; i++) {
        duka_hub_product p;
        memset(&p, 0, sizeof(p));
        snprintf(p.sku, sizeof(p.sku), "P%02d", i);
        snprintf(p.name, sizeof(p.name), "Product %d", i);
        p.price_cents = 100 + i;
        p.tax_band = (char)('A' + i % 5);
        snprintf(p.category, sizeof(p.category), "C%d", i % 3);
        assert_ok(duka_hub_product_upsert(f->store, biz, &p, T0, &err), &err);
    }
    assert_ok(duka_hub_store_commit(f->store, &err), &err);

    int64_t cursor = 0;
    const int expect_sizes[] = {10, 10, 5};
    const bool expect_more[] = {true, true, false};
    int seen[25] = {0};
    int64_t last_seq = 0;
    for (int page = 0; page < 3; page++) {
        json_t *js = NULL;
        assert_ok(duka_hub_changes_since(f->store, biz, cursor, 10, &js, &err), &err);
        const json_t *changes = json_object_get(js, "changes");
        assert_int_equal(json_array_size(changes), expect_sizes[page]);
        assert_int_equal(json_is_true(json_object_get(js, "more")), expect_more[page]);
        assert_true(json_is_boolean(json_object_get(js, "more")));
        int64_t next = (int64_t)json_integer_value(json_object_get(js, "cursor"));
        assert_true(next > cursor);
        size_t i;
        const json_t *c;
        json_array_foreach(changes, i, c) {
            int64_t seq = (int64_t)json_integer_value(json_object_get(c, "seq"));
            assert_true(seq > last_seq); /* ascending, past the cursor */
            last_seq = seq;
            const char *sku = json_string_value(json_object_get(c, "sku"));
            assert_non_null(sku);
            int k = (int)strtol(sku + 1, NULL, 10);
            assert_in_range(k, 0, 24);
            seen[k]++;
            char name[32];
            snprintf(name, sizeof(name), "Product %d", k);
            assert_string_equal(json_string_value(json_object_get(c, "name")), name);
            assert_int_equal(json_integer_value(json_object_get(c, "price")), 100 + k);
            char band[2] = {(char)('A' + k % 5), '\0'};
            assert_string_equal(json_string_value(json_object_get(c, "tax")), band);
            assert_true(json_is_false(json_object_get(c, "deleted")));
        }
        assert_int_equal(next, last_seq); /* the cursor is the last change on the page */
        cursor = next;
        json_decref(js);
    }
    for (int k = 0; k < 25; k++)
        assert_int_equal(seen[k], 1);

    /* Caught up: an empty page, the cursor stays. */
    json_t *js = NULL;
    assert_ok(duka_hub_changes_since(f->store, biz, cursor, 10, &js, &err), &err);
    assert_int_equal(json_array_size(json_object_get(js, "changes")), 0);
    assert_true(json_is_false(json_object_get(js, "more")));
    assert_int_equal(json_integer_value(json_object_get(js, "cursor")), cursor);
    json_decref(js);

    /* Archive one: it comes again, after the cursor, as a tombstone. */
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_product_archive(f->store, biz, "P07", T0 + 1, &err), &err);
    assert_ok(duka_hub_store_commit(f->store, &err), &err);
    assert_ok(duka_hub_changes_since(f->store, biz, cursor, 10, &js, &err), &err);
    const json_t *changes = json_object_get(js, "changes");
    assert_int_equal(json_array_size(changes), 1);
    const json_t *c = json_array_get(changes, 0);
    assert_string_equal(json_string_value(json_object_get(c, "sku")), "P07");
    assert_true(json_is_true(json_object_get(c, "deleted")));
    assert_int_equal(json_integer_value(json_object_get(c, "price")), 107);
    assert_true(json_is_false(json_object_get(js, "more")));
    int64_t after = (int64_t)json_integer_value(json_object_get(js, "cursor"));
    assert_true(after > cursor);
    json_decref(js);

    /* Archiving it again, or an unknown SKU: not found. */
    duka_err_clear(&err);
    assert_int_equal(duka_hub_product_archive(f->store, biz, "P07", T0 + 2, &err), DUKA_NOTFOUND);
    duka_err_clear(&err);
    assert_int_equal(duka_hub_product_archive(f->store, biz, "NOPE", T0 + 2, &err),
                     DUKA_NOTFOUND);
    assert_contains(err.msg, "NOPE");

    /* The other business's catalog is not in this one's changes. */
    assert_ok(duka_hub_changes_since(f->store, biz, 0, DUKA_PULL_PAGE_MAX, &js, &err), &err);
    assert_int_equal(json_array_size(json_object_get(js, "changes")), 25);
    json_decref(js);
    assert_ok(duka_hub_changes_since(f->store, f->business, 0, DUKA_PULL_PAGE_MAX, &js, &err),
              &err);
    assert_int_equal(json_array_size(json_object_get(js, "changes")), 3);
    json_decref(js);
}

/* ---- transactions, savepoints and repeats inside one batch (both stores) ---- */

/* What a savepoint rolled back is forgotten: not found by the lookups of the same
 * transaction, not written at commit. (On PostgreSQL the savepoint is a mark in the push's
 * buffer; the lookups answer from that buffer.) */
static void test_savepoint_rollback_forgets(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    char kept[DUKA_UUID_STR_LEN + 1], dropped[DUKA_UUID_STR_LEN + 1];
    new_id(f, kept);
    new_id(f, dropped);
    const char *ids[2] = {kept, dropped};
    const char *receipts[2] = {"T01-20261121-00001", "T01-20261121-00002"};
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_store_prefetch(f->store, f->business, ids, receipts, 2, &err), &err);
    for (int k = 0; k < 2; k++) {
        assert_ok(duka_hub_store_savepoint(f->store, &err), &err);
        const duka_sale *s = sale_of(f, "T01", k + 1, NULL, 0);
        duka_hub_command o = {.device_id = f->t01.id};
        snprintf(o.status, sizeof(o.status), "applied");
        snprintf(o.payload_hash, sizeof(o.payload_hash), "%064d", k);
        snprintf(o.receipt_no, sizeof(o.receipt_no), "%s", s->receipt_no);
        assert_ok(duka_hub_sale_insert(f->store, &f->t01, ids[k], s, T0, &err), &err);
        assert_ok(duka_hub_command_record(f->store, ids[k], &f->t01, "sale.create", &o, T0, &err),
                  &err);
        assert_ok(duka_hub_audit(f->store, f->business, f->t01.id, "test_event", ids[k], T0, &err),
                  &err);
        /* Seen inside the savepoint... */
        duka_hub_command found;
        bool seen = false;
        char owner[DUKA_UUID_STR_LEN + 1];
        assert_ok(duka_hub_command_find(f->store, ids[k], &found, &seen, &err), &err);
        assert_true(seen);
        assert_int_equal(found.device_id, f->t01.id);
        assert_ok(duka_hub_sale_owner(f->store, f->business, s->receipt_no, owner, &seen, &err),
                  &err);
        assert_true(seen);
        assert_string_equal(owner, ids[k]);
        if (k == 0) {
            assert_ok(duka_hub_store_release(f->store, &err), &err);
            continue;
        }
        /* ...and gone after rolling it back, while the first command stays. */
        duka_hub_store_rollback_to(f->store);
        assert_ok(duka_hub_command_find(f->store, ids[k], &found, &seen, &err), &err);
        assert_false(seen);
        assert_ok(duka_hub_sale_owner(f->store, f->business, s->receipt_no, owner, &seen, &err),
                  &err);
        assert_false(seen);
        assert_ok(duka_hub_command_find(f->store, kept, &found, &seen, &err), &err);
        assert_true(seen);
    }
    assert_ok(duka_hub_store_commit(f->store, &err), &err);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 1);
    assert_int_equal(hub_peek_int_text(db, "SELECT count(*) FROM sales WHERE command_id=?1", kept),
                     1);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sales"), 1);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sale_lines"), 2);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM audit_log WHERE event='test_event'"),
                     1);
    hub_peek_close(db);

    /* A rolled-back transaction leaves nothing, and the next one starts clean. */
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    const duka_sale *s = sale_of(f, "T01", 3, NULL, 0);
    assert_ok(duka_hub_sale_insert(f->store, &f->t01, dropped, s, T0, &err), &err);
    duka_hub_store_rollback(f->store);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
}

/* One batch that repeats itself: the same receipt number under a second command id is a
 * conflict with the first (which this same batch stored), the same command id again is a
 * duplicate of what this batch applied, and a third command reusing a rejected one's receipt
 * number applies — exactly as one command at a time. */
static void test_repeats_inside_one_batch(void **state)
{
    fixture *f = *state;
    char a[DUKA_UUID_STR_LEN + 1], b[DUKA_UUID_STR_LEN + 1], c[DUKA_UUID_STR_LEN + 1],
        d[DUKA_UUID_STR_LEN + 1];
    new_id(f, a);
    new_id(f, b);
    new_id(f, c);
    new_id(f, d);
    const line_spec milk[] = {{"MILK500", 1000, 6500, 'A'}};
    json_t *cmds = json_array();
    json_array_append_new(cmds, command(a, sale_of(f, "T01", 1, NULL, 0)));
    json_array_append_new(cmds, command(b, sale_of(f, "T01", 1, milk, 1)));
    json_array_append_new(cmds, command(a, sale_of(f, "T01", 1, NULL, 0)));
    json_t *bad = command(c, sale_of(f, "T01", 2, NULL, 0));
    payload_set(bad, NULL, 0, "total_cents", json_integer(1));
    json_array_append_new(cmds, bad);
    json_array_append_new(cmds, command(d, sale_of(f, "T01", 2, milk, 1)));
    json_array_append_new(cmds, command(b, sale_of(f, "T01", 1, milk, 1)));
    json_t *reply = push(f, &f->t01, json_pack("{s:o}", "commands", cmds));
    assert_result(reply, 0, a, "applied", NULL);
    assert_result(reply, 1, b, "conflict", "receipt_reused");
    assert_result(reply, 2, a, "duplicate", NULL);
    assert_result(reply, 3, c, "rejected", "invalid_sale");
    assert_result(reply, 4, d, "applied", NULL);
    assert_result(reply, 5, b, "duplicate", NULL);
    assert_string_equal(json_string_value(json_object_get(result_at(reply, 5), "first_status")),
                        "conflict");
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 2);
    assert_int_equal(report_int(f, f->business, "conflicts"), 1);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), 3);
    assert_int_equal(
        hub_peek_int_text(db, "SELECT count(*) FROM conflicts WHERE existing_command_id=?1", a),
        1);
    assert_int_equal(stock_of(db, "MILK500"), 100000 - 1000);
    hub_peek_close(db);
}

/* ---- the catalog change sequence: a late commit is never skipped (both stores) ---- */

typedef struct late_writer {
    duka_hub_store *store;
    const char *business;
    volatile int done;
    duka_rc rc;
    duka_err err;
} late_writer;

static void *late_writer_run(void *arg)
{
    late_writer *w = arg;
    duka_hub_product p = {.price_cents = 100, .tax_band = 'A'};
    snprintf(p.sku, sizeof(p.sku), "LATE_B");
    snprintf(p.name, sizeof(p.name), "Second change");
    w->rc = duka_hub_store_begin(w->store, &w->err);
    if (w->rc == DUKA_OK)
        w->rc = duka_hub_product_upsert(w->store, w->business, &p, T0, &w->err);
    if (w->rc == DUKA_OK)
        w->rc = duka_hub_store_commit(w->store, &w->err);
    else
        duka_hub_store_rollback(w->store);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int64_t changes_after(duka_hub_store *s, const char *business, int64_t cursor,
                             json_t **out)
{
    duka_err err = {0};
    assert_ok(duka_hub_changes_since(s, business, cursor, DUKA_PULL_PAGE_MAX, out, &err), &err);
    return (int64_t)json_array_size(json_object_get(*out, "changes"));
}

/* Two transactions change one business's catalog at once (two hub processes, or a CSV import
 * while a hub serves). The second cannot take a change number until the first commits, so
 * numbers are in commit order and a pull that moved its cursor past a number has seen every
 * change below it. */
static void test_late_commit_cannot_be_skipped(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_hub_store *second = NULL, *reader = NULL;
    assert_ok(duka_hub_store_open(f->db.url, false, &second, &err), &err);
    assert_ok(duka_hub_store_open(f->db.url, false, &reader, &err), &err);
    json_t *js = NULL;
    changes_after(reader, f->business, 0, &js);
    int64_t cursor = (int64_t)json_integer_value(json_object_get(js, "cursor"));
    json_decref(js);

    /* The first change takes its number and stays open. */
    duka_hub_product p = {.price_cents = 100, .tax_band = 'A'};
    snprintf(p.sku, sizeof(p.sku), "LATE_A");
    snprintf(p.name, sizeof(p.name), "First change");
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_product_upsert(f->store, f->business, &p, T0, &err), &err);

    /* The second waits for it: after 300 ms it has not got its number. */
    late_writer w = {.store = second, .business = f->business};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_writer_run, &w), 0);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0);
    /* A pull meanwhile sees neither, and its cursor stays. */
    assert_int_equal(changes_after(reader, f->business, cursor, &js), 0);
    assert_int_equal(json_integer_value(json_object_get(js, "cursor")), cursor);
    json_decref(js);

    assert_ok(duka_hub_store_commit(f->store, &err), &err);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (w.rc != DUKA_OK)
        fail_msg("the second change failed: %s", w.err.msg);

    /* Both, in commit order, numbered one after the other. */
    assert_int_equal(changes_after(reader, f->business, cursor, &js), 2);
    const json_t *first = json_array_get(json_object_get(js, "changes"), 0);
    const json_t *next = json_array_get(json_object_get(js, "changes"), 1);
    assert_string_equal(json_string_value(json_object_get(first, "sku")), "LATE_A");
    assert_string_equal(json_string_value(json_object_get(next, "sku")), "LATE_B");
    assert_int_equal(json_integer_value(json_object_get(next, "seq")),
                     json_integer_value(json_object_get(first, "seq")) + 1);
    json_decref(js);
    duka_hub_store_close(second);
    duka_hub_store_close(reader);
}

/* ---- what a new user hit (issue 10): businesses, lists, stock, conflicts, till binding ---- */

/* The businesses of the list whose id is id (NULL when absent). */
static const json_t *business_in(const json_t *list, const char *id)
{
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(list, "businesses"), i, b)
        if (strcmp(json_string_value(json_object_get(b, "business_id")), id) == 0)
            return b;
    return NULL;
}

static size_t business_count(fixture *f)
{
    json_t *list = NULL;
    duka_err err = {0};
    assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
    size_t n = json_array_size(json_object_get(list, "businesses"));
    json_decref(list);
    return n;
}

static void test_kra_pins_and_business_names(void **state)
{
    (void)state;
    const struct {
        const char *in, *out; /* out NULL: refused */
    } pins[] = {
        {"P051234567X", "P051234567X"}, {"A123456789Z", "A123456789Z"},
        {"p051234567x", "P051234567X"}, {"B051234567X", NULL},
        {"P05123456X", NULL},           {"P0512345678X", NULL},
        {"P051234567", NULL},           {"P05123456AX", NULL},
        {"P0512345679", NULL},          {" P051234567X", NULL},
        {"", NULL},                     {"P051234567\xc3\x89", NULL},
    };
    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        char out[DUKA_KRA_PIN_LEN + 1] = "unchanged";
        bool ok = duka_kra_pin_normalize(pins[i].in, out);
        if (ok != (pins[i].out != NULL) || (ok && strcmp(out, pins[i].out) != 0))
            fail_msg("KRA PIN '%s': %s '%s'", pins[i].in, ok ? "accepted as" : "refused",
                     out);
    }
    assert_false(duka_kra_pin_normalize(NULL, (char[DUKA_KRA_PIN_LEN + 1]){0}));

    assert_true(duka_business_names_equal("Test", "test"));
    assert_true(duka_business_names_equal("  Test ", "TEST"));
    assert_true(duka_business_names_equal("Mama Njeri's Duka", "mama njeri's duka\t"));
    assert_true(duka_business_names_equal("Caf\xc3\xa9", "CAF\xc3\xa9"));
    assert_false(duka_business_names_equal("Test", "Test 2"));
    assert_false(duka_business_names_equal("Test", "Te st"));
    assert_false(duka_business_names_equal("Caf\xc3\xa9", "Caf\xc3\x89")); /* ASCII only */

    char out[DUKA_BUSINESS_NAME_MAX + 1];
    duka_err err = {0};
    assert_ok(duka_business_name_clean("  Duka ya Mama \n", "--business", out, &err), &err);
    assert_string_equal(out, "Duka ya Mama");
    char longest[DUKA_BUSINESS_NAME_MAX + 2];
    memset(longest, 'x', sizeof(longest));
    longest[DUKA_BUSINESS_NAME_MAX] = '\0';
    assert_ok(duka_business_name_clean(longest, "--business", out, &err), &err);
    longest[DUKA_BUSINESS_NAME_MAX] = 'x';
    longest[DUKA_BUSINESS_NAME_MAX + 1] = '\0';
    const struct {
        const char *name, *says;
    } bad[] = {
        {"", "needs a name"},
        {"   ", "needs a name"},
        {longest, "longer than 128"},
        {"Duka\nya Mama", "control character at byte 5"},
        {"Duka\xff", "not UTF-8 at byte 5"},
        {"Duka \xc3", "not UTF-8 at byte 6"},
        {"\xed\xa0\x80", "not UTF-8 at byte 1"}, /* a surrogate */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        duka_err_clear(&err);
        assert_int_equal(duka_business_name_clean(bad[i].name, "--name", out, &err), DUKA_USAGE);
        assert_contains(err.msg, "--name");
        assert_contains(err.msg, bad[i].says);
    }

    /* What the store already holds unchecked is shown, its bytes that are not UTF-8 as '?'. */
    const char *shown[][2] = {{"Caf\xc3\xa9", "Caf\xc3\xa9"}, {"Duka\xff", "Duka?"},
                              {"\xc3", "?"}, {"a\xed\xa0\x80z", "a???z"}, {"", ""}};
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        json_t *v = duka_hub_json_text(shown[i][0]);
        assert_non_null(v);
        assert_string_equal(json_string_value(v), shown[i][1]);
        json_decref(v);
    }
}

/* A name is one business's unless asked otherwise: trimmed and in any case the same name,
 * refused with nothing written and the existing id named; renaming follows the same rule. */
static void test_business_names_are_unique(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    /* Unique on this hub (on PostgreSQL the tests share one schema, one business each). */
    char name[64], shout[64], other_name[64];
    snprintf(name, sizeof(name), "Kiosk %s", f->business);
    snprintf(shout, sizeof(shout), "  KIOSK %s ", f->business);
    snprintf(other_name, sizeof(other_name), "Stall %s", f->business);
    char a[DUKA_BUSINESS_ID_LEN + 1], b[DUKA_BUSINESS_ID_LEN + 1], c[DUKA_BUSINESS_ID_LEN + 1];
    assert_ok(duka_hub_business_register(f->store, name, "P051234567X", false, a, &err), &err);
    size_t before = business_count(f);

    char refused[DUKA_BUSINESS_ID_LEN + 1] = "";
    assert_int_equal(duka_hub_business_register(f->store, shout, "", false, refused, &err),
                     DUKA_CONFLICT);
    char want[256];
    snprintf(want, sizeof(want),
             "a business named '%s' already exists (business id %s); use that id, or pass "
             "--allow-duplicate-name",
             name, a);
    assert_string_equal(err.msg, want);
    assert_int_equal(business_count(f), before); /* nothing written */

    duka_err_clear(&err);
    assert_ok(duka_hub_business_register(f->store, shout, "", true, b, &err), &err);
    assert_string_not_equal(a, b);
    assert_ok(duka_hub_business_register(f->store, other_name, NULL, false, c, &err), &err);
    assert_int_equal(business_count(f), before + 2);

    /* The list: every business, oldest first, with its PIN, creation time and devices. */
    json_t *list = NULL;
    assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
    const json_t *ba = business_in(list, a), *mine = business_in(list, f->business);
    assert_non_null(ba);
    assert_non_null(mine);
    assert_non_null(business_in(list, b));
    assert_string_equal(json_string_value(json_object_get(ba, "name")), name);
    assert_string_equal(json_string_value(json_object_get(ba, "kra_pin")), "P051234567X");
    assert_int_equal(json_integer_value(json_object_get(ba, "devices")), 0);
    assert_string_equal(json_string_value(json_object_get(mine, "name")), "Duka ya Mama");
    assert_string_equal(json_string_value(json_object_get(mine, "kra_pin")), "");
    assert_int_equal(json_integer_value(json_object_get(mine, "devices")), 2);
    const char *created = json_string_value(json_object_get(mine, "created"));
    assert_non_null(created);
    assert_int_equal(strlen(created), 24); /* 2026-11-21T09:00:00.000Z */
    assert_int_equal(created[23], 'Z');
    size_t i, at_mine = 0, at_a = 0;
    const json_t *x;
    json_array_foreach(json_object_get(list, "businesses"), i, x) {
        if (x == mine)
            at_mine = i;
        if (x == ba)
            at_a = i;
    }
    assert_true(at_mine < at_a);
    json_decref(list);
    /* A revoked device is not counted. */
    assert_ok(duka_hub_device_revoke(f->store, f->business, "T02", T0, &err), &err);
    assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(business_in(list, f->business), "devices")),
                     1);
    json_decref(list);

    /* Renaming: to a name another business has is refused, nothing changed; its own name in
     * another case is fine; the PIN alone; an unknown business. */
    duka_err_clear(&err);
    assert_int_equal(duka_hub_business_change(f->store, c, name, NULL, false, &err),
                     DUKA_CONFLICT);
    assert_contains(err.msg, "already exists (business id ");
    assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
    assert_string_equal(json_string_value(json_object_get(business_in(list, c), "name")),
                        other_name);
    json_decref(list);
    duka_err_clear(&err);
    char upper[64];
    snprintf(upper, sizeof(upper), "STALL %s", f->business);
    assert_ok(duka_hub_business_change(f->store, c, upper, "A123456789Z", false, &err), &err);
    assert_ok(duka_hub_business_change(f->store, a, NULL, "", false, &err), &err);
    assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
    assert_string_equal(json_string_value(json_object_get(business_in(list, c), "name")), upper);
    assert_string_equal(json_string_value(json_object_get(business_in(list, c), "kra_pin")),
                        "A123456789Z");
    assert_string_equal(json_string_value(json_object_get(business_in(list, a), "kra_pin")), "");
    assert_string_equal(json_string_value(json_object_get(business_in(list, a), "name")), name);
    json_decref(list);
    assert_int_equal(duka_hub_business_change(f->store, "0000000000000000", "X", NULL, false,
                                              &err),
                     DUKA_NOTFOUND);
    assert_contains(err.msg, "0000000000000000");

    /* SQLite: a name stored before names were checked, not UTF-8, is listed, not dropped
     * (PostgreSQL never stores such text). */
    if (!f->db.pg) {
        char odd[DUKA_BUSINESS_ID_LEN + 1];
        assert_ok(duka_hub_business_create(f->store, "Duka\xff", odd, &err), &err);
        assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
        assert_non_null(business_in(list, odd));
        assert_string_equal(json_string_value(json_object_get(business_in(list, odd), "name")),
                            "Duka?");
        json_decref(list);
    }

    /* The change is audited, and a token's device carries the business's name and PIN. */
    duka_err_clear(&err);
    assert_ok(duka_hub_business_change(f->store, f->business, NULL, "P051234567X", false, &err),
              &err);
    json_t *events = NULL;
    assert_ok(duka_hub_audit_list(f->store, c, 10, &events, &err), &err);
    const json_t *e = json_array_get(json_object_get(events, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "event")), "business_changed");
    assert_contains(json_string_value(json_object_get(e, "detail")), upper);
    assert_contains(json_string_value(json_object_get(e, "detail")), "A123456789Z");
    json_decref(events);
    duka_hub_device dev;
    assert_ok(duka_hub_device_authenticate(f->store, f->token1, &dev, &err), &err);
    assert_string_equal(dev.business_name, "Duka ya Mama");
    assert_string_equal(dev.kra_pin, "P051234567X");
}

/* Two registrations of one name at the same instant, on two stores (two hub init): the
 * check and the insert are one transaction that holds the names, so one of them is refused. */
typedef struct registrar {
    duka_hub_store *store;
    const char *name;
    duka_rc rc;
    duka_err err;
    char id[DUKA_BUSINESS_ID_LEN + 1];
    pthread_barrier_t *barrier;
} registrar;

static void *registrar_run(void *arg)
{
    registrar *r = arg;
    pthread_barrier_wait(r->barrier);
    r->rc = duka_hub_business_register(r->store, r->name, "", false, r->id, &r->err);
    return NULL;
}

static void test_one_name_registered_at_once_twice(void **state)
{
    fixture *f = *state;
    char name[64];
    snprintf(name, sizeof(name), "Twice %s", f->business);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    registrar r[2] = {{.name = name, .barrier = &barrier}, {.name = name, .barrier = &barrier}};
    duka_err err = {0};
    for (int k = 0; k < 2; k++)
        assert_ok(duka_hub_store_open(f->db.url, false, &r[k].store, &err), &err);
    pthread_t th[2];
    for (int round = 0; round < 5; round++) {
        char this_name[80];
        snprintf(this_name, sizeof(this_name), "%s %d", name, round);
        for (int k = 0; k < 2; k++) {
            r[k].name = this_name;
            duka_err_clear(&r[k].err);
            assert_int_equal(pthread_create(&th[k], NULL, registrar_run, &r[k]), 0);
        }
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_join(th[k], NULL), 0);
        int ok = (r[0].rc == DUKA_OK) + (r[1].rc == DUKA_OK);
        int refused = (r[0].rc == DUKA_CONFLICT) + (r[1].rc == DUKA_CONFLICT);
        if (ok != 1 || refused != 1)
            fail_msg("round %d: rc %d (%s) and %d (%s), want one registered, one refused", round,
                     r[0].rc, r[0].err.msg, r[1].rc, r[1].err.msg);
    }
    pthread_barrier_destroy(&barrier);
    for (int k = 0; k < 2; k++)
        duka_hub_store_close(r[k].store);
}

static const json_t *entry_with(const json_t *list, const char *array, const char *key,
                                const char *value)
{
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(list, array), i, x)
        if (strcmp(json_string_value(json_object_get(x, key)), value) == 0)
            return x;
    return NULL;
}

static void test_device_and_product_lists(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    json_t *devices = NULL;
    assert_ok(duka_hub_device_list(f->store, f->business, &devices, &err), &err);
    const json_t *arr = json_object_get(devices, "devices");
    assert_int_equal(json_array_size(arr), 2);
    const json_t *d1 = json_array_get(arr, 0), *d2 = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(d1, "terminal")), "T01");
    assert_string_equal(json_string_value(json_object_get(d2, "terminal")), "T02");
    assert_int_equal(json_integer_value(json_object_get(d1, "device_id")), f->t01.id);
    assert_string_equal(json_string_value(json_object_get(d1, "status")), "active");
    assert_true(json_is_false(json_object_get(d1, "till_bound")));
    assert_int_equal(json_string_length(json_object_get(d1, "created")), 24);
    json_decref(devices);

    /* T02 revoked; T01 bound to a till. Another business's devices are not listed. */
    assert_ok(duka_hub_device_revoke(f->store, f->business, "T02", T0, &err), &err);
    duka_hub_device dev = f->t01;
    bool changed = false;
    assert_ok(duka_hub_device_bind_till(f->store, &dev, "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b",
                                        T0, &changed, &err),
              &err);
    assert_true(changed);
    char other[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    assert_ok(duka_hub_business_create(f->store, "Other shop", other, &err), &err);
    assert_ok(duka_hub_device_add(f->store, other, "T09", token, &err), &err);
    assert_ok(duka_hub_device_list(f->store, f->business, &devices, &err), &err);
    arr = json_object_get(devices, "devices");
    assert_int_equal(json_array_size(arr), 2);
    assert_true(json_is_true(json_object_get(json_array_get(arr, 0), "till_bound")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "status")),
                        "revoked");
    json_decref(devices);

    /* Products by SKU, each with its level; archived ones only when asked. */
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_decref(push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, NULL, 0)))));
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_product_archive(f->store, f->business, "MILK500", T0, &err), &err);
    assert_ok(duka_hub_store_commit(f->store, &err), &err);
    json_t *products = NULL;
    assert_ok(duka_hub_product_list(f->store, f->business, false, &products, &err), &err);
    arr = json_object_get(products, "products");
    assert_int_equal(json_array_size(arr), 2);
    const json_t *rice = json_array_get(arr, 0), *sugar = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(rice, "sku")), "RICE");
    assert_string_equal(json_string_value(json_object_get(sugar, "sku")), "SUGAR1KG");
    assert_string_equal(json_string_value(json_object_get(sugar, "name")), "Sugar 1 kg");
    assert_int_equal(json_integer_value(json_object_get(sugar, "price")), 23050);
    assert_string_equal(json_string_value(json_object_get(sugar, "tax")), "B");
    assert_string_equal(json_string_value(json_object_get(sugar, "category")), "Groceries");
    assert_true(json_is_false(json_object_get(sugar, "archived")));
    assert_int_equal(json_integer_value(json_object_get(sugar, "stock_milli")), 40000 - 2000);
    assert_int_equal(json_integer_value(json_object_get(rice, "stock_milli")), 10000 - 500);
    json_decref(products);
    assert_ok(duka_hub_product_list(f->store, f->business, true, &products, &err), &err);
    arr = json_object_get(products, "products");
    assert_int_equal(json_array_size(arr), 3);
    const json_t *milk = entry_with(products, "products", "sku", "MILK500");
    assert_non_null(milk);
    assert_true(json_is_true(json_object_get(milk, "archived")));
    assert_int_equal(json_integer_value(json_object_get(milk, "stock_milli")), 100000);
    json_decref(products);
    assert_ok(duka_hub_product_list(f->store, other, true, &products, &err), &err);
    assert_int_equal(json_array_size(json_object_get(products, "products")), 0);
    json_decref(products);
}

/* Levels per SKU with the negative ones flagged: a sale beyond the stock is a fact, and so is
 * a SKU sold that the catalog does not have. */
static void test_stock_flags_the_negative(void **state)
{
    fixture *f = *state;
    const line_spec lines[] = {{"RICE", 12000, 18000, 'E'}, {"GHOST", 1000, 100, 'A'}};
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_decref(push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, lines, 2)))));
    duka_err err = {0};
    json_t *stock = NULL;
    assert_ok(duka_hub_stock(f->store, f->business, false, &stock, &err), &err);
    const json_t *arr = json_object_get(stock, "products");
    assert_int_equal(json_array_size(arr), 4);
    const char *order[] = {"GHOST", "MILK500", "RICE", "SUGAR1KG"};
    const int64_t level[] = {-1000, 100000, 10000 - 12000, 40000};
    for (size_t i = 0; i < 4; i++) {
        const json_t *p = json_array_get(arr, i);
        assert_string_equal(json_string_value(json_object_get(p, "sku")), order[i]);
        assert_int_equal(json_integer_value(json_object_get(p, "stock_milli")), level[i]);
        assert_int_equal(json_is_true(json_object_get(p, "negative")), level[i] < 0);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "name")), "");
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 2), "name")),
                        "Rice (per kg)");
    assert_int_equal(json_integer_value(json_object_get(stock, "negative")), 2);
    json_decref(stock);
    assert_ok(duka_hub_stock(f->store, f->business, true, &stock, &err), &err);
    arr = json_object_get(stock, "products");
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "sku")),
                        "GHOST");
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "sku")), "RICE");
    assert_int_equal(json_integer_value(json_object_get(stock, "negative")), 2);
    json_decref(stock);
    /* An archived product with stock still shows; without stock or movements it does not. */
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_product_archive(f->store, f->business, "MILK500", T0, &err), &err);
    assert_ok(duka_hub_store_commit(f->store, &err), &err);
    assert_ok(duka_hub_stock(f->store, f->business, false, &stock, &err), &err);
    assert_non_null(entry_with(stock, "products", "sku", "MILK500"));
    json_decref(stock);
}

/* Conflicts are in the report, newest first, with what they add up to; never in the totals. */
static void test_report_lists_conflicts(void **state)
{
    fixture *f = *state;
    enum { CONFLICTS = DUKA_REPORT_CONFLICTS_MAX + 3 };
    const line_spec milk[] = {{"MILK500", 1000, 6500, 'A'}};
    char first[DUKA_UUID_STR_LEN + 1], last[DUKA_UUID_STR_LEN + 1];
    new_id(f, first);
    json_t *cmds = json_array();
    json_array_append_new(cmds, command(first, sale_of(f, "T01", 1, NULL, 0)));
    for (int i = 0; i < CONFLICTS; i++) {
        new_id(f, last);
        json_array_append_new(cmds, command(last, sale_of(f, "T01", 1, milk, 1)));
    }
    json_decref(push(f, &f->t01, json_pack("{s:o}", "commands", cmds)));
    /* One more, on T02, whose payload is then damaged: counted, listed, not added up. */
    char damaged[DUKA_UUID_STR_LEN + 1], t02first[DUKA_UUID_STR_LEN + 1];
    new_id(f, t02first);
    new_id(f, damaged);
    cmds = json_array();
    json_array_append_new(cmds, command(t02first, sale_of(f, "T02", 1, milk, 1)));
    json_array_append_new(cmds, command(damaged, sale_of(f, "T02", 1, NULL, 0)));
    json_decref(push(f, &f->t02, json_pack("{s:o}", "commands", cmds)));
    hub_peek *db = peek(f);
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE conflicts SET payload = '{\"total_cents\": ' WHERE "
             "command_id = '%s'", damaged);
    hub_peek_exec(db, sql);
    hub_peek_close(db);

    duka_err err = {0};
    json_t *rep = NULL;
    assert_ok(duka_hub_report(f->store, f->business, &rep, &err), &err);
    /* The fields the report always had, as they were. */
    assert_int_equal(json_integer_value(json_object_get(rep, "sales")), 2);
    assert_int_equal(json_integer_value(json_object_get(rep, "conflicts")), CONFLICTS + 1);
    assert_int_equal(json_integer_value(json_object_get(rep, "total_cents")), 55100 + 6500);
    const json_t *details = json_object_get(rep, "conflict_details");
    assert_int_equal(json_array_size(details), DUKA_REPORT_CONFLICTS_MAX);
    assert_int_equal(json_integer_value(json_object_get(rep, "conflict_details_omitted")),
                     CONFLICTS + 1 - DUKA_REPORT_CONFLICTS_MAX);
    assert_int_equal(json_integer_value(json_object_get(rep, "conflict_total_cents")),
                     6500LL * CONFLICTS);
    const json_t *newest = json_array_get(details, 0), *next = json_array_get(details, 1);
    assert_string_equal(json_string_value(json_object_get(newest, "command_id")), damaged);
    assert_true(json_is_null(json_object_get(newest, "total_cents")));
    assert_string_equal(json_string_value(json_object_get(newest, "terminal")), "T02");
    assert_string_equal(json_string_value(json_object_get(newest, "receipt_no")),
                        "T02-20261121-00001");
    assert_string_equal(json_string_value(json_object_get(next, "command_id")), last);
    assert_string_equal(json_string_value(json_object_get(next, "existing_command_id")), first);
    assert_string_equal(json_string_value(json_object_get(next, "kind")), "receipt_reused");
    assert_string_equal(json_string_value(json_object_get(next, "terminal")), "T01");
    assert_string_equal(json_string_value(json_object_get(next, "receipt_no")),
                        "T01-20261121-00001");
    assert_int_equal(json_integer_value(json_object_get(next, "total_cents")), 6500);
    assert_int_equal(json_string_length(json_object_get(next, "detected")), 24);
    json_decref(rep);

    /* No conflicts: empty details, zeros. */
    char other[DUKA_BUSINESS_ID_LEN + 1];
    assert_ok(duka_hub_business_create(f->store, "Quiet shop", other, &err), &err);
    assert_ok(duka_hub_report(f->store, other, &rep, &err), &err);
    assert_int_equal(json_array_size(json_object_get(rep, "conflict_details")), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "conflict_details_omitted")), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "conflict_total_cents")), 0);
    json_decref(rep);

    int64_t t = 0;
    assert_true(duka_hub_conflict_payload_total("{\"total_cents\":42}", &t));
    assert_int_equal(t, 42);
    const char *unreadable[] = {"", "[", "[]", "{\"total_cents\":\"42\"}",
                                "{\"total_cents\":-1}", "{\"total_cents\":1,\"total_cents\":2}",
                                "{\"total_cents\":999999999999999999}"};
    for (size_t i = 0; i < sizeof(unreadable) / sizeof(unreadable[0]); i++)
        if (duka_hub_conflict_payload_total(unreadable[i], &t))
            fail_msg("payload '%s' read as a total", unreadable[i]);
    assert_false(duka_hub_conflict_payload_total(NULL, &t));
}

/* ---- a token belongs to one till database ---- */

#define TILL_A "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b"
#define TILL_B "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"

static int audit_count(fixture *f, const char *event)
{
    json_t *events = NULL;
    duka_err err = {0};
    assert_ok(duka_hub_audit_list(f->store, f->business, 1000, &events, &err), &err);
    int n = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(events, "events"), i, e)
        n += strcmp(json_string_value(json_object_get(e, "event")), event) == 0;
    json_decref(events);
    return n;
}

static duka_hub_device authenticated(fixture *f, const char *token)
{
    duka_hub_device dev;
    duka_err err = {0};
    assert_ok(duka_hub_device_authenticate(f->store, token, &dev, &err), &err);
    return dev;
}

static void test_till_ids(void **state)
{
    (void)state;
    assert_true(duka_till_id_valid(TILL_A));
    assert_true(duka_till_id_valid("00000000-0000-0000-0000-000000000000"));
    const char *bad[] = {
        NULL,
        "",
        "0F8E2A4C-1B3D-4E5F-8A9B-0C1D2E3F4A5B", /* upper case */
        "0f8e2a4c1b3d4e5f8a9b0c1d2e3f4a5b",     /* no dashes */
        "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5",  /* short */
        "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b0",
        "0f8e2a4c-1b3d-4e5f-8a9b_0c1d2e3f4a5b",
        "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5g",
        " 0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5",
        "0f8e2a4c-1b3d4-e5f-8a9b-0c1d2e3f4a5b", /* a dash out of place */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (duka_till_id_valid(bad[i]))
            fail_msg("till id '%s' accepted", bad[i] ? bad[i] : "(null)");
}

static void test_token_bound_to_one_till(void **state)
{
    fixture *f = *state;
    duka_err err = {0};
    duka_till_outcome outcome;
    /* Unbound until a request names a till; authentication says so. */
    duka_hub_device dev = authenticated(f, f->token1);
    assert_string_equal(dev.till_id, "");
    assert_int_equal(dev.till_bound_ms, 0);
    assert_string_equal(dev.business_name, "Duka ya Mama");

    /* A malformed id: refused, nothing written. */
    assert_int_equal(duka_hub_till_check(f->store, &dev, "not-a-uuid", false, "GET /v1/pull",
                                         T0, &outcome, &err),
                     DUKA_INPUT);
    assert_contains(err.msg, "Duka-Till-Id: 'not-a-uuid' is not a till id");
    assert_string_equal(authenticated(f, f->token1).till_id, "");

    /* The first id binds (audited); authentication returns it from then on. */
    duka_err_clear(&err);
    assert_ok(duka_hub_till_check(f->store, &dev, TILL_A, false, "GET /v1/whoami", T0, &outcome,
                                  &err),
              &err);
    assert_int_equal(outcome, DUKA_TILL_BOUND);
    assert_string_equal(dev.till_id, TILL_A);
    dev = authenticated(f, f->token1);
    assert_string_equal(dev.till_id, TILL_A);
    assert_int_equal(dev.till_bound_ms, T0);
    assert_int_equal(audit_count(f, "till_bound"), 1);

    /* The same id: fine, nothing written. */
    assert_ok(duka_hub_till_check(f->store, &dev, TILL_A, false, "POST /v1/push", T0 + 1,
                                  &outcome, &err),
              &err);
    assert_int_equal(outcome, DUKA_TILL_SAME);
    assert_int_equal(authenticated(f, f->token1).till_bound_ms, T0);

    /* Another till database with the same token: refused, audited, binding unchanged. */
    assert_int_equal(duka_hub_till_check(f->store, &dev, TILL_B, false, "POST /v1/push", T0 + 2,
                                         &outcome, &err),
                     DUKA_CONFLICT);
    assert_string_equal(err.msg,
                        "the token of terminal T01 is in use by another till database (since "
                        "2026-11-21T09:00:00Z): run duka till init --replace on the till that "
                        "should keep it, or issue a new token (duka device revoke, then duka "
                        "device add)");
    assert_int_equal(audit_count(f, "token_in_use"), 1);
    assert_string_equal(authenticated(f, f->token1).till_id, TILL_A);
    /* Another device of the business is not affected. */
    duka_hub_device t02 = authenticated(f, f->token2);
    duka_err_clear(&err);
    assert_ok(duka_hub_till_check(f->store, &t02, TILL_B, false, "GET /v1/pull", T0, &outcome,
                                  &err),
              &err);
    assert_int_equal(outcome, DUKA_TILL_BOUND);

    /* Replace: the token moves to the new till database, audited naming both. */
    dev = authenticated(f, f->token1);
    assert_ok(duka_hub_till_check(f->store, &dev, TILL_B, true, "GET /v1/whoami", T0 + 3,
                                  &outcome, &err),
              &err);
    assert_int_equal(outcome, DUKA_TILL_REPLACED);
    dev = authenticated(f, f->token1);
    assert_string_equal(dev.till_id, TILL_B);
    assert_int_equal(dev.till_bound_ms, T0 + 3);
    json_t *events = NULL;
    assert_ok(duka_hub_audit_list(f->store, f->business, 1, &events, &err), &err);
    const json_t *e = json_array_get(json_object_get(events, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "event")), "till_replaced");
    assert_contains(json_string_value(json_object_get(e, "detail")), TILL_A);
    assert_contains(json_string_value(json_object_get(e, "detail")), TILL_B);
    json_decref(events);
    /* ... and the old one is the other database now. */
    assert_int_equal(duka_hub_till_check(f->store, &dev, TILL_A, false, "GET /v1/pull", T0 + 4,
                                         &outcome, &err),
                     DUKA_CONFLICT);

    /* A stale read (another request bound it meanwhile): the compare-and-set finds the winner's
     * id, and this request is judged against it. */
    duka_hub_device stale = authenticated(f, f->token1);
    snprintf(stale.till_id, sizeof(stale.till_id), "%s", "");
    bool changed = true;
    duka_err_clear(&err);
    assert_ok(duka_hub_device_bind_till(f->store, &stale, TILL_A, T0 + 5, &changed, &err), &err);
    assert_false(changed);
    assert_string_equal(stale.till_id, TILL_B);
    snprintf(stale.till_id, sizeof(stale.till_id), "%s", "");
    assert_int_equal(duka_hub_till_check(f->store, &stale, TILL_A, false, "GET /v1/pull", T0 + 5,
                                         &outcome, &err),
                     DUKA_CONFLICT);
    duka_err_clear(&err);
    snprintf(stale.till_id, sizeof(stale.till_id), "%s", "");
    assert_ok(duka_hub_till_check(f->store, &stale, TILL_B, false, "GET /v1/pull", T0 + 5,
                                  &outcome, &err),
              &err);
    assert_int_equal(outcome, DUKA_TILL_SAME);

    /* A new token for the terminal (revoke, then add) starts unbound: any till may take it. */
    assert_ok(duka_hub_device_revoke(f->store, f->business, "T01", T0 + 6, &err), &err);
    assert_int_equal(duka_hub_device_bind_till(f->store, &dev, TILL_A, T0 + 6, &changed, &err),
                     DUKA_AUTH);
    duka_err_clear(&err);
    char token[DUKA_TOKEN_MAX + 1];
    assert_ok(duka_hub_device_add(f->store, f->business, "T01", token, &err), &err);
    dev = authenticated(f, token);
    assert_int_equal(dev.id, f->t01.id);
    assert_string_equal(dev.till_id, "");
    assert_int_equal(dev.till_bound_ms, 0);
    assert_ok(duka_hub_till_check(f->store, &dev, TILL_A, false, "GET /v1/whoami", T0 + 7,
                                  &outcome, &err),
              &err);
    assert_int_equal(outcome, DUKA_TILL_BOUND);
}

/* Schema version 3 on a hub of version 2: businesses get an empty KRA PIN, devices no till
 * binding; tokens, sales and lists work on. */
static void test_migration_to_v3_binds_no_till(void **state)
{
    fixture *f = *state;
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_decref(push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, NULL, 0)))));
    hub_peek *db = peek(f);
    schema_back_to_v2(f, db);
    hub_peek_close(db);
    migrate_as_hub_init(f);

    duka_hub_device dev = authenticated(f, f->token1);
    assert_int_equal(dev.id, f->t01.id);
    assert_string_equal(dev.till_id, "");
    assert_string_equal(dev.kra_pin, "");
    assert_string_equal(dev.business_name, "Duka ya Mama");
    duka_err err = {0};
    json_t *list = NULL;
    assert_ok(duka_hub_business_list(f->store, false, &list, &err), &err);
    assert_string_equal(
        json_string_value(json_object_get(business_in(list, f->business), "kra_pin")), "");
    json_decref(list);
    new_id(f, id);
    json_t *reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 2, NULL, 0))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);
    assert_int_equal(report_int(f, f->business, "sales"), 2);
}

/* ---- PostgreSQL only: two hubs, row security, roles, reconnecting ---- */

static bool skip_unless_pg(const fixture *f)
{
    if (!f->db.pg) {
        print_message("(PostgreSQL only: runs in pg/unit/test_hub_push)\n");
        skip();
        return true;
    }
    return false;
}

typedef struct racer {
    duka_hub_store *store;
    const duka_hub_device *dev;
    json_t *body;
    json_t *reply;
    duka_rc rc;
    duka_err err;
    int commits;
    pthread_barrier_t *barrier;
} racer;

/* Runs before each commit of a racer's store: the first time, waits for the other racer, so
 * both looked their batch up (and found none of the shared ids) before either writes. */
static bool racer_before_commit(void *ctx)
{
    racer *r = ctx;
    if (r->commits++ == 0)
        pthread_barrier_wait(r->barrier);
    return false; /* never an injected failure */
}

static void *racer_run(void *arg)
{
    racer *r = arg;
    r->rc = duka_hub_push_apply(r->store, r->dev, r->body, T0, &r->reply, &r->err);
    return NULL;
}

/* Two hub processes (two stores, two connections) apply overlapping batches with the same
 * command ids at the same instant. The database's unique constraint decides: each command is
 * applied once, the loser's commit finds fewer ids claimed than it buffered (DUKA_BUSY),
 * applies its batch again and answers "duplicate" for what the winner applied. */
static void test_two_hubs_race_on_one_batch(void **state)
{
    fixture *f = *state;
    if (skip_unless_pg(f))
        return;
    enum { N = 9, SPLIT = 6, OVERLAP = 3 };
    char ids[N][DUKA_UUID_STR_LEN + 1];
    json_t *all = json_array();
    for (int i = 0; i < N; i++) {
        new_id(f, ids[i]);
        json_array_append_new(all, command(ids[i], sale_of(f, "T01", i + 1, NULL, 0)));
    }
    /* Hub A gets commands 0..5, hub B 3..8: 3, 4, 5 go to both. */
    json_t *a_cmds = json_array(), *b_cmds = json_array();
    for (int i = 0; i < N; i++) {
        if (i < SPLIT)
            json_array_append(a_cmds, json_array_get(all, (size_t)i));
        if (i >= SPLIT - OVERLAP)
            json_array_append(b_cmds, json_array_get(all, (size_t)i));
    }
    json_decref(all);
    duka_err err = {0};
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    racer r[2] = {{.dev = &f->t01, .body = json_pack("{s:o}", "commands", a_cmds),
                   .barrier = &barrier},
                  {.dev = &f->t01, .body = json_pack("{s:o}", "commands", b_cmds),
                   .barrier = &barrier}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        assert_ok(duka_hub_store_open(f->db.url, false, &r[k].store, &err), &err);
        duka_hub_store_set_commit_fault(r[k].store, racer_before_commit, &r[k]);
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, racer_run, &r[k]), 0);
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);
    pthread_barrier_destroy(&barrier);
    for (int k = 0; k < 2; k++)
        if (r[k].rc != DUKA_OK)
            fail_msg("hub %c: rc %d: %s", 'A' + k, r[k].rc, r[k].err.msg);

    /* Exactly one of them went round twice: the loser. */
    assert_int_equal(r[0].commits + r[1].commits, 3);
    int loser = r[0].commits == 2 ? 0 : 1;
    int applied[N] = {0}, duplicate[N] = {0};
    for (int k = 0; k < 2; k++) {
        size_t i;
        const json_t *res;
        json_array_foreach(json_object_get(r[k].reply, "results"), i, res) {
            const char *id = json_string_value(json_object_get(res, "id"));
            const char *status = json_string_value(json_object_get(res, "status"));
            int at = -1;
            for (int j = 0; j < N; j++)
                if (strcmp(ids[j], id) == 0)
                    at = j;
            assert_true(at >= 0);
            if (strcmp(status, "applied") == 0)
                applied[at]++;
            else if (strcmp(status, "duplicate") == 0 && k == loser)
                duplicate[at]++;
            else
                fail_msg("hub %c answered %s for command %d", 'A' + k, status, at);
        }
    }
    for (int j = 0; j < N; j++) {
        assert_int_equal(applied[j], 1);
        bool shared = j >= SPLIT - OVERLAP && j < SPLIT;
        assert_int_equal(duplicate[j], shared ? 1 : 0);
    }
    assert_int_equal(report_int(f, f->business, "sales"), N);
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM processed_commands"), N);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM sale_lines"), 2 * N);
    assert_int_equal(stock_of(db, "RICE"), 10000 - 500 * N);
    hub_peek_close(db);
    for (int k = 0; k < 2; k++) {
        json_decref(r[k].body);
        json_decref(r[k].reply);
        duka_hub_store_close(r[k].store);
    }
}

/* A message never carries the hub role's password (DUKA_PG_URL has one). */
static void assert_no_password(const char *msg)
{
    const char *url = hub_db_env("DUKA_PG_URL");
    const char *colon = strstr(url, "duka_hub:"), *at = strchr(url, '@');
    assert_non_null(colon);
    assert_non_null(at);
    char password[128];
    snprintf(password, sizeof(password), "%.*s", (int)(at - colon - 9), colon + 9);
    assert_true(strlen(password) >= 8);
    if (strstr(msg, password) != NULL)
        fail_msg("the message shows the password: %s", msg);
}

/* count(*) of table on a raw connection (no store). */
static int64_t raw_count(PGconn *c, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    int64_t n = (int64_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* SQLSTATE of running sql on c ("" when it succeeded). */
static const char *raw_state(PGconn *c, const char *sql, char out[6])
{
    PGresult *r = PQexec(c, sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(out, 6, "%s", st ? st : "");
    PQclear(r);
    return out;
}

static const char *const business_tables[] = {
    "businesses", "devices", "products", "sales", "sale_lines", "payments", "stock_ledger",
    "stock_movements", "processed_commands", "conflicts", "audit_log",
};

/* Row-level security, seen from a connection with no store in it: the hub's role with no
 * business set sees no row of any business table, even though the business has rows of
 * every kind; set to another business it sees none of this one's; the owner is held to the
 * same (FORCE), and a row of another business cannot be written. */
static void test_row_security_hides_every_business_row(void **state)
{
    fixture *f = *state;
    if (skip_unless_pg(f))
        return;
    /* Rows of every kind: a sale, a conflict, a refused command (audit). */
    char a[DUKA_UUID_STR_LEN + 1], b[DUKA_UUID_STR_LEN + 1], c[DUKA_UUID_STR_LEN + 1];
    new_id(f, a);
    new_id(f, b);
    new_id(f, c);
    json_t *cmds = json_array();
    json_array_append_new(cmds, command(a, sale_of(f, "T01", 1, NULL, 0)));
    json_array_append_new(cmds, command(b, sale_of(f, "T01", 1, NULL, 0)));
    json_array_append_new(cmds, command(c, sale_of(f, "T02", 1, NULL, 0)));
    json_decref(push(f, &f->t01, json_pack("{s:o}", "commands", cmds)));
    duka_err err = {0};
    char other[DUKA_BUSINESS_ID_LEN + 1];
    assert_ok(duka_hub_business_create(f->store, "Another shop", other, &err), &err);

    PGconn *app = PQconnectdb(f->db.url);
    PGconn *owner = PQconnectdb(f->db.admin_url);
    assert_int_equal(PQstatus(app), CONNECTION_OK);
    assert_int_equal(PQstatus(owner), CONNECTION_OK);
    char set_this[96], set_other[96], state6[6];
    snprintf(set_this, sizeof(set_this), "SET duka.business_id = '%s'", f->business);
    snprintf(set_other, sizeof(set_other), "SET duka.business_id = '%s'", other);
    for (size_t i = 0; i < sizeof(business_tables) / sizeof(business_tables[0]); i++) {
        const char *t = business_tables[i];
        if (raw_count(app, t) != 0 || raw_count(owner, t) != 0)
            fail_msg("%s: rows visible with no business set", t);
    }
    assert_string_equal(raw_state(app, set_other, state6), "");
    for (size_t i = 0; i < sizeof(business_tables) / sizeof(business_tables[0]); i++)
        if (strcmp(business_tables[i], "businesses") != 0 && raw_count(app, business_tables[i]))
            fail_msg("%s: another business's rows visible", business_tables[i]);
    assert_string_equal(raw_state(app, set_this, state6), "");
    for (size_t i = 0; i < sizeof(business_tables) / sizeof(business_tables[0]); i++)
        if (raw_count(app, business_tables[i]) == 0)
            fail_msg("%s: no row of the business visible with it set (the test needs some)",
                     business_tables[i]);
    /* Writing a row of another business while set to this one: refused by the policy. */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO stock_ledger(business_id, sku, delta_milli, reason, ref, created_ms)"
             " VALUES('%s', 'X', 1, 'test', '', 0)",
             other);
    assert_string_equal(raw_state(app, sql, state6), "42501");
    /* The token exception shows one devices row, and only while its setting names it. */
    assert_string_equal(raw_state(app, "RESET duka.business_id", state6), "");
    snprintf(sql, sizeof(sql), "SET duka.auth_device_id = '%lld'", (long long)f->t01.id);
    assert_string_equal(raw_state(app, sql, state6), "");
    assert_int_equal(raw_count(app, "devices"), 1);
    assert_int_equal(raw_count(app, "sales"), 0);
    assert_string_equal(raw_state(app, "UPDATE devices SET revoked_ms = 1", state6), "");
    hub_peek *db = peek(f);
    assert_int_equal(hub_peek_int(db, "SELECT count(*) FROM devices WHERE revoked_ms IS NOT NULL"),
                     0);
    hub_peek_close(db);
    /* The directory exception shows the businesses rows, and only them, and only to read. */
    assert_string_equal(raw_state(app, "RESET duka.auth_device_id", state6), "");
    assert_string_equal(raw_state(app, "SET duka.directory = 'on'", state6), "");
    assert_true(raw_count(app, "businesses") >= 2);
    for (size_t i = 0; i < sizeof(business_tables) / sizeof(business_tables[0]); i++)
        if (strcmp(business_tables[i], "businesses") != 0 && raw_count(app, business_tables[i]))
            fail_msg("%s: rows visible through the directory exception", business_tables[i]);
    PGresult *up = PQexec(app, "UPDATE businesses SET name = 'renamed'");
    assert_int_equal(PQresultStatus(up), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(up), "0");
    PQclear(up);
    assert_string_equal(raw_state(app, "RESET duka.directory", state6), "");
    assert_int_equal(raw_count(app, "businesses"), 0);
    PQfinish(app);
    PQfinish(owner);
}

/* The hub's role is not the owner: the tables belong to the role that ran duka hub init; the
 * hub's role cannot drop or alter them, turn row security off, delete or truncate; and it
 * cannot create the schema (duka hub init as it says why). */
static void test_hub_role_is_not_the_owner(void **state)
{
    fixture *f = *state;
    if (skip_unless_pg(f))
        return;
    PGconn *app = PQconnectdb(f->db.url);
    assert_int_equal(PQstatus(app), CONNECTION_OK);
    char sql[256], state6[6];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' AND tableowner = current_user",
             f->db.schema);
    PGresult *r = PQexec(app, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT tableowner) FROM pg_tables WHERE schemaname = '%s'"
             " AND tableowner <> 'duka_hub'",
             f->db.schema);
    r = PQexec(app, sql);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    const char *refused[] = {
        "DROP TABLE audit_log",
        "ALTER TABLE sales NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE sales DISABLE ROW LEVEL SECURITY",
        "DROP POLICY sales_of_business ON sales",
        "DELETE FROM processed_commands",
        "TRUNCATE sales CASCADE",
        "CREATE TABLE intruder (x int)",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        raw_state(app, refused[i], state6);
        if (strcmp(state6, "42501") != 0)
            fail_msg("'%s' as the hub's role: SQLSTATE '%s', expected 42501 (refused)",
                     refused[i], state6);
    }
    PQfinish(app);

    /* A fresh schema: the hub's role cannot create it, and says who can. */
    char schema[64], url[1024];
    snprintf(schema, sizeof(schema), "duka_empty_%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s; GRANT USAGE, CREATE ON SCHEMA %s TO duka_hub",
             schema, schema);
    hub_db_pg_exec(hub_db_env("DUKA_PG_ADMIN_URL"), sql);
    hub_db_url_in_schema(hub_db_env("DUKA_PG_URL"), schema, url, sizeof(url));
    duka_hub_store *s = NULL;
    duka_err err = {0};
    assert_int_equal(duka_hub_store_open(url, false, &s, &err), DUKA_NOTFOUND);
    assert_contains(err.msg, "no duka hub schema");
    assert_contains(err.msg, "duka hub init");
    duka_err_clear(&err);
    assert_int_not_equal(duka_hub_store_open(url, true, &s, &err), DUKA_OK);
    assert_null(s);
    assert_contains(err.msg, "duka hub init as the tables' owner");
    assert_no_password(err.msg);
    PGconn *c = PQconnectdb(url);
    r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NULL");
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(c);
    hub_db_pg_schema_drop(schema);
}

/* Tables that grow with the business's trade: a plan that reads one of them whole for each
 * push or pull gets slower with every sale (a catch-up of 100,000 sales spent a third of the
 * database's time so). */
static const char *const growing_tables[] = {
    "sales", "sale_lines", "payments", "stock_ledger", "processed_commands", "command_ids",
    "conflicts", "audit_log", "products", "devices",
};

/* Statements that read all of a business's rows by nature: the report. */
static bool reads_everything(const char *name)
{
    return strcmp(name, "duka_REPORT_TOTALS") == 0 || strcmp(name, "duka_REPORT_RECEIPTS") == 0 ||
           strcmp(name, "duka_REPORT_CASHIERS") == 0;
}

/* Every statement the store prepares, planned as the store runs it — one generic plan per
 * connection (plan_cache_mode = force_generic_plan), made at its first execution, here while
 * the tables are empty, as they are when a new hub starts — probes an index instead of
 * scanning a growing table, apart from the report. A generic plan is kept for the life of the
 * connection: one that scans is a plan whose cost grows with every sale. (The batch lookup
 * was such a plan, a hash join over every command id and every sale.) */
static void test_generic_plans_probe_indexes(void **state)
{
    fixture *f = *state;
    if (skip_unless_pg(f))
        return;
    /* A schema of its own, with empty tables: a new hub's first connection. */
    char schema[64], url[1024];
    snprintf(schema, sizeof(schema), "duka_plans_%ld", (long)getpid());
    hub_db_pg_schema_new(schema);
    hub_db_url_in_schema(hub_db_env("DUKA_PG_URL"), schema, url, sizeof(url));
    PGconn *app = PQconnectdb(url);
    assert_int_equal(PQstatus(app), CONNECTION_OK);
    char sql[160], state6[6];
    snprintf(sql, sizeof(sql), "SET plan_cache_mode = force_generic_plan;"
             " SET duka.business_id = '%s'", f->business);
    assert_string_equal(raw_state(app, sql, state6), "");
    const char *name, *text;
    int checked = 0;
    for (int i = 0; duka_hub_store_pg_statement(i, &name, &text); i++) {
        PGresult *r = PQprepare(app, name, text, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("preparing %s: %s", name, PQerrorMessage(app));
        PQclear(r);
        if (reads_everything(name))
            continue;
        r = PQdescribePrepared(app, name);
        int nparams = PQnparams(r);
        PQclear(r);
        char explain[512];
        int n = snprintf(explain, sizeof(explain), "EXPLAIN EXECUTE \"%s\"", name);
        for (int k = 0; k < nparams; k++)
            n += snprintf(explain + n, sizeof(explain) - (size_t)n, "%sNULL", k ? ", " : "(");
        snprintf(explain + n, sizeof(explain) - (size_t)n, "%s", nparams ? ")" : "");
        r = PQexec(app, explain);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", explain, PQerrorMessage(app));
        for (int row = 0; row < PQntuples(r); row++) {
            const char *line = PQgetvalue(r, row, 0);
            for (size_t t = 0; t < sizeof(growing_tables) / sizeof(growing_tables[0]); t++) {
                char scan[64];
                snprintf(scan, sizeof(scan), "Seq Scan on %s ", growing_tables[t]);
                if (strstr(line, scan) != NULL)
                    fail_msg("%s scans all of %s in its generic plan: %s", name,
                             growing_tables[t], line);
            }
        }
        PQclear(r);
        checked++;
    }
    assert_true(checked >= 10);
    PQfinish(app);
    hub_db_pg_schema_drop(schema);
}

/* Ends the backends of the store's connections (as the cluster's superuser). */
static void drop_hub_connections(void)
{
    hub_db_pg_exec(hub_db_env("DUKA_PG_SUPER_URL"),
                   "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE usename = 'duka_hub' AND application_name = 'duka-hub'");
}

/* The server drops the connection (a restart, a failover, an administrator): the next
 * transaction (and the next authentication) reconnects and prepares its statements again;
 * a transaction that was open fails as a storage error and leaves nothing. */
static void test_reconnects_after_the_server_dropped_it(void **state)
{
    fixture *f = *state;
    if (skip_unless_pg(f))
        return;
    duka_err err = {0};
    duka_hub_device dev;
    drop_hub_connections();
    assert_ok(duka_hub_device_authenticate(f->store, f->token1, &dev, &err), &err);
    assert_int_equal(dev.id, f->t01.id);

    drop_hub_connections();
    char id[DUKA_UUID_STR_LEN + 1];
    new_id(f, id);
    json_t *reply = push(f, &f->t01, body1(command(id, sale_of(f, "T01", 1, NULL, 0))));
    assert_result(reply, 0, id, "applied", NULL);
    json_decref(reply);

    /* Dropped inside a transaction: that transaction fails, nothing of it stays. */
    duka_hub_product p = {.price_cents = 100, .tax_band = 'A'};
    snprintf(p.sku, sizeof(p.sku), "LOST");
    snprintf(p.name, sizeof(p.name), "Never stored");
    assert_ok(duka_hub_store_begin(f->store, &err), &err);
    assert_ok(duka_hub_business_check(f->store, f->business, &err), &err);
    drop_hub_connections();
    assert_int_equal(duka_hub_product_upsert(f->store, f->business, &p, T0, &err), DUKA_STORE);
    assert_contains(err.msg, "connection lost");
    assert_no_password(err.msg);
    duka_hub_store_rollback(f->store);
    json_t *js = NULL;
    duka_err_clear(&err);
    assert_ok(duka_hub_changes_since(f->store, f->business, 0, 10, &js, &err), &err);
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(js, "changes"), i, c)
        assert_string_not_equal(json_string_value(json_object_get(c, "sku")), "LOST");
    json_decref(js);
    assert_int_equal(report_int(f, f->business, "sales"), 1);
}

/* Messages and logs name a PostgreSQL URL without its password, however it was given. */
static void test_redacted_locations(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"/var/lib/duka/hub.db", "/var/lib/duka/hub.db"},
        {"postgres://duka_hub:s3cret@db.example:5432/duka",
         "postgres://duka_hub@db.example:5432/duka"},
        {"postgresql://duka_hub:s3cret@/duka?host=/run/pg",
         "postgresql://duka_hub@/duka?host=/run/pg"},
        {"postgres://duka_hub@db/duka?password=s3cret&sslmode=require",
         "postgres://duka_hub@db/duka?sslmode=require"},
        {"postgres://duka_hub@db/duka?sslmode=require&password=s3cret",
         "postgres://duka_hub@db/duka?sslmode=require"},
        {"postgres://db.example/duka", "postgres://db.example/duka"},
        {"postgres://u:s3cret@h/d?password=s3cret&password=s3cret", "postgres://u@h/d"},
        {"postgres://u:s3c:ret@h/d", "postgres://u@h/d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[DUKA_URL_MAX + 1];
        duka_hub_store_redact(cases[i][0], out, sizeof(out));
        assert_string_equal(out, cases[i][1]);
        assert_null(strstr(out, "s3c"));
    }
    /* Cut to the room there is, however long the URL (a URL longer than any limit is still
     * named in the message that refuses it). */
    char tiny[8];
    duka_hub_store_redact("postgres://u:s3cret@h/d", tiny, sizeof(tiny));
    assert_string_equal(tiny, "postgre");
    duka_hub_store_redact("postgres://u:s3cret@host.example/database?sslmode=require", tiny,
                          sizeof(tiny));
    assert_string_equal(tiny, "postgre");
    char longest[2 * DUKA_URL_MAX];
    memset(longest, 'h', sizeof(longest));
    memcpy(longest, "postgres://u:s3cret@", 20);
    longest[sizeof(longest) - 1] = '\0';
    char out[DUKA_URL_MAX + 1];
    duka_hub_store_redact(longest, out, sizeof(out));
    assert_int_equal(strlen(out), DUKA_URL_MAX);
    assert_null(strstr(out, "s3c"));
    /* Such a URL is refused before any connection is tried, and named without its password. */
    duka_hub_store *s = NULL;
    duka_err err = {0};
    assert_int_equal(duka_hub_store_open(longest, false, &s, &err), DUKA_INPUT);
    assert_null(s);
    assert_contains(err.msg, "longer than " DUKA_STRINGIFY(DUKA_URL_MAX) " characters");
    assert_contains(err.msg, "postgres://u@hhh");
    assert_null(strstr(err.msg, "s3c"));
}

int main(void)
{
    setenv("TZ", "Africa/Nairobi", 1);
    tzset();
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_device_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_code_is_enqueued_for_verification, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_applied_duplicate_reused_foreign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_stored_with_the_earlier_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipt_reused_is_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_command_in_batch_leaves_no_trace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_terminal_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stock_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_to_lines_as_deltas_keeps_levels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_businesses_are_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cashiers_at_the_hub, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_since_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_largest_sale_is_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_past_each_bound_is_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_beyond_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_rollback_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeats_inside_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_commit_cannot_be_skipped, setup, teardown),
        cmocka_unit_test(test_kra_pins_and_business_names),
        cmocka_unit_test_setup_teardown(test_business_names_are_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_name_registered_at_once_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_and_product_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stock_flags_the_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_lists_conflicts, setup, teardown),
        cmocka_unit_test(test_till_ids),
        cmocka_unit_test_setup_teardown(test_token_bound_to_one_till, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_to_v3_binds_no_till, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_hubs_race_on_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_security_hides_every_business_row, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hub_role_is_not_the_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects_after_the_server_dropped_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_generic_plans_probe_indexes, setup, teardown),
        cmocka_unit_test(test_redacted_locations),
        cmocka_unit_test_setup_teardown(test_refund_before_its_sale_is_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

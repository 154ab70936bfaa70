/*
 * test_cashier.c — the till's cashiers (src/till/cashier.h): the pulled list, PIN logins with
 * their lockout, sessions (idle expiry, a deactivated cashier), and that no PIN ever reaches
 * the database file. The clock is injected: nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sodium.h>

#include "common/uuid.h"

#include "hub/hub_cashiers.h"
#include "protocol/sale.h"
#include "till/cashier.h"
#include "test_util.h"

#define AMINA "01a23c44-f77d-7c0d-89ca-4d6dc6bc2690"
#define BARAKA "01a23c44-f79b-760f-b73d-21b7f2c9502a"
#define ZURI "01a23c44-f79b-760f-b73d-21b7f2c9502b"
#define AMINA_PIN "1234"
#define BARAKA_PIN "56789012"

typedef struct fixture {
    test_dir dir;
    char path[512];
    sqlite3 *db;
    fake_clock clock;
    char amina_hash[DUKA_PIN_HASH_MAX + 1], baraka_hash[DUKA_PIN_HASH_MAX + 1];
} fixture;

/* The pull member {"version", "list"} with Amina (active unless amina_active is false),
 * Baraka (manager) and Zuri (inactive). */
static json_t *member(const fixture *f, int64_t version, bool amina_active)
{
    return json_pack("{s:I, s:[{s:s, s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:s, s:b},"
                     " {s:s, s:s, s:s, s:s, s:b}]}",
                     "version", (json_int_t)version, "list", "id", AMINA, "name", "Amina",
                     "role", "cashier", "pin_hash", f->amina_hash, "active", amina_active, "id",
                     BARAKA, "name", "baraka", "role", "manager", "pin_hash", f->baraka_hash,
                     "active", 1, "id", ZURI, "name", "Zuri", "role", "cashier", "pin_hash",
                     f->amina_hash, "active", 0);
}

static void apply(fixture *f, json_t *m)
{
    duka_err err = {0};
    assert_ok(duka_cashiers_apply_pull(f->db, m, &err), &err);
    json_decref(m);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    test_dir_make(&f->dir);
    f->db = test_till_db(&f->dir, f->path, sizeof(f->path), "T01");
    fake_clock_init(&f->clock, T_2026_11_21_NOON_MS);
    duka_err err = {0};
    assert_ok(duka_pin_hash(AMINA_PIN, f->amina_hash, &err), &err);
    assert_ok(duka_pin_hash(BARAKA_PIN, f->baraka_hash, &err), &err);
    apply(f, member(f, 1, true));
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

static duka_rc login(fixture *f, const char *id, const char *pin, char *token, duka_err *err)
{
    duka_session s;
    return duka_session_login(f->db, &f->clock.clock, id, pin, DUKA_SESSION_IDLE_DEFAULT_MS,
                              token, &s, err);
}

/* Active cashiers only, by name whatever the case; the version kept with them. */
static void test_list_is_the_active_ones_by_name(void **state)
{
    fixture *f = *state;
    duka_cashier list[8];
    int n = 0;
    duka_err err = {0};
    assert_ok(duka_cashier_list(f->db, list, 8, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "Amina");
    assert_string_equal(list[0].role, "cashier");
    assert_string_equal(list[1].name, "baraka");
    assert_string_equal(list[1].role, "manager");
    assert_string_equal(list[1].id, BARAKA);
    int64_t v = 0;
    assert_ok(duka_cashiers_version(f->db, &v, &err), &err);
    assert_int_equal(v, 1);
    /* max bounds what is written */
    assert_ok(duka_cashier_list(f->db, list, 1, &n, &err), &err);
    assert_int_equal(n, 1);
    duka_cashier c;
    assert_ok(duka_cashier_find_by_name(f->db, "AMINA", &c, &err), &err);
    assert_string_equal(c.id, AMINA);
    assert_rc(duka_cashier_find_by_name(f->db, "Zuri", &c, &err), DUKA_NOTFOUND, &err);
    assert_contains(err.msg, "no active cashier 'Zuri'");
}

static void test_login_good_pin_opens_a_session(void **state)
{
    fixture *f = *state;
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_session s;
    duka_err err = {0};
    assert_ok(duka_session_login(f->db, &f->clock.clock, BARAKA, BARAKA_PIN,
                                 DUKA_SESSION_IDLE_DEFAULT_MS, token, &s, &err),
              &err);
    assert_int_equal(strlen(token), DUKA_SESSION_TOKEN_LEN);
    assert_string_equal(s.cashier.name, "baraka");
    assert_string_equal(s.cashier.role, "manager");
    assert_int_equal(s.created_ms, T_2026_11_21_NOON_MS);
    /* only the token's hash is stored */
    assert_int_equal(sql_int_text(f->db, "SELECT count(*) FROM sessions WHERE token_hash = ?1",
                                  token),
                     0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sessions"), 1);
    duka_session c;
    assert_ok(duka_session_check(f->db, &f->clock.clock, token, DUKA_SESSION_IDLE_DEFAULT_MS, &c,
                                 &err),
              &err);
    assert_string_equal(c.cashier.id, BARAKA);
    assert_ok(duka_session_logout(f->db, token, &err), &err);
    assert_rc(duka_session_check(f->db, &f->clock.clock, token, DUKA_SESSION_IDLE_DEFAULT_MS, &c,
                                 &err),
              DUKA_AUTH, &err);
    assert_contains(err.msg, "not logged in");
    /* logging out twice, or with rubbish, is fine */
    assert_ok(duka_session_logout(f->db, token, &err), &err);
    assert_ok(duka_session_logout(f->db, "x", &err), &err);
}

static void test_login_refusals(void **state)
{
    fixture *f = *state;
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_err err = {0};
    assert_rc(login(f, "01a23c44-0000-7000-8000-000000000000", "1234", token, &err),
              DUKA_NOTFOUND, &err);
    assert_contains(err.msg, "no cashier 01a23c44-0000-7000-8000-000000000000 on this till");
    duka_err_clear(&err);
    assert_rc(login(f, ZURI, AMINA_PIN, token, &err), DUKA_NOTFOUND, &err); /* inactive */
    const char *bad_pins[] = {"", "123", "123456789", "12a4", " 1234", "1234 ", NULL};
    for (int i = 0; bad_pins[i]; i++) {
        duka_err_clear(&err);
        assert_rc(login(f, AMINA, bad_pins[i], token, &err), DUKA_INPUT, &err);
        assert_string_equal(err.msg, "PIN: 4 to 8 digits");
    }
    duka_err_clear(&err);
    assert_rc(login(f, AMINA, NULL, token, &err), DUKA_INPUT, &err);
    /* none of those counted as a wrong PIN */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM login_failures"), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sessions"), 0);
    assert_string_equal(token, "");
}

/* Five wrong PINs lock the cashier for five minutes, persisted; a pull does not reset it;
 * once the lock has run out the good PIN works and clears the count. */
static void test_wrong_pins_lock_then_unlock_after_time(void **state)
{
    fixture *f = *state;
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_err err = {0};
    for (int i = 1; i < DUKA_LOGIN_FAILURES_MAX; i++) {
        duka_err_clear(&err);
        assert_rc(login(f, AMINA, "9999", token, &err), DUKA_AUTH, &err);
        char want[64];
        int left = DUKA_LOGIN_FAILURES_MAX - i;
        snprintf(want, sizeof(want), "wrong PIN for Amina (%d %s left)", left,
                 left == 1 ? "try" : "tries");
        assert_string_equal(err.msg, want);
    }
    duka_err_clear(&err);
    assert_rc(login(f, AMINA, "9999", token, &err), DUKA_BUSY, &err);
    assert_string_equal(err.msg, "Amina is locked after 5 wrong PINs; try again in 5 min");
    /* a pull replacing the list keeps the lockout */
    apply(f, member(f, 2, true));
    f->clock.now_ms += 61000;
    duka_err_clear(&err);
    assert_rc(login(f, AMINA, AMINA_PIN, token, &err), DUKA_BUSY, &err); /* even the good PIN */
    assert_string_equal(err.msg, "Amina is locked after 5 wrong PINs; try again in 4 min");
    /* the lock is per cashier */
    duka_err_clear(&err);
    assert_ok(login(f, BARAKA, BARAKA_PIN, token, &err), &err);
    /* reopened: it is on disk */
    duka_db_close(f->db);
    assert_ok(duka_till_db_open(f->path, false, &f->db, &err), &err);
    f->clock.now_ms = T_2026_11_21_NOON_MS + DUKA_LOGIN_LOCK_MS - 1;
    duka_err_clear(&err);
    assert_rc(login(f, AMINA, AMINA_PIN, token, &err), DUKA_BUSY, &err);
    assert_contains(err.msg, "try again in 1 min");
    f->clock.now_ms = T_2026_11_21_NOON_MS + DUKA_LOGIN_LOCK_MS;
    /* after the lock: a fresh set of tries */
    duka_err_clear(&err);
    assert_rc(login(f, AMINA, "9999", token, &err), DUKA_AUTH, &err);
    assert_string_equal(err.msg, "wrong PIN for Amina (4 tries left)");
    duka_err_clear(&err);
    assert_ok(login(f, AMINA, AMINA_PIN, token, &err), &err);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM login_failures"), 0);
}

static void test_session_expires_when_idle(void **state)
{
    fixture *f = *state;
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_err err = {0};
    const int64_t idle = 600000; /* 10 min */
    assert_ok(login(f, AMINA, AMINA_PIN, token, &err), &err);
    duka_session s;
    /* a request every 9 minutes keeps it alive well past 10 minutes */
    for (int i = 0; i < 4; i++) {
        f->clock.now_ms += 9 * 60000;
        assert_ok(duka_session_check(f->db, &f->clock.clock, token, idle, &s, &err), &err);
        assert_int_equal(s.last_seen_ms, f->clock.now_ms);
    }
    assert_int_equal(s.created_ms, T_2026_11_21_NOON_MS);
    f->clock.now_ms += idle; /* exactly idle: still alive */
    assert_ok(duka_session_check(f->db, &f->clock.clock, token, idle, &s, &err), &err);
    f->clock.now_ms += idle + 1;
    assert_rc(duka_session_check(f->db, &f->clock.clock, token, idle, &s, &err), DUKA_AUTH, &err);
    assert_contains(err.msg, "session expired");
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sessions"), 0);
    /* the idle time is the caller's setting */
    duka_err_clear(&err);
    assert_ok(login(f, AMINA, AMINA_PIN, token, &err), &err);
    f->clock.now_ms += 11 * 3600000LL;
    assert_ok(duka_session_check(f->db, &f->clock.clock, token, DUKA_SESSION_IDLE_DEFAULT_MS, &s,
                                 &err),
              &err);
    assert_rc(duka_session_check(f->db, &f->clock.clock, "not-a-token", idle, &s, &err),
              DUKA_AUTH, &err);
}

/* Retention removes sessions surely over (a browser closed without logging out), never one
 * still within its idle time and the lag of last_seen. */
static void test_session_cleanup_removes_only_ended_ones(void **state)
{
    fixture *f = *state;
    char old_token[DUKA_SESSION_TOKEN_LEN + 1], new_token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_err err = {0};
    const int64_t idle = 600000;
    assert_ok(login(f, AMINA, AMINA_PIN, old_token, &err), &err);
    f->clock.now_ms += idle + DUKA_SESSION_TOUCH_MS; /* old: exactly at the edge */
    assert_ok(login(f, BARAKA, BARAKA_PIN, new_token, &err), &err);
    int64_t deleted = -1;
    assert_ok(duka_session_cleanup(f->db, idle, f->clock.now_ms, &deleted, &err), &err);
    assert_int_equal(deleted, 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sessions"), 2);
    f->clock.now_ms += 1; /* one past it */
    assert_ok(duka_session_cleanup(f->db, idle, f->clock.now_ms, &deleted, &err), &err);
    assert_int_equal(deleted, 1);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sessions"), 1);
    duka_session s;
    assert_ok(duka_session_check(f->db, &f->clock.clock, new_token, idle, &s, &err), &err);
    assert_string_equal(s.cashier.name, "baraka");
}

/* A pull that deactivates (or drops) a cashier ends their session at its next check. */
static void test_deactivated_cashier_ends_the_session(void **state)
{
    fixture *f = *state;
    char t1[DUKA_SESSION_TOKEN_LEN + 1], t2[DUKA_SESSION_TOKEN_LEN + 1];
    duka_err err = {0};
    assert_ok(login(f, AMINA, AMINA_PIN, t1, &err), &err);
    assert_ok(login(f, BARAKA, BARAKA_PIN, t2, &err), &err);
    apply(f, member(f, 2, false));
    duka_session s;
    assert_rc(duka_session_check(f->db, &f->clock.clock, t1, DUKA_SESSION_IDLE_DEFAULT_MS, &s,
                                 &err),
              DUKA_AUTH, &err);
    assert_string_equal(err.msg, "Amina is no longer a cashier of this till");
    assert_ok(duka_session_check(f->db, &f->clock.clock, t2, DUKA_SESSION_IDLE_DEFAULT_MS, &s,
                                 &err),
              &err);
    /* removed from the list altogether */
    apply(f, json_pack("{s:i, s:[]}", "version", 3, "list"));
    duka_err_clear(&err);
    assert_rc(duka_session_check(f->db, &f->clock.clock, t2, DUKA_SESSION_IDLE_DEFAULT_MS, &s,
                                 &err),
              DUKA_AUTH, &err);
    int n = -1;
    duka_cashier list[4];
    assert_ok(duka_cashier_list(f->db, list, 4, &n, &err), &err);
    assert_int_equal(n, 0);
}

/* A malformed member changes nothing: not the list, not the version. */
static void test_malformed_pull_changes_nothing(void **state)
{
    fixture *f = *state;
    struct {
        const char *what;
        json_t *m;
    } bad[] = {
        {"not an object", json_string("x")},
        {"no version", json_pack("{s:[]}", "list")},
        {"negative version", json_pack("{s:i, s:[]}", "version", -1, "list")},
        {"no list", json_pack("{s:i}", "version", 5)},
        {"bad id", json_pack("{s:i, s:[{s:s, s:s, s:s, s:s, s:b}]}", "version", 5, "list", "id",
                             "x", "name", "A", "role", "cashier", "pin_hash", f->amina_hash,
                             "active", 1)},
        {"control char", json_pack("{s:i, s:[{s:s, s:s, s:s, s:s, s:b}]}", "version", 5, "list",
                                   "id", AMINA, "name", "A\tB", "role", "cashier", "pin_hash",
                                   f->amina_hash, "active", 1)},
        {"bad role", json_pack("{s:i, s:[{s:s, s:s, s:s, s:s, s:b}]}", "version", 5, "list", "id",
                               AMINA, "name", "A", "role", "boss", "pin_hash", f->amina_hash,
                               "active", 1)},
        {"plain pin", json_pack("{s:i, s:[{s:s, s:s, s:s, s:s, s:b}]}", "version", 5, "list",
                                "id", AMINA, "name", "A", "role", "cashier", "pin_hash", "1234",
                                "active", 1)},
        {"active not bool", json_pack("{s:i, s:[{s:s, s:s, s:s, s:s, s:i}]}", "version", 5,
                                      "list", "id", AMINA, "name", "A", "role", "cashier",
                                      "pin_hash", f->amina_hash, "active", 1)},
        {"repeated id", json_pack("{s:i, s:[{s:s, s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:s, s:b}]}",
                                  "version", 5, "list", "id", AMINA, "name", "A", "role",
                                  "cashier", "pin_hash", f->amina_hash, "active", 1, "id", AMINA,
                                  "name", "B", "role", "cashier", "pin_hash", f->amina_hash,
                                  "active", 1)},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        duka_err err = {0};
        if (duka_cashiers_apply_pull(f->db, bad[i].m, &err) != DUKA_PROTOCOL)
            fail_msg("%s: accepted (%s)", bad[i].what, err.msg);
        assert_contains(err.msg, "cashiers");
        json_decref(bad[i].m);
    }
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM cashiers"), 3);
    assert_int_equal(sql_int(f->db, "SELECT value FROM meta WHERE key = 'cashiers_version'"), 1);
    /* one more than DUKA_CASHIERS_MAX */
    json_t *list = json_array();
    for (int i = 0; i <= DUKA_CASHIERS_MAX; i++) {
        char id[DUKA_UUID_STR_LEN + 1], name[16];
        duka_uuid_v7(1000 + i, id);
        snprintf(name, sizeof(name), "C%d", i);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "name", name,
                                              "role", "cashier", "pin_hash", f->amina_hash,
                                              "active", 1));
    }
    json_t *m = json_pack("{s:i, s:O}", "version", 9, "list", list);
    duka_err err = {0};
    assert_rc(duka_cashiers_apply_pull(f->db, m, &err), DUKA_PROTOCOL, &err);
    /* at the limit it is fine */
    json_array_remove(list, 0);
    duka_err_clear(&err);
    assert_ok(duka_cashiers_apply_pull(f->db, m, &err), &err);
    json_decref(m);
    json_decref(list);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM cashiers"), DUKA_CASHIERS_MAX);
    /* and back to the three, nothing left of the hundred */
    apply(f, member(f, 10, true));
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM cashiers"), 3);
    int64_t v = 0;
    assert_ok(duka_cashiers_version(f->db, &v, &err), &err);
    assert_int_equal(v, 10);
    /* absent: nothing to do */
    assert_ok(duka_cashiers_apply_pull(f->db, NULL, &err), &err);
}

/* Reads a whole file into a heap buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    return buf;
}

static bool file_has(const char *path, const char *needle)
{
    size_t len = 0;
    char *buf = slurp(path, &len);
    if (buf == NULL)
        return false;
    bool found = false;
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len && !found; i++)
        found = memcmp(buf + i, needle, n) == 0;
    free(buf);
    return found;
}

/* The PIN is never in the database file (nor its write-ahead log) after logins, wrong ones
 * included; the hash is (the test finds what it looks for). */
static void test_pin_never_in_the_database_file(void **state)
{
    fixture *f = *state;
    char token[DUKA_SESSION_TOKEN_LEN + 1];
    duka_err err = {0};
    assert_ok(login(f, BARAKA, BARAKA_PIN, token, &err), &err);
    assert_rc(login(f, BARAKA, "87654321", token, &err), DUKA_AUTH, &err);
    duka_db_checkpoint(f->db);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_false(file_has(f->path, BARAKA_PIN));
    assert_false(file_has(wal, BARAKA_PIN));
    assert_false(file_has(f->path, "87654321"));
    assert_true(file_has(f->path, "$argon2id$") || file_has(wal, "$argon2id$"));
}

/* The hash records argon2id and the parameters of limits.h. */
static void test_pin_hash_parameters(void **state)
{
    fixture *f = *state;
    char want[64];
    snprintf(want, sizeof(want), "$argon2id$v=19$m=%u,t=%llu,p=1$",
             (unsigned)(DUKA_PIN_HASH_MEMLIMIT / 1024), (unsigned long long)DUKA_PIN_HASH_OPSLIMIT);
    assert_contains(f->amina_hash, want);
    assert_int_equal(crypto_pwhash_str_verify(f->amina_hash, AMINA_PIN, 4), 0);
    assert_int_not_equal(crypto_pwhash_str_verify(f->amina_hash, "1235", 4), 0);
}

/* The rules a cashier's name and PIN follow, at their edges. */
static void test_name_and_pin_rules(void **state)
{
    (void)state;
    char name[DUKA_CASHIER_NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    name[DUKA_CASHIER_NAME_MAX] = '\0';
    assert_true(duka_cashier_name_valid(name));
    name[DUKA_CASHIER_NAME_MAX] = 'a';
    name[DUKA_CASHIER_NAME_MAX + 1] = '\0';
    assert_false(duka_cashier_name_valid(name));
    assert_true(duka_cashier_name_valid("Wanjiru Kamau"));
    assert_true(duka_cashier_name_valid("Zoë"));
    assert_false(duka_cashier_name_valid(""));
    assert_false(duka_cashier_name_valid(" Amina"));
    assert_false(duka_cashier_name_valid("A\nB"));
    assert_false(duka_cashier_name_valid("A\x7f"));
    assert_false(duka_cashier_name_valid("A\xc2\x85"));  /* C1 NEL */
    assert_false(duka_cashier_name_valid("A\xff"));
    assert_true(duka_pin_valid("0000"));
    assert_true(duka_pin_valid("12345678"));
    assert_false(duka_pin_valid("123"));
    assert_false(duka_pin_valid("123456789"));
    assert_false(duka_pin_valid("１２３４")); /* fullwidth digits are not ASCII */
    assert_false(duka_pin_valid(NULL));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_is_the_active_ones_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_good_pin_opens_a_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_pins_lock_then_unlock_after_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_expires_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deactivated_cashier_ends_the_session, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_pull_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_cleanup_removes_only_ended_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pin_never_in_the_database_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_hash_parameters, setup, teardown),
        cmocka_unit_test(test_name_and_pin_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_pg_rows.c — the PostgreSQL binary arrays the hub's PostgreSQL store sends its pushes
 * in (hub/pg_rows.h), byte for byte against the format array_recv reads: the header of an
 * empty and of a filled array, text, NULL, int8 and int4 elements, savepoint marks, and the
 * misuses that must fail rather than send a malformed array (a value of the wrong type or
 * out of order, an int4 out of range, an incomplete row). The store's own tests
 * (pg/unit/test_hub_push) send these arrays to a real PostgreSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "hub/pg_rows.h"

static const pg_col_type two_cols[2] = {PG_COL_TEXT, PG_COL_INT8};

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void test_empty_array_is_ndim_0(void **state)
{
    (void)state;
    pg_rows r;
    pg_rows_init(&r, 2, two_cols);
    const char *v = NULL;
    int len = 0;
    assert_true(pg_rows_param(&r, 0, &v, &len));
    assert_int_equal(len, 12);
    assert_int_equal(get32(v), 0);      /* ndim */
    assert_int_equal(get32(v + 4), 0);  /* flags */
    assert_int_equal(get32(v + 8), 25); /* text */
    assert_true(pg_rows_param(&r, 1, &v, &len));
    assert_int_equal(len, 12);
    assert_int_equal(get32(v + 8), 20); /* int8 */
    pg_rows_free(&r);
}

static void test_rows_in_the_wire_format(void **state)
{
    (void)state;
    pg_rows r;
    pg_rows_init(&r, 2, two_cols);
    pg_rows_text(&r, 0, "ab");
    pg_rows_int(&r, 1, -2);
    assert_true(pg_rows_end_row(&r));
    pg_rows_text(&r, 0, NULL);
    pg_rows_int(&r, 1, 0x0102030405060708LL);
    assert_true(pg_rows_end_row(&r));
    assert_int_equal(r.count, 2);

    const char *v = NULL;
    int len = 0;
    assert_true(pg_rows_param(&r, 0, &v, &len));
    assert_int_equal(len, 20 + (4 + 2) + 4);
    assert_int_equal(get32(v), 1);      /* ndim */
    assert_int_equal(get32(v + 8), 25); /* text */
    assert_int_equal(get32(v + 12), 2); /* elements */
    assert_int_equal(get32(v + 16), 1); /* lower bound */
    assert_int_equal(get32(v + 20), 2);
    assert_memory_equal(v + 24, "ab", 2);
    assert_int_equal(get32(v + 26), UINT32_MAX); /* -1: NULL */

    assert_true(pg_rows_param(&r, 1, &v, &len));
    assert_int_equal(len, 20 + 2 * 12);
    assert_int_equal(get32(v + 8), 20);
    assert_int_equal(get32(v + 20), 8);
    assert_int_equal(get32(v + 24), UINT32_MAX); /* -2, high word */
    assert_int_equal(get32(v + 28), UINT32_MAX - 1);
    assert_int_equal(get32(v + 32), 8);
    assert_int_equal(get32(v + 36), 0x01020304);
    assert_int_equal(get32(v + 40), 0x05060708);
    pg_rows_free(&r);
}

static void test_int4_and_its_range(void **state)
{
    (void)state;
    static const pg_col_type one_int4[1] = {PG_COL_INT4};
    pg_rows r;
    pg_rows_init(&r, 1, one_int4);
    pg_rows_int(&r, 0, INT32_MIN);
    assert_true(pg_rows_end_row(&r));
    const char *v = NULL;
    int len = 0;
    assert_true(pg_rows_param(&r, 0, &v, &len));
    assert_int_equal(len, 20 + 8);
    assert_int_equal(get32(v + 8), 23); /* int4 */
    assert_int_equal(get32(v + 20), 4);
    assert_int_equal(get32(v + 24), 0x80000000u);
    pg_rows_int(&r, 0, (int64_t)INT32_MAX + 1);
    assert_false(pg_rows_end_row(&r));
    assert_false(pg_rows_param(&r, 0, &v, &len));
    pg_rows_clear(&r); /* usable again */
    pg_rows_int(&r, 0, INT32_MAX);
    assert_true(pg_rows_end_row(&r));
    pg_rows_free(&r);
}

static void test_misuse_fails_the_rows(void **state)
{
    (void)state;
    pg_rows r;
    const char *v = NULL;
    int len = 0;
    pg_rows_init(&r, 2, two_cols);
    pg_rows_int(&r, 0, 1); /* an int in the text column */
    assert_false(pg_rows_end_row(&r));
    assert_false(pg_rows_param(&r, 0, &v, &len));

    pg_rows_clear(&r);
    pg_rows_int(&r, 1, 1); /* column 1 before column 0 */
    assert_false(pg_rows_end_row(&r));

    pg_rows_clear(&r);
    pg_rows_text(&r, 0, "only half a row");
    assert_false(pg_rows_param(&r, 0, &v, &len)); /* a row being built */
    assert_false(pg_rows_end_row(&r));
    pg_rows_free(&r);

    pg_rows_init(&r, PG_ROWS_COLS_MAX + 1, NULL);
    assert_true(r.failed);
    pg_rows_clear(&r);
    assert_false(pg_rows_end_row(&r));
    assert_false(pg_rows_param(&r, 0, &v, &len));
    pg_rows_free(&r);
}

static void test_truncate_to_a_mark(void **state)
{
    (void)state;
    pg_rows r;
    pg_rows_init(&r, 2, two_cols);
    pg_rows_text(&r, 0, "kept");
    pg_rows_int(&r, 1, 1);
    assert_true(pg_rows_end_row(&r));
    pg_rows_mark m;
    pg_rows_mark_get(&r, &m);
    for (int i = 0; i < 1000; i++) { /* past the first allocation */
        pg_rows_text(&r, 0, "dropped on rollback");
        pg_rows_int(&r, 1, i);
        assert_true(pg_rows_end_row(&r));
    }
    pg_rows_truncate(&r, &m);
    assert_int_equal(r.count, 1);
    const char *v = NULL;
    int len = 0;
    assert_true(pg_rows_param(&r, 0, &v, &len));
    assert_int_equal(len, 20 + 4 + 4);
    assert_int_equal(get32(v + 12), 1);
    assert_memory_equal(v + 24, "kept", 4);
    pg_rows_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_array_is_ndim_0),
        cmocka_unit_test(test_rows_in_the_wire_format),
        cmocka_unit_test(test_int4_and_its_range),
        cmocka_unit_test(test_misuse_fails_the_rows),
        cmocka_unit_test(test_truncate_to_a_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

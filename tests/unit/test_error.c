/*
 * test_error.c — the error codes of machine-readable output (common/error.h): every duka_rc
 * has a distinct, lower-case code, and the published ones keep their names (README, "Errors
 * with --json").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/error.h"

static void test_codes_are_distinct_and_lower_case(void **state)
{
    (void)state;
    for (int i = 0; i < DUKA_RC_COUNT; i++) {
        const char *code = duka_rc_code((duka_rc)i);
        assert_non_null(code);
        assert_true(code[0] != '\0');
        for (const char *p = code; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        for (int k = 0; k < i; k++)
            assert_string_not_equal(code, duka_rc_code((duka_rc)k));
    }
    assert_string_equal(duka_rc_code(DUKA_RC_COUNT), "internal");
    assert_string_equal(duka_rc_code((duka_rc)-1), "internal");
}

static void test_published_codes(void **state)
{
    (void)state;
    const struct {
        duka_rc rc;
        const char *code;
    } published[] = {
        {DUKA_USAGE, "usage"},       {DUKA_INPUT, "invalid_input"}, {DUKA_NOTFOUND, "not_found"},
        {DUKA_STORE, "store"},       {DUKA_NOMEM, "nomem"},         {DUKA_OFFLINE, "offline"},
        {DUKA_AUTH, "auth"},         {DUKA_PROTOCOL, "protocol"},   {DUKA_LIMIT, "limit"},
        {DUKA_CONFLICT, "conflict"}, {DUKA_BUSY, "busy"},           {DUKA_INTERNAL, "internal"},
    };
    for (size_t i = 0; i < sizeof(published) / sizeof(published[0]); i++)
        assert_string_equal(duka_rc_code(published[i].rc), published[i].code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_are_distinct_and_lower_case),
        cmocka_unit_test(test_published_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_json_limits.c — the JSON depth limit (common/json_limits.h): what counts as a level,
 * the edge (exactly the limit passes, one more is refused), where the error says the walk
 * stopped, deep values anywhere in wide ones, input far deeper than the limit, and that the
 * limit fits the bodies duka really sends (a push body is DUKA_PUSH_JSON_DEPTH deep).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_limits.h"
#include "common/limits.h"
#include "protocol/sale.h"
#include "test_util.h"

/* Parses JSON text (any value); fails the test when it is not JSON. */
static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("not JSON: %s (%s)", text, jerr.text);
    return v;
}

/* depth levels of containers, alternating arrays and objects from the outside: [{"k":[…]}] */
static json_t *nested(int depth)
{
    json_t *v = NULL;
    for (int level = depth; level >= 1; level--) {
        json_t *c = level % 2 ? json_array() : json_object();
        if (v != NULL) {
            if (json_is_array(c))
                json_array_append_new(c, v);
            else
                json_object_set_new(c, "k", v);
        }
        v = c;
    }
    return v;
}

static duka_rc check(const json_t *v, int depth_max, duka_err *err)
{
    duka_err_clear(err);
    return duka_json_depth_check(v, depth_max, "body", err);
}

static void test_what_counts_as_a_level(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int depth;
    } cases[] = {
        {"1", 0},          {"\"[[[[\"", 0},       {"null", 0},
        {"[]", 1},         {"{}", 1},             {"[1,\"a\",true,null]", 1},
        {"[[]]", 2},       {"{\"a\":{}}", 2},     {"{\"a\":[1,2,{}]}", 3},
        {"[[],[[]],[]]", 3}, {"{\"x\":\"{[{[\"}", 1}, {"[{\"a\":[{\"b\":[]}]}]", 5},
    };
    duka_err err;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = parse(cases[i].text);
        if (check(v, cases[i].depth, &err) != DUKA_OK)
            fail_msg("%s refused at depth_max %d: %s", cases[i].text, cases[i].depth, err.msg);
        if (cases[i].depth > 0 && check(v, cases[i].depth - 1, &err) != DUKA_INPUT)
            fail_msg("%s accepted at depth_max %d", cases[i].text, cases[i].depth - 1);
        json_decref(v);
    }
    assert_int_equal(check(NULL, 0, &err), DUKA_OK);
}

_Static_assert(DUKA_JSON_DEPTH_MAX == 8, "the messages below are written for a limit of 8");

static void test_edge_of_the_limit(void **state)
{
    (void)state;
    duka_err err;
    json_t *at = nested(DUKA_JSON_DEPTH_MAX);
    json_t *over = nested(DUKA_JSON_DEPTH_MAX + 1);
    assert_ok(check(at, DUKA_JSON_DEPTH_MAX, &err), &err);
    assert_int_equal(check(over, DUKA_JSON_DEPTH_MAX, &err), DUKA_INPUT);
    assert_contains(err.msg, "nested deeper than the JSON depth limit of 8 levels");
    /* The ninth level is the object inside eight: body[0].k[0].k[0].k[0].k */
    assert_contains(err.msg, "body[0].k[0].k[0].k[0].k: ");
    json_decref(at);
    json_decref(over);
    /* 0 allows scalars only. */
    json_t *empty = json_array();
    assert_int_equal(check(empty, 0, &err), DUKA_INPUT);
    assert_contains(err.msg, "body: nested deeper than the JSON depth limit of 0 levels");
    json_decref(empty);
}

static void test_deep_member_anywhere_is_found(void **state)
{
    (void)state;
    duka_err err;
    /* In the last member of an object, after shallow ones. */
    json_t *v = parse("{\"a\":1,\"b\":[],\"c\":{\"d\":{\"e\":{}}}}");
    assert_ok(check(v, 4, &err), &err);
    assert_int_equal(check(v, 3, &err), DUKA_INPUT);
    assert_contains(err.msg, "body.c.d.e: ");
    json_decref(v);
    /* The last of 10,000 elements. */
    v = json_array();
    for (int i = 0; i < 10000; i++)
        json_array_append_new(v, json_pack("{s:i}", "n", i));
    assert_ok(check(v, 2, &err), &err);
    json_array_append_new(v, nested(2));
    assert_int_equal(check(v, 2, &err), DUKA_INPUT);
    assert_contains(err.msg, "body[10000][0]: ");
    json_decref(v);
}

static void test_far_deeper_than_the_limit(void **state)
{
    (void)state;
    duka_err err;
    /* 5,000 levels built in memory (jansson's parser stops at 2048): refused at once, the
     * walk going no deeper than the limit. */
    json_t *v = nested(5000);
    assert_int_equal(check(v, DUKA_JSON_DEPTH_MAX, &err), DUKA_INPUT);
    assert_contains(err.msg, "limit of 8 levels");
    assert_ok(check(nested(0), DUKA_JSON_DEPTH_CHECK_MAX, &err), &err);
    json_t *at_max = nested(DUKA_JSON_DEPTH_CHECK_MAX);
    assert_ok(check(at_max, DUKA_JSON_DEPTH_CHECK_MAX, &err), &err);
    json_decref(at_max);
    assert_int_equal(check(v, DUKA_JSON_DEPTH_CHECK_MAX, &err), DUKA_INPUT);
    json_decref(v);
    /* What jansson parses at its own limit is refused by ours. */
    char *text = malloc(2 * 2000 + 1);
    assert_non_null(text);
    memset(text, '[', 2000);
    memset(text + 2000, ']', 2000);
    text[4000] = '\0';
    v = parse(text);
    free(text);
    assert_int_equal(check(v, DUKA_JSON_DEPTH_MAX, &err), DUKA_INPUT);
    json_decref(v);
}

static void test_message_stays_bounded(void **state)
{
    (void)state;
    duka_err err;
    /* A 10,000-character key is shown cut. */
    char *key = malloc(10001);
    assert_non_null(key);
    memset(key, 'k', 10000);
    key[10000] = '\0';
    json_t *v = json_object();
    json_object_set_new(v, key, nested(3));
    free(key);
    assert_int_equal(check(v, 2, &err), DUKA_INPUT);
    assert_contains(err.msg, "body.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk[0]: nested deeper");
    assert_true(strstr(err.msg, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk") == NULL); /* 33 */
    json_decref(v);
    /* A path longer than is shown ends in "..." and the sentence still names the limit. */
    json_t *root = json_object();
    json_t *inner = root;
    for (int i = 0; i < DUKA_JSON_DEPTH_CHECK_MAX; i++) {
        json_t *o = json_object();
        json_object_set_new(inner, "a_rather_long_key_name_of_32_chr", o);
        inner = o;
    }
    assert_int_equal(check(root, DUKA_JSON_DEPTH_CHECK_MAX, &err), DUKA_INPUT);
    assert_contains(err.msg, "...: nested deeper than the JSON depth limit of 64 levels");
    assert_true(strlen(err.msg) < DUKA_ERR_MSG_MAX - 1);
    json_decref(root);
}

/* The limit is not tighter than what duka sends: a push body of a real sale is exactly
 * DUKA_PUSH_JSON_DEPTH deep, and that fits DUKA_JSON_DEPTH_MAX. */
static void test_push_body_fits(void **state)
{
    (void)state;
    duka_sale *s = duka_sale_new();
    assert_non_null(s);
    const line_spec lines[] = {{"SUGAR1KG", 2000, 23050, 'B'}, {"MILK500", 1000, 6500, 'A'}};
    sale_build(s, "T01", "T01-20261121-00001", T_2026_11_21_NOON_MS, lines, 2, "cash", NULL);
    json_t *body = json_pack("{s:[{s:s, s:s, s:s, s:o}]}", "commands", "id",
                             "01a20071-8595-7bab-b6c3-056cd3ebd093", "type", "sale.create",
                             "entity_id", s->receipt_no, "payload", duka_sale_to_json(s));
    duka_sale_free(s);
    assert_non_null(body);
    duka_err err;
    assert_ok(check(body, DUKA_PUSH_JSON_DEPTH, &err), &err);
    assert_int_equal(check(body, DUKA_PUSH_JSON_DEPTH - 1, &err), DUKA_INPUT);
    assert_contains(err.msg, "body.commands[0].payload.lines[0]: ");
    assert_ok(check(body, DUKA_JSON_DEPTH_MAX, &err), &err);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_counts_as_a_level),
        cmocka_unit_test(test_edge_of_the_limit),
        cmocka_unit_test(test_deep_member_anywhere_is_found),
        cmocka_unit_test(test_far_deeper_than_the_limit),
        cmocka_unit_test(test_message_stays_bounded),
        cmocka_unit_test(test_push_body_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

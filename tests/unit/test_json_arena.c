/*
 * test_json_arena.c — request-scoped memory for jansson values (common/json_arena.h): values
 * parsed in an arena come from its blocks and their frees are no-ops; values made after
 * _pause, on other threads, or past the arena's bound are malloc'ed and freed as ever; the
 * blocks go back at _end. The sanitizer and valgrind runs of make test check the other half:
 * nothing leaks and nothing is freed twice or by the wrong function.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_arena.h"

/* A document of n objects, each a few strings and numbers (a push body in small). */
static char *document(int n)
{
    size_t cap = (size_t)n * 96 + 32, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "{\"commands\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "%s{\"id\":\"c%06d\",\"sku\":\"SUGAR1KG\",\"qty\":%d,\"ok\":true}",
                                i ? "," : "", i, i);
    snprintf(text + len, cap - len, "]}");
    return text;
}

static void test_without_install_nothing_changes(void **state)
{
    (void)state;
    /* Runs first: the functions are not installed yet, so an arena cannot begin. */
    duka_json_arena a = {0};
    assert_false(duka_json_arena_begin(&a));
    json_t *v = json_pack("{s:s}", "a", "b");
    assert_non_null(v);
    json_decref(v);
    assert_null(a.blocks);
    duka_json_arena_end(&a);
}

static void test_parse_in_arena_pause_end(void **state)
{
    (void)state;
    duka_json_arena_install();
    char *text = document(2000);
    duka_json_arena a = {0};
    assert_true(duka_json_arena_begin(&a));
    json_t *body = json_loads(text, 0, NULL);
    duka_json_arena_pause(&a);
    assert_non_null(body);
    assert_true(a.total >= DUKA_JSON_ARENA_BLOCK_BYTES);
    assert_int_equal(a.fallbacks, 0);
    size_t held = a.total;
    /* After _pause: malloc again (a long-lived object, kept past _end), and reading and
     * freeing the arena's values is fine. */
    json_t *kept = json_object();
    const json_t *c = json_array_get(json_object_get(body, "commands"), 1999);
    json_object_set_new(kept, json_string_value(json_object_get(c, "id")), json_integer(7));
    assert_int_equal(a.total, held);
    json_decref(body);
    duka_json_arena_end(&a);
    assert_null(a.blocks);
    assert_int_equal(a.total, 0);
    assert_int_equal(json_integer_value(json_object_get(kept, "c001999")), 7);
    json_decref(kept);
    free(text);
    /* Arenas do not nest; after _end a new one begins. */
    duka_json_arena b = {0}, c2 = {0};
    assert_true(duka_json_arena_begin(&b));
    assert_false(duka_json_arena_begin(&c2));
    duka_json_arena_end(&c2); /* never begun: does nothing to b */
    json_t *v = json_pack("[i]", 1);
    assert_true(b.total > 0);
    json_decref(v);
    duka_json_arena_end(&b);
}

static void test_dump_in_arena(void **state)
{
    (void)state;
    duka_json_arena_install();
    json_t *reply = json_pack("{s:[{s:s},{s:s}]}", "results", "status", "applied", "status",
                              "duplicate");
    duka_json_arena a = {0};
    assert_true(duka_json_arena_begin(&a));
    char *out = json_dumps(reply, JSON_COMPACT);
    duka_json_arena_pause(&a);
    assert_string_equal(out, "{\"results\":[{\"status\":\"applied\"},{\"status\":\"duplicate\"}]}");
    assert_true(a.total > 0);
    duka_json_free(out); /* the arena's: a no-op */
    duka_json_arena_end(&a);
    json_decref(reply);
    /* Outside an arena duka_json_free is free(). */
    char *text = json_dumps(json_true(), JSON_ENCODE_ANY);
    assert_string_equal(text, "true");
    duka_json_free(text);
}

/* Past its bound an arena's allocations are malloc'ed, and freed as such. */
static void test_bound_falls_back_to_malloc(void **state)
{
    (void)state;
    duka_json_arena_install();
    char *text = document(20000);
    duka_json_arena a = {.limit = DUKA_JSON_ARENA_BLOCK_BYTES * 3};
    assert_true(duka_json_arena_begin(&a));
    json_t *body = json_loads(text, 0, NULL);
    duka_json_arena_pause(&a);
    assert_non_null(body);
    assert_true(a.total <= DUKA_JSON_ARENA_BLOCK_BYTES * 3);
    assert_true(a.fallbacks > 1000);
    assert_int_equal(json_array_size(json_object_get(body, "commands")), 20000);
    json_decref(body);
    duka_json_arena_end(&a);
    free(text);
}

static void *other_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        json_t *v = json_pack("{s:i, s:s}", "n", i, "s", "another thread");
        if (v == NULL)
            return (void *)1;
        json_decref(v);
    }
    return NULL;
}

/* One thread's arena is its own: another thread's values are malloc'ed and freed meanwhile. */
static void test_other_threads_unaffected(void **state)
{
    (void)state;
    duka_json_arena_install();
    duka_json_arena a = {0};
    assert_true(duka_json_arena_begin(&a));
    json_t *mine = json_pack("{s:s}", "mine", "yes");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
    void *result = (void *)1;
    assert_int_equal(pthread_join(th, &result), 0);
    assert_null(result);
    size_t held = a.total;
    assert_true(held > 0);
    json_decref(mine);
    duka_json_arena_end(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_install_nothing_changes),
        cmocka_unit_test(test_parse_in_arena_pause_end),
        cmocka_unit_test(test_dump_in_arena),
        cmocka_unit_test(test_bound_falls_back_to_malloc),
        cmocka_unit_test(test_other_threads_unaffected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

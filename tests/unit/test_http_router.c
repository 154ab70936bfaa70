/*
 * test_http_router.c — the route table both servers dispatch with (net/http_router.h): exact
 * paths, one '*' segment into ex->param, 404 for an unknown path, 405 with an Allow header
 * listing the methods of a known one, and the bounds (a parameter longer than ex->param, a
 * path longer than DUKA_HTTP_PATH_MAX) answered 404 rather than cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/limits.h"
#include "net/http_router.h"

static void fn_a(void *app, void *ctx, duka_http_exchange *ex)
{
    (void)app;
    (void)ctx;
    (void)ex;
}

static const duka_http_route routes[] = {
    {"GET", "/api/status", fn_a, 1},
    {"GET", "/api/sales/*", fn_a, 2},
    {"GET", "/api/sales/*/receipt.txt", fn_a, 3},
    {"POST", "/api/sales", fn_a, 4},
    {"PUT", "/api/sales", fn_a, 5},
};
#define N (sizeof(routes) / sizeof(routes[0]))

static const duka_http_route *find(const char *method, const char *path, duka_http_exchange *ex)
{
    memset(ex, 0, sizeof(*ex));
    ex->method = method;
    ex->path = path;
    ex->retry_after_s = -1;
    return duka_http_route_find(routes, N, ex);
}

static const char *reply_code(const duka_http_exchange *ex)
{
    return json_string_value(json_object_get(json_object_get(ex->reply, "error"), "code"));
}

static void test_exact_and_param(void **state)
{
    (void)state;
    duka_http_exchange ex;
    const duka_http_route *r = find("GET", "/api/status", &ex);
    assert_non_null(r);
    assert_int_equal(r->flags, 1);
    assert_string_equal(ex.param, "");
    r = find("GET", "/api/sales/T01-20261203-00001", &ex);
    assert_non_null(r);
    assert_int_equal(r->flags, 2);
    assert_string_equal(ex.param, "T01-20261203-00001");
    r = find("GET", "/api/sales/T01-20261203-00001/receipt.txt", &ex);
    assert_non_null(r);
    assert_int_equal(r->flags, 3);
    assert_string_equal(ex.param, "T01-20261203-00001");
    assert_null(ex.reply);
}

static void test_not_found(void **state)
{
    (void)state;
    duka_http_exchange ex;
    const char *paths[] = {"/api/statu", "/api/status/", "/api/sales/", "/api/sales//receipt.txt",
                           "/api/sales/a/b", "/", "", "/api/status?x"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_null(find("GET", paths[i], &ex));
        assert_int_equal(ex.status, 404);
        assert_string_equal(reply_code(&ex), "not_found");
        assert_string_equal(ex.param, "");
        json_decref(ex.reply);
    }
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    duka_http_exchange ex;
    assert_null(find("DELETE", "/api/sales", &ex));
    assert_int_equal(ex.status, 405);
    assert_string_equal(reply_code(&ex), "method_not_allowed");
    assert_int_equal(ex.header_count, 1);
    assert_string_equal(ex.headers[0].name, "Allow");
    assert_string_equal(ex.headers[0].value, "POST, PUT");
    json_decref(ex.reply);
    assert_null(find("POST", "/api/status", &ex));
    assert_int_equal(ex.status, 405);
    assert_string_equal(ex.headers[0].value, "GET");
    json_decref(ex.reply);
}

static void test_bounds(void **state)
{
    (void)state;
    duka_http_exchange ex;
    /* The longest parameter that fits, then one byte more. */
    char path[DUKA_HTTP_PATH_MAX + 64];
    size_t fits = sizeof(ex.param) - 1;
    strcpy(path, "/api/sales/");
    memset(path + 11, 'x', fits);
    path[11 + fits] = '\0';
    assert_non_null(find("GET", path, &ex));
    assert_int_equal(strlen(ex.param), fits);
    path[11 + fits] = 'x';
    path[12 + fits] = '\0';
    assert_null(find("GET", path, &ex));
    assert_int_equal(ex.status, 404);
    json_decref(ex.reply);
    /* A path longer than DUKA_HTTP_PATH_MAX is not matched at all. */
    memset(path, 'a', DUKA_HTTP_PATH_MAX + 1);
    path[0] = '/';
    path[DUKA_HTTP_PATH_MAX + 1] = '\0';
    assert_null(find("GET", path, &ex));
    assert_int_equal(ex.status, 404);
    json_decref(ex.reply);
}

static void test_reply_header_refuses_injection(void **state)
{
    (void)state;
    duka_http_exchange ex;
    memset(&ex, 0, sizeof(ex));
    assert_true(duka_http_reply_header(&ex, "Cache-Control", "no-cache"));
    assert_false(duka_http_reply_header(&ex, "Set-Cookie", "a=b\r\nX-Evil: 1"));
    assert_false(duka_http_reply_header(&ex, "X:Y", "1"));
    assert_int_equal(ex.header_count, 1);
    for (int i = 1; i < DUKA_HTTP_REPLY_HEADERS_MAX; i++)
        assert_true(duka_http_reply_header(&ex, "X-N", "1"));
    assert_false(duka_http_reply_header(&ex, "X-One-Too-Many", "1"));
    assert_int_equal(ex.header_count, DUKA_HTTP_REPLY_HEADERS_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_param),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_reply_header_refuses_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

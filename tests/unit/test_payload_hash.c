/*
 * test_payload_hash.c — the fingerprint the hub stores with each applied command id
 * (hub/payload_hash.h): pinned to its documented encoding by a vector computed outside duka,
 * blind to key order, spacing and escaping, and telling apart every change of value, type,
 * nesting or key; the earlier sorted-dump hash kept exactly as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/payload_hash.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("test JSON %s: %s", text, jerr.text);
    return v;
}

static void hash_of(const char *text, char out[DUKA_PAYLOAD_HASH_HEX_LEN + 1])
{
    json_t *v = parse(text);
    assert_int_equal(duka_payload_hash(v, out), 0);
    assert_int_equal(strlen(out), DUKA_PAYLOAD_HASH_HEX_LEN);
    json_decref(v);
}

static void assert_same(const char *a, const char *b)
{
    char ha[DUKA_PAYLOAD_HASH_HEX_LEN + 1], hb[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    hash_of(a, ha);
    hash_of(b, hb);
    if (strcmp(ha, hb) != 0)
        fail_msg("%s and %s hash differently", a, b);
}

static void assert_differ(const char *a, const char *b)
{
    char ha[DUKA_PAYLOAD_HASH_HEX_LEN + 1], hb[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    hash_of(a, ha);
    hash_of(b, hb);
    if (strcmp(ha, hb) == 0)
        fail_msg("%s and %s hash the same", a, b);
}

/* The encoding of payload_hash.h, computed by an independent implementation (Python's
 * hashlib.blake2b over the bytes the header describes). A change here changes the hash of
 * every command id already stored: resends of them would be refused as reused. */
static void test_vector(void **state)
{
    (void)state;
    char h[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    hash_of("{\"receipt_no\":\"T01-20261121-00001\",\"terminal\":\"T01\","
            "\"created_ms\":1795255200001,\"total_cents\":55100,\"tax_cents\":6358,"
            "\"lines\":[{\"sku\":\"SUGAR1KG\",\"qty_milli\":2000,\"unit_price_cents\":23050,"
            "\"tax_band\":\"B\",\"line_total_cents\":46100,\"tax_cents\":6358,"
            "\"name\":\"Sugar 1 kg\"}],\"payments\":[{\"method\":\"cash\","
            "\"amount_cents\":55100,\"reference\":\"\",\"status\":\"captured\"}],"
            "\"note\":\"caf\\u00e9 \\\"x\\\"\",\"ok\":true,\"none\":null,\"rate\":0.5,"
            "\"neg\":-7}",
            h);
    assert_string_equal(h, "2eb0f53c009aa2d3bf414f077d0b5c68b6d958fe18b846640787db68b12bef14");
}

/* One value, however it is written. */
static void test_same_value_same_hash(void **state)
{
    (void)state;
    assert_same("{\"a\":1,\"b\":\"x\"}", "{ \"b\" : \"\\u0078\",\n \"a\" : 1 }");
    assert_same("{\"z\":{\"y\":[1,2],\"x\":null},\"a\":true}",
                "{\"a\":true,\"z\":{\"x\":null,\"y\":[1,2]}}");
    assert_same("{\"s\":\"\\/\"}", "{\"s\":\"/\"}");
    /* More keys than the stack holds: sorted on the heap, the same. */
    char fwd[2048], rev[2048];
    int n = 0, m = 0;
    n += snprintf(fwd + n, sizeof(fwd) - (size_t)n, "{");
    m += snprintf(rev + m, sizeof(rev) - (size_t)m, "{");
    for (int i = 0; i < 40; i++) {
        n += snprintf(fwd + n, sizeof(fwd) - (size_t)n, "%s\"k%02d\":%d", i ? "," : "", i, i);
        m += snprintf(rev + m, sizeof(rev) - (size_t)m, "%s\"k%02d\":%d", i ? "," : "", 39 - i,
                      39 - i);
    }
    snprintf(fwd + n, sizeof(fwd) - (size_t)n, "}");
    snprintf(rev + m, sizeof(rev) - (size_t)m, "}");
    assert_same(fwd, rev);
    fwd[strlen(fwd) - 2] = '8'; /* "k39":38 */
    assert_differ(fwd, rev);
}

/* Any change of value, type, order inside an array, nesting or key boundaries. */
static void test_every_change_changes_it(void **state)
{
    (void)state;
    assert_differ("{\"total_cents\":55100}", "{\"total_cents\":55101}");
    assert_differ("{\"a\":1}", "{\"a\":\"1\"}");
    assert_differ("{\"a\":1}", "{\"a\":1.0}");
    assert_differ("{\"a\":1}", "{\"a\":true}");
    assert_differ("{\"a\":true}", "{\"a\":false}");
    assert_differ("{\"a\":null}", "{\"a\":false}");
    assert_differ("{\"a\":null}", "{}");
    assert_differ("{\"a\":1}", "{\"a\":1,\"b\":1}");
    assert_differ("{\"a\":[1,2]}", "{\"a\":[2,1]}");
    assert_differ("{\"a\":[[1],2]}", "{\"a\":[[1,2]]}");
    assert_differ("{\"a\":{}}", "{\"a\":[]}");
    assert_differ("{\"a\":\"bc\"}", "{\"ab\":\"c\"}");
    assert_differ("{\"a\":[\"b\",\"c\"]}", "{\"a\":[\"bc\"]}");
    assert_differ("{\"a\":\"x\\u0000y\"}", "{\"a\":\"x\"}");
    assert_differ("{\"a\":-1}", "{\"a\":18446744073709551615e0}");
    assert_differ("{\"a\":0.0}", "{\"a\":-0.0}");
    assert_differ("{\"a\":\"caf\\u00e9\"}", "{\"a\":\"cafe\"}");
}

/* The earlier hash, for ids stored with it: BLAKE2b of the sorted compact dump. */
static void test_dump_hash_is_the_earlier_one(void **state)
{
    (void)state;
    json_t *v = parse("{\"b\":[1,\"two\"],\"a\":{\"d\":null,\"c\":true}}");
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(text);
    assert_string_equal(text, "{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"two\"]}");
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)text, strlen(text), NULL, 0);
    char want[DUKA_PAYLOAD_HASH_HEX_LEN + 1], got[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    sodium_bin2hex(want, sizeof(want), h, sizeof(h));
    duka_payload_hash_dump(v, got);
    assert_string_equal(got, want);
    char canonical[DUKA_PAYLOAD_HASH_HEX_LEN + 1];
    assert_int_equal(duka_payload_hash(v, canonical), 0);
    assert_string_not_equal(canonical, got);
    free(text);
    json_decref(v);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_same_value_same_hash),
        cmocka_unit_test(test_every_change_changes_it),
        cmocka_unit_test(test_dump_hash_is_the_earlier_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_csv_import.c — the catalog CSV parser (hub/product_import.h) over in-memory files:
 * what spreadsheets really write (quotes, BOM, CRLF, blank lines), and errors that name the
 * file, the line and the field, with nothing returned on error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "hub/product_import.h"
#include "test_util.h"

/* Parses text as if it were the file "products.csv". */
static duka_rc parse_text(const char *text, duka_product_list *out, duka_err *err)
{
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, text, n + 1);
    FILE *f = fmemopen(copy, n, "r");
    assert_non_null(f);
    duka_rc rc = duka_product_csv_parse(f, "products.csv", out, err);
    fclose(f);
    free(copy);
    return rc;
}

static void assert_product(const duka_hub_product *p, const char *sku, const char *name,
                           int64_t price_cents, char band, int64_t stock_milli,
                           const char *category)
{
    assert_string_equal(p->sku, sku);
    assert_string_equal(p->name, name);
    assert_int_equal(p->price_cents, price_cents);
    assert_int_equal(p->tax_band, band);
    assert_int_equal(p->stock_milli, stock_milli);
    assert_true(p->has_stock);
    assert_string_equal(p->category, category);
}

/* ---- good files ---- */

static void test_good_with_category(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    assert_ok(parse_text("sku,name,price,tax,stock,category\n"
                         "SUGAR1KG,Sugar 1 kg,230.50,B,40,Groceries\n"
                         "MILK500,Milk 500 ml,65,A,100,Dairy\n"
                         "RICE,Rice (per kg),180.5,e,0,\n"
                         "BREAD, White bread 400 g ,55.00, C , 12 , Bakery \n",
                         &list, &err),
              &err);
    assert_int_equal(list.count, 4);
    assert_product(&list.items[0], "SUGAR1KG", "Sugar 1 kg", 23050, 'B', 40000, "Groceries");
    assert_product(&list.items[1], "MILK500", "Milk 500 ml", 6500, 'A', 100000, "Dairy");
    assert_product(&list.items[2], "RICE", "Rice (per kg)", 18050, 'E', 0, "");
    assert_product(&list.items[3], "BREAD", "White bread 400 g", 5500, 'C', 12000, "Bakery");
    duka_product_list_free(&list);
    assert_null(list.items);
    assert_int_equal(list.count, 0);
}

static void test_good_without_category(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    assert_ok(parse_text("SKU,Name,Price,Tax,Stock\n" /* header names are case-insensitive */
                         "SUGAR1KG,Sugar 1 kg,230.50,B,40\n"
                         "SOAP,Soap,120,D,7",              /* no newline at the end */
                         &list, &err),
              &err);
    assert_int_equal(list.count, 2);
    assert_product(&list.items[0], "SUGAR1KG", "Sugar 1 kg", 23050, 'B', 40000, "");
    assert_product(&list.items[1], "SOAP", "Soap", 12000, 'D', 7000, "");
    duka_product_list_free(&list);
}

static void test_header_only(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    assert_ok(parse_text("sku,name,price,tax,stock\n", &list, &err), &err);
    assert_int_equal(list.count, 0);
    duka_product_list_free(&list);
}

static void test_quoted_fields(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    assert_ok(parse_text("sku,name,price,tax,stock,category\n"
                         "SUGAR1KG,\"Sugar, 1 kg\",230.50,B,40,\"Groceries, dry\"\n"
                         "MUMIAS,\"Sugar \"\"Mumias\"\", 2 kg\",\"460.00\",B,5,\"\"\n"
                         "\"QUOTED\",\"a,b,c\" ,1,A,1,x\n",
                         &list, &err),
              &err);
    assert_int_equal(list.count, 3);
    assert_product(&list.items[0], "SUGAR1KG", "Sugar, 1 kg", 23050, 'B', 40000,
                   "Groceries, dry");
    assert_product(&list.items[1], "MUMIAS", "Sugar \"Mumias\", 2 kg", 46000, 'B', 5000, "");
    assert_product(&list.items[2], "QUOTED", "a,b,c", 100, 'A', 1000, "x");
    duka_product_list_free(&list);
}

static void test_bom_crlf_blank_lines(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    assert_ok(parse_text("\xEF\xBB\xBFsku,name,price,tax,stock,category\r\n"
                         "\r\n"
                         "SUGAR1KG,Sugar 1 kg,230.50,B,40,Groceries\r\n"
                         "   \r\n"
                         "\n"
                         "MILK500,\"Milk, 500 ml\",65.00,A,100,Dairy\r\n"
                         "\r\n"
                         "\r\n",
                         &list, &err),
              &err);
    assert_int_equal(list.count, 2);
    assert_product(&list.items[0], "SUGAR1KG", "Sugar 1 kg", 23050, 'B', 40000, "Groceries");
    assert_product(&list.items[1], "MILK500", "Milk, 500 ml", 6500, 'A', 100000, "Dairy");
    duka_product_list_free(&list);

    /* Blank lines still count: the error is on the file's real line 5. */
    duka_err_clear(&err);
    assert_int_equal(parse_text("\xEF\xBB\xBFsku,name,price,tax,stock\r\n"
                                "SUGAR1KG,Sugar,230.50,B,40\r\n"
                                "\r\n"
                                "\r\n"
                                "MILK500,Milk,abc,A,100\r\n",
                                &list, &err),
                     DUKA_INPUT);
    assert_contains(err.msg, "products.csv line 5, field price");
    assert_null(list.items);
    assert_int_equal(list.count, 0);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    (void)state;
    const struct {
        const char *name;
        const char *text;
        duka_rc rc;
        const char *says[3];
    } cases[] = {
        {"wrong field count", "sku,name,price,tax,stock\nA,a,1,A,1\nB,b,1,A\n", DUKA_INPUT,
         {"products.csv line 3", "expected 5 fields, found 4", NULL}},
        {"extra field", "sku,name,price,tax,stock\nA,a,1,A,1,extra\n", DUKA_INPUT,
         {"line 2", "expected 5 fields, found 6", NULL}},
        {"many fields", "sku,name,price,tax,stock\nA,a,1,A,1,2,3,4,5,6,7,8\n", DUKA_INPUT,
         {"line 2", "expected 5 fields", NULL}},
        {"duplicate SKU",
         "sku,name,price,tax,stock\nSUGAR,a,1,A,1\nMILK,b,1,A,1\nSUGAR,c,1,A,1\n", DUKA_INPUT,
         {"duplicate SKU 'SUGAR'", "line 4", "first on line 2"}},
        {"earliest duplicate reported",
         "sku,name,price,tax,stock\nA,a,1,A,1\nB,b,1,A,1\nB,b,1,A,1\nC,c,1,A,1\nA,a,1,A,1\n",
         DUKA_INPUT, {"duplicate SKU 'B'", "line 4", "first on line 3"}},
        {"price abc", "sku,name,price,tax,stock\nA,a,abc,A,1\n", DUKA_INPUT,
         {"price", "line 2", "'abc'"}},
        {"price 3 decimals", "sku,name,price,tax,stock\nA,a,1,A,1\nB,b,1.234,A,1\n", DUKA_INPUT,
         {"line 3, field price", "'1.234'", NULL}},
        {"price negative", "sku,name,price,tax,stock\nA,a,-5,A,1\n", DUKA_INPUT,
         {"line 2, field price", "'-5'", NULL}},
        {"price empty", "sku,name,price,tax,stock\nA,a,,A,1\n", DUKA_INPUT,
         {"line 2, field price", NULL, NULL}},
        {"tax F", "sku,name,price,tax,stock\nA,a,1,F,1\n", DUKA_INPUT,
         {"line 2, field tax", "'F'", NULL}},
        {"tax BB", "sku,name,price,tax,stock\nA,a,1,BB,1\n", DUKA_INPUT,
         {"line 2, field tax", "'BB'", NULL}},
        {"tax empty", "sku,name,price,tax,stock\nA,a,1,,1\n", DUKA_INPUT,
         {"line 2, field tax", NULL, NULL}},
        {"tax 16", "sku,name,price,tax,stock\nA,a,1,16,1\n", DUKA_INPUT,
         {"line 2, field tax", "'16'", NULL}},
        {"stock negative", "sku,name,price,tax,stock\nA,a,1,A,-5\n", DUKA_INPUT,
         {"line 2, field stock", "'-5'", NULL}},
        {"stock fraction", "sku,name,price,tax,stock\nA,a,1,A,1\nB,b,1,A,1.5\n", DUKA_INPUT,
         {"line 3, field stock", "'1.5'", NULL}},
        {"stock empty", "sku,name,price,tax,stock\nA,a,1,A,\n", DUKA_INPUT,
         {"line 2, field stock", NULL, NULL}},
        {"stock text", "sku,name,price,tax,stock\nA,a,1,A,ten\n", DUKA_INPUT,
         {"line 2, field stock", "'ten'", NULL}},
        {"stock too big", "sku,name,price,tax,stock\nA,a,1,A,1000001\n", DUKA_INPUT,
         {"line 2, field stock", "'1000001'", NULL}},
        /* Latin-1 "Caf\xe9" (a file not saved as UTF-8): its products would vanish from every
         * till's pull, so the line is named instead. */
        {"name not UTF-8", "sku,name,price,tax,stock\nA,a,1,A,1\nB,Caf\xe9 Touba,1,A,1\n",
         DUKA_INPUT, {"line 3, field name", "not UTF-8 at byte 4", NULL}},
        {"category not UTF-8", "sku,name,price,tax,stock,category\nA,a,1,A,1,D\xe9j\n",
         DUKA_INPUT, {"line 2, field category", "not UTF-8", NULL}},
        {"stock huge", "sku,name,price,tax,stock\nA,a,1,A,99999999999999999999999\n",
         DUKA_INPUT, {"line 2, field stock", NULL, NULL}},
        {"bad sku", "sku,name,price,tax,stock\nSU GAR,a,1,A,1\n", DUKA_INPUT,
         {"line 2, field sku", "'SU GAR'", NULL}},
        {"empty name", "sku,name,price,tax,stock\nA,  ,1,A,1\n", DUKA_INPUT,
         {"line 2, field name", NULL, NULL}},
        {"quoted empty name", "sku,name,price,tax,stock\nA,a,1,A,1\n\"Q\",\"\",1,A,1\n",
         DUKA_INPUT, {"line 3, field name", NULL, NULL}},
        {"unterminated quote", "sku,name,price,tax,stock\nA,\"Sugar, 1 kg,1,A,1\n", DUKA_INPUT,
         {"line 2", "unterminated", NULL}},
        {"text after quote", "sku,name,price,tax,stock\nA,\"Sugar\"x,1,A,1\n", DUKA_INPUT,
         {"line 2", NULL, NULL}},
        {"header too short", "sku,name,price,tax\nA,a,1,A\n", DUKA_INPUT,
         {"products.csv line 1", "header must be sku,name,price,tax,stock[,category]", NULL}},
        {"header wrong column", "sku,name,cost,tax,stock\nA,a,1,A,1\n", DUKA_INPUT,
         {"line 1", "column 3 is 'cost', expected 'price'", NULL}},
        {"header seven columns", "sku,name,price,tax,stock,category,x\n", DUKA_INPUT,
         {"line 1", "header", NULL}},
        {"no header", "SUGAR,Sugar,1,A,1\n", DUKA_INPUT, {"line 1", "column 1 is 'SUGAR'", NULL}},
        {"blank first line", "\nsku,name,price,tax,stock\n", DUKA_INPUT, {"line 1", NULL, NULL}},
        {"empty file", "", DUKA_INPUT, {"products.csv", "empty", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        duka_product_list list;
        duka_err err = {0};
        duka_rc rc = parse_text(cases[i].text, &list, &err);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, expected %d (%s)", cases[i].name, rc, cases[i].rc, err.msg);
        for (int k = 0; k < 3; k++)
            if (cases[i].says[k] && strstr(err.msg, cases[i].says[k]) == NULL)
                fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].name, err.msg,
                         cases[i].says[k]);
        /* Nothing is returned on error. */
        assert_null(list.items);
        assert_int_equal(list.count, 0);
    }
}

/* A row padded with spaces (trimmed away) to exactly `len` characters before its ending. */
static char *long_file(size_t len, const char *ending)
{
    const char *head = "sku,name,price,tax,stock\n";
    const char *start = "LONG,Sugar";
    const char *tail = ",1,A,1";
    size_t pad = len - strlen(start) - strlen(tail);
    size_t total = strlen(head) + len + strlen(ending) + 1;
    char *text = malloc(total);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, total, "%s%s", head, start);
    memset(text + used, ' ', pad);
    used += pad;
    snprintf(text + used, total - used, "%s%s", tail, ending);
    assert_int_equal(strlen(text), total - 1);
    return text;
}

static void test_line_length_limit(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    /* Exactly DUKA_CSV_LINE_MAX characters: fine. */
    char *text = long_file(DUKA_CSV_LINE_MAX, "\n");
    assert_ok(parse_text(text, &list, &err), &err);
    free(text);
    assert_int_equal(list.count, 1);
    assert_string_equal(list.items[0].name, "Sugar");
    duka_product_list_free(&list);

    /* And at the end of the file without a newline. */
    text = long_file(DUKA_CSV_LINE_MAX, "");
    assert_ok(parse_text(text, &list, &err), &err);
    free(text);
    assert_int_equal(list.count, 1);
    duka_product_list_free(&list);

    /* One more: refused, naming the line. */
    const char *endings[] = {"\n", "", "\r\n"};
    for (size_t i = 0; i < 3; i++) {
        duka_err_clear(&err);
        text = long_file(DUKA_CSV_LINE_MAX + 1, endings[i]);
        assert_int_equal(parse_text(text, &list, &err), DUKA_INPUT);
        free(text);
        assert_contains(err.msg, "products.csv line 2");
        assert_contains(err.msg, "longer than 4096 characters");
        assert_null(list.items);
    }

    /* Far longer: still one clean error. */
    duka_err_clear(&err);
    text = long_file(3 * DUKA_CSV_LINE_MAX, "\n");
    assert_int_equal(parse_text(text, &list, &err), DUKA_INPUT);
    free(text);
    assert_contains(err.msg, "line 2");
}

/*
 * CRLF files are supported, and the line limit is on the line's characters, not on its
 * ending: a CRLF row of exactly DUKA_CSV_LINE_MAX characters must be accepted like the same
 * row ending in LF (test_line_length_limit). product_import.c reads into a buffer of
 * DUKA_CSV_LINE_MAX + 2 bytes, which holds the '\r' but not the '\n', and then reports the
 * line as too long.
 */
static void test_line_at_limit_with_crlf(void **state)
{
    (void)state;
    duka_product_list list;
    duka_err err = {0};
    char *text = long_file(DUKA_CSV_LINE_MAX, "\r\n");
    duka_rc rc = parse_text(text, &list, &err);
    free(text);
    if (rc != DUKA_OK)
        fail_msg("a %d-character CRLF line was refused: %s", DUKA_CSV_LINE_MAX, err.msg);
    assert_int_equal(list.count, 1);
    duka_product_list_free(&list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_with_category),
        cmocka_unit_test(test_good_without_category),
        cmocka_unit_test(test_header_only),
        cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_bom_crlf_blank_lines),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_line_at_limit_with_crlf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

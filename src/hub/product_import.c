/* product_import.c — catalog CSV parsing and import (see product_import.h). */
#include "hub/product_import.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/money.h"
#include "common/text.h"
#include "protocol/sale.h"

#define CSV_FIELDS_MAX 8

/* Splits one line into fields in place (RFC 4180 quoting; no embedded newlines).
 * Returns the field count, or -1 on an unterminated quote. */
static int split_csv(char *line, char *fields[CSV_FIELDS_MAX + 1])
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n > CSV_FIELDS_MAX)
            return n;
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            char *r = p + 1;
            for (;;) {
                if (*r == '\0')
                    return -1;
                if (*r == '"') {
                    if (r[1] == '"') {
                        *out++ = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                *out++ = *r++;
            }
            while (*r == ' ' || *r == '\t')
                r++;
            if (*r != ',' && *r != '\0')
                return -1;
            char next = *r;
            *out = '\0';
            if (next == '\0')
                return n;
            p = r + 1;
        } else {
            char *comma = strchr(p, ',');
            if (comma == NULL)
                return n;
            *comma = '\0';
            p = comma + 1;
        }
    }
}

static int cmp_sku(const void *a, const void *b)
{
    const duka_hub_product *x = *(const duka_hub_product *const *)a;
    const duka_hub_product *y = *(const duka_hub_product *const *)b;
    return strcmp(x->sku, y->sku);
}

void duka_product_list_free(duka_product_list *list)
{
    if (list == NULL)
        return;
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static const char *const header_names[] = {"sku", "name", "price", "tax", "stock", "category"};

static duka_rc check_header(char **f, int n, const char *name, duka_err *err)
{
    if (n != 5 && n != 6)
        return duka_err_set(err, DUKA_INPUT,
                            "%s line 1: header must be sku,name,price,tax,stock[,category]", name);
    for (int i = 0; i < n; i++)
        if (strcasecmp(duka_trim(f[i]), header_names[i]) != 0)
            return duka_err_set(err, DUKA_INPUT,
                                "%s line 1: column %d is '%s', expected '%s' (header must be "
                                "sku,name,price,tax,stock[,category])",
                                name, i + 1, f[i], header_names[i]);
    return DUKA_OK;
}

/* The offset of the first byte of s that does not start a well-formed UTF-8 character (a
 * control character counts as bad too), or -1. */
static long utf8_error_at(const char *s)
{
    for (const char *q = s; *q;) {
        size_t n = duka_utf8_sequence(q);
        if (n == 0 || (unsigned char)*q < 0x20 || *q == 0x7f)
            return (long)(q - s);
        q += n;
    }
    return -1;
}

static duka_rc parse_row(char **f, int n, int cols, long line, const char *name,
                         duka_hub_product *p, duka_err *err)
{
    memset(p, 0, sizeof(*p));
    if (n != cols)
        return duka_err_set(err, DUKA_INPUT, "%s line %ld: expected %d fields, found %d", name,
                            line, cols, n);
    char *sku = duka_trim(f[0]), *pname = duka_trim(f[1]), *price = duka_trim(f[2]), *tax = duka_trim(f[3]),
         *stock = duka_trim(f[4]), *cat = cols == 6 ? duka_trim(f[5]) : "";
    if (!duka_sku_valid(sku))
        return duka_err_set(err, DUKA_INPUT,
                            "%s line %ld, field sku: '%s' is not a SKU (1-%d characters, no "
                            "spaces, commas, quotes or '*')",
                            name, line, sku, DUKA_SKU_MAX);
    if (pname[0] == '\0' || strlen(pname) > DUKA_PRODUCT_NAME_MAX)
        return duka_err_set(err, DUKA_INPUT, "%s line %ld, field name: must be 1-%d characters",
                            name, line, DUKA_PRODUCT_NAME_MAX);
    char where[DUKA_ERR_MSG_MAX];
    snprintf(where, sizeof(where), "%s line %ld, field price", name, line);
    if (duka_parse_price(price, &p->price_cents, where, err) != DUKA_OK)
        return DUKA_INPUT;
    if (strlen(tax) != 1 || !duka_tax_band_valid(toupper((unsigned char)tax[0])))
        return duka_err_set(err, DUKA_INPUT,
                            "%s line %ld, field tax: '%s' is not an eTIMS band A, B, C, D or E",
                            name, line, tax);
    char *end = NULL;
    errno = 0;
    long long st = strtoll(stock, &end, 10);
    if (stock[0] == '\0' || *end != '\0' || errno != 0 || st < 0 ||
        st > DUKA_QTY_MILLI_MAX / 1000)
        return duka_err_set(err, DUKA_INPUT,
                            "%s line %ld, field stock: '%s' is not a whole number 0..%lld", name,
                            line, stock, DUKA_QTY_MILLI_MAX / 1000);
    if (strlen(cat) > DUKA_CATEGORY_MAX)
        return duka_err_set(err, DUKA_INPUT, "%s line %ld, field category: longer than %d", name,
                            line, DUKA_CATEGORY_MAX);
    /* Names travel as JSON (pull replies, listings), which must be UTF-8: a file saved in
     * Latin-1 would otherwise lose its products from every till without a word. */
    const char *texts[] = {pname, cat}, *fields[] = {"name", "category"};
    for (int i = 0; i < 2; i++) {
        long at = utf8_error_at(texts[i]);
        if (at >= 0)
            return duka_err_set(err, DUKA_INPUT,
                                "%s line %ld, field %s: not UTF-8 at byte %ld (save the file as "
                                "UTF-8)",
                                name, line, fields[i], at + 1);
    }
    snprintf(p->sku, sizeof(p->sku), "%s", sku);
    snprintf(p->name, sizeof(p->name), "%s", pname);
    snprintf(p->category, sizeof(p->category), "%s", cat);
    p->tax_band = (char)toupper((unsigned char)tax[0]);
    p->stock_milli = st * 1000;
    p->has_stock = true;
    return DUKA_OK;
}

duka_rc duka_product_csv_parse(FILE *f, const char *name, duka_product_list *out, duka_err *err)
{
    char line[DUKA_CSV_LINE_MAX + 3]; /* the longest line, "\r\n" and the NUL */
    char *fields[CSV_FIELDS_MAX + 1];
    long lineno = 0;
    int cols = 0, cap = 0;
    long *lines = NULL;
    duka_hub_product **sorted = NULL;
    memset(out, 0, sizeof(*out));
    duka_rc rc = DUKA_OK;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        bool cut = len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (cut || len > DUKA_CSV_LINE_MAX) {
            rc = duka_err_set(err, DUKA_INPUT, "%s line %ld: longer than %d characters", name,
                              lineno, DUKA_CSV_LINE_MAX);
            goto out;
        }
        char *text = line;
        if (lineno == 1 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
            (unsigned char)text[2] == 0xBF)
            text += 3; /* spreadsheet programs write a UTF-8 byte order mark */
        if (duka_trim(text)[0] == '\0' && lineno > 1)
            continue; /* blank lines are fine */
        int n = split_csv(text, fields);
        if (n < 0) {
            rc = duka_err_set(err, DUKA_INPUT, "%s line %ld: unterminated quoted field", name,
                              lineno);
            goto out;
        }
        if (lineno == 1) {
            if ((rc = check_header(fields, n, name, err)) != DUKA_OK)
                goto out;
            cols = n;
            continue;
        }
        if (out->count == DUKA_CSV_ROWS_MAX) {
            rc = duka_err_set(err, DUKA_LIMIT, "%s: more than %d products", name,
                              DUKA_CSV_ROWS_MAX);
            goto out;
        }
        if (out->count == cap) {
            cap = cap ? cap * 2 : 256;
            duka_hub_product *ni = realloc(out->items, (size_t)cap * sizeof(*ni));
            long *nl = realloc(lines, (size_t)cap * sizeof(*nl));
            if (ni) out->items = ni;
            if (nl) lines = nl;
            if (ni == NULL || nl == NULL) {
                rc = duka_err_set(err, DUKA_NOMEM, "out of memory reading %s", name);
                goto out;
            }
        }
        if ((rc = parse_row(fields, n, cols, lineno, name, &out->items[out->count], err)) !=
            DUKA_OK)
            goto out;
        lines[out->count++] = lineno;
    }
    if (ferror(f)) {
        rc = duka_err_set(err, DUKA_INPUT, "%s: read error", name);
        goto out;
    }
    if (lineno == 0) {
        rc = duka_err_set(err, DUKA_INPUT, "%s is empty (expected a header line)", name);
        goto out;
    }
    /* Duplicate SKUs: sort pointers by SKU, compare neighbours, report the later line. */
    if (out->count > 1) {
        sorted = malloc((size_t)out->count * sizeof(*sorted));
        if (sorted == NULL) {
            rc = duka_err_set(err, DUKA_NOMEM, "out of memory reading %s", name);
            goto out;
        }
        for (int i = 0; i < out->count; i++)
            sorted[i] = &out->items[i];
        qsort(sorted, (size_t)out->count, sizeof(*sorted), cmp_sku);
        long worst_second = -1, worst_first = -1;
        const char *dup = NULL;
        for (int i = 1; i < out->count; i++) {
            if (strcmp(sorted[i - 1]->sku, sorted[i]->sku) != 0)
                continue;
            long a = lines[sorted[i - 1] - out->items], b = lines[sorted[i] - out->items];
            long first = a < b ? a : b, second = a < b ? b : a;
            if (worst_second < 0 || second < worst_second) {
                worst_second = second;
                worst_first = first;
                dup = sorted[i]->sku;
            }
        }
        if (dup != NULL) {
            rc = duka_err_set(err, DUKA_INPUT, "%s line %ld: duplicate SKU '%s' (first on line %ld)",
                              name, worst_second, dup, worst_first);
            goto out;
        }
    }
out:
    free(sorted);
    free(lines);
    if (rc != DUKA_OK)
        duka_product_list_free(out);
    return rc;
}

duka_rc duka_product_import_file(duka_hub_store *store, const char *business_id,
                                 const char *path, int *imported, duka_err *err)
{
    *imported = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return duka_err_set(err, DUKA_NOTFOUND, "cannot read '%s': %s", path, strerror(errno));
    duka_product_list list;
    duka_rc rc = duka_product_csv_parse(f, path, &list, err);
    fclose(f);
    if (rc != DUKA_OK)
        return rc;
    int64_t now = duka_clock_now_ms(NULL);
    if ((rc = duka_hub_store_begin(store, err)) != DUKA_OK)
        goto out;
    if ((rc = duka_hub_business_check(store, business_id, err)) != DUKA_OK)
        goto out;
    for (int i = 0; i < list.count; i++)
        if ((rc = duka_hub_product_upsert(store, business_id, &list.items[i], now, err)) != DUKA_OK)
            goto out;
    if ((rc = duka_hub_store_commit(store, err)) == DUKA_OK)
        *imported = list.count;
out:
    if (rc != DUKA_OK)
        duka_hub_store_rollback(store);
    duka_product_list_free(&list);
    return rc;
}

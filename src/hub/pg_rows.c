/* pg_rows.c — columns as PostgreSQL binary arrays (see pg_rows.h).
 *
 * The binary format of a one-dimensional array (PostgreSQL's array_send / array_recv), all
 * integers big-endian: int32 ndim (1; 0 for an empty array, with no dimension fields),
 * int32 flags (1 when it has NULLs; array_recv accepts 0 or 1), int32 element type OID,
 * then per dimension int32 size and int32 lower bound (1); then each element as int32 length
 * (-1 for NULL) and that many bytes: text as its bytes, int8 and int4 big-endian. */
#include "hub/pg_rows.h"

#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 20 /* ndim, flags, element OID, size, lower bound */
#define OID_TEXT 25
#define OID_INT8 20
#define OID_INT4 23

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void pg_rows_init(pg_rows *r, int ncols, const pg_col_type *types)
{
    memset(r, 0, sizeof(*r));
    if (ncols < 1 || ncols > PG_ROWS_COLS_MAX || types == NULL) {
        r->failed = true; /* every use fails */
        return;
    }
    r->ncols = ncols;
    for (int c = 0; c < r->ncols; c++) {
        r->col[c].type = types[c];
        r->col[c].len = HEADER_BYTES;
    }
}

void pg_rows_free(pg_rows *r)
{
    for (int c = 0; c < r->ncols; c++)
        free(r->col[c].data);
    memset(r, 0, sizeof(*r));
}

void pg_rows_clear(pg_rows *r)
{
    for (int c = 0; c < r->ncols; c++)
        r->col[c].len = HEADER_BYTES;
    r->count = 0;
    r->filled = 0;
    r->failed = r->ncols == 0; /* a failed init stays failed */
}

/* Room for n more bytes in column c; false (and the rows failed) when there is none. */
static bool reserve(pg_rows *r, int c, size_t n)
{
    pg_col *col = &r->col[c];
    if (col->len + n > PG_ROWS_COL_BYTES_MAX) {
        r->failed = true;
        return false;
    }
    if (col->len + n <= col->cap)
        return true;
    size_t cap = col->cap ? col->cap : 4096;
    while (cap < col->len + n)
        cap *= 2;
    unsigned char *p = realloc(col->data, cap);
    if (p == NULL) {
        r->failed = true;
        return false;
    }
    col->data = p;
    col->cap = cap;
    return true;
}

/* Checks that column c of type t is the next one of the row. */
static bool next_col(pg_rows *r, int c, pg_col_type t)
{
    if (r->failed || c != r->filled || c >= r->ncols || r->col[c].type != t) {
        r->failed = true;
        return false;
    }
    r->filled++;
    return true;
}

void pg_rows_null(pg_rows *r, int c)
{
    if (c >= r->ncols || !next_col(r, c, r->col[c].type) || !reserve(r, c, 4))
        return;
    put32(r->col[c].data + r->col[c].len, UINT32_MAX); /* -1: NULL */
    r->col[c].len += 4;
}

void pg_rows_text(pg_rows *r, int c, const char *s)
{
    if (s == NULL) {
        pg_rows_null(r, c);
        return;
    }
    if (!next_col(r, c, PG_COL_TEXT))
        return;
    size_t n = strlen(s);
    if (n > PG_ROWS_COL_BYTES_MAX || !reserve(r, c, 4 + n))
        return;
    pg_col *col = &r->col[c];
    put32(col->data + col->len, (uint32_t)n);
    memcpy(col->data + col->len + 4, s, n);
    col->len += 4 + n;
}

void pg_rows_int(pg_rows *r, int c, int64_t v)
{
    pg_col_type t = c < r->ncols && r->col[c].type == PG_COL_INT4 ? PG_COL_INT4 : PG_COL_INT8;
    if (!next_col(r, c, t))
        return;
    size_t n = t == PG_COL_INT4 ? 4 : 8;
    if (t == PG_COL_INT4 && (v < INT32_MIN || v > INT32_MAX)) {
        r->failed = true;
        return;
    }
    if (!reserve(r, c, 4 + n))
        return;
    pg_col *col = &r->col[c];
    unsigned char *p = col->data + col->len;
    put32(p, (uint32_t)n);
    if (n == 8) {
        put32(p + 4, (uint32_t)((uint64_t)v >> 32));
        put32(p + 8, (uint32_t)(uint64_t)v);
    } else {
        put32(p + 4, (uint32_t)(int32_t)v);
    }
    col->len += 4 + n;
}

bool pg_rows_end_row(pg_rows *r)
{
    if (r->failed || r->filled != r->ncols) {
        r->failed = true;
        return false;
    }
    r->filled = 0;
    r->count++;
    return true;
}

void pg_rows_mark_get(const pg_rows *r, pg_rows_mark *m)
{
    m->count = r->count;
    for (int c = 0; c < r->ncols; c++)
        m->len[c] = r->col[c].len;
}

void pg_rows_truncate(pg_rows *r, const pg_rows_mark *m)
{
    r->count = m->count;
    r->filled = 0;
    for (int c = 0; c < r->ncols; c++)
        r->col[c].len = m->len[c];
}

bool pg_rows_param(pg_rows *r, int c, const char **value, int *length)
{
    /* reserve(…, 0) allocates the header of a column that has no elements yet. */
    if (r->failed || r->filled != 0 || c < 0 || c >= r->ncols || !reserve(r, c, 0))
        return false;
    pg_col *col = &r->col[c];
    uint32_t oid = col->type == PG_COL_TEXT ? OID_TEXT
                   : col->type == PG_COL_INT8 ? OID_INT8
                                              : OID_INT4;
    unsigned char *h = col->data;
    if (r->count == 0) {
        /* An empty array: ndim 0 and no dimension fields, so the 12 bytes sit just before
         * where the elements would start. */
        put32(h + 8, 0);
        put32(h + 12, 0);
        put32(h + 16, oid);
        *value = (const char *)(h + 8);
        *length = 12;
        return true;
    }
    put32(h, 1);
    put32(h + 4, 1); /* "may have NULLs": array_recv reads each length anyway */
    put32(h + 8, oid);
    put32(h + 12, (uint32_t)r->count);
    put32(h + 16, 1);
    *value = (const char *)h;
    *length = (int)col->len;
    return true;
}

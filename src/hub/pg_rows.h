/*
 * pg_rows.h — rows buffered column by column, each column a PostgreSQL array in the binary
 * wire format (what array_recv reads), for a prepared statement that turns them back into
 * rows with unnest($1::text[], $2::int8[], …).
 *
 * This is how the PostgreSQL hub store hands a whole push to the server in one statement:
 * no JSON is built on the hub and none is parsed on the server, and no value needs quoting
 * (a binary text element is its bytes). Columns are text (NULL allowed), int8 or int4.
 * Savepoints are marks: pg_rows_truncate() drops the rows appended since pg_rows_mark().
 *
 *   pg_rows r;
 *   pg_rows_init(&r, 2, (const pg_col_type[]){PG_COL_TEXT, PG_COL_INT8});
 *   pg_rows_text(&r, 0, "a"); pg_rows_int(&r, 1, 42); pg_rows_end_row(&r);
 *   pg_rows_param(&r, 0, &value, &length);   // paramFormats[i] = 1
 *   pg_rows_free(&r);
 */
#ifndef DUKA_HUB_PG_ROWS_H
#define DUKA_HUB_PG_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_ROWS_COLS_MAX 16
/* One column's array may not outgrow what one bind parameter can carry (int32 length). */
#define PG_ROWS_COL_BYTES_MAX (256u * 1024u * 1024u)

typedef enum pg_col_type { PG_COL_TEXT, PG_COL_INT8, PG_COL_INT4 } pg_col_type;

typedef struct pg_col {
    pg_col_type type;
    unsigned char *data; /* a 20-byte header slot, then the elements */
    size_t len, cap;
} pg_col;

typedef struct pg_rows {
    int ncols;
    int count;     /* complete rows */
    int filled;    /* columns of the row being appended */
    bool failed;   /* out of memory or a column too large: the rows are unusable */
    pg_col col[PG_ROWS_COLS_MAX];
} pg_rows;

typedef struct pg_rows_mark {
    int count;
    size_t len[PG_ROWS_COLS_MAX];
} pg_rows_mark;

void pg_rows_init(pg_rows *r, int ncols, const pg_col_type *types);
void pg_rows_free(pg_rows *r);
void pg_rows_clear(pg_rows *r);

/* Appends one value to column c of the row being built; columns go in order 0, 1, …
 * A NULL text is SQL NULL. A value of the wrong type, out of order, or a failed allocation
 * marks the rows failed (checked by pg_rows_end_row and pg_rows_param). */
void pg_rows_text(pg_rows *r, int c, const char *s);
void pg_rows_int(pg_rows *r, int c, int64_t v);
void pg_rows_null(pg_rows *r, int c); /* SQL NULL, in a column of any type */
/* Completes the row; false when the rows failed (out of memory, or a row not filled). */
bool pg_rows_end_row(pg_rows *r);

void pg_rows_mark_get(const pg_rows *r, pg_rows_mark *m);
void pg_rows_truncate(pg_rows *r, const pg_rows_mark *m);

/* Column c as a binary array parameter: *value points into r (valid until the next change),
 * *length is its size. Returns false when the rows failed. */
bool pg_rows_param(pg_rows *r, int c, const char **value, int *length);

#endif

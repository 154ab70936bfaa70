/*
 * db.h — opening duka's SQLite databases and the small helpers every store uses.
 *
 * Both the till and the embedded hub are one SQLite file each, opened in WAL mode with
 * synchronous=FULL (a committed transaction survives power loss, not just a crash), foreign
 * keys on and a busy timeout so the CLI can work on a database a server process is using.
 * Each database carries an application_id saying what it is, and its schema version in
 * user_version; migrations run in order, each in its own transaction.
 */
#ifndef DUKA_DB_H
#define DUKA_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

typedef enum duka_db_kind {
    DUKA_DB_TILL,
    DUKA_DB_HUB,
} duka_db_kind;

typedef struct duka_migration {
    int version;     /* 1, 2, 3 … in order */
    const char *sql; /* run inside one transaction together with the user_version bump */
} duka_migration;

/* Opens path as a database of `kind`. With create false the file must exist and be a duka
 * database of that kind (clear errors otherwise: "not found", "not a duka database", "is a
 * hub database, not a till database"); the file is never created. With create true a
 * missing file is created. Migrations are applied in both cases. *out is NULL on error. */
duka_rc duka_db_open(const char *path, duka_db_kind kind, bool create,
                     const duka_migration *migrations, int migration_count, sqlite3 **out,
                     duka_err *err);

/* Closes db (NULL is fine), finalizing its cached statements. */
void duka_db_close(sqlite3 *db);

/* Copies the write-ahead log into the database file (a FULL checkpoint: it holds the writer
 * lock while it runs). duka connections never checkpoint on their own (see duka_db_open);
 * the till's sync worker calls this between syncs and the hub after each push. */
void duka_db_checkpoint(sqlite3 *db);

/* Runs SQL with no results. */
duka_rc duka_db_exec(sqlite3 *db, const char *sql, duka_err *err);

/* BEGIN IMMEDIATE (takes the write lock now, so a write transaction never fails halfway
 * for lack of it), COMMIT and ROLLBACK. Rollback is safe to call when no transaction is open. */
duka_rc duka_db_begin(sqlite3 *db, duka_err *err);
duka_rc duka_db_commit(sqlite3 *db, duka_err *err);
void duka_db_rollback(sqlite3 *db);

/* Prepares sql; on failure records the SQLite message. */
duka_rc duka_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, duka_err *err);

/* Records a storage error "what: <sqlite message>" and returns DUKA_STORE. */
duka_rc duka_db_fail(sqlite3 *db, const char *what, duka_err *err);

/* A cache of prepared statements for one connection, keyed by the SQL text's address (the
 * SQL is always a string literal). Hot paths (the hub's push) prepare each statement once
 * instead of once per row. Statements come back reset with bindings cleared; the caller
 * resets after use and never finalizes them. Not thread safe: one cache per connection. */
#define DUKA_STMT_CACHE_MAX 48
typedef struct duka_stmt_cache {
    int count;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } entries[DUKA_STMT_CACHE_MAX];
} duka_stmt_cache;

/* Returns the cached statement for sql, preparing it the first time. When the cache is full
 * the statement is still prepared and cached in place of none: it fails with DUKA_INTERNAL
 * (a programming error: raise DUKA_STMT_CACHE_MAX). */
duka_rc duka_stmt_cache_get(duka_stmt_cache *cache, sqlite3 *db, const char *sql,
                            sqlite3_stmt **out, duka_err *err);

/* Finalizes every cached statement (before closing the connection). */
void duka_stmt_cache_clear(duka_stmt_cache *cache);

/* The statement for sql on db from db's own cache (kept until duka_db_close), prepared the
 * first time. Hot paths use it — the sale transaction prepares nothing after its first sale on
 * a connection. Give it back with duka_db_stmt_done (resets a cached statement, finalizes an
 * uncached one); never finalize it yourself. sql must be a string literal. */
duka_rc duka_db_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out, duka_err *err);
void duka_db_stmt_done(sqlite3 *db, sqlite3_stmt *st);

/* Binds text or NULL when s is NULL. */
int duka_db_bind_text(sqlite3_stmt *st, int idx, const char *s);

/* Copies column text into buf (empty string for NULL). */
void duka_db_column_copy(sqlite3_stmt *st, int col, char *buf, unsigned long buflen);

/* Key/value table helpers on table `meta(key TEXT PRIMARY KEY, value TEXT)`. */
duka_rc duka_meta_get(sqlite3 *db, const char *key, char *buf, unsigned long buflen,
                      bool *found, duka_err *err);
duka_rc duka_meta_set(sqlite3 *db, const char *key, const char *value, duka_err *err);

#endif

/* db.c — opening, migrating and transaction helpers for SQLite (see db.h). */
#include "store/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/limits.h"

#define APP_ID_TILL 0x64756b54 /* "dukT" */
#define APP_ID_HUB 0x64756b48  /* "dukH" */

static int kind_app_id(duka_db_kind kind)
{
    return kind == DUKA_DB_TILL ? APP_ID_TILL : APP_ID_HUB;
}

static const char *kind_name(duka_db_kind kind)
{
    return kind == DUKA_DB_TILL ? "till" : "hub";
}

duka_rc duka_db_fail(sqlite3 *db, const char *what, duka_err *err)
{
    return duka_err_set(err, DUKA_STORE, "%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
}

duka_rc duka_db_exec(sqlite3 *db, const char *sql, duka_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        duka_err_set(err, DUKA_STORE, "database: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return DUKA_STORE;
    }
    return DUKA_OK;
}

/* Runs a cached one-step statement (BEGIN, COMMIT: parsed once per connection). */
static duka_rc run_cached(sqlite3 *db, const char *sql, const char *what, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db, sql, &st, err) != DUKA_OK)
        return DUKA_STORE;
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, what, err);
    return DUKA_OK;
}

duka_rc duka_db_begin(sqlite3 *db, duka_err *err)
{
    return run_cached(db, "BEGIN IMMEDIATE", "BEGIN IMMEDIATE", err);
}

duka_rc duka_db_commit(sqlite3 *db, duka_err *err)
{
    return run_cached(db, "COMMIT", "COMMIT", err);
}

void duka_db_rollback(sqlite3 *db)
{
    if (db != NULL && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

duka_rc duka_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, duka_err *err)
{
    *out = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK)
        return duka_db_fail(db, "preparing a query", err);
    return DUKA_OK;
}

int duka_db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

void duka_db_column_copy(sqlite3_stmt *st, int col, char *buf, unsigned long buflen)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, buflen, "%s", t ? (const char *)t : "");
}

static duka_rc pragma_int(sqlite3 *db, const char *sql, int *out, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return DUKA_OK;
    }
    duka_rc r = duka_db_fail(db, "reading the database header", err);
    sqlite3_finalize(st);
    return r;
}

static duka_rc migrate(sqlite3 *db, const char *path, duka_db_kind kind,
                       const duka_migration *migrations, int count, duka_err *err)
{
    int version = 0;
    if (pragma_int(db, "PRAGMA user_version", &version, err) != DUKA_OK)
        return DUKA_STORE;
    int latest = count > 0 ? migrations[count - 1].version : 0;
    if (version > latest)
        return duka_err_set(err, DUKA_STORE,
                            "%s database '%s' has schema version %d, newer than this duka "
                            "(%d); upgrade duka",
                            kind_name(kind), path, version, latest);
    for (int i = 0; i < count; i++) {
        if (migrations[i].version <= version)
            continue;
        char bump[96];
        snprintf(bump, sizeof(bump), "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                 kind_app_id(kind), migrations[i].version);
        if (duka_db_begin(db, err) != DUKA_OK)
            return DUKA_STORE;
        /* Another process may have migrated while we waited for the lock. */
        int now = 0;
        if (pragma_int(db, "PRAGMA user_version", &now, err) != DUKA_OK)
            goto fail;
        if (now >= migrations[i].version) {
            duka_db_rollback(db);
            continue;
        }
        if (duka_db_exec(db, migrations[i].sql, err) != DUKA_OK ||
            duka_db_exec(db, bump, err) != DUKA_OK || duka_db_commit(db, err) != DUKA_OK)
            goto fail;
    }
    return DUKA_OK;
fail:
    duka_db_rollback(db);
    return DUKA_STORE;
}

static bool is_blank(sqlite3 *db)
{
    int tables = -1;
    if (pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables, NULL) != DUKA_OK)
        return false;
    return tables == 0;
}

/* Why a database could not be read while opening: not a database at all, or the disk. */
static void open_failed(sqlite3 *db, const char *path, duka_err *err)
{
    if ((sqlite3_errcode(db) & 0xff) == SQLITE_NOTADB)
        duka_err_set(err, DUKA_STORE, "'%s' is not a duka database (%s)", path,
                     sqlite3_errmsg(db));
    else
        duka_err_set(err, DUKA_STORE, "cannot read database '%s': %s", path, sqlite3_errmsg(db));
}

/* Once per process, before SQLite initialises itself: no memory statistics (nothing reads
 * them, and keeping them takes a process-wide mutex on every allocation — 5 % of a hub's
 * push). Too late when something initialised SQLite first (tests/storage's crash VFS): then
 * the default stays, which is only slower. */
static void configure_sqlite(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

duka_rc duka_db_open(const char *path, duka_db_kind kind, bool create,
                     const duka_migration *migrations, int migration_count, sqlite3 **out,
                     duka_err *err)
{
    *out = NULL;
    sqlite3 *db = NULL;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (!exists && !create)
        return duka_err_set(err, DUKA_NOTFOUND, "%s database '%s' not found%s", kind_name(kind),
                            path,
                            kind == DUKA_DB_TILL ? " (create it with: duka till init)"
                                                 : " (create it with: duka hub init)");
    if (exists && !S_ISREG(sb.st_mode))
        return duka_err_set(err, DUKA_INPUT, "'%s' is not a regular file", path);

    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, configure_sqlite);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        duka_err_set(err, DUKA_STORE, "cannot open database '%s': %s", path,
                     db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, DUKA_DB_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 1);

    int app_id = 0;
    if (exists && sb.st_size == 0 && !create) {
        duka_err_set(err, DUKA_INPUT, "'%s' is not a duka database (empty file)", path);
        goto fail;
    }
    if (exists && sb.st_size > 0) {
        if (pragma_int(db, "PRAGMA application_id", &app_id, NULL) != DUKA_OK) {
            open_failed(db, path, err);
            goto fail;
        }
        /* A file created by an interrupted init has no id and no tables yet: finish it. */
        if (app_id == 0 && create && is_blank(db))
            app_id = kind_app_id(kind);
        if (app_id != kind_app_id(kind)) {
            if (app_id == kind_app_id(kind == DUKA_DB_TILL ? DUKA_DB_HUB : DUKA_DB_TILL))
                duka_err_set(err, DUKA_INPUT, "'%s' is a duka %s database, not a %s database",
                             path, kind == DUKA_DB_TILL ? "hub" : "till", kind_name(kind));
            else
                duka_err_set(err, DUKA_INPUT, "'%s' is not a duka database", path);
            goto fail;
        }
    }
    if (duka_db_exec(db, "PRAGMA journal_mode=WAL", NULL) != DUKA_OK) {
        open_failed(db, path, err);
        goto fail;
    }
    if (duka_db_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err) != DUKA_OK)
        goto fail;
    /* No connection checkpoints by itself. Automatic checkpoints are PASSIVE: they run
     * beside writers of other connections, which with SQLite before 3.51.3 (Debian 12 ships
     * 3.40) can hit the WAL-reset race and corrupt the database — our stress test did. Instead
     * one owner per database checkpoints in FULL mode, which holds the writer lock
     * (duka_db_checkpoint): the till's sync worker between syncs, the hub after each push;
     * and the last connection to close checkpoints alone. On the till this also keeps
     * checkpoints out of the cashier's sale commit. */
    if (duka_db_exec(db, "PRAGMA wal_autocheckpoint=0", err) != DUKA_OK)
        goto fail;
    if (migrate(db, path, kind, migrations, migration_count, err) != DUKA_OK)
        goto fail;
    /* The integrity of what we just opened: a torn or foreign file fails here, clearly. */
    *out = db;
    return DUKA_OK;
fail:
    sqlite3_close(db);
    return err && err->rc ? err->rc : DUKA_STORE;
}

/* Cached statements of open connections, keyed by connection (see duka_db_stmt). A
 * connection is used by one thread at a time, so only the slot table needs the lock. */
#define DB_CACHE_SLOTS 64
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    sqlite3 *db;
    duka_stmt_cache cache;
} cache_slots[DB_CACHE_SLOTS];

static duka_stmt_cache *cache_for(sqlite3 *db, bool create)
{
    duka_stmt_cache *found = NULL;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < DB_CACHE_SLOTS && found == NULL; i++)
        if (cache_slots[i].db == db)
            found = &cache_slots[i].cache;
    for (int i = 0; i < DB_CACHE_SLOTS && found == NULL && create; i++) {
        if (cache_slots[i].db == NULL) {
            cache_slots[i].db = db;
            cache_slots[i].cache.count = 0;
            found = &cache_slots[i].cache;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

duka_rc duka_db_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out, duka_err *err)
{
    duka_stmt_cache *cache = cache_for(db, true);
    if (cache == NULL || cache->count == DUKA_STMT_CACHE_MAX)
        return duka_db_prepare(db, sql, out, err); /* all slots taken: uncached, still correct */
    return duka_stmt_cache_get(cache, db, sql, out, err);
}

void duka_db_stmt_done(sqlite3 *db, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    duka_stmt_cache *cache = cache_for(db, false);
    for (int i = 0; cache != NULL && i < cache->count; i++) {
        if (cache->entries[i].stmt == st) {
            sqlite3_reset(st);
            return;
        }
    }
    sqlite3_finalize(st);
}

void duka_db_close(sqlite3 *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < DB_CACHE_SLOTS; i++) {
        if (cache_slots[i].db == db) {
            duka_stmt_cache_clear(&cache_slots[i].cache);
            cache_slots[i].db = NULL;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    sqlite3_close_v2(db);
}

duka_rc duka_meta_get(sqlite3 *db, const char *key, char *buf, unsigned long buflen,
                      bool *found, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db, "SELECT value FROM meta WHERE key = ?1", &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    if (found)
        *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        duka_db_column_copy(st, 0, buf, buflen);
    else if (buflen > 0)
        buf[0] = '\0';
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return duka_db_fail(db, "reading settings", err);
    return DUKA_OK;
}

duka_rc duka_meta_set(sqlite3 *db, const char *key, const char *value, duka_err *err)
{
    sqlite3_stmt *st = NULL;
    if (duka_db_stmt(db,
                        "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        &st, err) != DUKA_OK)
        return DUKA_STORE;
    duka_db_bind_text(st, 1, key);
    duka_db_bind_text(st, 2, value);
    int rc = sqlite3_step(st);
    duka_db_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return duka_db_fail(db, "writing settings", err);
    return DUKA_OK;
}

duka_rc duka_stmt_cache_get(duka_stmt_cache *cache, sqlite3 *db, const char *sql,
                            sqlite3_stmt **out, duka_err *err)
{
    *out = NULL;
    for (int i = 0; i < cache->count; i++) {
        if (cache->entries[i].sql == sql) {
            sqlite3_stmt *st = cache->entries[i].stmt;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            *out = st;
            return DUKA_OK;
        }
    }
    if (cache->count == DUKA_STMT_CACHE_MAX)
        return duka_err_set(err, DUKA_INTERNAL, "statement cache full (%d)", DUKA_STMT_CACHE_MAX);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return duka_db_fail(db, "preparing a query", err);
    cache->entries[cache->count].sql = sql;
    cache->entries[cache->count].stmt = st;
    cache->count++;
    *out = st;
    return DUKA_OK;
}

void duka_stmt_cache_clear(duka_stmt_cache *cache)
{
    for (int i = 0; i < cache->count; i++)
        sqlite3_finalize(cache->entries[i].stmt);
    cache->count = 0;
}

void duka_db_checkpoint(sqlite3 *db)
{
    /* FULL, not PASSIVE: it waits for (busy timeout) and then holds the writer lock while it
     * copies, so no commit can reset the WAL under it (the WAL-reset race of SQLite < 3.51.3).
     * A sale arriving meanwhile waits for it — milliseconds — rather than risking the file. */
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_FULL, NULL, NULL);
}

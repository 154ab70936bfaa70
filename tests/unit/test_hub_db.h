/*
 * test_hub_db.h — the hub store a unit test runs on: a SQLite file in a throwaway directory,
 * or, when DUKA_TEST_HUB_STORE=pg, a fresh schema in the PostgreSQL of DUKA_PG_ADMIN_URL /
 * DUKA_PG_URL (tests/pg/run_with_pg.sh starts one and exports them). The same tests then run
 * on both stores. Also a way to look at the tables behind the store's back (hub_peek), as the
 * owner with the test's business set (row-level security is forced on the owner too).
 *
 * Include after the cmocka headers and test_util.h. Header-only, `static inline`.
 */
#ifndef DUKA_TEST_HUB_DB_H
#define DUKA_TEST_HUB_DB_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub_store.h"

typedef struct hub_db {
    bool pg;
    test_dir dir;            /* always: CSV files and the SQLite database live here */
    char path[300];          /* SQLite: the database file */
    char schema[64];         /* PostgreSQL: this test's schema */
    char url[1024];          /* what the store opens: the path, or the hub role's URL */
    char admin_url[1024];    /* PostgreSQL: the owner's URL, same schema */
} hub_db;

static inline bool hub_db_pg_mode(void)
{
    const char *m = getenv("DUKA_TEST_HUB_STORE");
    return m != NULL && strcmp(m, "pg") == 0;
}

/* url with options=-csearch_path=schema appended (the store's unqualified names land there). */
static inline void hub_db_url_in_schema(const char *url, const char *schema, char *out,
                                        size_t outlen)
{
    snprintf(out, outlen, "%s%soptions=-csearch_path%%3D%s", url, strchr(url, '?') ? "&" : "?",
             schema);
}

/* Runs one SQL text (any number of statements) on a new connection to url; fails the test
 * on error. */
static inline void hub_db_pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connecting for '%s': %s\n", sql, PQerrorMessage(c));
        abort();
    }
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "'%s': %s\n", sql, PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

static inline const char *hub_db_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "DUKA_TEST_HUB_STORE=pg needs DUKA_PG_URL and DUKA_PG_ADMIN_URL "
                        "(eval \"$(scripts/pg.sh start DIR)\", or tests/pg/run_with_pg.sh)\n");
        abort();
    }
    return v;
}

/* A new, empty schema migrated by the owner (duka hub init's step), named name. */
static inline void hub_db_pg_schema_new(const char *name)
{
    const char *admin = hub_db_env("DUKA_PG_ADMIN_URL");
    char sql[200], url[1024];
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE;"
             " CREATE SCHEMA %s",
             name, name);
    hub_db_pg_exec(admin, sql);
    hub_db_url_in_schema(admin, name, url, sizeof(url));
    duka_hub_store *owner = NULL;
    duka_err err = {0};
    if (duka_hub_store_open(url, true, &owner, &err) != DUKA_OK) {
        fprintf(stderr, "migrating %s: %s\n", name, err.msg);
        abort();
    }
    duka_hub_store_close(owner);
}

static inline void hub_db_pg_schema_drop(const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE", name);
    hub_db_pg_exec(hub_db_env("DUKA_PG_ADMIN_URL"), sql);
}

/* On PostgreSQL the tests of one process share one schema, each with a fresh business (its
 * rows are all a test sees through the store and through hub_peek, row-level security sees
 * to that): the schema's DDL is what costs, not a business. Dropped at exit. */
static char hub_db_shared_schema[64];

static inline void hub_db_shared_drop(void)
{
    if (hub_db_shared_schema[0] != '\0')
        hub_db_pg_schema_drop(hub_db_shared_schema);
}

/* A hub for one test: a new file, or the process's schema (created on first use). */
static inline void hub_db_make(hub_db *h)
{
    memset(h, 0, sizeof(*h));
    h->pg = hub_db_pg_mode();
    test_dir_make(&h->dir);
    test_dir_file(&h->dir, "hub.db", h->path, sizeof(h->path));
    if (!h->pg) {
        snprintf(h->url, sizeof(h->url), "%s", h->path);
        return;
    }
    if (hub_db_shared_schema[0] == '\0') {
        snprintf(hub_db_shared_schema, sizeof(hub_db_shared_schema), "duka_t_%ld",
                 (long)getpid());
        hub_db_pg_schema_new(hub_db_shared_schema);
        atexit(hub_db_shared_drop);
    }
    snprintf(h->schema, sizeof(h->schema), "%s", hub_db_shared_schema);
    hub_db_url_in_schema(hub_db_env("DUKA_PG_URL"), h->schema, h->url, sizeof(h->url));
    hub_db_url_in_schema(hub_db_env("DUKA_PG_ADMIN_URL"), h->schema, h->admin_url,
                         sizeof(h->admin_url));
}

static inline void hub_db_remove(hub_db *h)
{
    test_dir_remove(&h->dir);
}

/* ---- looking at the tables ---- */

typedef struct hub_peek {
    sqlite3 *db;
    PGconn *pg;
} hub_peek;

/* A second connection to the hub's database: the file (read-write, for tests that change a
 * row by hand), or the owner's connection with business as duka.business_id for the session. */
static inline hub_peek *hub_peek_open(const hub_db *h, const char *business)
{
    hub_peek *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    if (!h->pg) {
        if (sqlite3_open_v2(h->path, &p->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
            abort();
        sqlite3_busy_timeout(p->db, 5000);
        return p;
    }
    p->pg = PQconnectdb(h->admin_url);
    if (PQstatus(p->pg) != CONNECTION_OK) {
        fprintf(stderr, "peek: %s\n", PQerrorMessage(p->pg));
        abort();
    }
    const char *v[1] = {business};
    PGresult *r = PQexecParams(p->pg, "SELECT set_config('duka.business_id', $1, false)", 1,
                               NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        abort();
    PQclear(r);
    return p;
}

/* PostgreSQL's parameters are $1, SQLite's here ?1: the tests write ?1. */
static inline void hub_peek_sql(const char *sql, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", sql);
    for (char *q = strstr(out, "?1"); q != NULL; q = strstr(q, "?1"))
        *q = '$';
}

static inline int64_t hub_peek_int_text(hub_peek *p, const char *sql, const char *arg)
{
    if (p->db != NULL)
        return arg ? sql_int_text(p->db, sql, arg) : sql_int(p->db, sql);
    char text[1024];
    hub_peek_sql(sql, text, sizeof(text));
    const char *v[1] = {arg};
    PGresult *r = PQexecParams(p->pg, text, arg ? 1 : 0, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(stderr, "peek '%s': %s (%d rows)\n", text, PQerrorMessage(p->pg),
                PQntuples(r));
        abort();
    }
    int64_t n = (int64_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static inline int64_t hub_peek_int(hub_peek *p, const char *sql)
{
    return hub_peek_int_text(p, sql, NULL);
}

static inline void hub_peek_exec(hub_peek *p, const char *sql)
{
    if (p->db != NULL) {
        sql_exec(p->db, sql);
        return;
    }
    PGresult *r = PQexec(p->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "peek '%s': %s\n", sql, PQerrorMessage(p->pg));
        abort();
    }
    PQclear(r);
}

static inline void hub_peek_close(hub_peek *p)
{
    if (p == NULL)
        return;
    sqlite3_close(p->db);
    PQfinish(p->pg);
    free(p);
}

#endif

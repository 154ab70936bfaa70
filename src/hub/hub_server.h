/*
 * hub_server.h — the hub's sync API over HTTP (see docs/PROTOCOL.md):
 *   GET  /v1/health              liveness, no auth
 *   GET  /v1/whoami              the device a token belongs to
 *   POST /v1/push                apply a batch of commands exactly once
 *   GET  /v1/pull?cursor=&limit= catalog changes since a cursor
 * An authenticated request carrying Duka-Till-Id is checked against the till database its
 * token is bound to (till_binding.h): another one gets 409 token_in_use.
 * Each request borrows one store connection for its whole duration: SQLite has one (requests
 * take turns: the single writer), PostgreSQL DUKA_HUB_PG_CONNECTIONS (4).
 */
#ifndef DUKA_HUB_SERVER_H
#define DUKA_HUB_SERVER_H

#include "common/clock.h"
#include "common/error.h"
#include "config/config.h"
#include "hub/hub_store.h"
#include "net/http_server.h"

/* The hub's request handling, apart from the socket: what the HTTP server calls for every
 * request, and what the deterministic simulator (tests/sim) calls in-process with an
 * exchange whose conn is NULL. The app does not own the store. */
typedef struct duka_hub_app duka_hub_app;
duka_rc duka_hub_app_new(duka_hub_store *store, duka_hub_app **out, duka_err *err);
/* Adds another store (another connection to the same database) for requests to borrow. */
duka_rc duka_hub_app_add_store(duka_hub_app *app, duka_hub_store *store, duka_err *err);
void duka_hub_app_free(duka_hub_app *app);
/* The clock the hub stamps what it writes with (the simulator's); NULL: the system clock. */
void duka_hub_app_set_clock(duka_hub_app *app, const duka_clock *clock);
void duka_hub_handle(duka_hub_app *app, duka_http_exchange *ex);

/* Serves the hub store at db on listen until SIGINT/SIGTERM; over HTTPS when cert_pem and
 * key_pem (PEM contents) are given. cfg gives the connection settings (HUB_CONNECTION_TIMEOUT,
 * HUB_CONNECTIONS_PER_IP); NULL: their defaults. reuse_port: share the port with other hubs
 * that ask too (`duka hub --reuse-port`; http_server.h). */
duka_rc duka_hub_serve(const char *db, const char *listen, const char *cert_pem,
                       const char *key_pem, const duka_config *cfg, bool reuse_port,
                       duka_err *err);

#endif

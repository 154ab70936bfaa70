/*
 * hub_server.h — the hub's sync API over HTTP (see docs/PROTOCOL.md):
 *   GET  /v1/health              liveness, no auth
 *   GET  /v1/whoami              the device a token belongs to
 *   POST /v1/push                apply a batch of commands exactly once
 *   GET  /v1/pull?cursor=&limit= catalog changes since a cursor
 * Each request runs under one store mutex (the embedded SQLite store is a single writer).
 */
#ifndef DUKA_HUB_SERVER_H
#define DUKA_HUB_SERVER_H

#include "common/error.h"

/* Serves the hub store at db on listen until SIGINT/SIGTERM; over HTTPS when cert_pem and
 * key_pem (PEM contents) are given. */
duka_rc duka_hub_serve(const char *db, const char *listen, const char *cert_pem,
                       const char *key_pem, duka_err *err);

#endif

/*
 * http_router.h — a route table for the servers of http_server.h.
 *
 * A route is a method, a path pattern and a handler. A pattern is matched segment by segment;
 * one segment may be '*', which matches one non-empty segment of the path (no '/') and is put
 * in ex->param (e.g. "/api/sales/ * /receipt.txt" written without spaces). A path that matches
 * no pattern is 404; one that matches a pattern but not its method is 405 with an Allow
 * header. Each route carries flags the application reads (the till's: who may call it).
 */
#ifndef DUKA_HTTP_ROUTER_H
#define DUKA_HTTP_ROUTER_H

#include <stddef.h>

#include "net/http_server.h"

typedef void (*duka_http_route_fn)(void *app, void *ctx, duka_http_exchange *ex);

typedef struct duka_http_route {
    const char *method;  /* "GET", "POST" */
    const char *pattern; /* "/api/status", "/api/sales/ *" */
    duka_http_route_fn fn;
    unsigned flags; /* the application's */
} duka_http_route;

/* The route for ex's method and path, with ex->param filled; NULL with a 404 or 405 reply set
 * on ex when there is none. A path longer than DUKA_HTTP_PATH_MAX or a parameter longer than
 * ex->param is 404 too. */
const duka_http_route *duka_http_route_find(const duka_http_route *routes, size_t count,
                                            duka_http_exchange *ex);

#endif

/*
 * http_client.h — the one way duka makes HTTP requests (libcurl), with its limits built in:
 * connect timeout, total timeout, a cap on the reply size, no signals (thread safe).
 * Call curl_global_init() once at program start (main does).
 */
#ifndef DUKA_HTTP_CLIENT_H
#define DUKA_HTTP_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

typedef struct duka_http_reply {
    long status;       /* HTTP status, 0 when no reply came */
    char *body;        /* NUL-terminated, owned; NULL when no reply */
    size_t len;
    long retry_after_s;/* Retry-After in seconds, -1 when absent */
    bool maybe_delivered; /* a transport error after the request may have reached the server */
} duka_http_reply;

/* Sends method url with an optional bearer token and JSON body. Transport failures return
 * DUKA_OFFLINE with a sentence naming the URL ("hub unreachable at http://…: Connection
 * refused"); any HTTP status is DUKA_OK (the caller judges it). */
duka_rc duka_http_request(const char *method, const char *url, const char *bearer_token,
                          const char *body, size_t body_len, long timeout_ms,
                          duka_http_reply *out, duka_err *err);

#define DUKA_HTTP_EXTRA_HEADERS_MAX 4

/* Per-request options of duka_http_send. */
typedef struct duka_http_options {
    long timeout_ms;            /* total; 0: DUKA_HTTP_TOTAL_TIMEOUT_MS */
    const char *ca_file;        /* PEM file of CAs to trust for https (self-signed hubs); NULL
                                 * or "": the system's. Certificates are always verified. */
    const atomic_bool *cancel;  /* when it becomes true the transfer is abandoned soon after
                                 * (DUKA_OFFLINE, maybe_delivered true); NULL: never */
    const char *headers[DUKA_HTTP_EXTRA_HEADERS_MAX]; /* more "Name: value" lines; NULL ends */
} duka_http_options;

/* As duka_http_request, with options. */
duka_rc duka_http_send(const char *method, const char *url, const char *bearer_token,
                       const char *body, size_t body_len, const duka_http_options *opt,
                       duka_http_reply *out, duka_err *err);

/* A way to send requests with duka_http_send's signature plus a context: a client that takes
 * one (the sync client, the eTIMS client) uses duka_http_send when it is NULL, and the
 * deterministic simulator (tests/sim) passes its simulated network. */
typedef duka_rc (*duka_http_transport)(void *ctx, const char *method, const char *url,
                                       const char *bearer_token, const char *body,
                                       size_t body_len, const duka_http_options *opt,
                                       duka_http_reply *out, duka_err *err);

/* Frees the body (NULL is fine). */
void duka_http_reply_free(duka_http_reply *reply);

/* True when url's host is this machine (127.x.x.x, localhost, [::1]). */
bool duka_http_url_is_loopback(const char *url);

/* True when url starts with http:// or https:// and fits DUKA_URL_MAX. */
bool duka_http_url_valid(const char *url);

#endif

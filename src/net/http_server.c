/* http_server.c — libmicrohttpd wrapper (see http_server.h). */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/limits.h"

struct duka_http_server {
    struct MHD_Daemon *daemon;
    duka_http_handler handler;
    void *app;
    size_t max_body;
};

typedef struct request_state {
    char *buf;
    size_t len, cap;
    int too_large;
} request_state;

void duka_block_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int duka_wait_for_stop_signal(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    return sig;
}

/* Looks key up in a NULL-terminated key, value … array (in-process requests). */
static const char *local_lookup(const char *const *pairs, const char *key, bool nocase)
{
    for (int i = 0; pairs != NULL && pairs[i] != NULL && pairs[i + 1] != NULL; i += 2)
        if (nocase ? strcasecmp(pairs[i], key) == 0 : strcmp(pairs[i], key) == 0)
            return pairs[i + 1];
    return NULL;
}

const char *duka_http_query(const duka_http_exchange *ex, const char *key)
{
    if (ex->conn == NULL)
        return local_lookup(ex->local_args, key, false);
    return MHD_lookup_connection_value(ex->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *duka_http_header(const duka_http_exchange *ex, const char *key)
{
    if (ex->conn == NULL)
        return local_lookup(ex->local_headers, key, true);
    return MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, key);
}

const char *duka_http_bearer(const duka_http_exchange *ex)
{
    const char *h = duka_http_header(ex, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return NULL;
    return h + 7;
}

void duka_http_error(duka_http_exchange *ex, unsigned status, const char *code,
                     const char *fmt, ...)
{
    char msg[DUKA_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(ex->reply);
    ex->status = status;
    ex->reply = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *obj,
                                 long retry_after_s)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (text == NULL) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode reply\"}}");
        if (text == NULL)
            return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (retry_after_s >= 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld", retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                  const char *message)
{
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    enum MHD_Result r = send_json(conn, status, o, -1);
    json_decref(o);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    duka_http_server *srv = cls;
    request_state *rs = *con_cls;
    if (rs == NULL) {
        rs = calloc(1, sizeof(*rs));
        if (rs == NULL)
            return MHD_NO;
        *con_cls = rs;
        /* Refuse an announced oversized body at once, before reading any of it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > srv->max_body) {
            rs->too_large = 1;
            char m[96];
            snprintf(m, sizeof(m), "request body larger than %zu bytes", srv->max_body);
            return send_error(conn, 413, "body_too_large", m);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rs->too_large || rs->len + n > srv->max_body) {
            rs->too_large = 1;
            return MHD_YES; /* keep draining; answer 413 when the upload ends */
        }
        if (rs->len + n + 1 > rs->cap) {
            size_t cap = rs->cap ? rs->cap : 16384;
            while (cap < rs->len + n + 1)
                cap *= 2;
            /* Never more than the largest body allowed (and its NUL): a body just under the
             * limit must not cost twice the limit in memory. */
            if (cap > srv->max_body + 1)
                cap = srv->max_body + 1;
            char *nb = realloc(rs->buf, cap);
            if (nb == NULL)
                return MHD_NO;
            rs->buf = nb;
            rs->cap = cap;
        }
        memcpy(rs->buf + rs->len, upload_data, n);
        rs->len += n;
        rs->buf[rs->len] = '\0';
        return MHD_YES;
    }
    if (rs->too_large) {
        char m[96];
        snprintf(m, sizeof(m), "request body larger than %zu bytes", srv->max_body);
        return send_error(conn, 413, "body_too_large", m);
    }
    duka_http_exchange ex = {
        .conn = conn,
        .method = method,
        .path = url,
        .body = rs->buf ? rs->buf : "",
        .body_len = rs->len,
        .status = 500,
        .reply = NULL,
        .retry_after_s = -1,
    };
    srv->handler(srv->app, &ex);
    if (ex.reply == NULL)
        duka_http_error(&ex, 500, "internal", "no reply");
    enum MHD_Result r = send_json(conn, ex.status, ex.reply, ex.retry_after_s);
    json_decref(ex.reply);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_state *rs = *con_cls;
    if (rs != NULL) {
        free(rs->buf);
        free(rs);
        *con_cls = NULL;
    }
}

static duka_rc parse_listen(const char *listen, struct sockaddr_in *sa, duka_err *err)
{
    char host[64];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
        return duka_err_set(err, DUKA_USAGE, "--listen '%s' is not HOST:PORT", listen ? listen : "");
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return duka_err_set(err, DUKA_USAGE, "--listen '%s': port must be 1-65535", listen);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return duka_err_set(err, DUKA_USAGE, "--listen '%s': '%s' is not an IPv4 address", listen,
                            host);
    return DUKA_OK;
}

duka_rc duka_http_server_start(const char *listen, size_t max_body_bytes,
                               duka_http_handler handler, void *app, duka_http_server **out,
                               duka_err *err)
{
    return duka_http_server_start_tls(listen, max_body_bytes, NULL, NULL, handler, app, out, err);
}

duka_rc duka_http_server_start_tls(const char *listen, size_t max_body_bytes,
                                   const char *cert_pem, const char *key_pem,
                                   duka_http_handler handler, void *app,
                                   duka_http_server **out, duka_err *err)
{
    duka_http_server_options opt = {.max_body_bytes = max_body_bytes, .cert_pem = cert_pem,
                                    .key_pem = key_pem};
    return duka_http_server_start_opts(listen, &opt, handler, app, out, err);
}

duka_rc duka_http_server_start_opts(const char *listen, const duka_http_server_options *opt,
                                    duka_http_handler handler, void *app,
                                    duka_http_server **out, duka_err *err)
{
    *out = NULL;
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa, err) != DUKA_OK)
        return DUKA_USAGE;
    duka_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the server");
    srv->handler = handler;
    srv->app = app;
    srv->max_body = opt->max_body_bytes;
    const char *cert_pem = opt->cert_pem, *key_pem = opt->key_pem;
    bool tls = cert_pem != NULL && key_pem != NULL;
    unsigned timeout_s =
        opt->connection_timeout_s ? opt->connection_timeout_s : DUKA_HUB_CONNECTION_TIMEOUT_S;
    unsigned per_ip = opt->connections_per_ip_max; /* libmicrohttpd's 0 is "no limit" too */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    /* The same options either way; TLS adds the flag and the PEM key and certificate. */
#define DUKA_MHD_COMMON_OPTIONS                                                              \
    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,               \
        (unsigned)DUKA_HUB_THREADS, MHD_OPTION_CONNECTION_LIMIT,                             \
        (unsigned)DUKA_HUB_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,        \
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_NOTIFY_COMPLETED, on_completed, \
        srv, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1
    if (tls)
        srv->daemon = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, on_request, srv,
                                       DUKA_MHD_COMMON_OPTIONS, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
                                       MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_END);
    else
        srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                                       DUKA_MHD_COMMON_OPTIONS, MHD_OPTION_END);
#undef DUKA_MHD_COMMON_OPTIONS
    if (srv->daemon == NULL) {
        free(srv);
        return duka_err_set(err, DUKA_INPUT, "cannot listen on %s (address in use or not allowed%s)",
                            listen, tls ? ", or the TLS certificate and key do not match" : "");
    }
    *out = srv;
    return DUKA_OK;
}

void duka_http_server_stop(duka_http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    free(srv);
}

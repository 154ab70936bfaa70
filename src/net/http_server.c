/*
 * http_server.c — libmicrohttpd wrapper (see http_server.h).
 *
 * Workload: the hub's pushes, pulls and probes (each on a new connection: tills close theirs
 * after every answer), and the till's local API. Handlers block: on the store's lock, an
 * fsync, a PostgreSQL round trip. So every connection gets its own thread
 * (MHD_USE_THREAD_PER_CONNECTION), the mode libmicrohttpd's manual prescribes for blocking
 * handlers ("Flow control"). In a thread pool, a worker blocked in one handler cannot see
 * that the clients of its other connections have closed them; those connections kept
 * counting against their address, and under a fan-in of 32 clients from one address the
 * per-address limit of 64 refused about 1 % of new connections, unanswered and unlogged.
 *
 * The per-address limit is counted here (the accept policy callback, and the connection
 * notifications that count what each address holds) rather than by libmicrohttpd, so a
 * refusal can be logged with the address. Refusals and the library's own messages (its
 * connection limit, accept errors) are logged at most once a second per kind, with a count.
 */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json_arena.h"
#include "common/limits.h"
#include "common/log.h"

/* Repeated log events of one kind: the first is logged at once, the next ones at most once a
 * second as a count (so a flood of refusals cannot flood the log). */
#define LOG_REPEAT_INTERVAL_MS 1000
#define LOG_KINDS_MAX 8   /* the per-address refusal + distinct library messages */
#define LOG_TEXT_MAX 200

/* A client address as a comparable key: the family, then its 4 or 16 bytes. */
#define ADDRESS_KEY_BYTES 17

typedef struct log_kind {
    const void *id;           /* the library's format string, or &per_address_kind */
    unsigned long unreported; /* events since the last line */
    int64_t last_line_ms;     /* monotonic time of that line; 0: none yet */
    char latest[LOG_TEXT_MAX];
} log_kind;

/* One address and the connections it holds; count 0 marks a free slot. */
typedef struct address_count {
    unsigned char key[ADDRESS_KEY_BYTES];
    unsigned count;
} address_count;

struct duka_http_server {
    struct MHD_Daemon *daemon;
    duka_http_handler handler;
    void *app;
    size_t max_body;
    unsigned per_address_max; /* 0: no limit */
    pthread_mutex_t lock;     /* guards addresses and kinds */
    /* At most DUKA_HUB_CONNECTIONS_MAX connections are open, so as many addresses. */
    address_count addresses[DUKA_HUB_CONNECTIONS_MAX];
    log_kind kinds[LOG_KINDS_MAX];
    int kind_count;
};

static const char per_address_kind = 0; /* its address is the id of that log kind */

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

/* Adds Retry-After and the handler's own headers, queues and frees the response. */
static enum MHD_Result queue_reply(struct MHD_Connection *conn, unsigned status,
                                   struct MHD_Response *resp, const char *content_type,
                                   long retry_after_s, const duka_http_exchange *ex)
{
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (retry_after_s >= 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld", retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    for (int i = 0; ex != NULL && i < ex->header_count; i++)
        MHD_add_response_header(resp, ex->headers[i].name, ex->headers[i].value);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *obj,
                                 long retry_after_s, const duka_http_exchange *ex)
{
    /* The text is dumped in an arena (json_arena.h) and copied into the response. */
    duka_json_arena arena = {0};
    duka_json_arena_begin(&arena);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    duka_json_arena_pause(&arena);
    static const char fallback[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode reply\"}}";
    if (text == NULL)
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    const char *out = text ? text : fallback;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(out), (void *)(uintptr_t)out, MHD_RESPMEM_MUST_COPY);
    duka_json_free(text);
    duka_json_arena_end(&arena);
    return queue_reply(conn, status, resp, "application/json", retry_after_s, ex);
}

/* A reply of bytes (duka_http_reply_bytes): static ones are sent from where they are, owned
 * ones freed by libmicrohttpd once sent. */
static enum MHD_Result send_bytes(struct MHD_Connection *conn, duka_http_exchange *ex)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        ex->bytes_len, (void *)(uintptr_t)ex->bytes,
        ex->bytes_owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL && ex->bytes_owned)
        free((void *)(uintptr_t)ex->bytes);
    ex->bytes = NULL;
    return queue_reply(conn, ex->status, resp, ex->content_type, ex->retry_after_s, ex);
}

void duka_http_reply_bytes(duka_http_exchange *ex, unsigned status, const char *content_type,
                           const void *bytes, size_t len, bool owned)
{
    json_decref(ex->reply);
    ex->reply = NULL;
    if (ex->bytes_owned)
        free((void *)(uintptr_t)ex->bytes);
    ex->status = status;
    ex->content_type = content_type;
    ex->bytes = bytes;
    ex->bytes_len = len;
    ex->bytes_owned = owned;
}

bool duka_http_reply_header(duka_http_exchange *ex, const char *name, const char *value)
{
    if (ex->header_count >= DUKA_HTTP_REPLY_HEADERS_MAX ||
        strlen(name) >= sizeof(ex->headers[0].name) ||
        strlen(value) >= sizeof(ex->headers[0].value) || strpbrk(name, "\r\n:") != NULL ||
        strpbrk(value, "\r\n") != NULL)
        return false;
    duka_http_reply_header_kv *h = &ex->headers[ex->header_count++];
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->value, sizeof(h->value), "%s", value);
    return true;
}

const char *duka_http_cookie(const duka_http_exchange *ex, const char *name)
{
    if (ex->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(ex->conn, MHD_COOKIE_KIND, name);
}

bool duka_http_peer_is_loopback(const duka_http_exchange *ex)
{
    if (ex->conn == NULL)
        return true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                  const char *message)
{
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    enum MHD_Result r = send_json(conn, status, o, -1, NULL);
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
    if (ex.bytes != NULL)
        return send_bytes(conn, &ex);
    if (ex.reply == NULL)
        duka_http_error(&ex, 500, "internal", "no reply");
    enum MHD_Result r = send_json(conn, ex.status, ex.reply, ex.retry_after_s, &ex);
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

/* ---- logging repeated events ---- */

/* Formats the line for kind k when one is due (its first event, or a second since its last
 * line, or force with events unreported) and resets its count; returns whether it did.
 * Called with the lock held. */
static bool log_line_due(log_kind *k, int64_t now_ms, bool force, char *line, size_t n)
{
    bool due = k->unreported > 0 && (force || k->last_line_ms == 0 ||
                                     now_ms - k->last_line_ms >= LOG_REPEAT_INTERVAL_MS);
    if (!due)
        return false;
    bool refusal = k->id == &per_address_kind;
    if (k->unreported == 1)
        snprintf(line, n, "%s%s", refusal ? "refused a connection " : "libmicrohttpd: ", k->latest);
    else if (refusal)
        snprintf(line, n, "refused %lu connections in the last %.1f s, the latest %s",
                 k->unreported, (double)(now_ms - k->last_line_ms) / 1e3, k->latest);
    else
        snprintf(line, n, "libmicrohttpd, %lu times in the last %.1f s: %s", k->unreported,
                 (double)(now_ms - k->last_line_ms) / 1e3, k->latest);
    k->unreported = 0;
    k->last_line_ms = now_ms;
    return true;
}

/* Counts one event of kind id (text: what happened) and logs it if a line is due. */
static void log_event(duka_http_server *srv, const void *id, const char *text)
{
    char line[LOG_TEXT_MAX + 96];
    bool due = false;
    int64_t now_ms = duka_monotonic_ms();
    pthread_mutex_lock(&srv->lock);
    log_kind *k = NULL;
    for (int i = 0; i < srv->kind_count && k == NULL; i++)
        if (srv->kinds[i].id == id)
            k = &srv->kinds[i];
    if (k == NULL && srv->kind_count < LOG_KINDS_MAX) {
        k = &srv->kinds[srv->kind_count++];
        k->id = id;
    }
    if (k == NULL) /* more distinct messages than kinds: they share the last one */
        k = &srv->kinds[LOG_KINDS_MAX - 1];
    k->unreported++;
    snprintf(k->latest, sizeof(k->latest), "%s", text);
    due = log_line_due(k, now_ms, false, line, sizeof(line));
    pthread_mutex_unlock(&srv->lock);
    if (due)
        duka_log(DUKA_LOG_WARN, "http", "%s", line);
}

/* Logs the counts a line is due for (all of them when force: the server stops). */
static void log_flush(duka_http_server *srv, bool force)
{
    char lines[LOG_KINDS_MAX][LOG_TEXT_MAX + 96];
    int n = 0;
    int64_t now_ms = duka_monotonic_ms();
    pthread_mutex_lock(&srv->lock);
    for (int i = 0; i < srv->kind_count; i++)
        if (log_line_due(&srv->kinds[i], now_ms, force, lines[n], sizeof(lines[n])))
            n++;
    pthread_mutex_unlock(&srv->lock);
    for (int i = 0; i < n; i++)
        duka_log(DUKA_LOG_WARN, "http", "%s", lines[i]);
}

/* libmicrohttpd's own messages (MHD_USE_ERROR_LOG): its refusals at the connection limit,
 * accept and thread errors, clients that went away mid-request. One kind per message. */
static void on_library_message(void *cls, const char *fmt, va_list ap)
{
    char text[LOG_TEXT_MAX];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    log_event(cls, fmt, text);
}

/* ---- connections per address ---- */

/* The key of a client address; false for a family other than IPv4 and IPv6. */
static bool address_key(const struct sockaddr *sa, unsigned char key[ADDRESS_KEY_BYTES])
{
    memset(key, 0, ADDRESS_KEY_BYTES);
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

/* The slot of key among the addresses holding connections, or -1. Called with the lock. */
static int address_find(const duka_http_server *srv, const unsigned char *key)
{
    for (int i = 0; i < DUKA_HUB_CONNECTIONS_MAX; i++)
        if (srv->addresses[i].count > 0 &&
            memcmp(srv->addresses[i].key, key, ADDRESS_KEY_BYTES) == 0)
            return i;
    return -1;
}

/* The accept policy: refuses (closes at once) a connection from an address that already
 * holds per_address_max. libmicrohttpd accepts on one thread (the listening one in
 * thread-per-connection mode) and reports MHD_CONNECTION_NOTIFY_STARTED before accepting the
 * next, so the count read here is exact. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    duka_http_server *srv = cls;
    unsigned char key[ADDRESS_KEY_BYTES];
    (void)addrlen;
    if (srv->per_address_max == 0 || !address_key(addr, key))
        return MHD_YES;
    pthread_mutex_lock(&srv->lock);
    int slot = address_find(srv, key);
    unsigned held = slot >= 0 ? srv->addresses[slot].count : 0;
    pthread_mutex_unlock(&srv->lock);
    if (held < srv->per_address_max)
        return MHD_YES;
    char who[INET6_ADDRSTRLEN] = "?", text[LOG_TEXT_MAX];
    inet_ntop(addr->sa_family,
              addr->sa_family == AF_INET
                  ? (const void *)&((const struct sockaddr_in *)(const void *)addr)->sin_addr
                  : (const void *)&((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr,
              who, sizeof(who));
    snprintf(text, sizeof(text), "from %s: it already holds %u connections, the most one "
             "address may (HUB_CONNECTIONS_PER_IP)", who, held);
    log_event(srv, &per_address_kind, text);
    return MHD_NO;
}

/* Counts the connections each address holds (its slot + 1 in the socket context; 0: not
 * counted), and flushes due log lines as connections close. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
    duka_http_server *srv = cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = NULL;
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        unsigned char key[ADDRESS_KEY_BYTES];
        if (srv->per_address_max == 0 || info == NULL || !address_key(info->client_addr, key))
            return;
        pthread_mutex_lock(&srv->lock);
        int slot = address_find(srv, key);
        for (int i = 0; slot < 0 && i < DUKA_HUB_CONNECTIONS_MAX; i++)
            if (srv->addresses[i].count == 0) {
                slot = i;
                memcpy(srv->addresses[i].key, key, ADDRESS_KEY_BYTES);
            }
        /* No free slot cannot happen (at most as many connections as slots); if it did, the
         * connection would go uncounted rather than be refused. */
        if (slot >= 0) {
            srv->addresses[slot].count++;
            *socket_context = (void *)(uintptr_t)(slot + 1);
        }
        pthread_mutex_unlock(&srv->lock);
        return;
    }
    uintptr_t slot = (uintptr_t)*socket_context;
    if (slot > 0) {
        pthread_mutex_lock(&srv->lock);
        assert(srv->addresses[slot - 1].count > 0);
        srv->addresses[slot - 1].count--;
        pthread_mutex_unlock(&srv->lock);
        *socket_context = NULL;
    }
    log_flush(srv, false);
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

duka_rc duka_http_listen_open(const char *address, bool reuse_port, int *fd_out, duka_err *err)
{
    *fd_out = -1;
    struct sockaddr_in sa;
    if (parse_listen(address, &sa, err) != DUKA_OK)
        return DUKA_USAGE;
    /* The address as the kernel sees it ("localhost:8080" and ":8080" are 127.0.0.1:8080). */
    char where[INET_ADDRSTRLEN + 8], host[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
    snprintf(where, sizeof(where), "%s:%u", host, (unsigned)ntohs(sa.sin_port));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return duka_err_set(err, DUKA_LIMIT, "cannot open a socket to listen on %s: %s", where,
                            strerror(errno));
    /* SO_REUSEADDR: a restarted server binds at once although its old connections linger in
     * TIME_WAIT. On Linux it never lets a second socket listen where one already does; only
     * SO_REUSEPORT would, and then the kernel spreads connections over every socket, which for
     * two tills means sales in the wrong database. So SO_REUSEPORT only when asked. */
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)) {
        int e = errno;
        close(fd);
        return duka_err_set(err, DUKA_INTERNAL, "cannot set the options of a socket for %s: %s",
                            where, strerror(e));
    }
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        switch (e) {
        case EADDRINUSE:
            return duka_err_set(err, DUKA_BUSY, "%s is already in use (another duka till or hub?)",
                                where);
        case EADDRNOTAVAIL:
            return duka_err_set(err, DUKA_INPUT,
                                "cannot listen on %s: that address is not one of this machine's",
                                where);
        case EACCES:
        case EPERM:
            return duka_err_set(err, DUKA_INPUT,
                                "cannot listen on %s: not allowed (ports below 1024 need root or "
                                "CAP_NET_BIND_SERVICE)",
                                where);
        default:
            return duka_err_set(err, DUKA_INPUT, "cannot listen on %s: %s", where, strerror(e));
        }
    }
    *fd_out = fd;
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
    /* The listening socket is ours, not libmicrohttpd's: so that a port in use, an address
     * not of this machine and a port not allowed are told apart by their errno, and so that
     * it is never opened with SO_REUSEPORT unless asked (duka_http_listen_open). */
    int fd = opt->have_listen_fd ? opt->listen_fd : -1;
    if (!opt->have_listen_fd) {
        duka_rc rc = duka_http_listen_open(listen, opt->reuse_port, &fd, err);
        if (rc != DUKA_OK)
            return rc;
    }
    assert(fd >= 0);
    duka_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        close(fd);
        return duka_err_set(err, DUKA_NOMEM, "out of memory starting the server");
    }
    srv->handler = handler;
    srv->app = app;
    srv->max_body = opt->max_body_bytes;
    srv->per_address_max = opt->connections_per_ip_max;
    pthread_mutex_init(&srv->lock, NULL);
    const char *cert_pem = opt->cert_pem, *key_pem = opt->key_pem;
    bool tls = cert_pem != NULL && key_pem != NULL;
    unsigned timeout_s =
        opt->connection_timeout_s ? opt->connection_timeout_s : DUKA_HUB_CONNECTION_TIMEOUT_S;
    /* A thread per connection: handlers block (see the top of this file). Its listening
     * thread waits with select(), not poll(): at the connection limit libmicrohttpd (0.9.75)
     * then stops watching the listening socket, so new connections wait in the kernel's
     * accept queue (http_server.h); with poll() it accepts and closes them at once. select()
     * handles descriptors below FD_SETSIZE (1024) only: the hub's stay far below (at most
     * DUKA_HUB_CONNECTIONS_MAX connections, a few store files or sockets); one above would
     * be closed, and logged as libmicrohttpd's message. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG;
    /* The same options either way; TLS adds the flag and the PEM key and certificate. The
     * logger comes first so that the library's messages from the start go to it. */
#define DUKA_MHD_COMMON_OPTIONS                                                              \
    MHD_OPTION_EXTERNAL_LOGGER, on_library_message, srv, MHD_OPTION_LISTEN_SOCKET, fd,       \
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)DUKA_HUB_CONNECTIONS_MAX,                     \
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,  \
        srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv
    if (tls)
        srv->daemon = MHD_start_daemon(flags | MHD_USE_TLS, 0, on_accept, srv, on_request, srv,
                                       DUKA_MHD_COMMON_OPTIONS, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
                                       MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_END);
    else
        srv->daemon = MHD_start_daemon(flags, 0, on_accept, srv, on_request, srv,
                                       DUKA_MHD_COMMON_OPTIONS, MHD_OPTION_END);
#undef DUKA_MHD_COMMON_OPTIONS
    if (srv->daemon == NULL) {
        /* libmicrohttpd (0.9.75) closes a listening socket it was given when it fails to
         * start, so fd is not closed again here (it may already be another file's). */
        pthread_mutex_destroy(&srv->lock);
        free(srv);
        if (tls)
            return duka_err_set(err, DUKA_INPUT,
                                "cannot serve HTTPS on %s: the TLS certificate and key are not "
                                "a matching PEM pair",
                                listen);
        return duka_err_set(err, DUKA_INTERNAL, "cannot start the HTTP server on %s", listen);
    }
    *out = srv;
    return DUKA_OK;
}

void duka_http_server_stop(duka_http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    log_flush(srv, true); /* counts not yet reported */
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

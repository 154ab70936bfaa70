/*
 * http_server.h — the HTTP server both the hub and the till's local API use (libmicrohttpd).
 *
 * It owns the protocol details once: a thread per connection, connection limits and timeouts
 * (a slow client cannot hold every connection), request bodies accumulated up to a limit (413
 * with a JSON error beyond it, before reading the rest), JSON replies with the right content
 * type, and error bodies of the one shape {"error":{"code","message"}}. Handlers see a
 * finished request and fill in a status and a JSON reply; they run on their connection's own
 * thread and may block (on a store, a disk, a database) without delaying other connections.
 * Connections refused by a limit, and libmicrohttpd's own complaints, are logged ("http"),
 * at most once a second per kind with a count.
 */
#ifndef DUKA_HTTP_SERVER_H
#define DUKA_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct MHD_Connection;

/* Headers a handler may add to its reply, and the longest of each (name: value). */
#define DUKA_HTTP_REPLY_HEADERS_MAX 4
#define DUKA_HTTP_REPLY_HEADER_MAX 512

typedef struct duka_http_reply_header_kv {
    char name[64];
    char value[DUKA_HTTP_REPLY_HEADER_MAX];
} duka_http_reply_header_kv;

typedef struct duka_http_exchange {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *body; /* NUL-terminated, may be empty */
    size_t body_len;
    /* filled by the handler */
    unsigned status;
    json_t *reply;       /* owned by the exchange once set */
    long retry_after_s;  /* >= 0 adds a Retry-After header */
    /* A reply that is not JSON (set with duka_http_reply_bytes; reply then stays NULL). */
    const char *content_type;
    const void *bytes;
    size_t bytes_len;
    bool bytes_owned; /* free(bytes) once sent */
    int header_count;
    duka_http_reply_header_kv headers[DUKA_HTTP_REPLY_HEADERS_MAX];
    /* The path segment a route's '*' matched (http_router.h), "" when none. */
    char param[128];
    /* Requests made in-process (the deterministic simulator, tests/sim) have no connection
     * (conn NULL): their query arguments and headers are NULL-terminated key, value, key,
     * value … arrays instead. */
    const char *const *local_args;
    const char *const *local_headers;
} duka_http_exchange;

typedef void (*duka_http_handler)(void *app, duka_http_exchange *ex);

typedef struct duka_http_server duka_http_server;

/* Parses "HOST:PORT" (IPv4 address or "localhost") and starts serving on it. The address is
 * this process's alone: a port another process listens on is refused at start
 * (duka_http_listen_open's errors), never shared, unless reuse_port is asked for. */
duka_rc duka_http_server_start(const char *listen, size_t max_body_bytes,
                               duka_http_handler handler, void *app, duka_http_server **out,
                               duka_err *err);

/* As duka_http_server_start, serving HTTPS with a PEM certificate (chain) and key (the
 * contents, not file names; libmicrohttpd with GnuTLS). */
duka_rc duka_http_server_start_tls(const char *listen, size_t max_body_bytes,
                                   const char *cert_pem, const char *key_pem,
                                   duka_http_handler handler, void *app,
                                   duka_http_server **out, duka_err *err);

/* Everything a server can be started with. Zeroed fields take the defaults noted. */
typedef struct duka_http_server_options {
    size_t max_body_bytes;           /* 413 beyond it (required) */
    const char *cert_pem, *key_pem;  /* both set: HTTPS (PEM contents); else plain HTTP */
    unsigned connection_timeout_s;   /* close a connection idle this long; 0: 30 s
                                      * (DUKA_HUB_CONNECTION_TIMEOUT_S) */
    unsigned connections_per_ip_max; /* connections from one address at once, beyond which
                                      * a new one is closed unanswered, and logged with the
                                      * address; 0: no such limit */
    bool reuse_port;                 /* share the port with other processes that ask too
                                      * (SO_REUSEPORT: the kernel spreads connections over
                                      * them). Only for stateless servers on one database:
                                      * hubs on PostgreSQL. Never a till. */
    bool have_listen_fd;             /* serve on listen_fd, a socket from duka_http_listen_open
                                      * (the server owns it from then on, even on failure):
                                      * open the address first, before starting threads that
                                      * act, so that a busy port stops a command before it
                                      * did anything. The listen argument then only names it. */
    int listen_fd;
} duka_http_server_options;

/* As duka_http_server_start_tls, with every option. At most DUKA_HUB_CONNECTIONS_MAX
 * connections (and as many threads) at once: beyond that new ones wait in the kernel's accept
 * queue until one closes. A connection stops counting, against the total and against its
 * address, as soon as its client closes it, however long other requests take. The timeout is
 * libmicrohttpd's: it counts from the last byte received or sent, so it closes a stalled
 * client, not one that trickles a byte now and then (the per-address limit bounds those;
 * docs/SECURITY.md). */
duka_rc duka_http_server_start_opts(const char *listen, const duka_http_server_options *opt,
                                    duka_http_handler handler, void *app,
                                    duka_http_server **out, duka_err *err);

/* Opens a TCP socket listening on "HOST:PORT" (as duka_http_server_start parses it) with
 * SO_REUSEADDR, and SO_REUSEPORT only when reuse_port. On success *fd is the caller's to close
 * (or to give to a server). Errors name the address as the kernel sees it: DUKA_BUSY
 * "127.0.0.1:8080 is already in use (another duka till or hub?)", DUKA_INPUT for an address not
 * of this machine or a port not allowed, DUKA_USAGE for a malformed HOST:PORT. `duka demo`
 * uses it to check its addresses are free before it creates anything. */
duka_rc duka_http_listen_open(const char *listen, bool reuse_port, int *fd, duka_err *err);

/* Stops accepting, finishes requests in flight, frees. NULL is fine. */
void duka_http_server_stop(duka_http_server *server);

/* Request accessors. */
const char *duka_http_query(const duka_http_exchange *ex, const char *key);
const char *duka_http_header(const duka_http_exchange *ex, const char *key);
/* The value of a cookie the request carries, or NULL. */
const char *duka_http_cookie(const duka_http_exchange *ex, const char *name);
/* True when the client connected from a loopback address (127.0.0.0/8, ::1), and for requests
 * made in-process. */
bool duka_http_peer_is_loopback(const duka_http_exchange *ex);

/* Sets a reply of len bytes of the content type (e.g. "text/plain; charset=utf-8"), replacing
 * any JSON reply. With owned the exchange frees bytes once sent (malloc'd); without, they must
 * outlive the request (static data: the embedded web assets). */
void duka_http_reply_bytes(duka_http_exchange *ex, unsigned status, const char *content_type,
                           const void *bytes, size_t len, bool owned);

/* Adds a header to the reply. False (and nothing added) beyond DUKA_HTTP_REPLY_HEADERS_MAX, or
 * for a name or value too long or holding CR / LF (no header injection). */
bool duka_http_reply_header(duka_http_exchange *ex, const char *name, const char *value);

/* Sets an error reply {"error":{"code","message"}}. */
void duka_http_error(duka_http_exchange *ex, unsigned status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The bearer token of the Authorization header, or NULL. */
const char *duka_http_bearer(const duka_http_exchange *ex);

/* Blocks SIGINT/SIGTERM in the calling thread (call before starting servers and threads),
 * then duka_wait_for_stop_signal() waits for one of them and returns its number. */
void duka_block_stop_signals(void);
int duka_wait_for_stop_signal(void);

#endif

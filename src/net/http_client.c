/* http_client.c — libcurl wrapper (see http_client.h). */
#include "net/http_client.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/limits.h"

typedef struct sink {
    char *buf;
    size_t len, cap;
    bool overflow;
    long retry_after_s;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n > DUKA_HTTP_REPLY_MAX_BYTES) {
        s->overflow = true;
        return 0; /* aborts the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return 0;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char tmp[32];
        size_t m = n - 12 < sizeof(tmp) - 1 ? n - 12 : sizeof(tmp) - 1;
        memcpy(tmp, data + 12, m);
        tmp[m] = '\0';
        char *end = NULL;
        long v = strtol(tmp, &end, 10);
        if (end != tmp && v >= 0 && v <= 86400)
            s->retry_after_s = v;
    }
    return n;
}

bool duka_http_url_valid(const char *url)
{
    if (url == NULL || strlen(url) > DUKA_URL_MAX)
        return false;
    return (strncmp(url, "http://", 7) == 0 && url[7] != '\0') ||
           (strncmp(url, "https://", 8) == 0 && url[8] != '\0');
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const atomic_bool *cancel = clientp;
    return atomic_load(cancel) ? 1 : 0; /* non-zero aborts the transfer */
}

duka_rc duka_http_request(const char *method, const char *url, const char *bearer_token,
                          const char *body, size_t body_len, long timeout_ms,
                          duka_http_reply *out, duka_err *err)
{
    duka_http_options opt = {.timeout_ms = timeout_ms};
    return duka_http_send(method, url, bearer_token, body, body_len, &opt, out, err);
}

duka_rc duka_http_send(const char *method, const char *url, const char *bearer_token,
                       const char *body, size_t body_len, const duka_http_options *opt,
                       duka_http_reply *out, duka_err *err)
{
    long timeout_ms = opt->timeout_ms;
    const atomic_bool *cancel = opt->cancel;
    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    sink s = {.retry_after_s = -1};
    struct curl_slist *headers = NULL;
    char auth[DUKA_TOKEN_MAX + 32];
    duka_rc result = DUKA_OK;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return duka_err_set(err, DUKA_NOMEM, "cannot start an HTTP request");
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body != NULL)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    if (bearer_token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer_token);
        headers = curl_slist_append(headers, auth);
    }
    for (int i = 0; opt != NULL && i < DUKA_HTTP_EXTRA_HEADERS_MAX && opt->headers[i] != NULL; i++)
        headers = curl_slist_append(headers, opt->headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)DUKA_HTTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : (long)DUKA_HTTP_TOTAL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* A proxy from the environment may be needed to reach a cloud hub, never a local one. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (opt->ca_file != NULL && opt->ca_file[0] != '\0')
        curl_easy_setopt(c, CURLOPT_CAINFO, opt->ca_file);
    if (cancel != NULL) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)(uintptr_t)cancel);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (s.overflow) {
        result = duka_err_set(err, DUKA_PROTOCOL, "reply from %s is larger than %u bytes", url,
                              DUKA_HTTP_REPLY_MAX_BYTES);
        out->maybe_delivered = true;
    } else if (cc != CURLE_OK) {
        /* Refused or unresolvable: the request never left. Anything later: it may have. */
        out->maybe_delivered = !(cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                                 cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_UNSUPPORTED_PROTOCOL ||
                                 cc == CURLE_URL_MALFORMAT);
        if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
            result = duka_err_set(err, DUKA_INPUT, "hub URL '%s' is not valid: %s", url,
                                  curl_easy_strerror(cc));
        else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
                 cc == CURLE_SSL_CONNECT_ERROR)
            result = duka_err_set(err, DUKA_AUTH,
                                  "TLS to %s failed: %s (a self-signed hub needs --ca-file)", url,
                                  curl_easy_strerror(cc));
        else
            result = duka_err_set(err, DUKA_OFFLINE, "hub unreachable at %s: %s", url,
                                  curl_easy_strerror(cc));
        out->status = 0;
    }
    if (result == DUKA_OK) {
        out->body = s.buf;
        out->len = s.len;
        out->retry_after_s = s.retry_after_s;
        s.buf = NULL;
        if (out->body == NULL) {
            out->body = calloc(1, 1);
            if (out->body == NULL)
                result = duka_err_set(err, DUKA_NOMEM, "out of memory reading a reply");
        }
    }
    free(s.buf);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return result;
}

void duka_http_reply_free(duka_http_reply *reply)
{
    if (reply == NULL)
        return;
    free(reply->body);
    reply->body = NULL;
    reply->len = 0;
}

bool duka_http_url_is_loopback(const char *url)
{
    const char *host = strstr(url, "://");
    if (host == NULL)
        return false;
    host += 3;
    size_t n = strcspn(host, ":/?#");
    if (n == 9 && strncmp(host, "localhost", 9) == 0)
        return true;
    if (n == 5 && strncmp(host, "[::1]", 5) == 0)
        return true;
    if (strncmp(host, "[::1]", 5) == 0 && (host[5] == ':' || host[5] == '/' || host[5] == '\0'))
        return true;
    if (n < 7 || n > 15 || strncmp(host, "127.", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++)
        if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
            return false;
    return true;
}

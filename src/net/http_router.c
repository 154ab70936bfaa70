/* http_router.c — matching a request to a route table (see http_router.h). */
#include "net/http_router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/limits.h"

/* Matches path against pattern; a '*' segment's text goes to param. */
static bool match(const char *pattern, const char *path, char *param, size_t param_n)
{
    param[0] = '\0';
    while (*pattern != '\0' && *path != '\0') {
        if (pattern[0] == '*' && (pattern[1] == '/' || pattern[1] == '\0')) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= param_n)
                return false;
            memcpy(param, path, n);
            param[n] = '\0';
            path += n;
            pattern++;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

const duka_http_route *duka_http_route_find(const duka_http_route *routes, size_t count,
                                            duka_http_exchange *ex)
{
    char allow[128] = "";
    if (strlen(ex->path) <= DUKA_HTTP_PATH_MAX) {
        for (size_t i = 0; i < count; i++) {
            if (!match(routes[i].pattern, ex->path, ex->param, sizeof(ex->param)))
                continue;
            if (strcmp(routes[i].method, ex->method) == 0)
                return &routes[i];
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                     routes[i].method);
        }
    }
    ex->param[0] = '\0';
    if (allow[0] != '\0') {
        duka_http_error(ex, 405, "method_not_allowed", "%s %s: this endpoint takes %s",
                        ex->method, ex->path, allow);
        duka_http_reply_header(ex, "Allow", allow);
        return NULL;
    }
    duka_http_error(ex, 404, "not_found", "no endpoint %s %.200s", ex->method, ex->path);
    return NULL;
}

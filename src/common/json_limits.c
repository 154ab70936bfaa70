/* json_limits.c — bounds on JSON from outside (see json_limits.h). */
#include "common/json_limits.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The error names where the walk stopped: "body.commands[0].payload". Keys are shown up to
 * KEY_SHOWN_MAX characters, the whole path up to PATH_SHOWN_MAX. */
#define KEY_SHOWN_MAX 32
#define PATH_SHOWN_MAX 200

/* One step down from a container: into member `key`, or (key NULL) into element `index`. */
typedef struct step {
    const char *key;
    size_t index;
} step;

typedef struct walk {
    int depth_max;
    step steps[DUKA_JSON_DEPTH_CHECK_MAX];
    int stopped_at; /* containers above the one found too deep */
} walk;

/* True when v, with `level` containers above it, keeps within w->depth_max. The recursion
 * goes at most depth_max + 1 calls deep: a container at level depth_max is refused before
 * anything under it is looked at. */
static bool within(const json_t *v, int level, walk *w)
{
    if (!json_is_array(v) && !json_is_object(v))
        return true;
    if (level == w->depth_max) {
        w->stopped_at = level;
        return false;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            w->steps[level] = (step){.key = NULL, .index = i};
            if (!within(json_array_get(v, i), level + 1, w))
                return false;
        }
        return true;
    }
    /* jansson's object iterator takes a non-const object; iterating does not change it. */
    json_t *obj = (json_t *)(uintptr_t)v;
    const char *key;
    json_t *member;
    json_object_foreach(obj, key, member) {
        w->steps[level] = (step){.key = key, .index = 0};
        if (!within(member, level + 1, w))
            return false;
    }
    return true;
}

/* "what.key[3].key…" into buf (cut with "..." when longer than PATH_SHOWN_MAX). */
static void format_path(const walk *w, const char *what, char *buf, size_t size)
{
    size_t len = 0;
    int n = snprintf(buf, size, "%.*s", KEY_SHOWN_MAX, what);
    len = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < w->stopped_at && len < size; i++) {
        const step *s = &w->steps[i];
        n = s->key != NULL ? snprintf(buf + len, size - len, ".%.*s", KEY_SHOWN_MAX, s->key)
                           : snprintf(buf + len, size - len, "[%zu]", s->index);
        if (n < 0 || (size_t)n >= size - len) {
            snprintf(buf + (len > size - 4 ? size - 4 : len), 4, "...");
            return;
        }
        len += (size_t)n;
    }
}

duka_rc duka_json_depth_check(const json_t *value, int depth_max, const char *what,
                              duka_err *err)
{
    assert(depth_max >= 0 && depth_max <= DUKA_JSON_DEPTH_CHECK_MAX);
    if (depth_max < 0)
        depth_max = 0;
    if (depth_max > DUKA_JSON_DEPTH_CHECK_MAX)
        depth_max = DUKA_JSON_DEPTH_CHECK_MAX;
    if (what == NULL)
        what = "body";
    walk w = {.depth_max = depth_max, .stopped_at = 0};
    if (within(value, 0, &w))
        return DUKA_OK;
    char path[PATH_SHOWN_MAX + 1];
    format_path(&w, what, path, sizeof(path));
    return duka_err_set(err, DUKA_INPUT, "%s: nested deeper than the JSON depth limit of %d levels",
                        path, depth_max);
}

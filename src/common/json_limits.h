/*
 * json_limits.h — bounds on JSON from outside that jansson's parser does not enforce.
 *
 * jansson refuses invalid text, duplicate keys (when asked) and integers beyond int64, and
 * stops nesting at 2048 levels. duka's bodies are shallow (a push is 6 levels deep), so
 * every body from outside — the hub's push body, the till's local API bodies — is checked
 * against DUKA_JSON_DEPTH_MAX (common/limits.h) right after parsing, before anything walks,
 * hashes or stores it.
 */
#ifndef DUKA_JSON_LIMITS_H
#define DUKA_JSON_LIMITS_H

#include <jansson.h>

#include "common/error.h"

/* The most a caller may ask for: the check recurses once per level, up to depth_max + 1. */
#define DUKA_JSON_DEPTH_CHECK_MAX 64

/* DUKA_OK when value nests at most depth_max arrays and objects (a scalar is 0 levels deep,
 * [] and {} are 1, [[1]] and {"a":{}} are 2; NULL is 0). Otherwise DUKA_INPUT, and err names
 * the first container found too deep, from `what` (e.g. "body"), and the limit:
 *   body.commands[0].payload.x.y.z: nested deeper than the JSON depth limit of 8 levels
 * The walk never goes below depth_max + 1, so it costs at most one visit per value and its
 * recursion is bounded whatever the input. depth_max must be 0..DUKA_JSON_DEPTH_CHECK_MAX. */
duka_rc duka_json_depth_check(const json_t *value, int depth_max, const char *what,
                              duka_err *err);

#endif

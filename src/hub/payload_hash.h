/*
 * payload_hash.h — the fingerprint the hub stores with each command id it applies, so that a
 * resend (same id, same payload) answers "duplicate" and a reused id with another payload is
 * refused (hub_push.c).
 *
 * It is BLAKE2b-256 over a canonical encoding of the parsed payload, not of its text: the
 * same JSON value in any key order, spacing or escaping has one hash; a different value (a
 * changed amount, 1 instead of "1", an extra field) has another. The encoding, value by
 * value (integers and lengths big-endian):
 *
 *   null 'n' · true 't' · false 'f' · integer 'i' + 8 bytes · real 'r' + the 8 bytes of the
 *   IEEE 754 double · string 's' + 8-byte length + its bytes · array '[' + 8-byte count +
 *   its values · object '{' + 8-byte count + (key as a string, value) in ascending byte
 *   order of the keys.
 *
 * It replaced the hash of jansson's sorted, compact dump of the payload, which cost a push of
 * 500 sales 3 ms of text formatting (now 0.5 ms); duka_payload_hash_dump keeps that one for
 * ids stored with it: a resend whose hash differs from the stored one is compared with that
 * too before it is refused (hub_push.c).
 *
 * Workload: once per pushed command, on the payload jansson parsed (at most
 * DUKA_JSON_DEPTH_MAX deep: the hub checks the depth first).
 */
#ifndef DUKA_PAYLOAD_HASH_H
#define DUKA_PAYLOAD_HASH_H

#include <jansson.h>

/* Hex of a 32-byte hash, and its terminator. */
#define DUKA_PAYLOAD_HASH_HEX_LEN 64

/* out = hex of BLAKE2b-256 over the canonical encoding of payload (NULL hashes as null).
 * Returns 0, or -1 when memory ran out (out is then the empty string). */
int duka_payload_hash(const json_t *payload, char out[DUKA_PAYLOAD_HASH_HEX_LEN + 1]);

/* The earlier fingerprint: BLAKE2b-256 of json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS),
 * for command ids stored before duka_payload_hash. */
void duka_payload_hash_dump(const json_t *payload, char out[DUKA_PAYLOAD_HASH_HEX_LEN + 1]);

#endif

/*
 * uuid.h — command ids. UUIDv7 (RFC 9562): 48 bits of Unix milliseconds then random bits
 * from libsodium, so ids sort roughly by creation time (good index locality at the hub)
 * and never collide across tills.
 */
#ifndef DUKA_UUID_H
#define DUKA_UUID_H

#include <stdbool.h>
#include <stdint.h>

#include "common/limits.h"

/* Writes a new UUIDv7 for time ms into out (DUKA_UUID_STR_LEN + 1 bytes). */
void duka_uuid_v7(int64_t ms, char out[DUKA_UUID_STR_LEN + 1]);

/* True when s is a canonical lower- or upper-case 8-4-4-4-12 hex UUID. */
bool duka_uuid_valid(const char *s);

/* Random lower-case hex string of n characters (n even) into out (n + 1 bytes). */
void duka_random_hex(char *out, unsigned n);

#endif

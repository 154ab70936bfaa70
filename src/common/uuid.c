/* uuid.c — UUIDv7 command ids and random hex ids (see uuid.h). */
#include "common/uuid.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/random.h"

void duka_uuid_v7(int64_t ms, char out[DUKA_UUID_STR_LEN + 1])
{
    unsigned char b[16];
    duka_random_buf(b, sizeof(b));
    uint64_t t = (uint64_t)ms;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(t >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    snprintf(out, DUKA_UUID_STR_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool duka_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != DUKA_UUID_STR_LEN)
        return false;
    for (int i = 0; i < DUKA_UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

void duka_random_hex(char *out, unsigned n)
{
    unsigned char b[64];
    unsigned bytes = n / 2;
    if (bytes > sizeof(b))
        bytes = sizeof(b);
    randombytes_buf(b, bytes);
    sodium_bin2hex(out, (size_t)bytes * 2 + 1, b, bytes);
}

/* random.c — non-secret randomness, seedable for the simulator (see random.h). */
#include "common/random.h"

#include <sodium.h>
#include <stdbool.h>

static bool seeded;
static uint64_t state;

/* splitmix64: small, fast and good enough for jitter and id bits in a replayable run. */
static uint64_t next64(void)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void duka_random_seed_for_simulation(uint64_t seed)
{
    state = seed;
    seeded = true;
}

void duka_random_buf(void *buf, size_t n)
{
    if (!seeded) {
        randombytes_buf(buf, n);
        return;
    }
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)next64();
}

uint32_t duka_random_uniform(uint32_t upper)
{
    if (!seeded)
        return randombytes_uniform(upper);
    return (uint32_t)(next64() % upper);
}

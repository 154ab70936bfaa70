/*
 * random.h — the randomness that is not secret: command-id bits and retry jitter.
 *
 * By default it is libsodium's randombytes. The deterministic simulator (tests/sim) replaces
 * it with a seeded generator so that one seed replays one run exactly. Secrets (device
 * tokens) never come from here: they always use randombytes directly.
 */
#ifndef DUKA_RANDOM_H
#define DUKA_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random bytes. */
void duka_random_buf(void *buf, size_t n);

/* A uniform integer in [0, upper) (upper > 0). */
uint32_t duka_random_uniform(uint32_t upper);

/* From now on, every call in this process draws from a generator seeded with seed
 * (splitmix64). For the simulator only; not thread safe while it is being switched. */
void duka_random_seed_for_simulation(uint64_t seed);

#endif

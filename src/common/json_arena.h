/*
 * json_arena.h — request-scoped memory for jansson values.
 *
 * A push body of 500 sales parses into some 25,000 jansson values, each one malloc'ed and,
 * once the push is answered, freed one by one; in the hub that was a third of its CPU
 * (malloc, free, and glibc consolidating the freed chunks before each large allocation). An
 * arena hands jansson that memory from a few large blocks instead, makes freeing a value a
 * no-op, and gives the blocks back at once when the request is done.
 *
 * jansson has one set of allocation functions per process (json_set_alloc_funcs):
 * duka_json_arena_install() sets duka's, which are plain malloc and free except on a thread
 * inside an arena. On such a thread, values allocated between _begin and _pause come from
 * the arena; freeing one of them, at any point until _end, does nothing; everything else is
 * malloc and free as before. The rule that makes this safe: a value allocated while the arena
 * was active must be unreachable by _end — so only request-scoped work runs in one (the
 * parse of a body, the dump of a reply), never code that may keep a value in a long-lived
 * object (a store's cache). Use on one thread only; arenas do not nest.
 *
 * Bounded: an arena holds at most DUKA_JSON_ARENA_MAX_BYTES (or its limit); past that its allocations fall
 * back to malloc (and are freed normally), so a large body costs memory as before, never an
 * error.
 */
#ifndef DUKA_JSON_ARENA_H
#define DUKA_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

/* The first block; each next one doubles, up to the arena's bound. A 500-sale push body
 * (about 370 KB) parses into about 3 MB of values. */
#define DUKA_JSON_ARENA_BLOCK_BYTES (256u * 1024u)
#define DUKA_JSON_ARENA_MAX_BYTES (64u * 1024u * 1024u)

typedef struct duka_json_arena_block duka_json_arena_block;

typedef struct duka_json_arena {
    size_t limit;                  /* bytes it may hold; 0: DUKA_JSON_ARENA_MAX_BYTES */
    duka_json_arena_block *blocks; /* newest first */
    size_t total;                  /* bytes in blocks */
    size_t fallbacks;              /* allocations that went to malloc (bound reached) */
} duka_json_arena;

/* Makes duka's functions jansson's (once per process; later calls do nothing). Call before
 * any thread uses an arena. */
void duka_json_arena_install(void);

/* This thread's jansson values come from a (zeroed by the caller) from now on. Returns false,
 * and changes nothing, when the functions are not installed or the thread is in an arena. */
bool duka_json_arena_begin(duka_json_arena *a);

/* Back to malloc for new values; a's values may still be read and freed (a no-op). */
void duka_json_arena_pause(duka_json_arena *a);

/* Leaves the arena and returns its blocks. Every value allocated in it must be unreachable.
 * Accepts an arena that was never begun (does nothing). */
void duka_json_arena_end(duka_json_arena *a);

/* Frees memory jansson gave out (a json_dumps string): a no-op for memory of this thread's
 * arena, free() otherwise. */
void duka_json_free(void *p);

#endif

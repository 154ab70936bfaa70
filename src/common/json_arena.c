/* json_arena.c — request-scoped memory for jansson values (see json_arena.h). */
#include "common/json_arena.h"

#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct duka_json_arena_block {
    duka_json_arena_block *next;
    size_t size, used;
    max_align_t data[]; /* size bytes */
};

/* The arena this thread is in (NULL: none), and whether new values come from it. */
static _Thread_local duka_json_arena *tl_arena;
static _Thread_local bool tl_active;
static atomic_bool installed;

#define ALIGN (sizeof(max_align_t))

static bool in_arena(const duka_json_arena *a, const void *p)
{
    for (const duka_json_arena_block *b = a->blocks; b != NULL; b = b->next) {
        const unsigned char *start = (const unsigned char *)b->data;
        if ((const unsigned char *)p >= start && (const unsigned char *)p < start + b->size)
            return true;
    }
    return false;
}

static void *arena_alloc(duka_json_arena *a, size_t n)
{
    n = (n + ALIGN - 1) / ALIGN * ALIGN;
    duka_json_arena_block *b = a->blocks;
    if (b == NULL || b->size - b->used < n) {
        size_t size = b == NULL ? DUKA_JSON_ARENA_BLOCK_BYTES : 2 * b->size;
        while (size < n)
            size *= 2;
        size_t limit = a->limit ? a->limit : DUKA_JSON_ARENA_MAX_BYTES;
        if (a->total + size > limit)
            size = a->total < limit ? limit - a->total : 0;
        b = size >= n ? malloc(sizeof(*b) + size) : NULL;
        if (b == NULL) {
            a->fallbacks++;
            return malloc(n);
        }
        b->size = size;
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
        a->total += size;
    }
    void *p = (unsigned char *)b->data + b->used;
    b->used += n;
    return p;
}

static void *hook_malloc(size_t n)
{
    if (tl_active)
        return arena_alloc(tl_arena, n);
    return malloc(n);
}

void duka_json_free(void *p)
{
    if (p == NULL || (tl_arena != NULL && in_arena(tl_arena, p)))
        return;
    free(p);
}

static void install_once(void)
{
    json_set_alloc_funcs(hook_malloc, duka_json_free);
    atomic_store(&installed, true);
}

void duka_json_arena_install(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_once);
}

bool duka_json_arena_begin(duka_json_arena *a)
{
    if (!atomic_load(&installed) || tl_arena != NULL)
        return false;
    tl_arena = a;
    tl_active = true;
    return true;
}

void duka_json_arena_pause(duka_json_arena *a)
{
    if (tl_arena == a)
        tl_active = false;
}

void duka_json_arena_end(duka_json_arena *a)
{
    if (tl_arena == a) {
        tl_arena = NULL;
        tl_active = false;
    }
    duka_json_arena_block *b = a->blocks;
    while (b != NULL) {
        duka_json_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->total = 0;
}

/* payload_hash.c — the canonical fingerprint of a command's payload (see payload_hash.h). */
#include "hub/payload_hash.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The encoding goes through a small buffer into the hash state: a sale is some forty values
 * of a few bytes each, and one update per value would cost more than the encoding. */
typedef struct encoder {
    crypto_generichash_state state;
    unsigned char buf[1024];
    size_t n;
} encoder;

static void put(encoder *e, const void *data, size_t len)
{
    if (e->n + len > sizeof(e->buf)) {
        crypto_generichash_update(&e->state, e->buf, e->n);
        e->n = 0;
        if (len > sizeof(e->buf)) {
            crypto_generichash_update(&e->state, data, len);
            return;
        }
    }
    memcpy(e->buf + e->n, data, len);
    e->n += len;
}

static void put_u64(encoder *e, unsigned char tag, uint64_t v)
{
    unsigned char b[9];
    b[0] = tag;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (56 - 8 * i));
    put(e, b, sizeof(b));
}

static void put_string(encoder *e, const char *s, size_t len)
{
    put_u64(e, 's', (uint64_t)len);
    put(e, s, len);
}

typedef struct member {
    const char *key;
    size_t key_len;
    const json_t *value;
} member;

static int member_cmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Members of a small object are sorted on the stack; a larger one (only a hostile payload
 * has one: a sale object has at most 8 keys) on the heap. */
#define MEMBERS_ON_STACK 16

static int encode(encoder *e, const json_t *v);

static int encode_object(encoder *e, const json_t *obj)
{
    size_t count = json_object_size(obj);
    member stack[MEMBERS_ON_STACK];
    member *m = count <= MEMBERS_ON_STACK ? stack : malloc(count * sizeof(*m));
    if (m == NULL)
        return -1;
    /* jansson's iterator takes a non-const object; it only reads it. */
    json_t *o = (json_t *)(uintptr_t)obj;
    size_t i = 0;
    for (void *it = json_object_iter(o); it != NULL && i < count;
         it = json_object_iter_next(o, it), i++)
        m[i] = (member){json_object_iter_key(it), json_object_iter_key_len(it),
                        json_object_iter_value(it)};
    qsort(m, i, sizeof(*m), member_cmp);
    put_u64(e, '{', (uint64_t)i);
    int rc = 0;
    for (size_t k = 0; k < i && rc == 0; k++) {
        put_string(e, m[k].key, m[k].key_len);
        rc = encode(e, m[k].value);
    }
    if (m != stack)
        free(m);
    return rc;
}

static int encode(encoder *e, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return encode_object(e, v);
    case JSON_ARRAY: {
        size_t count = json_array_size(v);
        put_u64(e, '[', (uint64_t)count);
        for (size_t i = 0; i < count; i++)
            if (encode(e, json_array_get(v, i)) != 0)
                return -1;
        return 0;
    }
    case JSON_STRING:
        put_string(e, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        put_u64(e, 'i', (uint64_t)json_integer_value(v));
        return 0;
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        put_u64(e, 'r', bits);
        return 0;
    }
    case JSON_TRUE:
        put(e, "t", 1);
        return 0;
    case JSON_FALSE:
        put(e, "f", 1);
        return 0;
    case JSON_NULL:
        put(e, "n", 1);
        return 0;
    }
    return -1;
}

static void to_hex(const unsigned char h[32], char out[DUKA_PAYLOAD_HASH_HEX_LEN + 1])
{
    sodium_bin2hex(out, DUKA_PAYLOAD_HASH_HEX_LEN + 1, h, 32);
}

int duka_payload_hash(const json_t *payload, char out[DUKA_PAYLOAD_HASH_HEX_LEN + 1])
{
    encoder e;
    e.n = 0;
    crypto_generichash_init(&e.state, NULL, 0, 32);
    int rc = payload != NULL ? encode(&e, payload) : (put(&e, "n", 1), 0);
    if (rc != 0) {
        out[0] = '\0';
        return -1;
    }
    unsigned char h[32];
    crypto_generichash_update(&e.state, e.buf, e.n);
    crypto_generichash_final(&e.state, h, sizeof(h));
    to_hex(h, out);
    return 0;
}

static int hash_chunk(const char *buffer, size_t size, void *data)
{
    return crypto_generichash_update(data, (const unsigned char *)buffer, size);
}

void duka_payload_hash_dump(const json_t *payload, char out[DUKA_PAYLOAD_HASH_HEX_LEN + 1])
{
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    if (payload != NULL)
        json_dump_callback(payload, hash_chunk, &st, JSON_COMPACT | JSON_SORT_KEYS);
    crypto_generichash_final(&st, h, sizeof(h));
    to_hex(h, out);
}

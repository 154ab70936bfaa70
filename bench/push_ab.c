/*
 * push_ab.c — the push's cost A/B against an older duka (bench/push_ab.sh builds it): the
 * cleanest baseline for "what does the eTIMS invoice add to a push", the push as it was
 * before the invoice, measured the same way as the push now.
 *
 *   push_ab gen BODIES N CSV     (built against this tree, with bench_common.c) writes N push
 *                                bodies of 500 sales, one JSON a line (the bench's 20 sales in
 *                                rotation, as duka-bench etims makes them), and the bench's
 *                                20-product CSV
 *   push_ab apply HUB_DB TOKEN BODIES   (built against either tree) applies each body with
 *                                duka_hub_push_apply in-process and prints the median us/sale
 *
 * Only the API both trees share (hub_store.h, hub_push.h) is used by `apply`.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/hub_push.h"
#include "hub/hub_store.h"
#ifdef PUSH_AB_GEN
#include <unistd.h>

#include "bench_common.h"
#include "common/uuid.h"
#include "store/db.h"
#endif

#define AB_BATCH 500
#define AB_BATCHES_MAX 1000

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#ifdef PUSH_AB_GEN
static int gen(const char *bodies, int n, const char *csv)
{
    char till_path[] = "/tmp/push_ab_till_XXXXXX";
    int fd = mkstemp(till_path);
    sqlite3 *till = NULL;
    duka_sale *t[BENCH_PRODUCTS], *s = duka_sale_new();
    FILE *out = fopen(bodies, "w");
    if (fd < 0 || out == NULL || s == NULL)
        return 1;
    close(fd);
    remove(till_path);
    if (till_create(till_path, "http://127.0.0.1:9", "none", &till))
        return 1;
    for (int k = 0; k < BENCH_PRODUCTS; k++)
        if ((t[k] = duka_sale_new()) == NULL || till_sell(till, k, t[k]))
            return 1;
    char date[9];
    const char *dash = strchr(t[0]->receipt_no, '-');
    snprintf(date, sizeof(date), "%.8s", dash ? dash + 1 : "20260101");
    for (int b = 0; b < n; b++) {
        json_t *cmds = json_array();
        for (int i = 0; i < AB_BATCH; i++) {
            int seq = b * AB_BATCH + i + 1;
            char id[DUKA_UUID_STR_LEN + 1];
            *s = *t[(seq - 1) % BENCH_PRODUCTS];
            snprintf(s->receipt_no, sizeof(s->receipt_no), "%s-%s-%05d", s->terminal, date, seq);
            duka_uuid_v7(s->created_ms, id);
            json_array_append_new(cmds, json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type",
                                                  "sale.create", "entity_id", s->receipt_no,
                                                  "payload", duka_sale_to_json(s)));
        }
        json_t *root = json_pack("{s:o}", "commands", cmds);
        char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
        if (text == NULL)
            return 1;
        fprintf(out, "%s\n", text);
        free(text);
        json_decref(root);
    }
    duka_db_close(till);
    char rm[64];
    snprintf(rm, sizeof(rm), "%s-wal", till_path);
    remove(rm);
    snprintf(rm, sizeof(rm), "%s-shm", till_path);
    remove(rm);
    remove(till_path);
    return fclose(out) == 0 && write_catalog_csv(csv) == 0 ? 0 : 1;
}
#endif

static int apply(const char *hub_db, const char *token, const char *bodies)
{
    duka_hub_store *st = NULL;
    duka_err err = {0};
    duka_hub_device dev;
    if (sodium_init() < 0 || duka_hub_store_open(hub_db, false, &st, &err) != DUKA_OK ||
        duka_hub_device_authenticate(st, token, &dev, &err) != DUKA_OK) {
        fprintf(stderr, "push_ab: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(bodies, "r");
    char *line = NULL;
    size_t cap = 0;
    static double v[AB_BATCHES_MAX];
    int n = 0;
    while (f != NULL && n < AB_BATCHES_MAX && getline(&line, &cap, f) > 0) {
        json_t *body = json_loads(line, 0, NULL), *reply = NULL;
        struct timespec w;
        clock_gettime(CLOCK_REALTIME, &w);
        double t0 = mono_us();
        if (body == NULL || duka_hub_push_apply(st, &dev, body, (int64_t)w.tv_sec * 1000, &reply,
                                                &err) != DUKA_OK) {
            fprintf(stderr, "push_ab: push: %s\n", err.msg);
            return 1;
        }
        v[n++] = (mono_us() - t0) / AB_BATCH;
        json_decref(reply);
        json_decref(body);
        duka_hub_store_checkpoint(st);
    }
    free(line);
    if (f != NULL)
        fclose(f);
    duka_hub_store_close(st);
    if (n == 0)
        return 1;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    printf("%.1f\n", n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
    return 0;
}

int main(int argc, char **argv)
{
#ifdef PUSH_AB_GEN
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atoi(argv[3]), argv[4]);
#endif
    if (argc == 5 && strcmp(argv[1], "apply") == 0)
        return apply(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: push_ab gen BODIES N CSV | push_ab apply HUB_DB TOKEN BODIES\n");
    return 2;
}

/*
 * cmd_demo.c — `duka demo`: the whole product on one machine in a minute. A hub and a till
 * on SQLite in a fresh folder, a seeded Kenyan catalog, KRA's eTIMS simulated, and the promise
 * shown live: a sale made while the hub is stopped arrives at the hub, once, after it starts
 * again; a sale made while eTIMS is down is signed once it is back, and reprinted with its QR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/money.h"
#include "hub/hub_cashiers.h"
#include "hub/hub_store.h"
#include "hub/product_import.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "store/db.h"
#include "sync/sync_client.h"
#include "till/checkout.h"
#include "till/etims_receipt.h"
#include "till/till_db.h"
#include "till/till_status.h"

#define DEMO_WAIT_MS 30000

/* The demo's cashiers, printed with their PINs: a new user logs in on the till's screen with
 * them. Demo PINs only — a shop sets its own with duka cashier add / set. */
static const struct {
    const char *name, *role, *pin;
} demo_cashiers[] = {{"Amina", "cashier", "1234"}, {"Baraka", "manager", "5678"}};

/* A corner shop in Nairobi: prices in KES, VAT inclusive, eTIMS bands. */
static const char demo_catalog[] =
    "sku,name,price,tax,stock,category\n"
    "MAIZE2KG,Jogoo Maize Flour 2kg,185.00,C,120,Flour\n"
    "UNGA2KG,Pembe Home Baking Flour 2kg,210.00,C,80,Flour\n"
    "RICE1KG,Pishori Rice 1kg,230.00,B,60,Grains\n"
    "SUGAR1KG,Kabras Sugar 1kg,190.00,E,100,Sugar\n"
    "MILK500,Brookside Milk 500ml,65.00,A,200,Dairy\n"
    "MILK1L,Fresha Milk 1L,125.00,A,90,Dairy\n"
    "YOGHURT500,Tuzo Yoghurt 500ml,140.00,B,40,Dairy\n"
    "BREAD400,Supaloaf White Bread 400g,65.00,C,70,Bakery\n"
    "EGGS30,Kienyeji Eggs tray of 30,450.00,A,25,Fresh\n"
    "TOMATO1KG,Tomatoes 1kg,120.00,A,50,Fresh\n"
    "ONION1KG,Red Onions 1kg,110.00,A,50,Fresh\n"
    "SUKUMA,Sukuma Wiki bunch,30.00,A,100,Fresh\n"
    "COOKOIL1L,Fresh Fri Cooking Oil 1L,360.00,B,45,Cooking\n"
    "COOKFAT1KG,Kimbo Cooking Fat 1kg,420.00,B,30,Cooking\n"
    "SALT1KG,Kensalt 1kg,45.00,B,80,Cooking\n"
    "TEA250,Kericho Gold Tea 250g,160.00,B,60,Beverages\n"
    "COFFEE100,Dormans Coffee 100g,380.00,B,20,Beverages\n"
    "SODA500,Coca-Cola 500ml,70.00,B,150,Beverages\n"
    "WATER1L,Dasani Water 1L,60.00,B,150,Beverages\n"
    "JUICE1L,Pick n Peel Mango Juice 1L,220.00,B,35,Beverages\n"
    "SOAPBAR,Menengai Bar Soap 800g,175.00,B,60,Household\n"
    "OMO1KG,Omo Washing Powder 1kg,330.00,B,40,Household\n"
    "TISSUE10,Rosy Toilet Tissue 10 pack,420.00,B,30,Household\n"
    "MATCHES,Kiberiti Matches 10 boxes,50.00,B,100,Household\n"
    "AIRTIME100,Safaricom Airtime KES 100,100.00,D,1000,Airtime\n"
    "PARAFFIN1L,Paraffin 1L,180.00,B,60,Fuel\n"
    "CHARCOAL,Charcoal 2kg tin,150.00,D,40,Fuel\n"
    "BEANS1KG,Rosecoco Beans 1kg,220.00,A,45,Grains\n"
    "NDENGU1KG,Green Grams Ndengu 1kg,240.00,A,35,Grains\n"
    "SAFARI,Safari Biscuits 500g,150.00,B,50,Snacks\n"
    "CRISPS,Tropical Heat Crisps 150g,120.00,B,60,Snacks\n";

static volatile sig_atomic_t demo_stop = 0;

static void on_signal(int sig)
{
    (void)sig;
    demo_stop = 1;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !demo_stop) {
    }
}

/* Starts `duka ARGS…` as a child with stdout/stderr into log_path; it dies with us. */
static pid_t spawn(const char *log_path, char *const args[])
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execv("/proc/self/exe", args);
    _exit(127);
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int status;
    for (int i = 0; i < 100; i++) {
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
    *pid = 0;
}

typedef enum wait_result { WAIT_OK, WAIT_TIMEOUT, WAIT_EXITED, WAIT_STOPPED } wait_result;

/* Polls url until it answers 200 while *child runs. A child that exited is failed at once
 * (WAIT_EXITED, its wait status in *status, *child set to 0): whoever else answers on its
 * port is not it. */
static wait_result wait_http(const char *url, long deadline_ms, pid_t *child, int *status)
{
    int64_t end = duka_monotonic_ms() + deadline_ms;
    while (duka_monotonic_ms() < end && !demo_stop) {
        if (waitpid(*child, status, WNOHANG) == *child) {
            *child = 0;
            return WAIT_EXITED;
        }
        duka_http_reply r;
        duka_err e = {0};
        if (duka_http_request("GET", url, NULL, NULL, 0, 2000, &r, &e) == DUKA_OK) {
            long st = r.status;
            duka_http_reply_free(&r);
            if (st == 200 && waitpid(*child, status, WNOHANG) == 0)
                return WAIT_OK;
        }
        sleep_ms(100);
    }
    return demo_stop ? WAIT_STOPPED : WAIT_TIMEOUT;
}

/* Waits for a child server (what: "hub", "till") at url; on failure prints the one line. */
static bool wait_server(const char *what, const char *url, const char *listen, pid_t *child,
                        const char *log_path)
{
    int status = 0;
    switch (wait_http(url, 10000, child, &status)) {
    case WAIT_OK:
        return true;
    case WAIT_EXITED:
        cli_error("demo", DUKA_INTERNAL, "the %s exited (%s %d) before it answered on %s (see %s)",
                  what, WIFEXITED(status) ? "exit code" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), listen, log_path);
        return false;
    case WAIT_TIMEOUT:
        cli_error("demo", DUKA_INTERNAL, "the %s did not answer on %s within 10 s (see %s)", what,
                  listen, log_path);
        return false;
    case WAIT_STOPPED:
        return false;
    }
    return false;
}

/* Both addresses free, checked before anything is created: each is opened (bind + listen)
 * and held while the other is, then closed for the children to take. */
static int check_addresses_free(const char *cmd, const char *till_listen, const char *hub_listen)
{
    duka_err err = {0};
    int till_fd = -1, hub_fd = -1;
    duka_rc rc = duka_http_listen_open(till_listen, false, &till_fd, &err);
    if (rc == DUKA_OK)
        rc = duka_http_listen_open(hub_listen, false, &hub_fd, &err);
    if (till_fd >= 0)
        close(till_fd);
    if (hub_fd >= 0)
        close(hub_fd);
    if (rc == DUKA_USAGE)
        return cli_usage_error(cmd, "--hub-listen '%s' is not HOST:PORT", hub_listen);
    if (rc != DUKA_OK)
        return cli_fail(cmd, &err);
    return 0;
}

/* Writes s to out as one shell word: as it is when it holds only safe characters, else in
 * single quotes (so a path with a space still pastes as one argument). */
static void shell_word(const char *s, char *out, size_t n)
{
    if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789_./:@%+=,-") == strlen(s)) {
        snprintf(out, n, "%s", s);
        return;
    }
    size_t k = 0;
    if (k + 1 < n)
        out[k++] = '\'';
    for (const char *p = s; *p && k + 5 < n; p++) {
        if (*p == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *p;
        }
    }
    if (k + 1 < n)
        out[k++] = '\'';
    out[k] = '\0';
}

/* True once the hub database holds receipt_no. */
static bool hub_has_receipt(const char *hub_db, const char *business, const char *receipt_no)
{
    duka_hub_store *s = NULL;
    duka_err e = {0};
    json_t *rep = NULL;
    bool found = false;
    if (duka_hub_store_open(hub_db, false, &s, &e) == DUKA_OK &&
        duka_hub_report(s, business, &rep, &e) == DUKA_OK) {
        size_t i;
        const json_t *r;
        json_array_foreach(json_object_get(rep, "receipts"), i, r)
            found = found || strcmp(json_string_value(r), receipt_no) == 0;
    }
    json_decref(rep);
    duka_hub_store_close(s);
    return found;
}

static bool wait_receipt(const char *hub_db, const char *business, const char *receipt_no)
{
    int64_t end = duka_monotonic_ms() + DEMO_WAIT_MS;
    while (duka_monotonic_ms() < end && !demo_stop) {
        if (hub_has_receipt(hub_db, business, receipt_no))
            return true;
        sleep_ms(200);
    }
    return false;
}

/* Waits until the till holds receipt_no's eTIMS signature (its worker pulls it). */
static bool wait_signed(const char *till_db, const char *receipt_no, duka_etims_receipt *out)
{
    int64_t end = duka_monotonic_ms() + DEMO_WAIT_MS;
    while (duka_monotonic_ms() < end && !demo_stop) {
        sqlite3 *db = NULL;
        duka_err e = {0};
        bool found = false;
        if (duka_till_db_open(till_db, false, &db, &e) == DUKA_OK)
            duka_etims_receipt_load(db, receipt_no, out, &found, &e);
        duka_db_close(db);
        if (found)
            return true;
        sleep_ms(200);
    }
    return false;
}

/* Turns the simulator's outage on or off (its loopback control endpoint). */
static bool sim_outage(const char *sim_url, bool on)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/_sim/faults", sim_url);
    const char *body = on ? "{\"outage\":true}" : "{\"outage\":false}";
    duka_http_reply r;
    duka_err e = {0};
    bool ok = duka_http_request("POST", url, NULL, body, strlen(body), 2000, &r, &e) == DUKA_OK &&
              r.status == 200;
    duka_http_reply_free(&r);
    return ok;
}

/* The receipt's control-unit block, as the till prints it, and its QR for the terminal. */
static void show_signature(const duka_etims_receipt *r, const char *till_url)
{
    char intrl[96], sign[96];
    duka_etims_group4(r->intrl_data, intrl, sizeof(intrl));
    duka_etims_group4(r->rcpt_sign, sign, sizeof(sign));
    say("   CU invoice no %s   CU date/time %s   receipt %lld/%lld", r->cu_invoice_no,
        r->signed_at, (long long)r->rcpt_no, (long long)r->tot_rcpt_no);
    say("   internal data %s", intrl);
    say("   signature     %s", sign);
    say("   verify at     %s", r->qr_url);
    char *qr = NULL;
    duka_err e = {0};
    if (duka_etims_qr_terminal(r->qr_url, &qr, &e) == DUKA_OK) {
        fputs(qr, stdout);
        fflush(stdout);
    }
    free(qr);
    say("   (the same QR on the cashier's screen: %s/api/sales/%s/qr.svg)", till_url,
        r->receipt_no);
}

static int fail(const char *what)
{
    return cli_error("demo", DUKA_STORE, "%s", what);
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

static duka_rc sell(const char *till_db, const char *item1, const char *item2, duka_sale *sale,
                    duka_err *err)
{
    sqlite3 *db = NULL;
    duka_checkout_item items[2];
    duka_checkout_payment pay;
    char cmd_id[DUKA_UUID_STR_LEN + 1];
    duka_rc rc = duka_till_db_open(till_db, false, &db, err);
    if (rc == DUKA_OK && (rc = duka_checkout_parse_item(item1, 0, &items[0], err)) == DUKA_OK &&
        (rc = duka_checkout_parse_item(item2, 1, &items[1], err)) == DUKA_OK &&
        (rc = duka_checkout_parse_payment("cash", 0, &pay, err)) == DUKA_OK)
        rc = duka_checkout_commit(db, NULL, items, 2, &pay, sale, cmd_id, err);
    duka_db_close(db);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    const char *cmd = "demo";
    cli_option opts[] = {{"dir", true, NULL},
                         {"listen", true, NULL},
                         {"hub-listen", true, NULL},
                         {"etims-listen", true, NULL}};
    cli_args args = {.options = opts, .option_count = 4};
    if (cli_parse(cmd, argc, argv, &args))
        return 2;
    if (args.help)
        return cli_help(cmd);
    char dir[PATH_MAX], host[64], hub_listen[96], hub_url[128], till_url[128];
    char hub_db[PATH_MAX + 16], till_db[PATH_MAX + 16], csv[PATH_MAX + 16];
    char hub_log[PATH_MAX + 16], till_log[PATH_MAX + 16], health[160];
    char sim_listen[96], sim_url[128], sim_db[PATH_MAX + 16], sim_log[PATH_MAX + 16];
    char sim_health[200], etims_base[200];
    const char *listen = cli_get(&args, "listen") ? cli_get(&args, "listen") : "127.0.0.1:8080";
    const char *colon = strrchr(listen, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (colon == NULL || port < 1 || port > 65534 || (size_t)(colon - listen) >= sizeof(host))
        return cli_usage_error(cmd, "--listen '%s' is not HOST:PORT (port 1-65534)", listen);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (cli_get(&args, "hub-listen") != NULL)
        snprintf(hub_listen, sizeof(hub_listen), "%s", cli_get(&args, "hub-listen"));
    else
        snprintf(hub_listen, sizeof(hub_listen), "%s:%ld", host, port + 1);
    if (cli_get(&args, "etims-listen") != NULL)
        snprintf(sim_listen, sizeof(sim_listen), "%s", cli_get(&args, "etims-listen"));
    else
        snprintf(sim_listen, sizeof(sim_listen), "%s:%ld", host, port + 2);
    snprintf(hub_url, sizeof(hub_url), "http://%s", hub_listen);
    snprintf(till_url, sizeof(till_url), "http://%s", listen);
    snprintf(sim_url, sizeof(sim_url), "http://%s", sim_listen);
    /* Before anything is created: a busy address would otherwise be answered by whoever holds
     * it (another hub: "token rejected"). */
    int busy = check_addresses_free(cmd, listen, hub_listen);
    if (busy == 0)
        busy = check_addresses_free(cmd, sim_listen, hub_listen);
    if (busy != 0)
        return busy;
    /* The commands it suggests must work from any folder: the running binary's path and the
     * folder's, both absolute. */
    char exe[PATH_MAX], exe_word[PATH_MAX * 2];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (exe_len <= 0)
        return cli_error(cmd, DUKA_INTERNAL, "cannot find its own binary (/proc/self/exe)");
    exe[exe_len] = '\0';
    shell_word(exe, exe_word, sizeof(exe_word));
    char made[PATH_MAX];
    if (cli_get(&args, "dir")) {
        snprintf(made, sizeof(made), "%s", cli_get(&args, "dir"));
        if (mkdir(made, 0755) != 0 && errno != EEXIST)
            return cli_error(cmd, DUKA_STORE, "cannot create the --dir folder '%s': %s", made,
                             strerror(errno));
        if (dir_is_empty(made) != 1)
            return cli_error(cmd, DUKA_INPUT, "--dir '%s' is not an empty folder; give a new one",
                             made);
    } else {
        snprintf(made, sizeof(made), "/tmp/duka-demo-XXXXXX");
        if (mkdtemp(made) == NULL)
            return fail("cannot create a folder under /tmp");
    }
    if (realpath(made, dir) == NULL)
        return cli_error(cmd, DUKA_STORE, "cannot resolve the folder '%s': %s", made,
                         strerror(errno));
    snprintf(hub_db, sizeof(hub_db), "%s/hub.db", dir);
    snprintf(till_db, sizeof(till_db), "%s/till.db", dir);
    snprintf(csv, sizeof(csv), "%s/catalog.csv", dir);
    snprintf(hub_log, sizeof(hub_log), "%s/hub.log", dir);
    snprintf(till_log, sizeof(till_log), "%s/till.log", dir);
    snprintf(health, sizeof(health), "%s/v1/health", hub_url);
    snprintf(sim_db, sizeof(sim_db), "%s/etims-sim.db", dir);
    snprintf(sim_log, sizeof(sim_log), "%s/etims-sim.log", dir);
    snprintf(sim_health, sizeof(sim_health), "%s/_sim/health", sim_url);
    snprintf(etims_base, sizeof(etims_base), "%s/etims-api", sim_url);

    /* Ctrl-C ends the demo; children are stopped cleanly on the way out. */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    duka_err err = {0};
    duka_hub_store *store = NULL;
    char business[DUKA_BUSINESS_ID_LEN + 1], token[DUKA_TOKEN_MAX + 1];
    int imported = 0;
    FILE *f = fopen(csv, "w");
    if (f == NULL || fputs(demo_catalog, f) < 0 || fclose(f) != 0)
        return fail("cannot write the demo catalog");
    if (duka_hub_store_open(hub_db, true, &store, &err) ||
        /* A demo KRA PIN, so the receipts show where the shop's own goes. */
        duka_hub_business_create_with_pin(store, "Mama Njeri's Duka", "P051234567X", business,
                                          &err) ||
        duka_product_import_file(store, business, csv, &imported, &err) ||
        duka_hub_device_add(store, business, "T01", token, &err)) {
        duka_hub_store_close(store);
        return cli_fail(cmd, &err);
    }
    for (size_t i = 0; i < sizeof(demo_cashiers) / sizeof(demo_cashiers[0]); i++)
        if (duka_hub_cashier_add(store, business, demo_cashiers[i].name, demo_cashiers[i].role,
                                 demo_cashiers[i].pin, duka_clock_now_ms(NULL), NULL, &err)) {
            duka_hub_store_close(store);
            return cli_fail(cmd, &err);
        }
    duka_hub_store_close(store);

    /* The first thing a new user needs: where the cashier's screen is, and who may log in. */
    say("Open %s/ in a browser: the cashier's screen (log in as %s, PIN %s).", till_url,
        demo_cashiers[0].name, demo_cashiers[0].pin);
    say("duka demo — everything lives in %s", dir);
    say("  business  Mama Njeri's Duka (%s), %d products", business, imported);
    for (size_t i = 0; i < sizeof(demo_cashiers) / sizeof(demo_cashiers[0]); i++)
        say("  cashier   %-7s (%s) PIN %s", demo_cashiers[i].name, demo_cashiers[i].role,
            demo_cashiers[i].pin);
    pid_t hub = 0, till = 0, sim = 0;
    char *hub_args[] = {"duka", "hub", "--db", hub_db, "--listen", hub_listen, NULL};
    char *sim_args[] = {"duka", "sim", "etims", "--listen", sim_listen, "--state", sim_db, NULL};
    char till_listen[96];
    snprintf(till_listen, sizeof(till_listen), "%s", listen);
    char *till_args[] = {"duka", "till", "--db", till_db, "--listen", till_listen,
                         "--sync-interval", "2", NULL};
    int rc = 1;
    /* KRA's eTIMS, simulated on loopback; the hub forwards every sale's invoice to it. */
    sim = spawn(sim_log, sim_args);
    if (!wait_server("eTIMS simulator", sim_health, sim_listen, &sim, sim_log))
        goto out;
    setenv("ETIMS_BASE_URL", etims_base, 1); /* the hub (a child) takes it from here */
    say("  eTIMS     %s  (duka sim etims: KRA's OSCU API, simulated; log %s)", etims_base,
        sim_log);
    hub = spawn(hub_log, hub_args);
    if (!wait_server("hub", health, hub_listen, &hub, hub_log))
        goto out;
    say("  hub       %s  (database %s, log %s)", hub_url, hub_db, hub_log);
    {
        /* till init, in-process: check the token, create the database, pull the catalog. */
        sqlite3 *db = NULL;
        int64_t pulled = 0;
        if (duka_sync_check_hub(hub_url, token, "T01", NULL, NULL, false, NULL, &err) ||
            duka_till_db_open(till_db, true, &db, &err) || duka_db_begin(db, &err) ||
            duka_meta_set(db, DUKA_META_TERMINAL, "T01", &err) ||
            duka_meta_set(db, DUKA_META_HUB_URL, hub_url, &err) ||
            duka_meta_set(db, DUKA_META_TOKEN, token, &err) || duka_db_commit(db, &err) ||
            duka_sync_pull(db, &pulled, &err)) {
            duka_db_close(db);
            cli_fail(cmd, &err);
            goto out;
        }
        duka_db_close(db);
    }
    till = spawn(till_log, till_args);
    {
        char st_url[160];
        snprintf(st_url, sizeof(st_url), "%s/api/status", till_url);
        if (!wait_server("till", st_url, listen, &till, till_log))
            goto out;
    }
    say("  till T01  %s  (database %s, log %s; syncs every 2 s)", till_url, till_db, till_log);
    putchar('\n');

    duka_sale *sale = duka_sale_new();
    char total[32];
    if (sale == NULL || sell(till_db, "MAIZE2KG", "MILK500*2", sale, &err)) {
        duka_sale_free(sale);
        cli_fail(cmd, &err);
        goto out;
    }
    duka_format_cents(sale->total_cents, total, sizeof(total));
    say("1. Online sale %s, KES %s ...", sale->receipt_no, total);
    if (wait_receipt(hub_db, business, sale->receipt_no))
        say("   reached the hub.");
    say("2. Power cut at the back office: stopping the hub.");
    stop_child(&hub);
    if (sell(till_db, "SUGAR1KG", "BREAD400*2", sale, &err)) {
        duka_sale_free(sale);
        cli_fail(cmd, &err);
        goto out;
    }
    duka_format_cents(sale->total_cents, total, sizeof(total));
    char receipt[DUKA_RECEIPT_NO_MAX + 1];
    snprintf(receipt, sizeof(receipt), "%s", sale->receipt_no);
    duka_sale_free(sale);
    say("   The till keeps selling: sale %s, KES %s, committed with the hub down (sync pending).",
        receipt, total);
    sleep_ms(2500);
    {
        /* What the cashier's screen would say now: the till tried, and is waiting. */
        sqlite3 *db = NULL;
        json_t *st = NULL;
        if (duka_till_db_open(till_db, false, &db, &err) == DUKA_OK &&
            duka_till_status_json(db, NULL, &st, &err) == DUKA_OK)
            say("   Till status: %s, %lld sale(s) waiting in the outbox.",
                json_string_value(json_object_get(st, "connectivity")),
                (long long)json_integer_value(json_object_get(st, "pending")));
        json_decref(st);
        duka_db_close(db);
        duka_err_clear(&err);
    }
    say("3. Power is back: starting the hub again.");
    int64_t t0 = duka_monotonic_ms();
    hub = spawn(hub_log, hub_args);
    if (!wait_server("hub", health, hub_listen, &hub, hub_log))
        goto out;
    if (!wait_receipt(hub_db, business, receipt)) {
        if (!demo_stop)
            cli_error(cmd, DUKA_OFFLINE, "sale %s did not reach the hub within %d s (see %s)",
                      receipt, DEMO_WAIT_MS / 1000, till_log);
        rc = demo_stop ? 0 : 1;
        goto out;
    }
    say("   Sale %s arrived at the hub %.1f s after it came back — once, with the same receipt "
        "number.",
        receipt, (double)(duka_monotonic_ms() - t0) / 1000.0);
    {
        /* 4. KRA's eTIMS down: the sale stands, its receipt says "eTIMS pending" (never a
         * made-up signature); back, the hub forwards it and the till reprints it signed. */
        duka_etims_receipt sig;
        memset(&sig, 0, sizeof(sig));
        say("4. KRA's eTIMS goes down (the simulator's outage switch).");
        if (!sim_outage(sim_url, true)) {
            if (!demo_stop)
                cli_error(cmd, DUKA_OFFLINE, "the eTIMS simulator at %s did not take the outage",
                          sim_url);
            rc = demo_stop ? 0 : 1;
            goto out;
        }
        duka_sale *s3 = duka_sale_new();
        if (s3 == NULL || sell(till_db, "TEA250", "SUGAR1KG", s3, &err)) {
            duka_sale_free(s3);
            cli_fail(cmd, &err);
            goto out;
        }
        char r3[DUKA_RECEIPT_NO_MAX + 1];
        snprintf(r3, sizeof(r3), "%s", s3->receipt_no);
        duka_format_cents(s3->total_cents, total, sizeof(total));
        duka_sale_free(s3);
        if (!wait_receipt(hub_db, business, r3)) {
            if (!demo_stop)
                cli_error(cmd, DUKA_OFFLINE, "sale %s did not reach the hub within %d s (see %s)",
                          r3, DEMO_WAIT_MS / 1000, till_log);
            rc = demo_stop ? 0 : 1;
            goto out;
        }
        say("   Sale %s, KES %s, is at the hub; its receipt says \"eTIMS: pending\" until KRA "
            "signs it.",
            r3, total);
        sleep_ms(3000);
        say("   KRA's eTIMS is back.");
        t0 = duka_monotonic_ms();
        if (!sim_outage(sim_url, false) || !wait_signed(till_db, r3, &sig)) {
            if (!demo_stop)
                cli_error(cmd, DUKA_OFFLINE, "sale %s was not signed within %d s (see %s)", r3,
                          DEMO_WAIT_MS / 1000, hub_log);
            rc = demo_stop ? 0 : 1;
            goto out;
        }
        say("   Signed %.1f s later; the till reprints the receipt with the control unit's block:",
            (double)(duka_monotonic_ms() - t0) / 1000.0);
        show_signature(&sig, till_url);
        snprintf(receipt, sizeof(receipt), "%s", r3);
    }
    putchar('\n');
    char till_word[PATH_MAX * 2], hub_word[PATH_MAX * 2], hub_log_word[PATH_MAX * 2];
    shell_word(till_db, till_word, sizeof(till_word));
    shell_word(hub_db, hub_word, sizeof(hub_word));
    shell_word(hub_log, hub_log_word, sizeof(hub_log_word));
    say("Try, in another terminal, from any folder (the demo keeps running until Ctrl-C):");
    say("  %s sell --db %s RICE1KG SUKUMA*3 --pay mpesa:QK12AB34CD", exe_word, till_word);
    say("  %s status --db %s", exe_word, till_word);
    say("  %s receipt --db %s %s", exe_word, till_word, receipt);
    say("  %s hub outbox --db %s --business %s", exe_word, hub_word, business);
    say("  %s queue --db %s --json", exe_word, till_word);
    say("  %s hub report --db %s --business %s", exe_word, hub_word, business);
    say("  curl -s %s/api/status", till_url);
    char jar[PATH_MAX + 16], jar_word[PATH_MAX * 2 + 32];
    snprintf(jar, sizeof(jar), "%s/cookies.txt", dir);
    shell_word(jar, jar_word, sizeof(jar_word));
    say("  curl -s -c %s -X POST %s/api/login -d '{\"cashier\":\"%s\",\"pin\":\"%s\"}'",
        jar_word, till_url, demo_cashiers[0].name, demo_cashiers[0].pin);
    say("  curl -s -b %s -X POST %s/api/sales -d '{\"items\":[{\"sku\":\"SODA500\",\"qty\":2}],\"pay\":\"cash\"}'",
        jar_word, till_url);
    say("Stop the hub (kill %d) and keep selling: the sales wait in the till's outbox.", (int)hub);
    say("Start it again with:");
    say("  ETIMS_BASE_URL=%s %s hub --db %s --listen %s >>%s 2>&1 &", etims_base, exe_word,
        hub_word, hub_listen, hub_log_word);
    say("and the till sends them within seconds (that hub is then yours to stop: Ctrl-C here");
    say("stops what the demo started).");
    while (!demo_stop)
        pause();
    rc = 0;
out:
    say("Stopping the till and the hub ...");
    stop_child(&till);
    stop_child(&hub);
    stop_child(&sim);
    say("Stopped. The data stays in %s.", dir);
    return rc;
}

/*
 * main.c — `duka`, one binary with subcommands (like git). Each command lives in src/cli/;
 * this file is the table of commands and their help.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/json_arena.h"

typedef struct command {
    const char *name; /* one or two words */
    int (*run)(int argc, char **argv);
    const char *usage;
    const char *help;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "duka demo [--dir DIR] [--listen HOST:PORT] [--hub-listen HOST:PORT]",
     "Runs a hub and a till on SQLite in DIR (a fresh folder by default) with a seeded Kenyan\n"
     "catalog, shows a sale made while the hub is down arriving once it is back, and keeps\n"
     "running until Ctrl-C. --listen is the till's address (default 127.0.0.1:8080); the hub\n"
     "listens on the next port unless --hub-listen says otherwise."},
    {"hub init", cmd_hub_init,
     "duka hub init --db DB --business NAME [--kra-pin PIN] [--allow-duplicate-name] [--json]",
     "Creates the hub database DB if needed and a business in it. Prints the business id\n"
     "(--json: {\"business_id\", \"name\", \"kra_pin\"}). A name another business has (spaces\n"
     "at the ends and letter case aside) is refused with that business's id, and nothing is\n"
     "written, unless --allow-duplicate-name; a lost id: duka business list. --kra-pin: the\n"
     "business's KRA PIN (A or P, 9 digits, a letter: P051234567X), printed on its receipts.\n"
     "DB is a file (SQLite) or postgres://USER[:PASS]@HOST[:PORT]/DATABASE (PostgreSQL): run\n"
     "it there as the role that owns the tables; it creates or migrates the schema (versions\n"
     "in schema_migrations) and grants the role duka_hub, the one duka hub runs as, what it\n"
     "needs. Again, or as duka_hub, it only adds a business."},
    {"hub report", cmd_hub_report, "duka hub report --db DB --business ID [--json]",
     "Sales the hub holds for a business: {\"sales\", \"receipts\", \"conflicts\",\n"
     "\"total_cents\", \"tax_cents\", \"conflict_details\", \"conflict_details_omitted\",\n"
     "\"conflict_total_cents\"}. A conflict (a receipt number sent again under another command:\n"
     "a restored or cloned till) is not in the totals and cannot be resolved yet; each is\n"
     "listed, newest first (the newest 100; conflict_details_omitted counts the rest), with\n"
     "what it was for, and conflict_total_cents adds them all up. Safe while the hub serves DB\n"
     "(a file or a postgres:// URL)."},
    {"business list", cmd_business_list, "duka business list --db DB [--json]",
     "Every business of the hub, oldest first: {\"businesses\": [{\"business_id\", \"name\",\n"
     "\"kra_pin\", \"created\", \"devices\"}]} (devices: active ones); a table without --json.\n"
     "Finds a lost business id. On PostgreSQL it reads every business through one narrow\n"
     "exception to row-level security (names, KRA PINs, creation times, device counts)."},
    {"business set", cmd_business_set,
     "duka business set --db DB --business ID [--name NAME] [--kra-pin PIN]\n"
     "                  [--allow-duplicate-name] [--json]",
     "Renames a business (the same rule as hub init: a name another business has is refused\n"
     "unless --allow-duplicate-name) and/or sets its KRA PIN (--kra-pin \"\" clears it). Tills\n"
     "learn the new name and PIN at their next pull. --json: the business as business list\n"
     "shows it."},
    {"hub audit", cmd_hub_audit, "duka hub audit --db DB [--business ID] [--limit N] [--json]",
     "The hub's audit log, newest first: authentication failures (wrong, malformed or revoked\n"
     "tokens), refused commands (a command id reused with another payload or from another\n"
     "device, invalid sales) and revoked devices. On PostgreSQL, row-level security shows a\n"
     "business's events only with --business; without it, the events no business could be\n"
     "named for (unknown or malformed tokens)."},
    {"hub", cmd_hub_serve,
     "duka hub --db DB --listen HOST:PORT [--tls-cert PEM --tls-key PEM] [--config F]",
     "Serves the hub's sync API (see docs/PROTOCOL.md) until SIGINT/SIGTERM; over HTTPS with\n"
     "--tls-cert/--tls-key (or put it behind a TLS-terminating proxy). Connections: at most\n"
     "256; one idle for HUB_CONNECTION_TIMEOUT (30 s) is closed; at most\n"
     "HUB_CONNECTIONS_PER_IP (64) from one address, 0 for no such limit (set it behind a\n"
     "proxy, where every till has the proxy's address). Settings as for duka config.\n"
     "DB: a file (SQLite, one hub) or postgres://duka_hub[:PASS]@HOST[:PORT]/DATABASE\n"
     "(PostgreSQL: several hubs may serve one database; connect as the role duka_hub, not as\n"
     "the tables' owner; duka hub init first). With PostgreSQL the settings come from --config,\n"
     "$DUKA_CONFIG and the environment (no duka.conf beside a URL). A lost connection (a\n"
     "restarted server) is reset at the next request; the request in flight gets 503."},
    {"device add", cmd_device_add, "duka device add --db DB --business ID --terminal T01 [--json]",
     "Registers a till terminal and prints its device token, once (--json: {\"token\"}).\n"
     "The hub keeps only a hash of it. For a revoked terminal it issues a new token."},
    {"device list", cmd_device_list, "duka device list --db DB --business ID [--json]",
     "The business's devices by terminal: {\"devices\": [{\"terminal\", \"device_id\", \"status\"\n"
     "(active|revoked), \"created\", \"till_bound\"}]}. till_bound: the token is bound to the\n"
     "till database that used it first (another one is refused with 409 token_in_use)."},
    {"device revoke", cmd_device_revoke,
     "duka device revoke --db DB --business ID --terminal T01 [--json]",
     "Revokes a till's token (a stolen or retired terminal): the hub answers 401 from then on\n"
     "and the till keeps its queue untouched until it gets a new token: duka device add for the\n"
     "same terminal issues one (same device, so its earlier commands stay its own; the new\n"
     "token is bound to no till database until one uses it), and duka till init --token sets\n"
     "it on the till."},
    {"product import", cmd_product_import,
     "duka product import --db DB --business ID FILE.csv [--json]",
     "Loads products from CSV with header sku,name,price,tax,stock[,category]. price: KES with\n"
     "2 decimals (VAT inclusive); tax: eTIMS band A exempt, B 16%, C 0%, D non-VAT, E 8%;\n"
     "stock: the level to set. All or nothing: a bad line is named and nothing is written."},
    {"product archive", cmd_product_archive,
     "duka product archive --db DB --business ID SKU [--json]",
     "Stops selling a product: tills receive it as a tombstone at their next pull. Past sales\n"
     "of it stand."},
    {"product list", cmd_product_list,
     "duka product list --db DB --business ID [--archived] [--json]",
     "The business's catalog at the hub by SKU: {\"products\": [{\"sku\", \"name\", \"price\",\n"
     "\"tax\", \"category\", \"archived\", \"stock_milli\"}]} (price in cents, stock in\n"
     "thousandths of a unit); archived products only with --archived."},
    {"stock", cmd_stock, "duka stock --db DB --business ID [--negative] [--json]",
     "Stock levels per SKU (the sum of the SKU's stock movements: imports less sales) for every\n"
     "product of the catalog and every SKU sold: {\"products\": [{\"sku\", \"name\",\n"
     "\"stock_milli\", \"negative\"}], \"negative\": N}. A level may be below zero: sales are\n"
     "never refused for stock, so those are flagged NEGATIVE to be counted and reconciled.\n"
     "--negative lists only those."},
    {"till init", cmd_till_init,
     "duka till init --db FILE --hub URL --terminal T01 --token TOKEN [--ca-file PEM]\n"
     "               [--allow-plain-http] [--offline] [--json]",
     "Creates the till database, checks the token with the hub and pulls the catalog.\n"
     "--offline skips the check (the catalog arrives with the first sync). The hub's HTTPS\n"
     "certificate is always verified; --ca-file trusts a self-signed one. Plain http:// to a\n"
     "hub that is not on this machine is refused unless --allow-plain-http (a trusted LAN).\n"
     "Run it again with a new --token after duka device revoke / device add."},
    {"till", cmd_till_serve,
     "duka till --db FILE --listen HOST:PORT [--sync-interval S] [--batch N] [--offline] [--config F]",
     "Serves the till's local API (GET /api/status, /api/catalog, /api/history; POST /api/sales,\n"
     "/api/sync, /api/offline) with the background sync worker: it probes the hub (every 30 s;\n"
     "1 s, 2 s, 4 s while offline), syncs within seconds of the hub coming back, every S seconds\n"
     "while online (OFFLINE_QUEUE_PROCESS_INTERVAL, default 30 s), and when sales are made.\n"
     "--offline starts with the offline switch on (drills, tests)."},
    {"sell", cmd_sell, "duka sell --db FILE SKU[*QTY]... [--pay cash|mpesa:CODE|card:REF] [--json]",
     "Commits a sale on the till, with no network: the receipt number is shown only once the\n"
     "sale and its outbox command are on disk. QTY may have up to 3 decimals (RICE*0.5).\n"
     "--json: {\"receipt_no\", \"total\", \"sync\": \"pending\"} (amounts in cents)."},
    {"sync", cmd_sync, "duka sync --db FILE [--batch N] [--config F] [--json]",
     "Pushes pending sales to the hub and pulls catalog changes now. Exit 1 when the hub is\n"
     "unreachable (nothing is lost; selling goes on). --json: {\"pushed\", \"pulled\", \"failed\",\n"
     "\"conflicts\", \"duration_ms\", \"connectivity\"}. While `duka till` is syncing the same\n"
     "database this waits for it (and says so)."},
    {"status", cmd_status, "duka status --db FILE [--json]",
     "The till's connectivity as last seen, pending/failed/conflict counts, the age of the oldest\n"
     "pending item, the last sync and error, and alerts (backlog over\n"
     "OFFLINE_QUEUE_ALERT_THRESHOLD, offline over ALERT_OFFLINE_AFTER, failed items)."},
    {"queue retry", cmd_queue_retry, "duka queue retry --db FILE ID|--all-failed [--json]",
     "Puts failed items (by outbox id or command id, or all of them) back in the queue with\n"
     "their attempts reset; the next sync sends them."},
    {"queue", cmd_queue, "duka queue --db FILE [--status S] [--limit N] [--json]",
     "Lists outbox items (S: pending, processing, done, failed, conflict)."},
    {"history", cmd_history, "duka history --db FILE [--limit N] [--json]",
     "Sync attempts, newest first: time, direction, items, ok, duplicates, failed, conflicts,\n"
     "HTTP status, duration, error."},
    {"config", cmd_config, "duka config --db FILE [--config F] [--json]",
     "The effective settings and where each came from (default, file, environment). The file is\n"
     "--config F, else $DUKA_CONFIG, else duka.conf beside the database: NAME=value lines.\n"
     "HUB_* settings are the hub's (duka config --db hub.db shows what duka hub will use)."},
    {"catalog", cmd_catalog, "duka catalog --db FILE [--json]",
     "The till's catalog: {\"products\": [{\"sku\", \"name\", \"price\", \"tax\"}]}."},
};

#define COMMAND_COUNT (int)(sizeof(commands) / sizeof(commands[0]))

static void print_overview(FILE *out)
{
    fprintf(out, "duka — offline-first point of sale (till, hub, sync)\n\nCommands:\n");
    for (int i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out, "\nEvery command exits 0 on success, 1 with one line on stderr on failure, 2 on\n"
                 "bad usage. `duka help CMD` or `duka CMD --help` explains one command.\n");
}

int cli_help(const char *name)
{
    for (int i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].help);
            return 0;
        }
    }
    print_overview(stdout);
    return 0;
}

/* Finds the longest command whose words start argv; *used gets the number of words. */
static const command *find_command(int argc, char **argv, int *used)
{
    const command *best = NULL;
    for (int i = 0; i < COMMAND_COUNT; i++) {
        const char *space = strchr(commands[i].name, ' ');
        if (space == NULL) {
            if (strcmp(argv[0], commands[i].name) == 0 && best == NULL) {
                best = &commands[i];
                *used = 1;
            }
        } else if (argc >= 2 && strncmp(argv[0], commands[i].name, (size_t)(space - commands[i].name)) == 0 &&
                   argv[0][space - commands[i].name] == '\0' && strcmp(argv[1], space + 1) == 0) {
            *used = 2;
            return &commands[i];
        }
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 3) {
            char name[64];
            snprintf(name, sizeof(name), "%s%s%s", argv[2], argc >= 4 ? " " : "", argc >= 4 ? argv[3] : "");
            return cli_help(name);
        }
        print_overview(stdout);
        return 0;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "duka: cannot initialise libsodium\n");
        return 1;
    }
    /* jansson's allocation functions, before any thread: plain malloc and free outside a
     * request's arena (common/json_arena.h). */
    duka_json_arena_install();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "duka: cannot initialise libcurl\n");
        return 1;
    }
    int used = 0;
    const command *c = find_command(argc - 1, argv + 1, &used);
    if (c == NULL) {
        fprintf(stderr, "duka: unknown command '%s' (see: duka help)\n", argv[1]);
        curl_global_cleanup();
        return 2;
    }
    int rc = c->run(argc - 1 - used, argv + 1 + used);
    curl_global_cleanup();
    return rc;
}

/*
 * main.c — `duka`, one binary with subcommands (like git). Each command lives in src/cli/;
 * this file is the table of commands and their help.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdbool.h>
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
    {"demo", cmd_demo,
     "duka demo [--dir DIR] [--listen HOST:PORT] [--hub-listen HOST:PORT] [--etims-listen "
     "HOST:PORT]",
     "Runs a hub, a till and KRA's eTIMS (duka sim etims) on SQLite in DIR (a fresh folder by\n"
     "default) with a seeded Kenyan catalog; shows a sale made while the hub is down arriving\n"
     "once it is back, and one made while eTIMS is down signed once it is back (its receipt's\n"
     "control-unit block and QR printed); keeps running until Ctrl-C. --listen is the till's\n"
     "address (default 127.0.0.1:8080); the hub listens on the next port and the simulator on\n"
     "the one after unless --hub-listen / --etims-listen say otherwise. Every address must be\n"
     "free: a busy one stops it before it creates anything. It prints commands to try\n"
     "(absolute paths: they work from any folder), including how to stop the hub and start it\n"
     "again."},
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
     "\"conflict_total_cents\", \"cashiers\"}; cashiers: the sales per cashier of the sale\n"
     "[{\"cashier_id\" (\"\" for none), \"name\", \"sales\", \"total_cents\"}]. A conflict (a\n"
     "receipt number sent again under another command: a restored or cloned till) is not in\n"
     "the totals and cannot be resolved yet; each is\n"
     "listed, newest first (the newest 100; conflict_details_omitted counts the rest), with\n"
     "what it was for, and conflict_total_cents adds them all up. Safe while the hub serves DB\n"
     "(a file or a postgres:// URL)."},
    {"hub outbox", cmd_hub_outbox,
     "duka hub outbox --db DB --business ID [--status S] [--limit N] [--json]",
     "What the hub still has to send to the outside world (KRA eTIMS invoices): eTIMS's\n"
     "health as the forwarder last saw it (online, degraded, offline; off when no hub forwards),\n"
     "the counts, and the items newest first (at most --limit, default 50, at most 1000;\n"
     "--status pending|processing|awaiting|done|failed), each with its invcNo, attempts and\n"
     "last error. --json: {\"items\": [...], \"etims\": {\"state\", \"pending\", \"failed\",\n"
     "\"oldest_unsent_ms\", \"max_unsent_ms\", \"overdue\", ...}}. An invoice is failed only\n"
     "when eTIMS refused it or answered errors 5 times (OFFLINE_QUEUE_MAX_RETRIES); eTIMS down\n"
     "or silent uses none. An invoice waiting longer than ETIMS_MAX_UNSENT (1 day) is an ALERT\n"
     "line (overdue: true), as in the hub's log. Safe while the hub serves DB."},
    {"hub outbox retry", cmd_hub_outbox_retry,
     "duka hub outbox retry --db DB --business ID (--id N | --all) [--json]",
     "Puts a failed item (or every failed item of the business) back in the hub's queue with\n"
     "its attempts reset; the forwarder sends it again with the same invcNo. --json:\n"
     "{\"retried\": N}."},
    {"business list", cmd_business_list, "duka business list --db DB [--json]",
     "Every business of the hub, oldest first: {\"businesses\": [{\"business_id\", \"name\",\n"
     "\"kra_pin\", \"created\", \"devices\"}]} (devices: active ones); a table without --json.\n"
     "Finds a lost business id. On PostgreSQL it reads every business through one narrow\n"
     "exception to row-level security (names, KRA PINs, creation times, device counts)."},
    {"business set", cmd_business_set,
     "duka business set --db DB --business ID [--name NAME] [--kra-pin PIN]\n"
     "                  [--mpesa-shortcode N] [--allow-duplicate-name] [--json]",
     "Renames a business (the same rule as hub init: a name another business has is refused\n"
     "unless --allow-duplicate-name) and/or sets its KRA PIN (--kra-pin \"\" clears it). Tills\n"
     "learn the new name and PIN at their next pull. --mpesa-shortcode: the paybill or till\n"
     "number customers pay (5 to 7 digits); the hub registers its C2B URLs with Daraja and\n"
     "verifies typed M-Pesa codes against what Safaricom reports to it. --json: the business\n"
     "as business list shows it, with mpesa_shortcode."},
    {"hub audit", cmd_hub_audit, "duka hub audit --db DB [--business ID] [--limit N] [--json]",
     "The hub's audit log, newest first: authentication failures (wrong, malformed or revoked\n"
     "tokens), refused commands (a command id reused with another payload or from another\n"
     "device, invalid sales) and revoked devices. On PostgreSQL, row-level security shows a\n"
     "business's events only with --business; without it, the events no business could be\n"
     "named for (unknown or malformed tokens)."},
    {"hub", cmd_hub_serve,
     "duka hub --db DB --listen HOST:PORT [--tls-cert PEM --tls-key PEM] [--reuse-port]\n"
     "         [--config F]",
     "Serves the hub's sync API (see docs/PROTOCOL.md) until SIGINT/SIGTERM; over HTTPS with\n"
     "--tls-cert/--tls-key (or put it behind a TLS-terminating proxy). Connections: at most\n"
     "256; one idle for HUB_CONNECTION_TIMEOUT (30 s) is closed; at most\n"
     "HUB_CONNECTIONS_PER_IP (64) from one address, 0 for no such limit (set it behind a\n"
     "proxy, where every till has the proxy's address). Settings as for duka config.\n"
     "DB: a file (SQLite, one hub) or postgres://duka_hub[:PASS]@HOST[:PORT]/DATABASE\n"
     "(PostgreSQL: several hubs may serve one database; connect as the role duka_hub, not as\n"
     "the tables' owner; duka hub init first). With PostgreSQL the settings come from --config,\n"
     "$DUKA_CONFIG and the environment (no duka.conf beside a URL). A lost connection (a\n"
     "restarted server) is reset at the next request; the request in flight gets 503.\n"
     "A port another process listens on is refused at start (exit 1). --reuse-port lets\n"
     "several duka hub processes that all give it share one port, the kernel spreading the\n"
     "connections over them: hubs on one PostgreSQL database, which are stateless."},
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
    {"cashier add", cmd_cashier_add,
     "duka cashier add --db DB --business ID --name NAME --role cashier|manager --pin PIN|-\n"
     "                 [--json]",
     "Adds a cashier of the business (--json: {\"cashier_id\", \"name\", \"role\"}). NAME: 1 to 40\n"
     "bytes of text, unique in the business (letter case aside). PIN: 4 to 8 digits; --pin -\n"
     "reads it from stdin's first line, so it is not seen in ps. The hub keeps only its argon2id\n"
     "hash; tills get the cashier at their next sync and log in with the PIN offline too. At\n"
     "most 100 cashiers a business. A manager may also switch the till offline."},
    {"cashier list", cmd_cashier_list, "duka cashier list --db DB --business ID [--json]",
     "The business's cashiers by name, inactive ones too: {\"cashiers\": [{\"cashier_id\",\n"
     "\"name\", \"role\", \"active\"}]} (never a PIN or its hash)."},
    {"cashier set", cmd_cashier_set,
     "duka cashier set --db DB --business ID --name NAME [--pin PIN|-] [--role R]\n"
     "                 [--active yes|no] [--json]",
     "Changes a cashier's PIN, role or both, or deactivates one who left (--active no: the\n"
     "till refuses their login and ends their session at its next sync; past sales keep\n"
     "their name). A wrong-PIN lockout on a till is not reset by a new PIN: it runs out."},
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
     "               [--allow-plain-http] [--offline] [--replace] [--json]",
     "Creates the till database, checks the token with the hub and pulls the catalog (and the\n"
     "shop's name and KRA PIN for the receipts). A token belongs to one till database: the hub\n"
     "binds it to this one, and refuses it to any other (their receipt numbers would collide).\n"
     "--replace moves the token to this database and retires the one that had it: for a till\n"
     "replaced by a new machine, when the old one is gone or all its sales reached the hub\n"
     "(sales it still holds are refused from then on; duka status there shows them).\n"
     "--offline skips the check (the catalog arrives with the\n"
     "first sync). The hub's HTTPS certificate is always verified; --ca-file trusts a\n"
     "self-signed one. Plain http:// to a hub that is not on this machine is refused unless\n"
     "--allow-plain-http (a trusted LAN). Run it again with a new --token after duka device\n"
     "revoke / device add."},
    {"till", cmd_till_serve,
     "duka till --db FILE --listen HOST:PORT [--sync-interval S] [--batch N] [--offline] [--config F]",
     "Serves the cashier's screen at http://HOST:PORT/ (embedded in duka: works with no\n"
     "network) and the till's local API (docs/PROTOCOL.md: /api/login, /api/sales, /api/status,\n"
     "/api/queue, ...; every write needs a cashier's session, reads are open on loopback), with\n"
     "the background sync worker: it probes the hub (every 30 s;\n"
     "1 s, 2 s, 4 s while offline), syncs within seconds of the hub coming back, every S seconds\n"
     "while online (OFFLINE_QUEUE_PROCESS_INTERVAL, default 30 s), and when sales are made.\n"
     "--offline starts with the offline switch on (drills, tests)."},
    {"sell", cmd_sell,
     "duka sell --db FILE SKU[*QTY]... [--pay TENDER]... [--cashier NAME] [--confirm-amount]\n"
     "          [--json]",
     "Commits a sale on the till, with no network: the receipt number is shown only once the\n"
     "sale and its outbox command are on disk, then the receipt is printed. QTY may have up to\n"
     "3 decimals (RICE*0.5). TENDER: cash | cash:AMOUNT (cash handed over: the change is\n"
     "given) | mpesa:CODE[:AMOUNT] | card:REF[:AMOUNT]; AMOUNT in KES. Several --pay split the\n"
     "bill; the one without an amount pays the rest (default: cash for all). A line above\n"
     "SALE_MAX_LINE_AMOUNT or a sale above SALE_MAX_AMOUNT is refused unless --confirm-amount.\n"
     "An M-Pesa code already used on this till is sold with a warning. A `duka till` serving\n"
     "FILE is told to sync at once. --cashier NAME records an active cashier of this till\n"
     "(duka cashier add on the hub, then a sync) on the sale and its receipt; no PIN here:\n"
     "whoever runs this holds the till's database. --json: {\"receipt_no\", \"total\", \"tax\",\n"
     "\"sync\", \"command_id\", \"payment_status\", \"change\", \"payments\", \"warnings\",\n"
     "\"cashier\"} (cents; cashier {\"id\", \"name\"} or null)."},
    {"refund", cmd_refund,
     "duka refund --db FILE RECEIPT_NO LINE[*QTY]... [--reason CODE] [--to METHOD]\n"
     "          [--cashier NAME] [--json]",
     "Gives back (part of) a sale of this till, with no network: a refund receipt with its own\n"
     "number (the till's next), printed like a sale's. LINE is the sale's line as printed (1 is\n"
     "the first); QTY how much of it (default: all that is left of it). Never more than sold:\n"
     "a line's refunds add up to at most its quantity and total. --reason: the eTIMS refund\n"
     "reason, 01 missing quantity, 02 missing item, 03 damaged, 04 wasted, 05 raw material\n"
     "shortage, 06 refund (default). --to cash|mpesa|card: how the money goes back (default\n"
     "cash). The hub checks it again within the sale and sends eTIMS a credit note; the\n"
     "signed credit note comes back by pull (duka receipt). --json as for duka sell, with\n"
     "\"kind\": \"refund\", \"original_receipt_no\", \"reason\"."},
    {"receipt", cmd_receipt, "duka receipt --db FILE RECEIPT_NO [--json]",
     "Prints a committed sale's receipt again (shop, KRA PIN, date and time in SHOP_TIMEZONE,\n"
     "cashier, unit price x quantity, VAT per band, payments with M-Pesa code, change). --json\n"
     "adds the sale as it goes to the hub and the receipt as \"text\". A refund's receipt names\n"
     "its sale; a sale's lists the refunds made of it (\"refunds\" in --json)."},
    {"sync", cmd_sync, "duka sync --db FILE [--batch N] [--config F] [--json]",
     "Pushes pending sales to the hub and pulls catalog changes now. Exit 1 when the hub is\n"
     "unreachable (nothing is lost; selling goes on). --json: {\"pushed\", \"pulled\", \"failed\",\n"
     "\"conflicts\", \"duration_ms\", \"connectivity\"}, with \"error\": {\"code\", \"message\"} when it\n"
     "fails. While `duka till` is syncing the same database this waits for it (and says so)."},
    {"status", cmd_status, "duka status --db FILE [--json]",
     "The till's connectivity — live while a `duka till` serves FILE (\"service\": \"running\"),\n"
     "else as last seen and how long ago — pending/failed/conflict counts, the age of the\n"
     "oldest pending item, the last sync and error, and alerts (backlog over\n"
     "OFFLINE_QUEUE_ALERT_THRESHOLD, offline over ALERT_OFFLINE_AFTER, failed items, settings\n"
     "ignored)."},
    {"queue retry", cmd_queue_retry, "duka queue retry --db FILE ID|--all-failed [--json]",
     "Puts failed items (by outbox id or command id, or all of them) back in the queue with\n"
     "their attempts reset; the next sync sends them."},
    {"queue", cmd_queue,
     "duka queue --db FILE [--status S] [--limit N] [--offset M] [--json]",
     "Lists outbox items (S: pending, processing, done, failed, conflict): failed first, then\n"
     "conflicts, processing and pending (oldest first), then done (newest first), N at a time\n"
     "(default 100) from M. --json: {\"items\", \"total\", \"offset\", \"limit\", \"more\"}."},
    {"history", cmd_history, "duka history --db FILE [--limit N] [--json]",
     "Sync attempts, newest first: time, direction, items, ok, duplicates, failed, conflicts,\n"
     "HTTP status, duration, error. Empty pulls in a row are one row with their count\n"
     "(\"repeats\") and the time of the last (\"last\")."},
    {"config", cmd_config, "duka config --db FILE [--config F] [--json]",
     "The effective settings and where each came from (default, file, environment). The file is\n"
     "--config F, else $DUKA_CONFIG, else duka.conf beside the database: NAME=value lines.\n"
     "A bad value or an unknown name never stops a command (selling goes on with the default,\n"
     "with a warning); duka config lists them as IGNORED and exits 1 while any remain.\n"
     "HUB_* settings are the hub's (duka config --db hub.db shows what duka hub will use)."},
    {"sim", cmd_sim,
     "duka sim etims --listen HOST:PORT --state FILE [--latency-ms N] [--fail-rate P]\n"
     "               [--timeout-after-accept P] [--outage-every S --outage-for S]\n"
     "               [--sequence-window N] [--seed N] [--taxpayer-name NAME]\n"
     "               [--single-credit-note]\n"
     "       duka sim mpesa --listen HOST:PORT --state FILE [--latency-ms N] [--fail-rate P]\n"
     "               [--timeout-after-accept P] [--outage-every S --outage-for S]\n"
     "               [--callback-delay-ms N] [--callback-twice P] [--callback-never P]\n"
     "               [--spike-arrest-per-s N] [--answer A] [--answer-after-ms N]\n"
     "               [--prompt-expiry-ms N] [--token-life-s N] [--consumer-key K]\n"
     "               [--consumer-secret S] [--passkey P] [--msisdn plain|masked|sha256]\n"
     "               [--seed N]",
     "A simulator of KRA's eTIMS OSCU API at http://HOST:PORT/etims-api (selectInitOsdcInfo,\n"
     "saveTrnsSalesOsdc, selectInvoiceDetails), for tests and demos; serves until\n"
     "SIGINT/SIGTERM. It checks every field of an invoice and its VAT arithmetic, numbers\n"
     "without gaps per taxpayer branch, answers 994 to a number sent again and 922 to a credit\n"
     "note beyond its invoice, and signs what it accepts. Devices, invoices and counters live\n"
     "in the SQLite file FILE (created when missing): a restart remembers. Faults: every answer\n"
     "N ms late; a share P of saves answers 999 and keeps nothing; a share P of saves is kept\n"
     "but its reply held until the client gives up (130 s at most); 503 for S s every S s;\n"
     "--sequence-window N: 921 for an invcNo more than N past the last one with none missing;\n"
     "--single-credit-note: a second credit note of one invoice is 922. --seed: the fault\n"
     "draws (default 1). At run time, from this machine only: POST /_sim/faults {\"outage\",\n"
     "\"fail_rate\", \"latency_ms\", \"timeout_after_accept\", \"sequence_window\", ...},\n"
     "GET /_sim/invoices[?tin=&bhfId=] (what it kept, gaps, counts), GET /_sim/health.\n"
     "\n"
     "duka sim mpesa: a simulator of Safaricom's M-Pesa Daraja API at http://HOST:PORT\n"
     "(/oauth/v1/generate, /mpesa/stkpush/v1/processrequest, /mpesa/stkpushquery/v1/query,\n"
     "/mpesa/c2b/v1/registerurl and simulate, /mpesa/transactionstatus/v1/query), with\n"
     "simulated customers behind it: each prompt is answered A (pay, cancel, wrong-pin,\n"
     "insufficient, unreachable, ignore; default pay) N ms later (default 2000), an unanswered\n"
     "one ends after --prompt-expiry-ms (60000), and the result is posted to the CallBackURL.\n"
     "Consumer key and secret default to duka-sim-key / duka-sim-secret, the passkey to the\n"
     "sandbox's public one. Faults: latency; a share P of pushes and queries refused with\n"
     "500.003.02 (nothing done); a share P of pushes prompts the customer but holds the reply;\n"
     "503 outages; callbacks N ms late, twice or never; spike arrest beyond N calls a second.\n"
     "--msisdn: how C2B notifications carry the phone. At run time, from this machine only:\n"
     "POST /_sim/faults (the same knobs), POST /_sim/customers {\"phone\", \"answer\",\n"
     "\"after_ms\"}, POST /_sim/c2b (a customer pays the till from their phone), GET\n"
     "/_sim/prompts, /_sim/payments, /_sim/callbacks, /_sim/health.\n"
     "duka sim card comes in a later issue."},
    {"catalog", cmd_catalog, "duka catalog --db FILE [--json]",
     "The till's catalog: {\"products\": [{\"sku\", \"name\", \"price\", \"tax\"}]}."},
};

#define COMMAND_COUNT (int)(sizeof(commands) / sizeof(commands[0]))

static size_t first_word_len(const char *name);

static void print_overview(FILE *out)
{
    fprintf(out, "duka — offline-first point of sale (till, hub, sync)\n\nCommands:\n");
    for (int i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s\n", commands[i].usage);
    /* The first words of several commands, from the table (each once). */
    char groups[256] = "";
    size_t used = 0;
    for (int i = 0; i < COMMAND_COUNT; i++) {
        size_t n = first_word_len(commands[i].name);
        bool first = commands[i].name[n] == ' ';
        for (int k = 0; first && k < i; k++)
            first = !(strncmp(commands[k].name, commands[i].name, n) == 0 &&
                      commands[k].name[n] == ' ');
        if (!first)
            continue;
        int w = snprintf(groups + used, sizeof(groups) - used, "%s%.*s", used ? ", " : "",
                         (int)n, commands[i].name);
        if (w < 0 || (size_t)w >= sizeof(groups) - used)
            break;
        used += (size_t)w;
    }
    fprintf(out, "\nEvery command exits 0 on success, 1 with one line on stderr on failure, 2 on\n"
                 "bad usage; with --json a failure also prints {\"error\":{\"code\",\"message\"}}\n"
                 "on stdout (codes: README). `duka help CMD` or `duka CMD --help` explains one;\n"
                 "`duka help WORD` lists the commands WORD starts (%s).\n", groups);
}

/* The length of a command name's first word. */
static size_t first_word_len(const char *name)
{
    const char *space = strchr(name, ' ');
    return space ? (size_t)(space - name) : strlen(name);
}

/* True when word is the first word of a command of more than one word ("device" of
 * "device add"): then it names a group of commands. */
static bool is_group(const char *word)
{
    for (int i = 0; i < COMMAND_COUNT; i++) {
        size_t n = first_word_len(commands[i].name);
        if (commands[i].name[n] == ' ' && strlen(word) == n &&
            strncmp(commands[i].name, word, n) == 0)
            return true;
    }
    return false;
}

/* The command named exactly name ("hub", "device add"), or NULL. */
static const command *command_named(const char *name)
{
    for (int i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* "add, revoke": the second words of group's commands, in the table's order. */
static void list_subcommands(const char *group, char *buf, size_t size)
{
    size_t used = 0, n = strlen(group);
    buf[0] = '\0';
    for (int i = 0; i < COMMAND_COUNT; i++) {
        const char *name = commands[i].name;
        if (strncmp(name, group, n) != 0 || name[n] != ' ')
            continue;
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", name + n + 1);
        if (w < 0 || (size_t)w >= size - used)
            break; /* bounded: a table of a few dozen short names fits */
        used += (size_t)w;
    }
}

/* `duka help GROUP`: the group's own command in full (when it is one), then the usage of
 * each of its commands. */
static void print_group_help(const char *group)
{
    const command *own = command_named(group);
    if (own != NULL)
        printf("usage: %s\n\n%s\n\n", own->usage, own->help);
    printf("%sduka %s commands:\n", own != NULL ? "More " : "", group);
    size_t n = strlen(group);
    for (int i = 0; i < COMMAND_COUNT; i++)
        if (strncmp(commands[i].name, group, n) == 0 && commands[i].name[n] == ' ')
            printf("  %s\n", commands[i].usage);
    printf("\n`duka help %s SUBCOMMAND` explains one.\n", group);
}

int cli_help(const char *name)
{
    if (strchr(name, ' ') == NULL && is_group(name)) {
        print_group_help(name);
        return 0;
    }
    const command *c = command_named(name);
    if (c == NULL) {
        return cli_error(NULL, DUKA_USAGE, "unknown command '%s' (see: duka help)", name);
    }
    printf("usage: %s\n\n%s\n", c->usage, c->help);
    return 0;
}

/* `duka GROUP` with no subcommand, or an unknown one: one line listing the subcommands. */
static int group_usage_error(const char *group, const char *word)
{
    char subs[512];
    list_subcommands(group, subs, sizeof(subs));
    if (word != NULL)
        return cli_error(group, DUKA_USAGE,
                         "unknown subcommand '%s'; expected one of: %s (see: duka help %s)", word,
                         subs, group);
    return cli_error(group, DUKA_USAGE, "expected one of: %s (see: duka help %s)", subs, group);
}

/* Finds the longest command whose words start argv (at most three: "hub outbox retry");
 * *used gets the number of words. */
static const command *find_command(int argc, char **argv, int *used)
{
    for (int words = argc < 3 ? argc : 3; words >= 1; words--) {
        char name[128];
        size_t n = 0;
        for (int i = 0; i < words && n < sizeof(name); i++)
            n += (size_t)snprintf(name + n, sizeof(name) - n, "%s%s", i ? " " : "", argv[i]);
        const command *c = n < sizeof(name) ? command_named(name) : NULL;
        if (c != NULL) {
            *used = words;
            return c;
        }
    }
    *used = 1;
    return NULL;
}

/* `duka help [CMD [SUB]]` (a --json among them only asks for a JSON error). */
static int help_command(int argc, char **argv)
{
    char *words[4];
    int n = 0;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--json") != 0) {
            if (n == 4)
                return cli_error("help", DUKA_USAGE,
                                 "give one command, e.g. duka help device add (see: duka help)");
            words[n++] = argv[i];
        }
    argc = n;
    argv = words;
    if (argc < 3) {
        print_overview(stdout);
        return 0;
    }
    char name[128];
    snprintf(name, sizeof(name), "%s%s%s", argv[2], argc == 4 ? " " : "", argc == 4 ? argv[3] : "");
    return cli_help(name);
}

/* True when argv holds --json before any "--" (so that even a usage error found before the
 * command parses its options is reported as JSON). */
static bool wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            return true;
    return false;
}

/* Runs the command argv names; returns its exit code. */
static int run(int argc, char **argv)
{
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help_command(argc, argv);
    if (sodium_init() < 0)
        return cli_error(NULL, DUKA_INTERNAL, "cannot initialise libsodium");
    /* jansson's allocation functions, before any thread: plain malloc and free outside a
     * request's arena (common/json_arena.h). */
    duka_json_arena_install();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cli_error(NULL, DUKA_INTERNAL, "cannot initialise libcurl");
    int used = 0, rc;
    const command *c = find_command(argc - 1, argv + 1, &used);
    if (c == NULL && is_group(argv[1])) {
        /* `duka device`, `duka device bogus`, `duka device --help`: name the subcommands. */
        const char *next = argc >= 3 ? argv[2] : NULL;
        if (next != NULL && (strcmp(next, "--help") == 0 || strcmp(next, "-h") == 0))
            rc = cli_help(argv[1]);
        else
            rc = group_usage_error(argv[1], next != NULL && next[0] != '-' ? next : NULL);
    } else if (c == NULL) {
        rc = cli_error(NULL, DUKA_USAGE, "unknown command '%s' (see: duka help)", argv[1]);
    } else {
        rc = c->run(argc - 1 - used, argv + 1 + used);
    }
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    cli_set_json(wants_json(argc, argv));
    return cli_finish(run(argc, argv));
}

/*
 * limits.h — every bound in duka, in one place, each with its reason (as sqliteLimit.h).
 * Anything that comes from outside (the network, a CSV, the command line) is checked
 * against one of these before it is stored.
 */
#ifndef DUKA_LIMITS_H
#define DUKA_LIMITS_H

/* Identifiers. Terminal ids print on every receipt; keep them short. */
#define DUKA_TERMINAL_ID_MAX 16
#define DUKA_SKU_MAX 64
#define DUKA_PRODUCT_NAME_MAX 128
#define DUKA_CATEGORY_MAX 64
#define DUKA_BUSINESS_NAME_MAX 128
#define DUKA_BUSINESS_ID_LEN 16          /* hex characters of a random business id */
#define DUKA_UUID_STR_LEN 36
#define DUKA_RECEIPT_NO_MAX 48           /* T01-20261121-00042, widened past 99,999 */
#define DUKA_PAYMENT_REF_MAX 64
/* Why a payment was flagged, as the hub said it (one sentence). */
#define DUKA_PAYMENT_NOTE_MAX 200
#define DUKA_URL_MAX 512
#define DUKA_TOKEN_MAX 128
#define DUKA_ERROR_TEXT_MAX 300          /* stored last_error of an outbox item */
/* A KRA PIN, as printed on every receipt: A (a person) or P (any other taxpayer), 9 digits, a
 * letter (P051234567X). */
#define DUKA_KRA_PIN_LEN 11
/* The id a till database makes for itself once (a random UUID, lowercase, with dashes): the
 * hub binds a device token to the first till database that uses it (Duka-Till-Id). */
#define DUKA_TILL_ID_LEN DUKA_UUID_STR_LEN

/* Cashiers (issue 11). A cashier logs in on a till by picking their name and typing a PIN:
 * 4 to 8 ASCII digits, short enough to type between customers. A name is printed on receipts
 * (40 columns, after "Cashier: ") and shown on a login button, so 40 bytes of UTF-8. A business
 * has at most 100: the whole list travels in a pull reply and sits on every till's login
 * screen, so it stays a screenful, not a staff database. */
#define DUKA_PIN_LEN_MIN 4
#define DUKA_PIN_LEN_MAX 8
#define DUKA_CASHIER_NAME_MAX 40
#define DUKA_CASHIERS_MAX 100
/* The PIN's argon2id cost (libsodium crypto_pwhash_str_alg, ALG_ARGON2ID13). The honest
 * limit: a 4-8 digit PIN has at most 10^8 values, so whoever holds the database file tries
 * them all offline whatever the cost; the hash only keeps the PIN out of sight (no plain PIN
 * on disk, in a backup or a pull reply) and slows a thief from seconds to hours at best. The
 * defence against guessing at the till is the lockout below, against the file its
 * permissions (docs/SECURITY.md). So the cost is set for the till, not for an attacker:
 * 3 passes over 8 MiB verify in ~20 ms on a small till CPU and keep the valgrind and ASan
 * runs of the tests fast (libsodium's INTERACTIVE preset, 64 MiB, takes seconds there).
 * The hash string records its own parameters, so raising these later still verifies old
 * hashes. */
#define DUKA_PIN_HASH_OPSLIMIT 3ULL
#define DUKA_PIN_HASH_MEMLIMIT (8u * 1024u * 1024u)
/* Wrong PINs in a row before a cashier is locked on a till, and for how long: 5 tries of a
 * 4-digit PIN every 5 minutes is 10,000 PINs in a week of trying, at the till, in sight. */
#define DUKA_LOGIN_FAILURES_MAX 5
#define DUKA_LOGIN_LOCK_MS (5 * 60 * 1000LL)
/* A till session idle this long ends (setting TILL_SESSION_IDLE_TIMEOUT): a shift. */
#define DUKA_SESSION_IDLE_DEFAULT_MS (12 * 3600 * 1000LL)
#define DUKA_SESSION_IDLE_MIN_MS 60000LL
#define DUKA_SESSION_IDLE_MAX_MS (7 * 86400 * 1000LL)
/* crypto_pwhash_str's output (crypto_pwhash_STRBYTES is 128, NUL included). */
#define DUKA_PIN_HASH_MAX 127

/* The conflicts `duka hub report` lists one by one, newest first (it counts and adds up all of
 * them): a person reads the list, and a till restored from the wrong backup can make
 * thousands. Conflicts' payloads are also read this many at a time to add them up, so the
 * report holds at most this many sales' payloads in memory (each bounded like a sale). */
#define DUKA_REPORT_CONFLICTS_MAX 100
#define DUKA_TILL_HEADER_MAX 64          /* "Duka-Till-Id: " and a UUID */
#define DUKA_PATH_MAX 4096               /* a path duka builds (a database's lock files) */

/* Money: integer cents. A single price up to KES 10 million. */
#define DUKA_PRICE_CENTS_MAX 1000000000LL
/* Quantities are in thousandths (0.5 kg = 500), up to one million units on a line. */
#define DUKA_QTY_MILLI_MAX 1000000000LL
#define DUKA_QTY_DECIMALS 3

/* A sale: bounded lines and payments (a supermarket trolley, not a warehouse). */
#define DUKA_SALE_LINES_MAX 500
#define DUKA_SALE_PAYMENTS_MAX 8
/* A sale may be refunded in at most this many parts (a refund receipt each): bounds the list
 * of refunds a till shows for a sale and the rows the hub sums to check a new one. */
#define DUKA_REFUNDS_PER_SALE_MAX 32

/* Sanity bounds on what one sale may come to (settings SALE_MAX_LINE_AMOUNT, SALE_MAX_AMOUNT):
 * a typo at the till (a quantity of 1000000 for 1, a price keyed as cents) must not become a
 * KES 185,000,000 sale without a word. Above a bound the sale is refused unless the cashier
 * confirms it (`duka sell --confirm-amount`, the API's "confirm_amount": true). The defaults
 * fit a Kenyan duka or a small wholesaler; a bigger business raises them. At most the
 * largest sale the limits above allow, so a bound can always be met. */
#define DUKA_SALE_LINE_MAX_CENTS_DEFAULT 50000000LL   /* KES 500,000 */
#define DUKA_SALE_MAX_CENTS_DEFAULT 100000000LL       /* KES 1,000,000 */
#define DUKA_SALE_BOUND_CENTS_MAX (DUKA_PRICE_CENTS_MAX * (DUKA_QTY_MILLI_MAX / 1000))

/* Times (created_ms of a sale): Unix milliseconds from 1970 to the end of year 9999. A till
 * whose clock lost its battery says 1970 or 2000 and its sales still arrive; a negative or
 * 12-digit-year time is not a clock, it is a bug or an attack. */
#define DUKA_TIME_MS_MAX 253402300799999LL

/* JSON from outside (a push body, a body of the till's local API) nests at most this deep:
 * [] and {} add a level each, a scalar none. A push needs 6 (body, commands, a command, its
 * payload, lines, a line); two more leave room for a new command type. Anything deeper is
 * not a duka body, and refusing it keeps every walk over it (hashing, dumping, logging)
 * short. jansson's own parser stops at 2048 levels. */
#define DUKA_JSON_DEPTH_MAX 8
#define DUKA_PUSH_JSON_DEPTH 6

/* A hub applying a batch that another hub process (same PostgreSQL) partly applied at the
 * same instant applies it again, at most this many times, before answering 503. */
#define DUKA_PUSH_RACE_RETRIES 3

/* Sync. Batches bounded in count and in bytes so a push never exceeds the hub's body limit. */
#define DUKA_SYNC_BATCH_DEFAULT 500
#define DUKA_SYNC_BATCH_MAX 1000
/* Pushes one sync keeps in flight: the next batches are claimed and sent while the hub
 * applies the one before (sync_client.c push_all). Three keep the three stages of a push busy
 * at once — the till recording one answer and claiming the next batch, the hub parsing one,
 * the database writing one — on a 2-core machine running all three, a 100,000-sale catch-up
 * on PostgreSQL takes 9.7 s with 1, 5.8 s with 2, 4.8 s with 3 and no less with 4
 * (bench/README.md). More only queue at the hub, and hold more memory on the till. */
#define DUKA_SYNC_PIPELINE_DEFAULT 3
#define DUKA_SYNC_PIPELINE_MAX 4
#define DUKA_PUSH_BODY_MAX_BYTES (8u * 1024u * 1024u)
#define DUKA_PUSH_BODY_TARGET_BYTES (DUKA_PUSH_BODY_MAX_BYTES / 2u)
#define DUKA_PULL_PAGE_DEFAULT 1000
#define DUKA_PULL_PAGE_MAX 5000
/* Signed invoices per pull page (issue 12): each ~500 bytes, so a page stays ~250 KB. */
#define DUKA_PULL_INVOICES_MAX 500
/* The eTIMS branch (bhfId) of every business until branches are configured: "00", the
 * head office, as KRA numbers it. */
#define DUKA_ETIMS_BRANCH_DEFAULT "00"
#define DUKA_API_PAGE_MAX 1000 /* rows one page of the till's local API lists at most */
#define DUKA_HTTP_PATH_MAX 512 /* a request path a route table matches (longer: 404) */
#define DUKA_HTTP_REPLY_MAX_BYTES (16u * 1024u * 1024u)
#define DUKA_SYNC_ROUNDS_MAX 100000      /* batches in one sync run; a bound, not a goal */

/* Network timeouts: the hub is on a LAN or the internet; a sync never hangs the till. */
#define DUKA_HTTP_CONNECT_TIMEOUT_MS 5000
#define DUKA_HTTP_TOTAL_TIMEOUT_MS 60000
/* The hub's (and the till's local API's) HTTP server. The timeout closes a connection on
 * which nothing arrived for that long (a stalled client); the hub's is the setting
 * HUB_CONNECTION_TIMEOUT. At most DUKA_HUB_CONNECTIONS_MAX connections at once, and at most
 * HUB_CONNECTIONS_PER_IP (default below) from one address, so one address cannot hold every
 * slot (docs/SECURITY.md, "A client flooding the hub"). */
#define DUKA_HUB_CONNECTION_TIMEOUT_S 30
#define DUKA_HUB_CONNECTION_TIMEOUT_S_MAX 3600
#define DUKA_HUB_CONNECTIONS_MAX 256
#define DUKA_HUB_CONNECTIONS_PER_IP_DEFAULT 64
/* PostgreSQL connections of one hub process: that many pushes are applied at once (each
 * request borrows one; the others wait for a free one). More hubs: more processes. */
#define DUKA_HUB_PG_CONNECTIONS 4
#define DUKA_HUB_STORE_POOL_MAX 16 /* store connections one hub process may hold */
_Static_assert(DUKA_HUB_PG_CONNECTIONS <= DUKA_HUB_STORE_POOL_MAX, "the pool holds them all");

/* PostgreSQL (the hub at scale, hub_store_pg.c). A connection attempt gives up after the
 * connect timeout (an unreachable server is a clear error in seconds, not a hang; a URL's own
 * connect_timeout wins). A statement runs at most the statement timeout: the longest is the
 * flush of a full batch (1,000 sales of 500 lines at most, bounded by the 8 MiB body), which
 * takes well under a second, and a lock wait behind another hub's batch of the same command
 * ids lasts as long as that batch. A transaction left idle (a hub stopped mid-batch) is ended
 * by the server after the idle timeout, so it cannot hold row locks for long. */
#define DUKA_PG_CONNECT_TIMEOUT_S 5
#define DUKA_PG_STATEMENT_TIMEOUT_MS 30000
#define DUKA_PG_IDLE_IN_TRANSACTION_TIMEOUT_MS 60000

/* SQLite: how long a writer waits for another process holding the write lock. */
#define DUKA_DB_BUSY_TIMEOUT_MS 10000

/* CSV import: bounded line length and row count. */
#define DUKA_CSV_LINE_MAX 4096
#define DUKA_CSV_ROWS_MAX 200000

/* Outbox defaults (per queue type settings come with the sync engine). */
#define DUKA_OUTBOX_MAX_ATTEMPTS_DEFAULT 5
#define DUKA_OUTBOX_BACKOFF_BASE_MS 1000   /* first retry after 1 s, then 2 s, 4 s, 8 s … */
#define DUKA_OUTBOX_BACKOFF_MAX_MS 300000  /* never wait more than 5 minutes between tries */
#define DUKA_OUTBOX_RETRY_AFTER_MAX_MS 900000 /* the longest Retry-After a till honours */
#define DUKA_OUTBOX_CLEANUP_CHUNK 5000     /* rows per retention delete transaction */
#define DUKA_OUTBOX_CLEANUP_ROUNDS_MAX 10000

/* eTIMS, KRA's online control unit (src/tax/etims/). The hub sends each invoice from one
 * worker thread and reads each reply whole into memory: an honest reply is a few hundred
 * bytes (a save's signature) or a few KB (one invoice's details with its items), so 256 KiB
 * is far above any and still small. Its JSON nests about 6 levels (reply, data, salesList,
 * an invoice, its itemList, an item); 16 leaves room for members KRA may add, and bounds every
 * walk over a reply from outside. */
#define DUKA_ETIMS_REPLY_MAX_BYTES (256u * 1024u)
#define DUKA_ETIMS_REPLY_DEPTH_MAX 16
/* One request's timeout (setting ETIMS_TIMEOUT). KRA's servers are often congested (one
 * integration waits 120 s); a timeout costs a selectInvoiceDetails before the next try, a
 * short one many of them. At most 5 minutes: the worker sends nothing else meanwhile. */
#define DUKA_ETIMS_TIMEOUT_DEFAULT_MS 30000L
#define DUKA_ETIMS_TIMEOUT_MAX_MS 300000L
/* A signature field of a reply (intrlData 26, rcptSign 16 characters today) is kept, stored and
 * printed: at most this many printable ASCII characters, or the reply is not trusted. */
#define DUKA_ETIMS_SIGNATURE_MAX 63
/* The longest part of a reply's resultMsg quoted in a message (an outbox item's last_error
 * holds DUKA_ERROR_TEXT_MAX): enough for KRA's sentences, not for a page of HTML. */
#define DUKA_ETIMS_RESULT_MSG_QUOTE_MAX 160
/* eTIMS amounts are JSON reals. A double made from cents (cents / 100.0) and printed with 15
 * significant digits (DUKA_ETIMS_JSON_FLAGS) is the exact decimal while it has at most 15
 * digits: below 10^15 cents, KES 10 trillion. Above it an amount can no longer be written
 * exactly; no invoice of a duka comes near. */
#define DUKA_ETIMS_AMOUNT_CENTS_MAX 999999999999999LL

#define DUKA_STRINGIFY_(x) #x
#define DUKA_STRINGIFY(x) DUKA_STRINGIFY_(x)

_Static_assert(DUKA_SYNC_BATCH_DEFAULT <= DUKA_SYNC_BATCH_MAX, "default batch within max");
_Static_assert(DUKA_PUSH_BODY_TARGET_BYTES < DUKA_PUSH_BODY_MAX_BYTES,
               "client batches stay under the hub's body limit");
_Static_assert(DUKA_PULL_PAGE_DEFAULT <= DUKA_PULL_PAGE_MAX, "default page within max");
_Static_assert(DUKA_PRICE_CENTS_MAX <= 9223372036854775807LL / DUKA_QTY_MILLI_MAX,
               "price x quantity (milli) cannot overflow int64");
_Static_assert(DUKA_PRICE_CENTS_MAX * (DUKA_QTY_MILLI_MAX / 1000) * DUKA_SALE_LINES_MAX
                   <= 9223372036854775807LL,
               "a sale total cannot overflow int64");
_Static_assert(DUKA_PRICE_CENTS_MAX * (DUKA_QTY_MILLI_MAX / 1000) * DUKA_SALE_LINES_MAX
                       * DUKA_SALE_PAYMENTS_MAX <= 9223372036854775807LL,
               "the payments of a sale (each at most its total) cannot overflow int64");
_Static_assert(DUKA_SALE_LINE_MAX_CENTS_DEFAULT <= DUKA_SALE_MAX_CENTS_DEFAULT,
               "a sale may hold its largest line");
_Static_assert(DUKA_SALE_MAX_CENTS_DEFAULT <= DUKA_SALE_BOUND_CENTS_MAX, "defaults within range");
_Static_assert(DUKA_PUSH_JSON_DEPTH <= DUKA_JSON_DEPTH_MAX, "a push body fits the JSON depth");
_Static_assert(DUKA_PG_STATEMENT_TIMEOUT_MS < DUKA_PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
               "a statement that waits on a lock ends before the server ends its transaction");
_Static_assert(DUKA_PG_CONNECT_TIMEOUT_S * 1000 < DUKA_HTTP_TOTAL_TIMEOUT_MS,
               "a hub reconnecting to PostgreSQL still answers within the till's HTTP timeout");
_Static_assert(DUKA_PIN_LEN_MIN >= 4 && DUKA_PIN_LEN_MIN <= DUKA_PIN_LEN_MAX,
               "a PIN has at least 4 digits");
_Static_assert(DUKA_SESSION_IDLE_MIN_MS <= DUKA_SESSION_IDLE_DEFAULT_MS &&
                   DUKA_SESSION_IDLE_DEFAULT_MS <= DUKA_SESSION_IDLE_MAX_MS,
               "the session default within its range");
_Static_assert(DUKA_HUB_CONNECTIONS_PER_IP_DEFAULT <= DUKA_HUB_CONNECTIONS_MAX,
               "one address gets at most every connection");
_Static_assert(DUKA_ETIMS_REPLY_MAX_BYTES <= DUKA_HTTP_REPLY_MAX_BYTES,
               "the HTTP client reads a whole eTIMS reply before it is judged");
_Static_assert(DUKA_ETIMS_TIMEOUT_DEFAULT_MS <= DUKA_ETIMS_TIMEOUT_MAX_MS,
               "the eTIMS timeout default within its range");
_Static_assert(DUKA_ETIMS_REPLY_DEPTH_MAX <= 64, "within duka_json_depth_check's range");
_Static_assert(DUKA_ETIMS_RESULT_MSG_QUOTE_MAX < DUKA_ERROR_TEXT_MAX,
               "a quoted resultMsg leaves room for the rest of the message");

#endif

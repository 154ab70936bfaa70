/*
 * receipt.h — receipt numbers {TerminalId}-{YYYYMMDD}-{Seq:05}, e.g. T01-20261121-00042.
 *
 * Unique across terminals (the terminal id is in the number, and the hub refuses two devices
 * with one terminal id in a business) and across days (the date is in the number). Within a
 * terminal the counter lives in receipt_days, one row per calendar day ever used, and is
 * advanced in the same transaction as the sale, so a number is never issued twice:
 *   - a new day starts at 00001 (daily reset);
 *   - a clock moved backwards to a day already used continues that day's sequence;
 *   - past 99,999 the number widens to 6 digits (100000), it never wraps;
 *   - a restored backup continues above what the hub already has (duka_receipt_apply_floor).
 */
#ifndef DUKA_RECEIPT_H
#define DUKA_RECEIPT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

/* Takes the next number for local day of now_ms, inside the caller's write transaction. */
duka_rc duka_receipt_next(sqlite3 *db, const char *terminal, int64_t now_ms,
                          char out[DUKA_RECEIPT_NO_MAX + 1], duka_err *err);

/* Raises the counter of each day in floor ({"YYYYMMDD": seq, …}, as the hub sends with every
 * pull) to at least that sequence, in one transaction: a till restored from an old backup, or
 * re-created for the same terminal, never issues a number the hub already has. Entries that
 * are not a day and a positive number are ignored. */
duka_rc duka_receipt_apply_floor(sqlite3 *db, const json_t *floor, duka_err *err);

/* Formats a receipt number (exposed for tests). */
void duka_receipt_format(const char *terminal, int day, int64_t seq,
                         char out[DUKA_RECEIPT_NO_MAX + 1]);

#endif

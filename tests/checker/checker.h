/*
 * checker.h — the one judge of every harness that tries to break duka's promise
 * (the simulator, the chaos runs, the power-loss and storage-fault loops).
 *
 * In Jepsen's terms, after a run it reads the tills' databases, the hub's database and the
 * list of sales the harness saw acknowledged (a `duka sell` that exited 0, a checkout that
 * returned DUKA_OK), and counts:
 *   lost        acknowledged sales the hub does not have, plus sales committed in a till's
 *               database the hub does not have (when a hub is given and drain is required);
 *               without a hub: acknowledged sales missing from their till's database
 *   duplicated  one till sale applied more than once at the hub (under another command id or
 *               receipt number), or a hub sale whose command id differs from the till's
 *   unexpected  sales at the hub that no till ever committed
 *   mismatched  a sale whose total, tax or lines differ between till and hub (or between the
 *               acknowledgement and the till)
 *   receipt_gaps / receipt_dupes
 *               receipt numbers per terminal and day must be 1..N with no gap and no repeat
 *   orphan_sales a till sale with no outbox command (it could never reach the hub)
 *   stock_mismatch a SKU whose stock movements of sales at the hub (stock_movements) differ
 *               from minus the sum of its sale lines (a sale moves stock once, by its lines)
 *   queue_not_empty outbox items not done (counted only when drain is required)
 *   conflicts   conflicts logged at the hub (a harness that injects none expects 0)
 *   refund_exceeds a line of a hub sale whose refunds at the hub give back more quantity or
 *               money than it sold, or a refund's line of no hub sale (refunds are receipts:
 *               every check above counts them as such, kind 'refund' in sales)
 *
 * With etims_state (the eTIMS simulator's state file, `duka sim etims --state`; needs the
 * hub), the invoices the simulator accepted for each business (tin = the business's KRA
 * PIN, branch 00) are judged against the hub's sales and the tills' signatures:
 *   uninvoiced      a hub sale with no invoice accepted (trdInvcNo = its receipt number,
 *                   rcptTyCd S), or a hub refund with no credit note (rcptTyCd R) — counted
 *                   only when require_invoiced
 *   double_invoiced a hub sale with more than one accepted invoice (counted in sales)
 *   invoice_unexpected an accepted invoice of no hub sale of the business (or not a sale)
 *   invc_gaps / invc_dupes
 *                   invcNo per tin and branch must be 1..N, N = the business's hub sales,
 *                   no number twice (gaps only when require_invoiced: before the end a
 *                   number may still be on its way)
 *   invoice_mismatch an invoice whose band totals (taxblAmtA..E, taxAmtA..E, totAmt) differ
 *                   from the sale's lines at the hub summed per band, or whose invcNo is not
 *                   the one the hub's outbox gave its sale, or a credit note whose orgInvcNo
 *                   is not the invcNo of its refund's sale's invoice
 *   etims_not_done  the hub's eTIMS outbox items not done — when require_invoiced
 *   signature_mismatch a till's etims_receipts row that is not the simulator's signature of
 *                   that receipt (rcptSign, intrlData, invcNo, curRcptNo/totRcptNo, sdcId)
 *   unsigned        a till sale with no etims_receipts row — when require_invoiced
 *
 * With mpesa_state (the M-Pesa simulator's state file, `duka sim mpesa --state`), the tills'
 * M-Pesa payments are judged against the payments "Safaricom" holds:
 *   mpesa_wrongly_verified a till payment verified whose code the simulator has no payment of,
 *                   or of another amount
 *   mpesa_double_credit a code verified on more than one sale (any tills)
 *   mpesa_undecided a payment still pending verification — when require_mpesa_decided
 *   mpesa_verified / mpesa_flagged are figures: every typed code ends one or the other.
 * A run passes when every one of these is 0 (conflicts only when expect_no_conflicts).
 *
 * Database files are opened read-only; the processes that wrote them must have stopped.
 */
#ifndef DUKA_CHECKER_H
#define DUKA_CHECKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

/* One acknowledged sale, as the harness saw it. */
typedef struct duka_check_ack {
    char receipt_no[64];
    int64_t total_cents; /* -1: not recorded, not compared */
} duka_check_ack;

typedef struct duka_check_input {
    const char *hub_db;      /* hub SQLite file; NULL: till-only checks (power loss) */
    const char *business_id; /* NULL: every business in the hub database */
    const char *const *till_dbs;
    int till_count;
    const duka_check_ack *acked;
    int acked_count;
    bool require_drained;    /* every outbox item done, every till sale at the hub */
    bool expect_no_conflicts;
    const char *etims_state; /* the eTIMS simulator's state file; NULL: no eTIMS checks */
    bool require_invoiced;   /* every hub sale invoiced, every eTIMS item done, every till
                              * sale signed (with etims_state only) */
    const char *mpesa_state; /* the M-Pesa simulator's state file; NULL: no M-Pesa checks */
    bool require_mpesa_decided; /* no typed code left pending (with mpesa_state only) */
} duka_check_input;

#define DUKA_CHECK_PROBLEM_MAX 512

typedef struct duka_check_report {
    int64_t acked, till_sales, hub_sales, hub_lines;
    int64_t lost, duplicated, unexpected, mismatched;
    int64_t receipt_gaps, receipt_dupes, orphan_sales, stock_mismatch;
    int64_t queue_not_empty, conflicts, refund_exceeds;
    /* eTIMS (etims_checked: an etims_state was given; otherwise all 0 and left out of the
     * JSON and the printed line). invoices: accepted by the simulator for the businesses;
     * till_signed: etims_receipts rows of the tills. */
    bool etims_checked;
    int64_t invoices, till_signed;
    int64_t uninvoiced, double_invoiced, invoice_unexpected, invc_gaps, invc_dupes;
    int64_t invoice_mismatch, etims_not_done, signature_mismatch, unsigned_sales;
    /* M-Pesa (mpesa_checked: an mpesa_state was given). */
    bool mpesa_checked;
    int64_t mpesa_verified, mpesa_flagged;
    int64_t mpesa_wrongly_verified, mpesa_double_credit, mpesa_undecided;
    bool ok;
    char first_problem[DUKA_CHECK_PROBLEM_MAX]; /* "" when ok: the first thing found wrong */
} duka_check_report;

/* Runs every check. DUKA_STORE / DUKA_NOTFOUND when a database cannot be read (err says
 * which); otherwise DUKA_OK with the verdict in rep->ok. */
duka_rc duka_check_run(const duka_check_input *in, duka_check_report *rep, duka_err *err);

/* Reads acknowledgements from a file of lines "RECEIPT_NO [TOTAL_CENTS]" (blank lines and
 * lines starting with # ignored). *out is malloc'ed; free() it. */
duka_rc duka_check_read_acks(const char *path, duka_check_ack **out, int *count, duka_err *err);

/* The report as one JSON object (new reference) and as one human line on f:
 * "check: ok|FAILED acked=… hub=… lost=0 duplicated=0 unexpected=0 …". */
json_t *duka_check_report_json(const duka_check_report *rep);
void duka_check_print(FILE *f, const duka_check_report *rep);

#endif

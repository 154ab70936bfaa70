/*
 * etims_forward.h — one invoice to eTIMS, the whole protocol (contract 12, section 3), for the
 * hub's eTIMS worker: it decides from eTIMS's answers whether the invoice is signed, must be
 * tried again, may have arrived, is refused, or eTIMS cannot be reached. The caller keeps
 * the invoice's number (invcNo) whatever the outcome and stores the decision.
 *
 *   unclear → selectInvoiceDetails first: found = DONE; not found = save.
 *   save OK = DONE; 994 = selectInvoiceDetails → found DONE / not found RETRY ("994 but not
 *   found"); a timeout = UNCLEAR (select first next time); OFFLINE = OFFLINE (does not use
 *   an attempt); REFUSED = FAILED ("validation"); RETRY = RETRY ("server").
 *
 * One call sends saveTrnsSalesOsdc at most once (and selectInvoiceDetails at most twice), so
 * it blocks at most three timeouts. An invoice that selectInvoiceDetails finds under our
 * number but whose trdInvcNo, rcptTyCd or totAmt (when the reply carries them) differ from the
 * body's is not ours: FAILED ("validation"), never DONE with another receipt's signature.
 * Thread safe; see etims_client.h.
 */
#ifndef DUKA_ETIMS_FORWARD_H
#define DUKA_ETIMS_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "tax/etims/etims_client.h"

typedef struct duka_etims_job {
    int64_t invc_no, org_invc_no;
    const char *body_json; /* duka_etims_invoice_body's text (DUKA_ETIMS_JSON_FLAGS) */
    bool unclear;          /* an earlier attempt may have arrived: ask selectInvoiceDetails first */
} duka_etims_job;

typedef enum {
    DUKA_FWD_DONE,
    DUKA_FWD_RETRY,
    DUKA_FWD_UNCLEAR,
    DUKA_FWD_FAILED,
    DUKA_FWD_OFFLINE
} duka_fwd_kind;

typedef struct duka_etims_decision {
    duka_fwd_kind kind;
    duka_etims_answer answer;   /* the signature on DONE; the last answer otherwise (its
                                 * message is the item's last_error) */
    const char *error_category; /* "network" (UNCLEAR, OFFLINE), "server" (RETRY),
                                 * "validation" (FAILED); NULL on DONE. Static strings. */
} duka_etims_decision;

/* The kind's name ("DONE", …), for logs and tests. */
const char *duka_etims_fwd_kind_name(duka_fwd_kind k);

/* Runs the protocol above for one job (invc_no >= 1, org_invc_no >= 0, body_json not NULL).
 * DUKA_OK whenever a decision was made; otherwise (out of memory, a conf or device that cannot
 * make a request: etims_client.h) the error, with out->kind FAILED or RETRY and a message. */
duka_rc duka_etims_forward(const duka_etims_conf *c, const duka_etims_device *d,
                           const duka_etims_job *job, duka_etims_decision *out, duka_err *err);

#endif

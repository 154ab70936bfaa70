/* etims_forward.c — the per-invoice protocol over etims_client.h (see etims_forward.h). */
#include "tax/etims/etims_forward.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

const char *duka_etims_fwd_kind_name(duka_fwd_kind k)
{
    switch (k) {
    case DUKA_FWD_DONE:
        return "DONE";
    case DUKA_FWD_RETRY:
        return "RETRY";
    case DUKA_FWD_UNCLEAR:
        return "UNCLEAR";
    case DUKA_FWD_FAILED:
        return "FAILED";
    case DUKA_FWD_OFFLINE:
        return "OFFLINE";
    }
    return "UNKNOWN";
}

static void decide(duka_etims_decision *out, duka_fwd_kind kind)
{
    out->kind = kind;
    switch (kind) {
    case DUKA_FWD_DONE:
        out->error_category = NULL;
        break;
    case DUKA_FWD_RETRY:
        out->error_category = "server";
        break;
    case DUKA_FWD_UNCLEAR:
    case DUKA_FWD_OFFLINE:
        out->error_category = "network";
        break;
    case DUKA_FWD_FAILED:
        out->error_category = "validation";
        break;
    }
}

/* The decision of an answer that is neither OK nor (for save) DUPLICATE. */
static duka_fwd_kind kind_of_failure(duka_etims_verdict v)
{
    switch (v) {
    case DUKA_ETIMS_UNCLEAR:
        return DUKA_FWD_UNCLEAR;
    case DUKA_ETIMS_OFFLINE:
        return DUKA_FWD_OFFLINE;
    case DUKA_ETIMS_REFUSED:
        return DUKA_FWD_FAILED;
    case DUKA_ETIMS_OK:
    case DUKA_ETIMS_DUPLICATE:
    case DUKA_ETIMS_NOT_FOUND:
    case DUKA_ETIMS_RETRY:
        break;
    }
    return DUKA_FWD_RETRY;
}

/* What the job's body says the invoice is: trdInvcNo, rcptTyCd, totAmt (cents; -1 unknown). */
typedef struct body_facts {
    char trd_invc_no[DUKA_RECEIPT_NO_MAX + 8];
    char rcpt_ty_cd[4];
    int64_t tot_amt_cents;
} body_facts;

static void read_body_facts(const char *body_json, body_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->tot_amt_cents = -1;
    json_t *o = json_loads(body_json, 0, NULL);
    const char *trd = json_string_value(json_object_get(o, "trdInvcNo"));
    const char *ty = json_string_value(json_object_get(o, "rcptTyCd"));
    const json_t *tot = json_object_get(o, "totAmt");
    if (trd != NULL)
        snprintf(f->trd_invc_no, sizeof(f->trd_invc_no), "%s", trd);
    if (ty != NULL)
        snprintf(f->rcpt_ty_cd, sizeof(f->rcpt_ty_cd), "%s", ty);
    if (json_is_number(tot) && json_number_value(tot) >= 0.0 &&
        json_number_value(tot) * 100.0 <= (double)DUKA_ETIMS_AMOUNT_CENTS_MAX)
        f->tot_amt_cents = (int64_t)llround(json_number_value(tot) * 100.0);
    json_decref(o);
}

/* True when what selectInvoiceDetails found under our number is our invoice as far as the
 * reply tells; otherwise the answer becomes REFUSED naming the difference. */
static bool found_is_ours(const duka_etims_job *job, duka_etims_answer *a)
{
    body_facts f;
    read_body_facts(job->body_json, &f);
    char why[200] = "";
    if (a->found_trd_invc_no[0] != '\0' && f.trd_invc_no[0] != '\0' &&
        strcmp(a->found_trd_invc_no, f.trd_invc_no) != 0)
        snprintf(why, sizeof(why), "trdInvcNo %s, not %s", a->found_trd_invc_no, f.trd_invc_no);
    else if (a->found_rcpt_ty_cd[0] != '\0' && f.rcpt_ty_cd[0] != '\0' &&
             strcmp(a->found_rcpt_ty_cd, f.rcpt_ty_cd) != 0)
        snprintf(why, sizeof(why), "rcptTyCd %s, not %s", a->found_rcpt_ty_cd, f.rcpt_ty_cd);
    else if (a->found_tot_amt_cents >= 0 && f.tot_amt_cents >= 0 &&
             a->found_tot_amt_cents != f.tot_amt_cents)
        snprintf(why, sizeof(why), "totAmt %" PRId64 ".%02" PRId64 ", not %" PRId64 ".%02" PRId64,
                 a->found_tot_amt_cents / 100, a->found_tot_amt_cents % 100,
                 f.tot_amt_cents / 100, f.tot_amt_cents % 100);
    if (why[0] == '\0')
        return true;
    a->verdict = DUKA_ETIMS_REFUSED;
    snprintf(a->message, sizeof(a->message),
             "eTIMS holds another invoice under invcNo %" PRId64 ": %s (a number used twice; "
             "needs a person)",
             job->invc_no, why);
    for (char *p = a->message; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return false;
}

/* selectInvoiceDetails: true when it settled the decision (found, or a failure). */
static duka_rc select_step(const duka_etims_conf *c, const duka_etims_device *d,
                           const duka_etims_job *job, duka_etims_decision *out, bool *settled,
                           duka_err *err)
{
    duka_rc rc = duka_etims_select(c, d, job->invc_no, &out->answer, err);
    *settled = true;
    if (rc != DUKA_OK) {
        decide(out, rc == DUKA_NOMEM ? DUKA_FWD_RETRY : DUKA_FWD_FAILED);
        return rc;
    }
    if (out->answer.verdict == DUKA_ETIMS_OK)
        decide(out, found_is_ours(job, &out->answer) ? DUKA_FWD_DONE : DUKA_FWD_FAILED);
    else if (out->answer.verdict == DUKA_ETIMS_NOT_FOUND)
        *settled = false;
    else
        decide(out, kind_of_failure(out->answer.verdict));
    return DUKA_OK;
}

duka_rc duka_etims_forward(const duka_etims_conf *c, const duka_etims_device *d,
                           const duka_etims_job *job, duka_etims_decision *out, duka_err *err)
{
    assert(job->invc_no >= 1 && job->org_invc_no >= 0 && job->body_json != NULL);
    memset(out, 0, sizeof(*out));
    bool settled = false;
    duka_rc rc;
    if (job->unclear) {
        rc = select_step(c, d, job, out, &settled, err);
        if (settled)
            return rc;
    }
    /* Not there (or never sent): the one save of this call. */
    rc = duka_etims_save(c, d, job->body_json, job->invc_no, job->org_invc_no, &out->answer,
                         err);
    if (rc != DUKA_OK) {
        decide(out, rc == DUKA_NOMEM ? DUKA_FWD_RETRY : DUKA_FWD_FAILED);
        return rc;
    }
    switch (out->answer.verdict) {
    case DUKA_ETIMS_OK:
        decide(out, DUKA_FWD_DONE);
        return DUKA_OK;
    case DUKA_ETIMS_DUPLICATE:
        rc = select_step(c, d, job, out, &settled, err);
        if (!settled) {
            out->answer.verdict = DUKA_ETIMS_RETRY;
            snprintf(out->answer.message, sizeof(out->answer.message),
                     "eTIMS answered 994 for invcNo %" PRId64 " but selectInvoiceDetails "
                     "does not find it (994 but not found)",
                     job->invc_no);
            decide(out, DUKA_FWD_RETRY);
        }
        return rc;
    default:
        decide(out, kind_of_failure(out->answer.verdict));
        return DUKA_OK;
    }
}

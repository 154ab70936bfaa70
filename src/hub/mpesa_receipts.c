/* mpesa_receipts.c — the public functions of mpesa_receipts.h, over the store's ops. */
#include "hub/mpesa_receipts.h"

#include <string.h>

#include "hub/hub_store_impl.h"

duka_rc duka_hub_mpesa_receipt_put(duka_hub_store *s, const char *business_id,
                                   const duka_mpesa_payment *p, const char *source,
                                   int64_t now_ms, bool *inserted, duka_err *err)
{
    *inserted = false;
    if (!duka_mpesa_receipt_valid(p->receipt))
        return duka_err_set(err, DUKA_INPUT, "M-Pesa receipt '%.20s' is not 10 of A-Z 0-9",
                            p->receipt);
    return s->ops->mpesa_receipt_put(s, business_id, p, source, now_ms, inserted, err);
}

duka_rc duka_hub_mpesa_receipt_get(duka_hub_store *s, const char *business_id,
                                   const char *receipt, duka_mpesa_receipt *out, bool *found,
                                   duka_err *err)
{
    memset(out, 0, sizeof(*out));
    *found = false;
    return s->ops->mpesa_receipt_get(s, business_id, receipt, out, found, err);
}

duka_rc duka_hub_mpesa_receipt_credit(duka_hub_store *s, const char *business_id,
                                      const char *receipt, const char *sale_receipt_no,
                                      int64_t now_ms, char holder[DUKA_RECEIPT_NO_MAX + 1],
                                      duka_err *err)
{
    holder[0] = '\0';
    bool found = false;
    duka_rc rc = s->ops->mpesa_receipt_credit(s, business_id, receipt, sale_receipt_no, now_ms,
                                              holder, DUKA_RECEIPT_NO_MAX + 1, &found, err);
    if (rc == DUKA_OK && !found)
        return duka_err_set(err, DUKA_NOTFOUND, "M-Pesa receipt %s is not at the hub", receipt);
    return rc;
}

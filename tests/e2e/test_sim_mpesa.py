#!/usr/bin/env python3
"""`duka sim mpesa`, the simulator of Safaricom's M-Pesa Daraja API (issue 13).

Real `duka sim mpesa` processes on free ports, spoken to over HTTP; the callbacks it POSTs
(STK results, C2B validation and confirmation, transaction status results) land on a small
http.server of this file on another free loopback port. The request bodies, the Password
(base64 of shortcode + passkey + Timestamp) and the expected replies are written here from the
interface, independently of the simulator's C code:

- OAuth: the right key and secret give a 28-character token and expires_in "3599"; wrong or
  missing credentials 400.008.01, a missing or other grant_type 400.008.02; --consumer-key and
  --consumer-secret replace the defaults.
- a missing, made-up or expired (token_life_s) bearer token is HTTP 404 404.001.03 on every
  Daraja call, and nothing is recorded.
- STK push: each field broken alone (bad, missing, out of range) is 400 400.002.02 "Bad
  Request - Invalid <Field>" with nothing in /_sim/prompts; a wrong Password is 500
  500.001.1001 "Wrong credentials"; the edges accepted (Amount 1 and 250000, numbers or
  strings, 5- and 7-digit shortcodes, 2541 numbers, 12-character AccountReference,
  100-character TransactionDesc); a UTC Timestamp, 'CustomerPayBillOnline ' with mpesa-node's
  'Lipa na mpesa online', and CustomerBuyGoodsOnline accepted.
- the scripted customer: pay, cancel, wrong-pin, insufficient, unreachable and ignore (at the
  prompt's expiry) each give their ResultCode and ResultDesc in the STK query and in the
  callback (CallbackMetadata only on success, its receipt in /_sim/payments); the query of an
  unanswered push is 500 "The transaction is being processed", of an unknown id 400.002.02;
  --answer and the answer knob set the default, "default" forgets a scripted phone.
- a second push to a phone with an unanswered prompt: accepted, ResultCode 1001 at once,
  shown false.
- callbacks: callback_twice 1 sends two identical ones; callback_never 1 sends none (dropped)
  while the query still answers; callback_delay_ms holds it back.
- faults: fail_rate 1 is 500 500.003.02 for pushes and queries with nothing kept;
  spike_arrest_per_s refuses the calls beyond N a second; an outage (at run time and
  scheduled) is 503 text/plain while /_sim answers; latency_ms; timeout_after_accept: a client
  with a 1 s timeout gets no reply, yet the prompt was recorded and shown (reply_held), the
  customer's answer still reaches the callback, and SIGTERM with a held reply exits at once.
- C2B: register, simulate, validation accepted ("0" or 0) then confirmation (Pay Bill / Buy
  Goods, TransID, TransAmount, MSISDN) and a payment; validation refused (C2B00011): no
  confirmation, no payment; POST /_sim/c2b with a chosen TransID and FirstName; MSISDN masked
  and sha256 in confirmations; an unreachable callback URL is "failed", and with no answer from
  the ValidationURL the registered ResponseType decides (Completed pays, Cancelled does not).
- transaction status: a known receipt (C2B and STK) gives a Result with ReceiptNo,
  TransactionStatus Completed and the Amount; an unknown one R000001 without ResultParameters.
- a restart on the same --state remembers prompts and payments; /_sim/faults all-or-none and
  its refusals; the command line's errors (exit 2 usage, exit 1 bad values) and start line.
"""

import base64
import hashlib
import http.client as httpclient
import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOWDOWN, Suite, _Server, check, check_eq, expect_error,  # noqa: E402
                     free_port, http, http_json, wait_for)

suite = Suite("sim_mpesa")

KEY = "duka-sim-key"
SECRET = "duka-sim-secret"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SHORTCODE = "174379"  # the sandbox's Lipa na M-Pesa shortcode
C2B_SHORTCODE = "600000"
PHONE = "254708374149"  # the sandbox's test number
RECEIPT_RE = re.compile(r"^[A-Z0-9]{10}$")
TS_RE = re.compile(r"^\d{14}$")
ACCEPTED = "Success. Request accepted for processing"
RESULT_DESC = {
    "pay": (0, "The service request is processed successfully."),
    "cancel": (1032, "Request cancelled by user"),
    "wrong-pin": (2001, "The initiator information is invalid."),
    "insufficient": (1, "The balance is insufficient for the transaction."),
    "unreachable": (1037, "DS timeout user cannot be reached"),
    "ignore": (1037, "DS timeout user cannot be reached"),
}
KNOBS = ("outage", "outage_every_s", "outage_for_s", "fail_rate", "latency_ms",
         "timeout_after_accept", "callback_delay_ms", "callback_twice", "callback_never",
         "spike_arrest_per_s", "answer", "answer_after_ms", "prompt_expiry_ms", "token_life_s",
         "msisdn")
PROMPT_KEYS = {"CheckoutRequestID", "MerchantRequestID", "BusinessShortCode", "PhoneNumber",
               "Amount", "AccountReference", "TransactionDesc", "status", "ResultCode",
               "ResultDesc", "MpesaReceiptNumber", "shown", "reply_held", "requested_ms",
               "answered_ms"}


def phone(n):
    """A distinct Safaricom number per use (254 7XX XXX XXX), so no prompt waits on another."""
    return "2547%08d" % (10000000 + n)


def eat_timestamp():
    """YYYYMMDDHHmmss in East Africa Time (UTC+3), what Safaricom's own examples use."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 3 * 3600))


def utc_timestamp():
    """mpesa-node's and mpesa-api's Timestamp: new Date().toISOString() without its zone."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


def password(shortcode, timestamp, passkey=PASSKEY):
    return base64.b64encode(("%s%s%s" % (shortcode, passkey, timestamp)).encode()).decode()


def stk_body(phone_no=PHONE, amount=10, callback="http://127.0.0.1:9/cb", ref="INV001",
             **over):
    """A valid STK push body; keyword arguments replace fields (None removes one). The
    Password follows BusinessShortCode and Timestamp unless given."""
    body = {"BusinessShortCode": SHORTCODE, "Timestamp": eat_timestamp(),
            "TransactionType": "CustomerPayBillOnline", "Amount": amount, "PartyA": phone_no,
            "PartyB": SHORTCODE, "PhoneNumber": phone_no, "CallBackURL": callback,
            "AccountReference": ref, "TransactionDesc": "Payment of INV001"}
    body.update({k: v for k, v in over.items() if k != "Password"})
    body["Password"] = password(body.get("BusinessShortCode"), body.get("Timestamp"))
    if "Password" in over:
        body["Password"] = over["Password"]
    return {k: v for k, v in body.items() if v is not None}


def query_body(checkout_id, shortcode=SHORTCODE):
    ts = eat_timestamp()
    return {"BusinessShortCode": shortcode, "Password": password(shortcode, ts),
            "Timestamp": ts, "CheckoutRequestID": checkout_id}


# ---------------------------------------------------------------------------------------------
# the simulator and the callbacks' receiver
# ---------------------------------------------------------------------------------------------
class MpesaSim(_Server):
    health_path = "/_sim/health"
    kind = "mpesa"

    def __init__(self, ctx, port=None, state=None, extra=()):
        self.state = state or ctx.path("mpesa.db")
        port = port or free_port()
        super().__init__(["sim", "mpesa", "--listen", "127.0.0.1:%d" % port, "--state",
                          self.state] + [str(a) for a in extra], port, ctx.tmp)
        self._token = None

    def post(self, path, body, headers=None, timeout=10):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return http_json("POST", self.port, path, body=data, headers=h, timeout=timeout)

    def oauth(self, key=KEY, secret=SECRET, query="?grant_type=client_credentials"):
        h = {}
        if key is not None:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (key, secret)).encode()).decode()
        return http_json("GET", self.port, "/oauth/v1/generate" + query, headers=h)

    def token(self, fresh=False):
        if self._token is None or fresh:
            status, reply = self.oauth()
            check(status == 200 and isinstance(reply, dict), "oauth: %s %r" % (status, reply))
            self._token = reply["access_token"]
        return self._token

    def daraja(self, path, body, token=None, timeout=10):
        """POST to a Daraja endpoint with a bearer token (ours unless given); (status, json)."""
        return self.post(path, body, {"Authorization": "Bearer " + (token or self.token())},
                         timeout)

    def push(self, body, **kw):
        return self.daraja("/mpesa/stkpush/v1/processrequest", body, **kw)

    def push_ok(self, body, what="push"):
        status, reply = self.push(body)
        check(status == 200 and isinstance(reply, dict), "%s: %s %r (body %r)"
              % (what, status, reply, body))
        check_eq(reply.get("ResponseCode"), "0", "%s: ResponseCode" % what)
        check_eq(reply.get("ResponseDescription"), ACCEPTED, "%s: ResponseDescription" % what)
        check(str(reply.get("CheckoutRequestID", "")).startswith("ws_CO_"),
              "%s: CheckoutRequestID %r" % (what, reply.get("CheckoutRequestID")))
        check(isinstance(reply.get("MerchantRequestID"), str) and reply["MerchantRequestID"],
              "%s: MerchantRequestID %r" % (what, reply.get("MerchantRequestID")))
        check(isinstance(reply.get("CustomerMessage"), str), "%s: CustomerMessage" % what)
        return reply

    def query(self, checkout_id, **kw):
        return self.daraja("/mpesa/stkpushquery/v1/query", query_body(checkout_id), **kw)

    def faults(self, **knobs):
        status, reply = self.post("/_sim/faults", knobs)
        check_eq(status, 200, "POST /_sim/faults %r: %r" % (knobs, reply))
        return reply

    def customer(self, phone_no, answer, after_ms=None):
        body = {"phone": phone_no, "answer": answer}
        if after_ms is not None:
            body["after_ms"] = after_ms
        status, reply = self.post("/_sim/customers", body)
        check_eq(status, 200, "POST /_sim/customers %r: %r" % (body, reply))
        return reply

    def get(self, path, key):
        status, reply = http_json("GET", self.port, path)
        check(status == 200 and isinstance(reply, dict) and isinstance(reply.get(key), list),
              "GET %s: %s %r" % (path, status, reply))
        return reply[key]

    def prompts(self, query=""):
        return self.get("/_sim/prompts" + query, "prompts")

    def prompt(self, checkout_id):
        found = [p for p in self.prompts() if p.get("CheckoutRequestID") == checkout_id]
        check_eq(len(found), 1, "prompts with CheckoutRequestID %s" % checkout_id)
        return found[0]

    def payments(self):
        return self.get("/_sim/payments", "payments")

    def callbacks(self, kind=None):
        return [c for c in self.get("/_sim/callbacks", "callbacks")
                if kind is None or c.get("kind") == kind]

    def settled(self):
        """No callback is due any more (all sent, failed or dropped)."""
        return all(c.get("state") != "due" for c in self.callbacks())


class Receiver:
    """A loopback HTTP server standing in for the business's callback URLs: records every
    POST (path, parsed JSON, arrival time) and answers the JSON set for its path (by default
    {"ResultCode": 0, "ResultDesc": "Accepted"})."""

    def __init__(self, ctx):
        self.got = []
        self.replies = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        raw += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = None
                reply = receiver.replies.get(self.path, {"ResultCode": 0,
                                                         "ResultDesc": "Accepted"})
                data = json.dumps(reply).encode()
                with receiver.cond:
                    receiver.got.append({"path": self.path, "body": body, "raw": raw,
                                         "t": time.monotonic(),
                                         "content_type": self.headers.get("Content-Type")})
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        ctx.on_cleanup(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def at(self, path):
        with self.cond:
            return [g for g in self.got if g["path"] == path]

    def wait(self, path, n=1, seconds=10):
        """The first n POSTs to path (waits for them)."""
        wait_for(lambda: len(self.at(path)) >= n, seconds,
                 "%d POST(s) to %s (got %r)" % (n, path, [g["path"] for g in self.got]))
        return self.at(path)[:n]


def expect_error_reply(status, reply, want_status, code, message=None, what=""):
    """A Daraja error: HTTP want_status, {"requestId","errorCode","errorMessage"}."""
    check(status == want_status and isinstance(reply, dict),
          "%s: want HTTP %d, got %s %r" % (what, want_status, status, reply))
    check_eq(set(reply), {"requestId", "errorCode", "errorMessage"}, "%s: error keys" % what)
    check_eq(reply["errorCode"], code, "%s: errorCode" % what)
    if message is not None:
        check_eq(reply["errorMessage"], message, "%s: errorMessage" % what)
    return reply


def items_of(stk_callback):
    return {i["Name"]: i.get("Value") for i in stk_callback["CallbackMetadata"]["Item"]}


def check_date14(value, what):
    s = str(value)
    check(TS_RE.match(s), "%s: %r is not YYYYMMDDHHmmss" % (what, value))
    time.strptime(s, "%Y%m%d%H%M%S")


# ---------------------------------------------------------------------------------------------
# OAuth and tokens
# ---------------------------------------------------------------------------------------------
@suite.test
def oauth_good_and_bad_credentials(ctx):
    sim = MpesaSim(ctx).start()
    status, reply = sim.oauth()
    check_eq(status, 200, "oauth with the default key and secret")
    check_eq(set(reply), {"access_token", "expires_in"}, "oauth reply keys")
    check_eq(len(reply["access_token"]), 28, "access_token length (%r)" % reply["access_token"])
    check_eq(reply["expires_in"], "3599", "expires_in (a string)")
    for key, secret, what in ((KEY, "wrong", "a wrong secret"), ("wrong", SECRET, "a wrong key"),
                              (None, None, "no Authorization")):
        status, reply = sim.oauth(key, secret)
        expect_error_reply(status, reply, 400, "400.008.01", what=what)
    for query, what in (("", "no grant_type"), ("?grant_type=password", "grant_type=password")):
        status, reply = sim.oauth(query=query)
        expect_error_reply(status, reply, 400, "400.008.02", what=what)
    # other credentials on the command line
    sim2 = MpesaSim(ctx, state=ctx.path("other.db"),
                    extra=["--consumer-key", "k2", "--consumer-secret", "s2"]).start()
    status, reply = sim2.oauth("k2", "s2")
    check(status == 200 and len(reply["access_token"]) == 28, "oauth k2:s2: %s %r"
          % (status, reply))
    status, reply = sim2.oauth()
    expect_error_reply(status, reply, 400, "400.008.01", what="the defaults after --consumer-key")
    status, reply = sim2.push(stk_body(), token=sim.token())
    expect_error_reply(status, reply, 404, "404.001.03", "Invalid Access Token",
                       "another simulator's token")


@suite.test
def a_bad_token_is_404_001_03_everywhere(ctx):
    sim = MpesaSim(ctx).start()
    calls = (("/mpesa/stkpush/v1/processrequest", stk_body()),
             ("/mpesa/stkpushquery/v1/query", query_body("ws_CO_000000000000000000")),
             ("/mpesa/c2b/v1/registerurl", {"ShortCode": C2B_SHORTCODE,
                                            "ResponseType": "Completed",
                                            "ConfirmationURL": "http://127.0.0.1:9/c",
                                            "ValidationURL": "http://127.0.0.1:9/v"}),
             ("/mpesa/c2b/v1/simulate", {"ShortCode": C2B_SHORTCODE,
                                         "CommandID": "CustomerPayBillOnline", "Amount": 5,
                                         "Msisdn": PHONE, "BillRefNumber": "X"}))
    basic = "Basic " + base64.b64encode(("%s:%s" % (KEY, SECRET)).encode()).decode()
    for path, body in calls:
        for headers, what in (({}, "no Authorization"),
                              ({"Authorization": "Bearer " + "A" * 28}, "a made-up token"),
                              ({"Authorization": basic}, "Basic instead of Bearer"),
                              ({"Authorization": "Bearer"}, "an empty bearer")):
            status, reply = sim.post(path, body, headers)
            expect_error_reply(status, reply, 404, "404.001.03", "Invalid Access Token",
                               "%s with %s" % (path, what))
    # an expired token
    check_eq(sim.faults(token_life_s=1)["token_life_s"], 1, "token_life_s knob")
    status, reply = sim.oauth()
    check_eq((status, reply["expires_in"]), (200, "1"), "expires_in follows token_life_s")
    token = reply["access_token"]
    time.sleep(1.3)
    status, reply = sim.push(stk_body(), token=token)
    expect_error_reply(status, reply, 404, "404.001.03", "Invalid Access Token",
                       "an expired token")
    check_eq(sim.prompts(), [], "nothing recorded")
    check_eq(sim.payments(), [], "no payment")


# ---------------------------------------------------------------------------------------------
# STK push: validation
# ---------------------------------------------------------------------------------------------
BAD_FIELDS = [
    ("BusinessShortCode", "1234"), ("BusinessShortCode", "12345678"),
    ("BusinessShortCode", "17437a"), ("BusinessShortCode", None),
    ("Timestamp", "2026120421300"), ("Timestamp", "2026120421300a"), ("Timestamp", None),
    ("TransactionType", "CustomerPay"), ("TransactionType", ""), ("TransactionType", None),
    ("Amount", 0), ("Amount", -5), ("Amount", 250001), ("Amount", 10.5), ("Amount", "abc"),
    ("Amount", None),
    ("PartyA", "0708374149"), ("PartyA", "255708374149"), ("PartyA", "2547083741490"),
    ("PartyA", None),
    ("PhoneNumber", "254808374149"), ("PhoneNumber", "25470837414"), ("PhoneNumber", None),
    ("PartyB", "12"), ("PartyB", "abcdef"), ("PartyB", None),
    ("CallBackURL", "ftp://127.0.0.1/cb"), ("CallBackURL", "not a url"), ("CallBackURL", ""),
    ("CallBackURL", None),
    ("AccountReference", ""), ("AccountReference", "ABCDEFGHIJKLM"), ("AccountReference", None),
    ("TransactionDesc", ""), ("TransactionDesc", "x" * 101), ("TransactionDesc", None),
    ("Password", ""), ("Password", None),
]


@suite.test
def stk_push_refuses_each_bad_field_and_keeps_nothing(ctx):
    sim = MpesaSim(ctx).start()
    problems = []
    for field, value in BAD_FIELDS:
        body = stk_body(**{field: value})
        if field == "Timestamp" and value is None:
            body["Password"] = password(SHORTCODE, eat_timestamp())
        status, reply = sim.push(body)
        want = "Bad Request - Invalid %s" % field
        if not (status == 400 and isinstance(reply, dict)
                and reply.get("errorCode") == "400.002.02"
                and reply.get("errorMessage") == want):
            problems.append("%s=%r -> %s %r (want 400 400.002.02 %r)"
                            % (field, value, status, reply, want))
    check(not problems, "%d of %d bad fields not refused as they should be:\n    %s"
          % (len(problems), len(BAD_FIELDS), "\n    ".join(problems)))
    status, reply = sim.push(b"{not json")
    check_eq(status, 400, "malformed JSON: %r" % (reply,))
    check_eq(sim.prompts(), [], "nothing recorded in /_sim/prompts")


@suite.test
def stk_push_wrong_password_is_500_001_1001(ctx):
    sim = MpesaSim(ctx).start()
    ts = eat_timestamp()
    for pw, what in ((password(SHORTCODE, ts, "0" * 64), "another passkey"),
                     (password(SHORTCODE, "20200101000000"), "another Timestamp's"),
                     (password("600000", ts), "another shortcode's"),
                     ("not base64 at all!", "not base64")):
        status, reply = sim.push(stk_body(Timestamp=ts, Password=pw))
        expect_error_reply(status, reply, 500, "500.001.1001", "Wrong credentials", what)
    check_eq(sim.prompts(), [], "nothing recorded")
    # --passkey replaces the sandbox's
    sim2 = MpesaSim(ctx, state=ctx.path("p2.db"), extra=["--passkey", "abc123"]).start()
    status, reply = sim2.push(stk_body())
    expect_error_reply(status, reply, 500, "500.001.1001", "Wrong credentials",
                       "the sandbox passkey after --passkey")
    sim2.push_ok(stk_body(Password=password(SHORTCODE, ts, "abc123"), Timestamp=ts),
                 "with the --passkey")


@suite.test
def stk_push_accepts_the_edges(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "60000"]).start()
    cases = [
        ({"Amount": 1}, "Amount 1"), ({"Amount": 250000}, "Amount 250000"),
        ({"Amount": "10"}, "Amount as a string"),
        ({"BusinessShortCode": 174379, "PartyB": 174379}, "shortcodes as numbers"),
        ({"BusinessShortCode": "12345", "PartyB": "12345"}, "5-digit shortcode"),
        ({"BusinessShortCode": "1234567", "PartyB": "1234567"}, "7-digit shortcode"),
        ({"AccountReference": "ABCDEFGHIJKL"}, "12-character AccountReference"),
        ({"TransactionDesc": "d" * 100}, "100-character TransactionDesc"),
        ({"CallBackURL": "https://shop.example.co.ke/mpesa/cb?x=1"}, "an https CallBackURL"),
        ({"TransactionType": "CustomerBuyGoodsOnline"}, "CustomerBuyGoodsOnline"),
    ]
    ids = []
    for i, (over, what) in enumerate(cases):
        p = phone(100 + i)
        ids.append(sim.push_ok(stk_body(p, **over), what)["CheckoutRequestID"])
    # numbers as numbers, and a 2541 number
    for i, p in enumerate(("254110000001", "254708000777")):
        ids.append(sim.push_ok(stk_body(int(p), ref="NUM%d" % i), "PhoneNumber %s as a number"
                               % p)["CheckoutRequestID"])
    check_eq(len(set(ids)), len(ids), "every CheckoutRequestID distinct")
    prompts = sim.prompts()
    check_eq(sorted(p["CheckoutRequestID"] for p in prompts), sorted(ids), "all recorded")
    for p in prompts:
        check(PROMPT_KEYS <= set(p), "prompt keys: missing %r" % (PROMPT_KEYS - set(p)))
        check_eq((p["status"], p["ResultCode"], p["MpesaReceiptNumber"], p["shown"]),
                 ("pending", None, None, True), "a prompt not yet answered")
    # the filters
    one = sim.prompts("?phone=%s" % phone(100))
    check_eq([(str(p["PhoneNumber"]), float(p["Amount"])) for p in one], [(phone(100), 1.0)],
             "?phone=")
    ref = sim.prompts("?account_reference=NUM1")
    check_eq([str(p["PhoneNumber"]) for p in ref], ["254708000777"], "?account_reference=")
    check_eq(sim.prompts("?phone=254799999999"), [], "?phone= of nobody")


@suite.test
def utc_timestamp_and_the_clients_defaults_accepted(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "60000"]).start()
    ts = utc_timestamp()
    sim.push_ok(stk_body(phone(1), Timestamp=ts, TransactionType="CustomerPayBillOnline ",
                         TransactionDesc="Lipa Na Mpesa Online"), "mpesa-api's defaults (UTC)")
    ts = utc_timestamp()
    sim.push_ok(stk_body(phone(2), Timestamp=ts, TransactionDesc="Lipa na mpesa online"),
                "mpesa-node's defaults (UTC)")
    p = sim.prompts("?phone=%s" % phone(2))
    check_eq([x["TransactionDesc"] for x in p], ["Lipa na mpesa online"], "TransactionDesc kept")


# ---------------------------------------------------------------------------------------------
# STK push: the customer's answers, the query and the callback
# ---------------------------------------------------------------------------------------------
@suite.test
def each_scripted_answer_in_query_and_callback(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "60000"]).start()
    rx = Receiver(ctx)
    sim.faults(prompt_expiry_ms=1000)
    pushes = {}
    for i, answer in enumerate(RESULT_DESC):
        p = phone(200 + i)
        sim.customer(p, answer, after_ms=250)
        pushes[answer] = (p, sim.push_ok(stk_body(p, amount=10 + i,
                                                  callback=rx.url("/stk/" + answer),
                                                  ref="INV%03d" % i), answer))
    got = {a: rx.wait("/stk/" + a, seconds=10)[0]["body"] for a in RESULT_DESC if a != "ignore"}
    check_eq(sim.prompt(pushes["ignore"][1]["CheckoutRequestID"])["status"], "pending",
             "the ignored prompt before its expiry")
    got["ignore"] = rx.wait("/stk/ignore", seconds=10)[0]["body"]
    receipt = None
    for i, (answer, (code, desc)) in enumerate(RESULT_DESC.items()):
        p, pushed = pushes[answer]
        cb = got[answer]
        check(isinstance(cb, dict) and set(cb) == {"Body"} and set(cb["Body"]) == {"stkCallback"},
              "%s: callback shape %r" % (answer, cb))
        s = cb["Body"]["stkCallback"]
        check_eq((s.get("MerchantRequestID"), s.get("CheckoutRequestID")),
                 (pushed["MerchantRequestID"], pushed["CheckoutRequestID"]), "%s: ids" % answer)
        check(type(s.get("ResultCode")) is int, "%s: ResultCode a number: %r"
              % (answer, s.get("ResultCode")))
        check_eq((s["ResultCode"], s.get("ResultDesc")), (code, desc), "%s: callback" % answer)
        check("AccountReference" not in s, "%s: no AccountReference in the callback" % answer)
        if code == 0:
            names = [it.get("Name") for it in s["CallbackMetadata"]["Item"]]
            check_eq(names, ["Amount", "MpesaReceiptNumber", "Balance", "TransactionDate",
                             "PhoneNumber"], "CallbackMetadata names")
            it = items_of(s)
            check(isinstance(it["Amount"], (int, float)) and it["Amount"] == 10 + i,
                  "Amount %r" % it["Amount"])
            receipt = it["MpesaReceiptNumber"]
            check(isinstance(receipt, str) and RECEIPT_RE.match(receipt), "receipt %r" % receipt)
            check(type(it["TransactionDate"]) is int, "TransactionDate a number: %r"
                  % it["TransactionDate"])
            check_date14(it["TransactionDate"], "TransactionDate")
            check_eq(it["PhoneNumber"], int(p), "PhoneNumber (a number)")
        else:
            check("CallbackMetadata" not in s, "%s: no CallbackMetadata on failure" % answer)
        status, q = sim.query(pushed["CheckoutRequestID"])
        check_eq(status, 200, "%s: query HTTP status (%r)" % (answer, q))
        check_eq((q.get("ResponseCode"), q.get("ResultCode"), q.get("ResultDesc"),
                  q.get("CheckoutRequestID"), q.get("MerchantRequestID")),
                 ("0", str(code), desc, pushed["CheckoutRequestID"],
                  pushed["MerchantRequestID"]), "%s: query" % answer)
        check(isinstance(q.get("ResponseDescription"), str), "ResponseDescription")
        pr = sim.prompt(pushed["CheckoutRequestID"])
        check_eq((pr["status"], pr["ResultCode"], pr["ResultDesc"], pr["shown"],
                  pr["MpesaReceiptNumber"]),
                 ("answered", code, desc, True, receipt if code == 0 else None),
                 "%s: /_sim/prompts" % answer)
        took = pr["answered_ms"] - pr["requested_ms"]
        if answer == "ignore":
            check(took >= 950, "ignore answered at the prompt's expiry (after %d ms)" % took)
        else:
            check(240 <= took < 950, "%s answered after its 250 ms (%d ms)" % (answer, took))
    pays = sim.payments()
    p, pushed = pushes["pay"]
    check_eq(len(pays), 1, "one payment (%r)" % pays)
    got_pay = {k: pays[0].get(k) for k in ("receipt", "kind", "amount", "phone", "shortcode",
                                           "reference", "checkout_request_id")}
    got_pay["phone"], got_pay["shortcode"] = str(got_pay["phone"]), str(got_pay["shortcode"])
    check_eq(got_pay,
             {"receipt": receipt, "kind": "stk", "amount": 10, "phone": p,
              "shortcode": SHORTCODE, "reference": "INV000",
              "checkout_request_id": pushed["CheckoutRequestID"]}, "the payment")
    check_date14(pays[0]["time"], "payment time")
    cbs = sim.callbacks("stk_callback")
    check_eq(sorted((c["state"], c["http_status"]) for c in cbs), [("sent", 200)] * 6,
             "/_sim/callbacks")


@suite.test
def stk_query_pending_unknown_and_the_default_answer(ctx):
    sim = MpesaSim(ctx, extra=["--answer", "cancel", "--answer-after-ms", "300"]).start()
    rx = Receiver(ctx)
    pushed = sim.push_ok(stk_body(phone(1), callback=rx.url("/cb")))
    status, reply = sim.query(pushed["CheckoutRequestID"])
    expect_error_reply(status, reply, 500, "500.001.1001", "The transaction is being processed",
                       "the query of an unanswered push")
    status, reply = sim.query("ws_CO_04122026000000000000000")
    expect_error_reply(status, reply, 400, "400.002.02", what="the query of an unknown id")
    s = rx.wait("/cb")[0]["body"]["Body"]["stkCallback"]
    check_eq(s["ResultCode"], 1032, "--answer cancel")
    # the knob changes the default; a scripted phone keeps its own until "default"
    check_eq(sim.faults(answer="pay", answer_after_ms=200)["answer"], "pay", "answer knob")
    sim.customer(phone(2), "insufficient", after_ms=200)
    customers = sim.get("/_sim/customers", "customers")
    check(any(str(c.get("phone")) == phone(2) and c.get("answer") == "insufficient"
              for c in customers), "GET /_sim/customers: %r" % customers)
    sim.push_ok(stk_body(phone(2), callback=rx.url("/cb2")))
    check_eq(rx.wait("/cb2")[0]["body"]["Body"]["stkCallback"]["ResultCode"], 1, "scripted")
    sim.customer(phone(2), "default")
    check(not any(str(c.get("phone")) == phone(2) for c in sim.get("/_sim/customers",
                                                                     "customers")),
          "forgotten after \"default\"")
    sim.push_ok(stk_body(phone(2), callback=rx.url("/cb3")))
    check_eq(rx.wait("/cb3")[0]["body"]["Body"]["stkCallback"]["ResultCode"], 0,
             "the default answer again")
    for body, what in (({"phone": PHONE, "answer": "maybe"}, "an unknown answer"),
                       ({"phone": "0708", "answer": "pay"}, "a bad phone"),
                       ({"phone": PHONE, "answer": "pay", "after_ms": -1}, "after_ms -1")):
        status, reply = sim.post("/_sim/customers", body)
        check_eq(status, 400, "POST /_sim/customers with %s: %r" % (what, reply))


@suite.test
def a_second_push_while_pending_is_1001_and_not_shown(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "800"]).start()
    rx = Receiver(ctx)
    first = sim.push_ok(stk_body(PHONE, callback=rx.url("/first")), "first push")
    second = sim.push_ok(stk_body(PHONE, callback=rx.url("/second"), ref="INV002"),
                         "second push while the first is pending")
    s = rx.wait("/second", seconds=5)[0]["body"]["Body"]["stkCallback"]
    check_eq((s["CheckoutRequestID"], s["ResultCode"]), (second["CheckoutRequestID"], 1001),
             "the second's callback")
    check_eq(rx.at("/first"), [], "the first still unanswered when the second's result came")
    status, q = sim.query(second["CheckoutRequestID"])
    check_eq((status, q.get("ResultCode")), (200, "1001"), "the second's query")
    pr = {p["CheckoutRequestID"]: p for p in sim.prompts("?phone=%s" % PHONE)}
    check_eq((pr[first["CheckoutRequestID"]]["shown"], pr[second["CheckoutRequestID"]]["shown"]),
             (True, False), "shown")
    check_eq(pr[second["CheckoutRequestID"]]["ResultCode"], 1001, "the second's ResultCode")
    check_eq(pr[first["CheckoutRequestID"]]["status"], "pending", "the first still pending")
    s = rx.wait("/first", seconds=5)[0]["body"]["Body"]["stkCallback"]
    check_eq(s["ResultCode"], 0, "the first paid")
    check_eq(len(sim.payments()), 1, "one payment")


# ---------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------
@suite.test
def callback_twice_sends_two_identical(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "200", "--callback-twice", "1"]).start()
    rx = Receiver(ctx)
    sim.push_ok(stk_body(callback=rx.url("/cb")))
    two = rx.wait("/cb", n=2)
    check_eq(two[0]["raw"], two[1]["raw"], "the two callbacks, byte for byte")
    check_eq(two[0]["body"]["Body"]["stkCallback"]["ResultCode"], 0, "paid")
    wait_for(sim.settled, 5, "no callback due")
    check_eq(len(rx.at("/cb")), 2, "exactly two")
    check_eq(len(sim.payments()), 1, "one payment for the two callbacks")


@suite.test
def callback_never_drops_it_while_the_query_answers(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "200"]).start()
    rx = Receiver(ctx)
    check_eq(sim.faults(callback_never=1)["callback_never"], 1, "knob")
    pushed = sim.push_ok(stk_body(callback=rx.url("/cb")))
    wait_for(lambda: sim.prompt(pushed["CheckoutRequestID"])["status"] == "answered", 5,
             "the prompt answered")
    wait_for(sim.settled, 5, "no callback due")
    check_eq([c["state"] for c in sim.callbacks("stk_callback")], ["dropped"], "its state")
    check_eq(rx.at("/cb"), [], "no callback received")
    status, q = sim.query(pushed["CheckoutRequestID"])
    check_eq((status, q.get("ResultCode")), (200, "0"), "the query still knows")
    check_eq(len(sim.payments()), 1, "the payment is made")


@suite.test
def callback_delay_holds_it_back(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "200", "--callback-delay-ms", "800"]).start()
    rx = Receiver(ctx)
    t0 = time.monotonic()
    pushed = sim.push_ok(stk_body(callback=rx.url("/cb")))
    wait_for(lambda: sim.prompt(pushed["CheckoutRequestID"])["status"] == "answered", 5,
             "the prompt answered")
    check_eq(rx.at("/cb"), [], "no callback as soon as the prompt is answered")
    check_eq([c["state"] for c in sim.callbacks("stk_callback")], ["due"], "due meanwhile")
    got = rx.wait("/cb", seconds=5)[0]
    check(got["t"] - t0 >= 0.95, "the callback came %.2f s after the push (0.2 + 0.8)"
          % (got["t"] - t0))
    check_eq(sim.faults(callback_delay_ms=0)["callback_delay_ms"], 0, "knob off")


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------
@suite.test
def fail_rate_one_is_500_003_02_and_keeps_nothing(ctx):
    sim = MpesaSim(ctx, extra=["--fail-rate", "1", "--seed", "3"]).start()
    for i in range(3):
        status, reply = sim.push(stk_body(phone(i)))
        expect_error_reply(status, reply, 500, "500.003.02", what="push %d" % i)
    check_eq(sim.prompts(), [], "nothing recorded")
    check_eq(sim.faults(fail_rate=0)["fail_rate"], 0, "fail_rate off")
    pushed = sim.push_ok(stk_body(phone(9)))
    sim.faults(fail_rate=1)
    status, reply = sim.query(pushed["CheckoutRequestID"])
    expect_error_reply(status, reply, 500, "500.003.02", what="a query")
    sim.faults(fail_rate=0.5)
    codes = [sim.push(stk_body(phone(20 + i)))[0] for i in range(30)]
    check(200 in codes and 500 in codes and set(codes) == {200, 500},
          "fail_rate 0.5 gives both: %r" % codes)
    check_eq(len(sim.prompts()), 1 + codes.count(200), "only the accepted recorded")


@suite.test
def spike_arrest_refuses_beyond_n_per_second(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "60000"]).start()
    sim.token()
    check_eq(sim.faults(spike_arrest_per_s=2)["spike_arrest_per_s"], 2, "knob")
    replies = {}

    def send(i):
        replies[i] = sim.push(stk_body(phone(i)))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    ok = [i for i, (s, _) in replies.items() if s == 200]
    refused = [r for s, r in replies.values() if s != 200]
    check(1 <= len(ok) <= 4, "2 a second: %d of 10 at once accepted" % len(ok))
    for r in refused:
        check(isinstance(r, dict) and r.get("errorCode") == "500.003.02",
              "refused with 500.003.02: %r" % (r,))
    check(all(s in (200, 500) for s, _ in replies.values()), "only 200 and 500: %r"
          % [s for s, _ in replies.values()])
    check_eq(len(sim.prompts()), len(ok), "only the accepted recorded")
    time.sleep(1.1)
    sim.push_ok(stk_body(phone(50)), "a push in the next second")


@suite.test
def outage_is_503_text_while_control_answers(ctx):
    sim = MpesaSim(ctx).start()
    sim.token()
    check_eq(sim.faults(outage=True)["outage"], True, "outage on")
    for method, path, body in (("POST", "/mpesa/stkpush/v1/processrequest",
                                json.dumps(stk_body())),
                               ("GET", "/oauth/v1/generate?grant_type=client_credentials", None)):
        conn = httpclient.HTTPConnection("127.0.0.1", sim.port, timeout=10)
        conn.request(method, path, body=body, headers={"Authorization": "Bearer " + sim.token(),
                                                       "Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        check_eq(r.status, 503, "%s during the outage" % path)
        check(str(r.getheader("Content-Type")).startswith("text/plain"),
              "the 503 is text/plain: %r" % r.getheader("Content-Type"))
        try:
            json.loads(data)
            check(False, "the 503 is not JSON: %r" % data)
        except ValueError:
            pass
    status, _ = http("GET", sim.port, "/_sim/health")
    check_eq(status, 200, "health during the outage")
    check_eq(sim.prompts(), [], "nothing recorded")
    sim.faults(outage=False)
    sim.push_ok(stk_body(), "after the outage")
    # scheduled from the command line: 1 s of every 2 s
    sim2 = MpesaSim(ctx, state=ctx.path("s2.db"), extra=["--outage-every", "2", "--outage-for",
                                                          "1"]).start()

    def oauth_status():
        return sim2.oauth()[0]

    wait_for(lambda: oauth_status() == 503, 5, "a scheduled outage")
    wait_for(lambda: oauth_status() == 200, 5, "the end of the scheduled outage")


@suite.test
def latency_delays_the_answers(ctx):
    sim = MpesaSim(ctx, extra=["--latency-ms", "400"]).start()
    sim.token()
    t0 = time.monotonic()
    sim.push_ok(stk_body(), "with latency")
    check(time.monotonic() - t0 >= 0.4, "the push waited 400 ms")
    sim.faults(latency_ms=0)
    t0 = time.monotonic()
    sim.push_ok(stk_body(phone(1)), "without latency")
    check(time.monotonic() - t0 < 0.4 * SLOWDOWN, "no latency once 0")


@suite.test
def timeout_after_accept_records_the_prompt(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "300"]).start()
    rx = Receiver(ctx)
    sim.token()
    sim.faults(timeout_after_accept=1)
    t0 = time.monotonic()
    try:
        reply = sim.push(stk_body(callback=rx.url("/cb"), ref="HELD1"), timeout=1)
        check(False, "the push was answered: %r" % (reply,))
    except (socket.timeout, TimeoutError):
        pass
    check(time.monotonic() - t0 >= 0.95, "the client waited its 1 s")
    pr = sim.prompts("?account_reference=HELD1")
    check_eq(len(pr), 1, "the prompt was recorded")
    check_eq((pr[0]["shown"], pr[0]["reply_held"], str(pr[0]["PhoneNumber"])),
             (True, True, PHONE), "shown, its reply held")
    s = rx.wait("/cb", seconds=5)[0]["body"]["Body"]["stkCallback"]
    check_eq((s["CheckoutRequestID"], s["ResultCode"]), (pr[0]["CheckoutRequestID"], 0),
             "the customer paid all the same: the callback")
    sim.faults(timeout_after_accept=0)
    status, q = sim.query(pr[0]["CheckoutRequestID"])
    check_eq((status, q.get("ResultCode")), (200, "0"), "the query finds it")
    # other calls are served while a reply is held; SIGTERM with one held exits at once
    sim.faults(timeout_after_accept=1)
    conn = socket.create_connection(("127.0.0.1", sim.port))
    body = json.dumps(stk_body(phone(7), ref="HELD2")).encode()
    conn.sendall(("POST /mpesa/stkpush/v1/processrequest HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                  "Content-Length: %d\r\n\r\n" % (sim.token(), len(body))).encode() + body)
    wait_for(lambda: sim.prompts("?account_reference=HELD2"), 5, "the held push recorded")
    t0 = time.monotonic()
    status, _ = sim.oauth()
    check(status == 200 and time.monotonic() - t0 < 1 * SLOWDOWN,
          "oauth answered at once meanwhile")
    t0 = time.monotonic()
    check_eq(sim.stop(), 0, "exit code of SIGTERM with a reply held")
    check(time.monotonic() - t0 < 5 * SLOWDOWN, "stopped in %.1f s" % (time.monotonic() - t0))
    conn.close()


# ---------------------------------------------------------------------------------------------
# C2B
# ---------------------------------------------------------------------------------------------
def register(sim, rx, shortcode=C2B_SHORTCODE, prefix="/c2b"):
    status, reply = sim.daraja("/mpesa/c2b/v1/registerurl",
                               {"ShortCode": shortcode, "ResponseType": "Completed",
                                "ConfirmationURL": rx.url(prefix + "/confirm"),
                                "ValidationURL": rx.url(prefix + "/validate")})
    check_eq(status, 200, "registerurl: %r" % (reply,))
    check_eq((reply.get("ResponseCode"), reply.get("ResponseDescription")), ("0", "Success"),
             "registerurl reply")
    check("OriginatorCoverstionID" in reply, "registerurl: OriginatorCoverstionID (sic): %r"
          % reply)
    return reply


def simulate(sim, amount, msisdn, ref, command="CustomerPayBillOnline",
             shortcode=C2B_SHORTCODE):
    status, reply = sim.daraja("/mpesa/c2b/v1/simulate",
                               {"ShortCode": shortcode, "CommandID": command, "Amount": amount,
                                "Msisdn": msisdn, "BillRefNumber": ref})
    check_eq(status, 200, "c2b simulate: %r" % (reply,))
    check_eq((reply.get("ResponseCode"), reply.get("ResponseDescription")),
             ("0", "Accept the service request successfully."), "simulate reply")
    check("OriginatorCoversationID" in reply, "simulate: OriginatorCoversationID (sic): %r"
          % reply)
    return reply


def check_confirmation(c, kind, amount, shortcode, ref, msisdn=None):
    check(isinstance(c, dict), "confirmation body %r" % (c,))
    keys = {"TransactionType", "TransID", "TransTime", "TransAmount", "BusinessShortCode",
            "BillRefNumber", "InvoiceNumber", "OrgAccountBalance", "ThirdPartyTransID",
            "MSISDN", "FirstName", "MiddleName", "LastName"}
    check(keys <= set(c), "confirmation lacks %r: %r" % (keys - set(c), c))
    check_eq(c["TransactionType"], kind, "TransactionType")
    check(RECEIPT_RE.match(str(c["TransID"])), "TransID %r" % c["TransID"])
    check_date14(c["TransTime"], "TransTime")
    check(isinstance(c["TransAmount"], str) and float(c["TransAmount"]) == amount,
          "TransAmount %r (a string of %d)" % (c["TransAmount"], amount))
    check_eq((str(c["BusinessShortCode"]), c["BillRefNumber"], c["InvoiceNumber"]),
             (shortcode, ref, ""), "shortcode, BillRefNumber, InvoiceNumber")
    if msisdn is not None:
        check_eq(str(c["MSISDN"]), msisdn, "MSISDN")


@suite.test
def c2b_register_simulate_validate_and_confirm(ctx):
    sim = MpesaSim(ctx, extra=["--msisdn", "plain"]).start()
    rx = Receiver(ctx)
    register(sim, rx)
    rx.replies["/c2b/validate"] = {"ResultCode": "0", "ResultDesc": "Accepted"}
    simulate(sim, 100, PHONE, "T01-20261204-00001")
    v = rx.wait("/c2b/validate")[0]
    c = rx.wait("/c2b/confirm")[0]
    check(v["t"] <= c["t"], "validation before confirmation")
    check_eq(v["body"].get("BillRefNumber"), "T01-20261204-00001", "validation's BillRefNumber")
    check_confirmation(c["body"], "Pay Bill", 100, C2B_SHORTCODE, "T01-20261204-00001", PHONE)
    trans_id = c["body"]["TransID"]
    # Buy Goods, its validation accepted with a number
    rx.replies["/c2b/validate"] = {"ResultCode": 0, "ResultDesc": "Accepted"}
    simulate(sim, 55, phone(3), "SHOP", command="CustomerBuyGoodsOnline")
    c2 = rx.wait("/c2b/confirm", n=2)[1]["body"]
    check_confirmation(c2, "Buy Goods", 55, C2B_SHORTCODE, "SHOP", phone(3))
    check(c2["TransID"] != trans_id, "a new TransID")
    pays = sorted(sim.payments(), key=lambda p: p["amount"])
    check_eq([(p["kind"], p["receipt"], p["amount"], str(p["phone"]), str(p["shortcode"]),
               p["reference"], p["checkout_request_id"]) for p in pays],
             [("c2b", c2["TransID"], 55, phone(3), C2B_SHORTCODE, "SHOP", None),
              ("c2b", trans_id, 100, PHONE, C2B_SHORTCODE, "T01-20261204-00001", None)],
             "/_sim/payments")
    wait_for(sim.settled, 5, "no callback due")
    kinds = sorted((c["kind"], c["state"]) for c in sim.callbacks())
    check_eq(kinds, [("c2b_confirmation", "sent")] * 2 + [("c2b_validation", "sent")] * 2,
             "/_sim/callbacks")


@suite.test
def c2b_validation_refused_means_no_payment(ctx):
    sim = MpesaSim(ctx).start()
    rx = Receiver(ctx)
    register(sim, rx)
    rx.replies["/c2b/validate"] = {"ResultCode": "C2B00011", "ResultDesc": "Rejected"}
    simulate(sim, 100, PHONE, "BADREF")
    rx.wait("/c2b/validate")
    wait_for(sim.settled, 5, "no callback due")
    check_eq(rx.at("/c2b/confirm"), [], "no confirmation")
    check_eq(sim.payments(), [], "no payment")
    check_eq([c["kind"] for c in sim.callbacks()], ["c2b_validation"], "only the validation")


@suite.test
def sim_c2b_with_a_chosen_trans_id(ctx):
    sim = MpesaSim(ctx, extra=["--msisdn", "plain"]).start()
    rx = Receiver(ctx)
    register(sim, rx)
    status, reply = sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 250,
                                           "Msisdn": PHONE, "BillRefNumber": "T01-0001",
                                           "TransID": "QWE1234567", "FirstName": "Wanjiku"})
    check(status == 200 and reply.get("TransID") == "QWE1234567", "POST /_sim/c2b: %s %r"
          % (status, reply))
    c = rx.wait("/c2b/confirm")[0]["body"]
    check_confirmation(c, "Pay Bill", 250, C2B_SHORTCODE, "T01-0001", PHONE)
    check_eq((c["TransID"], c["FirstName"]), ("QWE1234567", "Wanjiku"), "chosen TransID, name")
    status, reply = sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 20,
                                           "Msisdn": phone(4), "BillRefNumber": "T01-0002"})
    check(status == 200 and RECEIPT_RE.match(str(reply.get("TransID"))),
          "POST /_sim/c2b without TransID: %s %r" % (status, reply))
    c = rx.wait("/c2b/confirm", n=2)[1]["body"]
    check_eq(c["TransID"], reply["TransID"], "the generated TransID confirmed")
    check_eq(sorted(p["receipt"] for p in sim.payments()), sorted(["QWE1234567",
                                                                    reply["TransID"]]),
             "both paid")


@suite.test
def msisdn_masked_and_sha256_in_confirmations(ctx):
    sim = MpesaSim(ctx, extra=["--msisdn", "masked"]).start()
    rx = Receiver(ctx)
    register(sim, rx)
    sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 10, "Msisdn": PHONE,
                           "BillRefNumber": "M1"})
    masked = str(rx.wait("/c2b/confirm")[0]["body"]["MSISDN"])
    check(PHONE not in masked and "*" in masked, "masked MSISDN %r" % masked)
    check_eq(sim.faults(msisdn="sha256")["msisdn"], "sha256", "knob")
    sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 10, "Msisdn": PHONE,
                           "BillRefNumber": "M2"})
    hashed = str(rx.wait("/c2b/confirm", n=2)[1]["body"]["MSISDN"])
    check_eq(hashed.lower(), hashlib.sha256(PHONE.encode()).hexdigest(), "sha256 MSISDN")
    sim.faults(msisdn="plain")
    sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 10, "Msisdn": PHONE,
                           "BillRefNumber": "M3"})
    check_eq(str(rx.wait("/c2b/confirm", n=3)[2]["body"]["MSISDN"]), PHONE, "plain again")


@suite.test
def unreachable_urls_fail_and_response_type_decides(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "100"]).start()
    rx = Receiver(ctx)
    dead = "http://127.0.0.1:%d" % free_port()
    pushed = sim.push_ok(stk_body(callback=dead + "/cb"))
    wait_for(lambda: [c["state"] for c in sim.callbacks("stk_callback")] == ["failed"], 10,
             "the callback to a closed port failed (%r)" % (sim.callbacks(),))
    check_eq(sim.callbacks("stk_callback")[0]["http_status"], None, "no HTTP status")
    status, q = sim.query(pushed["CheckoutRequestID"])
    check_eq((status, q.get("ResultCode")), (200, "0"), "paid all the same")
    # no answer from the ValidationURL: ResponseType decides, as on Daraja
    for shortcode, response_type in (("600100", "Completed"), ("600200", "Cancelled")):
        status, reply = sim.daraja("/mpesa/c2b/v1/registerurl",
                                   {"ShortCode": shortcode, "ResponseType": response_type,
                                    "ConfirmationURL": rx.url("/confirm/" + shortcode),
                                    "ValidationURL": dead + "/validate"})
        check_eq((status, reply.get("ResponseCode")), (200, "0"), "register " + response_type)
        simulate(sim, 10, PHONE, response_type, shortcode=shortcode)
    c = rx.wait("/confirm/600100")[0]["body"]
    check_eq(c["BillRefNumber"], "Completed", "ResponseType Completed: confirmed")
    wait_for(sim.settled, 10, "no callback due")
    check_eq(rx.at("/confirm/600200"), [], "ResponseType Cancelled: no confirmation")
    check_eq(sorted((p["kind"], p["reference"]) for p in sim.payments()),
             [("c2b", "Completed"), ("stk", "INV001")], "the payments")


# ---------------------------------------------------------------------------------------------
# transaction status
# ---------------------------------------------------------------------------------------------
def status_query(sim, rx, trans_id, tag, shortcode=C2B_SHORTCODE):
    status, reply = sim.daraja("/mpesa/transactionstatus/v1/query",
                               {"Initiator": "testapi", "SecurityCredential": "c2VjcmV0",
                                "CommandID": "TransactionStatusQuery", "TransactionID": trans_id,
                                "PartyA": shortcode, "IdentifierType": "4",
                                "ResultURL": rx.url("/result/" + tag),
                                "QueueTimeOutURL": rx.url("/timeout/" + tag),
                                "Remarks": "status", "Occasion": "check"})
    check_eq(status, 200, "transactionstatus of %s: %r" % (trans_id, reply))
    check_eq(reply.get("ResponseCode"), "0", "transactionstatus ResponseCode")
    for k in ("OriginatorConversationID", "ConversationID", "ResponseDescription"):
        check(isinstance(reply.get(k), str) and reply[k], "transactionstatus %s: %r" % (k, reply))
    result = rx.wait("/result/" + tag)[0]["body"]
    check(isinstance(result, dict) and isinstance(result.get("Result"), dict),
          "Result body %r" % (result,))
    r = result["Result"]
    check_eq((r.get("ConversationID"), r.get("OriginatorConversationID")),
             (reply["ConversationID"], reply["OriginatorConversationID"]), "the Result's ids")
    check_eq(rx.at("/timeout/" + tag), [], "nothing to QueueTimeOutURL")
    return r


@suite.test
def transaction_status_found_and_unknown(ctx):
    sim = MpesaSim(ctx, extra=["--answer-after-ms", "200"]).start()
    rx = Receiver(ctx)
    register(sim, rx)
    sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 250, "Msisdn": PHONE,
                           "BillRefNumber": "T01-0001", "TransID": "QWE1234567"})
    rx.wait("/c2b/confirm")
    r = status_query(sim, rx, "QWE1234567", "c2b")
    check_eq((r.get("ResultType"), r.get("ResultCode")), (0, 0), "ResultType, ResultCode")
    check(isinstance(r.get("ResultDesc"), str), "ResultDesc")
    params = {p["Key"]: p.get("Value") for p in r["ResultParameters"]["ResultParameter"]}
    check_eq((params.get("ReceiptNo"), params.get("TransactionStatus")),
             ("QWE1234567", "Completed"), "ReceiptNo, TransactionStatus")
    check_eq(float(params.get("Amount")), 250.0, "Amount")
    for k in ("DebitPartyName", "FinalisedTime"):
        check(k in params, "ResultParameters lacks %s: %r" % (k, params))
    check("ReferenceData" in r, "ReferenceData")
    # an STK payment's receipt
    sim.push_ok(stk_body(phone(5), amount=77, callback=rx.url("/stk")))
    receipt = items_of(rx.wait("/stk")[0]["body"]["Body"]["stkCallback"])["MpesaReceiptNumber"]
    r = status_query(sim, rx, receipt, "stk", shortcode=SHORTCODE)
    params = {p["Key"]: p.get("Value") for p in r["ResultParameters"]["ResultParameter"]}
    check_eq((params.get("ReceiptNo"), float(params.get("Amount"))), (receipt, 77.0),
             "the STK payment's status")
    # unknown
    r = status_query(sim, rx, "ZZZ0000000", "unknown")
    check_eq((r.get("ResultCode"), r.get("ResultDesc")),
             ("R000001", "The transaction receipt number does not exist."), "unknown receipt")
    check("ResultParameters" not in r, "no ResultParameters for an unknown receipt: %r" % r)
    check_eq(sorted(c["state"] for c in sim.callbacks("status_result")), ["sent"] * 3,
             "status_result callbacks")


# ---------------------------------------------------------------------------------------------
# state, control, command line
# ---------------------------------------------------------------------------------------------
@suite.test
def a_restart_on_the_same_state_remembers(ctx):
    port = free_port()
    sim = MpesaSim(ctx, port=port, extra=["--answer-after-ms", "200"]).start()
    rx = Receiver(ctx)
    register(sim, rx)
    pushed = sim.push_ok(stk_body(callback=rx.url("/stk")))
    rx.wait("/stk")
    sim.customer(phone(1), "cancel", after_ms=200)
    cancelled = sim.push_ok(stk_body(phone(1), callback=rx.url("/stk2")))
    rx.wait("/stk2")
    sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 40, "Msisdn": PHONE,
                           "BillRefNumber": "R1"})
    rx.wait("/c2b/confirm")
    wait_for(sim.settled, 5, "no callback due")
    prompts, payments = sim.prompts(), sim.payments()
    check_eq(len(payments), 2, "two payments before")
    check_eq(sim.stop(), 0, "SIGTERM exit code")
    sim.start()
    check_eq(sim.prompts(), prompts, "prompts after the restart")
    check_eq(sim.payments(), payments, "payments after the restart")
    for c, code in ((pushed, "0"), (cancelled, "1032")):
        status, q = sim.query(c["CheckoutRequestID"], token=sim.token(fresh=True))
        check_eq((status, q.get("ResultCode")), (200, code), "query after the restart")
    r = status_query(sim, rx, payments[0]["receipt"], "after",
                     shortcode=str(payments[0]["shortcode"]))
    check_eq(r.get("ResultCode"), 0, "transaction status after the restart")
    # SIGKILL: what was answered 200 is still there
    sim.push_ok(stk_body(phone(2), callback=rx.url("/stk3"), ref="KILL"))
    sim.kill()
    sim.start()
    check_eq(len(sim.prompts("?account_reference=KILL")), 1, "the push survives SIGKILL")
    # receipts made after the restarts are new ones
    sim.post("/_sim/c2b", {"ShortCode": C2B_SHORTCODE, "Amount": 41, "Msisdn": PHONE,
                           "BillRefNumber": "R2"})
    sim.push_ok(stk_body(phone(3), callback=rx.url("/stk4")), "a push after the restarts")
    rx.wait("/stk4")
    receipts = [p["receipt"] for p in sim.payments()]
    check(len(receipts) >= 4, "four payments or five (the pending one paid): %r" % receipts)
    check_eq(len(set(receipts)), len(receipts), "no receipt given twice: %r" % receipts)


@suite.test
def faults_knobs_all_or_none(ctx):
    sim = MpesaSim(ctx).start()
    status, knobs = http_json("GET", sim.port, "/_sim/faults")
    check_eq(status, 200, "GET /_sim/faults")
    check(set(KNOBS) <= set(knobs), "knobs lack %r: %r" % (set(KNOBS) - set(knobs), knobs))
    check_eq((knobs["answer"], knobs["answer_after_ms"], knobs["prompt_expiry_ms"],
              knobs["token_life_s"], knobs["callback_delay_ms"], knobs["outage"],
              knobs["fail_rate"]),
             ("pay", 2000, 60000, 3599, 0, False, 0), "the defaults")
    for body, what in (({"fail_rate": 2}, "fail_rate"), ({"bogus": 1}, "bogus"),
                       ({"outage": "yes"}, "outage"), ({"latency_ms": -1}, "latency_ms"),
                       ({"answer": "maybe"}, "answer"), ({"msisdn": "hashed"}, "msisdn"),
                       ({"callback_twice": 1.5}, "callback_twice"),
                       ({"latency_ms": 100, "bogus": 1}, "bogus")):
        status, reply = sim.post("/_sim/faults", body)
        check(status == 400 and what in json.dumps(reply),
              "POST /_sim/faults %r: want 400 naming %s, got %s %r" % (body, what, status, reply))
    _, after = http_json("GET", sim.port, "/_sim/faults")
    check_eq(after, knobs, "nothing changed by the refusals (all or none)")
    set_ = sim.faults(latency_ms=5, answer="cancel", answer_after_ms=100)
    check_eq((set_["latency_ms"], set_["answer"], set_["answer_after_ms"]), (5, "cancel", 100),
             "several at once")
    status, _ = http("GET", sim.port, "/mpesa/stkpush/v1/processrequest")
    check(status in (404, 405), "GET on a POST endpoint: %s" % status)
    status, _ = http("POST", sim.port, "/mpesa/bogus/v1/x", body="{}",
                     headers={"Authorization": "Bearer " + sim.token()})
    check_eq(status, 404, "an unknown endpoint")


@suite.test
def command_line_errors(ctx):
    state = ctx.path("s.db")
    listen = "127.0.0.1:%d" % free_port()
    base = ["sim", "mpesa", "--listen", listen, "--state", state]
    for args, rc, words in (
            (["sim", "mpesa", "--state", state], 2, ["--listen"]),
            (["sim", "mpesa", "--listen", listen], 2, ["--state"]),
            (base + ["--bogus"], 2, ["--bogus"]),
            (base + ["--outage-every", "5"], 2, ["--outage-for"]),
            (base + ["--fail-rate", "1.5"], 1, ["--fail-rate"]),
            (base + ["--timeout-after-accept", "x"], 1, ["--timeout-after-accept"]),
            (base + ["--latency-ms", "-1"], 1, ["--latency-ms"]),
            (base + ["--callback-delay-ms", "soon"], 1, ["--callback-delay-ms"]),
            (base + ["--callback-twice", "2"], 1, ["--callback-twice"]),
            (base + ["--callback-never", "-0.1"], 1, ["--callback-never"]),
            (base + ["--spike-arrest-per-s", "x"], 1, ["--spike-arrest-per-s"]),
            (base + ["--answer", "maybe"], 1, ["--answer"]),
            (base + ["--answer-after-ms", "-5"], 1, ["--answer-after-ms"]),
            (base + ["--prompt-expiry-ms", "x"], 1, ["--prompt-expiry-ms"]),
            (base + ["--token-life-s", "0"], 1, ["--token-life-s"]),
            (base + ["--msisdn", "hashed"], 1, ["--msisdn"]),
            (base + ["--seed", "-3"], 1, ["--seed"])):
        expect_error(args, words, rc=rc)
    check(not os.path.exists(state), "no state file made by a refused start")
    other = ctx.path("till.db")
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t(x)")
    db.commit()
    db.close()
    expect_error(["sim", "mpesa", "--listen", listen, "--state", other], ["not a simulator"],
                 rc=1)
    sim = MpesaSim(ctx).start()
    expect_error(["sim", "mpesa", "--listen", "127.0.0.1:%d" % sim.port, "--state",
                  ctx.path("t.db")], ["already in use"], rc=1)
    with open(sim.log_path()) as f:
        first = f.readline().strip()
    check_eq(first, "duka sim mpesa listening on http://127.0.0.1:%d (state %s)"
             % (sim.port, sim.state), "the start line")


if __name__ == "__main__":
    suite.main()

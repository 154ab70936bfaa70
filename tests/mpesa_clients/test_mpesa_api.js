'use strict';
/*
 * tests/mpesa_clients/test_mpesa_api.js — the npm Daraja client mpesa-api 3.0.2 (Node's own
 * http, no axios) against `duka sim mpesa`. mpesa-api has no base-URL option and never sends a
 * port: its routes module is pointed at http://127.0.0.1 before the client is made, so the
 * simulator listens on 127.0.0.1:80 (we run as root). When port 80 cannot be bound here the
 * file prints one SKIP line and exits 0. What it checks:
 *
 * - authenticate: a 28-character access token.
 * - stk_push_query_and_callback: lipaNaMpesaOnline with mpesa-api's defaults (TransactionType
 *   'CustomerPayBillOnline ' with its trailing space, TransactionDesc 'Lipa Na Mpesa Online', a
 *   UTC Timestamp, numbers for shortcodes and phones) accepted; lipaNaMpesaQuery rejects with
 *   HTTP 500 errorCode 500.001.1001 while the customer has not answered; the callback (ResultCode
 *   0, Amount, a receipt); the query then ResultCode '0'.
 * - c2b_buy_goods: c2bRegister, c2bSimulate with CommandID CustomerBuyGoodsOnline and its
 *   default BillRefNumber 'account': the confirmation says 'Buy Goods' with TransID, TransAmount.
 * - transaction_status: its SecurityCredential RSA-encrypted by mpesa-api from an initiator
 *   password and a key made here; the Result's ReceiptNo is the TransID; an unknown receipt
 *   R000001.
 *
 *     DUKA_BIN=$PWD/build/duka node tests/mpesa_clients/test_mpesa_api.js [test names]
 */

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Receiver, Sim, check, checkEq, freePort, log, suite } = require('./harness');

const KEY = 'duka-sim-key';
const SECRET = 'duka-sim-secret';
const PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
const PHONE = 254708374149;
const RECEIPT_RE = /^[A-Z0-9]{10}$/;

const s = suite('mpesa_api');

/* mpesa-api rejects with its own result object ({statusCode, data, ...}) for an HTTP error. */
async function rejection(promise, what) {
  let r;
  try {
    r = await promise;
  } catch (e) {
    if (!e || e.statusCode === undefined) {
      throw new Error(`${what}: no HTTP reply (${e && e.code ? e.code : ''} ${e && e.message})`);
    }
    return { status: e.statusCode, data: e.data };
  }
  throw new Error(`${what}: resolved with ${JSON.stringify(r)}, want a rejection`);
}

async function ok(promise, what) {
  try {
    return await promise;
  } catch (e) {
    if (e && e.statusCode !== undefined) {
      throw new Error(`${what}: HTTP ${e.statusCode} ${JSON.stringify(e.data)}`);
    }
    throw new Error(`${what}: ${e && e.message ? e.message : e}`);
  }
}

s.test('authenticate', async (ctx) => {
  const token = await ok(ctx.mpesa.authenticate(), 'authenticate()');
  check(typeof token === 'string' && token.length === 28, `token ${JSON.stringify(token)}`);
});

s.test('stk_push_query_and_callback', async (ctx) => {
  await ctx.sim.customer(String(PHONE), 'pay', 400);
  const pushed = await ok(ctx.mpesa.lipaNaMpesaOnline({
    BusinessShortCode: 174379, passKey: PASSKEY, PartyA: PHONE, PartyB: 174379, Amount: 1,
    AccountReference: 'INV002', CallBackURL: ctx.rx.url('/stk'), PhoneNumber: PHONE,
  }), "lipaNaMpesaOnline ('CustomerPayBillOnline ' with a trailing space)");
  checkEq(pushed.ResponseCode, '0', 'the push: ResponseCode');
  const id = pushed.CheckoutRequestID;
  check(typeof id === 'string' && id.startsWith('ws_CO_'), `CheckoutRequestID ${id}`);
  const pending = await rejection(ctx.mpesa.lipaNaMpesaQuery({
    BusinessShortCode: 174379, passKey: PASSKEY, CheckoutRequestID: id,
  }), 'lipaNaMpesaQuery while pending');
  checkEq([pending.status, pending.data && pending.data.errorCode], [500, '500.001.1001'],
    'the query while the customer has not answered');
  const cb = (await ctx.rx.wait('/stk'))[0].body.Body.stkCallback;
  checkEq([cb.CheckoutRequestID, cb.ResultCode], [id, 0], 'the callback');
  const items = {};
  for (const it of cb.CallbackMetadata.Item) items[it.Name] = it.Value;
  checkEq([items.Amount, items.PhoneNumber], [1, PHONE], 'callback Amount, PhoneNumber');
  check(RECEIPT_RE.test(items.MpesaReceiptNumber), `receipt ${items.MpesaReceiptNumber}`);
  const done = await ok(ctx.mpesa.lipaNaMpesaQuery({
    BusinessShortCode: 174379, passKey: PASSKEY, CheckoutRequestID: id,
  }), 'lipaNaMpesaQuery once answered');
  checkEq([done.ResponseCode, done.ResultCode], ['0', '0'], 'the query once paid');
  const prompts = await ctx.sim.prompts('?account_reference=INV002');
  checkEq(prompts.map((p) => p.TransactionDesc), ['Lipa Na Mpesa Online'], 'TransactionDesc');
});

s.test('c2b_buy_goods', async (ctx) => {
  const reg = await ok(ctx.mpesa.c2bRegister({
    ShortCode: '600000', ResponseType: 'Completed', ConfirmationURL: ctx.rx.url('/c2b/confirm'),
    ValidationURL: ctx.rx.url('/c2b/validate'),
  }), 'c2bRegister');
  checkEq(reg.ResponseCode, '0', 'c2bRegister');
  const sim = await ok(ctx.mpesa.c2bSimulate({
    ShortCode: 600000, CommandID: 'CustomerBuyGoodsOnline', Amount: 50, Msisdn: PHONE,
  }), 'c2bSimulate');
  checkEq(sim.ResponseCode, '0', 'c2bSimulate');
  await ctx.rx.wait('/c2b/validate');
  const c = (await ctx.rx.wait('/c2b/confirm'))[0].body;
  checkEq([c.TransactionType, c.BillRefNumber, Number(c.TransAmount)], ['Buy Goods', 'account', 50],
    'the confirmation');
  check(RECEIPT_RE.test(c.TransID), `TransID ${c.TransID}`);
  ctx.transId = c.TransID;
});

s.test('transaction_status', async (ctx) => {
  check(ctx.transId, 'needs the TransID of c2b_buy_goods');
  for (const [id, tag] of [[ctx.transId, 'known'], ['ZZZ0000000', 'unknown']]) {
    const r = await ok(ctx.mpesa.transactionStatus({
      Initiator: 'testapi', TransactionID: id, PartyA: 600000, IdentifierType: 4,
      ResultURL: ctx.rx.url(`/ts/${tag}`), QueueTimeOutURL: ctx.rx.url(`/ts/${tag}/queue`),
    }), `transactionStatus of ${id}`);
    checkEq(r.ResponseCode, '0', `transactionStatus of ${id}`);
    const res = (await ctx.rx.wait(`/ts/${tag}`))[0].body.Result;
    checkEq(res.ConversationID, r.ConversationID, 'the Result\'s ConversationID');
    if (tag === 'known') {
      checkEq(res.ResultCode, 0, 'ResultCode');
      const params = {};
      for (const p of res.ResultParameters.ResultParameter) params[p.Key] = p.Value;
      checkEq([params.ReceiptNo, Number(params.Amount)], [ctx.transId, 50], 'ReceiptNo, Amount');
    } else {
      checkEq(res.ResultCode, 'R000001', 'an unknown receipt');
    }
  }
});

(async () => {
  if ((await freePort(80)) === null) {
    log('SKIP test_mpesa_api: 127.0.0.1:80 cannot be bound here (in use, or not root); ' +
      'mpesa-api sends no port, so it needs the simulator on port 80');
    process.exit(0);
  }
  const routes = require('mpesa-api/lib/routes').routes;
  routes.sandbox = 'http://127.0.0.1';
  const { Mpesa } = require('mpesa-api');
  s.main({
    async setup(ctx) {
      const { publicKey } = crypto.generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
      const certPath = path.join(ctx.tmp, 'initiator-public.pem');
      fs.writeFileSync(certPath, publicKey);
      ctx.rx = await new Receiver().listen();
      ctx.sim = await new Sim(ctx.tmp, 80).start();
      ctx.mpesa = new Mpesa({
        clientKey: KEY, clientSecret: SECRET, initiatorPassword: 'Safaricom999!*!',
        certificatePath: certPath,
      }, 'sandbox');
    },
    async teardown(ctx) {
      if (ctx.rx) await ctx.rx.close();
    },
  });
})();

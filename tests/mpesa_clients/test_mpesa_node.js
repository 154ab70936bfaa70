'use strict';
/*
 * tests/mpesa_clients/test_mpesa_node.js — the npm Daraja client mpesa-node 0.1.3 (axios 0.18)
 * against `duka sim mpesa`, as a business integrating with Safaricom would use it, its base URL
 * pointed at the simulator. What it checks:
 *
 * - oauth: oAuth() gets a 28-character access_token, expires_in "3599"; a client with a wrong
 *   secret is refused with HTTP 400 errorCode 400.008.01.
 * - stk_push_query_and_callback: lipaNaMpesaOnline(254708374149, 10, cb, 'INV001') with
 *   mpesa-node's own defaults (a UTC Timestamp, TransactionDesc 'Lipa na mpesa online') is
 *   accepted (ResponseCode '0', CheckoutRequestID 'ws_CO_…'); lipaNaMpesaQuery while the
 *   customer has not answered rejects with HTTP 500 errorCode 500.001.1001; the STK callback at
 *   our loopback CallBackURL (CheckoutRequestID, ResultCode 0, Amount, a 10-character
 *   MpesaReceiptNumber, TransactionDate and PhoneNumber numbers); the query then ResultCode '0'.
 * - c2b_register_and_simulate: c2bRegister → ResponseCode '0'; c2bSimulate(254708374149, 100,
 *   'T01-20261204-00001') → validation, then confirmation with TransID and TransAmount 100.
 * - transaction_status: transactionStatus(TransID, 600000, 4, queueUrl, resultUrl) (its
 *   SecurityCredential RSA-encrypted with a key made here) → ResponseCode '0' and a Result at
 *   resultUrl whose ResultParameters hold ReceiptNo = TransID.
 * - timeout_after_accept: with {"timeout_after_accept": 1} a push gets no reply: axios gives up
 *   after mpesa-node's 5 s (ECONNABORTED), yet /_sim/prompts shows the customer was prompted.
 *
 *     DUKA_BIN=$PWD/build/duka node tests/mpesa_clients/test_mpesa_node.js [test names]
 */

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Receiver, Sim, check, checkEq, freePort, suite } = require('./harness');
const Mpesa = require('mpesa-node');

const KEY = 'duka-sim-key';
const SECRET = 'duka-sim-secret';
const PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
const PHONE = 254708374149;
const OTHER_PHONE = 254712000555;
const RECEIPT_RE = /^[A-Z0-9]{10}$/;

const s = suite('mpesa_node');

function client(ctx, overrides = {}) {
  const m = new Mpesa({
    consumerKey: KEY,
    consumerSecret: SECRET,
    environment: 'sandbox',
    shortCode: '600000',
    lipaNaMpesaShortCode: '174379',
    lipaNaMpesaShortPass: PASSKEY,
    initiatorName: 'testapi',
    securityCredential: 'Safaricom999!*!',
    certPath: ctx.certPath,
    ...overrides,
  });
  m.baseURL = ctx.sim.url;
  return m;
}

/* What axios rejected with: {status, data} of the HTTP reply, or throws when there was none. */
async function rejection(promise, what) {
  let r;
  try {
    r = await promise;
  } catch (e) {
    if (!e.response) throw new Error(`${what}: no HTTP reply (${e.code || ''} ${e.message})`);
    return { status: e.response.status, data: e.response.data };
  }
  throw new Error(`${what}: resolved with ${r.status} ${JSON.stringify(r.data)}, want a rejection`);
}

/* axios's error as text: the reply when there is one. */
function why(e) {
  if (e && e.response) return `HTTP ${e.response.status} ${JSON.stringify(e.response.data)}`;
  return `${e && e.code ? e.code + ' ' : ''}${e && e.message ? e.message : e}`;
}

async function ok(promise, what) {
  try {
    return await promise;
  } catch (e) {
    throw new Error(`${what}: ${why(e)}`);
  }
}

s.test('oauth', async (ctx) => {
  const r = await ok(ctx.mpesa.oAuth(), 'oAuth()');
  checkEq(r.status, 200, 'oAuth HTTP status');
  check(typeof r.data.access_token === 'string' && r.data.access_token.length === 28,
    `access_token ${JSON.stringify(r.data.access_token)}: 28 characters`);
  checkEq(r.data.expires_in, '3599', 'expires_in');
  const bad = await rejection(client(ctx, { consumerSecret: 'wrong' }).oAuth(),
    'oAuth() with a wrong secret');
  checkEq([bad.status, bad.data && bad.data.errorCode], [400, '400.008.01'],
    'a wrong secret');
});

s.test('stk_push_query_and_callback', async (ctx) => {
  await ctx.sim.customer(String(PHONE), 'pay', 400);
  const cb = ctx.rx.url('/stk');
  const r = await ok(ctx.mpesa.lipaNaMpesaOnline(PHONE, 10, cb, 'INV001'),
    'lipaNaMpesaOnline (a UTC Timestamp, TransactionDesc "Lipa na mpesa online")');
  checkEq([r.status, r.data.ResponseCode], [200, '0'], 'the push: HTTP status, ResponseCode');
  const id = r.data.CheckoutRequestID;
  check(typeof id === 'string' && id.startsWith('ws_CO_'), `CheckoutRequestID ${id}`);
  const pending = await rejection(ctx.mpesa.lipaNaMpesaQuery(id), 'lipaNaMpesaQuery while pending');
  checkEq([pending.status, pending.data && pending.data.errorCode], [500, '500.001.1001'],
    'the query while the customer has not answered');
  const body = (await ctx.rx.wait('/stk', 1, 10))[0].body;
  check(body && body.Body && body.Body.stkCallback, `callback shape ${JSON.stringify(body)}`);
  const cbk = body.Body.stkCallback;
  checkEq([cbk.CheckoutRequestID, cbk.MerchantRequestID, cbk.ResultCode],
    [id, r.data.MerchantRequestID, 0], 'the callback: ids, ResultCode (a number)');
  const items = {};
  for (const it of cbk.CallbackMetadata.Item) items[it.Name] = it.Value;
  checkEq(items.Amount, 10, 'callback Amount');
  check(RECEIPT_RE.test(items.MpesaReceiptNumber),
    `MpesaReceiptNumber ${items.MpesaReceiptNumber}`);
  check(typeof items.TransactionDate === 'number' && /^\d{14}$/.test(String(items.TransactionDate)),
    `TransactionDate ${JSON.stringify(items.TransactionDate)}: a 14-digit number`);
  checkEq(items.PhoneNumber, PHONE, 'callback PhoneNumber (a number)');
  const done = await ok(ctx.mpesa.lipaNaMpesaQuery(id), 'lipaNaMpesaQuery once answered');
  checkEq([done.status, done.data.ResponseCode, done.data.ResultCode, done.data.CheckoutRequestID],
    [200, '0', '0', id], 'the query once paid');
  const prompts = await ctx.sim.prompts(`?phone=${PHONE}`);
  checkEq(prompts.map((p) => [p.CheckoutRequestID, p.TransactionDesc, p.status]),
    [[id, 'Lipa na mpesa online', 'answered']], '/_sim/prompts');
  const pays = await ctx.sim.payments();
  checkEq(pays.map((p) => [p.receipt, p.kind, p.amount]),
    [[items.MpesaReceiptNumber, 'stk', 10]], '/_sim/payments');
});

s.test('c2b_register_and_simulate', async (ctx) => {
  const reg = await ok(ctx.mpesa.c2bRegister(ctx.rx.url('/c2b/confirm'),
    ctx.rx.url('/c2b/validate')), 'c2bRegister');
  checkEq([reg.status, reg.data.ResponseCode], [200, '0'], 'c2bRegister');
  const sim = await ok(ctx.mpesa.c2bSimulate(PHONE, 100, 'T01-20261204-00001'), 'c2bSimulate');
  checkEq([sim.status, sim.data.ResponseCode], [200, '0'], 'c2bSimulate');
  const v = (await ctx.rx.wait('/c2b/validate'))[0];
  const c = (await ctx.rx.wait('/c2b/confirm'))[0];
  check(v.at <= c.at, 'validation before confirmation');
  check(c.body && RECEIPT_RE.test(c.body.TransID), `TransID ${c.body && c.body.TransID}`);
  checkEq(Number(c.body.TransAmount), 100, `TransAmount (${JSON.stringify(c.body.TransAmount)})`);
  checkEq(c.body.BillRefNumber, 'T01-20261204-00001', 'BillRefNumber');
  checkEq(v.body && v.body.TransID, c.body.TransID,
    'the validation and confirmation of one TransID');
  ctx.transId = c.body.TransID;
});

s.test('transaction_status', async (ctx) => {
  check(ctx.transId, 'needs the TransID of c2b_register_and_simulate');
  const r = await ok(ctx.mpesa.transactionStatus(ctx.transId, 600000, 4, ctx.rx.url('/ts/queue'),
    ctx.rx.url('/ts/result')), 'transactionStatus');
  checkEq([r.status, r.data.ResponseCode], [200, '0'], 'transactionStatus');
  const res = (await ctx.rx.wait('/ts/result'))[0].body;
  check(res && res.Result, `Result body ${JSON.stringify(res)}`);
  checkEq([res.Result.ResultCode, res.Result.ConversationID], [0, r.data.ConversationID],
    'Result: ResultCode, ConversationID');
  const params = {};
  for (const p of res.Result.ResultParameters.ResultParameter) params[p.Key] = p.Value;
  checkEq(params.ReceiptNo, ctx.transId, 'ReceiptNo');
  checkEq(params.TransactionStatus, 'Completed', 'TransactionStatus');
  checkEq(ctx.rx.at('/ts/queue').length, 0, 'nothing to the QueueTimeOutURL');
});

s.test('timeout_after_accept', async (ctx) => {
  await ctx.sim.faults({ timeout_after_accept: 1 });
  const t0 = Date.now();
  let err = null;
  try {
    const r = await ctx.mpesa.lipaNaMpesaOnline(OTHER_PHONE, 20, ctx.rx.url('/held'), 'HELD');
    throw new Error(`the push was answered: ${r.status} ${JSON.stringify(r.data)}`);
  } catch (e) {
    err = e;
  }
  check(!err.response && err.code === 'ECONNABORTED',
    `axios should time out (ECONNABORTED), got: ${why(err)}`);
  check(Date.now() - t0 >= 4900, `gave up after ${Date.now() - t0} ms (mpesa-node waits 5 s)`);
  await ctx.sim.faults({ timeout_after_accept: 0 });
  const prompts = await ctx.sim.prompts(`?phone=${OTHER_PHONE}`);
  checkEq(prompts.length, 1, `the prompt was recorded (${JSON.stringify(prompts)})`);
  checkEq([prompts[0].AccountReference, prompts[0].shown, prompts[0].reply_held],
    ['HELD', true, true], 'the customer was prompted, the reply held');
});

s.main({
  async setup(ctx) {
    const { publicKey } = crypto.generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    ctx.certPath = path.join(ctx.tmp, 'initiator-public.pem');
    fs.writeFileSync(ctx.certPath, publicKey);
    ctx.rx = await new Receiver().listen();
    ctx.sim = await new Sim(ctx.tmp, await freePort()).start();
    ctx.mpesa = client(ctx);
  },
  async teardown(ctx) {
    if (ctx.rx) await ctx.rx.close();
  },
});

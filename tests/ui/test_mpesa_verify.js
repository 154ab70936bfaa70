#!/usr/bin/env node
'use strict';
/*
 * Typed M-Pesa codes on the cashier's screen (issue 13): a real hub verifying codes with
 * `duka sim mpesa` (its M-Pesa settings in its configuration file), the till in Chromium.
 *
 * verified and flagged: the business's shortcode registered with the simulator; a customer
 * pays KES 50 to it from their phone (C2B); the cashier sells a soda with F3 and types that
 * code: the receipt says "M-Pesa: pending verification" and the header counts it; once the
 * till synced, the header says 0 pending and the reprint "M-Pesa: verified". A second sale
 * with a code M-Pesa never saw (ZZZZZZZZZZ): after MPESA_VERIFY_WINDOW (5 s here) the hub
 * flags it; the header's flagged count is 1 and marked, the Sync screen says so, and the
 * reprint shows "M-Pesa FLAGGED:" with the hub's reason. Screenshots of each state.
 */
const fs = require('fs');
const h = require('./harness');

const s = h.suite('mpesa_verify');
const SHORTCODE = '600000';
const PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';

async function startMpesaSim(ctx) {
  const port = await h.freePort();
  const proc = h.spawnDuka(['sim', 'mpesa', '--listen', `127.0.0.1:${port}`, '--state',
    ctx.path('mpesa.db')], { logPath: ctx.path('mpesa-sim.log') });
  await h.waitFor(async () => {
    if (proc.exitCode !== null) throw new h.TestFailure(`duka sim mpesa exited: ${fs.readFileSync(ctx.path('mpesa-sim.log'), 'utf8')}`);
    try { return (await h.request('GET', port, '/_sim/health', { timeout: 2 })).status === 200; } catch (_) { return false; }
  }, 15, 'duka sim mpesa to answer /_sim/health');
  return { port, proc };
}

/* The M-Pesa part of the header and the Sync screen, and the receipt's text. */
async function mpesaView(page) {
  return page.evaluate(() => {
    const t = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
    const chip = document.getElementById('mpesa-chip');
    const paper = document.getElementById('receipt-paper');
    return { pending: t('mpesa-pending'), flagged: t('mpesa-flagged'),
      alert: chip ? chip.classList.contains('alert') : null,
      syncPending: t('sync-mpesa-pending'), syncFlagged: t('sync-mpesa-flagged'),
      receipt: paper ? paper.innerText : '' };
  });
}

async function payByMpesa(page, sku, code) {
  await h.scan(page, sku, 1);
  await page.keyboard.press('F3');
  await h.waitFor(async () => (await h.focusedId(page)) === 'mpesa-code', 5, 'F3 to focus #mpesa-code');
  await page.keyboard.type(code);
  await page.keyboard.press('Enter');
  return h.receiptNo(page);
}

/* Until the header says what is wanted, pressing Sync now on the Sync screen meanwhile (as a
 * cashier waiting for the hub's word would). */
async function untilHeader(page, want, what) {
  await h.waitFor(async () => {
    const v = await mpesaView(page);
    if (v.pending === want.pending && v.flagged === want.flagged) return true;
    if (await page.isVisible('#sync-now') && await page.isEnabled('#sync-now')) await page.click('#sync-now');
    return false;
  }, 60, what, 500);
}

s.test('verified_and_flagged', async (ctx) => {
  const sim = await startMpesaSim(ctx);
  const biz = await h.setupBusiness(ctx, { startTill: false });
  await biz.hub.stop();
  const cred = ctx.path('credential.txt');
  fs.writeFileSync(cred, 'c2ltdWxhdGVkLWNyZWRlbnRpYWw=\n');
  const conf = ctx.path('hub.conf');
  fs.writeFileSync(conf, [`MPESA_BASE_URL = http://127.0.0.1:${sim.port}`,
    `MPESA_CALLBACK_BASE_URL = http://127.0.0.1:${biz.hub.port}`,
    'MPESA_CONSUMER_KEY = duka-sim-key', 'MPESA_CONSUMER_SECRET = duka-sim-secret',
    `MPESA_PASSKEY = ${PASSKEY}`, 'MPESA_INITIATOR = testapi',
    `MPESA_SECURITY_CREDENTIAL_FILE = ${cred}`, 'MPESA_STATUS_WAIT = 1s',
    'MPESA_VERIFY_WINDOW = 5s', ''].join('\n'));
  const hub = new h.Hub(biz.hubDb, biz.hub.port, ctx.tmp);
  hub.args.push('--config', conf);
  await hub.start();
  await h.runOk(['business', 'set', '--db', biz.hubDb, '--business', biz.businessId,
    '--mpesa-shortcode', SHORTCODE]);
  await h.waitFor(async () => {
    const o = await h.runJson(['hub', 'outbox', '--db', biz.hubDb, '--business', biz.businessId, '--json']);
    return o.items.some((i) => i.command_type === 'mpesa.register' && i.status === 'done');
  }, 30, 'the shortcode registered with the simulator');
  // The customer pays the shop's paybill from their phone; the hub is told.
  const paid = await h.request('POST', sim.port, '/_sim/c2b',
    { body: { ShortCode: SHORTCODE, Amount: 50, Msisdn: '254708374149', BillRefNumber: 'soda' } });
  h.checkEq(paid.status, 200, 'POST /_sim/c2b');
  const code = paid.json.TransID;
  await h.waitFor(async () => {
    const r = await h.request('GET', sim.port, `/_sim/callbacks?kind=c2b_confirmation&ref=${code}`);
    return r.json.callbacks.some((c) => c.state === 'sent' && c.http_status === 200);
  }, 20, 'the C2B confirmation at the hub');

  await biz.till.start();
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  const rn = await payByMpesa(page, 'SODA300', code);
  let v = await mpesaView(page);
  h.check(/M-Pesa: pending verification/.test(v.receipt) || /M-Pesa: verified/.test(v.receipt),
    `the new receipt says what is known of the code: ${v.receipt}`);
  await h.shot(ctx, page, 'receipt-code-typed');
  await untilHeader(page, { pending: '0', flagged: '0' }, 'the code verified');
  await page.keyboard.press('Escape'); // the receipt closes: a new sale
  await h.openReprint(page, rn);
  v = await mpesaView(page);
  h.log('  the verified receipt:\n' + v.receipt.split('\n').map((l) => '    ' + l).join('\n'));
  h.check(/M-Pesa: verified/.test(v.receipt), `the reprint says verified: ${v.receipt}`);
  h.check(!/pending verification/.test(v.receipt), `no longer pending: ${v.receipt}`);
  await h.shot(ctx, page, 'receipt-verified');

  await page.keyboard.press('Escape'); // the reprint closes
  await page.keyboard.press('Escape'); // back to selling
  const bad = await payByMpesa(page, 'SODA300', 'ZZZZZZZZZZ');
  await untilHeader(page, { pending: '0', flagged: '1' }, 'the unknown code flagged');
  v = await mpesaView(page);
  h.check(v.alert, 'the M-Pesa chip is marked while a code is flagged');
  h.checkEq([v.syncPending, v.syncFlagged], ['0', '1'], 'the Sync screen\'s M-Pesa counts');
  await page.keyboard.press('Escape');
  await h.openReprint(page, bad);
  v = await mpesaView(page);
  h.log('  the flagged receipt:\n' + v.receipt.split('\n').map((l) => '    ' + l).join('\n'));
  h.check(/M-Pesa FLAGGED: ZZZZZZZZZZ was not confirmed by M-Pesa/.test(v.receipt),
    `the reprint says flagged with the hub's reason: ${v.receipt}`);
  await h.shot(ctx, page, 'receipt-flagged');
  const st = await h.dukaStatus(biz.tillDb);
  h.checkEq([st.mpesa.pending_verification, st.mpesa.flagged], [0, 1], 'duka status agrees');
});

s.main();

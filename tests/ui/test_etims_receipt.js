#!/usr/bin/env node
'use strict';
/*
 * The receipt's KRA eTIMS block in the cashier's screen (issue 12).
 *
 * pending receipt and chip: two sales (one with the keyboard, one through the API); the
 *   receipt says exactly "eTIMS: pending" and has no control-unit block and no QR code;
 *   #etims-pending counts this till's sales (2, as `duka status --json` says) and
 *   GET /api/sales/<receipt>/qr.svg is 404 for an unsigned receipt; the reprint (Sync screen)
 *   of the sale says pending too.
 * signed receipt rendering: RENDERING ONLY. The signature row is stored straight into the
 *   till's database with sqlite3, as a pull would store it, because the hub's side (the
 *   invoices member of the pull) is not merged yet: this tests how the UI shows a signature,
 *   not how one arrives. The reprint shows the CU invoice number, SCU id, date and time,
 *   receipt number 17/17, internal data and signature in groups of 4 and the QR code, which
 *   is image/svg+xml, loads, and zbarimg reads back to the verification URL; #etims-pending
 *   goes down by one; the print views at 80 and 58 mm keep the QR inside the paper.
 * signed by the hub with duka sim etims: the real path, hub + `duka sim etims`, the hub's
 *   eTIMS settings in its configuration file (--config). A first sale is signed (the hub
 *   installs its device); then the simulator's outage: a sale on the keyboard, its receipt
 *   says "eTIMS: pending" with no QR, the light turns yellow with the hub's word ("eTIMS
 *   unreachable from the hub: 1 invoice waits") and #etims-pending is 1; the outage ends:
 *   the receipt on the screen gets its CU block by itself (the seconds are logged), with the
 *   simulator's invcNo, rcptSign and intrlData, and the QR code, which zbarimg reads back
 *   to the verification URL; the light turns green and #etims-pending 0. The simulator
 *   kept 2 invoices, no duplicate, no gap.
 */
const childProcess = require('child_process');
const fs = require('fs');
const h = require('./harness');

const s = h.suite('etims_receipt');

const QR_BASE = 'https://etims-sbx.kra.go.ke/common/link/etims/receipt/indexEtimsReceiptData';

/* Stores a signature of receiptNo in the till's database the way a pull stores it
 * (src/till/etims_receipt.c): python3's sqlite3, in one transaction. */
async function storeSignature(db, receiptNo, sig) {
  const code = [
    'import json, sqlite3, sys, time',
    'db, rn, sig = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])',
    'con = sqlite3.connect(db, timeout=30)',
    'con.execute("PRAGMA foreign_keys=ON")',
    'with con:',
    '    con.execute("INSERT INTO etims_receipts(receipt_no, seq, kind, cu_invoice_no, sdc_id,"',
    '                " invc_no, rcpt_no, tot_rcpt_no, intrl_data, rcpt_sign, signed_at, mrc_no,"',
    '                " qr_url, received_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",',
    '                (rn, sig["seq"], "sale", sig["cu_invoice_no"], sig["sdc_id"], sig["invc_no"],',
    '                 sig["rcpt_no"], sig["tot_rcpt_no"], sig["intrl_data"], sig["rcpt_sign"],',
    '                 sig["signed_at"], sig["mrc_no"], sig["qr_url"], int(time.time() * 1000)))',
  ].join('\n');
  const r = await new Promise((resolve) => {
    childProcess.execFile('python3', ['-c', code, db, receiptNo, JSON.stringify(sig)],
      { timeout: 30000 }, (err, stdout, stderr) => resolve({ err, stderr }));
  });
  h.check(!r.err, `storing a signature of ${receiptNo}: ${r.stderr || r.err}`);
}

/* What the receipt on the screen says: its text, the eTIMS block, the QR image. */
async function receiptView(page) {
  return page.evaluate(() => {
    const paper = document.getElementById('receipt-paper');
    const img = document.getElementById('etims-qr');
    const block = document.getElementById('etims-block');
    return {
      text: paper ? paper.innerText : '',
      block: block ? block.innerText : null,
      qr: img ? { src: img.getAttribute('src'), complete: img.complete, w: img.naturalWidth,
        box: img.getBoundingClientRect().toJSON() } : null,
      paper: paper ? paper.getBoundingClientRect().toJSON() : null,
    };
  });
}

s.test('pending_receipt_and_chip', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  await h.scan(page, 'SODA300', 1);
  await page.keyboard.press('F2');
  await h.waitFor(async () => (await h.focusedId(page)) === 'tendered', 5, 'F2 to focus #tendered');
  await page.keyboard.press('Enter');
  const rn = await h.receiptNo(page);
  let view = await receiptView(page);
  h.check(/^eTIMS: pending$/m.test(view.text), `the receipt says "eTIMS: pending": ${view.text}`);
  h.checkEq(view.block, null, 'an eTIMS block on an unsigned receipt');
  h.checkEq(view.qr, null, 'a QR code on an unsigned receipt');
  h.check(!/CU invoice|signature/i.test(view.text), `no control-unit text on an unsigned receipt: ${view.text}`);
  await h.shot(ctx, page, 'receipt-pending');
  await page.keyboard.press('Enter');

  const token = await h.apiLogin(biz.till.port, biz.cashiers[0]);
  await h.apiSales(biz.till.port, token, 1);
  const cli = await h.dukaStatus(biz.tillDb);
  h.checkEq(cli.etims_pending, 2, 'duka status --json etims_pending after two sales');
  // setupBusiness' sync heard the hub, which has no eTIMS configured: "off" (contract 12, section 4).
  h.checkEq(cli.etims && cli.etims.state, 'off', 'duka status --json etims.state (a hub without eTIMS)');
  await h.waitFor(async () => (await h.statusBar(page)).etims === '2', 5, '#etims-pending to show 2');
  const qr = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(rn)}/qr.svg`);
  h.checkEq(qr.status, 404, 'GET qr.svg of an unsigned receipt');
  const sale = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(rn)}`);
  h.checkEq(sale.json.etims, null, 'GET /api/sales/<rn> etims of an unsigned receipt');
  const text = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(rn)}/receipt.txt`);
  h.check(/^eTIMS: pending; sync: /m.test(text.body), `receipt.txt says pending: ${text.body}`);

  await h.openReprint(page, rn);
  view = await receiptView(page);
  h.check(/^eTIMS: pending$/m.test(view.text), `the reprint says "eTIMS: pending": ${view.text}`);
  h.checkEq(view.qr, null, 'a QR code on the unsigned reprint');
  await h.shot(ctx, page, 'reprint-pending');
  await page.keyboard.press('Enter');
  await page.fill('#reprint-no', 'T01-20991231-00001');
  await page.click('#reprint');
  await h.waitFor(async () => ((await page.textContent('#reprint-error')) || '').includes('no sale'), 5,
    'the reprint of an unknown receipt to say so');
  await h.shot(ctx, page, 'reprint-unknown');
});

s.test('signed_receipt_rendering', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const context = await h.launchBrowser(ctx);
  await context.addInitScript(() => { window.print = () => {}; });
  const page = await h.openTill(ctx, biz.till, context);
  await h.login(page, biz.cashiers[0]);
  await h.scan(page, '6161101234567', 1);
  await h.scan(page, '2*SODA300', 2);
  await page.keyboard.press('F2');
  await h.waitFor(async () => (await h.focusedId(page)) === 'tendered', 5, 'F2 to focus #tendered');
  await page.keyboard.type('500');
  await page.keyboard.press('Enter');
  const rn = await h.receiptNo(page);
  await page.keyboard.press('Enter');
  const token = await h.apiLogin(biz.till.port, biz.cashiers[0]);
  await h.apiSales(biz.till.port, token, 1);
  await h.waitFor(async () => (await h.statusBar(page)).etims === '2', 5, '#etims-pending 2 before the signature');

  // Rendering only: the row a pull would store (the hub's side is not merged yet).
  const sig = {
    seq: 31, cu_invoice_no: 'KRACU0100000001/17', sdc_id: 'KRACU0100000001', invc_no: 17,
    rcpt_no: 17, tot_rcpt_no: 17, intrl_data: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
    rcpt_sign: 'ABCDEFGHIJKLMNOP', signed_at: '2026-12-03 14:30:05', mrc_no: 'WIS00000001',
    qr_url: `${QR_BASE}?Data=P051234567X00ABCDEFGHIJKLMNOP`,
  };
  await storeSignature(biz.tillDb, rn, sig);
  await h.waitFor(async () => (await h.statusBar(page)).etims === '1', 5, '#etims-pending 1 after the signature');
  h.checkEq((await h.dukaStatus(biz.tillDb)).etims_pending, 1, 'duka status --json etims_pending');

  const qr = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(rn)}/qr.svg`);
  h.checkEq(qr.status, 200, 'GET qr.svg of a signed receipt');
  h.check(/^image\/svg\+xml/.test(qr.headers['content-type']), `qr.svg Content-Type ${qr.headers['content-type']}`);
  h.check(qr.body.startsWith('<?xml') && qr.body.trim().endsWith('</svg>'), 'qr.svg is an SVG document');
  const txt = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(rn)}/receipt.txt`);
  h.check(txt.body.includes('CU invoice no: KRACU0100000001/17') && !/eTIMS: pending/.test(txt.body),
    `receipt.txt with the CU block: ${txt.body}`);

  await h.openReprint(page, rn);
  await h.waitFor(async () => { const v = await receiptView(page); return v.qr && v.qr.complete && v.qr.w > 0; },
    10, 'the QR image to load');
  const view = await receiptView(page);
  h.log('  the signed receipt:\n' + view.text.split('\n').map((l) => '    ' + l).join('\n'));
  h.check(!/eTIMS: pending/.test(view.text), 'a signed receipt still says pending');
  for (const want of ['eTIMS TAX INVOICE', 'KRACU0100000001/17', 'SCU ID', 'KRACU0100000001',
    '2026-12-03 14:30:05', '17/17', 'WIS00000001', 'ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ',
    'ABCD-EFGH-IJKL-MNOP', sig.qr_url]) {
    h.check(view.text.includes(want), `the signed receipt shows ${want}: ${view.text}`);
  }
  h.check(view.qr.box.left >= view.paper.left && view.qr.box.right <= view.paper.right,
    `the QR code inside the paper: ${JSON.stringify(view.qr.box)} in ${JSON.stringify(view.paper)}`);
  await h.shot(ctx, page, 'reprint-signed');
  const qrPng = ctx.path('qr.png');
  await page.locator('#etims-qr').screenshot({ path: qrPng });
  fs.copyFileSync(qrPng, require('path').join(ctx.outDir, 'qr-element.png'));
  const read = h.zbar(qrPng);
  if (read === null) h.log('  SKIP zbarimg: not installed (scripts/deps.sh test installs zbar-tools)');
  else h.checkEq(read, sig.qr_url, 'the QR code on the screen read back by zbarimg');

  for (const [button, cls, mm] of [['#print-80', 'print-80mm', 80], ['#print-58', 'print-58mm', 58]]) {
    await page.emulateMedia({ media: 'screen' });
    await page.click(button);
    await h.waitFor(async () => page.evaluate((c) => document.body.classList.contains(c), cls), 5, `body.${cls}`);
    await page.emulateMedia({ media: 'print' });
    const v = await receiptView(page);
    const pxPerMm = 96 / 25.4;
    h.check(v.paper.width <= mm * pxPerMm + 1, `${cls}: the paper is ${(v.paper.width / pxPerMm).toFixed(1)} mm wide`);
    h.check(v.qr && v.qr.box.width > 20 * pxPerMm && v.qr.box.right <= v.paper.right && v.qr.box.left >= v.paper.left,
      `${cls}: the QR code (${JSON.stringify(v.qr && v.qr.box)}) within the paper (${JSON.stringify(v.paper)}) and at least 20 mm`);
    await h.shot(ctx, page, `print-${mm}mm-signed`);
  }
  await page.emulateMedia({ media: 'screen' });
});

s.test('signed_by_the_hub_with_duka_sim_etims', async (ctx) => {
  // The whole path: the simulator, a hub that forwards to it (its config file names eTIMS, as
  // a shop's would), the till that pulls the signatures back.
  const sim = await h.startEtimsSim(ctx);
  const faults = sim.faults;
  const simInvoices = sim.invoices;
  const biz = await h.setupEtimsBusiness(ctx, sim);
  const hub = biz.hub;
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);

  // A first sale signed while eTIMS is up: the hub has installed its device.
  const token = await h.apiLogin(biz.till.port, biz.cashiers[0]);
  await h.apiSales(biz.till.port, token, 1);
  await h.waitFor(async () => (await simInvoices()).invoices.length === 1, 30, 'the first sale at the simulator');
  await h.waitFor(async () => (await h.dukaStatus(biz.tillDb)).etims_pending === 0, 30,
    'the first sale signed on the till');
  await h.waitFor(async () => (await h.statusBar(page)).etims === '0', 10, '#etims-pending 0 once the first sale is signed');

  // eTIMS goes down; the next sale is made and reaches the hub, but cannot be signed.
  await faults({ outage: true });
  await h.scan(page, 'SODA300', 1);
  await page.keyboard.press('F2');
  await h.waitFor(async () => (await h.focusedId(page)) === 'tendered', 5, 'F2 to focus #tendered');
  await page.keyboard.press('Enter');
  const rn = await h.receiptNo(page);
  let view = await receiptView(page);
  h.check(/^eTIMS: pending$/m.test(view.text), `the receipt says "eTIMS: pending" while eTIMS is down: ${view.text}`);
  h.checkEq(view.qr, null, 'a QR code while eTIMS is down');
  let bar = null;
  await h.waitFor(async () => {
    bar = await h.statusBar(page);
    return bar.light === 'yellow' && /eTIMS unreachable from the hub: 1 invoice waits/.test(bar.title || '');
  }, 30, 'the light to turn yellow with the hub\'s word on eTIMS');
  h.log(`  eTIMS down: light ${bar.light}, title ${JSON.stringify(bar.title)}, #etims-pending ${bar.etims}`);
  h.checkEq(bar.etims, '1', '#etims-pending while eTIMS is down');
  h.checkEq(bar.pending, '0', '#pending-count: the sale is at the hub');
  await h.shot(ctx, page, 'receipt-pending-etims-down');
  h.checkEq((await simInvoices()).invoices.length, 1, 'invoices at the simulator during the outage');

  // eTIMS comes back: the receipt on the screen asks again while unsigned and gets its block.
  const t0 = Date.now();
  await faults({ outage: false });
  await h.waitFor(async () => { const v = await receiptView(page); return v.qr && v.qr.complete && v.qr.w > 0; },
    90, `the signature of ${rn} to come back through the hub and the QR code to load`);
  h.log(`  ${rn} signed on the screen ${((Date.now() - t0) / 1000).toFixed(1)} s after eTIMS came back`);
  const sims = await simInvoices();
  const inv = (sims.invoices || []).find((i) => i.trdInvcNo === rn);
  h.check(inv, `the simulator holds ${rn}: ${JSON.stringify(sims).slice(0, 500)}`);
  h.checkEq(sims.invoices.length, 2, 'invoices at the simulator');
  h.checkEq([sims.duplicates_refused, sims.gaps], [0, []], 'duplicates_refused, gaps');
  view = await receiptView(page);
  h.log('  the receipt signed by the hub:\n' + view.text.split('\n').map((l) => '    ' + l).join('\n'));
  h.check(!/eTIMS: pending/.test(view.text), `the signed receipt still says pending: ${view.text}`);
  for (const want of ['eTIMS TAX INVOICE', `/${inv.invcNo}`, inv.rcptSign.match(/.{1,4}/g).join('-'),
    inv.intrlData.match(/.{1,4}/g).join('-'), `${QR_BASE}?Data=P051234567X00${inv.rcptSign}`]) {
    h.check(view.text.includes(want), `the receipt shows ${want}: ${view.text}`);
  }
  h.check(view.qr.box.left >= view.paper.left && view.qr.box.right <= view.paper.right,
    `the QR code inside the paper: ${JSON.stringify(view.qr.box)} in ${JSON.stringify(view.paper)}`);
  await h.shot(ctx, page, 'receipt-signed-by-the-hub');
  const qrPng = ctx.path('qr.png');
  await page.locator('#etims-qr').screenshot({ path: qrPng });
  fs.copyFileSync(qrPng, require('path').join(ctx.outDir, 'qr-signed-by-the-hub.png'));
  const read = h.zbar(qrPng);
  if (read === null) h.log('  SKIP zbarimg: not installed (scripts/deps.sh test installs zbar-tools)');
  else h.checkEq(read, `${QR_BASE}?Data=P051234567X00${inv.rcptSign}`, 'the QR code read back by zbarimg');
  await h.waitFor(async () => { bar = await h.statusBar(page); return bar.etims === '0' && bar.light === 'green'; },
    30, '#etims-pending 0 and the light green once signed');
  await page.keyboard.press('Enter');
  await h.shot(ctx, page, 'status-bar-after-etims-back');
  await hub.stop();
});

s.main();

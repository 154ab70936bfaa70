#!/usr/bin/env node
'use strict';
/*
 * Refunds in the cashier's screen (issue 12): a sale's receipt (Sync screen, reprint) has a
 * Refund button; the refund screen lists the sale's lines (sold, already refunded, a quantity
 * per line, 0 by default and never above what is left), the eTIMS reason (06 by default), the
 * money's way back (cash by default) and the total to give back as it is typed; "Refund KES X"
 * makes the refund (POST /api/refunds) and shows its receipt.
 *
 * part_of_a_line_then_refused_over_what_is_left: a keyboard sale of 3 sodas and a sugar; from
 *   its reprint F8, 2 of the 3 sodas with reason 03, only the keyboard: #refund-total and the
 *   button move with the quantity; the refund's receipt has the till's next number, "REFUND
 *   of <sale>", REFUNDED KES 100.00, "eTIMS: pending"; GET /api/sales/<refund> and the
 *   outbox (one refund.create) agree. The sale's reprint then names its refund, the refund
 *   screen shows 2 refunded and 1 left: 2 is refused at the field (the button disabled);
 *   a refund of the last soda made elsewhere meanwhile (the API): the screen's 1 is refused by
 *   the till (409 refund_exceeds_sale), its message at the line, nothing written; "Refund
 *   everything left" gives back the sugar; the sale's Refund button then says Fully refunded.
 * offline_refund: the hub SIGKILLed, the light red: a refund of a sale made before, its
 *   receipt, #pending-count counts its refund.create; the hub back: synced by itself, the
 *   refund at the hub as kind 'refund' of the sale.
 * credit_note_signed_with_duka_sim_etims: the hub forwarding to `duka sim etims`: a sale is
 *   signed; its refund's receipt says "eTIMS: pending", then gets by itself the eTIMS CREDIT
 *   NOTE block and its QR code (zbarimg reads the verification URL back); the simulator holds
 *   the credit note (rcptTyCd R) of the sale's invoice, no duplicate, no gap.
 */
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const h = require('./harness');

const s = h.suite('refund');

const QR_BASE = 'https://etims-sbx.kra.go.ke/common/link/etims/receipt/indexEtimsReceiptData';

/* The number of a receipt in its series (T01-20261204-00007 -> 7). */
const seq = (rn) => Number(rn.split('-').pop());

/* A query of a database with python3's sqlite3 (read only): the rows as arrays. */
function sqlRows(db, sql, params = []) {
  const code = 'import json, sqlite3, sys\n' +
    'con = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=30)\n' +
    'print(json.dumps(con.execute(sys.argv[2], json.loads(sys.argv[3])).fetchall()))';
  const r = childProcess.spawnSync('python3', ['-c', code, db, sql, JSON.stringify(params)], { encoding: 'utf8' });
  h.check(r.status === 0, `sqlite3 ${sql}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function receiptView(page) {
  return page.evaluate(() => {
    const paper = document.getElementById('receipt-paper');
    const img = document.getElementById('etims-qr');
    const t = (id) => { const e = document.getElementById(id); return e && !e.hidden ? e.textContent.trim() : null; };
    return {
      text: paper ? paper.innerText : '',
      no: t('receipt-no'),
      original: t('receipt-original'),
      refundDue: t('refund-due-row'),
      refundBtn: t('refund-start'),
      refundBtnDisabled: document.getElementById('refund-start').disabled,
      links: Array.from(document.querySelectorAll('#receipt-refunds .receipt-link')).map((b) => b.textContent.trim()),
      qr: img ? { complete: img.complete, w: img.naturalWidth, box: img.getBoundingClientRect().toJSON() } : null,
      paper: paper ? paper.getBoundingClientRect().toJSON() : null,
    };
  });
}

/* The refund screen as the cashier sees it: per line the sold and refunded columns, the
 * quantity typed, its amount and its field's message; the total and the button. */
async function refundView(page) {
  return page.evaluate(() => {
    const rows = Array.from(document.querySelectorAll('#refund-lines tr.refund-line')).map((tr) => {
      const n = tr.dataset.line;
      const input = tr.querySelector('.refund-qty');
      const err = document.getElementById(`refund-qty-${n}-error`);
      return {
        line: Number(n), name: tr.querySelector('.lname').firstChild.textContent,
        sold: tr.querySelector('.sold').textContent, refunded: tr.querySelector('.refunded').textContent,
        qty: input.value, disabled: input.disabled, invalid: input.classList.contains('invalid'),
        amount: tr.querySelector('.amount').textContent, error: err ? err.textContent : '',
      };
    });
    const b = document.getElementById('refund-confirm');
    return {
      visible: !document.getElementById('refund').hidden,
      of: document.getElementById('refund-of').textContent,
      rows, total: document.getElementById('refund-total').textContent,
      button: b.textContent, buttonDisabled: b.disabled,
      reason: document.getElementById('refund-reason').value,
      to: (document.querySelector('.refund-to.active') || {}).dataset?.refundTo,
      error: document.getElementById('refund-error').textContent,
    };
  });
}

/* From a sale's reprint, F8: the refund screen of that sale, the focus on its first quantity. */
async function openRefund(page, receiptNo) {
  await h.openReprint(page, receiptNo);
  await page.waitForSelector('#refund-start:visible');
  await page.keyboard.press('F8');
  await page.waitForSelector('#refund:visible');
  await h.waitFor(async () => (await refundView(page)).of === receiptNo, 5, `the refund screen of ${receiptNo}`);
}

async function refundsOf(port, receiptNo) {
  const r = await h.request('GET', port, `/api/sales/${encodeURIComponent(receiptNo)}`);
  h.checkEq(r.status, 200, `GET /api/sales/${receiptNo}`);
  return r.json;
}

s.test('part_of_a_line_then_refused_over_what_is_left', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  const rn = await h.keyboardSale(page, ['3*SODA300', '6161101234567'], '500');

  // The reprint of the sale: its Refund button, F8 the refund screen.
  await h.openReprint(page, rn);
  let rv = await receiptView(page);
  h.check(/^Refund/.test(rv.refundBtn || '') && !rv.refundBtnDisabled, `the sale's reprint has a Refund button: ${JSON.stringify(rv)}`);
  await h.shot(ctx, page, 'sale-reprint-with-refund-button');
  await page.keyboard.press('F8');
  await page.waitForSelector('#refund:visible');
  let v = await refundView(page);
  h.log('  the refund screen: ' + JSON.stringify(v));
  h.checkEq(v.of, rn, '#refund-of');
  h.checkEq(v.rows.map((r) => [r.line, r.name, r.sold, r.refunded, r.qty, r.amount]),
    [[1, 'Soda 300ml', '3', '0', '0', '0.00'], [2, 'Sugar 1kg', '1', '0', '0', '0.00']], 'the refund lines');
  h.checkEq([v.total, v.buttonDisabled, v.reason, v.to], ['KES 0.00', true, '06', 'cash'],
    'total, button disabled, reason and refund-to by default');
  h.checkEq(await h.focusedId(page), 'refund-qty-1', 'the focus on the first line\'s quantity');

  // 2 of the 3 sodas, typed; the total moves as it is typed.
  await page.keyboard.type('2');
  v = await refundView(page);
  h.checkEq([v.rows[0].amount, v.total, v.button, v.buttonDisabled], ['100.00', 'KES 100.00', 'Refund KES 100.00 cash', false],
    'line 1 at 2: its amount, the total, the button');
  await page.keyboard.press('Tab'); // to line 2's quantity, left at 0
  h.checkEq(await h.focusedId(page), 'refund-qty-2', 'Tab to line 2');
  await page.focus('#refund-reason');
  await page.selectOption('#refund-reason', '03');
  await h.shot(ctx, page, 'refund-screen-2-of-3');
  // Enter on the last quantity: the confirm button; Enter there: the refund.
  await page.focus('#refund-qty-2');
  await page.keyboard.press('Enter');
  h.checkEq(await h.focusedId(page), 'refund-confirm', 'Enter on the last quantity to focus the confirm button');
  const before = (await h.dukaQueue(biz.tillDb)).length;
  await page.keyboard.press('Enter');
  const refundNo = await h.receiptNo(page);
  h.check(refundNo !== rn && seq(refundNo) === seq(rn) + 1 && refundNo.slice(0, -5) === rn.slice(0, -5),
    `the refund takes the till's next number: ${refundNo} after ${rn}`);
  rv = await receiptView(page);
  h.log('  the refund\'s receipt:\n' + rv.text.split('\n').map((l) => '    ' + l).join('\n'));
  h.checkEq(rv.original, `REFUND of ${rn}`, '#receipt-original');
  for (const want of ['REFUND / CREDIT NOTE', 'Reason: 03 Damaged', 'Soda 300ml', '2 x 50.00', 'REFUNDED', 'KES 100.00',
    'Cash given back']) {
    h.check(rv.text.includes(want), `the refund's receipt shows ${want}: ${rv.text}`);
  }
  h.check(/^eTIMS: pending$/m.test(rv.text) && rv.qr === null, `the refund's receipt says "eTIMS: pending": ${rv.text}`);
  h.check(!rv.text.includes('Sugar'), `the sugar is not refunded: ${rv.text}`);
  h.checkEq(rv.refundDue, 'Give back: KES 100.00 cash', '#refund-due-row');
  h.checkEq(rv.refundBtn, null, 'a Refund button on a refund');
  await h.shot(ctx, page, 'refund-receipt');

  const got = await refundsOf(biz.till.port, refundNo);
  h.checkEq([got.kind, got.original_receipt_no, got.reason, got.total, got.payments[0].method],
    ['refund', rn, '03', 10000, 'cash'], 'GET /api/sales/<refund> kind, original, reason, total, refund to');
  h.checkEq(got.lines.map((l) => [l.original_line, l.qty_milli]), [[1, 2000]], 'the refund\'s lines');
  const items = await h.dukaQueue(biz.tillDb);
  h.checkEq(items.length, before + 1, 'outbox items after the refund');
  h.check(items.some((i) => i.type === 'refund.create' && i.entity_id === refundNo),
    `a refund.create of ${refundNo} in the outbox: ${JSON.stringify(items.map((i) => [i.type, i.entity_id]))}`);
  const txt = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(refundNo)}/receipt.txt`);
  h.check(txt.body.includes(`of sale ${rn}`) && /REFUNDED\s+KES 100\.00/.test(txt.body), `receipt.txt: ${txt.body}`);

  // Enter: the sell screen again.
  await page.keyboard.press('Enter');
  await h.waitFor(async () => (await h.focusedId(page)) === 'search', 5, 'Enter on the refund\'s receipt: the sell screen');

  // The sale again: it names its refund; 2 refunded, 1 left; 2 more is refused at the field.
  await h.openReprint(page, rn);
  rv = await receiptView(page);
  h.checkEq(rv.links, [refundNo], 'the sale\'s reprint names its refund');
  await page.keyboard.press('F8');
  await page.waitForSelector('#refund:visible');
  v = await refundView(page);
  h.checkEq(v.rows.map((r) => [r.sold, r.refunded, r.qty]), [['3', '2', '0'], ['1', '0', '0']], 'sold and refunded after the refund');
  await page.keyboard.type('2');
  v = await refundView(page);
  h.checkEq([v.rows[0].error, v.rows[0].invalid, v.rows[0].amount, v.buttonDisabled],
    ['At most 1 left to refund.', true, '—', true], 'line 1 at 2 with 1 left');
  await h.shot(ctx, page, 'refund-over-what-is-left-at-the-field');

  // 1 is right on the screen, but the last soda is refunded elsewhere meanwhile: the till
  // refuses the screen's refund (409), the message at the line, nothing written.
  await page.fill('#refund-qty-1', '1');
  v = await refundView(page);
  h.checkEq([v.rows[0].error, v.total, v.buttonDisabled], ['', 'KES 50.00', false], 'line 1 at 1');
  const token = await h.apiLogin(biz.till.port, biz.cashiers[1]);
  const other = await h.request('POST', biz.till.port, '/api/refunds', {
    headers: { Authorization: `Bearer ${token}` }, body: { receipt_no: rn, lines: [{ line: 1, qty: '1' }] } });
  h.checkEq(other.status, 201, `the other refund: ${other.body}`);
  const queued = (await h.dukaQueue(biz.tillDb)).length;
  let refusal = null;
  page.on('response', async (res) => {
    if (res.url().endsWith('/api/refunds') && res.request().method() === 'POST') {
      refusal = { status: res.status(), body: await res.json().catch(() => null) };
    }
  });
  await page.click('#refund-confirm');
  await h.waitFor(async () => (await refundView(page)).rows[0].error !== '', 5, 'the refusal at line 1');
  v = await refundView(page);
  h.log(`  the till's refusal: ${JSON.stringify(refusal)}; at the field: ${v.rows[0].error}`);
  h.checkEq(refusal && [refusal.status, refusal.body.error.code], [409, 'refund_exceeds_sale'], 'POST /api/refunds');
  h.check(/^Line 1 \(Soda 300ml\): 0 left to refund, not 1 \(refunded meanwhile/.test(v.rows[0].error),
    `the line's message names the soda and what is left: ${v.rows[0].error}`);
  h.check(v.visible && v.error === '', `still on the refund screen, the message at the line only: ${JSON.stringify(v)}`);
  h.checkEq([v.rows[0].refunded, v.rows[0].qty, v.rows[0].disabled, v.total, v.buttonDisabled], ['3', '0', true, 'KES 0.00', true],
    'line 1 as the till says now: 3 refunded, nothing left to type');
  h.checkEq(await page.isVisible('#receipt'), false, 'a receipt shown for a refused refund');
  h.checkEq((await h.dukaQueue(biz.tillDb)).length, queued, 'outbox items after the refusal');
  h.checkEq((await refundsOf(biz.till.port, rn)).refunds.length, 2, 'refunds of the sale after the refusal');
  await h.shot(ctx, page, 'refund-refused-by-the-till');

  // What is left (the sugar), with one button, then the sale is fully refunded.
  await page.click('#refund-all');
  v = await refundView(page);
  h.checkEq([v.rows[0].qty, v.rows[0].disabled, v.rows[1].qty, v.total], ['0', true, '1', 'KES 165.00'], 'Refund everything left');
  h.checkEq(await h.focusedId(page), 'refund-confirm', 'the focus on the confirm button');
  await page.keyboard.press('Enter');
  const last = await h.receiptNo(page);
  h.checkEq(seq(last), seq(rn) + 3, 'the third refund\'s number');
  rv = await receiptView(page);
  h.check(rv.text.includes('Sugar 1kg') && rv.text.includes('KES 165.00'), `the sugar's refund: ${rv.text}`);
  await page.keyboard.press('Enter');
  await h.openReprint(page, rn);
  rv = await receiptView(page);
  h.checkEq([rv.refundBtn, rv.refundBtnDisabled], ['Fully refunded', true], 'the Refund button of a fully refunded sale');
  h.checkEq(rv.links.length, 3, 'the refunds the sale names');
  await h.shot(ctx, page, 'sale-fully-refunded');
  // A refund's number typed into the reprint: no Refund button, a link to its sale.
  await page.keyboard.press('Escape');
  await h.openReprint(page, refundNo);
  rv = await receiptView(page);
  h.checkEq([rv.refundBtn, rv.links], [null, [rn]], 'a refund\'s reprint: no Refund button, its sale');
});

s.test('offline_refund', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  const rn = await h.keyboardSale(page, ['2*RICE', 'UNGA2KG']);
  await h.waitFor(async () => (await h.statusBar(page)).pending === '0' && (await h.statusBar(page)).light === 'green',
    15, 'the sale at the hub');
  await biz.hub.kill();
  await h.waitFor(async () => (await h.statusBar(page)).light === 'red', 15, 'the light to turn red');

  await openRefund(page, rn);
  let v = await refundView(page);
  h.checkEq(v.rows.map((r) => [r.name, r.sold]), [['Pishori rice per kg', '2'], ['Maize flour 2kg', '1']], 'the sale\'s lines offline');
  await page.keyboard.type('0.5');
  await page.keyboard.press('Enter');
  await page.keyboard.type('1');
  v = await refundView(page);
  h.checkEq([v.rows[0].amount, v.rows[1].amount, v.total], ['90.00', '210.50', 'KES 300.50'], 'half a kilo of rice and the flour');
  await page.keyboard.press('F3'); // back by M-Pesa
  v = await refundView(page);
  h.checkEq([v.to, v.button], ['mpesa', 'Refund KES 300.50 by M-Pesa'], 'F3: refund to M-Pesa');
  await h.shot(ctx, page, 'refund-screen-offline');
  await page.click('#refund-confirm');
  const refundNo = await h.receiptNo(page);
  const rv = await receiptView(page);
  h.checkEq(rv.original, `REFUND of ${rn}`, '#receipt-original offline');
  h.check(rv.text.includes('M-Pesa given back') && rv.text.includes('KES 300.50') && /^eTIMS: pending$/m.test(rv.text),
    `the offline refund's receipt: ${rv.text}`);
  h.checkEq(rv.refundDue, 'Give back: KES 300.50 by M-Pesa', '#refund-due-row');
  const bar = await h.statusBar(page);
  h.check(bar.light === 'red' && bar.banner, `still offline: ${JSON.stringify(bar)}`);
  await h.waitFor(async () => (await h.statusBar(page)).pending === '1', 20, '#pending-count 1 (the refund)');
  const st = await h.dukaStatus(biz.tillDb);
  h.checkEq(st.pending, 1, 'duka status pending');
  h.checkEq((await h.dukaQueue(biz.tillDb, 'pending')).map((i) => [i.type, i.entity_id]), [['refund.create', refundNo]],
    'the refund waits in the outbox');
  await h.shot(ctx, page, 'refund-receipt-offline');

  await biz.hub.start();
  await h.waitFor(async () => { const b = await h.statusBar(page); return b.light === 'green' && b.pending === '0'; },
    30, 'green and 0 pending once the hub is back');
  const rows = sqlRows(biz.hubDb, 'SELECT kind, original_receipt_no, total_cents FROM sales WHERE receipt_no = ?', [refundNo]);
  h.checkEq(rows, [['refund', rn, 30050]], 'the refund at the hub');
  await h.shot(ctx, page, 'refund-synced');
});

s.test('credit_note_signed_with_duka_sim_etims', async (ctx) => {
  const sim = await h.startEtimsSim(ctx);
  const biz = await h.setupEtimsBusiness(ctx, sim);
  const context = await h.launchBrowser(ctx);
  await context.addInitScript(() => { window.print = () => {}; });
  const page = await h.openTill(ctx, biz.till, context);
  await h.login(page, biz.cashiers[0]);

  const rn = await h.keyboardSale(page, ['2*SODA300', '6161101234581']);
  await h.waitFor(async () => (await h.dukaStatus(biz.tillDb)).etims_pending === 0, 30, 'the sale signed on the till');
  await openRefund(page, rn);
  await page.keyboard.type('1');
  let v = await refundView(page);
  h.checkEq(v.total, 'KES 50.00', 'one soda');
  await page.click('#refund-confirm');
  const refundNo = await h.receiptNo(page);
  let rv = await receiptView(page);
  h.check(/^eTIMS: pending$/m.test(rv.text) && rv.qr === null, `the new refund's receipt says pending: ${rv.text}`);
  await h.shot(ctx, page, 'refund-receipt-pending');

  // The hub forwards the credit note; the receipt on the screen asks again and gets it.
  const t0 = Date.now();
  await h.waitFor(async () => { const x = await receiptView(page); return x.qr && x.qr.complete && x.qr.w > 0; },
    90, `the credit note of ${refundNo} to come back and its QR code to load`);
  h.log(`  ${refundNo} signed on the screen ${((Date.now() - t0) / 1000).toFixed(1)} s after the refund`);
  rv = await receiptView(page);
  h.log('  the refund signed:\n' + rv.text.split('\n').map((l) => '    ' + l).join('\n'));
  const sims = await sim.invoices();
  const note = (sims.invoices || []).find((i) => i.trdInvcNo === refundNo);
  const inv = (sims.invoices || []).find((i) => i.trdInvcNo === rn);
  h.check(note && inv, `the simulator holds ${rn} and its credit note ${refundNo}: ${JSON.stringify(sims).slice(0, 800)}`);
  h.log(`  at the simulator: ${JSON.stringify({ rcptTyCd: note.rcptTyCd, orgInvcNo: note.orgInvcNo, rfdRsnCd: note.rfdRsnCd, invcNo: note.invcNo })}`);
  if (note.rcptTyCd !== undefined) h.checkEq(note.rcptTyCd, 'R', 'the credit note\'s rcptTyCd');
  if (note.orgInvcNo !== undefined) h.checkEq(String(note.orgInvcNo), String(inv.invcNo), 'the credit note names the sale\'s invoice');
  h.checkEq([sims.duplicates_refused, sims.gaps], [0, []], 'duplicates_refused, gaps');
  h.check(!/eTIMS: pending/.test(rv.text), `the signed refund still says pending: ${rv.text}`);
  for (const want of ['REFUND / CREDIT NOTE', `REFUND of ${rn}`, 'eTIMS CREDIT NOTE', `/${note.invcNo}`,
    note.rcptSign.match(/.{1,4}/g).join('-'), `${QR_BASE}?Data=P051234567X00${note.rcptSign}`]) {
    h.check(rv.text.includes(want), `the refund's receipt shows ${want}: ${rv.text}`);
  }
  h.check(!rv.text.includes('eTIMS TAX INVOICE'), 'a credit note is no tax invoice');
  h.check(rv.qr.box.left >= rv.paper.left && rv.qr.box.right <= rv.paper.right, 'the QR code inside the paper');
  await h.shot(ctx, page, 'refund-receipt-credit-note');
  const qrPng = ctx.path('qr.png');
  await page.locator('#etims-qr').screenshot({ path: qrPng });
  fs.copyFileSync(qrPng, path.join(ctx.outDir, 'qr-credit-note.png'));
  const read = h.zbar(qrPng);
  if (read === null) h.log('  SKIP zbarimg: not installed (scripts/deps.sh test installs zbar-tools)');
  else h.checkEq(read, `${QR_BASE}?Data=P051234567X00${note.rcptSign}`, 'the credit note\'s QR code read back by zbarimg');
  // At 58 mm the credit note's block stays on the paper.
  await page.click('#print-58');
  await page.emulateMedia({ media: 'print' });
  rv = await receiptView(page);
  h.check(rv.paper.width <= 58 * 96 / 25.4 + 1 && rv.qr.box.right <= rv.paper.right, `58 mm: ${JSON.stringify(rv.paper)}`);
  await h.shot(ctx, page, 'print-58mm-credit-note');
  await page.emulateMedia({ media: 'screen' });
  await page.keyboard.press('Enter');
  await biz.hub.stop();
});

s.main();

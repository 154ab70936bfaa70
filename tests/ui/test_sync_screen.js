#!/usr/bin/env node
'use strict';
/*
 * The sync screen (issue 11, "Sync screen") with the hub gone and back.
 *
 * - Every DOM id of the contract is in the page once logged in (the ones a sale creates, like
 *   #receipt-no, are checked by test_keyboard_sale.js).
 * - The hub killed, 2 sales: F9 shows #sync; #sync-pending-by-type names the sale type with 2,
 *   #oldest-pending an age (not "—"); #sync-now is disabled while #offline-banner names
 *   "Sync now" among what cannot be done, or it says in #sync-outcome that it did not sync;
 *   either way nothing changes (still 2 unsynced); Escape goes back to #search, #nav-sync to
 *   the sync screen.
 * - The hub back: the two go by themselves; #sync-now then says it synced ("Done"/pushed);
 *   #history has .history-row rows, the newest first; #connectivity-log lists the day's
 *   changes, an offline among them.
 */
const h = require('./harness');

const s = h.suite('sync_screen');

const CONTRACT_IDS = ['statusbar', 'light', 'last-sync', 'pending-count', 'failed-count', 'etims-pending',
  'cashier-name', 'nav-sell', 'nav-sync', 'logout', 'login', 'pin', 'login-submit', 'login-error', 'sell',
  'search', 'results', 'cart', 'band-totals', 'total', 'tendered', 'mpesa-code', 'card-ref', 'pay',
  'tendered-error', 'mpesa-code-error', 'card-ref-error', 'search-error', 'receipt', 'change-due',
  'print-80', 'print-58', 'new-sale', 'sync', 'sync-pending-by-type', 'oldest-pending', 'failed-list',
  'retry-all', 'sync-now', 'sync-outcome', 'history', 'history-more', 'connectivity-log', 'offline-banner'];

async function text(page, sel) {
  return ((await page.innerText(sel)) || '').replace(/\s+/g, ' ').trim();
}

s.test('sync_screen_offline_and_back', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  const missing = await page.evaluate((ids) => ids.filter((id) => document.querySelectorAll('#' + id).length !== 1), CONTRACT_IDS);
  h.check(missing.length === 0, `contract ids missing (or not unique) in the page: ${missing.join(', ')}`);

  await h.waitFor(async () => (await h.statusBar(page)).light === 'green', 15, 'green with the hub up');
  await biz.hub.kill();
  await h.waitFor(async () => (await h.statusBar(page)).light === 'red', 8, 'red after the kill');
  await h.keyboardSale(page, ['RICE']);
  await h.keyboardSale(page, ['SODA300', 'BREAD']);
  await h.waitFor(async () => (await h.statusBar(page)).pending === '2', 5, '#pending-count 2');

  await page.keyboard.press('F9');
  await page.waitForSelector('#sync:visible');
  const byType = await h.waitFor(async () => {
    const t = await text(page, '#sync-pending-by-type');
    return /sale/i.test(t) && /\b2\b/.test(t) ? t : '';
  }, 5, '#sync-pending-by-type to show the 2 sales');
  const oldest = await text(page, '#oldest-pending');
  h.log(`  #sync-pending-by-type: ${byType}; #oldest-pending: ${oldest}`);
  h.check(oldest && !/^[—-]$/.test(oldest), `#oldest-pending ${JSON.stringify(oldest)} while 2 wait`);

  // Offline, Sync now either is disabled while the page says why, or says it did not sync.
  let refused = '';
  if (await page.isDisabled('#sync-now')) {
    const banner = (await h.statusBar(page)).bannerText || '';
    h.log(`  #sync-now disabled offline; #offline-banner: ${banner}`);
    h.check(/sync now/i.test(banner), `#sync-now is disabled offline and #offline-banner does not say so: ${JSON.stringify(banner)}`);
  } else {
    await page.click('#sync-now');
    refused = await h.waitFor(async () => {
      const t = await text(page, '#sync-outcome');
      return t && !/…$/.test(t) ? t : '';
    }, 15, '#sync-outcome after Sync now with the hub gone');
    h.log(`  #sync-outcome offline: ${refused}`);
    h.check(/not|offline|unreachable|cannot/i.test(refused) && !/^Done/.test(refused),
      `#sync-outcome with the hub gone does not say it did not sync: ${JSON.stringify(refused)}`);
  }
  h.checkEq(await h.outboxUnsynced(biz.tillDb), 2, 'unsynced items after Sync now offline');
  await h.shot(ctx, page, 'sync-offline');

  await page.keyboard.press('Escape');
  await page.waitForSelector('#sell:visible');
  await h.waitFor(async () => (await h.focusedId(page)) === 'search', 5, 'Escape: back to #search');
  await page.click('#nav-sync');
  await page.waitForSelector('#sync:visible');

  await biz.hub.start();
  await h.waitFor(async () => (await h.statusBar(page)).light === 'green' &&
    (await h.statusBar(page)).pending === '0', 20, 'green and 0 pending once the hub is back');
  await page.click('#sync-now');
  const done = await h.waitFor(async () => {
    const t = await text(page, '#sync-outcome');
    return t && t !== refused && !/…$/.test(t) ? t : '';
  }, 15, '#sync-outcome after Sync now with the hub back');
  h.log(`  #sync-outcome online: ${done}`);
  h.check(/done|pushed|synced/i.test(done), `#sync-outcome online: ${JSON.stringify(done)}`);

  const rows = await h.waitFor(async () => {
    const r = await page.$$eval('#history .history-row', (els) => els.map((e) => e.textContent.replace(/\s+/g, ' ').trim()));
    return r.length >= 2 ? r : null;
  }, 10, 'rows in #history');
  const times = rows.map((r) => (/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.exec(r) || [''])[0]).filter(Boolean);
  h.check(times.length === rows.length, `#history rows without a time: ${JSON.stringify(rows.slice(0, 3))}`);
  h.checkEq(times, times.slice().sort().reverse(), '#history newest first');
  const log = await h.waitFor(async () => {
    const t = await text(page, '#connectivity-log');
    return /offline/i.test(t) && /online/i.test(t) ? t : '';
  }, 10, '#connectivity-log to list offline and online');
  h.log(`  #connectivity-log: ${log.slice(0, 160)}`);
  await h.shot(ctx, page, 'sync-back-online');
});

s.main();

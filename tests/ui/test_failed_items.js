#!/usr/bin/env node
'use strict';
/*
 * Failed items on the sync screen (issue 11): a poisoned outbox item shows in #failed-list
 * with its error, and Retry (one, then all) sends it again.
 *
 * The hub killed, three cash sales made; the payloads of the first and the last are poisoned
 * in the till's database (total_cents one cent off, as tests/e2e/test_poison_item.py does: the
 * hub refuses them for good, a validation error). The hub back:
 * - #failed-count 2, #pending-count 0, #light not green (something failed); F9 opens #sync,
 *   where #failed-list has a .failed-item[data-command-id] for each, its .failed-error naming
 *   total_cents; the good sale is at the hub;
 * - both payloads healed, .retry of the first: it reaches the hub, leaves the list, the other
 *   stays failed; #retry-all: the second goes too; #failed-count 0, green, all three receipts
 *   at the hub, nothing failed in the outbox.
 */
const h = require('./harness');

const s = h.suite('failed_items');

async function failedItems(page) {
  return page.$$eval('#failed-list .failed-item', (els) => els.map((e) => ({
    id: e.getAttribute('data-command-id'),
    error: ((e.querySelector('.failed-error') || {}).textContent || '').trim(),
    retry: !!e.querySelector('.retry'),
  })));
}

async function hubReceipts(biz) {
  return (await h.runJson(['hub', 'report', '--db', biz.hubDb, '--business', biz.businessId, '--json'])).receipts;
}

s.test('poisoned_items_show_with_their_error_and_retry_sends_them', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  await h.waitFor(async () => (await h.statusBar(page)).light === 'green', 15, 'green with the hub up');
  await biz.hub.kill();
  await h.waitFor(async () => (await h.statusBar(page)).light === 'red', 8, 'red after the kill');

  const receipts = [];
  for (const e of [['RICE'], ['SODA300'], ['UNGA2KG']]) receipts.push(await h.keyboardSale(page, e));
  const items = await h.dukaQueue(biz.tillDb);
  const cid = (rn) => {
    const it = items.find((i) => i.entity_id === rn);
    h.check(it && it.command_id, `no outbox item for ${rn}: ${JSON.stringify(items)}`);
    return it.command_id;
  };
  const poisoned = [cid(receipts[0]), cid(receipts[2])];
  for (const c of poisoned) await h.editOutboxPayload(biz.tillDb, c, 'poison');

  await biz.hub.start();
  const bar = await h.waitFor(async () => {
    const b = await h.statusBar(page);
    return b.failed === '2' && b.pending === '0' ? b : null;
  }, 20, '#failed-count 2 and #pending-count 0 once the hub refused the poisoned items');
  h.check(bar.light !== 'green', `#light is green with 2 failed items (${bar.light})`);
  h.checkEq((await hubReceipts(biz)), [receipts[1]], 'receipts at the hub: the good sale only');

  await page.keyboard.press('F9');
  await page.waitForSelector('#sync:visible');
  const listed = await h.waitFor(async () => {
    const f = await failedItems(page);
    return f.length === 2 ? f : null;
  }, 10, 'two .failed-item in #failed-list');
  h.checkEq(listed.map((f) => f.id).sort(), poisoned.slice().sort(), 'the failed items\' command ids');
  for (const f of listed) {
    h.check(/total_cents/.test(f.error), `.failed-error of ${f.id} does not name total_cents: ${JSON.stringify(f.error)}`);
    h.check(f.retry, `.failed-item ${f.id} has no .retry button`);
  }
  h.log(`  .failed-error: ${listed[0].error}`);
  await h.shot(ctx, page, 'sync-screen-2-failed');

  for (const c of poisoned) await h.editOutboxPayload(biz.tillDb, c, 'heal');
  await page.click(`#failed-list .failed-item[data-command-id="${poisoned[0]}"] .retry`);
  await h.waitFor(async () => {
    const f = await failedItems(page);
    return f.length === 1 && f[0].id === poisoned[1];
  }, 15, 'the retried item to leave #failed-list, the other to stay');
  await h.waitFor(async () => (await hubReceipts(biz)).includes(receipts[0]), 15,
    `the retried ${receipts[0]} at the hub`);
  h.checkEq((await h.statusBar(page)).failed, '1', '#failed-count after one retry');
  await h.shot(ctx, page, 'sync-screen-1-retried');

  await page.click('#retry-all');
  await h.waitFor(async () => (await failedItems(page)).length === 0, 15, '#failed-list empty after #retry-all');
  await h.waitFor(async () => {
    const b = await h.statusBar(page);
    return b.light === 'green' && b.failed === '0' && b.pending === '0';
  }, 15, 'green, failed 0, pending 0 after #retry-all');
  h.checkEq((await hubReceipts(biz)).slice().sort(), receipts.slice().sort(), 'receipts at the hub at the end');
  h.checkEq((await h.dukaQueue(biz.tillDb, 'failed')).length, 0, 'failed outbox items at the end');
  await h.shot(ctx, page, 'sync-screen-all-retried');
});

s.main();

#!/usr/bin/env node
'use strict';
/*
 * Bad input in a form field gets a clear message next to the field, and nothing is written
 * (issue 11, "Done when"; PRODUCT.md invariant 5).
 *
 * Logged in, the outbox's item count noted; then, each time checking that the message is in
 * the field's own .field-error (visible, not empty, close to the field), that no #receipt is
 * shown and that the outbox still has the same number of items:
 * - #search: a SKU the catalog does not have + Enter -> #search-error, the cart still empty;
 * - #tendered (F2): letters -> #tendered-error; less cash than the total -> #tendered-error;
 * - #mpesa-code (F3): a malformed code ("12!") -> #mpesa-code-error;
 * - #card-ref (F4): nothing typed -> #card-ref-error;
 * then a well-formed M-Pesa code pays (the checks refuse bad input, not everything): the
 * receipt shows and the outbox has one item more.
 */
const h = require('./harness');

const s = h.suite('field_errors');

/* The field's error element: shown, with text, within 120 px of the field. */
async function fieldError(page, field, errorId) {
  return h.waitFor(async () => page.evaluate(([f, e]) => {
    const fe = document.getElementById(f);
    const ee = document.getElementById(e);
    if (!fe || !ee) return null;
    const text = ee.textContent.trim();
    const a = fe.getBoundingClientRect();
    const b = ee.getBoundingClientRect();
    if (!text || b.width === 0 || b.height === 0 || getComputedStyle(ee).visibility === 'hidden') return null;
    const gap = Math.max(0, b.top - a.bottom, a.top - b.bottom);
    return { text, gap, cls: ee.classList.contains('field-error') };
  }, [field, errorId]), 5, `#${errorId} to show a message next to #${field}`);
}

s.test('bad_input_says_what_next_to_the_field_and_writes_nothing', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  const before = (await h.dukaQueue(biz.tillDb)).length;
  const nothingWritten = async (what) => {
    h.check(!(await page.isVisible('#receipt')), `${what}: a receipt is shown`);
    h.checkEq((await h.dukaQueue(biz.tillDb)).length, before, `${what}: outbox items`);
  };
  const expectError = async (field, errorId, what, pattern) => {
    const e = await fieldError(page, field, errorId);
    h.log(`  ${what}: #${errorId} ${JSON.stringify(e.text)}`);
    h.check(e.cls, `#${errorId} is not a .field-error`);
    h.check(e.gap < 120, `#${errorId} is ${e.gap.toFixed(0)} px away from #${field}`);
    if (pattern) h.check(pattern.test(e.text), `${what}: #${errorId} ${JSON.stringify(e.text)} does not match ${pattern}`);
    await nothingWritten(what);
    await h.shot(ctx, page, what.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
  };
  const focus = async (key, id) => {
    await page.keyboard.press(key);
    await h.waitFor(async () => (await h.focusedId(page)) === id, 5, `${key} to focus #${id}`);
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
  };

  await h.scan(page, 'NOSUCH999');
  await expectError('search', 'search-error', 'unknown SKU');
  h.checkEq((await page.$$('#cart .cart-line')).length, 0, 'cart lines after an unknown SKU');

  await page.keyboard.press('Escape');
  await page.fill('#search', '');
  await page.focus('#search');
  await h.scan(page, 'RICE', 1);

  // [key, field, typed, its error element, what]
  const bad = [
    ['F2', 'tendered', 'abc', 'tendered-error', 'letters as cash'],
    ['F2', 'tendered', '100', 'tendered-error', 'less cash than the total'],
    ['F3', 'mpesa-code', '12!', 'mpesa-code-error', 'malformed M-Pesa code'],
    ['F4', 'card-ref', '', 'card-ref-error', 'no card reference'],
  ];
  for (const [key, field, typed, errorId, what] of bad) {
    await focus(key, field);
    if (typed) await page.keyboard.type(typed);
    await page.keyboard.press('Enter');
    await expectError(field, errorId, what);
  }

  await focus('F3', 'mpesa-code');
  await page.keyboard.type('QGH7X2K9PL');
  await page.keyboard.press('Enter');
  const rn = await h.receiptNo(page);
  h.checkEq((await h.dukaQueue(biz.tillDb)).length, before + 1, `outbox items after the M-Pesa sale ${rn}`);
  await h.shot(ctx, page, 'mpesa-paid');
});

s.main();

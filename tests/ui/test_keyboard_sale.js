#!/usr/bin/env node
'use strict';
/*
 * A cashier with a barcode scanner never touches the mouse (issue 11): log in with the PIN
 * and Enter, ring up a 3-item sale by typing into #search, pay cash with F2, see the receipt
 * number; then the print views at 80 mm and 58 mm.
 *
 * keyboard sale: the cashier's button taken with the keyboard (focus + Enter), the PIN typed,
 *   Enter; #search has the focus; a barcode (exact SKU) + Enter, `2*SODA300` + Enter, part of
 *   a name ("milk") + Enter: three #cart lines, #total "KES 330.00"; F2 focuses #tendered,
 *   500 + Enter: #receipt-no is a receipt number, #change-due 170.00; the till's API has that
 *   sale with its total and the cashier, and the outbox holds one sale command for it; Enter
 *   starts a new sale (the cart empty, #search focused again).
 * cart: a .category-btn filters #results (its label readable under the mouse: contrast >= 4.5); `3*RICE`, SODA300, the soda's .qty set to 4: #total
 *   KES 740.00 and #band-totals per eTIMS band (B 200.00 VAT 27.59, E 540.00 VAT 40.00);
 *   quantity "x": a .field-error in its line and #pay disabled; .remove drops the line and
 *   gives the focus back to #search; nothing is written meanwhile; #etims-pending shows 0.
 * print view: #print-80 puts body.print-80mm; with print media the receipt's text spans at most
 *   80 mm and more than 60 mm (the printable width of 80 mm paper is about 72 mm), and the
 *   status bar and the cart are not printed; Chromium's PDF of the page (CSS page size)
 *   is 80 mm wide; the same at 58 mm with #print-58. window.print is stubbed to count calls.
 */
const h = require('./harness');

const s = h.suite('keyboard_sale');
const MM_PER_PX = 25.4 / 96;

s.test('three_items_with_the_keyboard_only', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const amina = biz.cashiers[0];
  const page = await h.openTill(ctx, biz.till);
  await page.waitForSelector('#login:visible');
  await h.shot(ctx, page, 'login');
  // Keyboard only: the cashier's button gets the focus and Enter takes it; the PIN; Enter.
  await page.focus(`.cashier-btn[data-cashier-id="${amina.id}"]`);
  await page.keyboard.press('Enter');
  await h.waitFor(async () => (await h.focusedId(page)) === 'pin', 5, '#pin focused after choosing Amina');
  await page.keyboard.type(amina.pin);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#sell:visible');
  await h.waitFor(async () => (await h.focusedId(page)) === 'search', 5, '#search focused on the sell screen');
  h.check(((await page.textContent('#cashier-name')) || '').includes('Amina'), '#cashier-name shows Amina');

  await h.scan(page, '6161101234567', 1);            // a barcode: Sugar 1kg
  await h.scan(page, '2*SODA300', 2);                // quantity times SKU
  await h.scan(page, 'milk', 3);                     // part of a name: the first match
  const lines = await page.$$eval('#cart .cart-line', (els) => els.map((e) => ({
    sku: e.getAttribute('data-sku'), qty: (e.querySelector('.qty') || {}).value })));
  h.checkEq(lines.map((l) => l.sku).sort(), ['6161101234567', '6161101234574', 'SODA300'].sort(), 'SKUs in the cart');
  h.checkEq(lines.find((l) => l.sku === 'SODA300').qty, '2', 'qty of 2*SODA300');
  const total = (await page.textContent('#total')).trim();
  h.check(total.includes('330.00') && total.includes('KES'), `#total ${JSON.stringify(total)}, want KES 330.00`);
  await h.shot(ctx, page, 'cart');

  await page.keyboard.press('F2');
  await h.waitFor(async () => (await h.focusedId(page)) === 'tendered', 5, 'F2 to focus #tendered');
  await page.keyboard.type('500');
  await h.shot(ctx, page, 'cash-tendered');
  await page.keyboard.press('Enter');
  const rn = await h.receiptNo(page);
  h.check(rn.startsWith('T01-'), `receipt number ${rn}`);
  const change = (await page.textContent('#change-due')).trim();
  h.check(change.includes('170.00'), `#change-due ${JSON.stringify(change)}, want 170.00`);
  await h.shot(ctx, page, 'receipt');

  const sale = await h.request('GET', biz.till.port, `/api/sales/${encodeURIComponent(rn)}`);
  h.checkEq(sale.status, 200, `GET /api/sales/${rn}`);
  const totalCents = sale.json.total_cents !== undefined ? sale.json.total_cents : sale.json.total;
  h.checkEq(totalCents, 33000, `total of ${rn} at the till`);
  h.check(sale.json.cashier && sale.json.cashier.name === 'Amina',
    `the sale's cashier: ${JSON.stringify(sale.json.cashier)}`);
  const items = (await h.dukaQueue(biz.tillDb)).filter((i) => i.entity_id === rn);
  h.checkEq(items.length, 1, `outbox commands for ${rn}`);

  await page.keyboard.press('Enter');                 // new sale
  await h.waitFor(async () => (await h.focusedId(page)) === 'search' &&
    (await page.$$('#cart .cart-line')).length === 0 && !(await page.isVisible('#receipt')), 5,
  'Enter on the receipt: an empty cart, #search focused');
  await h.shot(ctx, page, 'new-sale');
});

s.test('cart_quantity_remove_categories_and_band_totals', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const page = await h.openTill(ctx, biz.till);
  await h.login(page, biz.cashiers[0]);
  const before = (await h.dukaQueue(biz.tillDb)).length;
  h.checkEq((await h.statusBar(page)).etims, '0', '#etims-pending shown as 0 (never hidden)');

  // A category button filters #results to that category's products.
  await page.click('.category-btn:has-text("Dairy")');
  await h.waitFor(async () => {
    const skus = await page.$$eval('#results .product', (els) => els.map((e) => e.getAttribute('data-sku')));
    return skus.length === 1 && skus[0] === '6161101234574';
  }, 5, 'the Dairy button to leave only Milk in #results');
  // The mouse is still on the chosen button: its label must stay readable (WCAG AA, 4.5:1).
  const dairy = '.category-btn.active:has-text("Dairy")';
  await page.hover(dairy);
  const contrast = await h.textContrast(page, dairy);
  h.log(`  the chosen category under the mouse: contrast ${contrast.toFixed(1)}:1`);
  h.check(contrast >= 4.5, `the chosen category button under the mouse has a text contrast of ` +
    `${contrast.toFixed(1)}:1 (want >= 4.5:1): its label is hard to read`);
  await page.focus('#search');
  await h.scan(page, '3*RICE', 1);                   // 3 x 180.00, band E (8 %)
  await h.scan(page, 'SODA300', 2);                  // 50.00, band B (16 %)
  const qty = '#cart .cart-line[data-sku="SODA300"] .qty';
  await page.fill(qty, '4');                         // 4 x 50.00
  await h.waitFor(async () => (await page.textContent('#total')).includes('740.00'), 5,
    '#total KES 740.00 after the soda quantity was set to 4');
  const bands = (await page.innerText('#band-totals')).replace(/\s+/g, ' ');
  h.check(/B\b.*200\.00/.test(bands) && /E\b.*540\.00/.test(bands) && /27\.59/.test(bands) && /40\.00/.test(bands),
    `#band-totals (B 200.00 with VAT 27.59, E 540.00 with VAT 40.00): ${bands}`);
  await page.fill(qty, 'x');
  const err = await h.waitFor(async () => page.$eval('#cart .cart-line[data-sku="SODA300"] .field-error',
    (e) => e.textContent.trim()).catch(() => ''), 5, 'a .field-error in the soda line for quantity x');
  h.log(`  quantity x: ${err}`);
  h.check(await page.isDisabled('#pay'), '#pay enabled with a bad quantity in the cart');
  await h.shot(ctx, page, 'bad-quantity');
  await page.click('#cart .cart-line[data-sku="SODA300"] .remove');
  await h.waitFor(async () => (await page.$$('#cart .cart-line')).length === 1 &&
    (await page.textContent('#total')).includes('540.00'), 5, 'the soda line removed, #total KES 540.00');
  h.checkEq(await h.focusedId(page), 'search', 'the focus after removing a line');
  h.checkEq((await h.dukaQueue(biz.tillDb)).length, before, 'outbox items while editing the cart');
  await h.shot(ctx, page, 'cart-edited');
});

/* Chromium's PDF of the page: the width of its first page in mm (MediaBox, points). */
function pdfPageWidthMm(pdf) {
  const m = /\/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]/.exec(pdf.toString('latin1'));
  h.check(m, 'the PDF has no MediaBox');
  return (parseFloat(m[3]) - parseFloat(m[1])) * 25.4 / 72;
}

s.test('print_view_at_80_and_58_mm', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const context = await h.launchBrowser(ctx);
  await context.addInitScript(() => {
    window.__printCalls = 0;
    window.print = () => { window.__printCalls += 1; };
  });
  const page = await h.openTill(ctx, biz.till, context);
  await h.login(page, biz.cashiers[0]);
  await h.scan(page, 'UNGA2KG', 1);
  await h.scan(page, 'RICE', 2);
  await page.keyboard.press('F2');
  await h.waitFor(async () => (await h.focusedId(page)) === 'tendered', 5, 'F2 to focus #tendered');
  await page.keyboard.press('Enter'); // exact cash
  const rn = await h.receiptNo(page);

  for (const [button, cls, mm] of [['#print-80', 'print-80mm', 80], ['#print-58', 'print-58mm', 58]]) {
    await page.emulateMedia({ media: 'screen' });
    const before = await page.evaluate(() => window.__printCalls);
    await page.click(button);
    await h.waitFor(async () => page.evaluate((c) => document.body.classList.contains(c), cls), 5,
      `body.${cls} after ${button}`);
    await h.waitFor(async () => (await page.evaluate(() => window.__printCalls)) > before, 5,
      `${button} to call window.print`);
    await page.emulateMedia({ media: 'print' });
    const view = await page.evaluate(() => {
      const shown = (id) => {
        const e = document.getElementById(id);
        if (!e) return null;
        const r = e.getBoundingClientRect();
        return getComputedStyle(e).display !== 'none' && r.width > 0 && r.height > 0;
      };
      const rn = document.getElementById('receipt-no');
      // The receipt as printed: from the leftmost to the rightmost glyph of #receipt's text.
      let left = Infinity;
      let right = -Infinity;
      const walker = document.createTreeWalker(document.getElementById('receipt'), NodeFilter.SHOW_TEXT);
      const range = document.createRange();
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.textContent.trim()) continue;
        range.selectNodeContents(n);
        for (const r of range.getClientRects()) {
          if (r.width === 0) continue;
          left = Math.min(left, r.left);
          right = Math.max(right, r.right);
        }
      }
      const widest = right > left ? right - left : 0;
      return { receipt: shown('receipt'), receiptNo: rn ? rn.textContent.trim() : null,
        widthPx: widest, statusbar: shown('statusbar'), cart: shown('cart') };
    });
    h.check(view.receipt, `print media (${cls}): #receipt is not shown`);
    h.checkEq(view.receiptNo, rn, `print media (${cls}): #receipt-no`);
    const widthMm = view.widthPx * MM_PER_PX;
    h.log(`  ${cls}: the receipt's text ${widthMm.toFixed(1)} mm wide in print media`);
    h.check(widthMm >= mm - 20 && widthMm <= mm + 0.5,
      `print media (${cls}): the receipt's text is ${widthMm.toFixed(1)} mm wide, want at most ${mm} mm ` +
      `and more than ${mm - 20} mm`);
    h.checkEq(view.statusbar, false, `print media (${cls}): the status bar is printed`);
    h.checkEq(view.cart, false, `print media (${cls}): the cart is printed`);
    await h.shot(ctx, page, `print-${mm}mm`);
    const pdf = await page.pdf({ preferCSSPageSize: true, printBackground: false });
    require('fs').writeFileSync(ctx.path(`receipt-${mm}.pdf`), pdf);
    const pageMm = pdfPageWidthMm(pdf);
    h.log(`  ${cls}: PDF page ${pageMm.toFixed(1)} mm wide`);
    h.check(Math.abs(pageMm - mm) < 1, `${cls}: the printed page is ${pageMm.toFixed(1)} mm wide, want ${mm} mm (@page size)`);
  }
  await page.emulateMedia({ media: 'screen' });
});

s.main();

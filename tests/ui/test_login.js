#!/usr/bin/env node
'use strict';
/*
 * Cashiers and sessions on the till's screen and API (issue 11, "Cashiers").
 *
 * wrong PIN: the login screen lists the hub's cashiers (one .cashier-btn each, its name); a
 *   wrong PIN + Enter stays on #login with the reason in #login-error ("wrong PIN …"), and
 *   nothing opens: GET /api/session of that browser has no cashier; the right PIN then logs
 *   in and #cashier-name shows the name; #logout goes back to #login and the page's session
 *   no longer writes (POST /api/sales with the old cookie: 401).
 * lockout: five wrong PINs for Amina; the fifth #login-error says she is locked; the right PIN
 *   then gets 423 `locked` from POST /api/login; Baraka still logs in.
 * no session: POST /api/sales, /api/sync, /api/queue/retry and /api/logout from a plain HTTP
 *   client without a cookie, and with a made-up bearer token, answer 401 with
 *   {"error": {"code": "unauthorized", "message"}}, and the outbox is unchanged; the same sale
 *   with a session is 201 (so the 401 is about the session, not the body); POST /api/offline
 *   with a cashier's session is 403, with a manager's 200.
 */
const h = require('./harness');

const s = h.suite('login');

s.test('wrong_pin_is_refused_then_the_right_one_logs_in', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const [amina, baraka] = biz.cashiers;
  const context = await h.launchBrowser(ctx);
  const page = await h.openTill(ctx, biz.till, context);
  await page.waitForSelector('#login:visible');
  const buttons = await page.$$eval('.cashier-btn', (els) => els.map((e) => ({
    id: e.getAttribute('data-cashier-id'), text: e.textContent.trim() })));
  h.checkEq(buttons.map((b) => b.id).sort(), [amina.id, baraka.id].sort(), 'cashier buttons');
  for (const c of [amina, baraka]) {
    h.check(buttons.find((b) => b.id === c.id).text.includes(c.name), `the button of ${c.name} names them`);
  }
  // 401 on the API's session check (no session yet) is expected in the console.
  ctx.allowConsoleErrors = /status of 401/;

  await page.click(`.cashier-btn[data-cashier-id="${amina.id}"]`);
  await page.fill('#pin', '');
  await page.focus('#pin');
  await page.keyboard.type('1111');
  await page.keyboard.press('Enter');
  const err = await h.waitFor(async () => {
    const t = ((await page.textContent('#login-error')) || '').trim();
    return (await page.isVisible('#login-error')) && t ? t : '';
  }, 10, '#login-error after a wrong PIN');
  h.log(`  #login-error: ${err}`);
  h.check(/wrong PIN/i.test(err), `#login-error names the problem: ${JSON.stringify(err)}`);
  h.check(await page.isVisible('#login'), 'still on the login screen after a wrong PIN');
  h.check(!(await page.isVisible('#sell')), 'the sell screen shown after a wrong PIN');
  const cookies = await context.cookies(biz.till.url);
  h.check(!cookies.some((c) => c.name === 'duka_session'), 'a session cookie after a wrong PIN');
  await h.shot(ctx, page, 'wrong-pin');

  await h.login(page, amina);
  const session = (await context.cookies(biz.till.url)).find((c) => c.name === 'duka_session');
  h.check(session, 'no duka_session cookie after the login');
  h.check(session.httpOnly, 'the duka_session cookie is not HttpOnly');
  h.checkEq(session.sameSite, 'Strict', 'the duka_session cookie SameSite');
  await h.shot(ctx, page, 'logged-in');

  const cookie = { Cookie: `duka_session=${session.value}` };
  const ok = await h.request('POST', biz.till.port, '/api/sales', {
    body: { items: [{ sku: 'RICE', qty: 1 }], pay: 'cash' }, headers: cookie });
  h.checkEq(ok.status, 201, `POST /api/sales with the page's session cookie (${ok.body.slice(0, 200)})`);

  await page.click('#logout');
  await page.waitForSelector('#login:visible');
  await h.shot(ctx, page, 'logged-out');
  const after = await h.request('POST', biz.till.port, '/api/sales', {
    body: { items: [{ sku: 'RICE', qty: 1 }], pay: 'cash' }, headers: cookie });
  h.checkEq(after.status, 401, 'POST /api/sales with the cookie of a logged-out session');
});

s.test('five_wrong_pins_lock_the_cashier', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const [amina, baraka] = biz.cashiers;
  const page = await h.openTill(ctx, biz.till);
  const messages = [];
  for (let i = 0; i < 5; i++) {
    await page.click(`.cashier-btn[data-cashier-id="${amina.id}"]`);
    await page.fill('#pin', '0000');
    await page.keyboard.press('Enter');
    messages.push(await h.waitFor(async () => {
      const t = ((await page.textContent('#login-error')) || '').trim();
      return t && t !== messages[messages.length - 1] ? t : '';
    }, 10, `#login-error after wrong PIN ${i + 1}`));
  }
  h.log(`  ${messages.join(' | ')}`);
  h.check(/lock/i.test(messages[4]), `#login-error after the 5th wrong PIN does not say locked: ${messages[4]}`);
  await h.shot(ctx, page, 'locked');
  // Locked: even the right PIN is refused (423), and another cashier still logs in.
  const r = await h.request('POST', biz.till.port, '/api/login', { body: { cashier_id: amina.id, pin: amina.pin } });
  h.checkEq(r.status, 423, `POST /api/login with the right PIN while locked (${r.body.slice(0, 200)})`);
  h.checkEq(r.json && r.json.error && r.json.error.code, 'locked', 'the error code while locked');
  await h.login(page, baraka);
});

s.test('a_write_without_a_session_is_401_and_changes_nothing', async (ctx) => {
  const biz = await h.setupBusiness(ctx);
  const port = biz.till.port;
  const before = (await h.dukaQueue(biz.tillDb)).length;
  const sale = { items: [{ sku: 'RICE', qty: 1 }], pay: 'cash' };
  const writes = [['/api/sales', sale], ['/api/sync', {}], ['/api/queue/retry', { all: true }],
    ['/api/logout', {}]];
  for (const headers of [{}, { Authorization: 'Bearer ' + 'A'.repeat(43) },
    { Cookie: 'duka_session=' + 'B'.repeat(43) }]) {
    for (const [p, body] of writes) {
      const r = await h.request('POST', port, p, { body, headers });
      const what = `POST ${p} with ${JSON.stringify(headers)}`;
      h.checkEq(r.status, 401, what);
      h.check(r.json && r.json.error && r.json.error.code === 'unauthorized' &&
        typeof r.json.error.message === 'string' && r.json.error.message,
      `${what}: body ${r.body.slice(0, 300)}`);
    }
  }
  h.checkEq((await h.dukaQueue(biz.tillDb)).length, before, 'outbox items after the refused writes');
  const token = await h.apiLogin(port, biz.cashiers[0]);
  const r = await h.request('POST', port, '/api/sales', { body: sale, headers: { Authorization: `Bearer ${token}` } });
  h.checkEq(r.status, 201, `the same sale with a session (${r.body.slice(0, 200)})`);
  h.checkEq((await h.dukaQueue(biz.tillDb)).length, before + 1, 'outbox items after the sale with a session');
  // The offline switch is a manager's: a cashier's session gets 403, a manager's 200.
  const off = await h.request('POST', port, '/api/offline', { body: { offline: true }, headers: { Authorization: `Bearer ${token}` } });
  h.checkEq(off.status, 403, `POST /api/offline with a cashier's session (${off.body.slice(0, 200)})`);
  const manager = await h.apiLogin(port, biz.cashiers[1]);
  const on = await h.request('POST', port, '/api/offline', { body: { offline: false }, headers: { Authorization: `Bearer ${manager}` } });
  h.checkEq(on.status, 200, `POST /api/offline with a manager's session (${on.body.slice(0, 200)})`);
});

s.main();

#!/usr/bin/env node
'use strict';
/*
 * The till serves its own screen (issue 11, "Everything offline"): GET / of `duka till
 * --listen` in Chromium shows the status bar with the light, and the page asks nothing of any
 * host but the till (no CDN, no web fonts from elsewhere), with no error in the page.
 *
 * - the page loads, #statusbar and #light (data-state green|yellow|red) are there, and the
 *   light settles on the till's own /api/status light;
 * - every request the page makes goes to the till's origin; the static files are answered 200
 *   with a content type (text/html, text/css, a JavaScript type) — the API's answers may be
 *   401 (no session yet);
 * - no uncaught error and no console error (the harness fails the test on either).
 */
const h = require('./harness');

const s = h.suite('page_load');

s.test('the_till_serves_its_screen_with_nothing_from_elsewhere', async (ctx) => {
  const biz = await h.setupBusiness(ctx, { cashiers: [] });
  const context = await h.launchBrowser(ctx);
  const page = await h.newPage(ctx, context);
  const requests = [];
  const responses = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => responses.push({ url: r.url(), status: r.status(),
    type: (r.headers()['content-type'] || '') }));
  const reply = await page.goto(biz.till.url + '/', { waitUntil: 'load' });
  h.check(reply && reply.status() === 200, `GET / answered ${reply && reply.status()}`);
  h.check((reply.headers()['content-type'] || '').startsWith('text/html'),
    `GET / content type ${reply.headers()['content-type']}`);
  await page.waitForSelector('#statusbar');
  const states = ['green', 'yellow', 'red'];
  const api = await biz.till.status();
  h.check(states.includes(api.light), `GET /api/status light ${JSON.stringify(api.light)}`);
  await h.waitFor(async () => states.includes((await h.statusBar(page)).light), 5,
    '#light to have data-state green|yellow|red');
  await h.shot(ctx, page, 'first-load');

  const origin = biz.till.url + '/';
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'));
  h.check(foreign.length === 0, `the page asked other hosts: ${foreign.join(', ')}`);
  for (const r of responses.filter((x) => !x.url.startsWith(biz.till.url + '/api/'))) {
    h.checkEq(r.status, 200, `${r.url}: status`);
    if (/\.css(\?|$)/.test(r.url)) h.check(r.type.startsWith('text/css'), `${r.url}: ${r.type}`);
    if (/\.js(\?|$)/.test(r.url)) h.check(/javascript/.test(r.type), `${r.url}: ${r.type}`);
  }
  h.log(`  ${responses.length} responses, all from ${origin}`);
});

s.main();

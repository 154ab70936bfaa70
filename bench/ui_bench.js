#!/usr/bin/env node
'use strict';
/*
 * bench/ui_bench.js — the web UI's figures of `make bench` (issue 11), in Debian's chromium
 * driven by playwright-core (tests/ui/harness.js; bench/run.sh installs it with
 * tests/ui/install.sh). Figures only: it exits non-zero when something is wrong (a sale
 * without its receipt, a till that dies), never because it was slow.
 *
 *   node bench/ui_bench.js --duka BUILD/duka --dir SCRATCH [--results bench/RESULTS.md]
 *        [--sales 200] [--rss-sales 1000] [--loads 20]
 *
 * A real hub and till on 127.0.0.1 (hub init, product import, two cashiers, device add, till
 * init, one sync), the till with the default settings (run.sh unsets every setting):
 * - first load: --loads times, each in a fresh browser context (no cache, no cookie), from
 *   navigation start to the login screen's first .cashier-btn in the DOM (the page has
 *   fetched its status and cashiers: a cashier can act); median and max, and where it went
 *   (Navigation and Resource Timing: the HTML's first byte, DOMContentLoaded, the last API
 *   reply before the screen). Page weight: the
 *   decoded bytes of every response of the first of those loads (uncompressed).
 * - Pay: logged in, --sales sales, each one item typed into #search + Enter, then, timed in
 *   the page (performance.now()), a click on #pay until #receipt is shown with a new receipt
 *   number in #receipt-no; Enter for the next sale (not timed). Alternating with each of those,
 *   a bare POST /api/sales of one item with the same session cookie, timed in this process
 *   around the request on a fresh connection: the floor the UI adds its work to.
 * - RSS: the till's VmRSS (/proc/PID/status) before the first sale and after --rss-sales UI
 *   sales (the timed ones included), with VmHWM, the UI open and polling all along.
 */
const fs = require('fs');
const path = require('path');

const args = { sales: 200, rssSales: 1000, loads: 20, results: '', dir: '', duka: '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  const v = process.argv[i + 1];
  const name = { '--duka': 'duka', '--dir': 'dir', '--results': 'results', '--sales': 'sales',
    '--rss-sales': 'rssSales', '--loads': 'loads' }[k];
  if (!name || v === undefined) {
    process.stderr.write(`ui_bench: unknown or incomplete argument ${k} (see the head of bench/ui_bench.js)\n`);
    process.exit(2);
  }
  args[name] = ['sales', 'rssSales', 'loads'].includes(name) ? parseInt(v, 10) : v;
}
if (!args.duka || !args.dir) {
  process.stderr.write('usage: node bench/ui_bench.js --duka BUILD/duka --dir SCRATCH [--results FILE]\n');
  process.exit(2);
}
process.env.DUKA_BIN = path.resolve(args.duka);
process.env.DUKA_UI_OUT = path.join(args.dir, 'ui-screenshots');
const h = require('../tests/ui/harness');

const TARGET_PAY_P99_MS = 50;
const TARGET_LOAD_MS = 300;
const TARGET_WEIGHT_KB = 150;
const SKUS = h.PRODUCTS.map((p) => p[0]);

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const median = (xs) => percentile(xs.slice().sort((a, b) => a - b), 50);

function procStatus(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => { const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text); return m ? parseInt(m[1], 10) : NaN; };
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024 };
}

/* One load of / in a fresh context: {ms, bytes, responses}. */
async function firstLoad(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const bodies = [];
  page.on('response', (r) => bodies.push(r.body().then((b) => b.length).catch(() => 0)));
  await page.goto(url + '/', { waitUntil: 'commit' });
  const ms = await page.waitForFunction(() => document.querySelector('.cashier-btn') && performance.now(),
    null, { polling: 'raf', timeout: 30000 }).then((hnd) => hnd.jsonValue());
  // Where the time went: the HTML's first byte, DOMContentLoaded (HTML, CSS and JS in and
  // run), and the last answer of the API the login screen waits for.
  const parts = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/'));
    return { firstByte: n.responseStart, dcl: n.domContentLoadedEventEnd,
      api: api.length ? Math.max(...api.map((r) => r.responseEnd)) : NaN };
  });
  await page.waitForLoadState('networkidle').catch(() => {});
  const sizes = await Promise.all(bodies);
  await context.close();
  return Object.assign({ ms, bytes: sizes.reduce((a, b) => a + b, 0), responses: sizes.length }, parts);
}

/* Click #pay; resolves with the ms until #receipt shows a receipt number other than before. */
function timedPay(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const re = /^[A-Za-z0-9]+-\d{8}-\d{5,}$/;
    const no = () => ((document.getElementById('receipt-no') || {}).textContent || '').trim();
    const before = no();
    const shown = () => {
      const r = document.getElementById('receipt');
      const n = no();
      return r && !r.hidden && r.checkVisibility() && n !== before && re.test(n);
    };
    const t0 = performance.now();
    const obs = new MutationObserver(() => {
      if (shown()) { obs.disconnect(); clearTimeout(timer); resolve(performance.now() - t0); }
    });
    const timer = setTimeout(() => { obs.disconnect(); reject(new Error('no receipt 20 s after Pay')); }, 20000);
    obs.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    document.getElementById('pay').click();
  }));
}

async function barePost(port, cookie, sku) {
  const t0 = process.hrtime.bigint();
  const r = await h.request('POST', port, '/api/sales', {
    body: { items: [{ sku, qty: 1 }], pay: 'cash' }, headers: { Cookie: cookie }, timeout: 30 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  h.check(r.status === 201 && h.RECEIPT_RE.test((r.json || {}).receipt_no || ''),
    `bare POST /api/sales -> ${r.status} ${r.body.slice(0, 200)}`);
  return ms;
}

async function uiSale(page, sku) {
  await h.scan(page, sku, 1);
  const ms = await timedPay(page);
  await page.keyboard.press('Enter');
  await h.waitFor(async () => (await h.focusedId(page)) === 'search' &&
    (await page.$$('#cart .cart-line')).length === 0, 10, 'a new sale after Enter');
  return ms;
}

async function bench(ctx) {
  const biz = await h.setupBusiness(ctx, { tillEnv: {} });
  const pid = biz.till.proc.pid;
  const browser = await h.launchPlainBrowser(ctx);
  const version = browser.version();

  const loads = [];
  for (let i = 0; i < args.loads; i++) loads.push(await firstLoad(browser, biz.till.url));
  const loadMs = loads.map((l) => l.ms);

  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await h.newPage(ctx, context);
  await page.goto(biz.till.url + '/');
  await h.login(page, biz.cashiers[0]);
  const session = (await context.cookies(biz.till.url)).find((c) => c.name === 'duka_session');
  h.check(session, 'no duka_session cookie after the login');
  const cookie = `duka_session=${session.value}`;
  const rssStart = procStatus(pid);

  const pay = [];
  const bare = [];
  const t0 = Date.now();
  for (let i = 0; i < args.sales; i++) {
    const sku = SKUS[i % SKUS.length];
    // Alternate which goes first, so that both see the same noise.
    if (i % 2) { bare.push(await barePost(biz.till.port, cookie, sku)); pay.push(await uiSale(page, sku)); }
    else { pay.push(await uiSale(page, sku)); bare.push(await barePost(biz.till.port, cookie, sku)); }
  }
  for (let i = args.sales; i < args.rssSales; i++) await uiSale(page, SKUS[i % SKUS.length]);
  const uiSeconds = (Date.now() - t0) / 1000;
  const rssEnd = procStatus(pid);
  h.check(biz.till.running(), 'the till died during the bench');
  const st = await h.dukaStatus(biz.tillDb);
  return { version, loads, loadMs, pay, bare, rssStart, rssEnd, uiSeconds, failed: st.failed,
    sales: Math.max(args.rssSales, args.sales) + args.sales };
}

function fmt(n, d = 1) { return Number.isFinite(n) ? n.toFixed(d) : 'n/a'; }

function table(r) {
  const pay = r.pay.slice().sort((a, b) => a - b);
  const bare = r.bare.slice().sort((a, b) => a - b);
  const p50 = percentile(pay, 50);
  const p99 = percentile(pay, 99);
  const b50 = percentile(bare, 50);
  const b99 = percentile(bare, 99);
  const load = median(r.loadMs);
  const weightKb = r.loads[0].bytes / 1024;
  const rows = [
    ['metric (web UI, issue 11)', 'value', 'target'],
    [`Pay -> #receipt-no shown p50 / p99 (ms, n=${pay.length})`, `${fmt(p50)} / ${fmt(p99)}`, `p99 <= ${TARGET_PAY_P99_MS}`],
    [`bare POST /api/sales p50 / p99 (ms, n=${bare.length})`, `${fmt(b50)} / ${fmt(b99)}`, ''],
    ['Pay p99 / bare p99; Pay p99 / target', `${fmt(p99 / b99)}x; ${fmt(p99 / TARGET_PAY_P99_MS, 2)}x`, '<= 1x of target'],
    [`first load of / to interactive (ms, median of ${r.loadMs.length})`, `${fmt(load, 0)} (max ${fmt(Math.max(...r.loadMs), 0)})`, `<= ${TARGET_LOAD_MS}`],
    ['  load / target', `${fmt(load / TARGET_LOAD_MS, 2)}x`, ''],
    ['  of which: first byte / DOMContentLoaded / last API (ms)',
      `${fmt(median(r.loads.map((l) => l.firstByte)), 0)} / ${fmt(median(r.loads.map((l) => l.dcl)), 0)} / ` +
      `${fmt(median(r.loads.map((l) => l.api)), 0)}`, ''],
    [`page weight of / (KB uncompressed, ${r.loads[0].responses} responses)`, `${fmt(weightKb)} (${fmt(weightKb / TARGET_WEIGHT_KB, 2)}x of target)`, `<= ${TARGET_WEIGHT_KB}`],
    [`till RSS, UI open, ${Math.max(args.rssSales, args.sales).toLocaleString("en-US")} UI sales (MB)`, `${fmt(r.rssStart.rss)} -> ${fmt(r.rssEnd.rss)} (peak ${fmt(r.rssEnd.hwm)}; own ${fmt(r.rssEnd.anon)})`, ''],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length)) + 2;
  const w1 = Math.max(...rows.map((x) => x[1].length)) + 2;
  return rows.map((x) => (x[0].padEnd(w0) + x[1].padEnd(w1) + x[2]).trimEnd()).join('\n') + '\n' +
    `Chromium ${r.version} headless (Debian) via playwright-core on loopback; ${r.sales.toLocaleString("en-US")} sales in all, ` +
    `${fmt(r.uiSeconds)} s of UI selling; hub and till with the default settings, the hub up\n`;
}

(async () => {
  fs.mkdirSync(args.dir, { recursive: true });
  let result;
  const problems = await h.withContext('ui_bench', 'bench', fs.mkdtempSync(path.join(args.dir, 'ui-')),
    async (ctx) => { result = await bench(ctx); }).catch((e) => {
    process.stderr.write(`ui_bench: ${e.message || e}\n`);
    process.exit(1);
  });
  if (problems.length) {
    process.stderr.write(`ui_bench: ${problems.join('\n')}\n`);
    process.exit(1);
  }
  const text = table(result);
  process.stdout.write('\n' + text);
  if (args.results) {
    const day = new Date().toISOString().slice(0, 10);
    fs.appendFileSync(args.results, `\nWeb UI figures (issue 11, ${day}): \`bench/ui_bench.js\`, a real till in Chromium ` +
      '(what each figure means: [README.md](README.md#the-web-uis-figures-issue-11)).\n\n```\n' + text + '```\n');
  }
  process.exit(0);
})();

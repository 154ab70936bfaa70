'use strict';
/*
 * tests/ui/harness.js — shared helpers for the browser tests of the till's web UI (issue 11),
 * the JavaScript twin of tests/e2e/harness.py (read that one first: this mirrors it).
 *
 * Each test file is a standalone Node.js script: it makes a suite with `suite(name)`, adds
 * async tests with `s.test(name, fn)` and calls `s.main()`, which runs each test in its own
 * temp dir, kills every process the test started (even on failure), scans their logs for
 * sanitizer reports, prints `N passed, N failed` as its last line and exits 0 only when all
 * passed. The binary under test is $DUKA_BIN (an absolute path; default <repo>/build/duka).
 * Everything listens on 127.0.0.1 and the children get no proxy variables.
 *
 * The browser is Debian's chromium (/usr/bin/chromium, or $DUKA_CHROMIUM) driven by
 * playwright-core from tests/ui/node_modules (tests/ui/install.sh puts it there). Chromium
 * starts headless with the flags that keep it off the network (no background connections, no
 * component updates, no QUIC, no proxy) and a fresh profile in the test's temp dir.
 *
 * Screenshots of each state go to <out>/<suite>/<test>/NN-state.png, where <out> is
 * $DUKA_UI_OUT or, by default, ui-screenshots/ beside $DUKA_BIN (so build/ui-screenshots or
 * build-asan/ui-screenshots); a test's folder is emptied when it starts.
 *
 * Timing: nothing sleeps for a fixed time to let things happen; helpers poll a condition with
 * a deadline (scaled by DUKA_E2E_SLOWDOWN, as in the Python harness). No test asserts a time.
 */

const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const HERE = __dirname;
const REPO = path.dirname(path.dirname(HERE));
const SLOWDOWN = parseFloat(process.env.DUKA_E2E_SLOWDOWN || '1') || 1;
const SANITIZER_RE = new RegExp(
  'ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error: |' +
    'WARNING: ThreadSanitizer|==\\d+== ERROR SUMMARY: [1-9]');
const RECEIPT_RE = /^[A-Za-z0-9]+-\d{8}-\d{5,}$/;
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-proxy-server', '--disable-dev-shm-usage',
];

function dukaBin() {
  return process.env.DUKA_BIN || path.join(REPO, 'build', 'duka');
}

function chromiumPath() {
  return process.env.DUKA_CHROMIUM || '/usr/bin/chromium';
}

function outRoot() {
  return process.env.DUKA_UI_OUT || path.join(path.dirname(dukaBin()), 'ui-screenshots');
}

function log(...args) {
  process.stdout.write(args.join(' ') + '\n');
}

class TestFailure extends Error {}

function check(cond, msg) {
  if (!cond) throw new TestFailure(msg);
}

function checkEq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new TestFailure(`${what}: got ${g}, want ${w}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function deadline(seconds) {
  return Date.now() + seconds * 1000 * SLOWDOWN;
}

/* Polls cond() (sync or async) every interval ms until it returns something truthy, which it
 * returns; throws naming `what` (and the last value or error seen) after `seconds`. */
async function waitFor(cond, seconds, what, intervalMs = 50) {
  const end = deadline(seconds);
  let last;
  let lastErr;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
      last = v;
      lastErr = undefined;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      throw new TestFailure(`timed out after ${(seconds * SLOWDOWN).toFixed(0)}s waiting for ` +
        `${what}` + (lastErr ? ` (last error: ${lastErr.message || lastErr})` :
        last !== undefined ? ` (last value: ${JSON.stringify(last)})` : ''));
    }
    await sleep(intervalMs);
  }
}

// --------------------------------------------------------------------------------------------
// processes: every one started is killed at the end, even on failure
// --------------------------------------------------------------------------------------------
const CONFIG_ENV_PREFIXES = ['OFFLINE_QUEUE_', 'CONNECTIVITY_', 'ALERT_', 'QUEUE_', 'HUB_', 'SALE_',
  'SHOP_', 'TILL_'];
const allProcs = new Set();
let current = null; // the running test's context

/* The environment of every process we start: no proxies, no stray DUKA_* configuration or
 * till settings of the caller (tests/e2e/harness.py child_env). */
function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    const low = k.toLowerCase();
    if (['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy'].includes(low)) continue;
    if (k.startsWith('DUKA_') && k !== 'DUKA_BIN') continue;
    if (CONFIG_ENV_PREFIXES.some((p) => k.startsWith(p))) continue;
    env[k] = v;
  }
  env.NO_PROXY = env.no_proxy = '127.0.0.1,localhost';
  return Object.assign(env, extra || {});
}

function killGroup(proc, signal = 'SIGKILL') {
  if (!proc || !proc.pid) return;
  try {
    process.kill(-proc.pid, signal); // each child leads its own process group (detached)
  } catch (_) {
    try { proc.kill(signal); } catch (_) { /* gone */ }
  }
}

function exited(proc) {
  return proc.exitCode !== null || proc.signalCode !== null;
}

function waitExit(proc, ms) {
  if (exited(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

function killAllNow() {
  for (const p of allProcs) killGroup(p);
}
process.on('exit', killAllNow);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => { killAllNow(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15)); });
}

/* Starts `duka ARGS` in its own process group with stdout+stderr to logPath (or ignored);
 * registered for cleanup. */
function spawnDuka(args, { logPath, env } = {}) {
  let fd = 'ignore';
  if (logPath) fd = fs.openSync(logPath, 'w');
  const proc = childProcess.spawn(dukaBin(), args.map(String), {
    stdio: ['ignore', fd, fd], env: childEnv(env), detached: true,
  });
  if (logPath) fs.closeSync(fd);
  proc.cmdline = 'duka ' + args.join(' ');
  proc.on('error', () => {});
  allProcs.add(proc);
  proc.once('exit', () => allProcs.delete(proc));
  if (current) current.procs.push(proc);
  return proc;
}

function fmtCmd(args) {
  return 'duka ' + args.map(String).join(' ');
}

/* Runs `duka ARGS` to completion: {rc, stdout, stderr}. input: text for stdin. */
function run(args, { input, env, timeout = 60 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = childProcess.spawn(dukaBin(), args.map(String), {
      stdio: ['pipe', 'pipe', 'pipe'], env: childEnv(env), detached: true,
    });
    allProcs.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      killGroup(proc);
      reject(new TestFailure(`timed out after ${timeout * SLOWDOWN}s: ${fmtCmd(args)}`));
    }, timeout * 1000 * SLOWDOWN);
    proc.on('error', (e) => { clearTimeout(timer); allProcs.delete(proc); reject(e); });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      allProcs.delete(proc);
      resolve({ rc: code === null ? -1 : code, signal, stdout, stderr });
    });
    // A command that exits before reading its stdin closes the pipe: EPIPE is no failure
    // of the test (its exit code says what happened).
    proc.stdin.on('error', () => {});
    proc.stdin.end(input === undefined ? '' : input);
  });
}

async function runOk(args, opts) {
  const r = await run(args, opts);
  if (r.rc !== 0) throw new TestFailure(`${fmtCmd(args)} -> exit ${r.rc}, stderr: ${r.stderr.trim()}`);
  return r.stdout;
}

async function runJson(args, opts) {
  const out = await runOk(args, opts);
  try {
    return JSON.parse(out);
  } catch (e) {
    throw new TestFailure(`${fmtCmd(args)}: stdout is not JSON (${e.message}): ${out.slice(0, 500)}`);
  }
}

// --------------------------------------------------------------------------------------------
// network
// --------------------------------------------------------------------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/* One HTTP request to 127.0.0.1:port: {status, headers, body (string), json (or null)}.
 * Never throws on 4xx/5xx; throws on a connection error. */
function request(method, port, urlPath, { body, headers, timeout = 10 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined :
      (typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    const h = Object.assign({}, headers || {});
    if (data !== undefined) {
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
      h['Content-Length'] = Buffer.byteLength(data);
    }
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers: h,
      agent: false, timeout: timeout * 1000 * SLOWDOWN }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

function portAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// --------------------------------------------------------------------------------------------
// servers
// --------------------------------------------------------------------------------------------
class Server {
  constructor(kind, args, port, logdir, healthPath, env) {
    this.kind = kind;
    this.args = args;
    this.port = port;
    this.logdir = logdir;
    this.healthPath = healthPath;
    this.env = env;
    this.proc = null;
    this.starts = 0;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  logPath() { return path.join(this.logdir, `${this.kind}-${this.port}.${this.starts}.log`); }

  logTail(n = 2000) {
    try { return fs.readFileSync(this.logPath(), 'utf8').slice(-n); } catch (_) { return ''; }
  }

  running() { return this.proc !== null && !exited(this.proc); }

  /* Starts the process and polls its health URL every 50 ms until it answers 200. */
  async start(timeout = 15) {
    this.starts += 1;
    this.proc = spawnDuka(this.args, { logPath: this.logPath(), env: this.env });
    if (current && !current.servers.includes(this)) current.servers.push(this);
    await waitFor(async () => {
      if (exited(this.proc)) {
        throw new TestFailure(`${fmtCmd(this.args)} exited with ${this.proc.exitCode} before ` +
          `answering health; output: ${this.logTail()}`);
      }
      try {
        return (await request('GET', this.port, this.healthPath, { timeout: 2 })).status === 200;
      } catch (_) {
        return false;
      }
    }, timeout, `${fmtCmd(this.args)} to answer GET ${this.healthPath}`).catch((e) => {
      killGroup(this.proc);
      throw e;
    });
    return this;
  }

  /* SIGTERM, then wait up to 15 s (then SIGKILL). Returns the exit code, null if killed. */
  async stop(timeout = 15) {
    if (!this.proc || exited(this.proc)) return this.proc ? this.proc.exitCode : null;
    this.proc.kill('SIGTERM');
    if (await waitExit(this.proc, timeout * 1000 * SLOWDOWN)) return this.proc.exitCode;
    killGroup(this.proc);
    await waitExit(this.proc, 10000);
    return null;
  }

  /* SIGKILL (no chance to clean up: a power cut, a pulled cable), then reap. */
  async kill() {
    if (!this.proc || exited(this.proc)) return;
    this.proc.kill('SIGKILL');
    await waitExit(this.proc, 10000);
  }
}

class Hub extends Server {
  constructor(db, port, logdir, env) {
    super('hub', ['hub', '--db', db, '--listen', `127.0.0.1:${port}`], port, logdir,
      '/v1/health', env);
    this.db = db;
  }
}

/* The till's probe and retry settings for tests: a hub that goes is noticed within about
 * 2 s, one that comes back within about 1 s, and a failed push is retried within 1 s. */
const FAST_TILL_ENV = {
  CONNECTIVITY_CHECK_INTERVAL: '1',
  CONNECTIVITY_CHECK_TIMEOUT: '1',
  CONNECTIVITY_OFFLINE_RECHECK_MAX: '1',
  OFFLINE_QUEUE_BACKOFF_BASE: '100',
  OFFLINE_QUEUE_BACKOFF_MAX: '1',
};

class Till extends Server {
  constructor(db, port, { logdir, syncInterval = 1, extra = [], env } = {}) {
    const args = ['till', '--db', db, '--listen', `127.0.0.1:${port}`];
    if (syncInterval !== null) args.push('--sync-interval', String(syncInterval));
    super('till', args.concat(extra.map(String)), port, logdir || path.dirname(db),
      '/api/status', env);
    this.db = db;
  }

  async status() {
    const r = await request('GET', this.port, '/api/status', { timeout: 5 });
    checkEq(r.status, 200, 'GET /api/status');
    return r.json;
  }
}

// --------------------------------------------------------------------------------------------
// the outbox, as the CLI reads it (the truth the UI's numbers are compared with)
// --------------------------------------------------------------------------------------------
async function dukaStatus(db) {
  return runJson(['status', '--db', db, '--json']);
}

/* Outbox items of a status (all statuses when omitted), one page big enough for any test. */
async function dukaQueue(db, status) {
  const args = ['queue', '--db', db, '--limit', '100000'];
  if (status) args.push('--status', status);
  const r = await runJson(args.concat(['--json']));
  check(Array.isArray(r.items), `duka queue: items must be a list: ${JSON.stringify(r)}`);
  return r.items;
}

/* The outbox's count of what is not yet at the hub: pending + processing (duka queue). */
async function outboxUnsynced(db) {
  return (await dukaQueue(db, 'pending')).length + (await dukaQueue(db, 'processing')).length;
}

/* Rewrites the JSON payload of the outbox row of `commandId` in a till database, as the Python
 * tests do with sqlite3 (python3 is in scripts/deps.sh test): mode 'poison' adds one cent to
 * total_cents (the hub refuses it: the total no longer adds up), 'heal' takes it off again. */
async function editOutboxPayload(db, commandId, mode) {
  const code = [
    'import json, sqlite3, sys',
    'db, cid, mode = sys.argv[1:4]',
    'con = sqlite3.connect(db, timeout=30)',
    'row = con.execute("SELECT id, payload FROM outbox WHERE command_id = ?", (cid,)).fetchone()',
    'assert row is not None, "no outbox row for command " + cid',
    'p = json.loads(row[1])',
    'p["total_cents"] += 1 if mode == "poison" else -1',
    'with con:',
    '    con.execute("UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps(p, separators=(",", ":")), row[0]))',
  ].join('\n');
  const r = await new Promise((resolve) => {
    childProcess.execFile('python3', ['-c', code, db, commandId, mode], { timeout: 30000 },
      (err, stdout, stderr) => resolve({ err, stderr }));
  });
  check(!r.err, `editing the outbox payload of ${commandId} (${mode}): ${r.stderr || r.err}`);
}

// --------------------------------------------------------------------------------------------
// a business: hub, catalog, cashiers, till
// --------------------------------------------------------------------------------------------
const PRODUCTS = [
  // sku (barcode-like for the first ones), name, price (KES), eTIMS band, stock, category
  ['6161101234567', 'Sugar 1kg', '165.00', 'B', 5000, 'Groceries'],
  ['6161101234574', 'Milk 500ml', '65.00', 'C', 9000, 'Dairy'],
  ['6161101234581', 'Bread 400g', '60.00', 'B', 3000, 'Bakery'],
  ['RICE', 'Pishori rice per kg', '180.00', 'E', 2000, 'Groceries'],
  ['SODA300', 'Soda 300ml', '50.00', 'B', 9000, 'Drinks'],
  ['UNGA2KG', 'Maize flour 2kg', '210.50', 'A', 1000, 'Groceries'],
];
const CASHIERS = [
  { name: 'Amina', role: 'cashier', pin: '4821' },
  { name: 'Baraka', role: 'manager', pin: '907315' },
];

/* hub init, product import, cashier add (each PIN on stdin), device add, the hub started,
 * till init, one `duka sync` (catalog and cashiers pulled), the till started. Returns
 * {hub, hubDb, businessId, token, tillDb, till, cashiers: [{id, name, role, pin}]}.
 * tillEnv: extra environment for the till (FAST_TILL_ENV by default). */
async function setupBusiness(ctx, { products = PRODUCTS, cashiers = CASHIERS, tillEnv,
  terminal = 'T01', startTill = true, tillExtra = [] } = {}) {
  const hubDb = ctx.path('hub.db');
  const init = await runJson(['hub', 'init', '--db', hubDb, '--business', 'Duka UI Shop', '--json']);
  const businessId = init.business_id;
  check(typeof businessId === 'string' && businessId, `hub init: business_id ${businessId}`);
  const csv = ctx.path('products.csv');
  fs.writeFileSync(csv, 'sku,name,price,tax,stock,category\n' +
    products.map((p) => p.join(',')).join('\n') + '\n');
  const imp = await runJson(['product', 'import', '--db', hubDb, '--business', businessId, csv, '--json']);
  checkEq(imp.imported, products.length, 'product import: imported');
  const made = [];
  for (const c of cashiers) {
    const r = await runJson(['cashier', 'add', '--db', hubDb, '--business', businessId,
      '--name', c.name, '--role', c.role, '--pin', '-', '--json'], { input: c.pin + '\n' });
    check(typeof r.cashier_id === 'string' && r.cashier_id, `cashier add: ${JSON.stringify(r)}`);
    made.push(Object.assign({ id: r.cashier_id }, c));
  }
  const dev = await runJson(['device', 'add', '--db', hubDb, '--business', businessId,
    '--terminal', terminal, '--json']);
  const token = dev.token;
  const hub = await new Hub(hubDb, await freePort(), ctx.tmp).start();
  const tillDb = ctx.path(`till-${terminal}.db`);
  await runOk(['till', 'init', '--db', tillDb, '--hub', hub.url, '--terminal', terminal,
    '--token', token]);
  await runOk(['sync', '--db', tillDb, '--json']); // the catalog and the cashiers
  const till = new Till(tillDb, await freePort(), { env: tillEnv || FAST_TILL_ENV, extra: tillExtra });
  if (startTill) await till.start();
  return { hub, hubDb, businessId, token, tillDb, till, cashiers: made };
}

/* POST /api/login for a cashier; returns the session token. */
async function apiLogin(port, cashier) {
  const r = await request('POST', port, '/api/login', { body: { cashier_id: cashier.id, pin: cashier.pin } });
  check(r.status === 200 && r.json && typeof r.json.token === 'string',
    `POST /api/login as ${cashier.name} -> ${r.status} ${r.body.slice(0, 300)}`);
  return r.json.token;
}

/* n cash sales through POST /api/sales with a session token (faster than the browser). */
async function apiSales(port, token, n, skus = PRODUCTS.map((p) => p[0])) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const items = [{ sku: skus[i % skus.length], qty: 1 }, { sku: skus[(i * 5 + 1) % skus.length], qty: 1 + (i % 2) }];
    const r = await request('POST', port, '/api/sales', {
      body: { items, pay: 'cash' }, headers: { Authorization: `Bearer ${token}` }, timeout: 30 });
    check(r.status === 201 && r.json && RECEIPT_RE.test(r.json.receipt_no || ''),
      `POST /api/sales -> ${r.status} ${r.body.slice(0, 300)}`);
    out.push(r.json);
  }
  return out;
}

// --------------------------------------------------------------------------------------------
// eTIMS: `duka sim etims` and a hub that forwards to it
// --------------------------------------------------------------------------------------------
/* Starts `duka sim etims` on a free port (its state in the test's temp dir) and waits for
 * /_sim/health. Returns {port, proc, invoices() (GET /_sim/invoices of the business' PIN),
 * faults(knobs) (POST /_sim/faults)}. */
async function startEtimsSim(ctx, { tin = 'P051234567X' } = {}) {
  const port = await freePort();
  const proc = spawnDuka(['sim', 'etims', '--listen', `127.0.0.1:${port}`, '--state', ctx.path('sim.db')],
    { logPath: ctx.path('sim.log') });
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new TestFailure(`duka sim etims exited: ${fs.readFileSync(ctx.path('sim.log'), 'utf8')}`);
    try { return (await request('GET', port, '/_sim/health', { timeout: 2 })).status === 200; } catch (_) { return false; }
  }, 15, 'duka sim etims to answer /_sim/health');
  return {
    port,
    proc,
    async invoices() {
      const r = await request('GET', port, `/_sim/invoices?tin=${tin}&bhfId=00`);
      checkEq(r.status, 200, 'GET /_sim/invoices');
      return r.json;
    },
    async faults(knobs) {
      const r = await request('POST', port, '/_sim/faults', { body: knobs });
      checkEq(r.status, 200, `POST /_sim/faults ${JSON.stringify(knobs)}`);
    },
  };
}

/* setupBusiness with the business' KRA PIN and its hub forwarding to the simulator: the hub
 * restarted with eTIMS in its configuration file (--config, as a shop's would be), then the
 * till started. Returns setupBusiness' object with `hub` the restarted hub. */
async function setupEtimsBusiness(ctx, sim, { kraPin = 'P051234567X' } = {}) {
  const biz = await setupBusiness(ctx, { startTill: false });
  await runOk(['business', 'set', '--db', biz.hubDb, '--business', biz.businessId, '--kra-pin', kraPin]);
  await biz.hub.stop();
  const conf = ctx.path('hub.conf');
  fs.writeFileSync(conf, `ETIMS_BASE_URL = http://127.0.0.1:${sim.port}/etims-api\nETIMS_TIMEOUT = 5\n`);
  const hub = new Hub(biz.hubDb, biz.hub.port, ctx.tmp);
  hub.args.push('--config', conf);
  await hub.start();
  await biz.till.start();
  return Object.assign(biz, { hub });
}

/* zbarimg's reading of a PNG, or null when zbarimg is not installed. */
function zbar(file) {
  const which = childProcess.spawnSync('sh', ['-c', 'command -v zbarimg']);
  if (which.status !== 0) return null;
  const r = childProcess.spawnSync('zbarimg', ['-q', '--raw', file], { encoding: 'utf8' });
  check(r.status === 0, `zbarimg could not read ${file} (exit ${r.status})`);
  return r.stdout.trim();
}

// --------------------------------------------------------------------------------------------
// the browser
// --------------------------------------------------------------------------------------------
function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    throw new TestFailure(`playwright-core is not installed in ${HERE}/node_modules ` +
      `(run tests/ui/install.sh; make test does): ${e.message}`);
  }
}

/* Chromium with a fresh profile in the test's temp dir; closed at the test's cleanup. Returns
 * the browser context (one cookie jar: every page of it shares the cashier's session). */
async function launchBrowser(ctx, { viewport = { width: 1280, height: 860 } } = {}) {
  const { chromium } = loadPlaywright();
  check(fs.existsSync(chromiumPath()), `chromium not found at ${chromiumPath()} ` +
    '(scripts/deps.sh test installs Debian\'s chromium; DUKA_CHROMIUM names another)');
  const profile = ctx.path(`chromium-profile-${ctx.browsers.length}`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS, viewport,
    timeout: 60000 * SLOWDOWN, env: childEnv(),
  });
  context.setDefaultTimeout(15000 * SLOWDOWN);
  ctx.browsers.push(context);
  return context;
}

/* A plain Chromium (playwright's own fresh temp profile) for fresh, cache-less contexts one
 * after the other (browser.newContext()); closed at the test's cleanup. */
async function launchPlainBrowser(ctx) {
  const { chromium } = loadPlaywright();
  check(fs.existsSync(chromiumPath()), `chromium not found at ${chromiumPath()}`);
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true,
    args: CHROMIUM_FLAGS, timeout: 60000 * SLOWDOWN, env: childEnv() });
  ctx.browsers.push(browser);
  return browser;
}

/* A page of the context that records uncaught errors and console errors (a test fails on any,
 * at its cleanup, unless ctx.allowConsoleErrors matches them). */
async function newPage(ctx, context) {
  const page = context.pages().length && !context.pages()[0].url().startsWith('http') ?
    context.pages()[0] : await context.newPage();
  page.on('pageerror', (e) => ctx.pageErrors.push(`uncaught in page: ${e.message}`));
  // The browser's own "Failed to load resource: … 401" lines are not the page's errors (a
  // 401 of GET /api/session is how the page learns it has no session); tests check statuses.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) {
      ctx.consoleErrors.push(`console.error: ${m.text()}`);
    }
  });
  return page;
}

/* Opens the till's UI in a new browser (or the given context) and waits for the login screen
 * or the sell screen. */
async function openTill(ctx, till, context) {
  context = context || await launchBrowser(ctx);
  const page = await newPage(ctx, context);
  await page.goto(till.url + '/', { waitUntil: 'load' });
  await page.waitForSelector('#login:visible, #sell:visible');
  return page;
}

/* The login screen: the cashier's button, the PIN typed, Enter. Waits for #sell. */
async function login(page, cashier) {
  await page.waitForSelector('#login:visible');
  await page.click(`.cashier-btn[data-cashier-id="${cashier.id}"]`);
  await page.fill('#pin', '');
  await page.focus('#pin');
  await page.keyboard.type(cashier.pin);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#sell:visible');
  await waitFor(async () => (await page.textContent('#cashier-name') || '').includes(cashier.name),
    5, `#cashier-name to show ${cashier.name}`);
}

/* The status bar as the cashier sees it. */
async function statusBar(page) {
  return page.evaluate(() => {
    const t = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
    const light = document.getElementById('light');
    const banner = document.getElementById('offline-banner');
    return {
      light: light ? light.getAttribute('data-state') : null,
      title: light ? light.getAttribute('title') : null,
      lastSync: t('last-sync'),
      pending: t('pending-count'),
      failed: t('failed-count'),
      etims: t('etims-pending'),
      cashier: t('cashier-name'),
      banner: banner ? !banner.hidden && getComputedStyle(banner).display !== 'none' &&
        banner.offsetParent !== null : null,
      bannerText: banner ? banner.textContent.trim() : null,
    };
  });
}

/* The id of the element that has the keyboard focus ('' for none). */
async function focusedId(page) {
  return page.evaluate(() => (document.activeElement && document.activeElement.id) || '');
}

/* Types text into #search (which must have the focus: keyboard only) and presses Enter;
 * waits until the cart has `lines` lines (when given). */
async function scan(page, text, lines) {
  checkEq(await focusedId(page), 'search', `the focus before typing ${text}`);
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
  if (lines !== undefined) {
    await waitFor(async () => (await page.$$('#cart .cart-line')).length === lines, 5,
      `${lines} lines in #cart after ${text}`);
  }
}

/* The receipt number once #receipt is shown after a sale (checked against RECEIPT_RE). */
async function receiptNo(page, seconds = 10) {
  return waitFor(async () => {
    if (!(await page.isVisible('#receipt'))) return '';
    const t = ((await page.textContent('#receipt-no')) || '').trim();
    return RECEIPT_RE.test(t) ? t : '';
  }, seconds, '#receipt shown with a receipt number in #receipt-no');
}

/* A cash sale with the keyboard only, from the sell screen: each entry typed into #search with
 * Enter, F2, the tendered amount ('' for none), Enter. Returns the receipt number, then Enter
 * for a new sale (the search has the focus again). */
async function keyboardSale(page, entries, tendered = '') {
  for (let i = 0; i < entries.length; i++) await scan(page, entries[i], i + 1);
  await page.keyboard.press('F2');
  await waitFor(async () => (await focusedId(page)) === 'tendered', 5, 'F2 to focus #tendered');
  if (tendered) await page.keyboard.type(tendered);
  await page.keyboard.press('Enter');
  const rn = await receiptNo(page);
  await page.keyboard.press('Enter');
  await waitFor(async () => (await focusedId(page)) === 'search' &&
    (await page.$$('#cart .cart-line')).length === 0, 5, 'Enter on the receipt: a new sale');
  return rn;
}

/* The Sync screen's reprint of a receipt (F9 first when not on it): the receipt shown. */
async function openReprint(page, receiptNo) {
  if (!(await page.isVisible('#sync'))) {
    await page.keyboard.press('F9');
    await page.waitForSelector('#sync:visible');
  }
  await page.fill('#reprint-no', receiptNo);
  await page.click('#reprint');
  await page.waitForSelector('#receipt:visible');
  await waitFor(async () => ((await page.textContent('#receipt-no')) || '').trim() === receiptNo, 5,
    `the reprint of ${receiptNo}`);
}

/* Records every state of the status bar the page shows, from the first paint on and across
 * reloads, into the returned array: {t, light, pending, failed} (a MutationObserver on the
 * status bar installed before the page's own scripts run). */
async function recordStatusBar(page) {
  const seen = [];
  await page.exposeBinding('__dukaStatusSeen', (_src, s) => { seen.push(s); });
  await page.addInitScript(() => {
    const report = () => {
      const light = document.getElementById('light');
      if (!light) return;
      const t = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
      const s = { t: Date.now(), light: light.getAttribute('data-state'), pending: t('pending-count'),
        failed: t('failed-count') };
      const k = JSON.stringify([s.light, s.pending, s.failed]);
      if (k !== window.__dukaLastStatus) { window.__dukaLastStatus = k; window.__dukaStatusSeen(s); }
    };
    new MutationObserver(report).observe(document, { subtree: true, childList: true,
      characterData: true, attributes: true, attributeFilter: ['data-state'] });
  });
  return seen;
}

/* The WCAG contrast ratio of an element's text colour against its background (the first
 * ancestor with a background that is not transparent), as the page shows it now (hover and
 * focus included): 1 (invisible) to 21 (black on white). */
async function textContrast(page, selector) {
  return page.$eval(selector, (e) => {
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bg = null;
    for (let n = e; n && !bg; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0)) bg = c;
    }
    const fg = lum(rgb(getComputedStyle(e).color));
    const b = lum(bg || [255, 255, 255]);
    return (Math.max(fg, b) + 0.05) / (Math.min(fg, b) + 0.05);
  });
}

/* Saves a screenshot of the page as the test's next NN-state.png; returns its path. */
async function shot(ctx, page, state, opts = {}) {
  ctx.shots += 1;
  const file = path.join(ctx.outDir, `${String(ctx.shots).padStart(2, '0')}-${state}.png`);
  await page.screenshot(Object.assign({ path: file, fullPage: true }, opts));
  return file;
}

// --------------------------------------------------------------------------------------------
// the runner
// --------------------------------------------------------------------------------------------
class Context {
  constructor(suiteName, name, tmp) {
    this.name = name;
    this.tmp = tmp;
    this.procs = [];
    this.servers = [];
    this.browsers = [];
    this.cleanups = [];
    this.pageErrors = [];
    this.consoleErrors = [];
    this.allowConsoleErrors = null; // a RegExp of console errors the test expects
    this.shots = 0;
    this.outDir = path.join(outRoot(), suiteName, name);
    fs.rmSync(this.outDir, { recursive: true, force: true });
    fs.mkdirSync(this.outDir, { recursive: true });
  }

  path(...parts) { return path.join(this.tmp, ...parts); }

  onCleanup(fn) { this.cleanups.push(fn); }

  /* Closes the browsers, stops servers still running (SIGTERM, so sanitizer builds report
   * leaks), kills everything else; returns the problems found: sanitizer reports in any *.log
   * of the temp dir, servers that ignored SIGTERM, errors in the page. */
  async cleanup() {
    const problems = [];
    for (const fn of this.cleanups.reverse()) {
      try { await fn(); } catch (e) { log(`  cleanup: ${e.stack || e}`); }
    }
    for (const b of this.browsers) {
      try { await b.close(); } catch (_) { /* already gone */ }
    }
    for (const srv of this.servers) {
      if (srv.running()) {
        const rc = await srv.stop();
        if (rc === null) problems.push(`${fmtCmd(srv.args)} did not exit within 15 s of SIGTERM`);
      }
    }
    // Whether it is still running or not: what is left of its process group goes too.
    for (const p of this.procs) killGroup(p);
    const walk = (dir) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) { if (!e.name.startsWith('chromium-profile')) walk(full); continue; }
        if (!e.name.endsWith('.log')) continue;
        let text;
        try { text = fs.readFileSync(full, 'utf8'); } catch (_) { continue; }
        const m = SANITIZER_RE.exec(text);
        if (m) problems.push(`sanitizer report in ${full}: ${text.slice(Math.max(0, m.index - 200), m.index + 1500)}`);
      }
    };
    walk(this.tmp);
    problems.push(...this.pageErrors);
    for (const c of this.consoleErrors) {
      if (!(this.allowConsoleErrors && this.allowConsoleErrors.test(c))) problems.push(c);
    }
    return problems;
  }
}

/* Runs fn(ctx) outside a suite (the bench): a Context in tmp, its cleanup afterwards, even on
 * failure. Returns the cleanup's problems; fn's error is thrown after the cleanup. */
async function withContext(suiteName, name, tmp, fn) {
  const ctx = new Context(suiteName, name, tmp);
  current = ctx;
  let error = null;
  try {
    await fn(ctx);
  } catch (e) {
    error = e;
  }
  const problems = await ctx.cleanup();
  current = null;
  if (error) throw error;
  return problems;
}

function suite(name) {
  const tests = [];
  return {
    test(testName, fn) { tests.push({ name: testName, fn }); },
    async main() {
      const only = process.argv.slice(2);
      let passed = 0;
      let failed = 0;
      const started = Date.now();
      for (const t of tests) {
        if (only.length && !only.includes(t.name)) continue;
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `duka-ui-${t.name}-`));
        const ctx = new Context(name, t.name, tmp);
        current = ctx;
        const t0 = Date.now();
        log(`=== ${t.name}`);
        let ok = false;
        try {
          if (!fs.existsSync(dukaBin())) throw new TestFailure(`duka binary not found at ${dukaBin()} (set DUKA_BIN)`);
          await t.fn(ctx);
          ok = true;
        } catch (e) {
          log(`FAIL ${t.name}: ${e instanceof TestFailure ? e.message : (e && e.stack) || e}`);
        }
        const problems = await ctx.cleanup();
        current = null;
        if (problems.length) {
          if (ok) log(`FAIL ${t.name}: after the test:`);
          for (const p of problems) log(`  ${p}`);
          ok = false;
        }
        const dt = ((Date.now() - t0) / 1000).toFixed(1);
        if (ok) {
          passed += 1;
          log(`ok   ${t.name} (${dt}s; screenshots in ${ctx.outDir})`);
          fs.rmSync(tmp, { recursive: true, force: true });
        } else {
          failed += 1;
          log(`     (${dt}s; files kept in ${tmp}; screenshots in ${ctx.outDir})`);
        }
      }
      log(`${name}: ${((Date.now() - started) / 1000).toFixed(1)}s`);
      log(`${passed} passed, ${failed} failed`);
      killAllNow();
      process.exit(failed === 0 && passed > 0 ? 0 : 1);
    },
  };
}

module.exports = {
  REPO, SLOWDOWN, RECEIPT_RE, CHROMIUM_FLAGS, FAST_TILL_ENV, PRODUCTS, CASHIERS, TestFailure,
  check, checkEq, log, sleep, waitFor, deadline, dukaBin, chromiumPath, childEnv, spawnDuka,
  run, runOk, runJson, freePort, request, portAccepts, Hub, Till, dukaStatus, dukaQueue,
  outboxUnsynced, setupBusiness, apiLogin, apiSales, loadPlaywright, launchBrowser, newPage,
  openTill, login, statusBar, shot, suite, fmtCmd, focusedId, scan, receiptNo, keyboardSale,
  recordStatusBar, editOutboxPayload, textContrast, launchPlainBrowser, withContext, Context,
  startEtimsSim, setupEtimsBusiness, zbar, openReprint,
};

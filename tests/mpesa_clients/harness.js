'use strict';
/*
 * tests/mpesa_clients/harness.js — what the third-party Daraja client tests share: a real
 * `duka sim mpesa` on a free loopback port in a temp dir (killed when the script ends, however
 * it ends), a loopback HTTP server standing in for the business's callback URLs, the simulator's
 * /_sim control, and a small runner printing like tests/e2e/harness.py (`=== name`, `ok   name`,
 * `FAIL name: why`, `N passed, N failed` last; exit 0 only when everything passed).
 *
 * The clients are npm packages in tests/mpesa_clients/node_modules (install.sh puts them there).
 * Everything listens on 127.0.0.1 and the proxy variables are removed from this process (axios
 * 0.18 honours http_proxy) and from the simulator's environment, so nothing leaves loopback.
 * No test sleeps for a fixed time to let things happen: waits poll a condition with a deadline
 * (scaled by DUKA_E2E_SLOWDOWN).
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
const PROXY_VARS = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy'];

for (const k of Object.keys(process.env)) {
  if (PROXY_VARS.includes(k.toLowerCase())) delete process.env[k];
}
process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';

function dukaBin() {
  return process.env.DUKA_BIN || path.join(REPO, 'build', 'duka');
}

function log(...args) {
  process.stdout.write(args.join(' ') + '\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function checkEq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

/* Polls fn() (sync or async) every 50 ms until truthy; returns its value or throws naming what. */
async function waitFor(fn, seconds, what) {
  const end = Date.now() + seconds * 1000 * SLOWDOWN;
  let lastErr = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${seconds * SLOWDOWN}s waiting for ${what}` +
        (lastErr ? ` (last error: ${lastErr.message})` : ''));
    }
    await sleep(50);
  }
}

/* A free TCP port on 127.0.0.1 (0: the system picks), or null when that port cannot be bound. */
function freePort(port = 0) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
}

/* One HTTP request to 127.0.0.1:port; resolves {status, body (parsed JSON or null), text}. */
function request(method, port, urlPath, body = null, headers = {}, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const data = body === null ? null : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data !== null) {
      h['Content-Type'] = h['Content-Type'] || 'application/json';
      h['Content-Length'] = Buffer.byteLength(data);
    }
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers: h },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = null;
          try { parsed = JSON.parse(text); } catch (e) { parsed = null; }
          resolve({ status: res.statusCode, body: parsed, text });
        });
      });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    if (data !== null) req.write(data);
    req.end();
  });
}

/* The environment of the simulator: ours without proxies and without DUKA_* settings. */
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (PROXY_VARS.includes(k.toLowerCase())) continue;
    if (k.startsWith('DUKA_') && k !== 'DUKA_BIN') continue;
    env[k] = v;
  }
  env.NO_PROXY = env.no_proxy = '127.0.0.1,localhost';
  return env;
}

/* Every simulator started, killed (its whole process group) when this process exits. */
const STARTED = [];

function killAll() {
  for (const s of STARTED) {
    if (s.exitCode === null && s.child && s.child.exitCode === null) {
      try { process.kill(-s.child.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
  }
}
process.on('exit', killAll);
for (const [sig, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.on(sig, () => {
    killAll();
    process.exit(128 + number);
  });
}

class Sim {
  /* `duka sim mpesa --listen 127.0.0.1:port --state tmp/mpesa.db EXTRA...`; start() waits for
   * GET /_sim/health 200. */
  constructor(tmp, port, extra = []) {
    this.tmp = tmp;
    this.port = port;
    this.state = path.join(tmp, 'mpesa.db');
    this.logPath = path.join(tmp, `mpesa-${port}.log`);
    this.args = ['sim', 'mpesa', '--listen', `127.0.0.1:${port}`, '--state', this.state, ...extra];
    this.child = null;
    this.exitCode = null;
    STARTED.push(this);
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  logTail(n = 2000) {
    try { return fs.readFileSync(this.logPath, 'utf8').slice(-n); } catch (e) { return ''; }
  }

  async start(seconds = 10) {
    const out = fs.openSync(this.logPath, 'a');
    this.child = childProcess.spawn(dukaBin(), this.args, {
      stdio: ['ignore', out, out], env: childEnv(), detached: true,
    });
    fs.closeSync(out);
    this.child.on('exit', (code, signal) => { this.exitCode = code === null ? signal : code; });
    this.child.on('error', (e) => { this.exitCode = `spawn error ${e.message}`; });
    const what = `duka ${this.args.join(' ')}`;
    const end = Date.now() + seconds * 1000 * SLOWDOWN;
    for (;;) {
      if (this.exitCode !== null) {
        throw new Error(`${what} exited (${this.exitCode}) before answering GET /_sim/health; ` +
          `output: ${this.logTail().trim()}`);
      }
      try {
        if ((await request('GET', this.port, '/_sim/health', null, {}, 2000)).status === 200) break;
      } catch (e) { /* not listening yet */ }
      if (Date.now() > end) {
        throw new Error(`${what}: GET /_sim/health did not answer 200 within ` +
          `${seconds * SLOWDOWN}s; output: ${this.logTail().trim()}`);
      }
      await sleep(50);
    }
    return this;
  }

  /* SIGTERM, then up to 15 s; SIGKILL after. Resolves the exit code (null if killed). */
  async stop() {
    if (!this.child || this.exitCode !== null) return this.exitCode;
    process.kill(this.child.pid, 'SIGTERM');
    try {
      await waitFor(() => this.exitCode !== null, 15, 'the simulator to exit after SIGTERM');
      return this.exitCode;
    } catch (e) {
      try { process.kill(-this.child.pid, 'SIGKILL'); } catch (e2) { /* gone */ }
      return null;
    }
  }

  async control(method, urlPath, body = null) {
    const r = await request(method, this.port, urlPath, body);
    check(r.status === 200 && r.body, `${method} ${urlPath} ${JSON.stringify(body)}: ` +
      `${r.status} ${r.text.slice(0, 300)}`);
    return r.body;
  }

  faults(knobs) { return this.control('POST', '/_sim/faults', knobs); }

  customer(phone, answer, afterMs) {
    return this.control('POST', '/_sim/customers', { phone, answer, after_ms: afterMs });
  }

  async prompts(query = '') { return (await this.control('GET', '/_sim/prompts' + query)).prompts; }

  async payments() { return (await this.control('GET', '/_sim/payments')).payments; }

  async callbacks() { return (await this.control('GET', '/_sim/callbacks')).callbacks; }
}

/* A loopback HTTP server standing in for the business's callback URLs: records every POST
 * ({path, body (parsed JSON), raw, at}) and answers {"ResultCode": 0, "ResultDesc":
 * "Accepted"} (or replies[path]). */
class Receiver {
  constructor() {
    this.got = [];
    this.replies = {};
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body = null;
        try { body = JSON.parse(raw); } catch (e) { body = null; }
        this.got.push({ path: req.url, method: req.method, body, raw, at: Date.now() });
        const reply = JSON.stringify(this.replies[req.url] ||
          { ResultCode: 0, ResultDesc: 'Accepted' });
        res.writeHead(200, { 'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(reply) });
        res.end(reply);
      });
    });
  }

  listen() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  url(p) { return `http://127.0.0.1:${this.port}${p}`; }

  at(p) { return this.got.filter((g) => g.path === p); }

  /* The first n POSTs to path p, waiting up to `seconds` for them. */
  async wait(p, n = 1, seconds = 10) {
    await waitFor(() => this.at(p).length >= n, seconds,
      `${n} POST(s) to ${p} (got: ${JSON.stringify(this.got.map((g) => g.path))})`);
    return this.at(p).slice(0, n);
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/* The runner: tests added with test(name, fn) run in order with one shared context; main()
 * makes the temp dir, calls setup(ctx), runs the tests (only those named on the command line
 * when any are), calls teardown(ctx), checks the simulator's log for sanitizer reports, prints
 * the tally and exits. A failing run keeps its temp dir. */
function suite(name) {
  const tests = [];
  return {
    test(testName, fn) { tests.push({ name: testName, fn }); },
    async main({ setup, teardown }) {
      const only = process.argv.slice(2);
      const t0 = Date.now();
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `duka-mpesa-${name}-`));
      const ctx = { tmp };
      let passed = 0;
      let failed = 0;
      let setupOk = false;
      try {
        check(fs.existsSync(dukaBin()), `duka binary not found at ${dukaBin()} (set DUKA_BIN)`);
        await setup(ctx);
        setupOk = true;
      } catch (e) {
        log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
        failed++;
      }
      if (setupOk) {
        for (const t of tests) {
          if (only.length && !only.includes(t.name)) continue;
          const s = Date.now();
          log(`=== ${t.name}`);
          try {
            await t.fn(ctx);
            passed++;
            log(`ok   ${t.name} (${((Date.now() - s) / 1000).toFixed(1)}s)`);
          } catch (e) {
            failed++;
            log(`FAIL ${t.name}: ${e && e.message ? e.message : e}`);
            if (process.env.DUKA_E2E_VERBOSE && e && e.stack) log(e.stack);
          }
        }
      }
      try {
        if (teardown) await teardown(ctx);
      } catch (e) {
        log(`FAIL teardown: ${e && e.message ? e.message : e}`);
        failed++;
      }
      for (const sim of STARTED) {
        if (sim.exitCode === null && sim.child) {
          const rc = await sim.stop();
          if (rc === null) {
            log(`FAIL after the tests: duka ${sim.args.join(' ')} did not exit within 15 s ` +
              'of SIGTERM');
            failed++;
          }
        }
        const text = sim.logTail(1e7);
        const m = SANITIZER_RE.exec(text);
        if (m) {
          const excerpt = text.slice(Math.max(0, m.index - 200), m.index + 1500);
          log(`FAIL sanitizer report in ${sim.logPath}: ${excerpt}`);
          failed++;
        }
      }
      log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      if (failed === 0) {
        fs.rmSync(tmp, { recursive: true, force: true });
      } else {
        log(`     (files kept in ${tmp})`);
        for (const sim of STARTED) log(`--- ${sim.logPath} (tail)\n${sim.logTail()}`);
      }
      log(`${passed} passed, ${failed} failed`);
      process.exit(failed === 0 && passed > 0 ? 0 : 1);
    },
  };
}

module.exports = {
  REPO, SLOWDOWN, Receiver, Sim, check, checkEq, dukaBin, freePort, log, request, sleep,
  suite, waitFor,
};

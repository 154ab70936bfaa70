// bench/pouchdb_bench.js — the peer figure of `make bench`: PouchDB replicating the same
// sale documents duka pushes, from a local PouchDB to a PouchDB server on 127.0.0.1.
//
//   node bench/pouchdb_bench.js --sample SALE.json --n 100000 --runs 3 --dir DIR --out OUT.json
//
// SALE.json is one duka push command as a till sends it ({"id","type","entity_id","payload"},
// written by duka-bench from src/protocol/sale.c's JSON). Each of the n documents is that
// command with its own _id (a fresh UUID, like duka's command id) and its own receipt number,
// so the documents have the same shape and size as duka's. For each run, in a fresh folder:
// the local database (PouchDB's on-disk default in Node: the leveldb adapter) is filled with
// bulkDocs (not timed), an express-pouchdb server (also leveldb, its own folder) is started on
// a free port of 127.0.0.1, and `local.replicate.to(remote)` with PouchDB's default options is
// timed until it completes; the remote's doc_count must then be n. OUT.json receives
// {"ok": true, "adapter", "n", "runs": [seconds…], "median_s", "docs_bytes"} or
// {"ok": false, "reason"}. The exit code is 0 in both cases unless the arguments are wrong.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const samplePath = arg('sample');
const n = parseInt(arg('n', '100000'), 10);
const runs = parseInt(arg('runs', '3'), 10);
const dir = arg('dir');
const outPath = arg('out');
if (!samplePath || !dir || !outPath || !(n > 0) || !(runs > 0)) {
  console.error('usage: node pouchdb_bench.js --sample FILE --n N --runs R --dir DIR --out FILE');
  process.exit(2);
}

function finish(obj) {
  fs.writeFileSync(outPath, JSON.stringify(obj) + '\n');
  process.exit(0);
}

let PouchDB, expressPouchDB, express;
try {
  PouchDB = require('pouchdb');
  expressPouchDB = require('express-pouchdb');
  express = require('express');
} catch (e) {
  finish({ ok: false, reason: 'cannot load pouchdb/express-pouchdb: ' + e.message.split('\n')[0] });
}

const sample = JSON.parse(fs.readFileSync(samplePath, 'utf8'));
const sampleReceipt = sample.entity_id;

// The n documents: duka's command, each with its own id and receipt number.
function makeDoc(i) {
  const receipt = sampleReceipt.replace(/-\d+$/, '-' + String(i + 1).padStart(5, '0'));
  const payload = Object.assign({}, sample.payload, { receipt_no: receipt });
  return { _id: crypto.randomUUID(), type: sample.type, entity_id: receipt, payload: payload };
}

function median(v) {
  const s = v.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function fill(db) {
  const chunk = 1000;
  let bytes = 0;
  for (let i = 0; i < n; i += chunk) {
    const docs = [];
    for (let k = i; k < Math.min(n, i + chunk); k++) {
      const d = makeDoc(k);
      bytes += JSON.stringify(d).length;
      docs.push(d);
    }
    const res = await db.bulkDocs(docs);
    for (const r of res) if (r.error) throw new Error('bulkDocs: ' + r.message);
  }
  return bytes;
}

function listen(app) {
  return new Promise((resolve, reject) => {
    const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    srv.on('error', reject);
  });
}

async function oneRun(r) {
  const runDir = path.join(dir, 'run-' + (r + 1));
  const serverDir = path.join(runDir, 'server') + path.sep;
  fs.mkdirSync(serverDir, { recursive: true });
  const local = new PouchDB(path.join(runDir, 'local'));
  const bytes = await fill(local);
  const info = await local.info();
  const ServerPouch = PouchDB.defaults({ prefix: serverDir });
  const app = express();
  app.use('/', expressPouchDB(ServerPouch, { mode: 'minimumForPouchDB', logPath: path.join(runDir, 'log.txt') }));
  const srv = await listen(app);
  const url = 'http://127.0.0.1:' + srv.address().port + '/sales';
  const remote = new PouchDB(url);
  await remote.info(); // creates the database before the clock starts
  const t0 = process.hrtime.bigint();
  const res = await local.replicate.to(remote);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rinfo = await remote.info();
  await remote.close();
  await local.close();
  await new Promise((resolve) => srv.close(resolve));
  if (res.ok !== true || rinfo.doc_count !== n)
    throw new Error('replication left ' + rinfo.doc_count + ' of ' + n + ' documents at the server (ok=' + res.ok + ', docs_written=' + res.docs_written + ')');
  fs.rmSync(runDir, { recursive: true, force: true });
  return { seconds, bytes, adapter: info.adapter };
}

(async () => {
  const times = [];
  let adapter = '?', bytes = 0;
  try {
    for (let r = 0; r < runs; r++) {
      const x = await oneRun(r);
      times.push(x.seconds);
      adapter = x.adapter;
      bytes = x.bytes;
      console.error('pouchdb run ' + (r + 1) + ': ' + n + ' docs replicated in ' + x.seconds.toFixed(2) + ' s');
    }
  } catch (e) {
    finish({ ok: false, reason: 'PouchDB run failed: ' + String(e && e.message ? e.message : e).split('\n')[0] });
  }
  finish({ ok: true, adapter, n, runs: times, median_s: median(times), docs_bytes: bytes });
})();

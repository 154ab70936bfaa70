// duka till — the cashier's screen, served by `duka till` itself (no CDN, no build step).
// Everything a sale needs is on this till: the page keeps working with the hub and the
// internet gone, and says plainly what cannot be done meanwhile.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const STATUS_POLL_MS = 1000;     // the status bar is at most this old
const SYNC_SCREEN_POLL_MS = 2000;
const CATALOG_REFRESH_MS = 30000;
const REQUEST_TIMEOUT_MS = 8000;
const SALE_TIMEOUT_MS = 20000;   // a sale waits on the till's disk, never on the network
const HISTORY_PAGE = 20;
const RESULTS_MAX = 60;
const QTY_MAX = 1000000;
const BAND_RATES = { A: 0, B: 16, C: 0, D: 0, E: 8 };
const BAND_NAMES = { A: 'A exempt', B: 'B VAT 16%', C: 'C zero-rated', D: 'D non-VAT', E: 'E VAT 8%' };

const state = {
  screen: null,
  cashier: null,
  cashiers: [],
  loginChoice: null,
  catalog: [],
  category: '',
  highlight: 0,
  cart: [],          // [{sku, name, price, tax, qty}] qty a string as typed ("1", "0.5")
  tender: 'cash',
  paying: false,
  status: null,
  tillDown: false,
  historyOffset: 0,
  lastReceipt: null,
  refund: null,      // the refund screen: {sale, qty: {line: text}, to, from}
  refunding: false,
};

// ---- HTTP ----

async function api(method, path, body, timeoutMs = REQUEST_TIMEOUT_MS) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: ctl.signal,
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && method !== 'GET' && path !== '/api/login') sessionEnded();
    return { status: res.status, data: data || {} };
  } catch (e) {
    return { status: 0, data: { error: { code: 'till_unreachable', message: 'The till service did not answer.' } } };
  } finally {
    clearTimeout(timer);
  }
}

const errorText = (r) => (r.data && r.data.error && r.data.error.message) || ('HTTP ' + r.status);

// ---- money and quantities ----

function money(cents) {
  const neg = cents < 0;
  const v = Math.abs(Math.round(cents));
  const whole = Math.floor(v / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + whole + '.' + String(v % 100).padStart(2, '0');
}
const kes = (cents) => 'KES ' + money(cents);

// "1", "0.5", "2.125" → thousandths, or null when it is not a quantity the till takes.
function parseQty(text) {
  const t = String(text).trim();
  if (!/^\d+(\.\d{1,3})?$/.test(t)) return null;
  const [w, f = ''] = t.split('.');
  const milli = Number(w) * 1000 + Number((f + '000').slice(0, 3));
  if (milli <= 0 || milli > QTY_MAX * 1000) return null;
  return milli;
}

// "500", "500.5", "1,000.00" → cents, or null.
function parseAmount(text) {
  const t = String(text).trim().replace(/,/g, '');
  if (!/^\d{1,9}(\.\d{1,2})?$/.test(t)) return null;
  const [w, f = ''] = t.split('.');
  return Number(w) * 100 + Number((f + '00').slice(0, 2));
}

const halfUp = (num, den) => Math.floor((2 * num + den) / (2 * den));

// The till's arithmetic (src/common/money.h): a line total is price x qty rounded half up, its
// VAT is contained in it (total x rate / (100 + rate), half up). The till recomputes on commit.
function lineTotals(line) {
  const milli = parseQty(line.qty);
  if (milli === null) return null;
  const total = halfUp(line.price * milli, 1000);
  const rate = BAND_RATES[line.tax] || 0;
  return { total, tax: rate ? halfUp(total * rate, 100 + rate) : 0 };
}

function cartTotals() {
  const bands = {};
  let total = 0, valid = true;
  for (const l of state.cart) {
    const t = lineTotals(l);
    if (!t) { valid = false; continue; }
    total += t.total;
    const b = bands[l.tax] || (bands[l.tax] = { gross: 0, tax: 0 });
    b.gross += t.total;
    b.tax += t.tax;
  }
  return { total, bands, valid };
}

// ---- time ----

function shopTime(ms, withDate) {
  const off = state.status ? state.status.utc_offset_min || 0 : 0;
  const d = new Date(ms + off * 60000);
  const hh = String(d.getUTCHours()).padStart(2, '0'), mm = String(d.getUTCMinutes()).padStart(2, '0');
  if (!withDate) return hh + ':' + mm;
  return d.getUTCFullYear() + '-' + String(d.getUTCMonth() + 1).padStart(2, '0') + '-' +
    String(d.getUTCDate()).padStart(2, '0') + ' ' + hh + ':' + mm + ':' + String(d.getUTCSeconds()).padStart(2, '0');
}

function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
  return Math.floor(s / 86400) + ' days ago';
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return seconds + ' s';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min';
  return Math.floor(seconds / 3600) + ' h ' + Math.floor((seconds % 3600) / 60) + ' min';
}

// ---- small DOM helpers ----

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k === 'hidden') e.hidden = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fieldError(id, message) {
  const p = $('#' + id + '-error');
  if (p) p.textContent = message || '';
  const input = $('#' + id);
  if (input) input.classList.toggle('invalid', !!message);
}

let toastTimer = null;
function toast(message, isError) {
  const t = $('#toast');
  t.textContent = message;
  t.classList.toggle('error', !!isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

// ---- screens ----

function show(screen) {
  state.screen = screen;
  for (const s of ['login', 'sell', 'sync', 'refund']) $('#' + s).hidden = s !== screen;
  const loggedIn = !!state.cashier;
  $('#nav-sell').hidden = !loggedIn;
  $('#nav-sync').hidden = !loggedIn;
  $('#logout').hidden = !loggedIn;
  $('#nav-sell').classList.toggle('current', screen === 'sell');
  $('#nav-sync').classList.toggle('current', screen === 'sync');
  $('#cashier-name').textContent = loggedIn ? state.cashier.name + (state.cashier.role === 'manager' ? ' (manager)' : '') : '';
  if (screen === 'sell') { renderResults(); renderCart(); focusSearch(); }
  if (screen === 'sync') refreshSync();
  if (screen === 'login') renderLogin();
}

function focusSearch() {
  if (state.screen === 'sell' && $('#receipt').hidden && $('#confirm').hidden) $('#search').focus();
}

// ---- status bar (every screen) ----

const LIGHT_TEXT = { green: 'Online', yellow: 'Online — attention', red: 'Offline' };

function renderStatus() {
  const s = state.status;
  const light = $('#light');
  if (state.tillDown || !s) {
    // Nothing known: never a number that may be wrong (a "0" while sales wait is a lie).
    light.dataset.state = state.tillDown ? 'red' : 'unknown';
    light.title = state.tillDown ? 'the till service is not answering' : 'waiting for the till\'s status';
    $('#conn-text').textContent = state.tillDown ? 'Till not answering' : 'Connecting…';
    for (const id of ['#pending-count', '#failed-count', '#etims-pending']) $(id).textContent = '–';
    $('#till-down-banner').hidden = !state.tillDown;
    $('#offline-banner').hidden = true;
    return;
  }
  $('#till-down-banner').hidden = true;
  light.dataset.state = s.light;
  const last = s.last_sync_ms ? 'last sync ' + shopTime(s.last_sync_ms) + ' (' + ago(s.last_sync_ms, s.now_ms) + ')' : 'last sync never';
  let text = LIGHT_TEXT[s.light] || s.light;
  if (s.light === 'yellow' && s.failed > 0) text = 'Online — ' + s.failed + ' failed';
  else if (s.light === 'yellow' && s.pending > 0) text = 'Syncing ' + s.pending;
  else if (s.light === 'yellow' && s.etims && s.etims.state === 'offline') text = 'eTIMS offline';
  else if (s.light === 'yellow' && s.etims && s.etims.state === 'degraded') text = 'eTIMS slow';
  else if (s.light === 'yellow') text = 'Hub slow';
  if (s.light === 'red' && s.offline_switch) text = 'Offline (switched)';
  $('#conn-text').textContent = text;
  $('#last-sync').textContent = last;
  const types = Object.entries(s.pending_by_type || {}).map(([k, v]) => k + ' ' + v).join(', ');
  light.title = last + '\n' + s.light_reason + '\npending ' + s.pending + (types ? ' (' + types + ')' : '') +
    ', failed ' + s.failed + ', eTIMS pending ' + s.etims_pending;
  $('#conn').title = light.title;
  $('#pending-count').textContent = String(s.pending);
  $('#failed-count').textContent = String(s.failed);
  $('#failed-chip').classList.toggle('alert', s.failed > 0);
  $('#etims-pending').textContent = String(s.etims_pending || 0);
  const mp = s.mpesa || { pending_verification: 0, flagged: 0 };
  $('#mpesa-pending').textContent = String(mp.pending_verification);
  $('#mpesa-flagged').textContent = String(mp.flagged);
  $('#sync-mpesa-pending').textContent = String(mp.pending_verification);
  $('#sync-mpesa-flagged').textContent = String(mp.flagged);
  $('#mpesa-chip').classList.toggle('alert', mp.flagged > 0);
  $('#offline-banner').hidden = s.light !== 'red';
  if (s.shop && s.shop.name) $('#shop-name').textContent = s.shop.name;
  $('#terminal').textContent = s.terminal || '';
  $('#sync-now').disabled = s.light === 'red' || syncing;
  $('#offline-switch-row').hidden = !(state.cashier && state.cashier.role === 'manager');
  $('#offline-switch').textContent = s.offline_switch ? 'Back online' : 'Work offline';
  $('#sync-now').title = s.light === 'red' ? 'the hub cannot be reached: sales are kept and sent when it returns' : '';
}

async function pollStatus() {
  const r = await api('GET', '/api/status');
  if (r.status === 200) {
    state.tillDown = false;
    state.status = r.data;
  } else {
    state.tillDown = r.status === 0 || r.status >= 500;
  }
  renderStatus();
  setTimeout(pollStatus, STATUS_POLL_MS);
}

// ---- login ----

async function loadCashiers() {
  const r = await api('GET', '/api/cashiers');
  if (r.status === 200) state.cashiers = r.data.cashiers || [];
  renderLogin();
}

function renderLogin() {
  const grid = $('#login-cashiers');
  grid.replaceChildren(...state.cashiers.map((c) => {
    const b = el('button', { type: 'button', class: 'cashier-btn', 'data-cashier-id': c.id },
      c.name, el('small', { text: c.role }));
    if (state.loginChoice === c.id) b.classList.add('selected');
    b.addEventListener('click', () => chooseCashier(c.id));
    return b;
  }));
  $('#login-empty').hidden = state.cashiers.length > 0;
  const who = state.cashiers.find((c) => c.id === state.loginChoice);
  $('#login-who').textContent = who ? who.name : 'the cashier you choose';
  if (state.screen === 'login' && document.activeElement === document.body) {
    const first = who ? $('#pin') : $('.cashier-btn');
    if (first) first.focus();
  }
}

function chooseCashier(id) {
  state.loginChoice = id;
  $('#login-error').textContent = '';
  renderLogin();
  $('#pin').value = '';
  $('#pin').focus();
}

async function login(ev) {
  if (ev) ev.preventDefault();
  const pin = $('#pin').value.trim();
  if (!state.loginChoice) { $('#login-error').textContent = 'Choose your name first.'; return; }
  if (!/^\d{4,8}$/.test(pin)) { $('#login-error').textContent = 'PIN: 4 to 8 digits.'; $('#pin').focus(); return; }
  $('#login-submit').disabled = true;
  const r = await api('POST', '/api/login', { cashier_id: state.loginChoice, pin });
  $('#login-submit').disabled = false;
  $('#pin').value = '';
  if (r.status !== 200) {
    $('#login-error').textContent = errorText(r);
    $('#pin').focus();
    return;
  }
  state.cashier = r.data.cashier;
  $('#login-error').textContent = '';
  show('sell');
}

async function logout() {
  await api('POST', '/api/logout', {});
  state.cashier = null;
  state.loginChoice = null;
  show('login');
  loadCashiers();
}

function sessionEnded() {
  if (!state.cashier) return;
  state.cashier = null;
  show('login');
  $('#login-error').textContent = 'Your session ended: log in again. The sale on screen is kept.';
}

// ---- catalog and search ----

async function loadCatalog() {
  const r = await api('GET', '/api/catalog');
  if (r.status === 200) {
    state.catalog = r.data.products || [];
    // The till charges its catalog's price at commit: the cart shows the same (a price the
    // hub changed arrives by pull and is taken here too).
    const bySku = new Map(state.catalog.map((p) => [p.sku, p]));
    let changed = false;
    for (const l of state.cart) {
      const p = bySku.get(l.sku);
      if (p && (p.price !== l.price || p.tax !== l.tax || p.name !== l.name)) {
        Object.assign(l, { price: p.price, tax: p.tax, name: p.name });
        changed = true;
      }
    }
    if (changed) { saveCart(); renderCart(); }
    renderCategories();
    if (state.screen === 'sell') renderResults();
  }
}

function renderCategories() {
  const cats = Array.from(new Set(state.catalog.map((p) => p.category).filter(Boolean))).sort();
  const mk = (name, label) => {
    const b = el('button', { type: 'button', class: 'category-btn' + (state.category === name ? ' active' : ''), 'data-category': name, text: label });
    b.addEventListener('click', () => { state.category = name; state.highlight = 0; renderCategories(); renderResults(); focusSearch(); });
    return b;
  };
  $('#categories').replaceChildren(mk('', 'All'), ...cats.map((c) => mk(c, c)));
}

// "3*SKU" or "SKU*3": a quantity and the rest of the text.
function splitQty(text) {
  let m = /^(\d+(?:\.\d{1,3})?)\s*\*\s*(.+)$/.exec(text);
  if (m) return { qty: m[1], term: m[2].trim() };
  m = /^(.+?)\s*\*\s*(\d+(?:\.\d{1,3})?)$/.exec(text);
  if (m) return { qty: m[2], term: m[1].trim() };
  return { qty: null, term: text };
}

function matches(term) {
  const t = term.toLowerCase();
  let list = state.catalog.filter((p) => !state.category || p.category === state.category);
  if (!t) return list;
  list = list.filter((p) => p.sku.toLowerCase().includes(t) || p.name.toLowerCase().includes(t));
  // Exact SKU (a scanned barcode) first, then SKUs and names that start with the text.
  const rank = (p) => (p.sku.toLowerCase() === t ? 0 : p.sku.toLowerCase().startsWith(t) ? 1 : p.name.toLowerCase().startsWith(t) ? 2 : 3);
  return list.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function renderResults() {
  const { term } = splitQty($('#search').value.trim());
  const list = matches(term).slice(0, RESULTS_MAX);
  if (state.highlight >= list.length) state.highlight = Math.max(0, list.length - 1);
  $('#results').replaceChildren(...list.map((p, i) => {
    const b = el('button', { type: 'button', class: 'product' + (i === state.highlight && term ? ' highlight' : ''), 'data-sku': p.sku, tabindex: '-1' },
      el('span', { class: 'pname', text: p.name }),
      el('span', { class: 'pmeta' }, el('span', { text: p.sku }), el('span', { class: 'price', text: money(p.price) })));
    b.addEventListener('click', () => { addToCart(p, '1'); focusSearch(); });
    return b;
  }));
  if (list.length === 0) $('#results').append(el('p', { class: 'muted', text: state.catalog.length ? 'No product matches.' : 'The catalog is empty: it arrives from the hub with the first sync.' }));
}

function searchEnter() {
  const text = $('#search').value.trim();
  fieldError('search', '');
  if (!text) { if (state.cart.length) focusTender(state.tender); return; }
  const { qty, term } = splitQty(text);
  if (qty !== null && parseQty(qty) === null) { fieldError('search', 'Quantity: a number above 0 with at most 3 decimals.'); return; }
  const exact = state.catalog.find((p) => p.sku === term) || state.catalog.find((p) => p.sku.toLowerCase() === term.toLowerCase());
  const p = exact || matches(term)[state.highlight] || null;
  if (!p) { fieldError('search', 'No product matches "' + term + '".'); return; }
  addToCart(p, qty || '1');
  $('#search').value = '';
  state.highlight = 0;
  renderResults();
}

// ---- cart ----

function saveCart() {
  try { sessionStorage.setItem('duka.cart', JSON.stringify(state.cart)); } catch (e) { /* private mode */ }
}

function restoreCart() {
  try { state.cart = JSON.parse(sessionStorage.getItem('duka.cart') || '[]') || []; } catch (e) { state.cart = []; }
}

function addToCart(p, qty) {
  $('#pay-error').textContent = '';
  const line = state.cart.find((l) => l.sku === p.sku);
  if (line && parseQty(line.qty) !== null) {
    const milli = parseQty(line.qty) + parseQty(qty);
    line.qty = String(milli / 1000);
  } else if (!line) {
    state.cart.push({ sku: p.sku, name: p.name, price: p.price, tax: p.tax, qty });
  }
  saveCart();
  renderCart();
}

function renderCart() {
  const cart = $('#cart');
  if (state.cart.length === 0) {
    cart.replaceChildren(el('p', { class: 'empty muted', text: 'Scan or type a product to start a sale.' }));
  } else {
    cart.replaceChildren(...state.cart.map((l, i) => {
      const t = lineTotals(l);
      const qty = el('input', { class: 'qty', value: l.qty, inputmode: 'decimal', 'aria-label': 'quantity of ' + l.name });
      const err = el('p', { class: 'field-error', text: t ? '' : 'Quantity: above 0, at most 3 decimals, at most 1,000,000.' });
      if (!t) qty.classList.add('invalid');
      qty.addEventListener('input', () => {
        l.qty = qty.value;
        const ok = lineTotals(l);
        qty.classList.toggle('invalid', !ok);
        err.textContent = ok ? '' : 'Quantity: above 0, at most 3 decimals, at most 1,000,000.';
        row.querySelector('.ltotal').textContent = ok ? money(ok.total) : '—';
        saveCart();
        renderTotals();
      });
      qty.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); focusSearch(); } });
      const rm = el('button', { type: 'button', class: 'remove', title: 'remove ' + l.name, 'aria-label': 'remove ' + l.name, text: '✕' });
      rm.addEventListener('click', () => { state.cart.splice(i, 1); saveCart(); renderCart(); focusSearch(); });
      const row = el('div', { class: 'cart-line', 'data-sku': l.sku },
        el('div', { class: 'lname' }, l.name, el('small', { text: money(l.price) + ' · ' + l.sku + ' · ' + l.tax })),
        qty, el('div', { class: 'ltotal', text: t ? money(t.total) : '—' }), rm, err);
      return row;
    }));
  }
  renderTotals();
}

function renderTotals() {
  const { total, bands, valid } = cartTotals();
  $('#band-totals').replaceChildren(...Object.keys(bands).sort().map((b) =>
    el('div', {}, el('span', { text: BAND_NAMES[b] + ' on ' + money(bands[b].gross) }), el('span', { text: 'VAT ' + money(bands[b].tax) }))));
  $('#total').textContent = kes(total);
  const pay = $('#pay');
  pay.disabled = state.paying || state.cart.length === 0 || !valid;
  pay.textContent = state.paying ? 'Saving…' : 'Pay ' + kes(total) + (state.tender === 'cash' ? ' cash' : state.tender === 'mpesa' ? ' M-Pesa' : ' card');
  updateChangePreview();
}

function updateChangePreview() {
  const { total } = cartTotals();
  const t = $('#tendered').value.trim();
  const p = $('#change-preview');
  if (!t) { p.textContent = state.cart.length ? 'Exact amount: ' + kes(total) : ''; return; }
  const c = parseAmount(t);
  if (c === null) { p.textContent = ''; return; }
  p.textContent = c >= total ? 'Change due: ' + kes(c - total) : 'Short by ' + kes(total - c);
}

// ---- tender and payment ----

function selectTender(t) {
  state.tender = t;
  for (const b of $$('.tender[data-tender]')) b.classList.toggle('active', b.dataset.tender === t);
  for (const f of $$('.tf')) f.hidden = f.dataset.for !== t;
  renderTotals();
}

function focusTender(t) {
  selectTender(t);
  const id = t === 'cash' ? '#tendered' : t === 'mpesa' ? '#mpesa-code' : '#card-ref';
  $(id).focus();
  $(id).select();
}

// The "pay" member of POST /api/sales, or null with the field's message shown.
function tenderOrError(total) {
  for (const id of ['tendered', 'mpesa-code', 'card-ref']) fieldError(id, '');
  if (state.tender === 'cash') {
    const t = $('#tendered').value.trim();
    if (!t) return 'cash';
    const c = parseAmount(t);
    if (c === null) { fieldError('tendered', 'Cash received: an amount in KES like 500 or 1,250.50.'); return null; }
    if (c < total) { fieldError('tendered', 'Cash received is ' + kes(total - c) + ' short of the total ' + kes(total) + '.'); return null; }
    return 'cash:' + money(c).replace(/,/g, '');
  }
  if (state.tender === 'mpesa') {
    const code = $('#mpesa-code').value.trim().toUpperCase();
    if (!/^[A-Z0-9]{10}$/.test(code)) { fieldError('mpesa-code', 'M-Pesa code: the 10 letters and digits of the customer\'s SMS, like QK12AB34CD.'); return null; }
    return 'mpesa:' + code;
  }
  const ref = $('#card-ref').value.trim();
  if (!/^[A-Za-z0-9-]{1,64}$/.test(ref)) { fieldError('card-ref', 'Card reference: up to 64 letters, digits and "-" from the card reader.'); return null; }
  if (/\d{12,}/.test(ref.replace(/-/g, ''))) { fieldError('card-ref', 'That looks like a card number: type the reader\'s reference, never the card number.'); return null; }
  return 'card:' + ref;
}

// Puts a refusal of the till next to the field it names ("pay[0]: …", "items[2].qty: …").
function showRefusal(r) {
  const msg = errorText(r);
  const m = /^items\[(\d+)\]/.exec(msg);
  if (m && state.cart[Number(m[1])]) {
    const row = $$('.cart-line')[Number(m[1])];
    if (row) { row.querySelector('.field-error').textContent = msg; row.querySelector('.qty').classList.add('invalid'); return; }
  }
  if (/^pay/.test(msg) || ['underpaid', 'overpaid'].includes(r.data.error && r.data.error.code)) {
    fieldError(state.tender === 'cash' ? 'tendered' : state.tender === 'mpesa' ? 'mpesa-code' : 'card-ref', msg);
    return;
  }
  $('#pay-error').textContent = msg;
}

async function pay(confirmAmount) {
  if (state.paying) return;
  if (state.cart.length === 0) { $('#pay-error').textContent = 'Add a product first: scan it or type its name.'; focusSearch(); return; }
  const { total, valid } = cartTotals();
  $('#pay-error').textContent = '';
  if (!valid) { $('#pay-error').textContent = 'Fix the quantities marked in red first.'; return; }
  const tender = tenderOrError(total);
  if (tender === null) return;
  const body = { items: state.cart.map((l) => ({ sku: l.sku, qty: parseQty(l.qty) / 1000 })), pay: tender };
  if (confirmAmount) body.confirm_amount = true;
  state.paying = true;
  renderTotals();
  const r = await api('POST', '/api/sales', body, SALE_TIMEOUT_MS);
  state.paying = false;
  renderTotals();
  if (r.status === 201) {
    saleDone(r.data);
    return;
  }
  if (r.status === 401) return; // sessionEnded showed the login; the cart is kept
  if (r.status === 0) {
    $('#pay-error').textContent = 'The till did not answer: the sale may or may not be saved. Check Sync (F9) before selling it again.';
    return;
  }
  if (r.data.error && r.data.error.code === 'amount_above_limit') {
    askConfirm(errorText(r) + ' Sell it anyway?', () => pay(true));
    return;
  }
  showRefusal(r);
}

function saleDone(sale) {
  state.lastReceipt = sale;
  $('#reprint-last').disabled = false;
  state.cart = [];
  saveCart();
  for (const id of ['tendered', 'mpesa-code', 'card-ref']) { $('#' + id).value = ''; fieldError(id, ''); }
  selectTender('cash');
  renderCart();
  renderReceipt(sale);
  $('#receipt').hidden = false;
  $('#new-sale').focus();
  pollSoon();
}

const METHOD = { cash: 'Cash', mpesa: 'M-Pesa', card: 'Card' };

function lr(left, right, cls) {
  return el('div', { class: 'lr' + (cls ? ' ' + cls : '') }, el('span', { text: left }), el('span', { text: right }));
}

function renderReceipt(s) {
  const shop = (state.status && state.status.shop) || {};
  const paper = $('#receipt-paper');
  const qty = (m) => (m % 1000 === 0 ? String(m / 1000) : (m / 1000).toString());
  const refund = s.kind === 'refund';
  const parts = [
    el('div', { class: 'c shop', text: shop.name || 'duka' }),
    shop.kra_pin ? el('div', { class: 'c', text: 'KRA PIN ' + shop.kra_pin }) : null,
    el('hr'),
    // A refund says so before anything else and names the sale it gives back (as the till
    // prints it, src/till/sale_view.c).
    refund ? el('div', { class: 'c strong', id: 'receipt-kind', text: 'REFUND / CREDIT NOTE' }) : null,
    lr(refund ? 'Refund' : 'Receipt', ''),
    el('div', { id: 'receipt-no', text: s.receipt_no }),
    refund ? el('div', { id: 'receipt-original', text: 'REFUND of ' + s.original_receipt_no }) : null,
    refund ? el('div', { id: 'receipt-reason', text: 'Reason: ' + s.reason + ' ' + (s.reason_text || REFUND_REASONS[s.reason] || '') }) : null,
    lr(shopTime(s.created_ms, true), s.terminal || ''),
    s.cashier ? lr('Cashier', s.cashier.name) : null,
    el('hr'),
  ];
  for (const l of s.lines || []) {
    parts.push(el('div', { text: l.name }));
    parts.push(lr('  ' + qty(l.qty_milli) + ' x ' + money(l.unit_price), money(l.total) + ' ' + l.tax_band));
  }
  parts.push(el('hr'), lr(refund ? 'REFUNDED' : 'TOTAL', kes(s.total), 'big'));
  for (const b of s.bands || []) parts.push(lr(BAND_NAMES[b.band] + ' ' + money(b.gross), 'VAT ' + money(b.tax)));
  parts.push(el('hr'));
  for (const p of s.payments || []) {
    if (refund) { parts.push(lr((METHOD[p.method] || p.method) + ' given back', money(p.amount))); continue; }
    parts.push(lr(METHOD[p.method] + (p.reference ? ' ' + p.reference : ''), money(p.amount)));
    if (p.method === 'cash' && p.tendered) parts.push(lr('  tendered', money(p.tendered)));
    if (p.status === 'pending_verification') parts.push(el('div', { text: '  M-Pesa: pending verification' }));
    if (p.status === 'verified') parts.push(el('div', { text: '  M-Pesa: verified' }));
    if (p.status === 'flagged') parts.push(el('div', { class: 'warn', text: '  M-Pesa FLAGGED: ' + (p.note || 'not verified') }));
  }
  if (s.change > 0) parts.push(lr('CHANGE', money(s.change), 'big'));
  for (const w of s.warnings || []) parts.push(el('div', { class: 'warn', text: '! ' + w.message }));
  parts.push(el('hr'));
  // The control unit's block only with the signature the hub brought back: never a made-up one.
  if (s.etims) parts.push(...etimsBlock(s.receipt_no, s.etims));
  else parts.push(el('div', { class: 'c', id: 'etims-status', text: 'eTIMS: pending' }));
  parts.push(el('div', { class: 'c', text: 'Thank you' }));
  paper.replaceChildren(...parts.filter(Boolean));
  $('#change-due').textContent = kes(s.change || 0);
  $('#change-due').parentElement.hidden = !!s.reprint || refund; // a reprint hands out no change
  $('#refund-due').textContent = kes(s.total || 0) + ' ' + refundToText(s);
  $('#refund-due-row').hidden = !refund || !!s.reprint;
  renderReceiptRefunds(s);
  watchSignature(s);
}

const group4 = (t) => (String(t || '').match(/.{1,4}/g) || []).join('-');

// As duka receipt prints it (src/till/sale_view.c): the CU invoice number, SCU id, date and
// time, receipt number curRcptNo/totRcptNo, internal data and signature in groups of 4, and the
// QR code of the verification URL, drawn by the till (libqrencode) as an SVG.
function etimsBlock(receiptNo, e) {
  return [
    el('div', { class: 'c strong', text: e.kind === 'credit_note' ? 'eTIMS CREDIT NOTE' : 'eTIMS TAX INVOICE' }),
    el('div', { id: 'etims-block', class: 'etims' },
      lr('CU invoice no', e.cu_invoice_no),
      e.org_cu_invoice_no ? lr('Original invoice', e.org_cu_invoice_no) : null,
      lr('SCU ID', e.sdc_id),
      lr('CU date/time', e.signed_at),
      lr('Receipt no', e.rcpt_no + '/' + e.tot_rcpt_no),
      lr('MRC no', e.mrc_no),
      el('div', { text: 'Internal data' }),
      el('div', { class: 'code', text: group4(e.intrl_data) }),
      el('div', { text: 'Receipt signature' }),
      el('div', { class: 'code', text: group4(e.rcpt_sign) })),
    el('img', { id: 'etims-qr', class: 'qr', alt: 'eTIMS QR code: ' + e.qr_url,
      src: '/api/sales/' + encodeURIComponent(receiptNo) + '/qr.svg' }),
    el('div', { class: 'qr-url', text: e.qr_url }),
  ];
}

// A receipt shown before its signature came back: asked for again while it stays on the
// screen, so a reprint a moment later has the control-unit block (the hub signs within
// seconds when eTIMS answers).
const SIGNATURE_POLL_MS = 3000;
let signatureTimer = null;

function watchSignature(s) {
  clearTimeout(signatureTimer);
  signatureTimer = null;
  if (s.etims || !s.receipt_no) return;
  signatureTimer = setTimeout(async () => {
    signatureTimer = null;
    if ($('#receipt').hidden || !state.lastReceipt || state.lastReceipt.receipt_no !== s.receipt_no) return;
    const r = await api('GET', '/api/sales/' + encodeURIComponent(s.receipt_no));
    if ($('#receipt').hidden || !state.lastReceipt || state.lastReceipt.receipt_no !== s.receipt_no) return;
    if (r.status === 200 && r.data.etims) {
      state.lastReceipt = Object.assign({}, state.lastReceipt, { etims: r.data.etims });
      renderReceipt(state.lastReceipt);
    } else {
      watchSignature(s);
    }
  }, SIGNATURE_POLL_MS);
}

// Reprint: a receipt of this till again, as it is now (with its signature once signed).
async function reprint(receiptNo) {
  const rn = String(receiptNo || '').trim();
  $('#reprint-error').textContent = '';
  if (!rn) { $('#reprint-error').textContent = 'Type a receipt number, like T01-20261203-00042.'; return; }
  const r = await api('GET', '/api/sales/' + encodeURIComponent(rn));
  if (r.status !== 200) { $('#reprint-error').textContent = errorText(r); return; }
  const sale = Object.assign({}, r.data, { change: 0, warnings: [], reprint: true });
  state.lastReceipt = sale;
  renderReceipt(sale);
  $('#receipt').hidden = false;
  $('#new-sale').focus();
}

// ---- refunds ----
// A refund gives back (part of) a sale of this till: the till's next receipt number, the
// sale's lines at the sale's prices, never more than sold minus already refunded per line.
// POST /api/refunds needs the till only (no hub): it works offline like a sale.

const REFUND_REASONS = { '01': 'Missing quantity', '02': 'Missing item', '03': 'Damaged', '04': 'Wasted',
  '05': 'Raw material shortage', '06': 'Refund' };
const REFUND_DEFAULT_REASON = '06';

function refundToText(s) {
  const p = (s.payments || [])[0];
  return p ? ({ cash: 'cash', mpesa: 'by M-Pesa', card: 'to the card' })[p.method] || p.method : '';
}

const fmtQty = (m) => String(m / 1000);

// What is left of a sale's line to give back: quantity and money (a line's parts never add up
// to more than the line, as the till reckons it in src/till/refund.c).
function refundLeft(l) {
  const doneQty = l.refunded_qty_milli || 0;
  const doneCents = l.refunded !== undefined ? l.refunded : halfUp(l.unit_price * doneQty, 1000);
  return { qty: Math.max(0, l.qty_milli - doneQty), cents: Math.max(0, l.total - doneCents) };
}

// The quantity typed for a line: 0 for nothing (empty or "0"), thousandths, or null.
function refundQty(text) {
  const t = String(text).trim();
  if (t === '' || /^0+(\.0{1,3})?$/.test(t)) return 0;
  return parseQty(t);
}

// One line's refund: {milli, cents} or {error}.
function refundLineAmount(l, text) {
  const milli = refundQty(text);
  if (milli === null) return { error: 'Quantity: a number like 1 or 0.5 (at most 3 decimals).' };
  const left = refundLeft(l);
  if (milli > left.qty) {
    return { error: left.qty === 0 ? 'Nothing left to refund on this line.' : 'At most ' + fmtQty(left.qty) + ' left to refund.' };
  }
  return { milli, cents: Math.min(halfUp(l.unit_price * milli, 1000), left.cents) };
}

function refundTotals() {
  const r = state.refund;
  let total = 0, valid = true, count = 0;
  const bands = {};
  (r.sale.lines || []).forEach((l, i) => {
    const a = refundLineAmount(l, r.qty[i + 1] || '');
    if (a.error) { valid = false; return; }
    if (!a.milli) return;
    count++;
    total += a.cents;
    const rate = BAND_RATES[l.tax_band] || 0;
    const b = bands[l.tax_band] || (bands[l.tax_band] = { gross: 0, tax: 0 });
    b.gross += a.cents;
    b.tax += rate ? halfUp(a.cents * rate, 100 + rate) : 0;
  });
  return { total, valid, count, bands };
}

// The refund screen of a sale as GET /api/sales/<no> shows it now.
async function startRefund(receiptNo) {
  const r = await api('GET', '/api/sales/' + encodeURIComponent(receiptNo));
  if (r.status !== 200) { toast('Refund: ' + errorText(r), true); return; }
  if (r.data.kind === 'refund') { toast(receiptNo + ' is a refund: refund its sale ' + r.data.original_receipt_no, true); return; }
  const from = state.screen === 'refund' ? (state.refund && state.refund.from) : state.screen;
  state.refund = { sale: r.data, qty: {}, to: 'cash', from: from || 'sell' };
  $('#receipt').hidden = true;
  clearTimeout(signatureTimer);
  signatureTimer = null;
  $('#refund-reason').value = REFUND_DEFAULT_REASON;
  for (const id of ['refund-error', 'refund-reason-error', 'refund-to-error']) $('#' + id).textContent = '';
  selectRefundTo('cash');
  show('refund');
  renderRefund();
  const first = $$('#refund-lines .refund-qty').find((i) => !i.disabled);
  (first || $('#refund-cancel')).focus();
  if (first) first.select();
}

function renderRefund() {
  const r = state.refund;
  const s = r.sale;
  $('#refund-of').textContent = s.receipt_no;
  const pays = (s.payments || []).map((p) => (METHOD[p.method] || p.method) + ' ' + money(p.amount)).join(', ');
  const refunds = (s.refunds || []).length ? ' · refunded before: ' + s.refunds.join(', ') : '';
  $('#refund-sale-meta').textContent = shopTime(s.created_ms, true) + ' · Till ' + (s.terminal || '') +
    (s.cashier ? ' · ' + s.cashier.name : '') + ' · total ' + kes(s.total) + (pays ? ' · paid ' + pays : '') + refunds;
  const rows = (s.lines || []).map((l, i) => {
    const n = i + 1;
    const left = refundLeft(l);
    const id = 'refund-qty-' + n;
    const input = el('input', { id, class: 'refund-qty', inputmode: 'decimal', autocomplete: 'off', value: r.qty[n] || '0',
      'aria-label': 'quantity of ' + l.name + ' to refund, at most ' + fmtQty(left.qty), 'aria-describedby': id + '-error', 'data-line': String(n) });
    if (left.qty === 0) { input.disabled = true; input.value = '0'; input.title = 'all of this line is refunded'; }
    input.addEventListener('input', () => { r.qty[n] = input.value; $('#refund-error').textContent = ''; renderRefundAmounts(); });
    input.addEventListener('focus', () => input.select());
    input.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      e.preventDefault();
      const all = $$('#refund-lines .refund-qty').filter((x) => !x.disabled);
      const next = all[all.indexOf(input) + 1];
      if (next) next.focus();
      else if (!$('#refund-confirm').disabled) $('#refund-confirm').focus();
    });
    return [
      el('tr', { class: 'refund-line' + (left.qty === 0 ? ' done' : ''), 'data-line': String(n) },
        el('td', { class: 'num muted', text: String(n) }),
        el('td', { class: 'lname' }, l.name, el('small', { text: l.sku + ' · ' + l.tax_band })),
        el('td', { class: 'num', text: money(l.unit_price) }),
        el('td', { class: 'num sold', text: fmtQty(l.qty_milli) }),
        el('td', { class: 'num refunded', text: fmtQty(l.refunded_qty_milli || 0) }),
        el('td', { class: 'num' }, input, el('small', { class: 'left muted', text: left.qty ? 'of ' + fmtQty(left.qty) + ' left' : 'all refunded' })),
        el('td', { class: 'num amount', text: '0.00' })),
      el('tr', { class: 'refund-line-error', 'data-line': String(n) },
        el('td', { colspan: '7' }, el('p', { id: id + '-error', class: 'field-error', role: 'alert' }))),
    ];
  }).flat();
  $('#refund-lines').replaceChildren(...rows);
  $('#refund-all').disabled = !(s.lines || []).some((l) => refundLeft(l).qty > 0);
  renderRefundAmounts();
}

function renderRefundAmounts() {
  const r = state.refund;
  (r.sale.lines || []).forEach((l, i) => {
    const n = i + 1;
    const a = refundLineAmount(l, r.qty[n] || '');
    const row = $('#refund-lines tr.refund-line[data-line="' + n + '"]');
    if (!row) return;
    row.querySelector('.amount').textContent = a.error ? '—' : money(a.cents || 0);
    row.classList.toggle('chosen', !a.error && a.milli > 0);
    fieldError('refund-qty-' + n, a.error || '');
  });
  const t = refundTotals();
  $('#refund-bands').replaceChildren(...Object.keys(t.bands).sort().map((b) =>
    el('div', {}, el('span', { text: BAND_NAMES[b] + ' on ' + money(t.bands[b].gross) }), el('span', { text: 'VAT ' + money(t.bands[b].tax) }))));
  $('#refund-total').textContent = kes(t.total);
  const b = $('#refund-confirm');
  b.disabled = state.refunding || !t.valid || t.count === 0;
  b.textContent = state.refunding ? 'Saving…' : 'Refund ' + kes(t.total) + ({ cash: ' cash', mpesa: ' by M-Pesa', card: ' to card' })[r.to];
  b.title = !t.valid ? 'fix the quantities marked in red first' : t.count === 0 ? 'type the quantity to give back on a line' : '';
}

function selectRefundTo(to) {
  if (state.refund) state.refund.to = to;
  for (const b of $$('.refund-to')) {
    b.classList.toggle('active', b.dataset.refundTo === to);
    b.setAttribute('aria-checked', String(b.dataset.refundTo === to));
  }
  if (state.refund) renderRefundAmounts();
}

function refundEverything() {
  const r = state.refund;
  (r.sale.lines || []).forEach((l, i) => { const left = refundLeft(l).qty; r.qty[i + 1] = left ? fmtQty(left) : '0'; });
  for (const input of $$('#refund-lines .refund-qty')) input.value = r.qty[Number(input.dataset.line)];
  $('#refund-error').textContent = '';
  renderRefundAmounts();
  if (!$('#refund-confirm').disabled) $('#refund-confirm').focus();
}

function cancelRefund() {
  const from = state.refund ? state.refund.from : 'sell';
  state.refund = null;
  show(from === 'sync' ? 'sync' : 'sell');
}

// A refusal of the till beside the field it names: "lines[0]: line 2 (SKU) of sale … has 1
// left to refund, not 2" goes to line 2's quantity; "reason: …", "refund_to: …" to theirs.
// asked: the quantities the cashier sent (the screen's may have been reset since).
function showRefundRefusal(r, asked) {
  const msg = errorText(r);
  const code = r.data.error && r.data.error.code;
  const m = /^lines\[\d+\][.\w]*:\s*line (\d+) \(([^)]*)\)\s*(.*)$/.exec(msg);
  const line = m && state.refund && (state.refund.sale.lines || [])[Number(m[1]) - 1];
  if (line && $('#refund-qty-' + m[1])) {
    // The cashier knows the item by its name, not its SKU, and what they typed.
    const n = m[1];
    const left = /has (\S+) left to refund/.exec(m[3]);
    const input = $('#refund-qty-' + n);
    fieldError('refund-qty-' + n, left && asked[n]
      ? 'Line ' + n + ' (' + line.name + '): ' + left[1] + ' left to refund, not ' + asked[n].trim() + ' (refunded meanwhile: see Refunded).'
      : 'Line ' + n + ' (' + (m[2] === line.sku ? line.name : m[2]) + ') ' + m[3]);
    // A line with nothing left is not to be fixed: its message stays, not in red.
    input.classList.toggle('invalid', !input.disabled);
    const open = $$('#refund-lines .refund-qty').find((i) => !i.disabled);
    ((!input.disabled) ? input : open || $('#refund-cancel')).focus();
    return;
  }
  if (/^reason/.test(msg)) { $('#refund-reason-error').textContent = msg; return; }
  if (/^refund_to/.test(msg)) { $('#refund-to-error').textContent = msg; return; }
  $('#refund-error').textContent = (code === 'not_found' ? 'Not a sale of this till: ' : '') + msg;
}

async function confirmRefund() {
  const r = state.refund;
  if (!r || state.refunding) return;
  const t = refundTotals();
  $('#refund-error').textContent = '';
  if (!t.valid) { $('#refund-error').textContent = 'Fix the quantities marked in red first.'; return; }
  if (t.count === 0) { $('#refund-error').textContent = 'Type the quantity to give back on at least one line.'; return; }
  const lines = [];
  (r.sale.lines || []).forEach((l, i) => {
    const a = refundLineAmount(l, r.qty[i + 1] || '');
    if (a.milli) lines.push({ line: i + 1, qty: fmtQty(a.milli) });
  });
  const body = { receipt_no: r.sale.receipt_no, lines, reason: $('#refund-reason').value, refund_to: r.to };
  const asked = Object.assign({}, r.qty);
  state.refunding = true;
  renderRefundAmounts();
  const res = await api('POST', '/api/refunds', body, SALE_TIMEOUT_MS);
  state.refunding = false;
  if (state.refund !== r) return;
  renderRefundAmounts();
  if (res.status === 201) { refundDone(res.data); return; }
  if (res.status === 401) return; // sessionEnded showed the login
  if (res.status === 0) {
    $('#refund-error').textContent = 'The till did not answer: the refund may or may not be saved. Look at the sale\'s receipt again before refunding it twice.';
    return;
  }
  // What is left may have changed (another refund meanwhile): the columns as the till says
  // now first, then the refusal on that screen, so the cashier never sees the message beside
  // the old figures.
  if (res.data.error && res.data.error.code === 'refund_exceeds_sale') {
    const g = await api('GET', '/api/sales/' + encodeURIComponent(r.sale.receipt_no));
    if (state.refund !== r) return;
    if (g.status === 200) {
      r.sale = g.data;
      // A line with nothing left is refunded no more: its quantity back to 0.
      (r.sale.lines || []).forEach((l, i) => { if (refundLeft(l).qty === 0) r.qty[i + 1] = '0'; });
      renderRefund();
    }
  }
  showRefundRefusal(res, asked);
}

function refundDone(refund) {
  state.refund = null;
  state.lastReceipt = refund;
  $('#reprint-last').disabled = false;
  show('sell');
  renderReceipt(refund);
  $('#receipt').hidden = false;
  $('#new-sale').focus();
  pollSoon();
}

// Under a reprinted sale: its Refund button and the refunds made of it; under a refund: its sale.
function renderReceiptRefunds(s) {
  const btn = $('#refund-start');
  const box = $('#receipt-refunds');
  const isSale = s.kind !== 'refund';
  btn.hidden = !(s.reprint && isSale);
  const left = (s.lines || []).some((l) => refundLeft(l).qty > 0);
  btn.disabled = !left;
  btn.title = left ? 'give back (part of) this sale' : 'everything of this sale is refunded';
  if (left) btn.replaceChildren('Refund', el('kbd', { text: 'F8' }));
  else btn.replaceChildren('Fully refunded');
  const link = (no, label) => {
    const b = el('button', { type: 'button', class: 'link receipt-link', 'data-receipt': no, text: label });
    b.addEventListener('click', () => reprint(no));
    return b;
  };
  if (isSale && (s.refunds || []).length) {
    box.replaceChildren(el('span', { class: 'muted', text: 'Refunds of this sale:' }), ...s.refunds.map((no) => link(no, no)));
    box.hidden = false;
  } else if (!isSale && s.original_receipt_no) {
    box.replaceChildren(el('span', { class: 'muted', text: 'Refund of sale:' }), link(s.original_receipt_no, s.original_receipt_no));
    box.hidden = false;
  } else {
    box.replaceChildren();
    box.hidden = true;
  }
}

// The refund screen's keys (true when taken): F2/F3/F4 the money's way back, Escape back.
function refundKey(e) {
  const to = { F2: 'cash', F3: 'mpesa', F4: 'card' }[e.key];
  if (to) { e.preventDefault(); selectRefundTo(to); return true; }
  if (e.key === 'Escape') { e.preventDefault(); cancelRefund(); return true; }
  if (e.key === 'F9') { e.preventDefault(); state.refund = null; show('sync'); return true; }
  return false;
}

function wireRefund() {
  $('#refund-start').addEventListener('click', () => { if (state.lastReceipt) startRefund(state.lastReceipt.receipt_no); });
  $('#refund-confirm').addEventListener('click', confirmRefund);
  $('#refund-cancel').addEventListener('click', cancelRefund);
  $('#refund-all').addEventListener('click', refundEverything);
  $('#refund-reason').addEventListener('change', () => { $('#refund-reason-error').textContent = ''; });
  for (const b of $$('.refund-to')) b.addEventListener('click', () => { $('#refund-to-error').textContent = ''; selectRefundTo(b.dataset.refundTo); });
}

// The printed page: as wide as the thermal paper and as long as this receipt (one page, one
// cut). Set through the CSS object model: the page's CSP allows no inline style.
let pageRule = null;

function clearPageSize() {
  if (!pageRule) return;
  const { sheet, rule } = pageRule;
  const i = Array.from(sheet.cssRules).indexOf(rule);
  if (i >= 0) sheet.deleteRule(i);
  pageRule = null;
}

function setPageSize(widthMm) {
  clearPageSize();
  const sheet = Array.from(document.styleSheets).find((s) => s.href && s.href.endsWith('/app.css'));
  if (!sheet) return;
  const paper = $('#receipt-paper');
  const heightMm = Math.ceil((paper.scrollHeight / 96) * 25.4) + 4;
  const i = sheet.insertRule('@page { size: ' + widthMm + 'mm ' + heightMm + 'mm; margin: 0; }', sheet.cssRules.length);
  pageRule = { sheet, rule: sheet.cssRules[i] };
}

function printReceipt(width) {
  document.body.classList.remove('print-80mm', 'print-58mm');
  document.body.classList.add('print-' + width + 'mm');
  setPageSize(width);
  window.print();
}

window.addEventListener('afterprint', () => {
  clearPageSize();
  document.body.classList.remove('print-80mm', 'print-58mm');
  focusSearch();
});

function newSale() {
  $('#receipt').hidden = true;
  clearTimeout(signatureTimer);
  signatureTimer = null;
  clearPageSize();
  document.body.classList.remove('print-80mm', 'print-58mm');
  focusSearch();
}

function askConfirm(text, yes) {
  $('#confirm-text').textContent = text;
  $('#confirm').hidden = false;
  $('#confirm-yes').onclick = () => { $('#confirm').hidden = true; yes(); };
  $('#confirm-no').onclick = () => { $('#confirm').hidden = true; focusSearch(); };
  $('#confirm-no').focus();
}

// ---- sync screen ----

let syncing = false;

async function refreshSync() {
  if (state.screen !== 'sync') return;
  const [q, h, c] = await Promise.all([
    api('GET', '/api/queue?status=failed&limit=100'),
    api('GET', '/api/history?limit=' + HISTORY_PAGE + '&offset=' + state.historyOffset),
    api('GET', '/api/connectivity'),
  ]);
  const s = state.status;
  if (s) {
    const types = Object.entries(s.pending_by_type || {});
    $('#sync-pending-by-type').replaceChildren(...(types.length ? types.map(([k, v]) => el('div', {}, el('span', { text: k }), el('b', { text: String(v) })))
      : [el('div', {}, el('span', { text: 'Nothing waiting' }), el('b', { text: '0' }))]));
    $('#oldest-pending').textContent = s.oldest_pending_age_s === null ? '—' : age(s.oldest_pending_age_s);
  }
  if (q.status === 200) renderFailed(q.data.items || []);
  if (h.status === 200) renderHistory(h.data);
  if (c.status === 200) renderConnLog(c.data.changes || []);
}

function renderFailed(items) {
  $('#retry-all').disabled = items.length === 0;
  if (items.length === 0) { $('#failed-list').replaceChildren(el('p', { class: 'muted', text: 'Nothing failed.' })); return; }
  $('#failed-list').replaceChildren(...items.map((it) => {
    const b = el('button', { type: 'button', class: 'retry', text: 'Retry' });
    b.addEventListener('click', () => retry({ command_id: it.command_id }, b));
    return el('div', { class: 'failed-item', 'data-command-id': it.command_id },
      el('div', { class: 'what', text: it.type + ' ' + it.entity_id + ' · ' + (it.error_category || 'error') + ' · ' + it.attempts + ' attempts' }),
      el('div', { class: 'failed-error', text: it.last_error || '' }), b);
  }));
}

function renderHistory(h) {
  const rows = (h.attempts || []).map((a) => el('tr', { class: 'history-row' },
    el('td', { text: shopTime(Date.parse(a.started), true) + (a.repeats > 1 ? ' (×' + a.repeats + ')' : '') }),
    el('td', { text: a.direction }), el('td', { text: String(a.items) }), el('td', { text: String(a.ok) }),
    el('td', { text: String(a.failed) }), el('td', { text: a.http_status ? String(a.http_status) : '—' }),
    el('td', { text: String(a.duration_ms) }), el('td', { class: 'err', text: a.error || '' })));
  $('#history').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'No sync yet.' }))]));
  $('#history-more').disabled = !h.more;
  $('#history-newer').disabled = state.historyOffset === 0;
  $('#history-page').textContent = h.total ? (state.historyOffset + 1) + '–' + (state.historyOffset + (h.attempts || []).length) + ' of ' + h.total : '';
}

function renderConnLog(changes) {
  $('#connectivity-log').replaceChildren(...(changes.length ? changes.map((c) => el('li', {},
    el('span', { class: 'dot ' + c.state }), el('b', { text: shopTime(c.at_ms) }), el('span', { text: c.state }),
    c.error ? el('span', { class: 'muted', text: c.error }) : null))
    : [el('li', { class: 'muted', text: 'No change today.' })]));
}

async function retry(body, button) {
  if (button) button.disabled = true;
  const r = await api('POST', '/api/queue/retry', body);
  if (r.status === 200) toast(r.data.retried + (r.data.retried === 1 ? ' item' : ' items') + ' queued again');
  else if (r.status !== 401) toast('Retry: ' + errorText(r), true);
  pollSoon();
  refreshSync();
}

async function syncNow() {
  if (syncing) return;
  syncing = true;
  $('#sync-now').disabled = true;
  $('#sync-outcome').textContent = 'Syncing…';
  const r = await api('POST', '/api/sync', {}, 60000);
  syncing = false;
  if (r.status === 200) {
    const d = r.data;
    $('#sync-outcome').textContent = 'Done: pushed ' + d.pushed + ', pulled ' + d.pulled + ', failed ' + d.failed + ' in ' + d.duration_ms + ' ms';
  } else if (r.status !== 401) {
    $('#sync-outcome').textContent = 'Not synced: ' + (r.data.error && typeof r.data.error === 'string' ? r.data.error : errorText(r));
  }
  pollSoon();
  refreshSync();
}

async function toggleOffline() {
  const on = !(state.status && state.status.offline_switch);
  const r = await api('POST', '/api/offline', { offline: on });
  if (r.status === 200) { state.status = r.data; renderStatus(); toast(on ? 'Switched offline: sales are kept on this till' : 'Back online: syncing'); }
  else if (r.status !== 401) toast('Offline switch: ' + errorText(r), true);
}

async function pollSoon() {
  const r = await api('GET', '/api/status');
  if (r.status === 200) { state.status = r.data; state.tillDown = false; renderStatus(); }
}

// ---- keyboard ----

function onKey(e) {
  if (!$('#confirm').hidden) { if (e.key === 'Escape') $('#confirm-no').click(); return; }
  if (!$('#receipt').hidden) {
    if (e.key === 'F8' && !$('#refund-start').hidden && !$('#refund-start').disabled) { e.preventDefault(); $('#refund-start').click(); return; }
    // Enter on another button of the receipt (Refund, Print, a refund's number) is its click.
    const a = document.activeElement;
    const onOther = e.key === 'Enter' && a && (a.id === 'refund-start' || a.classList.contains('receipt-link'));
    if ((e.key === 'Enter' && !onOther) || e.key === 'Escape') { e.preventDefault(); newSale(); }
    return;
  }
  if (!state.cashier) return;
  if (state.screen === 'refund' && refundKey(e)) return;
  switch (e.key) {
    case 'F2': e.preventDefault(); if (state.screen !== 'sell') show('sell'); focusTender('cash'); return;
    case 'F3': e.preventDefault(); if (state.screen !== 'sell') show('sell'); focusTender('mpesa'); return;
    case 'F4': e.preventDefault(); if (state.screen !== 'sell') show('sell'); focusTender('card'); return;
    case 'F9': e.preventDefault(); show(state.screen === 'sync' ? 'sell' : 'sync'); return;
    case 'Escape': e.preventDefault(); if (state.screen !== 'sell') show('sell'); else { $('#search').value = ''; fieldError('search', ''); renderResults(); focusSearch(); } return;
    default: break;
  }
  if (state.screen === 'sell' && e.key === 'Enter' && ['tendered', 'mpesa-code', 'card-ref'].includes(document.activeElement.id)) {
    e.preventDefault();
    pay(false);
  }
}

// ---- start ----

function wire() {
  $('#login-form').addEventListener('submit', login);
  for (const b of $$('.keypad button')) {
    b.addEventListener('click', () => {
      const pin = $('#pin');
      if (b.dataset.key === 'back') pin.value = pin.value.slice(0, -1);
      else if (b.dataset.key === 'clear') pin.value = '';
      else if (pin.value.length < 8) pin.value += b.dataset.key;
      pin.focus();
    });
  }
  $('#search').addEventListener('input', () => { state.highlight = 0; fieldError('search', ''); renderResults(); });
  $('#search').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); searchEnter(); }
    else if (e.key === 'ArrowDown') { e.preventDefault(); state.highlight++; renderResults(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); state.highlight = Math.max(0, state.highlight - 1); renderResults(); }
  });
  for (const b of $$('.tender[data-tender]')) b.addEventListener('click', () => focusTender(b.dataset.tender));
  $('#tendered').addEventListener('input', () => { fieldError('tendered', ''); updateChangePreview(); });
  $('#mpesa-code').addEventListener('input', () => fieldError('mpesa-code', ''));
  $('#card-ref').addEventListener('input', () => fieldError('card-ref', ''));
  $('#pay').addEventListener('click', () => pay(false));
  $('#clear-cart').addEventListener('click', () => { state.cart = []; saveCart(); renderCart(); focusSearch(); });
  $('#new-sale').addEventListener('click', newSale);
  $('#print-80').addEventListener('click', () => printReceipt(80));
  $('#print-58').addEventListener('click', () => printReceipt(58));
  $('#nav-sell').addEventListener('click', () => show('sell'));
  $('#nav-sync').addEventListener('click', () => show('sync'));
  $('#logout').addEventListener('click', logout);
  $('#sync-now').addEventListener('click', syncNow);
  $('#offline-switch').addEventListener('click', toggleOffline);
  $('#retry-all').addEventListener('click', () => retry({ all: true }, $('#retry-all')));
  $('#reprint-form').addEventListener('submit', (e) => { e.preventDefault(); reprint($('#reprint-no').value); });
  $('#reprint-last').addEventListener('click', () => { if (state.lastReceipt) reprint(state.lastReceipt.receipt_no); });
  wireRefund();
  $('#history-more').addEventListener('click', () => { state.historyOffset += HISTORY_PAGE; refreshSync(); });
  $('#history-newer').addEventListener('click', () => { state.historyOffset = Math.max(0, state.historyOffset - HISTORY_PAGE); refreshSync(); });
  document.addEventListener('keydown', onKey);
}

async function start() {
  wire();
  restoreCart();
  pollStatus();
  const [r] = await Promise.all([api('GET', '/api/session'), loadCatalog(), loadCashiers()]);
  state.cashier = r.status === 200 ? r.data.cashier : null;
  show(state.cashier ? 'sell' : 'login');
  setInterval(loadCatalog, CATALOG_REFRESH_MS);
  setInterval(() => { if (state.screen === 'sync') refreshSync(); }, SYNC_SCREEN_POLL_MS);
  setInterval(() => { if (state.screen === 'login' && !state.cashiers.length) loadCashiers(); }, 5000);
  document.body.dataset.ready = '1';
}

start();

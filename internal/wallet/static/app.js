// The Lintel wallet: redeems an invitation link, keeps the card and a
// non-extractable device key in IndexedDB, and shows the card with a rotating
// QR code signed by that key.
//
// Rotating code: "LC1." + credential + "." + ts + "." + base64url(sig), where
// ts is the Unix time in seconds and sig the raw (r||s) P-256 ECDSA/SHA-256
// signature of "LC1." + credential + "." + ts.

import { encode, draw } from './qr.js';

const GRAPHQL = '/graphql';
const DB_NAME = 'lintel-wallet';
const STORE = 'cards';
const CARD_KEY = 'current';
const REFRESH_SECONDS = 5;

const MESSAGES = {
  invalid: 'This invitation link is not valid any more. Ask your card administrator for a new one.',
  locked: 'This invitation is locked after too many failed attempts. Ask your card administrator for a new one.',
  rateLimited: 'Too many attempts from this network; try again later.',
  network: 'The server cannot be reached. Check your connection and try again.',
  insecure: 'This browser cannot keep a device key here. Open the link in a current browser over https.',
  mismatch: 'The answers do not match.',
  missing: 'Fill in every field.',
};

const QUERY_INVITATION = `query($token: String!) {
  walletInvitation(token: $token) {
    organisation templateName expiresAt attemptsLeft uniqueIdentifierLabel
    securityQuestions frontFields { label value } photoUrl
  }
}`;

const MUTATION_REDEEM = `mutation($token: String!, $uid: String!, $answers: [String!]!, $key: String!) {
  redeemInvitation(token: $token, uniqueIdentifier: $uid, answers: $answers, devicePublicKey: $key) {
    credential expiresAt codeWindowSeconds
    card {
      organisation templateName cardId barcodeValue symbology barcodeImage photo
      frontFields { label value }
    }
  }
}`;

const SYMBOLOGIES = {
  QR: 'QR code',
  PDF417: 'PDF417',
  CODE128: 'Code 128',
  AZTEC: 'Aztec code',
  DATAMATRIX: 'Data Matrix',
};

const app = document.getElementById('app');
const encoder = new TextEncoder();
let stopCode = () => {};

// ---------------------------------------------------------------------------
// Small helpers.

// el builds an element; attributes with null, undefined or false values are
// left out, children are nodes or strings (as text, never HTML).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') e.className = value;
    else e.setAttribute(name, value === true ? '' : String(value));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) e.append(c);
  }
  return e;
}

function show(...nodes) {
  stopCode();
  app.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

function formatDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
}

function attemptsText(n) {
  return n === 1 ? '1 attempt left.' : `${n} attempts left.`;
}

// Only data: images and same-origin URLs are shown (the CSP allows no more).
function safeImage(src) {
  if (typeof src !== 'string' || src === '') return null;
  if (/^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$/i.test(src)) return src;
  try {
    const url = new URL(src, location.href);
    if (url.origin === location.origin) return url.href;
  } catch {
    // not a URL
  }
  return null;
}

function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// ---------------------------------------------------------------------------
// GraphQL.

class ApiError extends Error {
  constructor(message, code, extensions = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }
}

async function graphql(query, variables) {
  let response;
  try {
    response = await fetch(GRAPHQL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(MESSAGES.network, 'NETWORK');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  const first = body && Array.isArray(body.errors) ? body.errors[0] : null;
  if (first) {
    const ext = first.extensions || {};
    throw new ApiError(first.message || 'The request failed.', ext.code || 'UNKNOWN', ext);
  }
  if (response.status === 429) throw new ApiError(MESSAGES.rateLimited, 'RATE_LIMITED');
  if (!response.ok || !body || !body.data) {
    throw new ApiError(`The server answered with an error (${response.status}). Try again later.`, 'HTTP');
  }
  return body.data;
}

// ---------------------------------------------------------------------------
// IndexedDB: one record, the card on this device.

function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore(mode, fn) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

function loadCard() {
  return withStore('readonly', (s) => s.get(CARD_KEY));
}

function saveCard(record) {
  return withStore('readwrite', (s) => s.put(record, CARD_KEY));
}

// ---------------------------------------------------------------------------
// The device key: made once per page load, on the first attempt, and reused
// for retries. The private key cannot be exported; IndexedDB keeps the
// CryptoKey object itself.

let devicePromise = null;

function deviceKey() {
  if (!devicePromise) {
    devicePromise = (async () => {
      if (!window.crypto || !crypto.subtle || !window.indexedDB) {
        throw new ApiError(MESSAGES.insecure, 'INSECURE');
      }
      const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
      const publicJwk = JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y });
      return { privateKey: pair.privateKey, publicJwk };
    })();
    devicePromise.catch(() => {
      devicePromise = null;
    });
  }
  return devicePromise;
}

// ---------------------------------------------------------------------------
// The card.

function cardView(card, { cardId, expiresAt, expired } = {}) {
  const photo = safeImage(card.photo);
  const fields = (card.frontFields || []).map((f) =>
    el('div', { class: 'field' }, el('dt', {}, f.label), el('dd', {}, f.value)));
  return el('article', { class: expired ? 'card expired' : 'card', 'aria-label': 'ID card' },
    el('header', { class: 'card-head' },
      el('p', { class: 'org' }, card.organisation || ''),
      el('p', { class: 'template' }, card.templateName || '')),
    el('div', { class: 'card-body' },
      photo ? el('img', { class: 'photo', src: photo, alt: 'Photo of the cardholder' }) : null,
      el('dl', { class: 'fields' }, fields)),
    cardId || expiresAt
      ? el('footer', { class: 'card-foot' },
        cardId ? el('p', { class: 'card-id' }, el('span', {}, 'Card ID '), el('strong', {}, cardId)) : null,
        expiresAt
          ? el('p', { class: expired ? 'validity is-expired' : 'validity' },
            expired ? `Expired on ${formatDate(expiresAt)}` : `Valid until ${formatDate(expiresAt)}`)
          : null)
      : null);
}

async function showWallet() {
  let record = null;
  try {
    record = await loadCard();
  } catch {
    record = null;
  }
  document.title = 'Lintel Wallet';
  if (!record || !record.card) {
    show(el('section', { class: 'panel empty' },
      el('h1', {}, 'No card on this phone yet'),
      el('p', {}, 'Open the invitation link from your e-mail on this phone to add your card.')));
    return;
  }
  const card = record.card;
  const expired = !(Date.parse(record.expiresAt) > Date.now());
  const nodes = [
    el('h1', { class: 'visually-hidden' }, card.templateName ? `Your ${card.templateName} card` : 'Your card'),
    cardView(card, { cardId: card.cardId, expiresAt: record.expiresAt, expired }),
  ];
  let canvas = null;
  let countdown = null;
  let bar = null;
  if (expired) {
    nodes.push(el('section', { class: 'panel code-panel', 'aria-labelledby': 'code-title' },
      el('h2', { id: 'code-title' }, 'Door code'),
      el('p', { class: 'expired-note', id: 'expired' },
        'This card has expired, so it shows no door code. Ask your card administrator for a new invitation.')));
  } else {
    canvas = el('canvas', {
      id: 'code',
      role: 'img',
      'aria-label': `Door code, renewed every ${REFRESH_SECONDS} seconds. Hold it up to the reader.`,
    });
    countdown = el('span', { id: 'countdown' }, '');
    bar = el('span', { class: 'timer-fill' });
    nodes.push(el('section', { class: 'panel code-panel', 'aria-labelledby': 'code-title' },
      el('h2', { id: 'code-title' }, 'Door code'),
      el('div', { class: 'code-frame' }, canvas),
      el('div', { class: 'timer', 'aria-hidden': 'true' }, bar),
      el('p', { class: 'countdown' }, countdown),
      el('p', { id: 'code-error', class: 'error', role: 'alert' })));
  }
  const barcode = safeImage(card.barcodeImage);
  if (barcode) {
    const name = SYMBOLOGIES[card.symbology] || card.symbology || 'Barcode';
    nodes.push(el('section', { class: 'panel barcode-panel', 'aria-labelledby': 'barcode-title' },
      el('h2', { id: 'barcode-title' }, 'Card barcode'),
      el('figure', {},
        el('img', { id: 'barcode', src: barcode, alt: `${name} of card ${card.cardId || ''}`.trim() }),
        el('figcaption', {}, `${name}${card.barcodeValue ? ` · ${card.barcodeValue}` : ''}`))));
  }
  show(...nodes);
  if (canvas) stopCode = startCode(record, canvas, countdown, bar);
}

// startCode draws a fresh signed code now and at every REFRESH_SECONDS
// boundary, and keeps the countdown; it returns a func that stops it.
function startCode(record, canvas, countdown, bar) {
  let slot = -1;
  let busy = false;
  let stopped = false;
  const errorBox = app.querySelector('#code-error');

  async function tick() {
    if (stopped) return;
    const now = Date.now();
    if (!(Date.parse(record.expiresAt) > now)) {
      stop();
      showWallet(); // shows the card as expired
      return;
    }
    const seconds = Math.floor(now / 1000);
    const left = REFRESH_SECONDS - (seconds % REFRESH_SECONDS);
    const text = `New code in ${left} s`;
    if (countdown.textContent !== text) countdown.textContent = text;
    bar.style.width = `${(100 * (REFRESH_SECONDS * 1000 - (now % (REFRESH_SECONDS * 1000)))) / (REFRESH_SECONDS * 1000)}%`;
    const current = Math.floor(seconds / REFRESH_SECONDS);
    if (current === slot || busy) return;
    busy = true;
    try {
      const code = await signedCode(record, seconds);
      if (!stopped) {
        drawCode(canvas, code);
        slot = current;
        errorBox.textContent = '';
      }
    } catch (err) {
      errorBox.textContent = `The door code cannot be made on this device (${err.message || err}).`;
    } finally {
      busy = false;
    }
  }

  const timer = setInterval(tick, 200);
  const onVisible = () => {
    if (document.visibilityState === 'visible') tick();
  };
  document.addEventListener('visibilitychange', onVisible);
  function stop() {
    stopped = true;
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
  }
  tick();
  return stop;
}

async function signedCode(record, ts) {
  const message = `LC1.${record.credential}.${ts}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, record.privateKey, encoder.encode(message));
  return `${message}.${base64url(new Uint8Array(sig))}`;
}

// drawCode draws the code with whole device pixels per module (at least 6)
// and a 4-module quiet zone, as wide as the frame allows.
function drawCode(canvas, text) {
  const qr = encode(text);
  const modules = qr.size + 8;
  const ratio = window.devicePixelRatio || 1;
  const room = Math.min(canvas.parentElement.clientWidth || 320, 440);
  const scale = Math.max(6, Math.floor((room * ratio) / modules));
  draw(canvas, qr, { scale, quiet: 4 });
  canvas.dataset.modules = String(modules);
  canvas.style.width = `${canvas.width / ratio}px`;
}

// ---------------------------------------------------------------------------
// The invitation.

function problem(err) {
  switch (err.code) {
    case 'NOT_FOUND': return MESSAGES.invalid;
    case 'FAILED_PRECONDITION': return MESSAGES.locked;
    case 'RATE_LIMITED': return MESSAGES.rateLimited;
    default: return err.message || 'Something went wrong. Try again later.';
  }
}

async function showInvitation(token) {
  document.title = 'Add your card · Lintel Wallet';
  show(el('p', { class: 'status' }, 'Loading your invitation…'));
  let inv;
  try {
    inv = (await graphql(QUERY_INVITATION, { token })).walletInvitation;
  } catch (err) {
    show(el('section', { class: 'panel problem' },
      el('h1', {}, 'Cannot add the card'),
      el('p', { id: 'error', class: 'error', role: 'alert' }, problem(err)),
      el('p', {}, el('a', { href: '/wallet/' }, 'Open my wallet'))));
    return;
  }
  let existing = null;
  try {
    existing = await loadCard();
  } catch {
    existing = null;
  }

  const uidIsEmail = /mail/i.test(inv.uniqueIdentifierLabel || '');
  const uid = el('input', {
    id: 'uid',
    name: 'uid',
    type: 'text',
    inputmode: uidIsEmail ? 'email' : null,
    autocomplete: uidIsEmail ? 'email' : 'off',
    autocapitalize: 'none',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'attempts',
  });
  const questions = inv.securityQuestions || [];
  const answers = questions.map((_, i) => el('input', {
    id: `answer-${i}`,
    class: 'answer',
    name: `answer-${i}`,
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
  }));
  const error = el('p', { id: 'error', class: 'error', role: 'alert' });
  const attempts = el('p', { id: 'attempts', class: 'hint' }, attemptsText(inv.attemptsLeft));
  const button = el('button', { id: 'redeem', type: 'submit' }, 'Add the card to this phone');
  const form = el('form', { id: 'identity', class: 'panel', novalidate: true, 'aria-labelledby': 'identity-title' },
    el('h2', { id: 'identity-title' }, 'Confirm it is you'),
    el('p', { class: 'hint' }, 'Answer as your card administrator recorded it.'),
    el('label', { for: 'uid' }, inv.uniqueIdentifierLabel || 'Identifier'),
    uid,
    questions.map((q, i) => [el('label', { for: `answer-${i}` }, q), answers[i]]),
    error,
    attempts,
    button);

  show(
    el('h1', {}, 'Add your card to this phone'),
    cardView({ ...inv, photo: inv.photoUrl }, {}),
    el('p', { class: 'hint' }, `This link works until ${formatDate(inv.expiresAt)}.`),
    existing && existing.card
      ? el('p', { class: 'note' }, 'This phone already holds a card; adding this one replaces it.')
      : null,
    form);

  let busy = false;
  let closed = false;
  const close = (message) => {
    closed = true;
    error.textContent = message;
    for (const input of form.querySelectorAll('input, button')) input.disabled = true;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy || closed) return;
    const inputs = [uid, ...answers];
    const empty = inputs.find((i) => i.value.trim() === '');
    if (empty) {
      error.textContent = MESSAGES.missing;
      empty.focus();
      return;
    }
    busy = true;
    button.disabled = true;
    button.textContent = 'Checking…';
    error.textContent = '';
    try {
      const device = await deviceKey();
      const data = await graphql(MUTATION_REDEEM, {
        token,
        uid: uid.value.trim(),
        answers: answers.map((a) => a.value.trim()),
        key: device.publicJwk,
      });
      const issued = data.redeemInvitation;
      await saveCard({
        privateKey: device.privateKey,
        credential: issued.credential,
        expiresAt: issued.expiresAt,
        codeWindowSeconds: issued.codeWindowSeconds,
        card: issued.card,
        savedAt: new Date().toISOString(),
      });
      history.replaceState(null, '', '/wallet/');
      closed = true;
      await showWallet();
      app.focus();
    } catch (err) {
      if (err.code === 'VALIDATION_FAILED' && typeof err.extensions.attemptsLeft === 'number') {
        const n = err.extensions.attemptsLeft;
        attempts.textContent = attemptsText(Math.max(n, 0));
        if (n <= 0) close(MESSAGES.locked);
        else error.textContent = `${MESSAGES.mismatch} ${attemptsText(n)}`;
      } else if (err.code === 'FAILED_PRECONDITION') {
        close(MESSAGES.locked);
      } else if (err.code === 'NOT_FOUND') {
        close(MESSAGES.invalid);
      } else {
        error.textContent = problem(err);
      }
    } finally {
      busy = false;
      if (!closed) {
        button.disabled = false;
        button.textContent = 'Add the card to this phone';
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Start.

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/wallet/sw.js', { scope: '/wallet/' }).catch(() => {});
}

const invite = location.pathname.match(/^\/wallet\/invite\/([^/]+)\/?$/);
if (invite) {
  let token = null;
  try {
    token = decodeURIComponent(invite[1]);
  } catch {
    token = null;
  }
  if (token) showInvitation(token);
  else show(el('p', { id: 'error', class: 'error', role: 'alert' }, MESSAGES.invalid));
} else {
  showWallet();
}

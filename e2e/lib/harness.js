// Test harness: a real `herald serve` per test, a real Chromium per test.
//
// Chromium is Debian's /usr/bin/chromium, driven by playwright-core (which
// never downloads a browser). Each hub is the built binary on 127.0.0.1 at
// the port it binds itself (port 0), with its own data directory; it is
// used once it prints its readiness line. On failure a test saves a
// screenshot of each open page and the browser console under
// e2e/artifacts/<test name>/.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const ARTIFACTS = path.resolve(here, '..', 'artifacts');
export const HERALD = process.env.HERALD_BIN || path.join(ROOT, 'target', 'debug', 'herald');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** The HS256 key of every hub started with `key: true`. */
export const KEY = 'e2e-secret-key-that-is-long-enough-for-hs256';

// ---------- small utilities ----------

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a truthy value. The timeout only turns a
 * hang into a failure: it is generous, never the thing being measured.
 */
export async function until(check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The environment for a `herald` child: this process's, without any
 * `HERALD_*` variable (as the Rust tests' support::serve_command does), so
 * a HERALD_JWT_KEY or HERALD_HISTORY of the caller's shell (or the
 * HERALD_BIN that points at the binary) never changes the hub under test.
 */
export function heraldEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD_')));
}

/** An HS256 JWT with header `typ`, signed with `key`. */
function signHS256(typ, claims, key) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const unsigned = `${b64({ alg: 'HS256', typ })}.${b64(claims)}`;
  const signature = createHmac('sha256', key).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

/** An HS256 JWT signed with `key`: a draft-07 token. */
export function mint(claims, key = KEY) {
  return signHS256('JWT', claims, key);
}

/**
 * A draft-08 access token (RFC 9068, header `typ: at+jwt`), HS256 with
 * `secret`: the hub verifies it with the issuer it was given as
 * `--issuer ISSUER=secret:SECRET` (and `--access-token-alg HS256`). The
 * claims (`iss`, `aud`, `exp`, `authorization_details`) are the caller's.
 */
export function mintAccessToken(claims, secret) {
  return signHS256('at+jwt', claims, secret);
}

export const PUBLISHER_TOKEN = mint({ mercure: { publish: ['*'] } });
export const SUBSCRIBER_TOKEN = mint({ mercure: { subscribe: ['*'] } });

// ---------- hubs ----------

/** How long a hub may take to say it is ready, on a loaded machine. */
const READY_TIMEOUT_MS = 30_000;

// The hub's log is coloured even into a pipe.
const stripAnsi = (text) => text.replace(/\x1b\[[0-9;]*m/g, '');

/**
 * Waits for the hub's readiness line and returns the URL it states: "Herald
 * hub listening on URL" in its log (stderr), or in development mode "Herald
 * hub running at URL" atop its banner (stdout). The hub prints either only
 * once its listener is bound and its signal handlers are installed, so
 * from then on it serves: nothing here guesses from an open port.
 */
function readiness(child, output) {
  return new Promise((resolve, reject) => {
    const check = () => {
      // Whole lines only: a chunk may end in the middle of the URL.
      const m = stripAnsi(output.stderr).match(/Herald hub listening on (\S+)\r?\n/)
        ?? output.stdout.match(/^Herald hub running at (\S+)\r?\n/m);
      if (m) done(() => resolve(m[1]));
    };
    const exited = (code, signal) => done(() => reject(
      Object.assign(new Error(`herald serve exited (code ${code}, signal ${signal}) before it was ready:\n${stripAnsi(output.stderr)}`),
        { stderr: output.stderr })));
    const timer = setTimeout(() => done(() => {
      child.kill('SIGKILL');
      reject(new Error(`herald serve did not say it was ready within ${READY_TIMEOUT_MS} ms:\n${stripAnsi(output.stderr)}`));
    }), READY_TIMEOUT_MS);
    function done(settle) {
      clearTimeout(timer);
      child.stdout.off('data', check);
      child.stderr.off('data', check);
      child.off('exit', exited);
      settle();
    }
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', exited);
    check();
  });
}

/**
 * Starts `herald serve` on 127.0.0.1 and resolves once it says it is ready.
 * options.port: a fixed port, e.g. the one of a hub being restarted (by
 * default the hub binds port 0 and the harness reads the port it got from
 * its readiness line: no port is chosen first and bound later); options.tls:
 * serve HTTPS with a self-signed certificate; options.key: use KEY instead
 * of development mode; options.anonymous: with a key, admit anonymous
 * subscribers (default true); options.dataDir: history directory (default:
 * fresh); options.args: more flags. History is durable (redb) in the data
 * directory.
 */
export async function startHub(options = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'herald-e2e-data-'));
  const args = ['serve', '--listen', `127.0.0.1:${options.port ?? 0}`, '--log', 'info'];
  args.push('--data-dir', dataDir);
  if (options.tls) args.push('--tls-self-signed');
  if (options.key) {
    args.push('--jwt-key', KEY);
    if (options.anonymous ?? true) args.push('--anonymous');
  }
  args.push(...(options.args ?? []));
  const child = spawn(HERALD, args, { cwd: dataDir, env: heraldEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { output.stdout += d; });
  child.stderr.on('data', (d) => { output.stderr += d; });
  let exited = null;
  child.once('exit', (code, signal) => { exited = { code, signal }; });

  let url;
  try {
    url = new URL(await readiness(child, output));
  } catch (error) {
    if (options.port !== undefined && /cannot listen on/.test(stripAnsi(output.stderr))) {
      // A restart must come back where its clients reconnect to; another
      // process took the port while the hub was down. Say so rather than
      // move to another port the test would not be testing.
      throw new Error(`port ${options.port} was taken while the hub was down, so it cannot come back on it: ${error.message}`);
    }
    throw error;
  }
  const scheme = options.tls ? 'https' : 'http';
  if (url.protocol !== `${scheme}:` || url.hostname !== '127.0.0.1' || url.pathname !== '/.well-known/mercure') {
    child.kill('SIGKILL');
    throw new Error(`herald serve says it listens on ${url}, not on ${scheme}://127.0.0.1:PORT/.well-known/mercure`);
  }
  const port = Number(url.port);
  if (options.port !== undefined && port !== options.port) {
    child.kill('SIGKILL');
    throw new Error(`herald serve listens on port ${port}, not on the ${options.port} it was given`);
  }
  const hub = {
    port,
    dataDir,
    origin: url.origin,
    url: url.href,
    process: child,
    get stdout() { return output.stdout; },
    get stderr() { return output.stderr; },
    /** Development mode's printed tokens, once the banner is out. */
    async bannerTokens() {
      const m = await until(() => output.stdout.match(/Publisher token:\s+(\S+)[\s\S]*Subscriber token:\s+(\S+)/), 'the development banner');
      return { publisher: m[1], subscriber: m[2] };
    },
    /** Ends the hub with `signal` and waits for it to exit. */
    async stop(signal = 'SIGTERM') {
      if (exited) return exited;
      const done = new Promise((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
      child.kill(signal);
      return done;
    },
  };
  return hub;
}

/** Publishes with a form POST from node (HTTPS certificate not checked). */
export function publish(hub, fields, token = PUBLISHER_TOKEN) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) body.append(name, String(v));
  }
  const payload = body.toString();
  const url = new URL(hub.url);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, {
      method: 'POST',
      rejectUnauthorized: false,
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': Buffer.byteLength(payload),
        Authorization: `Bearer ${token}`,
      },
    }, (response) => {
      let text = '';
      response.on('data', (d) => { text += d; });
      response.on('end', () => {
        if (response.statusCode === 200) resolve(text.trim());
        else reject(new Error(`publish: ${response.statusCode} ${text}`));
      });
    });
    request.on('error', reject);
    request.end(payload);
  });
}

/**
 * The hub's counters now: the first snapshot of its stats stream
 * (/.well-known/herald/stats sends one at once), read from node.
 */
export function hubStats(hub) {
  const client = hub.origin.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(`${hub.origin}/.well-known/herald/stats`, { rejectUnauthorized: false }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`stats: ${response.statusCode}`));
        return;
      }
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (d) => {
        text += d;
        const m = text.match(/^data: (.*)\n\n/m);
        if (!m) return;
        request.destroy();
        try { resolve(JSON.parse(m[1])); } catch (error) { reject(error); }
      });
    });
    request.on('error', reject);
  });
}

/** Runs the `herald` CLI and returns its stdout. */
export function herald(args) {
  return execFileSync(HERALD, args, { encoding: 'utf8', env: heraldEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
}

// ---------- browsers ----------

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Runs `body(browser)` with a fresh Chromium (its own profile directory).
 * `browser.context` is the Playwright context, `browser.page()` opens a
 * page that records its console, `browser.consoleErrors()` lists errors.
 * On failure, screenshots and console logs go to e2e/artifacts/ (under
 * `<test name>-<options.label>` when a test runs several browsers at once).
 */
export async function withBrowser(t, options, body) {
  if (typeof options === 'function') { body = options; options = {}; }
  const profile = mkdtempSync(path.join(tmpdir(), 'herald-e2e-chromium-'));
  const args = [...FLAGS];
  if (options.ignoreHTTPSErrors) args.push('--ignore-certificate-errors');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    ignoreHTTPSErrors: Boolean(options.ignoreHTTPSErrors),
    viewport: options.viewport ?? { width: 1280, height: 860 },
  });
  const consoleLog = [];
  const pages = [];
  const browser = {
    context,
    async page() {
      const page = await context.newPage();
      const n = pages.push(page);
      page.on('console', (m) => consoleLog.push({ page: n, type: m.type(), text: m.text() }));
      page.on('pageerror', (e) => consoleLog.push({ page: n, type: 'pageerror', text: String(e) }));
      return page;
    },
    consoleErrors(page) {
      const n = pages.indexOf(page) + 1;
      return consoleLog.filter((m) => (m.type === 'error' || m.type === 'pageerror') && (!page || m.page === n));
    },
  };
  try {
    await body(browser);
  } catch (error) {
    const name = options.label ? `${t.name}-${options.label}` : t.name;
    const dir = path.join(ARTIFACTS, name.replace(/[^A-Za-z0-9._-]+/g, '_'));
    mkdirSync(dir, { recursive: true });
    for (const [i, page] of pages.entries()) {
      if (page.isClosed()) continue;
      await page.screenshot({ path: path.join(dir, `page-${i + 1}.png`), fullPage: true }).catch(() => {});
    }
    writeFileSync(path.join(dir, 'console.log'),
      consoleLog.map((m) => `[page ${m.page}] [${m.type}] ${m.text}`).join('\n') + '\n');
    writeFileSync(path.join(dir, 'error.txt'), `${error.stack ?? error}\n`);
    throw error;
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Records the request headers of `page`'s EventSource requests as the
 * browser put them on the wire, from CDP (Playwright's own view of a request
 * it intercepts lacks the headers the network stack adds, such as Cookie).
 * Returns a function that lists them, in the order the requests were made,
 * with lower-case names; a request shows once its headers went out.
 */
export async function eventSourceHeaders(browser, page) {
  const requests = [];
  const onWire = new Map();
  const cdp = await browser.context.newCDPSession(page);
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.type === 'EventSource' && !requests.includes(e.requestId)) requests.push(e.requestId);
  });
  // CDP sends this one before or after requestWillBeSent: keep every
  // request's, and pick the EventSource ones when asked.
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    onWire.set(e.requestId, Object.fromEntries(Object.entries(e.headers).map(([name, value]) => [name.toLowerCase(), value])));
  });
  await cdp.send('Network.enable');
  return () => requests.filter((id) => onWire.has(id)).map((id) => onWire.get(id));
}

/** Stops hubs and removes their data when the test ends. */
export function cleanup(t, ...hubs) {
  t.after(async () => {
    for (const hub of hubs) {
      if (!hub) continue;
      await hub.stop('SIGKILL');
      rmSync(hub.dataDir, { recursive: true, force: true });
    }
  });
}

// ---------- the UI ----------

/** Subscribes from the live page's form and waits until the stream is open. */
export async function subscribeFromPage(page, topics, { token, tokenAs = 'query', lastEventId } = {}) {
  await page.fill('#sub-topics', topics.join('\n'));
  await page.fill('#sub-token', token ?? '');
  await page.check(`input[name="sub-token-as"][value="${tokenAs}"]`);
  await page.fill('#sub-last-event-id', lastEventId ?? '');
  await page.click('#subscribe');
  await page.waitForSelector('#state[data-state="open"]');
}

/**
 * From now on, requests whose URL `matches` wait in `held` until
 * `release()` lets them, and every later one, through: how a test stops a
 * browser's reconnection at a known point instead of sleeping.
 */
export async function holdRequests(page, matches) {
  const held = [];
  let holding = true;
  await page.route((url) => matches(url.href), (route) => {
    if (holding) held.push(route);
    else route.continue();
  });
  return {
    held,
    async release() {
      holding = false;
      for (const route of held.splice(0)) await route.continue();
    },
  };
}

/** The ids of the events in the live page's log, in order. */
export function loggedIds(page) {
  return page.$$eval('#log li.event', (items) => items.map((li) => li.dataset.id));
}

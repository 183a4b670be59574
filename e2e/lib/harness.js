// Test harness: a real `herald serve` per test, a real Chromium per test.
//
// Chromium is Debian's /usr/bin/chromium, driven by playwright-core (which
// never downloads a browser). Each hub is the built binary on 127.0.0.1 at
// a free port, with its own data directory. On failure a test saves a
// screenshot of each open page and the browser console under
// e2e/artifacts/<test name>/.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
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

/** Polls `check` until it returns a truthy value. */
export async function until(check, what, timeoutMs = 10_000) {
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

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** An HS256 JWT signed with `key`. */
export function mint(claims, key = KEY) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const signature = createHmac('sha256', key).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

export const PUBLISHER_TOKEN = mint({ mercure: { publish: ['*'] } });
export const SUBSCRIBER_TOKEN = mint({ mercure: { subscribe: ['*'] } });

// ---------- hubs ----------

/**
 * Starts `herald serve` on 127.0.0.1.
 * options.port: a fixed port (default: a free one); options.tls: serve
 * HTTPS with a self-signed certificate; options.key: use KEY instead of
 * development mode; options.dataDir: history directory (default: fresh);
 * options.args: more flags. History is durable (redb) in the data directory.
 */
export async function startHub(options = {}) {
  const port = options.port ?? await freePort();
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'herald-e2e-data-'));
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--log', 'warn'];
  args.push('--data-dir', dataDir);
  if (options.tls) args.push('--tls-self-signed');
  if (options.key) args.push('--jwt-key', KEY, '--anonymous');
  args.push(...(options.args ?? []));
  const child = spawn(HERALD, args, { cwd: dataDir, env: heraldEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  let exited = null;
  child.once('exit', (code, signal) => { exited = { code, signal }; });

  await until(async () => {
    if (exited) throw new Error(`herald serve exited (${JSON.stringify(exited)}): ${stderr}`);
    return portOpen(port);
  }, `herald serve on port ${port}`);
  const scheme = options.tls ? 'https' : 'http';
  const hub = {
    port,
    dataDir,
    origin: `${scheme}://127.0.0.1:${port}`,
    url: `${scheme}://127.0.0.1:${port}/.well-known/mercure`,
    process: child,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    /** Development mode's printed tokens, once the banner is out. */
    async bannerTokens() {
      const m = await until(() => stdout.match(/Publisher token:\s+(\S+)[\s\S]*Subscriber token:\s+(\S+)/), 'the development banner');
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
 * On failure, screenshots and console logs go to e2e/artifacts/.
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
    const dir = path.join(ARTIFACTS, t.name.replace(/[^A-Za-z0-9._-]+/g, '_'));
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

/** The ids of the events in the live page's log, in order. */
export function loggedIds(page) {
  return page.$$eval('#log li.event', (items) => items.map((li) => li.dataset.id));
}

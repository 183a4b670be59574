// Reverse proxies for the e2e suite: Debian's nginx and Caddy, each run as
// a child process with its own configuration, ports, logs and state in a
// temporary directory, configured with the blocks of docs/deploy.md (read
// out of the page, so the documentation is what is tested).
//
// Also: a free port, a self-signed certificate (openssl), raw HTTP
// requests, and an event stream read from node (for the checks that look
// at bytes and timing rather than at a page).

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, until } from './harness.js';

export const DEPLOY_DOC = path.join(ROOT, 'docs', 'deploy.md');
export const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
export const CADDY = process.env.CADDY_BIN || '/usr/bin/caddy';

// ---------- the documentation's blocks ----------

/**
 * The fenced code block right after the line `<!-- e2e:NAME -->` in
 * docs/deploy.md: exactly one such marker, and the block must follow it.
 */
export function docBlock(name) {
  const text = readFileSync(DEPLOY_DOC, 'utf8');
  const marker = `<!-- e2e:${name} -->\n`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`docs/deploy.md has no ${marker.trim()} marker`);
  if (text.indexOf(marker, at + 1) >= 0) throw new Error(`docs/deploy.md has ${marker.trim()} twice`);
  const m = /^```[a-z]*\n([\s\S]*?)^```\n/m.exec(text.slice(at + marker.length));
  if (!m || m.index !== 0) throw new Error(`no fenced code block right after ${marker.trim()} in docs/deploy.md`);
  return m[1];
}

/**
 * `text` with each [from, to] replaced. Each `from` must occur exactly
 * once: a change to the documented block that a replacement no longer
 * fits fails the test instead of testing something else.
 */
export function edit(text, replacements) {
  let out = text;
  for (const [from, to] of replacements) {
    const first = out.indexOf(from);
    if (first < 0) throw new Error(`the documented configuration no longer contains ${JSON.stringify(from)}`);
    if (out.indexOf(from, first + 1) >= 0) throw new Error(`the documented configuration contains ${JSON.stringify(from)} more than once`);
    out = out.slice(0, first) + to + out.slice(first + from.length);
  }
  return out;
}

// ---------- ports, directories, certificates ----------

/**
 * A port for a proxy to listen on. A proxy cannot report the port it bound
 * the way the hub does, so its ports are chosen first, and one must stay
 * free until the proxy binds it: it is chosen below the kernel's ephemeral range
 * (ip_local_port_range), where connect() takes the local ports of
 * outgoing connections, so that a machine opening thousands of connections
 * meanwhile cannot take it. Free on every address, since Caddy listens on
 * `:port`.
 */
export async function freePort() {
  const low = ephemeralLow();
  if (low < 12_000) return listenOnce(0);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    try {
      return await listenOnce(port);
    } catch (e) {
      if (e.code !== 'EADDRINUSE') throw e;
    }
  }
  throw new Error(`no free port between 10000 and ${low} after 100 tries`);
}

/** The first port of the kernel's ephemeral range (32768 if unknown). */
function ephemeralLow() {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return Number(low) || 32_768;
  } catch {
    return 32_768;
  }
}

/** Listens on `port` on every address and closes again: the port it got. */
function listenOnce(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(port, () => {
      const { port: got } = server.address();
      server.close(() => resolve(got));
    });
  });
}

/** A temporary directory, readable by others (nginx's workers run as nobody when the test runs as root). */
export function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** A self-signed certificate for 127.0.0.1 and localhost in `dir`: { cert, key } paths. */
export function selfSignedCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { encoding: 'utf8' });
  if (made.error || made.status !== 0) {
    throw new Error(`openssl could not make a certificate: ${made.error ?? made.stderr}`);
  }
  chmodSync(key, 0o644);
  return { cert, key };
}

// ---------- a child process that must stay up ----------

/**
 * Spawns `command` and resolves once `ready(log)` holds for its collected
 * output (stdout, stderr and `logFile` if given), rejecting if it exits
 * first or says nothing for 30 s.
 */
function spawnUntilReady(name, command, args, { env, logFile, ready }) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let exited = null;
  child.once('exit', (code, signal) => { exited = { code, signal }; });
  const log = () => output + (logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const started = until(() => exited || ready(log()), `${name} to start`, 30_000).then(() => {
    if (exited) throw new Error(`${name} exited (code ${exited.code}, signal ${exited.signal}) before it was ready:\n${log()}`);
  });
  return started.then(() => ({
    process: child,
    log,
    /** Ends it (SIGTERM, then SIGKILL after 10 s) and waits for it to exit. */
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  }), (error) => {
    if (!exited) child.kill('SIGKILL');
    throw error;
  });
}

// ---------- nginx ----------

/**
 * Debian's nginx.conf `http` settings that a site inherits (Debian 12's
 * /etc/nginx/nginx.conf, without its logs and includes): a site from
 * docs/deploy.md runs here in the context it gets on Debian.
 */
const DEBIAN_HTTP = `
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
`;

/**
 * Starts Debian's nginx in the foreground (`daemon off`, a child of this
 * process) with `site` in its `http` block and `main` (docs/deploy.md's
 * top-level lines) around it, everything else (pid, logs, temporary files)
 * in its own directory. Resolves once nginx says its workers started, which
 * it does after binding every listener.
 */
export async function startNginx({ site, main = '' }) {
  const dir = tempDir('herald-e2e-nginx-');
  const at = (name) => path.join(dir, name);
  const conf = `# Written by e2e/lib/proxy.js: docs/deploy.md's blocks, with the test's own paths.
daemon off;
worker_processes 1;
pid ${at('nginx.pid')};
error_log ${at('error.log')} info;
${main}
http {
${DEBIAN_HTTP}
    access_log ${at('access.log')};
    client_body_temp_path ${at('client_body')};
    proxy_temp_path ${at('proxy')};
    fastcgi_temp_path ${at('fastcgi')};
    uwsgi_temp_path ${at('uwsgi')};
    scgi_temp_path ${at('scgi')};

${site}
}
`;
  writeFileSync(at('nginx.conf'), conf);
  const args = ['-p', dir, '-c', at('nginx.conf'), '-e', at('error.log')];
  const checked = spawnSync(NGINX, [...args, '-t', '-q'], { encoding: 'utf8' });
  if (checked.error || checked.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`nginx -t refused the configuration:\n${checked.error ?? checked.stderr}\n${conf}`);
  }
  const nginx = await spawnUntilReady('nginx', NGINX, args, {
    env: process.env,
    logFile: at('error.log'),
    ready: (log) => /start worker process/.test(log),
  }).catch((error) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    ...nginx,
    dir,
    conf,
    async stop() {
      await nginx.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------- Caddy ----------

/**
 * Starts Caddy in the foreground with `caddyfile`, its storage, config and
 * home in its own directory, no admin endpoint and no change to the
 * system's trust store. Resolves once Caddy says it serves its
 * configuration.
 */
export async function startCaddy({ caddyfile }) {
  const dir = tempDir('herald-e2e-caddy-');
  const file = path.join(dir, 'Caddyfile');
  writeFileSync(file, caddyfile);
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: path.join(dir, 'data'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
  };
  const caddy = await spawnUntilReady('caddy', CADDY, ['run', '--config', file, '--adapter', 'caddyfile'], {
    env,
    ready: (log) => /serving initial configuration/.test(log),
  }).catch((error) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    ...caddy,
    dir,
    caddyfile,
    async stop() {
      await caddy.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------- raw HTTP from node ----------

/**
 * One request from node (HTTPS certificate not checked): resolves with
 * { status, headers, text } once the response has ended.
 */
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(target, {
      method,
      rejectUnauthorized: false,
      agent: false,
      headers: body === undefined ? headers : { 'Content-Length': Buffer.byteLength(body), ...headers },
    }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (d) => { text += d; });
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, text }));
      response.on('error', reject);
    });
    // A proxy may answer (413) and close before reading a large body: the
    // answer counts, a write error after it does not.
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * An event stream read from node, returned at once: `stream.response`
 * resolves when the response head arrives (a buffering proxy may hold it
 * back with the body), then `stream.status` and `stream.headers` are set.
 * `stream.events` lists each event as { id, data, at } (at: Date.now()
 * when its last line arrived), `stream.comments` each comment line as
 * { text, at }; `stream.endedAt` is set when the response ends or fails.
 * `close()` hangs up. With `method` and `body` (a form), e.g. a draft-08
 * `QUERY` subscription.
 */
export function openStream(url, { headers = {}, method = 'GET', body } = {}) {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const stream = {
    status: null, headers: null, events: [], comments: [], endedAt: null,
  };
  const end = () => {
    if (stream.endedAt === null) stream.endedAt = Date.now();
  };
  let req;
  stream.response = new Promise((resolve, reject) => {
    const form = body === undefined ? {} : {
      'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body),
    };
    req = client.request(target, {
      method,
      rejectUnauthorized: false,
      agent: false,
      headers: { Accept: 'text/event-stream', ...form, ...headers },
    }, (response) => {
      stream.status = response.statusCode;
      stream.headers = response.headers;
      let buffer = '';
      let event = { id: '', data: [] };
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        const at = Date.now();
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, '');
          buffer = buffer.slice(newline + 1);
          if (line === '') {
            if (event.data.length > 0) stream.events.push({ id: event.id, data: event.data.join('\n'), at });
            event = { id: event.id, data: [] };
          } else if (line.startsWith(':')) {
            stream.comments.push({ text: line.slice(1), at });
          } else {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') event.id = value;
            else if (field === 'data') event.data.push(value);
          }
        }
      });
      response.on('end', end);
      response.on('error', end);
      response.on('close', end);
      resolve(stream);
    });
    req.on('error', (error) => { end(); reject(error); });
    req.end(body);
  });
  // Failures show where a test awaits the response; none goes unhandled.
  stream.response.catch(() => {});
  stream.close = () => req.destroy();
  return stream;
}

// ---------- pages behind a proxy ----------

/**
 * An EventSource in `page` at `url` (relative to the page), tracked in
 * window.feed: opens, the readyState at each error, the id of each
 * message.
 */
export function openFeed(page, url) {
  return page.evaluate((url) => {
    const feed = { opens: 0, errors: [], ids: [] };
    window.feed = feed;
    const es = new EventSource(url);
    es.onopen = () => { feed.opens += 1; };
    es.onerror = () => { feed.errors.push(es.readyState); };
    es.onmessage = (e) => { feed.ids.push(e.lastEventId); };
    window.es = es;
  }, url);
}

/** window.feed of openFeed. */
export const feedOf = (page) => page.evaluate(() => window.feed);

/**
 * The status, content type and `Last-Event-ID` answer of each of `page`'s
 * subscribe (`GET /.well-known/mercure`) responses, in order.
 */
export function recordResponses(page) {
  const answered = [];
  page.on('response', async (response) => {
    if (new URL(response.url()).pathname === '/.well-known/mercure' && response.request().method() === 'GET') {
      const headers = await response.allHeaders();
      answered.push({
        status: response.status(),
        type: headers['content-type'] ?? null,
        lastEventId: headers['last-event-id'] ?? null,
      });
    }
  });
  return answered;
}

/** The protocol (`h2`, `http/1.1`) of every EventSource response of `page`, from CDP; `.connections` their connection ids. */
export async function recordProtocols(browser, page) {
  const protocols = [];
  protocols.connections = new Set();
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', (e) => {
    if (e.type === 'EventSource') {
      protocols.push(e.response.protocol);
      protocols.connections.add(e.response.connectionId);
    }
  });
  return protocols;
}

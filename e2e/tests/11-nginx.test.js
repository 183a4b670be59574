// Scenario 11: the hub behind Debian's nginx, configured with the blocks of
// docs/deploy.md (read out of the page: e2e/lib/proxy.js), in a real
// Chromium. The test changes only the upstream's port, the listen
// addresses (a plain HTTP/1.1 listener added next to the HTTPS one, on
// 127.0.0.1) and the certificate paths; a test that checks what a
// different configuration does says which line it changes.
//
// Checked through the proxy: the page and its events over HTTP/1.1, an
// event arriving alone (no buffering; the control shows what buffering
// does), publish body limits, the public URLs that --hub-url gives,
// reconnection with Last-Event-ID across a hub restart, a hub that stays
// down past the browser's reconnection delay (the 502 that ends an
// EventSource for good, and the documented way around it), HTTP/2 and the
// __Secure- cookie over HTTPS, heartbeats against proxy_read_timeout; and
// the documented systemd unit with systemd-analyze.
//
// As elsewhere, nothing waits by sleeping: a held reconnection (Playwright's
// request interception) decides when the browser comes back, and the one
// negative check (an event nginx must hold) is watched for a span measured
// by the hub's own heartbeats.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HERALD, PUBLISHER_TOKEN, SUBSCRIBER_TOKEN, eventSourceHeaders, hubStats, mint, publish, startHub, subscribeFromPage, until, withBrowser, holdRequests } from '../lib/harness.js';
import {
  docBlock, edit, feedOf, freePort, openFeed, openStream, recordProtocols, recordResponses, request, selfSignedCert,
  startNginx, tempDir,
} from '../lib/proxy.js';

const TOPIC = 'https://example.com/e2e/proxy';
const hubPath = '/.well-known/mercure';
const isSubscribe = (url) => new URL(url).pathname === hubPath;
const subscribeUrl = (base) => `${base}${hubPath}?match=${encodeURIComponent(TOPIC)}`;

/** Three distinct free ports: the plain and TLS listeners, and the redirect server. */
async function proxyPorts() {
  for (;;) {
    const ports = { plain: await freePort(), tls: await freePort(), redirect: await freePort() };
    if (new Set(Object.values(ports)).size === 3) return ports;
  }
}

/**
 * docs/deploy.md's site for this test: the hub's port in the upstream,
 * 127.0.0.1 listeners (the HTTPS one as documented, plus a plain HTTP/1.1
 * one in the same server block), the test's certificate; then `edits`.
 */
function site({ ports, hubPort, cert, key, edits = [] }) {
  return edit(docBlock('nginx-site'), [
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${hubPort};`],
    ['    listen 80;\n    listen [::]:80;\n', `    listen 127.0.0.1:${ports.redirect};\n`],
    ['    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n',
      `    listen 127.0.0.1:${ports.tls} ssl http2;\n    listen 127.0.0.1:${ports.plain};\n`],
    ['/etc/letsencrypt/live/hub.example.com/fullchain.pem', cert],
    ['/etc/letsencrypt/live/hub.example.com/privkey.pem', key],
    ...edits,
  ]);
}

/**
 * A hub (key, anonymous subscribers, durable history) with --hub-url set
 * to the proxy's plain URL and nginx's address trusted, behind nginx. `proxied.restartHub(args)` brings
 * the hub back on its port and data directory (with other `args` if
 * given). Everything stops when the test ends.
 */
async function behindNginx(t, { hubArgs = [], edits = [] } = {}) {
  const ports = await proxyPorts();
  const plain = `http://127.0.0.1:${ports.plain}`;
  const tls = `https://127.0.0.1:${ports.tls}`;
  // As docs/deploy.md runs it: nginx on the hub's machine is its trusted proxy.
  const base = ['--hub-url', `${plain}${hubPath}`, '--trusted-proxy', '127.0.0.1'];
  let hub = await startHub({ key: true, args: [...base, ...hubArgs] });
  const { port, dataDir } = hub;
  const certDir = tempDir('herald-e2e-cert-');
  let nginx = null;
  t.after(async () => {
    if (nginx) await nginx.stop();
    await hub.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(certDir, { recursive: true, force: true });
  });
  const { cert, key } = selfSignedCert(certDir);
  nginx = await startNginx({ main: docBlock('nginx-main'), site: site({ ports, hubPort: port, cert, key, edits }) });
  return {
    get hub() { return hub; },
    nginx,
    ports,
    plain,
    tls,
    /** For harness.publish: publishes go through the proxy too. */
    via: { plain: { url: `${plain}${hubPath}` }, tls: { url: `${tls}${hubPath}` } },
    async restartHub(args = hubArgs) {
      hub = await startHub({ key: true, port, dataDir, args: [...base, ...args] });
      return hub;
    },
  };
}

/**
 * Like openFeed, but with the page logic docs/deploy.md describes for a
 * failure that is final (readyState CLOSED): a new EventSource after a
 * moment, resuming with the `last_event_id` query parameter.
 */
function openResumingFeed(page, url) {
  return page.evaluate((url) => {
    const feed = { opens: 0, errors: [], ids: [], urls: [], lastId: null };
    window.feed = feed;
    const connect = () => {
      const target = feed.lastId === null ? url : `${url}&last_event_id=${encodeURIComponent(feed.lastId)}`;
      feed.urls.push(target);
      const es = new EventSource(target);
      es.onopen = () => { feed.opens += 1; };
      es.onmessage = (e) => { feed.ids.push(e.lastEventId); feed.lastId = e.lastEventId; };
      es.onerror = () => {
        feed.errors.push(es.readyState);
        if (es.readyState === EventSource.CLOSED) setTimeout(connect, 500);
      };
      window.es = es;
    };
    connect();
  }, url);
}

test('over HTTP/1.1 through nginx: the page subscribes and publishes, an event arrives alone at once, limits and URLs are the public ones', async (t) => {
  // No heartbeats: after the event nothing else goes down the stream, so
  // an nginx that held it (buffering) would never let it out.
  const proxied = await behindNginx(t, { hubArgs: ['--heartbeat', '0', '--subscriptions', 'on'] });
  const { plain } = proxied;

  await withBrowser(t, async (browser) => {
    // The web UI, its assets and its stream, all through nginx.
    const page = await browser.page();
    await page.goto(`${plain}/`);
    await subscribeFromPage(page, [TOPIC]);

    const sent = Date.now();
    await publish(proxied.via.plain, { topic: TOPIC, data: 'x'.repeat(200), id: 'alone-1' });
    await page.waitForSelector('#log li.event[data-id="alone-1"]', { timeout: 5_000 });
    const latency = Date.now() - sent;
    t.diagnostic(`a 200-byte event through nginx: ${latency} ms from publish to the page`);

    // The page's own publish form, through nginx too.
    await page.fill('#pub-topics', TOPIC);
    await page.fill('#pub-data', 'from the form');
    await page.fill('#pub-id', 'form-1');
    await page.fill('#pub-token', PUBLISHER_TOKEN);
    await page.click('#publish');
    await page.waitForSelector('#log li.event[data-id="form-1"]');
    assert.deepEqual(await page.$$eval('#log li.event', (items) => items.map((li) => li.dataset.id)), ['alone-1', 'form-1']);

    // Unsubscribing closes the stream at the browser; nginx passes the
    // hang-up on and the hub's subscription ends.
    assert.equal((await hubStats(proxied.hub)).subscribers, 1);
    await page.click('#unsubscribe');
    await until(async () => (await hubStats(proxied.hub)).subscribers === 0, 'the hub to see the subscriber leave');
    assert.deepEqual(browser.consoleErrors(), []);
  });

  // Publish bodies: up to --max-body (1 MiB) they pass; just above it the
  // hub's own 413 (plain text, naming the limit) reaches the publisher,
  // since nginx's client_max_body_size (2m) is higher; above that nginx
  // refuses by itself.
  const form = (bytes) => {
    const head = `topic=${encodeURIComponent(TOPIC)}&id=big&data=`;
    return head + 'x'.repeat(bytes - head.length);
  };
  const post = (body) => request(`${plain}${hubPath}`, {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Bearer ${PUBLISHER_TOKEN}` },
  });
  const limit = 1024 * 1024;
  const fits = await post(form(limit));
  assert.equal(fits.status, 200, fits.text);
  const over = await post(form(limit + 1));
  assert.equal(over.status, 413, over.text);
  assert.match(over.headers['content-type'], /^text\/plain/);
  assert.match(over.text, /larger than the limit of 1048576 bytes/);
  const far = await post(form(2 * limit + 1));
  assert.equal(far.status, 413);
  assert.match(far.headers['content-type'], /^text\/html/, 'nginx refuses it before the hub');

  // The public URL (--hub-url) wherever the hub names itself.
  const publicUrl = `${plain}${hubPath}`;
  const metadata = await request(`${plain}/.well-known/oauth-protected-resource${hubPath}`);
  assert.equal(metadata.status, 200);
  assert.equal(JSON.parse(metadata.text).resource, publicUrl);
  const anonymous = await request(publicUrl, { method: 'POST', body: `topic=${TOPIC}`, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers['www-authenticate'], new RegExp(`resource_metadata="${plain}/\\.well-known/oauth-protected-resource/\\.well-known/mercure"`));
  const list = await request(`${plain}${hubPath}/subscriptions`, { headers: { Authorization: `Bearer ${SUBSCRIBER_TOKEN}` } });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.headers.link.startsWith(`<${publicUrl}>; rel="mercure"`), list.headers.link);

  // A draft-08 QUERY subscription (its parameters in the body): nginx
  // passes the method and its body on.
  const query = openStream(`${plain}${hubPath}`, { method: 'QUERY', body: `match=${encodeURIComponent(TOPIC)}` });
  assert.equal((await query.response).status, 200);
  await until(() => query.comments.length > 0, "the QUERY stream's opening comment");
  await publish(proxied.via.plain, { topic: TOPIC, data: 'queried', id: 'query-1' });
  await until(() => query.events.some((e) => e.id === 'query-1'), 'the event on the QUERY stream');
  query.close();

  // Metrics stay on the hub's own address; port 80 redirects to HTTPS.
  assert.equal((await request(`${plain}/metrics`)).status, 404);
  assert.equal((await request(`${proxied.hub.origin}/metrics`)).status, 200);
  const redirect = await request(`http://127.0.0.1:${proxied.ports.redirect}/anything?x=1`);
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, 'https://127.0.0.1/anything?x=1');
});

test('the control: nginx buffers events only when both its buffering and the hub\'s X-Accel-Buffering are defeated', async (t) => {
  // Heartbeats every second: the span the negative check watches.
  const hub = await startHub({ key: true, args: ['--heartbeat', '1s'] });
  t.after(async () => {
    await hub.stop('SIGKILL');
    rmSync(hub.dataDir, { recursive: true, force: true });
  });
  const certDir = tempDir('herald-e2e-cert-');
  t.after(() => rmSync(certDir, { recursive: true, force: true }));
  const { cert, key } = selfSignedCert(certDir);
  // nginx's defaults instead of the documented lines: HTTP/1.0 to the hub
  // and buffering on.
  const naive = [
    ['proxy_http_version 1.1;\n', 'proxy_http_version 1.0;\n'],
    ['    proxy_set_header Connection "";\n', ''],
    ['proxy_buffering off;', 'proxy_buffering on;'],
  ];
  const variants = [
    { name: 'documented', edits: [], holds: false },
    { name: 'buffering on, X-Accel-Buffering honoured', edits: naive, holds: false },
    { name: 'buffering on, X-Accel-Buffering ignored', edits: [...naive, ['proxy_cache off;', 'proxy_cache off;\n    proxy_ignore_headers X-Accel-Buffering;']], holds: true },
  ];
  for (const variant of variants) {
    const ports = await proxyPorts();
    const nginx = await startNginx({ main: docBlock('nginx-main'), site: site({ ports, hubPort: hub.port, cert, key, edits: variant.edits }) });
    try {
      const small = `small-${variant.name.length}`;
      // A buffering nginx holds the response head too (until the body
      // goes out): the hub's count of subscribers says both streams are on.
      const proxied = openStream(subscribeUrl(`http://127.0.0.1:${ports.plain}`));
      const direct = openStream(subscribeUrl(hub.origin));
      await until(async () => (await hubStats(hub)).subscribers === 2, 'both streams at the hub');
      await publish(hub, { topic: TOPIC, data: 'x'.repeat(200), id: small });
      await until(() => direct.events.some((e) => e.id === small), 'the small event on the direct stream');
      if (!variant.holds) {
        // Nothing follows it but heartbeats (3 bytes a second): only an
        // nginx that passes each write on lets it out.
        const event = await until(() => proxied.events.find((e) => e.id === small), `${variant.name}: the small event through nginx`, 10_000);
        assert.equal(event.data.length, 200);
        assert.equal(proxied.status, 200);
      } else {
        // Watched for two of the hub's heartbeats after the event.
        const seen = direct.comments.length;
        await until(() => direct.comments.length >= seen + 2, 'two heartbeats on the direct stream');
        assert.deepEqual(proxied.events, [], `${variant.name}: the small event is held`);
        // More than nginx's proxy_buffers (8 × 4 KiB) fills them: out goes
        // what they held, the small event first.
        const bigSent = Date.now();
        await publish(hub, { topic: TOPIC, data: 'y'.repeat(64 * 1024), id: 'big' });
        const event = await until(() => proxied.events.find((e) => e.id === small), `${variant.name}: the small event once 64 KiB follow`);
        assert.equal(proxied.events[0], event);
        assert.ok(event.at >= bigSent, 'the small event came out only after the big one was published');
        assert.equal(proxied.status, 200);
      }
      proxied.close();
      direct.close();
    } finally {
      await nginx.stop();
    }
    await until(async () => (await hubStats(hub)).subscribers === 0, 'the hub to see both streams end');
  }
});

test('a hub restart behind nginx: the browser reconnects through the proxy with Last-Event-ID and loses nothing', async (t) => {
  const proxied = await behindNginx(t);
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const answered = recordResponses(page);
    await page.goto(`${proxied.plain}/healthz`);
    await openFeed(page, subscribeUrl(''));
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');
    for (const id of ['before-1', 'before-2']) await publish(proxied.via.plain, { topic: TOPIC, data: id, id });
    await until(async () => (await feedOf(page)).ids.length === 2, 'the events before the restart');

    const hold = await holdRequests(page, isSubscribe);
    await proxied.hub.stop('SIGKILL');
    await until(async () => (await feedOf(page)).errors.length > 0, 'the page to see the stream drop');
    assert.deepEqual((await feedOf(page)).errors, [0], 'EventSource.CONNECTING: it reconnects by itself');
    await until(() => hold.held.length > 0, "the browser's reconnection request");

    await proxied.restartHub();
    for (const id of ['after-1', 'after-2']) await publish(proxied.via.plain, { topic: TOPIC, data: id, id });
    await hold.release();
    await until(async () => (await feedOf(page)).opens === 2, 'the EventSource to reconnect through nginx');
    await publish(proxied.via.plain, { topic: TOPIC, data: 'marker', id: 'marker' });
    await until(async () => (await feedOf(page)).ids.includes('marker'), 'the live marker');
    assert.deepEqual((await feedOf(page)).ids, ['before-1', 'before-2', 'after-1', 'after-2', 'marker']);

    // Last-Event-ID went through nginx to the restarted hub, which found it
    // in its durable history and says so.
    await until(() => onWire().length === 2 && answered.length === 2, 'both requests and responses');
    assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, 'before-2']);
    assert.deepEqual(answered.map((a) => [a.status, a.lastEventId]), [[200, null], [200, 'before-2']]);
  });
});

test('a hub down longer than the reconnection delay: the documented @herald_unavailable keeps the EventSource retrying until it resumes', async (t) => {
  const proxied = await behindNginx(t);
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const answered = recordResponses(page);
    await page.goto(`${proxied.plain}/healthz`);
    await openFeed(page, subscribeUrl(''));
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');
    await publish(proxied.via.plain, { topic: TOPIC, data: 'one', id: 'one' });
    await until(async () => (await feedOf(page)).ids.length === 1, 'the first event');

    await proxied.hub.stop('SIGKILL');
    // Two attempts that reached nginx while the hub was down, each answered
    // with nginx's `retry` stream instead of a 502: the EventSource opens,
    // drops and tries again, every time.
    // The page counts an open before Node hears of its response: wait for both.
    await until(async () => (await feedOf(page)).opens >= 3 && answered.length >= 3, 'two attempts answered by nginx while the hub is down', 60_000);
    const down = answered.slice(1, 3);
    assert.deepEqual(down.map((a) => [a.status, a.type, a.lastEventId]), Array(2).fill([200, 'text/event-stream', null]));
    assert.ok((await feedOf(page)).errors.every((state) => state === 0), 'never EventSource.CLOSED');

    // The hub comes back while the next attempt is held.
    const hold = await holdRequests(page, isSubscribe);
    await until(() => hold.held.length > 0, 'the next attempt');
    await proxied.restartHub();
    for (const id of ['two', 'three']) await publish(proxied.via.plain, { topic: TOPIC, data: id, id });
    const opens = (await feedOf(page)).opens;
    await hold.release();
    await until(async () => (await feedOf(page)).opens === opens + 1, 'the EventSource to reach the hub again');
    await publish(proxied.via.plain, { topic: TOPIC, data: 'marker', id: 'marker' });
    await until(async () => (await feedOf(page)).ids.includes('marker'), 'the live marker');
    assert.deepEqual((await feedOf(page)).ids, ['one', 'two', 'three', 'marker']);

    // Every attempt carried the id of the last event received; the hub
    // answered the last one from its history.
    const attempts = onWire();
    assert.ok(attempts.length >= 4);
    assert.deepEqual(attempts.slice(1).map((h) => h['last-event-id']), Array(attempts.length - 1).fill('one'));
    await until(() => answered.length === attempts.length, 'a response to every attempt');
    assert.deepEqual(answered.at(-1), { status: 200, type: 'text/event-stream', lastEventId: 'one' });
    assert.ok((await feedOf(page)).errors.every((state) => state === 0), 'never EventSource.CLOSED');
  });
});

test('without it, nginx\'s 502 ends the EventSource for good (HTML standard), and only page logic that re-creates it resumes', async (t) => {
  const proxied = await behindNginx(t, { edits: [['        error_page 502 504 = @herald_unavailable;\n', '']] });
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const answered = recordResponses(page);
    await page.goto(`${proxied.plain}/healthz`);
    await openResumingFeed(page, subscribeUrl(''));
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');
    await publish(proxied.via.plain, { topic: TOPIC, data: 'one', id: 'one' });
    await until(async () => (await feedOf(page)).ids.length === 1, 'the first event');

    await proxied.hub.stop('SIGKILL');
    // The browser's own reconnection meets nginx's 502: readyState CLOSED,
    // and that EventSource never tries again.
    await until(async () => (await feedOf(page)).errors.includes(2), 'the EventSource to fail for good');
    assert.deepEqual((await feedOf(page)).errors.slice(0, 2), [0, 2]);
    await until(() => answered.length >= 2, 'the 502');
    assert.equal(answered[1].status, 502);

    // The page's own new EventSource, held until the hub is back.
    const hold = await holdRequests(page, isSubscribe);
    await until(() => hold.held.length > 0, "the page's new EventSource");
    await proxied.restartHub();
    for (const id of ['two', 'three']) await publish(proxied.via.plain, { topic: TOPIC, data: id, id });
    await hold.release();
    await until(async () => (await feedOf(page)).opens === 2, 'the new EventSource to open');
    await publish(proxied.via.plain, { topic: TOPIC, data: 'marker', id: 'marker' });
    await until(async () => (await feedOf(page)).ids.includes('marker'), 'the live marker');
    assert.deepEqual((await feedOf(page)).ids, ['one', 'two', 'three', 'marker']);
    const feed = await feedOf(page);
    assert.match(feed.urls.at(-1), /&last_event_id=one$/, 'it resumed from the last id it had');
    assert.equal(answered.at(-1).status, 200);
  });
});

test('over HTTPS nginx speaks HTTP/2 to the browser: ten EventSources on one connection, and the __Secure- cookie reaches the hub', async (t) => {
  const proxied = await behindNginx(t);
  const token = mint({ mercure: { subscribe: [TOPIC] } });
  await withBrowser(t, { ignoreHTTPSErrors: true }, async (browser) => {
    // The draft-08 cookie: the browser keeps and sends it over HTTPS only;
    // nginx passes it on to the hub over plain HTTP.
    await browser.context.addCookies([{
      name: '__Secure-mercure_access_token', value: token, domain: '127.0.0.1', path: hubPath,
      secure: true, httpOnly: true, sameSite: 'Strict',
    }]);
    const page = await browser.page();
    const protocols = await recordProtocols(browser, page);
    await page.goto(`${proxied.tls}/healthz`);
    assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');

    // More than the six an HTTP/1.1 origin allows.
    const n = 10;
    await page.evaluate(({ n, url }) => {
      window.sources = [];
      for (let i = 0; i < n; i++) {
        const es = new EventSource(url);
        const entry = { es, ids: [] };
        es.onmessage = (e) => entry.ids.push(e.lastEventId);
        window.sources.push(entry);
      }
    }, { n, url: subscribeUrl('') });
    await until(async () => (await page.evaluate(() => window.sources.every((s) => s.es.readyState === 1))), `all ${n} EventSources open`);
    await until(() => protocols.length === n, 'a response for every EventSource');
    assert.deepEqual([...protocols], Array(n).fill('h2'));
    assert.equal(protocols.connections.size, 1, 'one connection carries them all');

    // Private first: only the cookie can let it through to these pages.
    await publish(proxied.via.tls, { topic: TOPIC, data: 'secret', id: 'private-1', private: 'on' });
    await publish(proxied.via.tls, { topic: TOPIC, data: 'news', id: 'public-1' });
    await until(async () => (await page.evaluate(() => window.sources.every((s) => s.ids.length === 2))), 'both updates on every EventSource');
    assert.deepEqual(await page.evaluate(() => window.sources.map((s) => s.ids)), Array(n).fill(['private-1', 'public-1']));
  });
});

test('heartbeats keep an idle stream open through nginx past proxy_read_timeout; without them nginx cuts it', async (t) => {
  // The documented ratio (40 s heartbeat, 2 min read timeout) scaled down.
  const proxied = await behindNginx(t, {
    hubArgs: ['--heartbeat', '1s'],
    edits: [['proxy_read_timeout 2m;', 'proxy_read_timeout 3s;']],
  });
  const alive = await openStream(subscribeUrl(proxied.plain)).response;
  assert.equal(alive.status, 200);
  const opened = Date.now();
  await until(() => alive.comments.length >= 5, 'five heartbeats through nginx');
  assert.ok(Date.now() - opened > 3_000, 'longer than proxy_read_timeout');
  assert.equal(alive.endedAt, null, 'the stream is still open');
  alive.close();

  await proxied.hub.stop('SIGTERM');
  await proxied.restartHub(['--heartbeat', '0']);
  const silent = await openStream(subscribeUrl(proxied.plain)).response;
  assert.equal(silent.status, 200);
  const start = Date.now();
  const ended = await until(() => silent.endedAt, 'nginx to cut the silent stream', 30_000);
  t.diagnostic(`a silent stream was cut after ${ended - start} ms`);
  assert.ok(ended - start >= 2_000, 'not before proxy_read_timeout');
  assert.deepEqual(silent.events, []);
  assert.equal(silent.comments.length, 1, "the hub's opening comment, and no heartbeat");
  await until(() => /upstream timed out/.test(proxied.nginx.log()), 'nginx to log the read timeout');
});

test('docs/deploy.md\'s systemd unit passes systemd-analyze verify', (t) => {
  const dir = tempDir('herald-e2e-unit-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The built binary where the unit expects /usr/local/bin/herald (verify
  // checks that the command exists and is executable).
  const unit = edit(docBlock('systemd-unit'), [['ExecStart=/usr/local/bin/herald serve', `ExecStart=${HERALD} serve`]]);
  const file = path.join(dir, 'herald.service');
  writeFileSync(file, unit);
  const verified = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  if (verified.error) throw new Error(`systemd-analyze is needed (Debian's systemd package): ${verified.error.message}`);
  assert.equal(verified.status, 0, verified.stderr);
  assert.equal(verified.stderr.trim(), '', 'no warning');
});

// Scenario 12: the hub behind Caddy (Debian's caddy package), configured
// with docs/deploy.md's Caddyfile (read out of the page: e2e/lib/proxy.js),
// in a real Chromium. The test puts global options first (no admin
// endpoint, no redirects, no change to the system's trust store), serves
// the site on two 127.0.0.1 addresses instead of hub.example.com (plain
// HTTP/1.1, and HTTPS with Caddy's internal CA) and points it at the
// test's hub; a test that needs another line says which it changes.
//
// Checked through Caddy: the page and an event arriving alone at once,
// publish body limits, the metrics kept off the public side, HTTP/2 over
// HTTPS, and a hub restart that lb_try_duration rides out: the browser's
// reconnection waits in Caddy and resumes with Last-Event-ID.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import {
  PUBLISHER_TOKEN, eventSourceHeaders, hubStats, publish, startHub, subscribeFromPage, until, withBrowser,
} from '../lib/harness.js';
import {
  docBlock, edit, feedOf, freePort, openFeed, recordProtocols, recordResponses, request, startCaddy,
} from '../lib/proxy.js';

const TOPIC = 'https://example.com/e2e/caddy';
const hubPath = '/.well-known/mercure';
const subscribeUrl = (base) => `${base}${hubPath}?match=${encodeURIComponent(TOPIC)}`;

/**
 * A hub (key, anonymous subscribers, durable history, --hub-url the plain
 * URL through Caddy) behind Caddy; `proxied.restartHub()` brings it back on
 * its port and data directory. `edits` change the documented Caddyfile.
 */
async function behindCaddy(t, { hubArgs = [], edits = [] } = {}) {
  let ports;
  do ports = { plain: await freePort(), tls: await freePort() }; while (ports.plain === ports.tls);
  const plain = `http://127.0.0.1:${ports.plain}`;
  const tls = `https://127.0.0.1:${ports.tls}`;
  const args = ['--hub-url', `${plain}${hubPath}`, ...hubArgs];
  let hub = await startHub({ key: true, args });
  const { port, dataDir } = hub;
  let caddy = null;
  t.after(async () => {
    if (caddy) await caddy.stop();
    await hub.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  const global = '{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n}\n\n';
  const caddyfile = global + edit(docBlock('caddyfile'), [
    ['hub.example.com {\n', `${plain}, ${tls} {\n\ttls internal\n`],
    ['reverse_proxy 127.0.0.1:8080 {', `reverse_proxy 127.0.0.1:${port} {`],
    ...edits,
  ]);
  caddy = await startCaddy({ caddyfile });
  return {
    get hub() { return hub; },
    caddy,
    plain,
    tls,
    via: { plain: { url: `${plain}${hubPath}` }, tls: { url: `${tls}${hubPath}` } },
    async restartHub() {
      hub = await startHub({ key: true, port, dataDir, args });
      return hub;
    },
  };
}

test('over HTTP/1.1 through Caddy: the page subscribes, an event arrives alone at once, body limits and metrics as documented', async (t) => {
  const proxied = await behindCaddy(t, { hubArgs: ['--heartbeat', '0'] });
  const { plain } = proxied;
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${plain}/`);
    await subscribeFromPage(page, [TOPIC]);
    // No heartbeats: nothing follows the event that could push it out of a buffer.
    const sent = Date.now();
    await publish(proxied.via.plain, { topic: TOPIC, data: 'x'.repeat(200), id: 'alone-1' });
    await page.waitForSelector('#log li.event[data-id="alone-1"]', { timeout: 5_000 });
    t.diagnostic(`a 200-byte event through Caddy: ${Date.now() - sent} ms from publish to the page`);
    assert.deepEqual(browser.consoleErrors(), []);
  });

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
  assert.equal((await post(form(limit))).status, 200);
  const over = await post(form(limit + 1));
  assert.equal(over.status, 413, over.text);
  assert.match(over.text, /larger than the limit of 1048576 bytes/, "the hub's own 413");
  // Over request_body's max_size Caddy refuses the body itself, before the
  // hub: Caddy 2.6 (Debian 12) with a 502, later versions with a 413.
  const far = await post(form(2 * limit + 1));
  assert.ok([413, 502].includes(far.status), `${far.status} ${far.text}`);
  assert.doesNotMatch(far.text, /larger than the limit/, 'not the hub');

  assert.equal((await request(`${plain}/metrics`)).status, 404);
  assert.equal((await request(`${proxied.hub.origin}/metrics`)).status, 200);
  const metadata = await request(`${plain}/.well-known/oauth-protected-resource${hubPath}`);
  assert.equal(JSON.parse(metadata.text).resource, `${plain}${hubPath}`);
});

test('a page that leaves is seen by the hub at its next heartbeats, when Caddy writes to the closed connection', async (t) => {
  // Caddy 2.6 passes a browser's hang-up on to the hub only when it next
  // writes to the browser: with heartbeats off the hub would keep the
  // subscription (docs/deploy.md says so). A heartbeat a second here.
  const proxied = await behindCaddy(t, { hubArgs: ['--heartbeat', '1s'] });
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${proxied.plain}/`);
    await subscribeFromPage(page, [TOPIC]);
    assert.equal((await hubStats(proxied.hub)).subscribers, 1);
    await page.click('#unsubscribe');
    const left = Date.now();
    await until(async () => (await hubStats(proxied.hub)).subscribers === 0, 'the hub to see the subscriber leave');
    t.diagnostic(`the hub saw the page leave ${Date.now() - left} ms after it closed its EventSource`);
  });
});

test('over HTTPS Caddy speaks HTTP/2 to the browser: ten EventSources on one connection', async (t) => {
  const proxied = await behindCaddy(t);
  await withBrowser(t, { ignoreHTTPSErrors: true }, async (browser) => {
    const page = await browser.page();
    const protocols = await recordProtocols(browser, page);
    await page.goto(`${proxied.tls}/healthz`);
    assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
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
    await publish(proxied.via.tls, { topic: TOPIC, data: 'news', id: 'h2-1' });
    await until(async () => (await page.evaluate(() => window.sources.every((s) => s.ids.length === 1))), 'the event on every EventSource');
  });
});

test('a hub restart behind Caddy: the reconnection waits in Caddy (lb_try_duration) and resumes with Last-Event-ID', async (t) => {
  // 30 s instead of the documented 10 s: the hub's restart must fit in it,
  // and a loaded test machine is slower to start a process than a server.
  const proxied = await behindCaddy(t, { edits: [['lb_try_duration 10s', 'lb_try_duration 30s']] });
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
    // The browser's reconnection is on its way to Caddy, which cannot reach
    // the hub and keeps trying.
    await until(() => onWire().length === 2, "the browser's reconnection request");
    await proxied.restartHub();
    await until(async () => (await feedOf(page)).opens === 2, 'the reconnection to be answered by the restarted hub');
    for (const id of ['two', 'three']) await publish(proxied.via.plain, { topic: TOPIC, data: id, id });
    await until(async () => (await feedOf(page)).ids.length === 3, 'the events after the restart');
    assert.deepEqual((await feedOf(page)).ids, ['one', 'two', 'three']);
    assert.deepEqual((await feedOf(page)).errors, [0], 'one drop, and the reconnection was not refused');
    assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, 'one']);
    await until(() => answered.length === 2, 'both responses');
    assert.deepEqual(answered.map((a) => [a.status, a.lastEventId]), [[200, null], [200, 'one']]);
  });
});

// Scenario 3: over HTTPS (self-signed) 20 EventSources in one page on one
// origin all open and all receive every event, over HTTP/2; the same 20 over
// plain HTTP/1.1 hit the browser's 6-connections-per-origin limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, publish, startHub, until, withBrowser } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/h2';
const SOURCES = 20;

/** Opens `n` EventSources in the page; the page tracks their state. */
function openSources(page, n) {
  return page.evaluate(({ n, topic }) => {
    const url = `/.well-known/mercure?topic=${encodeURIComponent(topic)}`;
    window.sources = [];
    for (let i = 0; i < n; i++) {
      const es = new EventSource(url);
      const entry = { es, ids: [] };
      es.onmessage = (e) => entry.ids.push(e.lastEventId);
      window.sources.push(entry);
    }
  }, { n, topic: TOPIC });
}

const states = (page) => page.evaluate(() => window.sources.map((s) => s.es.readyState));
const received = (page) => page.evaluate(() => window.sources.map((s) => s.ids));

/** Records the protocol of every EventSource response, from CDP. */
async function recordProtocols(browser, page) {
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

test('20 EventSources share one HTTP/2 connection over HTTPS and all receive every event', async (t) => {
  const hub = await startHub({ key: true, tls: true });
  cleanup(t, hub);
  await withBrowser(t, { ignoreHTTPSErrors: true }, async (browser) => {
    const page = await browser.page();
    const protocols = await recordProtocols(browser, page);
    await page.goto(`${hub.origin}/healthz`);
    await openSources(page, SOURCES);
    await until(async () => (await states(page)).every((s) => s === 1), `all ${SOURCES} EventSources open`);
    await until(() => protocols.length === SOURCES, 'a response for every EventSource');
    assert.deepEqual([...protocols], Array(SOURCES).fill('h2'));
    assert.equal(protocols.connections.size, 1, 'one connection carries them all');

    const ids = ['h2-1', 'h2-2', 'h2-3'];
    for (const id of ids) await publish(hub, { topic: TOPIC, data: id, id });
    await until(async () => (await received(page)).every((r) => r.length === ids.length), 'every event on every EventSource');
    assert.deepEqual(await received(page), Array(SOURCES).fill(ids));

    // The page itself was loaded over h2 as well.
    const documentProtocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    assert.equal(documentProtocol, 'h2');
  });
});

test('the same 20 EventSources over HTTP/1.1 stop at 6 open connections', async (t) => {
  const hub = await startHub({ key: true });
  cleanup(t, hub);
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const protocols = await recordProtocols(browser, page);
    await page.goto(`${hub.origin}/healthz`);
    await openSources(page, SOURCES);
    await until(async () => (await states(page)).filter((s) => s === 1).length === 6, '6 EventSources open');
    await until(() => protocols.length === 6, 'a response for each open EventSource');
    assert.deepEqual([...protocols], Array(6).fill('http/1.1'));
    assert.equal(protocols.connections.size, 6, 'one connection each');

    // An event the open ones receive: the other 14 are still waiting for a
    // connection (the browser opens one only when another is freed), so
    // they have none to receive it on.
    await publish(hub, { topic: TOPIC, data: 'one', id: 'h1-1' });
    await until(async () => (await received(page)).filter((r) => r.length === 1).length === 6, 'the event on the 6 open ones');
    const now = await states(page);
    assert.equal(now.filter((s) => s === 1).length, 6, `states: ${now}`);
    assert.equal(now.filter((s) => s === 0).length, SOURCES - 6, 'the rest wait, connecting');
    const got = await received(page);
    assert.equal(got.filter((r) => r.length === 0).length, SOURCES - 6, 'the waiting ones received nothing');
    assert.equal(protocols.length, 6, 'no other EventSource got a response');

    // Closing one frees its connection, and exactly then one waiting
    // EventSource gets it: they were queued behind the limit of 6.
    const first = now.indexOf(1);
    await page.evaluate((i) => window.sources[i].es.close(), first);
    await until(() => protocols.length === 7, 'a response for the next waiting EventSource');
    await until(async () => (await states(page)).filter((s) => s === 1).length === 6, '6 EventSources open again');
    const later = await states(page);
    assert.equal(later[first], 2, 'the closed one is CLOSED');
    assert.equal(later.filter((s) => s === 0).length, SOURCES - 7, 'one fewer waits');
  });
});

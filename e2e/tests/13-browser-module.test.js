// Scenario 13: the browser module (/herald.js, crates/herald-hub/web/eventsource/) in
// Chromium against the real hub, where a native EventSource gives up for
// good: a hub that answers 503 for a while, a token that expires (401 on
// the browser's own reconnection), and a resume position history no longer
// holds. Each time, every update reaches the page once, in order.
//
// As in scenarios 2 and 7, the browser's own reconnection is held
// (Playwright's request interception) until the hub is in the state the
// test needs, so nothing depends on Chromium's reconnection delay; the
// module's backoff is set to milliseconds so its retries come quickly.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, mint, publish, startHub, until, withBrowser, holdRequests } from '../lib/harness.js';

const isSubscribe = (url) => new URL(url).pathname === '/.well-known/mercure';
const FAST = { initial: 50, max: 400 };

/**
 * Imports the module in `page` (from `moduleUrl`) and opens a
 * HeraldEventSource on `hub` with `options`, as window.feed: opens, errors
 * (readyState at each), every event in order (lostevents included), the
 * module's reconnection attempts, and the token callback's calls. `tokens`
 * are handed out one per call, the last one again once they run out.
 */
function openFeed(page, { moduleUrl = '/herald.js', hub = '/.well-known/mercure', options, tokens }) {
  return page.evaluate(async ({ moduleUrl, hub, options, tokens }) => {
    const { HeraldEventSource } = await import(moduleUrl);
    const feed = { opens: 0, errors: [], events: [], reconnecting: [], tokenCalls: 0 };
    window.feed = feed;
    if (tokens) {
      options.token = async () => {
        feed.tokenCalls += 1;
        // Asynchronous, as a fetch from the application's server would be.
        await new Promise((resolve) => setTimeout(resolve, 10));
        return tokens.length > 1 ? tokens.shift() : tokens[0];
      };
    }
    const es = new HeraldEventSource(hub, options);
    es.onopen = () => { feed.opens += 1; };
    es.onerror = () => { feed.errors.push(es.readyState); };
    es.onmessage = (e) => feed.events.push({ id: e.lastEventId, data: e.data });
    es.onlostevents = (e) => feed.events.push({ lost: { requested: e.requested, earliest: e.earliest } });
    // The signal is the module's: a page listening to `mercure` too does
    // not get it twice.
    es.addEventListener('mercure', (e) => feed.events.push({ mercure: e.data }));
    es.addEventListener('reconnecting', (e) => feed.reconnecting.push({ attempt: e.attempt, delay: e.delay }));
    window.es = es;
  }, { moduleUrl, hub, options, tokens });
}

const feedOf = (page) => page.evaluate(() => ({ ...window.feed, lastEventId: window.es.lastEventId, readyState: window.es.readyState }));
const ids = (feed) => feed.events.map((e) => e.id ?? e);

/**
 * Records each subscribe request as it went out and how it was answered:
 * its query parameters, its status (once answered).
 */
function recordSubscribes(page) {
  const requests = [];
  page.on('request', (request) => {
    if (isSubscribe(request.url())) {
      requests.push({ request, query: Object.fromEntries(new URL(request.url()).searchParams), status: null });
    }
  });
  page.on('response', (response) => {
    const entry = requests.find((r) => r.request === response.request());
    if (entry) entry.status = response.status();
  });
  return () => requests.map(({ query, status }) => ({ query, status }));
}

/**
 * A subscriber from node that holds one of the hub's --max-subscribers
 * places while it is open. Resolves once the hub answered 200.
 */
function occupy(hub) {
  return new Promise((resolve, reject) => {
    const request = http.get(`${hub.url}?topic=${encodeURIComponent('https://example.com/e2e/occupier')}`,
      { headers: { Accept: 'text/event-stream' } }, (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`the occupier got ${response.statusCode}`));
          return;
        }
        resolve({ release: () => request.destroy() });
      });
    request.on('error', (error) => { if (!request.destroyed) reject(error); });
  });
}

test('a hub at capacity answers 503 for a while: the module retries with backoff and resumes from its last event id, nothing lost', async (t) => {
  const TOPIC = 'https://example.com/e2e/module-503';
  const capacity = ['--max-subscribers', '1'];
  let hub = await startHub({ key: true, args: capacity });
  const { port, dataDir } = hub;
  let restarted = null;
  let occupier = null;
  cleanup(t, {
    stop: async () => { occupier?.release(); await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); },
    dataDir,
  });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const subscribes = recordSubscribes(page);
    await page.goto(`${hub.origin}/healthz`);
    await openFeed(page, { options: { topics: [TOPIC], backoff: FAST } });
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');
    for (const id of ['a-1', 'a-2']) await publish(hub, { topic: TOPIC, data: `data ${id}`, id });
    await until(async () => (await feedOf(page)).events.length === 2, 'the first updates');

    // From the kill on, subscribe requests wait here until released.
    const hold = await holdRequests(page, isSubscribe);
    await hub.stop('SIGKILL');
    await until(async () => (await feedOf(page)).errors.length > 0, 'the page to see the stream drop');
    await until(() => hold.held.length > 0, "the browser's own reconnection request");

    // Back, but full: the one place is taken before the browser is let
    // through, and updates are published meanwhile.
    restarted = await startHub({ key: true, port, dataDir, args: capacity });
    hub = restarted;
    occupier = await occupy(hub);
    for (const id of ['b-1', 'b-2']) await publish(hub, { topic: TOPIC, data: `data ${id}`, id });
    // While the browser retried by itself, the module opened nothing.
    assert.equal(hold.held.length, 1, 'one reconnection: the browser\'s own');
    assert.deepEqual((await feedOf(page)).reconnecting, []);

    await hold.release();
    // The browser's reconnection gets a 503 and gives up; the module
    // retries, and gets 503s until a place frees.
    await until(() => subscribes().filter((s) => s.status === 503).length >= 3, 'three 503s');
    await publish(hub, { topic: TOPIC, data: 'data b-3', id: 'b-3' });
    const refused = await feedOf(page);
    assert.equal(refused.readyState, 0, 'CONNECTING while the hub refuses');
    assert.deepEqual(ids(refused), ['a-1', 'a-2']);
    occupier.release();
    occupier = null;

    await until(async () => (await feedOf(page)).opens === 2, 'the module to get in');
    await publish(hub, { topic: TOPIC, data: 'data c-1', id: 'c-1' });
    await until(async () => (await feedOf(page)).events.some((e) => e.id === 'c-1'), 'the live marker');
    const feed = await feedOf(page);
    assert.deepEqual(ids(feed), ['a-1', 'a-2', 'b-1', 'b-2', 'b-3', 'c-1'], 'every update once, in order');
    assert.equal(feed.lastEventId, 'c-1');
    assert.equal(feed.readyState, 1);

    // Backoff: attempts counted from the browser's give-up, each delay
    // within its ceiling (50 ms doubling, at most 400).
    assert.ok(feed.reconnecting.length >= 3, JSON.stringify(feed.reconnecting));
    feed.reconnecting.forEach(({ attempt, delay }, i) => {
      assert.equal(attempt, i + 1);
      assert.ok(delay >= 0 && delay < Math.min(400, 50 * 2 ** i), `attempt ${attempt}: ${delay} ms`);
    });

    // On the wire: the first request; the browser's own reconnection (the
    // same URL, Last-Event-ID a-2), refused; the module's, with a-2 in the
    // query, refused until the last one.
    const all = subscribes();
    const base = { topic: TOPIC, lost_events: '1' };
    assert.deepEqual(all[0], { query: base, status: 200 });
    assert.deepEqual(all[1], { query: base, status: 503 });
    for (const s of all.slice(2, -1)) assert.deepEqual(s, { query: { ...base, lastEventID: 'a-2' }, status: 503 });
    assert.deepEqual(all.at(-1), { query: { ...base, lastEventID: 'a-2' }, status: 200 });
    await until(() => onWire().length >= 2, 'the headers on the wire');
    assert.deepEqual(onWire().slice(0, 2).map((h) => h['last-event-id'] ?? null), [null, 'a-2']);
  });
});

test('a token expires: the browser gets a 401, the module asks the page for a fresh one and resumes, nothing lost', async (t) => {
  const TOPIC = 'https://example.com/e2e/module-expiry';
  // Long enough for the page to open its stream and receive one event on
  // a loaded machine, short enough to wait for.
  const LIFETIME_S = 10;
  const hub = await startHub({ key: true, anonymous: false });
  cleanup(t, hub);
  const scope = { mercure: { subscribe: [TOPIC] } };
  const fresh = mint({ ...scope, exp: Math.floor(Date.now() / 1000) + 3600 });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const subscribes = recordSubscribes(page);
    await page.goto(`${hub.origin}/healthz`);
    const exp = Math.ceil(Date.now() / 1000) + LIFETIME_S;
    const shortLived = mint({ ...scope, exp });
    await openFeed(page, { options: { topics: [TOPIC], backoff: FAST }, tokens: [shortLived, fresh] });
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');
    await publish(hub, { topic: TOPIC, data: 'before expiry', id: 'private-1', private: 'on' });
    await until(async () => (await feedOf(page)).events.length === 1, 'the private update before expiry');
    assert.deepEqual((await feedOf(page)).errors, [], 'private-1 arrived before the token expired (raise LIFETIME_S if not)');

    // From here on, subscribe requests wait until released.
    const hold = await holdRequests(page, isSubscribe);
    // The hub ends the stream at exp; the browser reconnects by itself
    // with the URL it has, stale token included.
    await until(async () => (await feedOf(page)).errors.length > 0, 'the stream to end at the token\'s exp', (LIFETIME_S + 30) * 1000);
    await until(() => hold.held.length > 0, "the browser's own reconnection request");
    await publish(hub, { topic: TOPIC, data: 'while away', id: 'private-2', private: 'on' });

    await hold.release();
    await until(async () => (await feedOf(page)).opens === 2, 'the module to reconnect with a fresh token');
    await publish(hub, { topic: TOPIC, data: 'after', id: 'private-3', private: 'on' });
    await until(async () => (await feedOf(page)).events.length >= 3, 'the live update after the reconnection');
    const feed = await feedOf(page);
    assert.deepEqual(ids(feed), ['private-1', 'private-2', 'private-3']);
    assert.equal(feed.tokenCalls, 2, 'one token per connection the module opened');
    assert.equal(feed.reconnecting.length, 1, 'one attempt was enough');

    // On the wire: the short-lived token; the browser's retry with it and
    // Last-Event-ID, refused with 401; the module's with the fresh token
    // and the id in the query.
    const base = { topic: TOPIC, lost_events: '1' };
    assert.deepEqual(subscribes(), [
      { query: { ...base, authorization: shortLived }, status: 200 },
      { query: { ...base, authorization: shortLived }, status: 401 },
      { query: { ...base, lastEventID: 'private-1', authorization: fresh }, status: 200 },
    ]);
    await until(() => onWire().length >= 3, 'the headers on the wire');
    assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, 'private-1', null]);
  });
});

/** A page on its own origin that imports the module from the hub. */
async function startApp(t) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><meta charset="utf-8"><title>app</title>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

test('a page on another origin imports the module from the hub and is told of lost events before the replay', async (t) => {
  const TOPIC = 'https://example.com/e2e/module-lost';
  const app = await startApp(t);
  const hub = await startHub({ key: true, args: ['--history-size', '3', '--cors-origin', app] });
  cleanup(t, hub);
  for (let i = 0; i < 6; i += 1) await publish(hub, { topic: TOPIC, data: `update ${i}`, id: `lost-${i}` });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const subscribes = recordSubscribes(page);
    const moduleUrl = `${hub.origin}/herald.js`;
    const served = page.waitForResponse(moduleUrl);
    await page.goto(`${app}/`);
    await openFeed(page, { moduleUrl, hub: hub.url, options: { match: [TOPIC], lastEventId: 'lost-0', backoff: FAST } });
    const response = await served;
    assert.equal(response.status(), 200);
    assert.equal(await response.headerValue('content-type'), 'text/javascript; charset=utf-8');

    await until(async () => (await feedOf(page)).events.some((e) => e.id === 'lost-5'), 'the replay');
    await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker' });
    await until(async () => (await feedOf(page)).events.some((e) => e.id === 'marker'), 'the live marker');
    const feed = await feedOf(page);
    assert.deepEqual(feed.events, [
      { lost: { requested: 'lost-0', earliest: 'lost-3' } },
      { id: 'lost-3', data: 'update 3' },
      { id: 'lost-4', data: 'update 4' },
      { id: 'lost-5', data: 'update 5' },
      { id: 'marker', data: 'marker' },
    ]);
    assert.equal(feed.lastEventId, 'marker');
    // A match subscription resumes with draft-08's spelling.
    assert.deepEqual(subscribes(), [{ query: { match: TOPIC, lost_events: '1', last_event_id: 'lost-0' }, status: 200 }]);
  });
});

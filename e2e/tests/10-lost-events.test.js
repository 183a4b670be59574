// Scenario 10: a browser learns that events were lost. A native
// EventSource cannot read the `earliest` the hub answers in its response
// headers when history no longer holds the resume id; with `lost_events=1`
// the hub also sends an event of its reserved type `mercure`, before the
// replay, which the page reads with addEventListener: `requested` (the id
// it resumed from) and `earliest` (the first event replayed to it). The
// hubs keep 3 events (`--history-size 3`) and more are published, so the
// resume id is evicted.
//
// First from a URL (draft-08's `last_event_id`, as an application passes
// the id it got at discovery), then on the browser's own reconnection
// (draft-07's `topic`, `Last-Event-ID` header): as in scenario 2, that
// request is held (Playwright's request interception) until the restarted
// hub has evicted the id. The signal carries no `id`, so the browser's last
// event id stays the one it sent.
//
// Last, the hub's own live page, which asks for the signal on every
// subscription and shows it as a line of its log.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, loggedIds, publish, startHub, subscribeFromPage, until, withBrowser, holdRequests } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/lost-events';
const SMALL_HISTORY = ['--history-size', '3'];
const isSubscribe = (url) => new URL(url).pathname === '/.well-known/mercure';

/**
 * Opens an EventSource in `page` at `url` as window.feeds[name]: opens,
 * errors (readyState at each), and every event in order, the signal
 * (type `mercure`, through addEventListener) and messages alike.
 */
function openFeed(page, name, url) {
  return page.evaluate(({ name, url }) => {
    const feed = { opens: 0, errors: [], events: [] };
    window.feeds = window.feeds ?? {};
    window.feeds[name] = feed;
    const es = new EventSource(url);
    const record = (e) => feed.events.push({ type: e.type, lastEventId: e.lastEventId, data: e.data });
    es.onopen = () => { feed.opens += 1; };
    es.onerror = () => { feed.errors.push(es.readyState); };
    es.onmessage = record;
    es.addEventListener('mercure', (e) => {
      // What an application does with it: read both ids.
      const { type, requested, earliest } = JSON.parse(e.data);
      feed.events.push({ type: e.type, lastEventId: e.lastEventId, signal: { type, requested, earliest } });
    });
  }, { name, url });
}

const feedOf = (page, name) => page.evaluate((name) => window.feeds[name], name);

test('a page resuming from an evicted id in its URL is sent events_lost first, then the replay', async (t) => {
  const hub = await startHub({ key: true, args: SMALL_HISTORY });
  cleanup(t, hub);
  for (let i = 0; i < 6; i += 1) await publish(hub, { topic: TOPIC, data: `update ${i}`, id: `lost-${i}` });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${hub.origin}/healthz`);
    const match = encodeURIComponent(TOPIC);
    await openFeed(page, 'opted', `/.well-known/mercure?match=${match}&lost_events=1&last_event_id=lost-0`);
    await openFeed(page, 'plain', `/.well-known/mercure?match=${match}&last_event_id=lost-0`);
    for (const name of ['opted', 'plain']) {
      await until(async () => (await feedOf(page, name)).events.some((e) => e.lastEventId === 'lost-5'), `${name}: the replay`);
    }

    const replayed = ['lost-3', 'lost-4', 'lost-5'].map((id, i) => ({ type: 'message', lastEventId: id, data: `update ${i + 3}` }));
    assert.deepEqual((await feedOf(page, 'opted')).events, [
      // The browser had no id of its own yet: the one in the URL is the
      // application's, so the signal's lastEventId is empty.
      { type: 'mercure', lastEventId: '', signal: { type: 'events_lost', requested: 'lost-0', earliest: 'lost-3' } },
      ...replayed,
    ]);
    // A live marker: a late signal, or anything else, would be in before it.
    await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker' });
    const marker = { type: 'message', lastEventId: 'marker', data: 'marker' };
    for (const name of ['opted', 'plain']) {
      await until(async () => (await feedOf(page, name)).events.some((e) => e.lastEventId === 'marker'), `${name}: the marker`);
    }
    assert.equal((await feedOf(page, 'opted')).events.length, 5);
    assert.deepEqual((await feedOf(page, 'plain')).events, [...replayed, marker], 'no signal without lost_events=1');
  });
});

test("on the browser's own reconnection from an evicted id, events_lost names it and leaves the browser's last event id alone", async (t) => {
  let hub = await startHub({ key: true, args: SMALL_HISTORY });
  const { port, dataDir } = hub;
  let restarted = null;
  cleanup(t, { stop: async () => { await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); }, dataDir });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const answered = [];
    page.on('response', async (response) => {
      if (isSubscribe(response.url()) && response.request().method() === 'GET') {
        answered.push({ status: response.status(), lastEventId: (await response.allHeaders())['last-event-id'] ?? null });
      }
    });
    await page.goto(`${hub.origin}/healthz`);
    await openFeed(page, 'feed', `/.well-known/mercure?topic=${encodeURIComponent(TOPIC)}&lost_events=1`);
    await until(async () => (await feedOf(page, 'feed')).opens === 1, 'the stream to open');
    await publish(hub, { topic: TOPIC, data: 'seen', id: 'seen-1' });
    await until(async () => (await feedOf(page, 'feed')).events.length === 1, 'the first update');

    // From the kill on, subscribe requests wait here until released.
    const hold = await holdRequests(page, isSubscribe);
    await hub.stop('SIGKILL');
    await until(async () => (await feedOf(page, 'feed')).errors.length > 0, 'the page to see the stream drop');
    await until(() => hold.held.length > 0, "the browser's reconnection request");

    // While the browser is away, more than history holds: seen-1 goes.
    restarted = await startHub({ key: true, port, dataDir, args: SMALL_HISTORY });
    hub = restarted;
    for (let i = 1; i <= 4; i += 1) await publish(hub, { topic: TOPIC, data: `missed or not ${i}`, id: `after-${i}` });

    await hold.release();
    await until(async () => (await feedOf(page, 'feed')).events.some((e) => e.lastEventId === 'after-4'), 'the replay');
    assert.deepEqual((await feedOf(page, 'feed')).events, [
      { type: 'message', lastEventId: 'seen-1', data: 'seen' },
      // No id on the signal: the browser's last event id is still seen-1.
      { type: 'mercure', lastEventId: 'seen-1', signal: { type: 'events_lost', requested: 'seen-1', earliest: 'after-2' } },
      { type: 'message', lastEventId: 'after-2', data: 'missed or not 2' },
      { type: 'message', lastEventId: 'after-3', data: 'missed or not 3' },
      { type: 'message', lastEventId: 'after-4', data: 'missed or not 4' },
    ]);
    // The reconnection sent seen-1 and the hub, no longer holding it,
    // answered `earliest` in the header the page cannot read.
    await until(() => onWire().length >= 2, 'both requests on the wire');
    assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, 'seen-1']);
    await until(() => answered.length >= 2, 'both responses');
    assert.deepEqual(answered, [{ status: 200, lastEventId: null }, { status: 200, lastEventId: 'earliest' }]);
  });
});

test("the live page says so when history no longer holds the id it resumes from, and not otherwise", async (t) => {
  const hub = await startHub({ key: true, args: SMALL_HISTORY });
  cleanup(t, hub);
  for (let i = 0; i < 6; i += 1) await publish(hub, { topic: TOPIC, data: `update ${i}`, id: `lost-${i}` });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    await subscribeFromPage(page, [TOPIC], { lastEventId: 'lost-0' });
    await until(async () => (await loggedIds(page)).includes('lost-5'), 'the replay');
    const lost = await page.$$eval('#log li.system.lost', (items) => items.map((li) => ({
      requested: li.dataset.requested, earliest: li.dataset.earliest, text: li.querySelector('.text').textContent,
    })));
    assert.equal(lost.length, 1, JSON.stringify(lost));
    assert.equal(lost[0].requested, 'lost-0');
    assert.equal(lost[0].earliest, 'lost-3');
    assert.match(lost[0].text, /History no longer holds lost-0: .* The replay starts at lost-3\./);
    assert.deepEqual(await loggedIds(page), ['lost-3', 'lost-4', 'lost-5']);
    assert.match(await page.textContent('#sub-js'), /addEventListener\('mercure'/);

    // From an id history holds: the replay, and no such line.
    await page.click('#clear-log');
    await subscribeFromPage(page, [TOPIC], { lastEventId: 'lost-4' });
    await until(async () => (await loggedIds(page)).includes('lost-5'), 'the second replay');
    // A live marker: a late signal would be logged before it.
    await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker' });
    await until(async () => (await loggedIds(page)).includes('marker'), 'the marker');
    assert.deepEqual(await loggedIds(page), ['lost-5', 'marker']);
    assert.equal(await page.$$eval('#log li.system.lost', (items) => items.length), 0);
    assert.deepEqual(browser.consoleErrors(), [], 'no console errors');
  });
});

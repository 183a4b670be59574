// Scenario 15: the `reconnecting-eventsource` npm package (what many pages
// use so that an EventSource survives a 502 from a proxy during a deploy),
// the package itself, unmodified, against Herald.
//
// Once the browser's EventSource gives up (an HTTP error), the package
// builds a new one on the same URL with `lastEventId=<id>` (lower-case d)
// added to the query: a new EventSource sends no Last-Event-ID header, so
// this parameter is the only resume point the hub gets. Herald reads that
// spelling (docs/protocol.md), so nothing published in between is lost.
// The package records that id only from the events it dispatches to
// listeners added with addEventListener (not to `onmessage`), so the page
// listens that way.
//
// Made deterministic by request interception, never by waiting: the
// browser's own reconnection after the hub stops (SIGTERM, a deploy's
// graceful stop, and SIGKILL, a crash) is held until the restarted hub has
// stored the events published while it was down, then answered with a 503
// (as a proxy would while the hub is away), which makes Chromium give up
// and the package take over.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, publish, startHub, until, withBrowser } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/reconnecting-eventsource';
// The package's ES module build, as a bundler or an import map would serve it.
const PACKAGE = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)),
  '..', 'node_modules', 'reconnecting-eventsource', 'build', 'esm', 'reconnecting-eventsource.js'), 'utf8');

for (const signal of ['SIGTERM', 'SIGKILL']) {
  test(`reconnecting-eventsource resumes through its lastEventId query parameter after a ${signal} and restart: every id once, in order`, async (t) => {
    let hub = await startHub({ key: true });
    const { port, dataDir } = hub;
    let restarted = null;
    cleanup(t, { stop: async () => { await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); }, dataDir });

    await withBrowser(t, async (browser) => {
      const page = await browser.page();
      // The package, served to the page from the hub's origin.
      await page.route(`${hub.origin}/vendor/reconnecting-eventsource.js`, (route) =>
        route.fulfill({ status: 200, contentType: 'text/javascript', body: PACKAGE }));
      const isSubscribe = (url) => new URL(url).pathname === '/.well-known/mercure';
      // Every subscribe request's URL, and every answer the page got, in
      // the order they came (the hub echoes the position it resumed from in
      // Last-Event-ID).
      const subscribeUrls = [];
      page.on('request', (request) => { if (isSubscribe(request.url())) subscribeUrls.push(request.url()); });
      const answered = [];
      page.on('response', async (response) => {
        if (!isSubscribe(response.url())) return;
        const slot = answered.push(null) - 1;
        const headers = await response.allHeaders();
        answered[slot] = { url: response.url(), status: response.status(), lastEventId: headers['last-event-id'] ?? null };
      });
      const onWire = await eventSourceHeaders(browser, page);
      await page.goto(`${hub.origin}/healthz`);
      const streamUrl = `${hub.url}?topic=${encodeURIComponent(TOPIC)}`;
      await page.evaluate(async (url) => {
        const { default: ReconnectingEventSource } = await import('/vendor/reconnecting-eventsource.js');
        window.received = [];
        window.feed = new ReconnectingEventSource(url, { max_retry_time: 200 });
        window.feed.addEventListener('message', (e) => window.received.push(e.lastEventId));
      }, streamUrl);
      const received = () => page.evaluate(() => window.received.slice());

      const before = ['before-1', 'before-2', 'before-3'];
      await until(async () => (await page.evaluate(() => window.feed.readyState)) === 1, 'the feed open');
      for (const id of before) await publish(hub, { topic: TOPIC, data: id, id });
      await until(async () => (await received()).length === 3, 'the first events');
      assert.deepEqual(await received(), before);

      // From the stop on, the browser's own reconnection is held; anything
      // after it (the package's) goes through.
      const held = [];
      await page.route((url) => isSubscribe(url.href), (route) => {
        if (held.length === 0) held.push(route);
        else route.continue();
      });
      const stopped = await hub.stop(signal);
      if (signal === 'SIGTERM') assert.deepEqual(stopped, { code: 0, signal: null }, 'a graceful stop');
      await until(() => held.length > 0, "the browser's reconnection request");

      restarted = await startHub({ key: true, port, dataDir });
      hub = restarted;
      const after = ['after-1', 'after-2', 'after-3'];
      for (const id of after) await publish(hub, { topic: TOPIC, data: id, id });
      assert.deepEqual(await received(), before, 'nothing arrived while the reconnection was held');

      // A 503 where the hub should be: Chromium closes its EventSource for
      // good, and the package opens a new one, whose only resume position
      // is lastEventId in its URL.
      await held[0].fulfill({ status: 503, contentType: 'text/plain', body: 'restarting' });
      await until(async () => (await received()).length >= 6, 'the events published while the page was away');

      const resumed = subscribeUrls.map((u) => new URL(u)).filter((u) => u.searchParams.has('lastEventId'));
      assert.equal(resumed.length, 1, `one rebuilt connection: ${subscribeUrls.join(', ')}`);
      assert.equal(resumed[0].searchParams.get('lastEventId'), 'before-3');
      assert.deepEqual([...resumed[0].searchParams.keys()], ['topic', 'lastEventId'], 'no other resume spelling');
      // On the wire: the first request and the rebuilt one, neither with a
      // Last-Event-ID header (the held one never reached the network).
      await until(() => onWire().length >= 2, 'the rebuilt request on the wire');
      assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, null]);
      // The restarted hub took its position from the query: it answered
      // that it resumed from before-3, found in its durable history.
      await until(() => answered.length === 3 && answered.every(Boolean), "the hub's answer to the rebuilt request");
      assert.equal(answered[2].url, resumed[0].href);
      assert.deepEqual(answered.map(({ status, lastEventId }) => ({ status, lastEventId })), [
        { status: 200, lastEventId: null },
        { status: 503, lastEventId: null },
        { status: 200, lastEventId: 'before-3' },
      ]);

      // A marker published after everything: once it arrived, a duplicate of
      // anything before it would have too.
      await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker-1' });
      await until(async () => (await received()).includes('marker-1'), 'the marker');
      assert.deepEqual(await received(), [...before, ...after, 'marker-1']);
      // The console: the 503, and for the kill the stream cut mid-chunk; a
      // graceful stop ends the stream cleanly.
      const expected = [/status of 503/, ...(signal === 'SIGKILL' ? [/ERR_INCOMPLETE_CHUNKED_ENCODING/] : [])];
      const errors = browser.consoleErrors().map((m) => m.text);
      assert.ok(errors.length === expected.length && expected.every((re) => errors.some((e) => re.test(e))), errors.join('\n'));
      await page.evaluate(() => window.feed.close());
    });
  });
}

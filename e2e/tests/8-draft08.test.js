// Scenario 8: draft-08 (Mercure 1.0) from a browser. A page's EventSource
// subscribes with `match_urlpattern` and receives exactly the updates whose
// (relative) topics the pattern matches, then resumes with Last-Event-ID
// after the hub is killed and restarted; over HTTPS the draft-08 cookie
// `__Secure-mercure_access_token` authorizes a private update that a page
// without it never sees; and with active subscriptions a presence list (the
// subscription API's list, then its events from the cursor) follows
// subscribers coming and going.
//
// As in scenario 2, the browser's reconnection is held (Playwright's
// request interception) until the restarted hub has stored what was
// published meanwhile, so that it can only arrive by the replay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, publish, startHub, until, withBrowser } from '../lib/harness.js';

const isSubscribe = (url) => new URL(url).pathname === '/.well-known/mercure';

/**
 * Opens an EventSource in `page` at `url` (relative to the page); the page
 * tracks it in window.feed: opens, errors (readyState at each), and the id
 * of each message.
 */
function openFeed(page, url) {
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

const feedOf = (page) => page.evaluate(() => window.feed);

test('match_urlpattern receives the matching relative topics only, and resumes with Last-Event-ID after a restart', async (t) => {
  let hub = await startHub({ key: true });
  const { port, dataDir } = hub;
  let restarted = null;
  cleanup(t, { stop: async () => { await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); }, dataDir });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const answered = [];
    page.on('response', async (response) => {
      if (isSubscribe(response.url()) && response.request().method() === 'GET') {
        const headers = await response.allHeaders();
        answered.push({
          status: response.status(),
          mercureLastEventId: headers['mercure-last-event-id'] ?? null,
          lastEventId: headers['last-event-id'] ?? null,
        });
      }
    });
    await page.goto(`${hub.origin}/healthz`);

    // A relative pattern: resolved against the hub URL, as are the
    // relative topics published below.
    await openFeed(page, `/.well-known/mercure?match_urlpattern=${encodeURIComponent('/e2e/books/:id')}`);
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');

    // The one that does not match first: once the matching ones are in,
    // it would be there before them had it been delivered.
    await publish(hub, { topic: '/e2e/authors/1', data: 'an author', id: 'author-1' });
    await publish(hub, { topic: '/e2e/books/1', data: 'a book', id: 'book-1' });
    await publish(hub, { topic: '/e2e/books/2', data: 'another book', id: 'book-2' });
    await until(async () => (await feedOf(page)).ids.length >= 2, 'the two matching updates');
    assert.deepEqual((await feedOf(page)).ids, ['book-1', 'book-2']);

    // From the kill on, subscribe requests wait here until released.
    const held = [];
    let holding = true;
    await page.route((url) => isSubscribe(url.href), (route) => {
      if (holding) held.push(route);
      else route.continue();
    });
    await hub.stop('SIGKILL');
    await until(async () => (await feedOf(page)).errors.length > 0, 'the page to see the stream drop');
    assert.deepEqual((await feedOf(page)).errors, [0], 'EventSource.CONNECTING: the browser reconnects by itself');
    await until(() => held.length > 0, "the browser's reconnection request");

    // While the browser is away: a non-matching update and a matching one.
    restarted = await startHub({ key: true, port, dataDir });
    hub = restarted;
    await publish(hub, { topic: '/e2e/authors/2', data: 'another author', id: 'author-2' });
    await publish(hub, { topic: '/e2e/books/3', data: 'a third book', id: 'book-3' });
    assert.deepEqual((await feedOf(page)).ids, ['book-1', 'book-2'], 'nothing arrived while the reconnection was held');

    holding = false;
    for (const route of held.splice(0)) await route.continue();
    await until(async () => (await feedOf(page)).opens === 2, 'the EventSource to reconnect');
    await until(async () => (await feedOf(page)).ids.length >= 3, 'the update published while it was away');

    // A live marker: a duplicate of anything before it would be in first.
    await publish(hub, { topic: '/e2e/books/4', data: 'a fourth book', id: 'book-4' });
    await until(async () => (await feedOf(page)).ids.length >= 4, 'the live update after the reconnection');
    assert.deepEqual((await feedOf(page)).ids, ['book-1', 'book-2', 'book-3', 'book-4']);
    assert.deepEqual((await feedOf(page)).errors, [0], 'one drop, at the kill');

    // On the wire: the first request without Last-Event-ID, the
    // reconnection with the id of the last update received. The restarted
    // hub found it in its durable history and said so in both revisions'
    // response fields.
    await until(() => onWire().length >= 2, 'both requests on the wire');
    assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, 'book-2']);
    await until(() => answered.length >= 2, 'both responses');
    assert.deepEqual(answered, [
      { status: 200, mercureLastEventId: null, lastEventId: null },
      { status: 200, mercureLastEventId: 'book-2', lastEventId: 'book-2' },
    ]);
  });
});

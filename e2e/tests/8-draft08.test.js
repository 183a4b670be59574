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
import { cleanup, eventSourceHeaders, mint, publish, startHub, until, withBrowser } from '../lib/harness.js';

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

test('over HTTPS the __Secure-mercure_access_token cookie authorizes a private update that a page without it never sees', async (t) => {
  const hub = await startHub({ key: true, tls: true });
  cleanup(t, hub);
  const topic = 'https://example.com/e2e/secure-cookie';
  const token = mint({ mercure: { subscribe: [topic] } });
  const url = `${hub.url}?match=${encodeURIComponent(topic)}`;

  await withBrowser(t, { ignoreHTTPSErrors: true, label: 'cookie' }, async (browser) => {
    // The draft-08 cookie as a hub's application sets it: a browser keeps a
    // __Secure- cookie only when it is Secure, and sends it only over HTTPS.
    await browser.context.addCookies([{
      name: '__Secure-mercure_access_token', value: token, domain: '127.0.0.1', path: '/.well-known/mercure',
      secure: true, httpOnly: true, sameSite: 'Strict',
    }]);
    assert.deepEqual((await browser.context.cookies()).map((c) => [c.name, c.secure]), [['__Secure-mercure_access_token', true]]);
    const withCookie = await browser.page();
    const cookieWire = await eventSourceHeaders(browser, withCookie);
    await withCookie.goto(`${hub.origin}/healthz`);
    await openFeed(withCookie, url);
    await until(async () => (await feedOf(withCookie)).opens === 1, 'the stream with the cookie to open');

    // Another browser, so no cookie at all; the hub admits it anonymously.
    await withBrowser(t, { ignoreHTTPSErrors: true, label: 'anonymous' }, async (other) => {
      const anonymous = await other.page();
      const anonymousWire = await eventSourceHeaders(other, anonymous);
      await anonymous.goto(`${hub.origin}/healthz`);
      await openFeed(anonymous, url);
      await until(async () => (await feedOf(anonymous)).opens === 1, 'the anonymous stream to open');

      // Private first, then the public marker: both go through the same
      // ordered streams, so once the marker is in, a private update
      // delivered to the anonymous page would be in before it.
      await publish(hub, { topic, data: 'secret', id: 'private-1', private: 'on' });
      await publish(hub, { topic, data: 'news', id: 'public-1' });
      await until(async () => (await feedOf(withCookie)).ids.includes('public-1'), 'the public marker with the cookie');
      await until(async () => (await feedOf(anonymous)).ids.includes('public-1'), 'the public marker without it');
      assert.deepEqual((await feedOf(withCookie)).ids, ['private-1', 'public-1']);
      assert.deepEqual((await feedOf(anonymous)).ids, ['public-1']);

      // On the wire: the cookie went with the first page's request (over
      // HTTPS), and no cookie with the other's.
      await until(() => cookieWire().length === 1 && anonymousWire().length === 1, 'both requests on the wire');
      assert.equal(cookieWire()[0].cookie, `__Secure-mercure_access_token=${token}`);
      assert.equal(anonymousWire()[0].cookie, undefined);
    });
  });
});

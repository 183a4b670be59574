// Scenario 7: the promise of docs/configuration.md, "A token with `exp`
// ends the stream at that moment; the `EventSource` then reconnects and
// must present a fresh token". A page subscribes with a short-lived token in
// the mercureAuthorization cookie to a private topic on a hub that admits
// no anonymous subscriber. At the token's `exp` the hub ends the stream; the
// page, told so by the EventSource's error event, replaces the cookie with a
// fresh token; the browser's own EventSource reconnects with Last-Event-ID
// and the fresh cookie, and gets the private update published while it was
// away, then the live ones, each once.
//
// The reconnection is held (Playwright's request interception) until the
// page has its fresh cookie and the update is stored: that update can then
// only arrive through the replay, and nothing depends on Chromium's
// reconnection delay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, mint, publish, startHub, until, withBrowser } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/expiry';
// Long enough for the page to open its stream and receive one event on a
// loaded machine, short enough to wait for.
const LIFETIME_S = 10;

test('at its token\'s exp the stream ends and the EventSource resumes with a fresh cookie token', async (t) => {
  const hub = await startHub({ key: true, anonymous: false });
  cleanup(t, hub);
  const scope = { mercure: { subscribe: [TOPIC] } };
  const fresh = mint({ ...scope, exp: Math.floor(Date.now() / 1000) + 3600 });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const isSubscribe = (url) => new URL(url).pathname === '/.well-known/mercure';
    const answered = [];
    page.on('response', async (response) => {
      if (isSubscribe(response.url())) {
        answered.push({ status: response.status(), lastEventId: (await response.allHeaders())['last-event-id'] ?? null });
      }
    });
    await page.goto(`${hub.origin}/healthz`);

    const exp = Math.ceil(Date.now() / 1000) + LIFETIME_S;
    const shortLived = mint({ ...scope, exp });
    // What an application does: the token in the cookie, and a fresh one
    // in its place when the stream ends (here handed over up front).
    await page.evaluate(({ topic, token, fresh }) => {
      const cookie = (value) => `mercureAuthorization=${value}; path=/.well-known/mercure; SameSite=Strict`;
      document.cookie = cookie(token);
      const feed = { opens: 0, ids: [], errors: [], refreshed: false };
      window.feed = feed;
      const es = new EventSource(`/.well-known/mercure?topic=${encodeURIComponent(topic)}`);
      es.onopen = () => { feed.opens += 1; };
      es.onmessage = (e) => feed.ids.push(e.lastEventId);
      es.onerror = () => {
        feed.errors.push({ at: Date.now(), state: es.readyState, received: feed.ids.length });
        document.cookie = cookie(fresh);
        // Scoped to the hub's path, the cookie is not in this page's
        // document.cookie: the browser's cookie store is checked instead.
        feed.refreshed = true;
      };
      window.es = es;
    }, { topic: TOPIC, token: shortLived, fresh });
    const feed = () => page.evaluate(() => window.feed);
    await until(async () => (await feed()).opens === 1, 'the stream to open');

    // Before expiry: a private update, on the first stream.
    await publish(hub, { topic: TOPIC, data: 'before expiry', id: 'private-1', private: 'on' });
    await until(async () => (await feed()).ids.length === 1, 'the private update before expiry');
    assert.deepEqual((await feed()).errors, [], `private-1 arrived before the token expired (raise LIFETIME_S if not)`);

    // From here on, subscribe requests wait until released.
    const held = [];
    await page.route((url) => isSubscribe(url.href), (route) => { held.push(route); });

    // The hub ends the stream at exp: not before, and the browser will
    // reconnect (CONNECTING, not CLOSED).
    const ended = await until(async () => (await feed()).errors[0], 'the stream to end at the token\'s exp', (LIFETIME_S + 30) * 1000);
    assert.ok(ended.at >= exp * 1000, `the stream ended at ${ended.at}, before exp ${exp * 1000}`);
    assert.equal(ended.state, 0, 'EventSource.CONNECTING: the browser reconnects');
    assert.equal(ended.received, 1);
    assert.equal((await feed()).refreshed, true, 'the page replaced its token');
    assert.deepEqual((await browser.context.cookies()).map((c) => [c.name, c.value]), [['mercureAuthorization', fresh]]);

    // While the browser is away: another private update, stored.
    await until(() => held.length > 0, "the browser's reconnection request");
    await publish(hub, { topic: TOPIC, data: 'while away', id: 'private-2', private: 'on' });
    await page.unroute((url) => isSubscribe(url.href));
    for (const route of held.splice(0)) await route.continue();
    await until(async () => (await feed()).opens === 2, 'the EventSource to reconnect by itself');
    await until(async () => (await feed()).ids.length === 2, 'the update published while it was away');

    // Live again: a third private update is the marker that a duplicate of
    // either earlier one would have arrived before it.
    await publish(hub, { topic: TOPIC, data: 'after', id: 'private-3', private: 'on' });
    await until(async () => (await feed()).ids.length >= 3, 'the live private update after the reconnection');
    const final = await feed();
    assert.deepEqual(final.ids, ['private-1', 'private-2', 'private-3']);
    assert.equal(final.errors.length, 1, `one end, at expiry: ${JSON.stringify(final.errors)}`);

    // On the wire: the first request with the short-lived token, the
    // reconnection with the fresh one and the last id received; the hub
    // answered both with 200 and echoed the id it resumed from.
    await until(() => onWire().length >= 2, 'both requests on the wire');
    const sent = onWire().map((h) => ({ lastEventId: h['last-event-id'] ?? null, cookie: h.cookie ?? null }));
    assert.deepEqual(sent, [
      { lastEventId: null, cookie: `mercureAuthorization=${shortLived}` },
      { lastEventId: 'private-1', cookie: `mercureAuthorization=${fresh}` },
    ]);
    await until(() => answered.length >= 2, 'both responses');
    assert.deepEqual(answered, [{ status: 200, lastEventId: null }, { status: 200, lastEventId: 'private-1' }]);
  });
});

// Scenario 8: draft-08 (Mercure 1.0) from a browser. A page's EventSource
// subscribes with `match_urlpattern` and receives exactly the updates whose
// (relative) topics the pattern matches, then resumes with Last-Event-ID
// after the hub is killed and restarted, on a hub speaking both revisions
// and on one speaking only draft-08 (which says where it resumed in
// `Mercure-Last-Event-ID` alone). Over HTTPS the draft-08 cookie
// `__Secure-mercure_access_token` authorizes a private update that a page
// without it never sees (a draft-07 token in it, on a hub speaking both);
// on a hub speaking only draft-08 an access token in that cookie does, when
// its `authorization_details` cover the topic and not otherwise, and a
// `topic` subscription is refused. With active subscriptions a presence
// list (the subscription API's list, then its events from the cursor)
// follows subscribers coming and going, in draft-07's form and, read with
// an access token, in draft-08's.
//
// As in scenario 2, the browser's reconnection is held (Playwright's
// request interception) until the restarted hub has stored what was
// published meanwhile, so that it can only arrive by the replay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, mint, mintAccessToken, publish, startHub, until, withBrowser, holdRequests } from '../lib/harness.js';

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

// The issuer of the draft-08 access tokens on hubs started with `--issuer`
// (HS256, a shared secret: what the harness's mintAccessToken signs).
const ISSUER = 'https://issuer.example';
const ISSUER_SECRET = 'e2e-draft08-issuer-secret-long-enough-for-hs256';
const withIssuer = ['--issuer', `${ISSUER}=secret:${ISSUER_SECRET}`, '--access-token-alg', 'HS256'];
const MERCURE_DETAIL = 'https://mercure.rocks/authorization-detail';

/** A draft-08 access token for `hub` from ISSUER with these details. */
function accessToken(hub, details, sub = 'e2e') {
  return mintAccessToken({
    iss: ISSUER, aud: hub.url, sub, exp: Math.floor(Date.now() / 1000) + 3600, authorization_details: details,
  }, ISSUER_SECRET);
}

// Both revisions' hubs: the default one (both revisions) echoes the resume
// position in both revisions' response fields; one started with
// `--protocol 08` only in draft-08's `Mercure-Last-Event-ID`, and takes
// only draft-08 access tokens (its publisher has one).
const resumeHubs = [
  {
    name: 'a hub speaking both revisions',
    options: { key: true },
    publisher: () => undefined,
    echoed: { mercureLastEventId: 'book-2', lastEventId: 'book-2' },
  },
  {
    name: 'a hub speaking only draft-08 (--protocol 08)',
    options: { args: ['--anonymous', '--protocol', '08', ...withIssuer] },
    publisher: (hub) => accessToken(hub, [{ type: MERCURE_DETAIL, actions: ['publish'], topics: [{ match: '*' }] }], 'publisher'),
    echoed: { mercureLastEventId: 'book-2', lastEventId: null },
  },
];

for (const kind of resumeHubs) test(`match_urlpattern receives the matching relative topics only, and resumes with Last-Event-ID after a restart, on ${kind.name}`, async (t) => {
  let hub = await startHub(kind.options);
  const { port, dataDir } = hub;
  // The hub URL is the same after the restart (same port): so is the
  // token's audience. Undefined: the harness's draft-07 publisher token.
  const publisher = kind.publisher(hub);
  let restarted = null;
  cleanup(t, { stop: async () => { await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); }, dataDir });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const answered = [];
    page.on('response', async (response) => {
      if (isSubscribe(response.url()) && response.request().method() === 'GET') {
        // In the order the responses came, whenever their headers resolve.
        const slot = answered.push(null) - 1;
        const headers = await response.allHeaders();
        answered[slot] = {
          status: response.status(),
          mercureLastEventId: headers['mercure-last-event-id'] ?? null,
          lastEventId: headers['last-event-id'] ?? null,
        };
      }
    });
    await page.goto(`${hub.origin}/healthz`);

    // A relative pattern: resolved against the hub URL, as are the
    // relative topics published below.
    await openFeed(page, `/.well-known/mercure?match_urlpattern=${encodeURIComponent('/e2e/books/:id')}`);
    await until(async () => (await feedOf(page)).opens === 1, 'the stream to open');

    // The one that does not match first: once the matching ones are in,
    // it would be there before them had it been delivered.
    await publish(hub, { topic: '/e2e/authors/1', data: 'an author', id: 'author-1' }, publisher);
    await publish(hub, { topic: '/e2e/books/1', data: 'a book', id: 'book-1' }, publisher);
    await publish(hub, { topic: '/e2e/books/2', data: 'another book', id: 'book-2' }, publisher);
    await until(async () => (await feedOf(page)).ids.length >= 2, 'the two matching updates');
    assert.deepEqual((await feedOf(page)).ids, ['book-1', 'book-2']);

    // From the kill on, subscribe requests wait here until released.
    const hold = await holdRequests(page, isSubscribe);
    await hub.stop('SIGKILL');
    await until(async () => (await feedOf(page)).errors.length > 0, 'the page to see the stream drop');
    assert.deepEqual((await feedOf(page)).errors, [0], 'EventSource.CONNECTING: the browser reconnects by itself');
    await until(() => hold.held.length > 0, "the browser's reconnection request");

    // While the browser is away: a non-matching update and a matching one.
    restarted = await startHub({ ...kind.options, port, dataDir });
    hub = restarted;
    await publish(hub, { topic: '/e2e/authors/2', data: 'another author', id: 'author-2' }, publisher);
    await publish(hub, { topic: '/e2e/books/3', data: 'a third book', id: 'book-3' }, publisher);
    assert.deepEqual((await feedOf(page)).ids, ['book-1', 'book-2'], 'nothing arrived while the reconnection was held');

    await hold.release();
    await until(async () => (await feedOf(page)).opens === 2, 'the EventSource to reconnect');
    await until(async () => (await feedOf(page)).ids.length >= 3, 'the update published while it was away');

    // A live marker: a duplicate of anything before it would be in first.
    await publish(hub, { topic: '/e2e/books/4', data: 'a fourth book', id: 'book-4' }, publisher);
    await until(async () => (await feedOf(page)).ids.length >= 4, 'the live update after the reconnection');
    assert.deepEqual((await feedOf(page)).ids, ['book-1', 'book-2', 'book-3', 'book-4']);
    assert.deepEqual((await feedOf(page)).errors, [0], 'one drop, at the kill');

    // On the wire: the first request without Last-Event-ID, the
    // reconnection with the id of the last update received. The restarted
    // hub found it in its durable history and said so in the response
    // fields of the revisions it speaks.
    await until(() => onWire().length >= 2, 'both requests on the wire');
    assert.deepEqual(onWire().map((h) => h['last-event-id'] ?? null), [null, 'book-2']);
    await until(() => answered.length >= 2 && answered.every(Boolean), 'both responses');
    assert.deepEqual(answered, [
      { status: 200, mercureLastEventId: null, lastEventId: null },
      { status: 200, ...kind.echoed },
    ]);
  });
});

test('over HTTPS the __Secure-mercure_access_token cookie (a draft-07 token in it, on a hub speaking both revisions) authorizes a private update that a page without it never sees', async (t) => {
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

test('a hub speaking only draft-08: an access token in the __Secure- cookie over HTTPS brings a private update its authorization_details allow, and only then; a draft-07 subscription is refused', async (t) => {
  const hub = await startHub({ tls: true, args: ['--anonymous', '--protocol', '08', ...withIssuer] });
  cleanup(t, hub);
  const topic = 'https://example.com/e2e/access-cookie/1';
  const subscribeOn = (pattern) => [{ type: MERCURE_DETAIL, actions: ['subscribe'], topics: [{ match: pattern, match_type: 'urlpattern' }] }];
  // Two readers from the same issuer, alike but for the topics their
  // details allow: this one's cover the topic...
  const reader = accessToken(hub, subscribeOn('https://example.com/e2e/access-cookie/:id'), 'reader');
  // ...the other's another path: a valid token, no grant on the topic.
  const elsewhere = accessToken(hub, subscribeOn('https://example.com/e2e/elsewhere/:id'), 'elsewhere');
  const publisher = accessToken(hub, [{ type: MERCURE_DETAIL, actions: ['publish'], topics: [{ match: '*' }] }], 'publisher');
  const url = `${hub.url}?match_urlpattern=${encodeURIComponent('https://example.com/e2e/access-cookie/:id')}`;
  const cookie = (value) => ({
    name: '__Secure-mercure_access_token', value, domain: '127.0.0.1', path: '/.well-known/mercure',
    secure: true, httpOnly: true, sameSite: 'Strict',
  });

  await withBrowser(t, { ignoreHTTPSErrors: true, label: 'reader' }, async (browser) => {
    await browser.context.addCookies([cookie(reader)]);
    const page = await browser.page();
    const onWire = await eventSourceHeaders(browser, page);
    const statuses = [];
    page.on('response', (response) => {
      if (isSubscribe(response.url())) statuses.push([new URL(response.url()).searchParams.has('topic') ? 'topic' : 'match', response.status()]);
    });
    await page.goto(`${hub.origin}/healthz`);

    // draft-07's vocabulary is not spoken here: a 400, and the browser's
    // EventSource gives up (readyState CLOSED).
    const refused = await page.evaluate((url) => new Promise((resolve) => {
      const es = new EventSource(url);
      es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve(true); };
    }), `${hub.url}?topic=${encodeURIComponent(topic)}`);
    assert.equal(refused, true);

    await openFeed(page, url);
    await until(async () => (await feedOf(page)).opens === 1, 'the stream with the access-token cookie to open');

    // The control: another browser whose cookie holds the other token.
    await withBrowser(t, { ignoreHTTPSErrors: true, label: 'elsewhere' }, async (other) => {
      await other.context.addCookies([cookie(elsewhere)]);
      const control = await other.page();
      const controlWire = await eventSourceHeaders(other, control);
      await control.goto(`${hub.origin}/healthz`);
      await openFeed(control, url);
      await until(async () => (await feedOf(control)).opens === 1, 'the stream with the other token to open');

      // Private first, then the public marker through the same ordered
      // streams: the private update is in before the marker if it came at all.
      await publish(hub, { topic, data: 'secret', id: 'private-1', private: 'on' }, publisher);
      await publish(hub, { topic, data: 'news', id: 'public-1' }, publisher);
      await until(async () => (await feedOf(page)).ids.includes('public-1'), 'the public marker');
      await until(async () => (await feedOf(control)).ids.includes('public-1'), 'the public marker with the other token');
      assert.deepEqual((await feedOf(page)).ids, ['private-1', 'public-1']);
      assert.deepEqual((await feedOf(control)).ids, ['public-1'], 'a token whose details do not cover the topic brings no private update');
      await until(() => controlWire().length === 1, 'the control request on the wire');
      assert.equal(controlWire()[0].cookie, `__Secure-mercure_access_token=${elsewhere}`);
    });

    await until(() => statuses.length === 2, 'both responses seen');
    assert.deepEqual(statuses, [['topic', 400], ['match', 200]]);
    // The access token travelled in the cookie only, never in the URL.
    await until(() => onWire().length === 2, 'both requests on the wire');
    assert.equal(onWire()[1].cookie, `__Secure-mercure_access_token=${reader}`);
  });
});

/**
 * A presence list in `page` (on the hub's origin): the subscription API's
 * list of `topic`'s exact matcher, read with `token` in the Authorization
 * header, rendered as <ul id="present"><li data-subscriber=…>; then the
 * events of that matcher's subscriptions from the list's cursor, through an
 * EventSource the page's cookie authorizes, each applied: active true adds
 * its subscriber, false removes it. The page records what it did in
 * window.presence (the list's answer, and each event's id and document).
 */
function openPresence(page, topic, token) {
  return page.evaluate(async ({ topic, token }) => {
    // Percent-encoding of everything but A-Z a-z 0-9 - . _ ~
    const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const presence = { opens: 0, errors: 0, events: [], received: [] };
    window.presence = presence;
    const list = document.createElement('ul');
    list.id = 'present';
    document.body.replaceChildren(list);
    const item = (subscriber) => [...list.children].find((li) => li.dataset.subscriber === subscriber);
    const add = (subscriber) => {
      if (item(subscriber)) return;
      const li = document.createElement('li');
      li.dataset.subscriber = subscriber;
      li.textContent = subscriber;
      list.append(li);
    };

    const path = `/.well-known/mercure/subscriptions/exact/${enc(topic)}`;
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    presence.status = response.status;
    presence.contentType = response.headers.get('Content-Type');
    presence.link = response.headers.get('Link');
    const doc = await response.json();
    presence.body = doc;
    presence.type = doc.type;
    presence.listed = doc.subscriptions.map((s) => ({ subscriber: s.subscriber, active: s.active }));
    for (const s of doc.subscriptions) if (s.active) add(s.subscriber);
    presence.cursor = /;\s*last-event-id="([^"]*)"/.exec(presence.link)[1];

    const es = new EventSource(`/.well-known/mercure?match_urlpattern=${encodeURIComponent(`${path}/*`)}`
      + `&last_event_id=${encodeURIComponent(presence.cursor)}`);
    es.onopen = () => { presence.opens += 1; };
    es.onerror = () => { presence.errors += 1; };
    es.addEventListener('mercure', (e) => {
      const update = JSON.parse(e.data);
      presence.received.push({ id: e.lastEventId, doc: update });
      presence.events.push({
        type: update.type, match_type: update.match_type, match: update.match, subscriber: update.subscriber, active: update.active,
      });
      if (update.active) add(update.subscriber);
      else item(update.subscriber)?.remove();
    });
  }, { topic, token });
}

const present = (page) => page.$$eval('#present li', (items) => items.map((li) => li.dataset.subscriber));

test('a presence list from the subscription API and its events follows subscribers as they come and go', async (t) => {
  const hub = await startHub({ key: true, args: ['--subscriptions', 'on'] });
  cleanup(t, hub);
  const topic = 'https://example.com/e2e/room/1';
  const watcher = mint({ mercure: { subscribe: ['*'] } });
  const subscribe = `${hub.url}?match=${encodeURIComponent(topic)}`;

  await withBrowser(t, { label: 'presence' }, async (browser) => {
    await browser.context.addCookies([{
      name: 'mercureAuthorization', value: watcher, domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Strict',
    }]);
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    await openPresence(page, topic, watcher);
    const presence = () => page.evaluate(() => window.presence);
    await until(async () => (await presence()).opens === 1, 'the presence events to open');
    const first = await presence();
    assert.equal(first.status, 200);
    assert.equal(first.contentType, 'application/ld+json', 'a draft-07 token gets the JSON-LD list');
    assert.equal(first.type, 'Subscriptions');
    assert.deepEqual(first.listed, [], 'nobody is subscribed yet');
    // The cursor, in Link, next to the hub's URL (the port it bound).
    assert.ok(first.link.startsWith(`<${hub.origin}/.well-known/mercure>; rel="mercure"; last-event-id="`), first.link);
    assert.deepEqual(await present(page), []);

    // The subscribers: anonymous, in another browser (this one's cookie
    // would go with their requests).
    await withBrowser(t, { label: 'subscribers' }, async (other) => {
      const pages = [];
      for (let i = 0; i < 2; i++) {
        const subscriber = await other.page();
        await subscriber.goto(`${hub.origin}/healthz`);
        await openFeed(subscriber, subscribe);
        await until(async () => (await feedOf(subscriber)).opens === 1, `subscriber ${i + 1}'s stream to open`);
        pages.push(subscriber);
        // Each one in the list once its subscription started: the list
        // names them in the order they came.
        await until(async () => (await present(page)).length === i + 1, `subscriber ${i + 1} in the presence list`);
      }
      const [a, b] = await present(page);
      assert.match(a, /^urn:uuid:[0-9a-f-]{36}$/);
      assert.match(b, /^urn:uuid:[0-9a-f-]{36}$/);
      assert.notEqual(a, b);

      // The first page goes: its subscription ends, and only it leaves the list.
      await pages[0].close();
      await until(async () => (await present(page)).length === 1, 'the closed page to leave the presence list');
      assert.deepEqual(await present(page), [b]);
      const state = await presence();
      const event = (subscriber, active) => ({ type: 'subscription', match_type: 'exact', match: topic, subscriber, active });
      assert.deepEqual(state.events, [event(a, true), event(b, true), event(a, false)]);
      assert.equal(state.errors, 0);

      // A presence list opened now starts from the subscription API's
      // list, which holds the second subscriber alone.
      const later = await browser.page();
      await later.goto(`${hub.origin}/`);
      await openPresence(later, topic, watcher);
      await until(async () => (await later.evaluate(() => window.presence)).opens === 1, 'the second presence list to open');
      assert.deepEqual((await later.evaluate(() => window.presence)).listed, [{ subscriber: b, active: true }]);
      assert.deepEqual(await present(later), [b]);
      assert.deepEqual(browser.consoleErrors(), []);
    });
  });
});

/** Percent-encoding of everything but A-Z a-z 0-9 - . _ ~, as the hub encodes a path segment. */
const segment = (value) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * A GET of the subscription API from `page`, with `token` in the
 * Authorization header; the body parsed when it is JSON.
 */
function readApi(page, path, token) {
  return page.evaluate(async ({ path, token }) => {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    const contentType = response.headers.get('Content-Type');
    return {
      status: response.status,
      contentType,
      link: response.headers.get('Link'),
      body: contentType === 'application/json' ? await response.json() : await response.text(),
    };
  }, { path, token });
}

test('presence read with a draft-08 access token: the list and one subscription in draft-08 form (with the subscriber token\'s payload), then the events through the __Secure- cookie', async (t) => {
  const hub = await startHub({ tls: true, args: ['--anonymous', '--subscriptions', 'on', ...withIssuer] });
  cleanup(t, hub);
  const topic = 'https://example.com/e2e/room/8';
  const collection = `/.well-known/mercure/subscriptions/exact/${segment(topic)}`;
  // draft-08 §Subscription API: authorized as a subscription to the API's
  // relative URLs (here everything under the collection).
  const watcher = accessToken(hub, [{
    type: MERCURE_DETAIL, actions: ['subscribe'],
    topics: [{ match: '/.well-known/mercure/subscriptions/*', match_type: 'urlpattern' }],
  }], 'presence-page');
  // The subscriber's token: subscribe on the topic, with a payload the hub
  // carries into the subscription's document (draft-08 §Payloads).
  const payload = { name: 'Ada', seat: 8 };
  const member = accessToken(hub, [{ type: MERCURE_DETAIL, actions: ['subscribe'], topics: [{ match: topic }], payload }], 'ada');
  const cookie = (value) => ({
    name: '__Secure-mercure_access_token', value, domain: '127.0.0.1', path: '/.well-known/mercure',
    secure: true, httpOnly: true, sameSite: 'Strict',
  });
  // The Link header of every answer: the hub URL and the cursor.
  const linkPattern = new RegExp(`^<${hub.url.replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&')}>; rel="mercure"; last-event-id="([^"]+)"; type="mercure"; content-type="application/json"$`);

  await withBrowser(t, { ignoreHTTPSErrors: true, label: 'presence08' }, async (browser) => {
    await browser.context.addCookies([cookie(watcher)]);
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    await openPresence(page, topic, watcher);
    const presence = () => page.evaluate(() => window.presence);
    await until(async () => (await presence()).opens === 1, 'the presence events to open');
    const first = await presence();
    assert.equal(first.status, 200);
    assert.equal(first.contentType, 'application/json', 'an access token gets the draft-08 list');
    assert.match(first.link, linkPattern);
    // draft-08's collection: no JSON-LD context, no lastEventID (the cursor
    // is in Link alone).
    assert.deepEqual(first.body, { id: collection, type: 'subscriptions', subscriptions: [] });

    await withBrowser(t, { ignoreHTTPSErrors: true, label: 'subscriber08' }, async (other) => {
      await other.context.addCookies([cookie(member)]);
      const subscriber = await other.page();
      await subscriber.goto(`${hub.origin}/healthz`);
      await openFeed(subscriber, `${hub.url}?match=${encodeURIComponent(topic)}`);
      await until(async () => (await present(page)).length === 1, 'the subscriber in the presence list');
      const [who] = await present(page);
      assert.match(who, /^urn:uuid:[0-9a-f-]{36}$/);

      // The subscription's document, as its event brought it: every field
      // of draft-08's, the token's payload included, and nothing else.
      const doc = {
        id: `${collection}/${segment(who)}`, type: 'subscription', match_type: 'exact', match: topic, subscriber: who, active: true, payload,
      };
      const [joined] = (await presence()).received;
      assert.deepEqual(joined.doc, doc);

      // The API now, read from the page: the collection lists that
      // document; the subscription's own URL (its id) answers it alone,
      // unchanged; both carry the cursor: the join, the last event the hub
      // dispatched.
      const listed = await readApi(page, collection, watcher);
      assert.deepEqual([listed.status, listed.contentType], [200, 'application/json']);
      assert.deepEqual(listed.body, { id: collection, type: 'subscriptions', subscriptions: [doc] });
      assert.equal(linkPattern.exec(listed.link)?.[1], joined.id);
      const one = await readApi(page, doc.id, watcher);
      assert.deepEqual([one.status, one.contentType], [200, 'application/json']);
      assert.deepEqual(one.body, doc);
      assert.equal(linkPattern.exec(one.link)?.[1], joined.id);

      await subscriber.close();
      await until(async () => (await present(page)).length === 0, 'the subscriber to leave the list');
      const event = (active) => ({ type: 'subscription', match_type: 'exact', match: topic, subscriber: who, active });
      assert.deepEqual((await presence()).events, [event(true), event(false)]);
      assert.deepEqual((await presence()).received.map((r) => r.doc), [doc, { ...doc, active: false }]);
      // Gone from the API too: an empty list, and no such subscription.
      assert.deepEqual((await readApi(page, collection, watcher)).body.subscriptions, []);
      assert.equal((await readApi(page, doc.id, watcher)).status, 404);
      assert.deepEqual(browser.consoleErrors().filter((m) => !/status of 404/.test(m.text)), []);
    });
  });
});

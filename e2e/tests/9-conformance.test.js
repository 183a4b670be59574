// Scenario 9: Mercure's conformance scenarios, rewritten for this harness.
//
// The Mercure reference repository ships a browser conformance suite; these
// are its cases, described from what they check and written here from
// scratch (no code of the reference suite). A page on the hub's origin
// opens an EventSource with the case's selectors (each one `match`, or
// `match_urlpattern` when it holds a `/:name` group), and once it is open
// publishes the case's update with fetch(): topic(s), an id of its own and
// a data with a blank line inside, `private=on` for the private cases, and
// a draft-08 access token (RFC 9068, `typ: at+jwt`, HS256 from a trusted
// issuer, audience the hub URL, Mercure authorization details granting
// publish and subscribe on `*`). The hub must answer 200, text/plain, the
// id; the update must then arrive with that id and that exact data, or
// must not arrive at all: the nonmatching cases, and the private ones since
// the page's EventSource is anonymous (no cookie).
//
// Nothing waits by sleeping: after the case's update the page publishes a
// public marker on a topic its EventSource's selectors match (the case's
// own topic when it matches, else one its selectors match), so the
// subscription stays the case's own; the marker goes through the same
// ordered stream, so once it is in, the update is in before it if it was
// delivered at all, and once only. The timeouts only turn a hang into a
// failure.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { mintAccessToken, startHub, withBrowser } from '../lib/harness.js';

const ISSUER = 'https://issuer.example';
const SECRET = 'e2e-conformance-issuer-secret-long-enough-for-hs256';
const DETAIL = 'https://mercure.rocks/authorization-detail';

const random = () => randomBytes(8).toString('hex');

// Draft-08 access tokens only: no --jwt-key, so no development mode either.
let hub;
let token;
before(async () => {
  hub = await startHub({
    args: ['--anonymous', '--issuer', `${ISSUER}=secret:${SECRET}`, '--access-token-alg', 'HS256'],
  });
  token = mintAccessToken({
    iss: ISSUER,
    aud: hub.url,
    exp: Math.floor(Date.now() / 1000) + 3600,
    authorization_details: [
      { type: DETAIL, actions: ['publish'], topics: [{ match: '*' }] },
      { type: DETAIL, actions: ['subscribe'], topics: [{ match: '*' }] },
    ],
  }, SECRET);
});
after(async () => {
  if (!hub) return;
  await hub.stop('SIGKILL');
  rmSync(hub.dataDir, { recursive: true, force: true });
});

/**
 * In `page` (on the hub's origin): subscribes with `selectors`, publishes
 * `update` once the stream is open, then the public `marker`, and collects
 * the messages up to the marker. Returns both publish answers and the
 * messages ({ id, data }), in the order they arrived.
 */
function runCase(page, { selectors, update, marker }) {
  return page.evaluate(async ({ selectors, update, marker, token }) => {
    const fail = (what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), 30_000));
    const query = new URLSearchParams();
    for (const selector of selectors) query.append(/\/:[A-Za-z_]/.test(selector) ? 'match_urlpattern' : 'match', selector);
    const es = new EventSource(`/.well-known/mercure?${query}`);
    const messages = [];
    const errors = [];
    let markerIn;
    const markerArrived = new Promise((resolve) => { markerIn = resolve; });
    es.onmessage = (e) => {
      messages.push({ id: e.lastEventId, data: e.data });
      if (e.lastEventId === marker.id) markerIn();
    };
    try {
      await Promise.race([
        new Promise((resolve, reject) => {
          es.onopen = resolve;
          es.onerror = () => reject(new Error(`the EventSource failed before it opened (readyState ${es.readyState})`));
        }),
        fail('the EventSource to open'),
      ]);
      es.onerror = () => { errors.push(es.readyState); };

      const post = async (fields) => {
        const body = new URLSearchParams();
        for (const topic of fields.topics) body.append('topic', topic);
        body.append('id', fields.id);
        body.append('data', fields.data);
        if (fields.private) body.append('private', 'on');
        const response = await fetch('/.well-known/mercure', {
          method: 'POST', headers: { Authorization: `Bearer ${token}` }, body,
        });
        return { status: response.status, contentType: response.headers.get('Content-Type'), body: await response.text() };
      };
      const published = await post(update);
      const markerPublished = await post(marker);
      if (markerPublished.status === 200) await Promise.race([markerArrived, fail('the marker')]);
      return { published, markerPublished, messages, errors };
    } finally {
      es.close();
    }
  }, { selectors, update, marker, token });
}

// The cases, in the reference suite's order. `topics` are the update's,
// `markerTopic` a public one the selectors match.
const NONMATCHING = 'https://example.net/foo/will-not-match';
const cases = [
  ...(() => {
    const r0 = random(); const r2 = random(); const r3 = random(); const r4 = random();
    return [
      { name: 'raw string', selectors: [r0], topics: [r0], received: true },
      { name: 'multiple topic selectors', selectors: ['foo', r2], topics: [r2], received: true },
      { name: 'URI', selectors: [`https://example.net/foo/${r3}`], topics: [`https://example.net/foo/${r3}`], received: true },
      { name: 'URL pattern', selectors: ['https://example.net/foo/:random'], topics: [`https://example.net/foo/${r4}`], received: true },
    ];
  })(),
  { name: 'nonmatching raw string', selectors: ['another-name'], topics: ['will-not-match'], markerTopic: 'another-name', received: false },
  { name: 'nonmatching URI', selectors: ['https://example.net/foo/another-name'], topics: [NONMATCHING], markerTopic: 'https://example.net/foo/another-name', received: false },
  { name: 'nonmatching URL pattern', selectors: ['https://example.net/bar/:var'], topics: [NONMATCHING], markerTopic: `https://example.net/bar/${random()}`, received: false },
  ...(() => {
    const r0 = random(); const r3 = random(); const r4 = random();
    return [
      { name: 'private raw string', selectors: [r0], topics: [r0], private: true, received: false },
      { name: 'private URI', selectors: [`https://example.net/foo/${r3}`], topics: [`https://example.net/foo/${r3}`], private: true, received: false },
      { name: 'private URL pattern', selectors: ['https://example.net/foo/:random'], topics: [`https://example.net/foo/${r4}`], private: true, received: false },
    ];
  })(),
];

const TEXT_PLAIN = /^text\/plain(;.*)?$/;

for (const [i, c] of cases.entries()) {
  const title = `conformance ${i + 1}: ${c.name} is ${c.received ? 'received' : 'not received'}`
    + (c.private ? ' by an anonymous subscriber' : '');
  test(title, async (t) => {
    const update = {
      topics: c.topics, id: `urn:uuid:${randomUUID()}`, data: `Update ${i + 1}\n\n${c.name}, ${random()}`, private: Boolean(c.private),
    };
    const marker = { topics: [c.markerTopic ?? c.topics[0]], id: `marker-${random()}`, data: 'marker' };
    await withBrowser(t, async (browser) => {
      const page = await browser.page();
      await page.goto(`${hub.origin}/`);
      const result = await runCase(page, { selectors: c.selectors, update, marker });

      for (const [what, answer, id] of [['the update', result.published, update.id], ['the marker', result.markerPublished, marker.id]]) {
        assert.equal(answer.status, 200, `${what}: ${answer.status} ${answer.body}`);
        assert.match(answer.contentType ?? '', TEXT_PLAIN, `${what}'s Content-Type`);
        assert.equal(answer.body, id, `${what}'s answer is its id`);
      }
      const expected = c.received ? [{ id: update.id, data: update.data }] : [];
      expected.push({ id: marker.id, data: marker.data });
      assert.deepEqual(result.messages, expected);
      assert.deepEqual(result.errors, [], 'the stream never dropped');
      assert.deepEqual(browser.consoleErrors(), []);
    });
  });
}

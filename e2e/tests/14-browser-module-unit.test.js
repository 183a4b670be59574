// The browser module (crates/herald-hub/web/eventsource/herald.js) without a browser: its
// backoff, and its decisions driven by a scripted stand-in for the
// browser's EventSource (when to take over, which URL, which token, what
// it tells the page). Scenario 13 runs it against the hub in Chromium. And
// the npm package: what `npm pack` would publish.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, until } from '../lib/harness.js';

const PACKAGE = path.join(ROOT, 'crates', 'herald-hub', 'web', 'eventsource');
const { HeraldEventSource, backoffDelay, DEFAULT_BACKOFF } = await import(path.join(PACKAGE, 'herald.js'));

test('backoff: full jitter under a ceiling that doubles from initial up to max', () => {
  const top = () => 1 - Number.EPSILON;
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 10, 2000].map((attempt) => backoffDelay(attempt, DEFAULT_BACKOFF, top));
  assert.deepEqual(ceilings, [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999]);
  assert.equal(backoffDelay(3, DEFAULT_BACKOFF, () => 0), 0, 'full jitter reaches 0');
  assert.equal(backoffDelay(2, { initial: 100, max: 250, factor: 3 }, top), 249);
  assert.equal(backoffDelay(5, { initial: 0, max: 0 }, top), 0);
  for (let i = 0; i < 1000; i += 1) {
    const delay = backoffDelay(4, { initial: 10, max: 100 });
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay < 100, `${delay}`);
  }
});

/**
 * A stand-in for the browser's EventSource: records every instance, and
 * lets the test play the browser (open, deliver, fail with the ready state
 * the browser would have).
 */
class FakeEventSource extends EventTarget {
  static made = [];
  constructor(url, init) {
    super();
    this.url = url;
    this.withCredentials = Boolean(init?.withCredentials);
    this.readyState = 0;
    this.closed = false;
    FakeEventSource.made.push(this);
  }
  close() { this.readyState = 2; this.closed = true; }
  open() { this.readyState = 1; this.onopen?.(new Event('open')); }
  deliver(type, data, lastEventId) {
    this.dispatchEvent(new MessageEvent(type, { data, lastEventId }));
  }
  /** The stream dropped: the browser retries (CONNECTING) or gave up (CLOSED). */
  fail(readyState) { this.readyState = readyState; this.onerror?.(new Event('error')); }
}

function withFakeEventSource(t) {
  FakeEventSource.made = [];
  const saved = globalThis.EventSource;
  globalThis.EventSource = FakeEventSource;
  t.after(() => { globalThis.EventSource = saved; });
  return FakeEventSource.made;
}

const params = (source) => Object.fromEntries(new URL(source.url).searchParams);
const NO_WAIT = { initial: 0, max: 0 };

test('takes over only when the browser gives up, resumes from the last id, and stops on close()', async (t) => {
  const made = withFakeEventSource(t);
  const es = new HeraldEventSource('https://hub.example/.well-known/mercure', {
    topics: ['https://example.com/a', 'https://example.com/b'], backoff: NO_WAIT,
  });
  const seen = [];
  es.onopen = () => seen.push(['open', es.readyState]);
  es.onmessage = (e) => seen.push(['message', e.data, e.lastEventId]);
  es.onerror = () => seen.push(['error', es.readyState]);
  es.addEventListener('reconnecting', (e) => seen.push(['reconnecting', e.attempt]));
  es.addEventListener('custom', (e) => seen.push(['custom', e.data]));

  assert.equal(made.length, 1);
  assert.equal(made[0].url, 'https://hub.example/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fa&topic=https%3A%2F%2Fexample.com%2Fb&lost_events=1');
  assert.equal(es.url, made[0].url);
  made[0].open();
  made[0].deliver('message', 'one', 'id-1');
  made[0].deliver('custom', 'two', 'id-2');
  assert.equal(es.lastEventId, 'id-2');

  // The browser's own reconnection: no second EventSource.
  made[0].fail(0);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(made.length, 1);
  assert.equal(es.readyState, HeraldEventSource.CONNECTING);

  // The browser gave up: a new EventSource resumes from the query
  // (draft-07 spelling for topic selectors).
  made[0].fail(2);
  assert.equal(made[0].closed, true);
  await until(() => made.length === 2, 'the second EventSource', 2000);
  assert.equal(params(made[1]).lastEventID, 'id-2');
  // A fresh EventSource's events start with an empty lastEventId until one
  // with an id comes: that does not move the resume position back.
  made[1].open();
  made[1].deliver('message', 'no id', '');
  assert.equal(es.lastEventId, 'id-2');

  es.close();
  assert.equal(es.readyState, HeraldEventSource.CLOSED);
  assert.equal(made[1].closed, true);
  made[1].fail(2);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(made.length, 2, 'nothing after close()');
  assert.deepEqual(seen, [
    ['open', 1], ['message', 'one', 'id-1'], ['custom', 'two'],
    ['error', 0], ['error', 0], ['reconnecting', 1],
    ['open', 1], ['message', 'no id', ''],
  ]);
});

test('backoff grows with each failed attempt and starts over after a connection opens', async (t) => {
  const made = withFakeEventSource(t);
  const es = new HeraldEventSource('https://hub.example/.well-known/mercure', { match: 'https://example.com/a', backoff: { initial: 1, max: 4 } });
  const attempts = [];
  es.addEventListener('reconnecting', (e) => attempts.push(e.attempt));
  for (let i = 1; i <= 3; i += 1) {
    made.at(-1).fail(2);
    await until(() => made.length === i + 1, `attempt ${i}`, 2000);
  }
  made.at(-1).open();
  made.at(-1).fail(2);
  await until(() => made.length === 5, 'the attempt after an open', 2000);
  assert.deepEqual(attempts, [1, 2, 3, 1]);
  es.close();
});

test('a fresh token before each connection the module opens, draft-08 spelling for match, lost events dispatched', async (t) => {
  const made = withFakeEventSource(t);
  const tokens = ['first', 'second'];
  let calls = 0;
  const es = new HeraldEventSource('https://hub.example/.well-known/mercure?match=https%3A%2F%2Fexample.com%2Fa&last_event_id=start&authorization=stale', {
    token: async () => { calls += 1; if (calls === 2) throw new Error('token service down'); return tokens.shift(); },
    backoff: NO_WAIT,
  });
  const seen = [];
  es.onerror = (e) => seen.push(['error', e.error?.message ?? null]);
  es.onlostevents = (e) => seen.push(['lost', e.requested, e.earliest]);
  es.addEventListener('mercure', (e) => seen.push(['mercure', JSON.parse(e.data).type]));

  await until(() => made.length === 1, 'the first EventSource', 2000);
  assert.deepEqual(params(made[0]), { match: 'https://example.com/a', lost_events: '1', last_event_id: 'start', authorization: 'first' });
  made[0].open();
  made[0].deliver('mercure', JSON.stringify({ type: 'events_lost', requested: 'start', earliest: 'e-5' }), '');
  made[0].deliver('mercure', JSON.stringify({ type: 'subscription', active: true }), 'sub-1');
  made[0].deliver('message', 'x', 'e-5');
  // A 401 once the token expired: the callback fails once (reported, and
  // retried), then gives the next token.
  made[0].fail(2);
  await until(() => made.length === 2, 'the EventSource with a fresh token', 2000);
  assert.equal(calls, 3);
  assert.deepEqual(params(made[1]), { match: 'https://example.com/a', lost_events: '1', last_event_id: 'e-5', authorization: 'second' });
  assert.deepEqual(seen, [
    ['lost', 'start', 'e-5'], ['mercure', 'subscription'], ['error', null], ['error', 'token service down'],
  ]);
  es.close();

  // A token callback still running when the page closes: no connection.
  let release;
  const slow = new HeraldEventSource('https://hub.example/.well-known/mercure', {
    topics: 'x', token: () => new Promise((resolve) => { release = resolve; }),
  });
  slow.close();
  release('late');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(made.length, 2);
});

test('options are checked when the source is made', (t) => {
  withFakeEventSource(t);
  const hub = 'https://hub.example/.well-known/mercure';
  assert.throws(() => new HeraldEventSource(hub, { topics: 'a', match: 'b' }), TypeError);
  assert.throws(() => new HeraldEventSource(hub, { topics: 'a', backoff: { initial: 10, max: 5 } }), RangeError);
  assert.throws(() => new HeraldEventSource(hub, { topics: 'a', backoff: { factor: 0.5 } }), RangeError);
  assert.throws(() => new HeraldEventSource(hub, { topics: 'a', backoff: { initial: -1 } }), RangeError);
  assert.throws(() => new HeraldEventSource(hub, { topics: 'a', token: 42 }), TypeError);
  const plain = new HeraldEventSource(hub, { topics: 'a', lostEvents: false, lastEventId: 'x' });
  assert.deepEqual(Object.fromEntries(new URL(FakeEventSource.made.at(-1).url).searchParams), { topic: 'a', lastEventID: 'x' });
  plain.close();
});

test('the npm package holds the module, its types and its README, at the workspace version', () => {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'));
  const cargo = readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  assert.equal(pkg.version, cargo.match(/^\[workspace\.package\][^[]*?^version = "([^"]+)"/m)[1]);
  assert.equal(pkg.license, 'MIT OR Apache-2.0');
  assert.equal(pkg.type, 'module');
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: PACKAGE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  }));
  assert.equal(packed.name, 'herald-eventsource');
  assert.deepEqual(packed.files.map((f) => f.path).sort(), ['README.md', 'herald.d.ts', 'herald.js', 'package.json']);
  assert.deepEqual(pkg.exports['.'], { types: './herald.d.ts', default: './herald.js' });
});

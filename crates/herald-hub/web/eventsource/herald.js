// herald.js: an EventSource for Mercure hubs that never gives up.
//
// Plain ES module, no build step, no dependency. Herald serves this very
// file at /herald.js, and it is the `herald-eventsource` npm package
// (crates/herald-hub/web/eventsource/ in Herald's repository); types are in herald.d.ts.
//
// A native EventSource reconnects by itself after an established stream
// drops, sending Last-Event-ID, and this module leaves it alone while it
// does. But the browser gives up for good (readyState CLOSED) when an
// answer is not a 200 text/event-stream: a 503 from a hub at capacity, a
// 502 from a proxy while the hub restarts, a 401 once the token in the URL
// has expired. From there this module takes over: it waits (exponential
// backoff with full jitter), asks the page for a fresh token, and opens a
// new EventSource that resumes from the last event id through the query
// string, since a new EventSource cannot send Last-Event-ID itself.
//
// It also asks the hub for Herald's lost-events signal (`lost_events=1`):
// when the hub no longer holds the id a connection resumes from, it says
// so with a `mercure` event before the replay, which this module turns into
// a `lostevents` event carrying `requested` and `earliest`.

// EventSource's ready states, spelled out: the module must load where
// there is no EventSource (node, for its unit tests).
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

/** The backoff used when the page gives none: 1 s, doubling to 30 s. */
export const DEFAULT_BACKOFF = Object.freeze({ initial: 1000, max: 30000, factor: 2 });

/**
 * How long to wait before reconnection attempt `attempt` (0 for the first
 * after a successful connection): "full jitter", a uniform draw in
 * [0, min(max, initial * factor^attempt)). Spreading the whole range, not
 * just a margin, is what keeps thousands of pages dropped by one hub
 * restart from coming back in waves.
 */
export function backoffDelay(attempt, backoff = DEFAULT_BACKOFF, random = Math.random) {
  const { initial, max, factor } = { ...DEFAULT_BACKOFF, ...backoff };
  // factor ** attempt overflows to Infinity after enough attempts; min()
  // then gives max, as it should (and initial 0 stays 0, not NaN).
  const ceiling = initial === 0 ? 0 : Math.min(max, initial * factor ** attempt);
  return Math.floor(random() * ceiling);
}

/** Throws unless `backoff` is usable; returns it merged with the defaults. */
function checkedBackoff(backoff) {
  const merged = { ...DEFAULT_BACKOFF, ...backoff };
  const { initial, max, factor } = merged;
  for (const [name, value] of Object.entries({ initial, max, factor })) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`backoff.${name} must be a finite number of at least 0, not ${value}`);
    }
  }
  if (factor < 1) throw new RangeError(`backoff.factor must be at least 1, not ${factor}`);
  if (max < initial) throw new RangeError(`backoff.max (${max}) must not be less than backoff.initial (${initial})`);
  return merged;
}

// Every query spelling of a resume position a hub reads (docs/protocol.md):
// removed from a URL given with one, whose value becomes the start.
const RESUME_PARAMETERS = ['last_event_id', 'lastEventID', 'lastEventId', 'Last-Event-ID'];

// The draft-07 query parameter for a token, the only token place besides
// cookies that an EventSource can use.
const TOKEN_PARAMETER = 'authorization';

// Events the module dispatches itself, never forwarded from a stream.
const OWN_TYPES = new Set(['open', 'error', 'lostevents', 'reconnecting']);

/** `lostevents`: history no longer held the id a connection resumed from. */
export class LostEventsEvent extends Event {
  constructor(requested, earliest) {
    super('lostevents');
    /** The id the connection resumed from. */
    this.requested = requested;
    /** The id of the first event replayed after it, or null when none was. */
    this.earliest = earliest;
  }
}

/** `reconnecting`: the browser gave up; the module tries again after `delay` ms. */
export class ReconnectingEvent extends Event {
  constructor(attempt, delay) {
    super('reconnecting');
    /** 1 for the first attempt since the last successful connection. */
    this.attempt = attempt;
    /** Milliseconds until the attempt. */
    this.delay = delay;
  }
}

/**
 * The subscription URL without token or resume position, which spelling
 * of the resume position it takes, and the position a URL of one's own
 * carried.
 */
function subscriptionUrl(hub, options) {
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  const url = base === undefined ? new URL(hub) : new URL(hub, base);
  const topics = [options.topics ?? []].flat();
  const matches = [options.match ?? []].flat();
  const patterns = [options.matchUrlpattern ?? []].flat();
  if (topics.length > 0 && matches.length + patterns.length > 0) {
    throw new TypeError('give either topics (draft-07) or match / matchUrlpattern (draft-08), not both');
  }
  for (const topic of topics) url.searchParams.append('topic', topic);
  for (const match of matches) url.searchParams.append('match', match);
  for (const pattern of patterns) url.searchParams.append('match_urlpattern', pattern);
  // A subscription speaks one revision; resume in its spelling, which a
  // hub speaking only that revision reads (it ignores the other's).
  const draft08 = [...url.searchParams.keys()].some((name) => name.toLowerCase().startsWith('match'));
  let lastEventId = '';
  for (const name of RESUME_PARAMETERS) {
    const value = url.searchParams.get(name);
    if (value !== null && lastEventId === '') lastEventId = value;
    url.searchParams.delete(name);
  }
  if (options.token !== undefined) url.searchParams.delete(TOKEN_PARAMETER);
  if (options.lostEvents !== false && !url.searchParams.has('lost_events')) {
    url.searchParams.set('lost_events', '1');
  }
  return { url, draft08, lastEventId };
}

/**
 * An EventSource on a Mercure hub that reconnects after the browser gives
 * up, resuming from the last event id, with a fresh token each time.
 * Events, `readyState`, `lastEventId` and `close()` work as on an
 * EventSource; see herald.d.ts for the options.
 */
export class HeraldEventSource extends EventTarget {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSED = CLOSED;

  /** The subscription URL, without token or resume position. */
  #url;
  #draft08;
  #token;
  #withCredentials;
  #backoff;
  #lostEvents;
  /** The EventSource of the current connection, null between them. */
  #source = null;
  #state = CONNECTING;
  #lastEventId;
  /** Attempts since the last successful connection. */
  #attempt = 0;
  #timer = null;
  /** Bumped by each connection and by close(): a token that arrives for an
   * older one is dropped. */
  #generation = 0;
  /** Event types forwarded from every EventSource: the page listens to them. */
  #types = new Set(['message', 'mercure']);
  #handlers = {};

  constructor(hub, options = {}) {
    super();
    const { url, draft08, lastEventId } = subscriptionUrl(hub, options);
    if (options.token !== undefined && typeof options.token !== 'function' && typeof options.token !== 'string') {
      throw new TypeError('token must be a string or a function that returns one (or a promise of one)');
    }
    this.#url = url;
    this.#draft08 = draft08;
    this.#token = options.token;
    this.#withCredentials = Boolean(options.withCredentials);
    this.#backoff = checkedBackoff(options.backoff);
    this.#lostEvents = options.lostEvents !== false;
    this.#lastEventId = options.lastEventId ?? lastEventId;
    this.#connect();
  }

  get url() { return this.#url.href; }
  get readyState() { return this.#state; }
  get withCredentials() { return this.#withCredentials; }
  /** The id of the last event received: where the next connection resumes. */
  get lastEventId() { return this.#lastEventId; }

  get onopen() { return this.#handlers.open ?? null; }
  set onopen(f) { this.#handle('open', f); }
  get onmessage() { return this.#handlers.message ?? null; }
  set onmessage(f) { this.#handle('message', f); }
  get onerror() { return this.#handlers.error ?? null; }
  set onerror(f) { this.#handle('error', f); }
  get onlostevents() { return this.#handlers.lostevents ?? null; }
  set onlostevents(f) { this.#handle('lostevents', f); }

  addEventListener(type, listener, options) {
    if (!OWN_TYPES.has(type) && !this.#types.has(type)) {
      this.#types.add(type);
      this.#source?.addEventListener(type, this.#forward);
    }
    super.addEventListener(type, listener, options);
  }

  /** Ends the connection and every retry, for good. */
  close() {
    this.#state = CLOSED;
    this.#generation += 1;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#source?.close();
    this.#source = null;
  }

  #handle(type, handler) {
    if (this.#handlers[type]) super.removeEventListener(type, this.#handlers[type]);
    this.#handlers[type] = typeof handler === 'function' ? handler : null;
    if (this.#handlers[type]) this.addEventListener(type, this.#handlers[type]);
  }

  /** Opens a new EventSource, with a fresh token when there is a callback. */
  async #connect() {
    const generation = ++this.#generation;
    let token = this.#token;
    if (typeof token === 'function') {
      try {
        token = await token();
      } catch (error) {
        if (generation !== this.#generation) return;
        // No token, no connection: say why, and try again later.
        this.#dispatchError(error);
        this.#retry();
        return;
      }
      // close(), or another connection, came first.
      if (generation !== this.#generation) return;
    }
    const url = new URL(this.#url);
    if (this.#lastEventId !== '') {
      url.searchParams.set(this.#draft08 ? 'last_event_id' : 'lastEventID', this.#lastEventId);
    }
    // null or '' from the callback: the page sent its token another way
    // (a cookie it set), or none.
    if (typeof token === 'string' && token !== '') url.searchParams.set(TOKEN_PARAMETER, token);

    const source = new EventSource(url.href, { withCredentials: this.#withCredentials });
    this.#source = source;
    for (const type of this.#types) source.addEventListener(type, this.#forward);
    source.onopen = () => {
      if (source !== this.#source) return;
      this.#attempt = 0;
      this.#state = OPEN;
      this.dispatchEvent(new Event('open'));
    };
    source.onerror = () => {
      if (source !== this.#source) return;
      this.#state = CONNECTING;
      if (source.readyState !== CLOSED) {
        // The browser retries by itself, with Last-Event-ID: let it.
        this.dispatchEvent(new Event('error'));
        return;
      }
      // The browser gave up: a status other than 200, another content
      // type, a failed CORS check. From here on it is ours.
      source.close();
      this.#source = null;
      this.dispatchEvent(new Event('error'));
      this.#retry();
    };
  }

  /** Schedules the next connection, unless an error listener closed us. */
  #retry() {
    if (this.#state === CLOSED) return;
    const delay = backoffDelay(this.#attempt, this.#backoff);
    this.#attempt += 1;
    this.dispatchEvent(new ReconnectingEvent(this.#attempt, delay));
    if (this.#state === CLOSED) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
  }

  #dispatchError(error) {
    const event = new Event('error');
    event.error = error;
    this.dispatchEvent(event);
  }

  /** Passes an event of the current EventSource on to the page's listeners. */
  #forward = (e) => {
    if (e.target !== this.#source) return;
    if (e.type === 'mercure' && this.#lostEvents) {
      const signal = lostEventsSignal(e.data);
      if (signal) {
        this.dispatchEvent(new LostEventsEvent(signal.requested, signal.earliest));
        return;
      }
    }
    // The browser keeps an id across its own reconnections; an empty one
    // is the start of a fresh EventSource that resumes from the query, and
    // the signal (which carries no id) may come before any event does.
    if (e.lastEventId !== '') this.#lastEventId = e.lastEventId;
    this.dispatchEvent(new MessageEvent(e.type, { data: e.data, lastEventId: e.lastEventId, origin: e.origin }));
  };
}

/** The `events_lost` document in a `mercure` event's data, or null. */
function lostEventsSignal(data) {
  try {
    const doc = JSON.parse(data);
    if (doc?.type === 'events_lost' && typeof doc.requested === 'string') {
      return { requested: doc.requested, earliest: typeof doc.earliest === 'string' ? doc.earliest : null };
    }
  } catch {
    // Not JSON: not the hub's signal.
  }
  return null;
}

// Types of herald.js, written by hand beside it.

/** Reconnection delays after the browser gave up: full jitter, in ms. */
export interface Backoff {
  /** The ceiling of the first delay (default 1000). */
  initial?: number;
  /** The largest ceiling (default 30000). */
  max?: number;
  /** How much the ceiling grows with each failed attempt (default 2). */
  factor?: number;
}

/**
 * Where the token of the next connection comes from: a string, `null` or
 * `''` for none (as when the page set a cookie itself).
 */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface HeraldEventSourceOptions {
  /** Draft-07 `topic` selectors (exact topics, URI templates, `*`). */
  topics?: string | string[];
  /** Draft-08 `match` matchers (exact topics). */
  match?: string | string[];
  /** Draft-08 `match_urlpattern` matchers (URL patterns). */
  matchUrlpattern?: string | string[];
  /**
   * The token, sent as the `authorization` query parameter (a draft-07
   * JWT only: an access token, or any token on a hub speaking only
   * draft-08, is refused there; set the `__Secure-mercure_access_token`
   * cookie instead and return null). A
   * function is called before each connection the module opens, the first
   * included, so it can hand a fresh token each time.
   */
  token?: string | TokenSource;
  /** Where to resume from at the first connection (also `'earliest'`). */
  lastEventId?: string;
  /** Passed to each EventSource: send cookies to a hub on another origin. */
  withCredentials?: boolean;
  /** Reconnection delays; defaults in `DEFAULT_BACKOFF`. */
  backoff?: Backoff;
  /**
   * Ask for Herald's lost-events signal (`lost_events=1`) and dispatch it
   * as `lostevents` (default true). Set false for hubs that refuse unknown
   * parameters.
   */
  lostEvents?: boolean;
}

/** `lostevents`: the hub no longer held the id a connection resumed from. */
export declare class LostEventsEvent extends Event {
  constructor(requested: string, earliest: string | null);
  readonly type: 'lostevents';
  /** The id the connection resumed from. */
  readonly requested: string;
  /**
   * The id of the first event replayed after it (everything missed came
   * before that one), or null when the replay sent nothing.
   */
  readonly earliest: string | null;
}

/** `reconnecting`: the module opens a new connection after `delay` ms. */
export declare class ReconnectingEvent extends Event {
  constructor(attempt: number, delay: number);
  readonly type: 'reconnecting';
  /** 1 for the first attempt since the last successful connection. */
  readonly attempt: number;
  /** Milliseconds until the attempt. */
  readonly delay: number;
}

/** An `error` event; `error` is set when the token callback failed. */
export interface HeraldErrorEvent extends Event {
  readonly error?: unknown;
}

export interface HeraldEventSourceEventMap {
  open: Event;
  message: MessageEvent<string>;
  error: HeraldErrorEvent;
  lostevents: LostEventsEvent;
  reconnecting: ReconnectingEvent;
}

/**
 * An EventSource on a Mercure hub that reconnects after the browser gives
 * up (an HTTP error, another content type), with backoff and jitter,
 * resuming from the last event id, with a fresh token each time.
 */
export declare class HeraldEventSource extends EventTarget {
  /**
   * `hub`: the hub's URL (`https://hub.example/.well-known/mercure`),
   * resolved against the page; with neither `topics` nor `match…` options
   * it is the whole subscription URL.
   */
  constructor(hub: string | URL, options?: HeraldEventSourceOptions);

  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSED: 2;

  /** The subscription URL, without token or resume position. */
  readonly url: string;
  /** CLOSED only after `close()`: the module is retrying otherwise. */
  readonly readyState: 0 | 1 | 2;
  readonly withCredentials: boolean;
  /** The id of the last event received: where the next connection resumes. */
  readonly lastEventId: string;

  onopen: ((this: HeraldEventSource, ev: Event) => any) | null;
  onmessage: ((this: HeraldEventSource, ev: MessageEvent<string>) => any) | null;
  onerror: ((this: HeraldEventSource, ev: HeraldErrorEvent) => any) | null;
  onlostevents: ((this: HeraldEventSource, ev: LostEventsEvent) => any) | null;

  addEventListener<K extends keyof HeraldEventSourceEventMap>(
    type: K,
    listener: (this: HeraldEventSource, ev: HeraldEventSourceEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Any other event type the hub sends (`type` of an update). */
  addEventListener(
    type: string,
    listener: (this: HeraldEventSource, ev: MessageEvent<string>) => any,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof HeraldEventSourceEventMap>(
    type: K,
    listener: (this: HeraldEventSource, ev: HeraldEventSourceEventMap[K]) => any,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ): void;

  /** Ends the connection and every retry, for good. */
  close(): void;
}

/** 1 s, doubling to 30 s. */
export declare const DEFAULT_BACKOFF: Readonly<Required<Backoff>>;

/**
 * The delay before reconnection attempt `attempt` (0 for the first since a
 * successful connection): uniform in [0, min(max, initial * factor^attempt)).
 */
export declare function backoffDelay(attempt: number, backoff?: Backoff, random?: () => number): number;

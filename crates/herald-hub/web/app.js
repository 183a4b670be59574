// Herald's web UI: a live page, a debugger and live stats. Plain JavaScript,
// no build step; the hub embeds this file and serves it at /ui/app.js.
//
// The live view subscribes with an EventSource to the hub's own
// /.well-known/mercure and logs each event (id, type, data, time), the
// connection's state, and each reconnection with the Last-Event-ID it
// resumed from. The publish form POSTs to the same path. The stats view
// follows /.well-known/herald/stats, an event stream of the hub's counters.
'use strict';

(() => {
  const HUB = new URL('/.well-known/mercure', location.origin).href;
  const STATS = new URL('/.well-known/herald/stats', location.origin).href;
  const $ = (id) => document.getElementById(id);

  // ---------- helpers ----------

  const lines = (text) => text.split(/\r\n|\r|\n/).map((l) => l.trim()).filter(Boolean);
  const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  const jsString = (s) => JSON.stringify(String(s));
  const clock = () => {
    const d = new Date();
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  };
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // The mercureAuthorization cookie the hub reads a subscriber's token
  // from, scoped to the hub's path: `token` sets it, null clears it (an
  // expiry in the past). Script cannot touch an HttpOnly cookie an
  // application set, so clearing only ever drops the one this page set.
  const authorizationCookie = (token) => {
    const value = token === null ? '' : encodeURIComponent(token);
    const expires = token === null ? '; expires=Thu, 01 Jan 1970 00:00:00 GMT' : '';
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    return `mercureAuthorization=${value}; path=${new URL(HUB).pathname}; SameSite=Strict${expires}${secure}`;
  };

  // Form fields survive a reload (tokens included: this is a developer tool).
  const remembered = ['sub-topics', 'sub-types', 'sub-token', 'pub-topics', 'pub-token'];
  const storage = (() => {
    try { return window.localStorage; } catch { return null; }
  })();
  for (const id of remembered) {
    const saved = storage && storage.getItem(`herald.${id}`);
    if (saved !== null && saved !== undefined) $(id).value = saved;
    $(id).addEventListener('change', () => storage && storage.setItem(`herald.${id}`, $(id).value));
  }

  // ---------- views ----------

  let statsSource = null;
  function showView() {
    const stats = location.hash === '#stats';
    $('view-live').hidden = stats;
    $('view-stats').hidden = !stats;
    for (const [link, current] of [[$('nav-live'), !stats], [$('nav-stats'), stats]]) {
      if (current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    // The stats stream only runs while it is shown: over HTTP/1.1 a browser
    // has only six connections per origin to share.
    if (stats && !statsSource) startStats();
    if (!stats && statsSource) stopStats();
  }
  window.addEventListener('hashchange', showView);

  // ---------- the event log ----------

  const log = $('log');
  let eventCount = 0;

  function append(item) {
    // Follow new events while the reader is at the bottom of the log (the
    // log card scrolls on its own on wide screens).
    const card = log.parentElement;
    const atBottom = card.scrollHeight - card.scrollTop - card.clientHeight < 40;
    log.append(item);
    $('log-empty').hidden = true;
    if (atBottom) card.scrollTop = card.scrollHeight;
  }

  function logEvent(e) {
    eventCount += 1;
    $('log-count').textContent = `${eventCount} event${eventCount === 1 ? '' : 's'}`;
    const item = el('li', 'event');
    item.dataset.id = e.lastEventId;
    item.dataset.type = e.type;
    item.append(el('time', '', clock()));
    const meta = el('div', 'meta');
    meta.append(el('span', 'id', e.lastEventId || '(no id)'), el('span', 'type', e.type));
    item.append(meta, el('pre', 'data', e.data));
    append(item);
  }

  function logSystem(text, kind = '') {
    const item = el('li', `system ${kind}`.trim());
    item.append(el('time', '', clock()), el('span', 'text', text));
    append(item);
    return item;
  }

  $('clear-log').addEventListener('click', () => {
    log.replaceChildren();
    eventCount = 0;
    $('log-count').textContent = '0 events';
    $('log-empty').hidden = false;
  });

  // ---------- subscribing ----------

  let source = null;
  let listening = new Set();
  let lastId = '';
  let opened = false;
  let lost = false;

  function setState(state, text) {
    const badge = $('state');
    badge.className = `state state-${state}`;
    badge.textContent = text || state;
    badge.dataset.state = state;
  }

  function listen(type) {
    if (!source || !type || listening.has(type)) return;
    listening.add(type);
    source.addEventListener(type, onEvent);
  }

  function onEvent(e) {
    lastId = e.lastEventId;
    logEvent(e);
  }

  // The hub's lost-events signal (asked for with lost_events=1): the id the
  // stream resumed from is no longer in history, so updates after it may
  // have been missed. It carries no id: the resume position is unchanged.
  function onSignal(e) {
    let signal;
    try {
      signal = JSON.parse(e.data);
    } catch {
      return;
    }
    if (!signal || signal.type !== 'events_lost') return;
    const requested = String(signal.requested ?? '');
    const earliest = signal.earliest == null ? null : String(signal.earliest);
    const item = logSystem(
      `History no longer holds ${requested || '(no id)'}: updates after it may have been missed. ` +
      (earliest ? `The replay starts at ${earliest}.` : 'History has nothing to replay.'),
      'lost',
    );
    item.dataset.requested = requested;
    item.dataset.earliest = earliest ?? '';
  }

  function subscribe(event) {
    if (event) event.preventDefault();
    unsubscribe(true);
    const topics = lines($('sub-topics').value);
    if (topics.length === 0) {
      logSystem('Give at least one topic selector (or * for all).', 'error');
      return;
    }
    const token = $('sub-token').value.trim();
    const tokenAs = document.querySelector('input[name="sub-token-as"]:checked').value;
    const resumeFrom = $('sub-last-event-id').value.trim();
    const url = new URL(HUB);
    // The page shows the hub's signal when history no longer holds the id
    // it resumes from (onSignal).
    url.searchParams.set('lost_events', '1');
    for (const t of topics) url.searchParams.append('topic', t);
    if (token && tokenAs === 'query') url.searchParams.set('authorization', token);
    // The browser sends a cookie with every request to its path: set it
    // only for a subscription that asked for it, and clear one left by an
    // earlier subscription otherwise.
    document.cookie = authorizationCookie(token && tokenAs === 'cookie' ? token : null);
    if (resumeFrom) url.searchParams.set('lastEventID', resumeFrom);

    source = new EventSource(url.href);
    listening = new Set();
    lastId = resumeFrom;
    opened = false;
    lost = false;
    listen('message');
    source.addEventListener('mercure', onSignal);
    for (const t of $('sub-types').value.split(',')) listen(t.trim());
    if ($('pub-type').value.trim()) listen($('pub-type').value.trim());
    setState('connecting');
    logSystem(`Subscribing to ${topics.join(', ')}${resumeFrom ? ` after ${resumeFrom}` : ''}…`);

    const current = source;
    source.onopen = () => {
      if (current !== source) return;
      setState('open');
      if (!opened) {
        opened = true;
        logSystem('Connected.');
      } else {
        const item = logSystem(`Reconnected, resumed from Last-Event-ID: ${lastId || '(none)'}`, 'reconnect');
        item.dataset.resumedFrom = lastId;
      }
      lost = false;
    };
    source.onerror = () => {
      if (current !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        setState('closed');
        logSystem('Connection failed; the browser will not retry (refused, or not an event stream).', 'error');
        $('unsubscribe').disabled = true;
      } else if (!lost) {
        lost = true;
        setState('connecting');
        logSystem(`Connection lost; reconnecting with Last-Event-ID: ${lastId || '(none)'}…`, 'reconnect');
      }
    };
    $('unsubscribe').disabled = false;
    showSubscribeSnippets(url, token, tokenAs);
  }

  function unsubscribe(quiet) {
    if (!source) return;
    source.close();
    source = null;
    setState('idle', 'not subscribed');
    $('unsubscribe').disabled = true;
    if (quiet !== true) logSystem('Unsubscribed.');
  }

  function showSubscribeSnippets(url, token, tokenAs) {
    const plain = new URL(url.href);
    plain.searchParams.delete('authorization');
    let curl = `curl -N ${shellQuote(plain.href)}`;
    if (token) curl += ` \\\n     -H ${shellQuote(`Authorization: Bearer ${token}`)}`;
    // With the query parameter, url carries the token; without a token,
    // it carries none.
    let js = `const es = new EventSource(${jsString(url.href)});`;
    if (token && tokenAs === 'cookie') {
      js = `// the mercureAuthorization cookie carries the token\ndocument.cookie = ${jsString(authorizationCookie(token))};\nconst es = new EventSource(${jsString(url.href)}, { withCredentials: true });`;
    }
    js += '\nes.onmessage = (e) => console.log(e.lastEventId, e.data);';
    js += "\n// lost_events=1: told when history no longer holds the id resumed from";
    js += "\nes.addEventListener('mercure', (e) => console.warn(JSON.parse(e.data)));";
    $('sub-curl').textContent = curl;
    $('sub-js').textContent = js;
    $('sub-snippets').hidden = false;
  }

  $('subscribe-form').addEventListener('submit', subscribe);
  $('unsubscribe').addEventListener('click', () => unsubscribe(false));

  // ---------- publishing ----------

  async function publish(event) {
    event.preventDefault();
    const result = $('publish-result');
    const body = new URLSearchParams();
    const topics = lines($('pub-topics').value);
    for (const t of topics) body.append('topic', t);
    body.append('data', $('pub-data').value);
    const fields = { id: $('pub-id').value.trim(), type: $('pub-type').value.trim(), retry: $('pub-retry').value.trim() };
    for (const [name, value] of Object.entries(fields)) if (value) body.append(name, value);
    if ($('pub-private').checked) body.append('private', 'on');
    const token = $('pub-token').value.trim();
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (fields.type) listen(fields.type);
    showPublishSnippets(body, token);

    result.className = 'result';
    result.textContent = 'Publishing…';
    try {
      const response = await fetch(HUB, { method: 'POST', headers, body, credentials: 'same-origin' });
      const text = (await response.text()).trim();
      if (response.ok) {
        result.className = 'result ok';
        result.textContent = `Published with id ${text}`;
        result.dataset.id = text;
      } else {
        result.className = 'result error';
        result.textContent = `${response.status} ${response.statusText}: ${text}`;
        delete result.dataset.id;
      }
    } catch (e) {
      result.className = 'result error';
      result.textContent = `The hub could not be reached: ${e.message}`;
    }
  }

  function showPublishSnippets(body, token) {
    const args = [];
    for (const [name, value] of body) {
      args.push(`--data-urlencode ${shellQuote(`${name}=${value}`)}`);
    }
    let curl = `curl ${shellQuote(HUB)}`;
    if (token) curl += ` \\\n     -H ${shellQuote(`Authorization: Bearer ${token}`)}`;
    for (const a of args) curl += ` \\\n     ${a}`;
    const pairs = [...body].map(([k, v]) => `  [${jsString(k)}, ${jsString(v)}],`).join('\n');
    const js = `const response = await fetch(${jsString(HUB)}, {\n  method: 'POST',\n${token ? `  headers: { Authorization: ${jsString(`Bearer ${token}`)} },\n` : ''}  body: new URLSearchParams([\n${pairs}\n  ]),\n});\nconsole.log(response.status, await response.text()); // the event id`;
    $('pub-curl').textContent = curl;
    $('pub-js').textContent = js;
    $('pub-snippets').hidden = false;
  }

  $('publish-form').addEventListener('submit', publish);

  for (const button of document.querySelectorAll('button.copy')) {
    button.addEventListener('click', async () => {
      const text = $(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = 'Copied';
      } catch {
        // No clipboard permission (e.g. plain HTTP on another host): select it instead.
        const range = document.createRange();
        range.selectNodeContents($(button.dataset.copy));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = 'Selected';
      }
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
  }

  // ---------- live stats ----------

  const WINDOW = 60; // points per chart: one a second
  const series = { subscribers: [], publishes: [], deliveries: [], history: [], slow: [] };
  let previous = null;

  function startStats() {
    $('stats-state').textContent = 'connecting…';
    statsSource = new EventSource(STATS);
    statsSource.onopen = () => { $('stats-state').textContent = 'live'; };
    statsSource.onerror = () => {
      $('stats-state').textContent = statsSource && statsSource.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…';
    };
    statsSource.addEventListener('stats', (e) => {
      let s;
      try { s = JSON.parse(e.data); } catch { return; }
      updateStats(s);
    });
  }

  function stopStats() {
    statsSource.close();
    statsSource = null;
    previous = null;
  }

  function rate(now, before, key) {
    if (!before) return 0;
    const seconds = (now.time - before.time) / 1000;
    if (seconds <= 0) return 0;
    return Math.max(0, (now[key] - before[key]) / seconds);
  }

  function updateStats(s) {
    const values = {
      subscribers: s.subscribers,
      publishes: rate(s, previous, 'publishes_total'),
      deliveries: rate(s, previous, 'events_delivered_total'),
      history: s.history_events,
      slow: s.slow_disconnects_total,
    };
    previous = s;
    for (const [name, value] of Object.entries(values)) {
      const points = series[name];
      points.push(value);
      if (points.length > WINDOW) points.shift();
      const card = document.querySelector(`.stat[data-stat="${name}"]`);
      const shown = Number.isInteger(value) ? value.toLocaleString('en') : value.toFixed(1);
      card.querySelector('.value').textContent = shown;
      card.dataset.value = String(value);
      draw(card.querySelector('polyline'), points);
    }
    for (const cell of document.querySelectorAll('[data-total]')) {
      const v = s[cell.dataset.total];
      cell.textContent = typeof v === 'number' ? v.toLocaleString('en') : '–';
    }
  }

  function draw(polyline, points) {
    const max = Math.max(1, ...points);
    const step = 120 / (WINDOW - 1);
    const offset = (WINDOW - points.length) * step;
    polyline.setAttribute('points', points
      .map((v, i) => `${(offset + i * step).toFixed(1)},${(34 - (v / max) * 32).toFixed(1)}`)
      .join(' '));
  }

  // ---------- start ----------

  showView();
  // `/?topic=a&topic=b` subscribes at once, e.g. from a link or a bookmark.
  const preset = new URL(location.href).searchParams.getAll('topic');
  if (preset.length > 0) {
    $('sub-topics').value = preset.join('\n');
    subscribe();
  }
})();

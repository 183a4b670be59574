// Scenario 2: the hub is killed and restarted while the page is open, and
// events are published right after the restart, before the page has
// reconnected. The EventSource reconnects with its Last-Event-ID and the log
// shows every published id exactly once, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cleanup, loggedIds, publish, sleep, startHub, subscribeFromPage, until, withBrowser,
} from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/reconnect';

test('after a kill and restart the page resumes from its Last-Event-ID and logs every id once, in order', async (t) => {
  let hub = await startHub({ key: true });
  const { port, dataDir } = hub;
  let restarted = null;
  cleanup(t, { stop: async () => { await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); }, dataDir });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const resumedFrom = [];
    page.on('request', async (request) => {
      if (request.url().startsWith(`${hub.origin}/.well-known/mercure`)) {
        const headers = await request.allHeaders();
        resumedFrom.push(headers['last-event-id'] ?? null);
      }
    });
    await page.goto(`${hub.origin}/`);
    await subscribeFromPage(page, [TOPIC]);

    const before = ['before-1', 'before-2', 'before-3'];
    for (const id of before) await publish(hub, { topic: TOPIC, data: `published ${id}`, id });
    await page.waitForSelector('#log li.event[data-id="before-3"]');

    // Kill -9: no graceful close, the page just sees the connection drop.
    await hub.stop('SIGKILL');
    await page.waitForSelector('#state[data-state="connecting"]');
    restarted = await startHub({ key: true, port, dataDir });
    hub = restarted;
    const after = ['after-1', 'after-2', 'after-3'];
    for (const id of after) await publish(hub, { topic: TOPIC, data: `published ${id}`, id });
    // All of them went out before the browser came back (it waits ~3 s).
    assert.equal(await page.$('#log li.reconnect[data-resumed-from]'), null,
      'the page reconnected before the post-restart publishes were done');

    const note = await page.waitForSelector('#log li.reconnect[data-resumed-from]', { timeout: 15_000 });
    assert.equal(await note.getAttribute('data-resumed-from'), 'before-3');
    assert.match(await note.textContent(), /resumed from Last-Event-ID: before-3/);
    await page.waitForSelector('#log li.event[data-id="after-3"]');
    await page.waitForSelector('#state[data-state="open"]');
    // The browser itself sent the id of the last event it had received.
    await until(() => resumedFrom.includes('before-3'), 'a request carrying Last-Event-ID: before-3');
    assert.ok(resumedFrom.includes(null), 'the first request had no Last-Event-ID');

    // A moment for any duplicate to arrive, then the exact log.
    await sleep(300);
    assert.deepEqual(await loggedIds(page), [...before, ...after]);

    // History is durable (redb): it survived the kill, so a new
    // subscription from the start of history sees the events from before it
    // too, once each, in order, and one resuming after an id from before the
    // kill gets exactly what followed it.
    await page.click('#clear-log');
    await subscribeFromPage(page, [TOPIC], { lastEventId: 'earliest' });
    await page.waitForSelector('#log li.event[data-id="after-3"]');
    await sleep(300);
    assert.deepEqual(await loggedIds(page), [...before, ...after]);

    await page.click('#clear-log');
    await subscribeFromPage(page, [TOPIC], { lastEventId: 'before-1' });
    await page.waitForSelector('#log li.event[data-id="after-3"]');
    await sleep(300);
    assert.deepEqual(await loggedIds(page), [...before.slice(1), ...after]);
  });
});

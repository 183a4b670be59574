// Scenario 2: the hub is killed and restarted while the page is open, and
// events are published after the restart but before the page is back. The
// EventSource reconnects with its Last-Event-ID and the log shows every
// published id exactly once, in order.
//
// "Before the page is back" is not left to Chromium's reconnection delay:
// the test holds the browser's own reconnection request (Playwright's
// request interception) until the restarted hub has stored the events, so
// they can only reach the page by the replay from Last-Event-ID.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, eventSourceHeaders, loggedIds, publish, startHub, subscribeFromPage, until, withBrowser, holdRequests } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/reconnect';

test('after a kill and restart the page resumes from its Last-Event-ID and logs every id once, in order', async (t) => {
  let hub = await startHub({ key: true });
  const { port, dataDir } = hub;
  let restarted = null;
  cleanup(t, { stop: async () => { await hub.stop('SIGKILL'); if (restarted) await restarted.stop('SIGKILL'); }, dataDir });

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    const isSubscribe = (url) => new URL(url).pathname === '/.well-known/mercure';
    // The Last-Event-ID of every subscribe request as the browser put it on
    // the wire, and the one the hub answers with (it echoes the id it
    // resumed from).
    const onWire = await eventSourceHeaders(browser, page);
    const sent = () => onWire().map((headers) => headers['last-event-id'] ?? null);
    const answered = [];
    page.on('response', async (response) => {
      if (isSubscribe(response.url()) && response.request().method() === 'GET') {
        answered.push({ status: response.status(), lastEventId: (await response.allHeaders())['last-event-id'] ?? null });
      }
    });
    await page.goto(`${hub.origin}/`);
    await subscribeFromPage(page, [TOPIC]);

    const before = ['before-1', 'before-2', 'before-3'];
    for (const id of before) await publish(hub, { topic: TOPIC, data: `published ${id}`, id });
    await page.waitForSelector('#log li.event[data-id="before-3"]');

    // From the kill on, subscribe requests wait here until released.
    const hold = await holdRequests(page, isSubscribe);

    // Kill -9: no graceful close, the page just sees the connection drop.
    await hub.stop('SIGKILL');
    await page.waitForSelector('#state[data-state="connecting"]');
    // The browser's own reconnection attempt, held before it is sent.
    await until(() => hold.held.length > 0, "the browser's reconnection request");

    restarted = await startHub({ key: true, port, dataDir });
    hub = restarted;
    const after = ['after-1', 'after-2', 'after-3'];
    for (const id of after) await publish(hub, { topic: TOPIC, data: `published ${id}`, id });
    assert.deepEqual(await loggedIds(page), before, 'nothing arrived while the reconnection was held');

    await hold.release();
    const note = await page.waitForSelector('#log li.reconnect[data-resumed-from]');
    assert.equal(await note.getAttribute('data-resumed-from'), 'before-3');
    assert.match(await note.textContent(), /resumed from Last-Event-ID: before-3/);
    await page.waitForSelector('#log li.event[data-id="after-3"]');
    await page.waitForSelector('#state[data-state="open"]');
    // Two requests went out: the first, with no Last-Event-ID, and the held
    // reconnection, with the id of the last event the browser had
    // received; the restarted hub found that id in its durable history.
    await until(() => sent().length >= 2, 'the reconnection request on the wire');
    assert.deepEqual(sent(), [null, 'before-3']);
    await until(() => answered.some((a) => a.status === 200 && a.lastEventId === 'before-3'),
      'the restarted hub answering that it resumed from before-3');

    // A marker published after everything else: once it is in the log, a
    // duplicate of anything before it would be there too.
    await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker-1' });
    await page.waitForSelector('#log li.event[data-id="marker-1"]');
    assert.deepEqual(await loggedIds(page), [...before, ...after, 'marker-1']);

    // History is durable (redb): it survived the kill, so a new
    // subscription from the start of history sees the events from before it
    // too, once each, in order, and one resuming after an id from before the
    // kill gets exactly what followed it.
    await page.click('#clear-log');
    await subscribeFromPage(page, [TOPIC], { lastEventId: 'earliest' });
    await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker-2' });
    await page.waitForSelector('#log li.event[data-id="marker-2"]');
    assert.deepEqual(await loggedIds(page), [...before, ...after, 'marker-1', 'marker-2']);

    await page.click('#clear-log');
    await subscribeFromPage(page, [TOPIC], { lastEventId: 'before-1' });
    await publish(hub, { topic: TOPIC, data: 'marker', id: 'marker-3' });
    await page.waitForSelector('#log li.event[data-id="marker-3"]');
    assert.deepEqual(await loggedIds(page), [...before.slice(1), ...after, 'marker-1', 'marker-2', 'marker-3']);
  });
});

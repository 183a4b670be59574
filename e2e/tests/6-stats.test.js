// Scenario 6: the stats view's counters move when clients connect and
// events flow; it is fed by the hub's own stats event stream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, publish, startHub, subscribeFromPage, until, withBrowser } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/stats';

const stat = (page, name) => page.$eval(`.stat[data-stat="${name}"]`, (n) => Number(n.dataset.value ?? NaN));
const total = (page, name) => page.$eval(`[data-total="${name}"]`, (n) => Number(n.textContent.replace(/,/g, '')));

test('the stats view follows subscribers, publishes and deliveries as they happen', async (t) => {
  const hub = await startHub({ key: true });
  cleanup(t, hub);
  await withBrowser(t, async (browser) => {
    const stats = await browser.page();
    await stats.goto(`${hub.origin}/#stats`);
    await stats.waitForSelector('#stats-state:text("live")');
    await until(async () => (await stat(stats, 'subscribers')) === 0, 'subscribers at 0');
    assert.equal(await total(stats, 'publishes_total'), 0);
    assert.equal(await stat(stats, 'history'), 0);
    assert.ok(await stats.isHidden('#view-live'), 'the live view is hidden');
    assert.equal(await stats.getAttribute('#nav-stats', 'aria-current'), 'page');
    assert.equal(await stats.getAttribute('#nav-live', 'aria-current'), null);

    // Two clients connect.
    const live = await browser.page();
    await live.goto(`${hub.origin}/`);
    await subscribeFromPage(live, [TOPIC]);
    const second = await browser.page();
    await second.goto(`${hub.origin}/?topic=${encodeURIComponent(TOPIC)}`);
    await second.waitForSelector('#state[data-state="open"]');
    await until(async () => (await stat(stats, 'subscribers')) === 2, 'subscribers at 2');
    assert.equal(await total(stats, 'subscriptions_total'), 2);

    // Events flow: 10 publishes, each delivered to both.
    for (let i = 1; i <= 10; i++) await publish(hub, { topic: TOPIC, data: `tick ${i}`, id: `tick-${i}` });
    await until(async () => (await total(stats, 'publishes_total')) === 10, 'publishes total at 10');
    await until(async () => (await total(stats, 'events_delivered_total')) === 20, 'deliveries total at 20');
    await until(async () => (await stat(stats, 'history')) === 10, 'history size at 10');
    // The rates are computed from the counters' change between snapshots.
    await until(async () => (await stat(stats, 'publishes')) > 0, 'a publish rate above 0');
    await until(async () => (await stat(stats, 'deliveries')) > 0, 'a delivery rate above 0');
    const points = await stats.$eval('.stat[data-stat="publishes"] polyline', (n) => n.getAttribute('points'));
    assert.ok(points.split(' ').length >= 2, `the chart has points: ${points}`);
    assert.equal(await stat(stats, 'slow'), 0);

    // A client leaves.
    await second.close();
    await until(async () => (await stat(stats, 'subscribers')) === 1, 'subscribers back to 1');
    assert.deepEqual(browser.consoleErrors(stats), [], 'no console errors on the stats page');
  });
});

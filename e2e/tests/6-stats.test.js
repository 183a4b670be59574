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

    // Events flow: 10 publishes, each delivered to both. The totals are
    // cumulative, so they are exact whenever they are read.
    for (let i = 1; i <= 10; i++) await publish(hub, { topic: TOPIC, data: `tick ${i}`, id: `tick-${i}` });
    await until(async () => (await total(stats, 'publishes_total')) === 10, 'publishes total at 10');
    await until(async () => (await total(stats, 'events_delivered_total')) === 20, 'deliveries total at 20');
    await until(async () => (await stat(stats, 'history')) === 10, 'history size at 10');

    // The rates are the counters' change between two snapshots a second
    // apart, so one is above 0 only in a snapshot that follows publishes:
    // keep publishing until one shows (both rates read from the same
    // snapshot), rather than hope to catch a one-second window.
    let more = 0;
    await until(async () => {
      more += 1;
      await publish(hub, { topic: TOPIC, data: `more ${more}`, id: `more-${more}` });
      const [publishes, deliveries] = await stats.$$eval('.stat[data-stat="publishes"], .stat[data-stat="deliveries"]',
        (cards) => cards.map((n) => Number(n.dataset.value ?? NaN)));
      return publishes > 0 && deliveries > 0;
    }, 'publish and delivery rates above 0 while events flow');
    const published = 10 + more;
    await until(async () => (await total(stats, 'publishes_total')) === published, `publishes total at ${published}`);
    await until(async () => (await total(stats, 'events_delivered_total')) === 2 * published, `deliveries total at ${2 * published}`);
    // Once nothing is published, the next snapshot's rates are 0 again
    // while the totals stay: a rate, not a total.
    await until(async () => (await stat(stats, 'publishes')) === 0 && (await stat(stats, 'deliveries')) === 0, 'the rates back at 0');
    assert.equal(await total(stats, 'publishes_total'), published);
    // The chart keeps the last minute of rates: the flow is still on it.
    const points = await stats.$eval('.stat[data-stat="publishes"] polyline', (n) => n.getAttribute('points'));
    const heights = points.split(' ').map((p) => Number(p.split(',')[1]));
    assert.ok(heights.length >= 3, `the chart has points: ${points}`);
    assert.ok(heights.some((y) => y < 34), `the chart shows a rate above 0: ${points}`);
    assert.equal(heights.at(-1), 34, `the chart ends at 0: ${points}`);
    assert.equal(await stat(stats, 'slow'), 0);

    // A client leaves.
    await second.close();
    await until(async () => (await stat(stats, 'subscribers')) === 1, 'subscribers back to 1');
    assert.deepEqual(browser.consoleErrors(stats), [], 'no console errors on the stats page');
  });
});

// Scenario 1: the live page subscribes; a publish from the page's form and
// one from `herald pub` both appear in the log with their ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanup, herald, loggedIds, startHub, subscribeFromPage, until, withBrowser } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/live';

test('the live page shows a publish from its form and one from herald pub, with their ids', async (t) => {
  // Development mode: the page works with the tokens the banner prints.
  const hub = await startHub();
  cleanup(t, hub);
  const tokens = await hub.bannerTokens();
  assert.match(hub.stdout, new RegExp(`Web UI at ${hub.origin}/`));

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    assert.equal(await page.title(), 'Herald');
    await subscribeFromPage(page, [TOPIC]);
    assert.equal(await page.textContent('#state'), 'open');

    // From the form, with the printed publisher token.
    await page.fill('#pub-topics', TOPIC);
    await page.fill('#pub-data', 'from the form');
    await page.fill('#pub-id', 'form-1');
    await page.fill('#pub-type', '');
    await page.fill('#pub-token', tokens.publisher);
    await page.click('#publish');
    await page.waitForSelector('#publish-result.ok');
    assert.equal(await page.getAttribute('#publish-result', 'data-id'), 'form-1');
    const formEvent = await page.waitForSelector('#log li.event[data-id="form-1"]');
    assert.equal(await formEvent.$eval('.data', (n) => n.textContent), 'from the form');
    assert.equal(await formEvent.$eval('.type', (n) => n.textContent), 'message');
    assert.match(await formEvent.$eval('time', (n) => n.textContent), /^\d\d:\d\d:\d\d\.\d{3}$/);

    // The debugger shows the same publish as curl and JavaScript.
    assert.match(await page.textContent('#pub-curl'), /^curl 'http:\/\/127\.0\.0\.1:\d+\/\.well-known\/mercure'/);
    assert.match(await page.textContent('#pub-curl'), /--data-urlencode 'id=form-1'/);
    assert.match(await page.textContent('#pub-js'), /fetch\("http:\/\/127\.0\.0\.1:\d+\/\.well-known\/mercure"/);
    assert.match(await page.textContent('#sub-curl'), /^curl -N '.*topic=https%3A%2F%2Fexample\.com%2Fe2e%2Flive'/);
    assert.match(await page.textContent('#sub-js'), /new EventSource\(/);

    // From the command line.
    const id = herald(['pub', '--hub', hub.origin, '--topic', TOPIC, '--data', 'from herald pub',
      '--id', 'cli-1', '--token', tokens.publisher]).trim();
    assert.equal(id, 'cli-1');
    const cliEvent = await page.waitForSelector('#log li.event[data-id="cli-1"]');
    assert.equal(await cliEvent.$eval('.data', (n) => n.textContent), 'from herald pub');

    // A publish without an id gets one from the hub, shown in the log too.
    await page.fill('#pub-id', '');
    await page.fill('#pub-data', 'hub-made id');
    await page.click('#publish');
    const generated = await until(async () => {
      const value = await page.getAttribute('#publish-result', 'data-id');
      return value && value.startsWith('urn:uuid:') ? value : null;
    }, 'a hub-generated id');
    await page.waitForSelector(`#log li.event[data-id="${generated}"]`);

    assert.deepEqual(await loggedIds(page), ['form-1', 'cli-1', generated]);
    assert.equal(await page.textContent('#log-count'), '3 events');

    // Clear log empties it.
    await page.click('#clear-log');
    assert.deepEqual(await loggedIds(page), []);

    assert.deepEqual(browser.consoleErrors(), [], 'no console errors');
  });
});

test('the page is usable at 360 px wide', async (t) => {
  const hub = await startHub();
  cleanup(t, hub);
  await withBrowser(t, { viewport: { width: 360, height: 740 } }, async (browser) => {
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    // Nothing is wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    for (const id of ['#subscribe', '#publish', '#clear-log', '#sub-topics', '#pub-data']) {
      assert.ok(await page.isVisible(id), `${id} is visible`);
      const box = await page.locator(id).boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 360, `${id} fits: ${JSON.stringify(box)}`);
    }
    await page.click('a[href="#stats"]');
    await page.waitForSelector('#stats-state:text("live")');
    const statsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(statsOverflow <= 0, `the stats view is ${statsOverflow}px wider than the screen`);
    assert.deepEqual(browser.consoleErrors(), [], 'no console errors');
  });
});

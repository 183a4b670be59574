// Takes the README's screenshots of the web UI into docs/images/:
//   node screenshots.js      (from e2e/, after building target/debug/herald)
// Not part of the test suite: it writes into the repository.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { cleanup, publish, PUBLISHER_TOKEN, ROOT, sleep, startHub, subscribeFromPage, withBrowser } from './lib/harness.js';

const out = path.join(ROOT, 'docs', 'images');
mkdirSync(out, { recursive: true });
const TOPIC = 'https://example.com/books/1';

const t = { name: 'screenshots', after: (fn) => process.once('beforeExit', fn) };
const hub = await startHub({ key: true });
cleanup(t, hub);

async function scene(browser, width, height, file) {
  const page = await browser.page();
  await page.setViewportSize({ width, height });
  await page.goto(`${hub.origin}/`);
  await subscribeFromPage(page, [TOPIC, 'https://example.com/books/{id}'], {});
  await page.fill('#pub-topics', TOPIC);
  await page.fill('#pub-data', '{"title":"Dune","price":9.5}');
  await page.fill('#pub-id', 'book-1-v2');
  await page.fill('#pub-type', 'update');
  await page.fill('#pub-token', PUBLISHER_TOKEN);
  await page.click('#publish');
  await page.waitForSelector('#log li.event[data-id="book-1-v2"]');
  await publish(hub, { topic: TOPIC, data: '{"title":"Dune","price":8}', id: 'book-1-v3' });
  await page.waitForSelector('#log li.event[data-id="book-1-v3"]');
  await page.click('#pub-snippets summary');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(out, file), fullPage: true });
  return page;
}

await withBrowser(t, async (browser) => {
  await scene(browser, 1280, 820, 'ui-desktop.png');
  await scene(browser, 360, 740, 'ui-mobile.png');
  const stats = await browser.page();
  await stats.setViewportSize({ width: 1280, height: 560 });
  await stats.goto(`${hub.origin}/#stats`);
  for (let i = 0; i < 8; i++) {
    for (let j = 0; j <= i % 4; j++) await publish(hub, { topic: TOPIC, data: `tick ${i}.${j}` });
    await sleep(1000);
  }
  await stats.screenshot({ path: path.join(out, 'ui-stats.png') });
});
console.log(`screenshots written to ${out}`);
await hub.stop('SIGKILL');

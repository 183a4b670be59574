// Scenario 4: a page on another origin subscribes with `withCredentials`.
// It works when the hub's --cors-origin allows that origin, and fails when
// it does not.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { cleanup, hubStats, publish, startHub, until, withBrowser } from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/cors';

/** A tiny static server on 127.0.0.1 serving one page, its own origin. */
async function startApp(t) {
  const page = `<!doctype html><meta charset="utf-8"><title>app</title>
<script>
  window.subscribe = (hubUrl) => {
    window.result = { opened: false, errors: 0, ids: [], state: null };
    const es = new EventSource(hubUrl, { withCredentials: true });
    es.onopen = () => { window.result.opened = true; };
    es.onerror = () => { window.result.errors += 1; window.result.state = es.readyState; };
    es.onmessage = (e) => window.result.ids.push(e.lastEventId);
    window.es = es;
  };
</script>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

test('a cross-origin page subscribes with credentials when its origin is allowed, and fails when not', async (t) => {
  const app = await startApp(t);
  const allowed = await startHub({ key: true, args: ['--cors-origin', app] });
  const refused = await startHub({ key: true, args: ['--cors-origin', 'http://127.0.0.1:9'] });
  cleanup(t, allowed, refused);

  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    // What the browser sent: a cross-origin request carries the page's
    // Origin (a same-origin GET does not) and is sent in CORS mode.
    const requests = [];
    page.on('request', async (request) => {
      if (request.url().includes('/.well-known/mercure')) {
        const headers = await request.allHeaders();
        requests.push({ url: request.url(), origin: headers.origin, mode: headers['sec-fetch-mode'], site: headers['sec-fetch-site'] });
      }
    });
    const cors = [];
    page.on('response', async (response) => {
      if (response.url().includes('/.well-known/mercure')) {
        const headers = await response.allHeaders();
        cors.push({ url: response.url(), allowOrigin: headers['access-control-allow-origin'], credentials: headers['access-control-allow-credentials'] });
      }
    });
    await page.goto(`${app}/`);

    // Allowed: opens and receives.
    await page.evaluate((url) => window.subscribe(url), `${allowed.url}?topic=${encodeURIComponent(TOPIC)}`);
    await until(() => page.evaluate(() => window.result.opened), 'the allowed subscription to open');
    await publish(allowed, { topic: TOPIC, data: 'hi', id: 'cors-1' });
    await until(() => page.evaluate(() => window.result.ids.length === 1), 'the event');
    assert.deepEqual(await page.evaluate(() => window.result.ids), ['cors-1']);
    assert.equal(await page.evaluate(() => window.es.withCredentials), true);
    await until(() => requests.length >= 1 && cors.length >= 1, 'the request and response headers');
    assert.equal(await page.evaluate(() => location.origin), app);
    assert.deepEqual(requests[0], { url: requests[0].url, origin: app, mode: 'cors', site: 'same-site' },
      'the subscription is a cross-origin CORS request from the app');
    assert.ok(requests[0].url.startsWith(allowed.url));
    assert.equal(cors[0].allowOrigin, app);
    assert.equal(cors[0].credentials, 'true');
    await page.evaluate(() => window.es.close());

    // Refused: the browser blocks the response and gives up. CLOSED is
    // final, so what the page holds then is all it will ever get.
    await page.evaluate((url) => window.subscribe(url), `${refused.url}?topic=${encodeURIComponent(TOPIC)}`);
    await until(() => page.evaluate(() => window.result.errors > 0), 'the refused subscription to fail');
    const result = await page.evaluate(() => window.result);
    assert.equal(result.opened, false, 'it never opened');
    assert.equal(result.state, 2, 'EventSource.CLOSED: the browser does not retry a CORS failure');
    assert.deepEqual(result.ids, []);
    // It failed on CORS, not on the way: the hub served it.
    await until(() => requests.length >= 2, 'the refused request');
    assert.ok(requests[1].url.startsWith(refused.url));
    assert.equal((await hubStats(refused)).subscriptions_total, 1, 'the refused hub served the subscription');
  });
});

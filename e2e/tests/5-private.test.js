// Scenario 5: private updates never reach a page with no token, and do
// reach one with a subscriber cookie (or the token in the form); a
// subscription without a token after one with the cookie is anonymous.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cleanup, loggedIds, publish, startHub, subscribeFromPage, SUBSCRIBER_TOKEN, withBrowser,
} from '../lib/harness.js';

const TOPIC = 'https://example.com/e2e/private';

test('private updates reach only the page with a subscriber cookie or token', async (t) => {
  const hub = await startHub({ key: true });
  cleanup(t, hub);
  await withBrowser(t, async (browser) => {
    // No token, no cookie.
    const anonymous = await browser.page();
    await anonymous.goto(`${hub.origin}/`);
    await subscribeFromPage(anonymous, [TOPIC]);

    // Private first, then public: both pass through the same ordered
    // stream, so once the public one is in the log the private one would be
    // there already had it been delivered.
    await publish(hub, { topic: TOPIC, data: 'secret', id: 'private-1', private: 'on' });
    await publish(hub, { topic: TOPIC, data: 'news', id: 'public-1' });
    await anonymous.waitForSelector('#log li.event[data-id="public-1"]');
    assert.deepEqual(await loggedIds(anonymous), ['public-1']);

    // The mercureAuthorization cookie, as an application would set it.
    await browser.context.addCookies([{
      name: 'mercureAuthorization', value: SUBSCRIBER_TOKEN, domain: '127.0.0.1', path: '/.well-known/mercure', httpOnly: true, sameSite: 'Strict',
    }]);
    const withCookie = await browser.page();
    await withCookie.goto(`${hub.origin}/`);
    await subscribeFromPage(withCookie, [TOPIC]);

    await publish(hub, { topic: TOPIC, data: 'secret 2', id: 'private-2', private: 'on' });
    await publish(hub, { topic: TOPIC, data: 'news 2', id: 'public-2' });
    await withCookie.waitForSelector('#log li.event[data-id="public-2"]');
    assert.deepEqual(await loggedIds(withCookie), ['private-2', 'public-2']);
    await anonymous.waitForSelector('#log li.event[data-id="public-2"]');
    assert.deepEqual(await loggedIds(anonymous), ['public-1', 'public-2']);
  });

  // The token typed into the form (sent as the authorization query
  // parameter), in a fresh browser so that no cookie helps.
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    await subscribeFromPage(page, [TOPIC], { token: SUBSCRIBER_TOKEN, tokenAs: 'query' });
    await publish(hub, { topic: TOPIC, data: 'secret 3', id: 'private-3', private: 'on' });
    await publish(hub, { topic: TOPIC, data: 'news 3', id: 'public-3' });
    await page.waitForSelector('#log li.event[data-id="public-3"]');
    assert.deepEqual(await loggedIds(page), ['private-3', 'public-3']);
    assert.deepEqual(await page.context().cookies(), [], 'no cookie was involved');
  });

  // The token sent as the cookie from the form, then a subscription
  // without a token on the same page: the page clears its cookie, so the
  // second subscription is anonymous again.
  await withBrowser(t, async (browser) => {
    const page = await browser.page();
    await page.goto(`${hub.origin}/`);
    await subscribeFromPage(page, [TOPIC], { token: SUBSCRIBER_TOKEN, tokenAs: 'cookie' });
    assert.deepEqual((await page.context().cookies()).map((c) => [c.name, c.path]),
      [['mercureAuthorization', '/.well-known/mercure']]);
    await publish(hub, { topic: TOPIC, data: 'secret 4', id: 'private-4', private: 'on' });
    await publish(hub, { topic: TOPIC, data: 'news 4', id: 'public-4' });
    await page.waitForSelector('#log li.event[data-id="public-4"]');
    assert.deepEqual(await loggedIds(page), ['private-4', 'public-4']);

    await page.click('#clear-log');
    await subscribeFromPage(page, [TOPIC], { token: '', tokenAs: 'cookie' });
    assert.deepEqual(await page.context().cookies(), [], 'the cookie was cleared');
    await publish(hub, { topic: TOPIC, data: 'secret 5', id: 'private-5', private: 'on' });
    await publish(hub, { topic: TOPIC, data: 'news 5', id: 'public-5' });
    await page.waitForSelector('#log li.event[data-id="public-5"]');
    assert.deepEqual(await loggedIds(page), ['public-5']);
  });
});

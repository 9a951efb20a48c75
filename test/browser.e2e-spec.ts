/**
 * The demo chat page in a real browser (Debian's Chromium driven by
 * playwright-core): two users chat, see each other's presence and typing,
 * react and edit, and one of them resumes the messages it missed while its
 * connection was cut. Screenshots go to test-artifacts/.
 */
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { ConnectionRegistry } from '../libs/streaming/src/connections/connection-registry';
import { ARTIFACTS, launchChromium, prepareDemoPage } from './support/browser';
import { TestApp, startDemoApp } from './support/app';

jest.setTimeout(120_000);

describe('demo chat page in Chromium', () => {
  let app: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    prepareDemoPage();
    app = await startDemoApp({
      JWT_SECRET: 'browser-e2e-secret-6a1f0c93b8d24e57',
      FORGE_STREAMING_TYPING_TIMEOUT: '3',
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  const errors: string[] = [];

  async function userPage(name: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 650 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
    await page.goto(`${app.baseUrl}/`);
    await page.fill('#username', name);
    await page.click('#login-button');
    await page.waitForSelector('#app:not(.hidden)');
    return page;
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

  it('two users chat with presence, typing, reactions, edits, and a resume after a cut connection', async () => {
    const alice = await userPage('alice');
    const bob = await userPage('bob');

    // Alice creates a room; Bob finds it in the list and joins.
    await alice.fill('#new-room-name', 'general');
    await alice.click('#create-room button');
    await alice.waitForSelector('#composer:not(.hidden)');
    await bob.reload();
    await bob.waitForSelector('#rooms li:has-text("general")');
    await bob.click('#rooms li:has-text("general")');
    await bob.click('#join-room');
    await bob.waitForSelector('#composer:not(.hidden)');

    // Presence: each sees the other online in the member list.
    await alice.waitForSelector('#member-list li[data-user-id="bob"][data-status="online"]');
    await bob.waitForSelector('#member-list li[data-user-id="alice"][data-status="online"]');

    // Chat both ways.
    await alice.fill('#message-input', 'hello bob');
    await alice.press('#message-input', 'Enter');
    await bob.waitForSelector('.msg:has-text("hello bob")');

    // Typing indicator, then the message.
    await bob.type('#message-input', 'hi alice', { delay: 20 });
    await alice.waitForSelector('#typing:has-text("bob is typing")');
    await bob.press('#message-input', 'Enter');
    await alice.waitForSelector('.msg:has-text("hi alice")');

    // Reactions: Alice reacts to Bob's message; Bob sees the count.
    const bobsMessage = alice.locator('.msg:has-text("hi alice")');
    await bobsMessage.hover();
    await bobsMessage.locator('button[title="react 👍"]').click();
    await bob.waitForSelector('.msg:has-text("hi alice") .reaction:has-text("👍 1")');

    // Edit: Bob edits his own message inline (no prompt()); Alice sees the new text marked edited.
    // While editing, the text is the editor's value, so the message is found by id.
    const ownId = await bob.locator('.msg:has-text("hi alice")').getAttribute('data-id');
    const own = bob.locator(`.msg[data-id="${ownId}"]`);
    await own.hover();
    await own.locator('button.edit').click();
    await own.locator('.edit-input').fill('hi alice, edited');
    await own.locator('.edit-input').press('Enter');
    await alice.waitForSelector('.msg:has-text("hi alice, edited") .edited');
    await shot(alice, 'alice-chat');
    await shot(bob, 'bob-chat');

    // Cut Bob's connection while his browser is offline: he misses messages.
    await bob.context().setOffline(true);
    const registry = app.app.get(ConnectionRegistry);
    for (const conn of [...registry.userConnections('bob')]) conn.close(4000, 'cut by the test');
    await bob.waitForSelector('#banner:has-text("reconnecting")');
    await shot(bob, 'bob-reconnecting');
    for (const text of ['missed one', 'missed two', 'missed three']) {
      await alice.fill('#message-input', text);
      await alice.press('#message-input', 'Enter');
      await alice.waitForSelector(`.msg:has-text("${text}")`);
    }
    await bob.context().setOffline(false);

    // Bob resumes: the missed messages appear once each, in order, and the banner goes away.
    await bob.waitForSelector('.msg:has-text("missed three")', { timeout: 20_000 });
    await bob.waitForSelector('#banner', { state: 'hidden' });
    const texts = await bob.locator('.msg .text').allTextContents();
    const missed = texts.filter((t) => t.startsWith('missed'));
    expect(missed).toEqual(['missed one', 'missed two', 'missed three']);
    const seqs = await bob
      .locator('.msg')
      .evaluateAll((nodes) => nodes.map((n) => Number((n as HTMLElement).dataset.seq)));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    await shot(bob, 'bob-resumed');

    expect(errors).toEqual([]);
  });
});

/**
 * The demo chat page's direct messages, threads, server-side unread state and
 * search, in a real browser (Debian's Chromium driven by playwright-core, set
 * up as in demo-layout.e2e-spec.ts): two users start a DM from the member
 * list, reply in a thread, get unread badges from the server's read state
 * (kept across a reload, cleared by reading in another tab) and search a
 * room; then an admin opens the admin console from the page and disconnects
 * a user. Screenshots (thread panel open, admin console) go to test-artifacts/.
 */
import { join } from 'node:path';
import { type Browser, type Locator, type Page } from 'playwright-core';
import { ARTIFACTS, launchChromium, prepareDemoPage } from './support/browser';
import { TestApp, eventually, startDemoApp } from './support/app';
import { ClientPool, type WsClient } from './support/ws-client';

jest.setTimeout(120_000);

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('demo chat page: DMs, threads, unread state and search in Chromium', () => {
  let app: TestApp;
  let browser: Browser;
  const pool = new ClientPool();
  const errors: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    prepareDemoPage();
    app = await startDemoApp({
      JWT_SECRET: 'features-e2e-secret-6b1e9d2f47a03c58',
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
      DEMO_ADMINS: 'root',
    });
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const context of browser?.contexts() ?? []) await context.close();
    await pool.closeAll();
    expect(errors.splice(0)).toEqual([]);
    expect(dialogs.splice(0)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function openPage(name: string, width: number, height: number): Promise<Page> {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
    page.on('dialog', (d) => {
      dialogs.push(`${name}: ${d.type()} ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(`${app.baseUrl}/`);
    await page.fill('#username', name);
    await page.click('#login-button');
    await page.waitForSelector('#app:not(.hidden)');
    return page;
  }

  async function wsUser(name: string): Promise<WsClient> {
    return pool.connect(app.wsUrl, { token: await app.login(name) });
  }

  /** The `.msg` of the message list whose text is exactly `text`. */
  const message = (page: Page, text: string): Locator =>
    page.locator('.msg').filter({
      has: page.locator('.text', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }),
    });

  async function send(page: Page, text: string): Promise<Locator> {
    await page.fill('#message-input', text);
    await page.press('#message-input', 'Enter');
    const m = message(page, text);
    await m.waitFor();
    return m;
  }

  const room = (page: Page, name: string): Locator => page.locator(`#rooms li:has-text("${name}")`);
  const dm = (page: Page, peer: string): Locator => page.locator(`#rooms li[data-peer="${peer}"]`);
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

  it('DM from the member list, a thread reply, unread badges from the server, and search', async () => {
    const alice = await openPage('alice', 1280, 800);
    const bob = await openPage('bob', 1280, 800);

    // A shared room, so that each sees the other in the member list.
    await alice.fill('#new-room-name', 'lobby');
    await alice.click('#create-room button');
    await alice.waitForSelector('#composer:not(.hidden)');
    await room(bob, 'lobby').click();
    await bob.click('#join-room');
    await bob.waitForSelector('#composer:not(.hidden)');

    // --- DM: alice messages bob from the member list (no button next to herself).
    const bobRow = alice.locator('#member-list li[data-user-id="bob"]');
    await bobRow.waitFor();
    expect(await alice.locator('#member-list li[data-user-id="alice"] .dm-btn').count()).toBe(0);
    await bobRow.locator('.dm-btn').click();
    await dm(alice, 'bob').waitFor();
    await alice.waitForSelector('#room-title:text-is("bob")');
    expect(await dm(alice, 'bob').getAttribute('class')).toContain('active');
    expect(await alice.locator('#rooms li.section').allTextContents()).toEqual([
      'Direct messages',
      'Your rooms',
    ]);
    const dmId = (await dm(alice, 'bob').getAttribute('data-room-id'))!;
    await send(alice, 'hello in private');

    // Bob sees it in his Direct messages group, named after alice, and gets the message.
    await dm(bob, 'alice').waitFor();
    expect(await dm(bob, 'alice').locator('.room-name').textContent()).toBe('alice');
    expect((await bob.locator('#rooms li.section').allTextContents())[0]).toBe('Direct messages');
    await dm(bob, 'alice').click();
    await message(bob, 'hello in private').waitFor();
    expect(await bob.locator('#room-title').textContent()).toBe('alice');

    // --- Thread: bob replies in a thread to alice's message in the lobby.
    await room(alice, 'lobby').click();
    const rootOnAlice = await send(alice, 'deploy plan for friday');
    const rootId = (await rootOnAlice.getAttribute('data-id'))!;
    await room(bob, 'lobby').click();
    const rootOnBob = message(bob, 'deploy plan for friday');
    await rootOnBob.waitFor();
    await rootOnBob.hover();
    await rootOnBob.locator('button[title="Reply in thread"]').click();
    await bob.waitForSelector('#side-panel .pmsg:has-text("deploy plan for friday")');
    await bob.fill('#thread-input', 'sounds good to me');
    await bob.press('#thread-input', 'Enter');
    await bob.waitForSelector('#side-panel .pmsg .ptext:text-is("sounds good to me")');
    for (const page of [alice, bob])
      await page.waitForSelector(`.msg[data-id="${rootId}"] .thread-link:text-is("1 reply")`);
    await alice.click(`.msg[data-id="${rootId}"] .thread-link`);
    await alice.waitForSelector('#side-panel .pmsg .ptext:text-is("sounds good to me")');
    expect(await alice.locator('#side-panel .pmsg .ptext').allTextContents()).toEqual([
      'deploy plan for friday',
      'sounds good to me',
    ]);
    // A reply sent from the panel arrives live in the other user's open panel.
    await alice.fill('#thread-input', 'great, thanks');
    await alice.press('#thread-input', 'Enter');
    await bob.waitForSelector('#side-panel .pmsg .ptext:text-is("great, thanks")');
    await bob.waitForSelector(`.msg[data-id="${rootId}"] .thread-link:text-is("2 replies")`);
    const doc = await alice.evaluate(() => document.documentElement.scrollWidth);
    expect(doc).toBeLessThanOrEqual(1280);
    await shot(alice, 'features-1280x800');

    // --- Unread: alice writes in the DM while bob is in the lobby.
    await dm(alice, 'bob').click();
    await send(alice, 'unread one');
    await send(alice, 'unread two');
    await bob.waitForSelector('#rooms li[data-peer="alice"] .badge:text-is("2")');
    // After a reload the badge comes from the server's read state.
    await bob.reload();
    await bob.waitForSelector('#app:not(.hidden)');
    await bob.waitForSelector('#rooms li[data-peer="alice"] .badge:text-is("2")');
    // Another tab of bob's shows it too, and clears it when bob reads in the first tab (read_state).
    const bobTab = await openPage('bob', 1280, 800);
    await bobTab.waitForSelector('#rooms li[data-peer="alice"] .badge:text-is("2")');
    await dm(bob, 'alice').click();
    await message(bob, 'unread two').waitFor();
    await bob.waitForSelector('#rooms li[data-peer="alice"] .badge', { state: 'detached' });
    await bobTab.waitForSelector('#rooms li[data-peer="alice"] .badge', { state: 'detached' });
    const bobWs = await wsUser('bob');
    await eventually(async () => {
      const { rooms } = (await bobWs.ok('get_unread', {})) as {
        rooms: Array<{ room_id: string; unread: number }>;
      };
      expect(rooms.find((r) => r.room_id === dmId)?.unread).toBe(0);
    });
    // Back in the lobby and reloaded: still no badge.
    await room(bob, 'lobby').click();
    await message(bob, 'deploy plan for friday').waitFor();
    await bob.reload();
    await message(bob, 'deploy plan for friday').waitFor();
    await dm(bob, 'alice').waitFor();
    expect(await dm(bob, 'alice').locator('.badge').count()).toBe(0);

    // --- Search in the lobby: results in the side panel, newest first, clickable.
    await send(bob, 'friday is fine');
    await bob.fill('#search-input', 'Friday');
    await bob.press('#search-input', 'Enter');
    await bob.waitForSelector('#side-panel[data-kind="search"] .pmsg');
    expect(await bob.locator('#side-panel .pmsg .ptext').allTextContents()).toEqual([
      'friday is fine',
      'deploy plan for friday',
    ]);
    await bob.locator('#side-panel .pmsg', { hasText: 'deploy plan for friday' }).click();
    await bob.waitForSelector(`.msg.flash[data-id="${rootId}"]`);
    expect(await message(bob, 'deploy plan for friday').isVisible()).toBe(true);

    // --- A phone: the thread panel is a drawer over the chat.
    const phone = await openPage('alice', 390, 844);
    await phone.click('#toggle-sidebar');
    await room(phone, 'lobby').click();
    await phone.click(`.msg[data-id="${rootId}"] .thread-link`);
    await phone.waitForSelector('#side-panel .pmsg .ptext:text-is("great, thanks")');
    const panel = (await phone.locator('#side-panel').boundingBox())!;
    expect(panel.x).toBeGreaterThanOrEqual(0);
    expect(panel.x + panel.width).toBeLessThanOrEqual(390);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await phone.locator('#thread-input').isVisible()).toBe(true);
    await shot(phone, 'features-390x844');
    await phone.keyboard.press('Escape');
    await phone.waitForSelector('#side-panel', { state: 'hidden' });
  });

  it('the admin console: an admin opens it from the page, sees nodes, rooms and users, and disconnects a user', async () => {
    const dave = await openPage('dave', 1280, 800);
    await dave.fill('#new-room-name', 'ops-room');
    await dave.click('#create-room button');
    await dave.waitForSelector('#composer:not(.hidden)');
    await send(dave, 'anyone around?');
    // Only admins see the link.
    expect(await dave.locator('#admin-link').isVisible()).toBe(false);

    const root = await openPage('root', 1280, 800);
    const link = root.locator('#admin-link');
    await link.waitFor();
    const [consolePage] = await Promise.all([root.context().waitForEvent('page'), link.click()]);
    consolePage.on('pageerror', (e) => errors.push(`console: ${e.message}`));
    await consolePage.waitForSelector('#console:not([hidden])');
    // The token left the address bar.
    expect(consolePage.url()).not.toContain('token=');
    await consolePage.waitForSelector('#nodes tbody tr.self');
    await consolePage.waitForSelector('#rooms tbody tr:has-text("ops-room")');
    const daveRow = consolePage.locator('#users tbody tr[data-user="dave"]');
    await daveRow.waitFor();
    await consolePage.waitForFunction(
      () => Number(document.getElementById('t-connections')?.textContent) >= 2,
    );
    // A few readings of the live graph (one a second).
    await consolePage.waitForFunction(
      () => (document.getElementById('graph-line')?.getAttribute('d') ?? '').split('L').length >= 3,
    );
    expect(await consolePage.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
    await shot(consolePage, 'admin-1280x800');

    // Disconnect dave: two clicks (arm, confirm); his page says why and does not reconnect.
    await daveRow.locator('button.disconnect').click();
    await daveRow.locator('button.disconnect.armed').click();
    await consolePage.waitForSelector('.toast:has-text("Disconnected dave: 1 connection closed")');
    await dave.waitForSelector('#banner:has-text("Disconnected: disconnected by an administrator")');
    await consolePage.waitForSelector('#users tbody tr[data-user="dave"]', { state: 'detached' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await dave.locator('#banner').textContent()).toContain('disconnected by an administrator');
    const stats = await app.http('GET', '/_/streaming/stats');
    expect(stats.json.active_connections).toBe(1); // root's page only

    // A phone: one column, nothing wider than the screen (tables scroll inside their cards).
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const small = await phone.newPage();
    small.on('pageerror', (e) => errors.push(`console phone: ${e.message}`));
    await small.goto(`${app.baseUrl}/_/streaming/admin`);
    await small.waitForSelector('#signin:not([hidden])');
    await small.fill('#token-input', await app.login('root'));
    await small.click('#signin-form button');
    await small.waitForSelector('#rooms tbody tr:has-text("ops-room")');
    await small.waitForSelector('#nodes tbody tr.self');
    expect(await small.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(small, 'admin-390x844');
    // A token without the role is turned away with the reason.
    await small.click('#signout');
    await small.fill('#token-input', await app.login('mallory'));
    await small.click('#signin-form button');
    await small.waitForSelector('#signin-error:has-text("admin")');
  });
});

/**
 * The demo chat page as a user sees it, in a real browser (Debian's Chromium
 * driven by playwright-core, set up as in browser.e2e-spec.ts): the layout
 * fills the window and scrolls only the message list, follows the newest
 * message unless the user scrolled up, works on a phone-sized screen, renders
 * user text safely, edits inline, separates days, picks up other users' rooms,
 * shows errors as toasts, and follows the system's dark mode. Other users are
 * raw WebSocket clients. Screenshots go to test-artifacts/.
 */
import { join } from 'node:path';
import { type Browser, type Locator, type Page } from 'playwright-core';
import { ARTIFACTS, launchChromium, prepareDemoPage } from './support/browser';
import { TestApp, eventually, startDemoApp } from './support/app';
import { ClientPool, type WsClient } from './support/ws-client';

jest.setTimeout(120_000);

const DAY_MS = 86_400_000;

interface PageOptions {
  width: number;
  height: number;
  colorScheme?: 'light' | 'dark';
  timezoneId?: string;
  /** Runs before the page is loaded (e.g. to route its WebSocket). */
  beforeLoad?: (page: Page) => Promise<void>;
}

interface ListMetrics {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}

const atBottom = (m: ListMetrics): boolean => m.scrollTop + m.clientHeight >= m.scrollHeight - 2;
const pad = (n: number): string => String(n).padStart(2, '0');
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Relative luminance (0 black .. 1 white) of a computed `rgb(...)`/`rgba(...)` colour. */
function luminance(color: string): number {
  const [r, g, b] = (color.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** A frame from the server with the timestamps of messages whose text starts with "[yesterday]" moved back a day. */
function shiftYesterday(frame: string): string {
  type Shiftable = { content?: unknown; timestamp?: unknown } | undefined;
  const shift = (m: Shiftable) => {
    if (
      typeof m?.content === 'string' &&
      m.content.startsWith('[yesterday]') &&
      typeof m.timestamp === 'string'
    )
      m.timestamp = new Date(Date.parse(m.timestamp) - DAY_MS).toISOString();
  };
  return frame
    .split('\n')
    .map((line) => {
      if (!line.trim()) return line;
      const env = JSON.parse(line) as { type: string; data?: Shiftable & { messages?: Shiftable[] } };
      if (env.type === 'message') shift(env.data);
      if (Array.isArray(env.data?.messages)) for (const m of env.data.messages) shift(m);
      return JSON.stringify(env);
    })
    .join('\n');
}

describe('demo chat page layout and behaviour in Chromium', () => {
  let app: TestApp;
  let browser: Browser;
  const pool = new ClientPool();
  const errors: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    prepareDemoPage();
    app = await startDemoApp({
      JWT_SECRET: 'layout-e2e-secret-0d7f3a9c51e84b26',
      FORGE_STREAMING_TYPING_TIMEOUT: '3',
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
    });
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const context of browser?.contexts() ?? []) await context.close();
    await pool.closeAll();
    // Drained so that one failing test does not fail the next ones too.
    expect(errors.splice(0)).toEqual([]);
    expect(dialogs.splice(0)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** A fresh browser context showing the page; logged in as `name` unless `login` is false. */
  async function openPage(name: string, o: PageOptions, login = true): Promise<Page> {
    const context = await browser.newContext({
      viewport: { width: o.width, height: o.height },
      colorScheme: o.colorScheme ?? 'light',
      ...(o.timezoneId ? { timezoneId: o.timezoneId } : {}),
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
    // The page must never use alert/confirm/prompt (nor run injected script that would).
    page.on('dialog', (d) => {
      dialogs.push(`${name}: ${d.type()} ${d.message()}`);
      void d.dismiss();
    });
    await o.beforeLoad?.(page);
    await page.goto(`${app.baseUrl}/`);
    if (login) {
      await page.fill('#username', name);
      await page.click('#login-button');
      await page.waitForSelector('#app:not(.hidden)');
    }
    return page;
  }

  /** Another user, over a raw WebSocket. */
  async function wsUser(name: string): Promise<WsClient> {
    return pool.connect(app.wsUrl, { token: await app.login(name) });
  }

  async function roomWithMessages(owner: WsClient, name: string, texts: string[]): Promise<string> {
    const { room } = await owner.ok('create_room', { name });
    for (const content of texts) await owner.ok('send_message', { room_id: room.id, content });
    return room.id as string;
  }

  /** The `.msg` whose text is exactly `text`. */
  const message = (page: Page, text: string): Locator =>
    page.locator('.msg').filter({
      has: page.locator('.text', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }),
    });

  async function openAndJoin(page: Page, roomName: string): Promise<void> {
    await page.click(`#rooms li:has-text("${roomName}")`);
    await page.click('#join-room');
    await page.waitForSelector('#composer:not(.hidden)');
  }

  async function send(page: Page, text: string): Promise<Locator> {
    await page.fill('#message-input', text);
    await page.press('#message-input', 'Enter');
    const m = message(page, text);
    await m.waitFor();
    return m;
  }

  const listMetrics = (page: Page): Promise<ListMetrics> =>
    page.$eval('#messages', (l) => ({
      scrollTop: l.scrollTop,
      scrollHeight: l.scrollHeight,
      clientHeight: l.clientHeight,
    }));

  const documentSize = (page: Page) =>
    page.evaluate(() => {
      const root = document.scrollingElement ?? document.documentElement;
      return { height: root.scrollHeight, width: root.scrollWidth };
    });

  /** Top of the message with `id` relative to the top of the message list. */
  const offsetInList = (page: Page, id: string) =>
    page.$eval(
      '#messages',
      (l, msgId) => {
        const node = l.querySelector(`.msg[data-id="${msgId}"]`);
        return node ? node.getBoundingClientRect().top - l.getBoundingClientRect().top : NaN;
      },
      id,
    );

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

  it('fills a 1280×760 window: only the message list scrolls, it follows the newest message, and offers a jump button when scrolled up', async () => {
    const carol = await wsUser('carol');
    const texts = Array.from({ length: 60 }, (_, i) => `msg ${pad(i + 1)}`);
    const roomId = await roomWithMessages(carol, 'busy-room', texts);
    const page = await openPage('dave', { width: 1280, height: 760 });
    await openAndJoin(page, 'busy-room');
    await message(page, 'msg 60').waitFor();

    // The page itself never scrolls; the composer is on screen; the list is scrolled to the newest message.
    const doc = await documentSize(page);
    expect(doc.height).toBeLessThanOrEqual(760);
    expect(doc.width).toBeLessThanOrEqual(1280);
    const composer = (await page.locator('#composer').boundingBox())!;
    expect(composer.y).toBeGreaterThanOrEqual(0);
    expect(composer.y + composer.height).toBeLessThanOrEqual(760);
    await eventually(async () => {
      const m = await listMetrics(page);
      expect(m.scrollHeight).toBeGreaterThan(m.clientHeight);
      expect(atBottom(m)).toBe(true);
    });

    // Older history exists (the oldest loaded seq is above 1) although fewer than 60 messages are shown.
    const loaded = await page.locator('.msg').count();
    expect(loaded).toBeLessThan(60);
    expect(await page.locator('#older').isVisible()).toBe(true);

    // One author, one minute: one group (a single header with the avatar), one "Today" separator.
    expect(await page.locator('.msg:not(.grouped)').count()).toBe(1);
    expect(await page.locator('.msg.grouped').count()).toBe(loaded - 1);
    expect(await page.locator('.day-separator').allTextContents()).toEqual(['Today']);
    const avatar = page.locator('.msg:not(.grouped) .avatar');
    expect(await avatar.textContent()).toBe('CA');
    const colour = (l: Locator) => l.evaluate((e) => getComputedStyle(e).backgroundColor);
    expect(await colour(avatar)).toBe(
      await colour(page.locator('#member-list li[data-user-id="carol"] .avatar')),
    );
    expect(await colour(avatar)).not.toBe(
      await colour(page.locator('#member-list li[data-user-id="dave"] .avatar')),
    );
    // Light system theme: a light page.
    expect(
      luminance(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)),
    ).toBeGreaterThan(0.8);
    await shot(page, 'layout-1280x760');

    // Scrolled up: the jump button appears, and a new message does not move the view.
    await page.$eval('#messages', (l) => {
      l.scrollTop = 150;
    });
    await page.waitForSelector('#jump-newest:not(.hidden)');
    const before = await listMetrics(page);
    await carol.ok('send_message', { room_id: roomId, content: 'while you were reading' });
    await message(page, 'while you were reading').waitFor({ state: 'attached' });
    await page.waitForSelector('#jump-newest:has-text("1 new message")');
    const after = await listMetrics(page);
    expect(Math.abs(after.scrollTop - before.scrollTop)).toBeLessThanOrEqual(1);
    expect(after.scrollHeight).toBeGreaterThan(before.scrollHeight);
    await shot(page, 'layout-1280x760-scrolled-up');

    // Jumping goes to the newest message; from there new messages are followed again.
    await page.click('#jump-newest');
    await eventually(async () => expect(atBottom(await listMetrics(page))).toBe(true));
    await page.waitForSelector('#jump-newest', { state: 'hidden' });
    await carol.ok('send_message', { room_id: roomId, content: 'and one more' });
    await message(page, 'and one more').waitFor();
    await eventually(async () => expect(atBottom(await listMetrics(page))).toBe(true));

    // Loading older history keeps the message that was at the top in place.
    await page.$eval('#messages', (l) => {
      l.scrollTop = 0;
    });
    const firstId = (await page.locator('.msg').first().getAttribute('data-id'))!;
    const top = await offsetInList(page, firstId);
    await page.click('#older');
    await message(page, 'msg 01').waitFor({ state: 'attached' });
    expect(Math.abs((await offsetInList(page, firstId)) - top)).toBeLessThanOrEqual(2);
    await page.waitForSelector('#older', { state: 'hidden' }); // seq 1 is loaded: nothing older
    expect(await page.locator('.msg .text').allTextContents()).toEqual([
      ...texts,
      'while you were reading',
      'and one more',
    ]);
    // The older page joined carol's group: still a single header.
    expect(await page.locator('.msg:not(.grouped)').count()).toBe(1);
  });

  it('works on a 390×844 phone: the chat column keeps its width, rooms and members are drawers', async () => {
    const carol = await wsUser('carol');
    await roomWithMessages(
      carol,
      'mobile-room',
      Array.from({ length: 30 }, (_, i) => `phone ${pad(i + 1)}`),
    );
    const page = await openPage('erin', { width: 390, height: 844 });

    // The room list is a closed drawer; the menu button opens it, picking a room closes it.
    expect(await page.locator('#sidebar').isVisible()).toBe(false);
    await page.click('#toggle-sidebar');
    await page.waitForSelector('#sidebar', { state: 'visible' });
    await page.$eval('#sidebar', (e) => Promise.all(e.getAnimations().map((a) => a.finished)));
    await shot(page, 'layout-390x844-rooms');
    await page.click('#close-sidebar');
    await page.waitForSelector('#sidebar', { state: 'hidden' });
    await page.click('#toggle-sidebar');
    await openAndJoin(page, 'mobile-room');
    await page.waitForSelector('#sidebar', { state: 'hidden' });
    await message(page, 'phone 30').waitFor();

    const chat = (await page.locator('.chat').boundingBox())!;
    expect(chat.width).toBeGreaterThanOrEqual(300);
    const doc = await documentSize(page);
    expect(doc.height).toBeLessThanOrEqual(844);
    expect(doc.width).toBeLessThanOrEqual(390);
    const composer = (await page.locator('#composer').boundingBox())!;
    expect(composer.x).toBeGreaterThanOrEqual(0);
    expect(composer.x + composer.width).toBeLessThanOrEqual(390);
    expect(composer.y + composer.height).toBeLessThanOrEqual(844);
    expect(atBottom(await listMetrics(page))).toBe(true);

    await send(page, 'typed on a phone');
    await eventually(async () => expect(atBottom(await listMetrics(page))).toBe(true));
    await shot(page, 'layout-390x844');

    // Members: a drawer too; Escape closes it.
    await page.click('#toggle-members');
    await page.waitForSelector('#member-list li[data-user-id="erin"]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#members-panel', { state: 'hidden' });
  });

  it('renders user text as text: tags stay text, only http(s) URLs become links', async () => {
    const page = await openPage('frank', { width: 1280, height: 760 });
    await page.fill('#new-room-name', 'links');
    await page.click('#create-room button');
    await page.waitForSelector('#composer:not(.hidden)');

    const evil = '<img src=x onerror=alert(1)> https://example.com';
    const m = await send(page, evil);
    expect(await m.locator('.text').textContent()).toBe(evil);
    expect(await page.locator('#messages img').count()).toBe(0);
    const link = m.locator('.text a');
    expect(await link.count()).toBe(1);
    expect(await link.getAttribute('href')).toBe('https://example.com/');
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
    expect(await link.getAttribute('target')).toBe('_blank');
    expect(await link.textContent()).toBe('https://example.com');

    // Sentence punctuation stays out of the URL; other schemes are never links.
    const mixed = 'javascript:alert(1) and (see https://example.org/a_(b)?q=1).';
    const second = await send(page, mixed);
    expect(await second.locator('.text').textContent()).toBe(mixed);
    expect(await second.locator('.text a').count()).toBe(1);
    expect(await second.locator('.text a').getAttribute('href')).toBe('https://example.org/a_(b)?q=1');
    const third = await send(page, 'data:text/html,<b>x</b> and http://[::1 are not links');
    expect(await third.locator('.text a').count()).toBe(0);
    expect(await page.locator('#messages b').count()).toBe(0);
  });

  it('edits inline (Enter saves, Escape cancels) and deletes after an inline confirmation', async () => {
    const page = await openPage('gina', { width: 1280, height: 760 });
    await page.fill('#new-room-name', 'drafts');
    await page.click('#create-room button');
    await page.waitForSelector('#composer:not(.hidden)');
    const id = (await (await send(page, 'first draft')).getAttribute('data-id'))!;
    const node = page.locator(`.msg[data-id="${id}"]`);
    const editor = node.locator('.edit-input');

    // Escape cancels.
    await node.hover();
    await node.locator('button.edit').click();
    await editor.waitFor();
    expect(await editor.inputValue()).toBe('first draft');
    expect(await editor.evaluate((e) => e === document.activeElement)).toBe(true);
    await editor.fill('never saved');
    await editor.press('Escape');
    await editor.waitFor({ state: 'detached' });
    expect(await node.locator('.text').textContent()).toBe('first draft');
    expect(await node.locator('.edited').count()).toBe(0);

    // Enter saves; the message is marked edited.
    await node.hover();
    await node.locator('button.edit').click();
    await editor.fill('final text');
    await editor.press('Enter');
    await node.locator('.edited').waitFor();
    expect(await node.locator('.text').textContent()).toBe('final text');

    // ArrowUp in the empty composer edits my last message.
    await page.click('#message-input');
    await page.keyboard.press('ArrowUp');
    await editor.waitFor();
    await editor.press('Escape');
    await editor.waitFor({ state: 'detached' });

    // Delete asks inline first; Cancel keeps the message, Delete removes it.
    await node.hover();
    await node.locator('button.delete').click();
    await node.locator('.delete-confirm').waitFor();
    await node.locator('.cancel-delete').click();
    await node.locator('.delete-confirm').waitFor({ state: 'detached' });
    expect(await node.locator('.text').textContent()).toBe('final text');
    await node.hover();
    await node.locator('button.delete').click();
    await node.locator('.confirm-delete').click();
    await page.waitForSelector(`.msg.deleted[data-id="${id}"]`);
    expect(await node.locator('.text').textContent()).toBe('message deleted');
  });

  it('separates days: messages of yesterday and today get their own day headers', async () => {
    const carol = await wsUser('carol');
    await roomWithMessages(carol, 'days', ['[yesterday] old news', 'fresh news']);
    // The server stamps messages with the current time: the browser's view of one is moved back a day.
    const page = await openPage('henry', {
      width: 1280,
      height: 760,
      timezoneId: 'UTC',
      beforeLoad: (p) =>
        p.routeWebSocket(/\/ws/, (ws) => {
          const server = ws.connectToServer();
          server.onMessage((frame) => ws.send(typeof frame === 'string' ? shiftYesterday(frame) : frame));
        }),
    });
    await openAndJoin(page, 'days');
    await message(page, 'fresh news').waitFor();
    const sequence = await page.$$eval('#messages > .day-separator, #messages > .msg', (nodes) =>
      nodes.map((n) =>
        n.classList.contains('day-separator')
          ? `day: ${n.textContent}`
          : `msg: ${n.querySelector('.text')?.textContent}`,
      ),
    );
    expect(sequence).toEqual([
      'day: Yesterday',
      'msg: [yesterday] old news',
      'day: Today',
      'msg: fresh news',
    ]);
    // Same author, but another day: a new group.
    expect(await message(page, 'fresh news').getAttribute('class')).not.toContain('grouped');
  });

  it('shows rooms created by others live, without a reload, and own new rooms in every tab', async () => {
    const page = await openPage('ivan', { width: 1280, height: 760 });
    const otherTab = await openPage('ivan', { width: 1280, height: 760 });
    const carol = await wsUser('carol');
    await carol.ok('create_room', { name: 'brand-new-room' });
    const item = page.locator('#rooms li:has-text("brand-new-room")');
    await item.waitFor(); // room_listed: no focus change, no reload
    const gone = await wsUser('carol');
    await gone.ok('create_room', { name: 'short-lived-room' });
    const shortLived = page.locator('#rooms li:has-text("short-lived-room")');
    await shortLived.waitFor();
    const id = (await shortLived.getAttribute('data-room-id'))!;
    await gone.ok('update_room', { room_id: id, private: true }); // room_unlisted
    await shortLived.waitFor({ state: 'detached' });

    // A room ivan creates in one tab appears in his other tab (room_created), and is his there.
    await page.fill('#new-room-name', 'ivans-room');
    await page.click('#create-room button');
    await page.waitForSelector('#composer:not(.hidden)');
    await otherTab.waitForSelector('#rooms li:has-text("ivans-room")');
    await otherTab.click('#rooms li:has-text("ivans-room")');
    await otherTab.waitForSelector('#composer:not(.hidden)');
  });

  it('shows errors as toasts in the bottom corner, off the header, that go away by themselves', async () => {
    const carol = await wsUser('carol');
    const roomId = await roomWithMessages(carol, 'quiet-room', ['welcome']);
    const page = await openPage('jack', { width: 1280, height: 760 });
    await openAndJoin(page, 'quiet-room');
    await carol.ok('moderate', { room_id: roomId, action: 'mute', target_id: 'jack', duration_s: 60 });

    await page.fill('#message-input', 'can anyone hear me');
    await page.press('#message-input', 'Enter');
    const toast = page.locator('.toast[data-code="muted"]');
    await toast.waitFor();
    const box = (await toast.boundingBox())!;
    for (const header of ['.topbar', '.chat-header']) {
      const h = (await page.locator(header).boundingBox())!;
      expect(box.y).toBeGreaterThan(h.y + h.height);
    }
    expect(box.y).toBeGreaterThan(760 / 2);
    expect(box.x + box.width).toBeGreaterThan(1280 / 2);
    expect(await page.locator('#banner').isVisible()).toBe(false);
    expect(await page.inputValue('#message-input')).toBe('can anyone hear me'); // kept for a retry
    await shot(page, 'layout-toast');
    await toast.waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('follows the system dark mode', async () => {
    const carol = await wsUser('carol');
    await roomWithMessages(carol, 'night-room', ['good evening', 'see https://example.com for details']);
    const page = await openPage('kim', { width: 1280, height: 760, colorScheme: 'dark' }, false);
    const bodyBg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(luminance(await bodyBg())).toBeLessThan(0.1);
    await page.fill('#username', 'kim');
    await page.click('#login-button');
    await page.waitForSelector('#app:not(.hidden)');
    await openAndJoin(page, 'night-room');
    await message(page, 'good evening').waitFor();
    expect(luminance(await bodyBg())).toBeLessThan(0.1);
    for (const selector of ['.topbar', '.sidebar', '.chat-header']) {
      const bg = await page.locator(selector).evaluate((e) => getComputedStyle(e).backgroundColor);
      expect(luminance(bg)).toBeLessThan(0.1);
    }
    const text = await page
      .locator('.msg .text')
      .first()
      .evaluate((e) => getComputedStyle(e).color);
    expect(luminance(text)).toBeGreaterThan(0.6);
    await shot(page, 'layout-dark-1280x760');
  });
});

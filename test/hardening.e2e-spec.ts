/**
 * Hardening (issue 11), over real sockets: timers a client can set cannot spin
 * the server, and moderation events reach the room and the target.
 */
import { Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  STREAMING_BACKEND,
  StreamingBackend,
  StreamingModule,
  StreamingWsAdapter,
  type StreamingModuleOptions,
} from '@nest-streaming/streaming';
import { signToken, startNestApp, type TestApp } from './support/app';
import { ClientPool, WsClient } from './support/ws-client';

const SECRET = 'hardening-e2e-secret-0c6d1f77a2';
const DAY_S = 24 * 3600;

const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(options: Partial<StreamingModuleOptions> = {}): Promise<TestApp> {
  const config: StreamingModuleOptions = { historyStore: 'memory', auth: { jwtSecret: SECRET }, ...options };
  @Module({ imports: [StreamingModule.forRoot(config)] })
  class HardeningTestModule {}
  const t = await startNestApp(HardeningTestModule, {
    configure: (app: NestExpressApplication) => app.useWebSocketAdapter(new StreamingWsAdapter(app)),
  });
  apps.push(t);
  return t;
}

async function connectAs(t: TestApp, sub: string): Promise<WsClient> {
  return pool.connect(t.wsUrl, {
    token: await signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 }),
  });
}

describe('timed bans and mutes', () => {
  it('bans of 30, 45 and 400 days leave the server idle: their expiry timers do not fire every millisecond', async () => {
    const t = await start();
    const owner = await connectAs(t, 'owner');
    const room = (await owner.ok('create_room', { name: 'long bans' })).room.id as string;
    const backend = t.app.get<StreamingBackend>(STREAMING_BACKEND);
    for (const [target, days] of [
      ['u30', 30],
      ['u45', 45],
      ['u400', 400],
    ] as const) {
      const ack = await owner.ok('moderate', {
        room_id: room,
        action: 'ban',
        target_id: target,
        duration_s: days * DAY_S,
      });
      expect(ack.until).toBe(new Date(Date.parse(ack.until as string)).toISOString());
    }
    const checks = jest.spyOn(backend, 'getRestriction');
    const cpuBefore = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 500));
    const cpu = process.cpuUsage(cpuBefore);
    // A timer past 2^31-1 ms fires after 1 ms: each expiry would look up its ban ~500 times here.
    expect(checks.mock.calls.length).toBe(0);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(250);
    // Still banned.
    const u30 = await connectAs(t, 'u30');
    expect((await u30.request('join_room', { room_id: room })).data.code).toBe('banned');
  });

  it('refuses duration_s beyond ten years with invalid_message, and a ban without duration lasts', async () => {
    const t = await start();
    const owner = await connectAs(t, 'owner');
    const room = (await owner.ok('create_room', { name: 'limits' })).room.id as string;
    const tooLong = await owner.request('moderate', {
      room_id: room,
      action: 'ban',
      target_id: 'x',
      duration_s: 10 * 365 * DAY_S + 1,
    });
    expect(tooLong.data).toMatchObject({
      code: 'invalid_message',
      message: expect.stringContaining('duration_s'),
    });
    expect(
      (await owner.ok('moderate', { room_id: room, action: 'ban', target_id: 'x' })).until,
    ).toBeUndefined();
    const x = await connectAs(t, 'x');
    expect((await x.request('join_room', { room_id: room })).data.code).toBe('banned');
  });
});

describe('moderation events reach the room and the target', () => {
  it('unban of a banned member is announced to the room and to the target', async () => {
    const t = await start();
    const owner = await connectAs(t, 'owner');
    const watcher = await connectAs(t, 'watcher');
    const target = await connectAs(t, 'target');
    const room = (await owner.ok('create_room', { name: 'unban' })).room.id as string;
    await watcher.ok('join_room', { room_id: room });
    await target.ok('join_room', { room_id: room });
    await owner.ok('moderate', { room_id: room, action: 'ban', target_id: 'target', reason: 'spam' });
    await watcher.waitFor((e) => e.type === 'member_banned' && e.data.target_id === 'target');
    await target.waitFor((e) => e.type === 'room_left' && e.data.room_id === room);

    const fromWatcher = watcher.envelopes.length;
    const fromTarget = target.envelopes.length;
    await owner.ok('moderate', { room_id: room, action: 'unban', target_id: 'target' });
    const unbanned = {
      type: 'member_unbanned',
      data: expect.objectContaining({ room_id: room, target_id: 'target' }),
    };
    expect(await watcher.waitFor((e) => e.type === 'member_unbanned', 3000, fromWatcher)).toMatchObject(
      unbanned,
    );
    expect(await target.waitFor((e) => e.type === 'member_unbanned', 3000, fromTarget)).toMatchObject(
      unbanned,
    );
    expect((await target.ok('join_room', { room_id: room })).room_id).toBe(room);
  });

  it('a ban of a user who is not a member is announced to the room and to that user', async () => {
    const t = await start();
    const owner = await connectAs(t, 'owner');
    const watcher = await connectAs(t, 'watcher');
    const outsider = await connectAs(t, 'outsider');
    const room = (await owner.ok('create_room', { name: 'pre-ban' })).room.id as string;
    await watcher.ok('join_room', { room_id: room });
    await owner.ok('moderate', { room_id: room, action: 'ban', target_id: 'outsider' });
    await watcher.waitFor((e) => e.type === 'member_banned' && e.data.target_id === 'outsider');
    await outsider.waitFor((e) => e.type === 'member_banned' && e.data.room_id === room);
  });
});

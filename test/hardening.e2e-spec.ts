/**
 * Hardening (issue 11), over real sockets: timers a client can set cannot spin
 * the server, moderation events reach the room and the target, message state
 * is bounded, and a user id with dots owns exactly its own user channels.
 */
import { Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  STREAMING_BACKEND,
  StreamingBackend,
  StreamingManager,
  StreamingModule,
  StreamingWsAdapter,
  type StreamingModuleOptions,
  userToken,
} from '@nest-streaming/streaming';
import { ALL_ROUTES, eventually, signToken, startDemoApp, startNestApp, type TestApp } from './support/app';
import { startRedisServer, type RedisServerHandle } from './support/redis-server';
import { ClientPool, WsClient } from './support/ws-client';

const SECRET = 'hardening-e2e-secret-0c6d1f77a2-5e8b41';
const DAY_S = 24 * 3600;

const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(options: Partial<StreamingModuleOptions> = {}): Promise<TestApp> {
  const config: StreamingModuleOptions = { historyStore: 'memory', auth: { jwtSecret: SECRET }, ...options };
  @Module({ imports: [StreamingModule.forRoot({ ...config, routes: ALL_ROUTES })] })
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
    await new Promise((r) => setTimeout(r, 500));
    // A timer past 2^31-1 ms fires after 1 ms: each expiry would look up its ban ~500 times here.
    // (Counted, not timed: CPU time depends on the machine.)
    expect(checks.mock.calls.length).toBe(0);
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

describe('bounded message state', () => {
  it('keeps max_message_versions earlier versions and refuses a reaction beyond max_reactions_per_message', async () => {
    const t = await start({ maxMessageVersions: 3, maxReactionsPerMessage: 2 });
    const owner = await connectAs(t, 'owner');
    const room = (await owner.ok('create_room', { name: 'bounded' })).room.id as string;
    const id = (await owner.ok('send_message', { room_id: room, content: 'v0' })).message_id as string;
    for (let i = 1; i <= 10; i++)
      await owner.ok('edit_message', { room_id: room, message_id: id, content: `v${i}` });
    const stored = await t.app.get<StreamingBackend>(STREAMING_BACKEND).getMessage(room, id);
    expect(stored?.versions?.map((v) => v.content)).toEqual(['v7', 'v8', 'v9']);

    const ref = { room_id: room, message_id: id };
    await owner.ok('add_reaction', { ...ref, reaction: 'a' });
    await owner.ok('add_reaction', { ...ref, reaction: 'b' });
    const third = await owner.request('add_reaction', { ...ref, reaction: 'c' });
    expect(third.data).toMatchObject({
      code: 'limit_exceeded',
      message: expect.stringContaining('2 different'),
    });
    const other = await connectAs(t, 'other');
    await other.ok('join_room', { room_id: room });
    expect((await other.ok('add_reaction', { ...ref, reaction: 'a' })).reactions).toEqual({
      a: ['owner', 'other'],
      b: ['owner'],
    });
  });
});

describe.each(['local', 'redis'] as const)('user ids with dots (%s backend)', (kind) => {
  let redis: RedisServerHandle | undefined;
  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.dispose();
  });
  const backend = (): Partial<StreamingModuleOptions> =>
    kind === 'redis' ? { backend: 'redis', backendUrls: [redis!.url] } : {};

  it('a dotted id is one token: alice never gets alice.smith notifications, alice.smith gets its own', async () => {
    const t = await start(backend());
    const alice = await connectAs(t, 'alice');
    const smith = await connectAs(t, 'alice.smith');
    expect(userToken('alice.smith')).toBe('alice:2esmith');
    expect(userToken('alice')).toBe('alice');

    await alice.ok('subscribe', { channel: 'user.alice.>' });
    await alice.ok('subscribe', { channel: 'user.*.notifications' });
    // The old reading (second token = "alice") no longer hands alice.smith's channel to alice.
    expect((await smith.request('subscribe', { channel: 'user.alice.smith.notifications' })).data.code).toBe(
      'forbidden',
    );
    await smith.ok('subscribe', { channel: 'user.alice:2esmith.>' });
    await smith.ok('subscribe', { channel: 'user.*.alerts' });

    const manager = t.app.get(StreamingManager);
    await manager.publishToChannel(`user.${userToken('alice.smith')}.notifications`, { for: 'smith' });
    await manager.publishToChannel(`user.${userToken('alice.smith')}.alerts`, { for: 'smith-alert' });
    await manager.publishToChannel('user.alice.notifications', { for: 'alice' });
    const smithGot = await smith.waitFor((e) => e.type === 'channel_message' && e.data.data.for === 'smith');
    expect(smithGot.data.channel).toBe('user.alice:2esmith.notifications');
    await smith.waitFor((e) => e.type === 'channel_message' && e.data.data.for === 'smith-alert');
    await alice.waitFor((e) => e.type === 'channel_message' && e.data.data.for === 'alice');
    await alice.expectNone(
      (e) => e.type === 'channel_message' && String(e.data.data.for).startsWith('smith'),
      300,
    );
    await smith.expectNone((e) => e.type === 'channel_message' && e.data.data.for === 'alice', 100);
    // Publishing in another user's namespace stays forbidden, dotted or not.
    expect((await alice.request('publish', { channel: 'user.alice:2esmith.x', data: {} })).data.code).toBe(
      'forbidden',
    );
  });
});

describe('bounded rooms', () => {
  it('a create/leave loop stops at max_rooms_owned_per_user, and empty rooms are deleted after empty_room_ttl', async () => {
    const ttlHours = 1.5 / 3600; // 1.5 s
    const t = await start({ maxRoomsOwnedPerUser: 3, emptyRoomTtl: ttlHours });
    const looper = await connectAs(t, 'looper');
    const keeper = await connectAs(t, 'keeper');
    const kept = (await keeper.ok('create_room', { name: 'kept' })).room.id as string;
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = (await looper.ok('create_room', { name: `loop ${i}` })).room.id as string;
      created.push(id);
      await looper.ok('leave_room', { room_id: id });
    }
    const refused = await looper.request('create_room', { name: 'one too many' });
    expect(refused.data).toMatchObject({
      code: 'limit_exceeded',
      message: expect.stringContaining('own 3 rooms'),
    });

    // The sweep deletes the empty rooms (not the one with a member), which frees the slots.
    const backend = t.app.get<StreamingBackend>(STREAMING_BACKEND);
    await eventually(async () => {
      expect(await Promise.all(created.map((id) => backend.getRoom(id)))).toEqual([null, null, null]);
    }, 10_000);
    for (const id of created)
      expect((await looper.request('join_room', { room_id: id })).data.code).toBe('room_not_found');
    expect((await keeper.ok('get_history', { room_id: kept })).messages).toEqual([]);
    expect((await looper.ok('create_room', { name: 'fits again' })).room.name).toBe('fits again');
  });
});

describe('REST rate limiting', () => {
  it('REST routes pass the same rate limiter (a budget per user of its own): 429 with Retry-After, sockets unaffected', async () => {
    const demo = await startDemoApp({
      JWT_SECRET: SECRET,
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '3',
    });
    apps.push(demo);
    const token = await demo.login('rest-user');
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 5; i++) {
      const res = await demo.http('GET', '/api/rooms', { token });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers['retry-after'];
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Another user has a budget of their own, and the socket budget is untouched.
    expect((await demo.http('GET', '/api/rooms', { token: await demo.login('other-user') })).status).toBe(
      200,
    );
    const ws = await pool.connect(demo.wsUrl, { token });
    expect((await ws.request('ping')).type).toBe('pong');
    expect((await ws.request('create_room', { name: 'still fine' })).type).toBe('ack');
  });
});

describe('durability', () => {
  it('the backend health check warns while Redis runs without AOF, and not with appendonly yes', async () => {
    const volatile = await startRedisServer();
    const durable = await startRedisServer({ appendonly: true });
    try {
      for (const [server, warned] of [
        [volatile, true],
        [durable, false],
      ] as const) {
        const t = await start({ backend: 'redis', backendUrls: [server.url] });
        const res = await t.http('GET', '/_/health/streaming/backend');
        expect(res.status).toBe(200);
        const backend = (res.json as { info: Record<string, Record<string, unknown>> }).info.backend;
        expect({ status: backend.status, warned: typeof backend.warning === 'string' }).toEqual({
          status: 'up',
          warned,
        });
        if (warned) expect(backend.warning).toContain('appendonly');
        await t.close();
      }
    } finally {
      await volatile.dispose();
      await durable.dispose();
    }
  });
});

/**
 * Limits per user hold across nodes (issue 11): two Nest apps in this process
 * share one real redis-server or nats-server. `max_connections_per_user` and
 * `max_typing_users_per_room` count every node, and a private channel cannot
 * be created on a name that other users already use on another node.
 */
import { StreamingManager } from '@nest-streaming/streaming';
import { signToken, type TestApp } from './support/app';
import { backendNodes } from './support/backend-nodes';
import { ClientPool, WsClient, type Envelope } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'cross-node-limits-secret-7f3a9c2e41-b6d8';

const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let users = 0;
/** A user id no other test uses (the backend outlives each test's apps). */
const fresh = (name: string): string => `${name}-${++users}-${Date.now()}`;

const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

const isTyping =
  (roomId: string, userId: string, typing: boolean) =>
  (e: Envelope): boolean =>
    e.type === 'typing' &&
    e.data?.room_id === roomId &&
    e.data?.user_id === userId &&
    e.data?.typing === typing;

describe.each(['redis', 'nats'] as const)('limits across two nodes (%s)', (kind) => {
  /** Two nodes on one backend (fresh node ids per test). */
  const { twoNodes } = backendNodes(
    kind,
    { historyStore: 'memory', auth: { jwtSecret: SECRET } },
    apps,
    'limits',
  );

  it('max_connections_per_user counts both nodes: the third connection is refused with 429 on either', async () => {
    const [a, b] = await twoNodes({ maxConnectionsPerUser: 2 });
    const t = await token(fresh('alice'));
    const first = await pool.connect(a.wsUrl, { token: t });
    await pool.connect(b.wsUrl, { token: t });
    expect((await WsClient.expectRejected(a.wsUrl, { token: t })).status).toBe(429);
    expect((await WsClient.expectRejected(b.wsUrl, { token: t })).status).toBe(429);
    // Someone else is not affected.
    await pool.connect(a.wsUrl, { token: await token(fresh('bob')) });
    // Closing one frees a slot, on the other node too.
    await first.close();
    const again = await (async () => {
      for (let i = 0; i < 50; i++) {
        try {
          return await pool.connect(b.wsUrl, { token: t });
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw new Error('the freed slot never came back');
    })();
    expect(again).toBeDefined();
    expect((await WsClient.expectRejected(a.wsUrl, { token: t })).status).toBe(429);
  });

  it('concurrent connections of one user on two nodes: exactly max_connections_per_user get in', async () => {
    const [a, b] = await twoNodes({ maxConnectionsPerUser: 3 });
    const t = await token(fresh('carol'));
    const attempts = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => pool.connect(i % 2 === 0 ? a.wsUrl : b.wsUrl, { token: t })),
    );
    expect(attempts.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const r of attempts) {
      if (r.status === 'rejected') expect(String(r.reason)).toContain('HTTP 429');
    }
  });

  it('max_typing_users_per_room counts typists on every node, and a stop on one node frees the slot', async () => {
    const [a, b] = await twoNodes({ maxTypingUsersPerRoom: 1 });
    const [id1, id2] = [fresh('u1'), fresh('u2')];
    const u1 = await pool.connect(a.wsUrl, { token: await token(id1) });
    const u2 = await pool.connect(b.wsUrl, { token: await token(id2) });
    const room = (await u1.ok('create_room', { name: 'typing across nodes' })).room.id as string;
    await u2.ok('join_room', { room_id: room });
    await u1.ok('start_typing', { room_id: room });
    await u2.waitFor(isTyping(room, id1, true));
    const refused = await u2.request('start_typing', { room_id: room });
    expect(refused.type).toBe('error');
    expect(refused.data.code).toBe('limit_exceeded');
    await u1.ok('stop_typing', { room_id: room });
    await u2.waitFor(isTyping(room, id1, false));
    await u2.ok('start_typing', { room_id: room });
    await u1.waitFor(isTyping(room, id2, true));
  });

  it('one user typing from two nodes is announced once, and stopped once', async () => {
    const [a, b] = await twoNodes();
    const dave = fresh('dave');
    const tab1 = await pool.connect(a.wsUrl, { token: await token(dave) });
    const tab2 = await pool.connect(b.wsUrl, { token: await token(dave) });
    const watcher = await pool.connect(a.wsUrl, { token: await token(fresh('erin')) });
    const room = (await tab1.ok('create_room', { name: 'two tabs' })).room.id as string;
    await watcher.ok('join_room', { room_id: room });
    await tab1.ok('start_typing', { room_id: room });
    await watcher.waitFor(isTyping(room, dave, true));
    await tab2.ok('start_typing', { room_id: room });
    await tab2.ok('stop_typing', { room_id: room });
    await watcher.waitFor(isTyping(room, dave, false));
    await tab1.ok('stop_typing', { room_id: room });
    await new Promise((r) => setTimeout(r, 300));
    expect(watcher.all((e) => e.type === 'typing').map((e) => e.data?.typing as boolean)).toEqual([
      true,
      false,
    ]);
  });

  it('a private channel cannot be created on a name another user subscribes to on another node', async () => {
    const [a, b] = await twoNodes();
    const bob = await pool.connect(b.wsUrl, { token: await token(fresh('bob')) });
    const mallory = await pool.connect(a.wsUrl, { token: await token(fresh('mallory')) });
    const [alerts, prices, own, fresher] = ['alerts', 'prices', 'own', 'new'].map(
      (n) => `${n}.${fresh('c')}`,
    );
    await bob.ok('subscribe', { channel: alerts });
    const squat = await mallory.request('create_channel', { name: alerts, private: true });
    expect(squat.type).toBe('error');
    expect(squat.data.code).toBe('forbidden');
    // bob still receives what is published there, from either node.
    await a.app.get(StreamingManager).publishToChannel(alerts, { n: 1 });
    await bob.waitFor((e) => e.type === 'channel_message' && e.data?.data?.n === 1);

    // A name the server publishes on is in use too.
    await b.app.get(StreamingManager).publishToChannel(prices, { p: 1 });
    expect((await mallory.request('create_channel', { name: prices, private: true })).data.code).toBe(
      'forbidden',
    );
    // A public registration takes nothing from anyone; a fresh name, or one only mallory uses, can be private.
    await mallory.ok('create_channel', { name: alerts });
    await mallory.ok('subscribe', { channel: own });
    await mallory.ok('create_channel', { name: own, private: true });
    await mallory.ok('create_channel', { name: fresher, private: true });
  });
});

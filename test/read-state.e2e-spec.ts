/**
 * Read state (PROTOCOL.md §10): `mark_read` records how far a user has read
 * (per user, only forward), the user's other connections on every node get
 * `read_state`, `get_unread` counts what is left (neither deleted nor the
 * user's own), and `room_joined` carries `last_read_seq`. On the demo app
 * (local backend), on two nodes sharing a real redis-server or nats-server,
 * and across a restart of the demo app on its SQLite store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken, startDemoApp, type TestApp } from './support/app';
import { backendNodes } from './support/backend-nodes';
import { ClientPool, type Json, type WsClient } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'read-state-e2e-secret-1f2e3d4c5b6a7988';
const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let users = 0;
const fresh = (name: string): string => `${name}-${++users}-${Date.now()}`;

interface UnreadRoom {
  room_id: string;
  last_read_seq: number;
  latest_seq: number;
  unread: number;
}

async function unreadOf(c: WsClient, roomId: string): Promise<UnreadRoom | undefined> {
  const ack = (await c.ok('get_unread')) as { rooms: UnreadRoom[] };
  return ack.rooms.find((r) => r.room_id === roomId);
}

const errorCode = async (p: Promise<{ type: string; data?: Json }>): Promise<unknown> => {
  const env = await p;
  return env.type === 'error' ? (env.data as { code?: string }).code : `not an error: ${env.type}`;
};

const isReadState = (roomId: string, seq?: number) => (e: { type: string; data?: Json }) =>
  e.type === 'read_state' &&
  e.data?.room_id === roomId &&
  (seq === undefined || e.data?.last_read_seq === seq);

/**
 * The whole scenario: alice on `a1` (node A) and `a2` (node B), bob on node B,
 * carol (not a member) on node A. On one node, A and B are the same app.
 */
async function scenario(
  nodeA: TestApp,
  nodeB: TestApp,
  token: (user: string, node: TestApp) => Promise<string>,
): Promise<void> {
  const [alice, bob, carol] = [fresh('alice'), fresh('bob'), fresh('carol')];
  const a1 = await pool.connect(nodeA.wsUrl, { token: await token(alice, nodeA) });
  const a2 = await pool.connect(nodeB.wsUrl, { token: await token(alice, nodeB) });
  const b = await pool.connect(nodeB.wsUrl, { token: await token(bob, nodeB) });
  const c = await pool.connect(nodeA.wsUrl, { token: await token(carol, nodeA) });

  const room = ((await a1.ok('create_room', { name: `reads ${users}` })) as { room: { id: string } }).room;
  await b.ok('join_room', { room_id: room.id });
  const bobJoined = await b.waitFor((e) => e.type === 'room_joined' && e.data?.room_id === room.id);
  expect(bobJoined.data).toMatchObject({ latest_seq: 0, last_read_seq: 0 });

  // Messages 1..6: bob 1, 2, 3; alice 4 (her own); bob 5 (then deleted), 6.
  const ids: string[] = [];
  for (const [who, content] of [
    [b, 'one'],
    [b, 'two'],
    [b, 'three'],
    [a1, 'mine'],
    [b, 'deleted'],
    [b, 'six'],
  ] as const) {
    ids.push(
      ((await who.ok('send_message', { room_id: room.id, content })) as { message_id: string }).message_id,
    );
  }
  await b.ok('delete_message', { room_id: room.id, message_id: ids[4] });
  await a2.waitFor((e) => e.type === 'message_deleted' && e.data?.message_id === ids[4]);

  expect(await unreadOf(a1, room.id)).toEqual({
    room_id: room.id,
    last_read_seq: 0,
    latest_seq: 6,
    unread: 4,
  });
  expect(await unreadOf(b, room.id)).toEqual({
    room_id: room.id,
    last_read_seq: 0,
    latest_seq: 6,
    unread: 1,
  });

  // mark_read on node A reaches alice's connection on node B.
  expect(await a1.ok('mark_read', { room_id: room.id, seq: 2 })).toEqual({
    room_id: room.id,
    last_read_seq: 2,
  });
  await a2.waitFor(isReadState(room.id, 2));
  expect(await unreadOf(a2, room.id)).toMatchObject({ last_read_seq: 2, latest_seq: 6, unread: 2 });

  // A lower seq is ignored: the ack says where it stands, nobody hears of it.
  const mark = a2.envelopes.length;
  expect(await a1.ok('mark_read', { room_id: room.id, seq: 1 })).toEqual({
    room_id: room.id,
    last_read_seq: 2,
  });
  await a2.expectNone(isReadState(room.id), 300, mark);
  // Read state is per user: bob's is untouched.
  expect(await unreadOf(b, room.id)).toMatchObject({ last_read_seq: 0, unread: 1 });

  // From the other node, the other way.
  expect(await a2.ok('mark_read', { room_id: room.id, seq: 4 })).toEqual({
    room_id: room.id,
    last_read_seq: 4,
  });
  await a1.waitFor(isReadState(room.id, 4));
  expect(await unreadOf(a1, room.id)).toMatchObject({ last_read_seq: 4, latest_seq: 6, unread: 1 });

  // room_joined carries last_read_seq (a member joining again gets it again).
  const from = a1.envelopes.length;
  await a1.ok('join_room', { room_id: room.id });
  const rejoined = await a1.waitFor(
    (e) => e.type === 'room_joined' && e.data?.room_id === room.id,
    3000,
    from,
  );
  expect(rejoined.data).toMatchObject({ latest_seq: 6, last_read_seq: 4 });

  // Beyond the latest seq counts as the latest.
  expect(await a1.ok('mark_read', { room_id: room.id, seq: 99 })).toEqual({
    room_id: room.id,
    last_read_seq: 6,
  });
  expect(await unreadOf(a2, room.id)).toMatchObject({ last_read_seq: 6, unread: 0 });

  // Members only; seq a non-negative integer.
  expect(await errorCode(c.request('mark_read', { room_id: room.id, seq: 1 }))).toBe('not_room_member');
  expect(await unreadOf(c, room.id)).toBeUndefined();
  for (const seq of [-1, 1.5, '3', null]) {
    expect(await errorCode(a1.request('mark_read', { room_id: room.id, seq }))).toBe('invalid_message');
  }
  expect(await errorCode(a1.request('mark_read', { room_id: room.id }))).toBe('invalid_message');
  expect(await errorCode(a1.request('mark_read', { seq: 1 }))).toBe('invalid_message');
}

describe('read state on the demo app (local backend)', () => {
  it('mark_read, read_state to the other connections, get_unread, room_joined, errors', async () => {
    const app = await startDemoApp();
    apps.push(app);
    await scenario(app, app, (user) => app.login(user));
  });

  it('survives a restart of the app on the SQLite store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'read-state-e2e-'));
    try {
      const env = {
        FORGE_STREAMING_HISTORY_STORE: 'sqlite',
        FORGE_STREAMING_HISTORY_PATH: join(dir, 'chat.sqlite'),
      };
      const [alice, bob] = [fresh('alice'), fresh('bob')];
      const first = await startDemoApp(env);
      apps.push(first);
      const a = await pool.connect(first.wsUrl, { token: await first.login(alice) });
      const b = await pool.connect(first.wsUrl, { token: await first.login(bob) });
      const room = ((await a.ok('create_room', { name: `persisted ${users}` })) as { room: { id: string } })
        .room;
      await b.ok('join_room', { room_id: room.id });
      for (let i = 1; i <= 3; i++) await b.ok('send_message', { room_id: room.id, content: `m${i}` });
      expect(await a.ok('mark_read', { room_id: room.id, seq: 2 })).toEqual({
        room_id: room.id,
        last_read_seq: 2,
      });
      expect(await pool.closeAll()).toEqual([]);
      await first.close();

      const second = await startDemoApp(env);
      apps.push(second);
      const again = await pool.connect(second.wsUrl, { token: await second.login(alice) });
      expect(await unreadOf(again, room.id)).toEqual({
        room_id: room.id,
        last_read_seq: 2,
        latest_seq: 3,
        unread: 1,
      });
      expect(await again.ok('mark_read', { room_id: room.id, seq: 1 })).toEqual({
        room_id: room.id,
        last_read_seq: 2,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(['redis', 'nats'] as const)('read state across two nodes (%s)', (kind) => {
  const { twoNodes } = backendNodes(
    kind,
    {
      historyStore: 'memory',
      auth: { jwtSecret: SECRET },
      maxMessagesPerSecond: 1000,
      rateLimit: { enabled: false },
    },
    apps,
    'rs',
  );

  const token = (sub: string): Promise<string> =>
    signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

  it('mark_read on one node reaches the user on the other; get_unread, room_joined, errors', async () => {
    const [a, b] = await twoNodes();
    await scenario(a, b, token);
  });

  it('concurrent marks of one user on both nodes end at the max', async () => {
    const [a, b] = await twoNodes();
    const alice = fresh('alice');
    const ca = await pool.connect(a.wsUrl, { token: await token(alice) });
    const cb = await pool.connect(b.wsUrl, { token: await token(alice) });
    const room = ((await ca.ok('create_room', { name: `race ${users}` })) as { room: { id: string } }).room;
    for (let i = 1; i <= 20; i++) await ca.ok('send_message', { room_id: room.id, content: `m${i}` });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) + 1).map((seq, i) =>
        (i % 2 === 0 ? ca : cb).ok('mark_read', { room_id: room.id, seq }),
      ),
    );
    expect(await unreadOf(cb, room.id)).toEqual({
      room_id: room.id,
      last_read_seq: 20,
      latest_seq: 20,
      unread: 0,
    });
  });
});

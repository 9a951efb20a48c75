/**
 * Threads (PROTOCOL.md §10): `send_message` with `reply_to`, `thread_id` on
 * replies, `reply_count` / `last_reply_at` on the thread's first message,
 * `thread_updated` to the room and `get_thread`. On the demo app (local
 * backend) and on two nodes sharing a real redis-server or nats-server, where
 * replies racing on both nodes must all be counted.
 */
import { signToken, startDemoApp, type TestApp } from './support/app';
import { backendNodes } from './support/backend-nodes';
import { ClientPool, type Envelope, type Json, type WsClient } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'threads-e2e-secret-1f2e3d4c5b6a7988';
const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let users = 0;
const fresh = (name: string): string => `${name}-${++users}-${Date.now()}`;

interface Msg {
  id: string;
  seq: number;
  content: string;
  timestamp: string;
  reply_to?: string;
  thread_id?: string;
  reply_count?: number;
  last_reply_at?: string;
  deleted?: boolean;
}
interface ThreadUpdated {
  room_id: string;
  thread_id: string;
  reply_count: number;
  last_reply_at: string;
}

const roomId = (ack: Json): string => (ack as { room: { id: string } }).room.id;
const messages = (ack: Json): Msg[] => (ack as { messages: Msg[] }).messages;
const errorCode = async (p: Promise<Envelope>): Promise<unknown> => {
  const e = await p;
  return e.type === 'error' ? (e.data as { code?: string }).code : `answered ${e.type}`;
};

/** Send and return the `message` event of it, as the sender received it. */
async function send(c: WsClient, room: string, content: string, replyTo?: string): Promise<Msg> {
  const ack = (await c.ok('send_message', {
    room_id: room,
    content,
    ...(replyTo !== undefined ? { reply_to: replyTo } : {}),
  })) as { message_id: string };
  const ev = await c.waitFor((e) => e.type === 'message' && e.data?.id === ack.message_id);
  const message: Msg = ev.data;
  return message;
}

const threadUpdates = (c: WsClient, threadId: string): ThreadUpdated[] =>
  c
    .all((e) => e.type === 'thread_updated' && e.data?.thread_id === threadId)
    .map((e) => e.data as unknown as ThreadUpdated);

describe('threads on the demo app (local backend)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startDemoApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('replies carry thread_id and reply_to, the first message counts them, get_thread lists the thread', async () => {
    const [aliceName, bobName] = [fresh('alice'), fresh('bob')];
    const alice = await pool.connect(app.wsUrl, { token: await app.login(aliceName) });
    const bob = await pool.connect(app.wsUrl, { token: await app.login(bobName) });
    const room = roomId(await alice.ok('create_room', { name: `threads ${users}` }));
    await bob.ok('join_room', { room_id: room });

    const root = await send(alice, room, 'root');
    expect(root.thread_id).toBeUndefined();
    expect(root.reply_to).toBeUndefined();
    await send(alice, room, 'not in the thread');

    const r1 = await send(bob, room, 'reply 1', root.id);
    expect(r1).toMatchObject({ reply_to: root.id, thread_id: root.id });
    // Replies are ordinary room messages: the other member gets them too, in seq order.
    const seen = await alice.waitFor((e) => e.type === 'message' && e.data?.id === r1.id);
    expect(seen.data).toMatchObject({ seq: 3, reply_to: root.id, thread_id: root.id });
    const up1 = await alice.waitFor((e) => e.type === 'thread_updated' && e.data?.reply_count === 1);
    expect(up1.data).toEqual({
      room_id: room,
      thread_id: root.id,
      reply_count: 1,
      last_reply_at: r1.timestamp,
    });

    // A reply to a reply stays in the root's thread.
    const r2 = await send(alice, room, 'reply 2', r1.id);
    expect(r2).toMatchObject({ reply_to: r1.id, thread_id: root.id });
    const up2 = await bob.waitFor((e) => e.type === 'thread_updated' && e.data?.reply_count === 2);
    expect(up2.data).toEqual({
      room_id: room,
      thread_id: root.id,
      reply_count: 2,
      last_reply_at: r2.timestamp,
    });

    const history = messages(await bob.ok('get_history', { room_id: room }));
    expect(history.map((m) => m.content)).toEqual(['root', 'not in the thread', 'reply 1', 'reply 2']);
    expect(history[0]).toMatchObject({ reply_count: 2, last_reply_at: r2.timestamp });
    expect(history[1].reply_count).toBeUndefined();
    expect(history[2]).toMatchObject({ reply_to: root.id, thread_id: root.id });
    expect(history[2].reply_count).toBeUndefined();

    const thread = messages(await bob.ok('get_thread', { room_id: room, thread_id: root.id }));
    expect(thread.map((m) => m.content)).toEqual(['root', 'reply 1', 'reply 2']);
    expect(thread[0]).toMatchObject({ id: root.id, reply_count: 2 });
    const firstTwo = messages(await bob.ok('get_thread', { room_id: room, thread_id: root.id, limit: 2 }));
    expect(firstTwo.map((m) => m.id)).toEqual([root.id, r1.id]);

    // Members only.
    const carol = await pool.connect(app.wsUrl, { token: await app.login(fresh('carol')) });
    expect(await errorCode(carol.request('get_thread', { room_id: room, thread_id: root.id }))).toBe(
      'not_room_member',
    );
    expect(await errorCode(bob.request('get_thread', { room_id: room, thread_id: 'nope' }))).toBe(
      'message_not_found',
    );
    expect(
      await errorCode(bob.request('get_thread', { room_id: room, thread_id: root.id, limit: 101 })),
    ).toBe('answered ack'); // capped at 100, not refused
  });

  it('a reply to a deleted, unknown or other-room message is message_not_found', async () => {
    const alice = await pool.connect(app.wsUrl, { token: await app.login(fresh('alice')) });
    const room = roomId(await alice.ok('create_room', { name: `threads ${users}` }));
    const other = roomId(await alice.ok('create_room', { name: `other ${users}` }));
    const elsewhere = await send(alice, other, 'in the other room');
    const gone = await send(alice, room, 'to be deleted');
    await alice.ok('delete_message', { room_id: room, message_id: gone.id });
    const latest = (await alice.ok('get_history', { room_id: room })) as { messages: Msg[] };

    const reply = (to: string): Promise<Envelope> =>
      alice.request('send_message', { room_id: room, content: 'reply', reply_to: to });
    expect(await errorCode(reply(gone.id))).toBe('message_not_found');
    expect(await errorCode(reply('no-such-message'))).toBe('message_not_found');
    expect(await errorCode(reply(elsewhere.id))).toBe('message_not_found');
    // Nothing was stored.
    const after = messages(await alice.ok('get_history', { room_id: room }));
    expect(after.map((m) => m.seq)).toEqual(latest.messages.map((m) => m.seq));
  });
});

describe.each(['redis', 'nats'] as const)('threads across two nodes (%s)', (kind) => {
  const { twoNodes } = backendNodes(
    kind,
    { historyStore: 'memory', auth: { jwtSecret: SECRET }, rateLimit: { enabled: false } },
    apps,
    'th',
  );

  const token = (sub: string): Promise<string> =>
    signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

  it('thread_updated reaches the other node; replies racing on both nodes are counted exactly', async () => {
    const [a, b] = await twoNodes();
    const [aliceName, bobName] = [fresh('alice'), fresh('bob')];
    const alice = await pool.connect(a.wsUrl, { token: await token(aliceName) });
    const bob = await pool.connect(b.wsUrl, { token: await token(bobName) });
    const room = roomId(await alice.ok('create_room', { name: `threads ${users}` }));
    await bob.ok('join_room', { room_id: room });

    const root = await send(alice, room, 'root');
    const first = await send(bob, room, 'first reply', root.id);
    expect(first).toMatchObject({ reply_to: root.id, thread_id: root.id });
    const up = await alice.waitFor((e) => e.type === 'thread_updated' && e.data?.thread_id === root.id);
    expect(up.data).toEqual({
      room_id: room,
      thread_id: root.id,
      reply_count: 1,
      last_reply_at: first.timestamp,
    });

    // 10 replies from each node at once (half of them to the first reply: same thread).
    const per = 10;
    const acks = await Promise.all(
      Array.from({ length: per * 2 }, (_, i) => {
        const [c, to] = i % 2 === 0 ? [alice, root.id] : [bob, first.id];
        return c.ok('send_message', { room_id: room, content: `race ${i}`, reply_to: to }, 10_000);
      }),
    );
    const total = per * 2 + 1;
    expect(acks).toHaveLength(per * 2);
    for (const c of [alice, bob]) {
      await c.waitForCount(
        (e) => e.type === 'thread_updated' && e.data?.thread_id === root.id,
        total,
        10_000,
      );
      // Each reply got its own count: 1..total, none twice, none lost.
      const counts = threadUpdates(c, root.id)
        .map((u) => u.reply_count)
        .sort((x, y) => x - y);
      expect(counts).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    }

    const history = messages(await bob.ok('get_history', { room_id: room }));
    expect(history).toHaveLength(total + 1);
    const latestReply = history
      .slice(1)
      .map((m) => m.timestamp)
      .sort()
      .pop();
    expect(history[0]).toMatchObject({ id: root.id, reply_count: total, last_reply_at: latestReply });
    for (const m of history.slice(1)) expect(m.thread_id).toBe(root.id);

    const thread = messages(await alice.ok('get_thread', { room_id: room, thread_id: root.id, limit: 100 }));
    expect(thread.map((m) => m.id)).toEqual(history.map((m) => m.id));
    expect(thread.map((m) => m.seq)).toEqual([...thread.map((m) => m.seq)].sort((x, y) => x - y));
  });

  it('a message deleted on one node cannot be replied to on the other', async () => {
    const [a, b] = await twoNodes();
    const [aliceName, bobName] = [fresh('alice'), fresh('bob')];
    const alice = await pool.connect(a.wsUrl, { token: await token(aliceName) });
    const bob = await pool.connect(b.wsUrl, { token: await token(bobName) });
    const room = roomId(await alice.ok('create_room', { name: `threads ${users}` }));
    const other = roomId(await alice.ok('create_room', { name: `other ${users}` }));
    await bob.ok('join_room', { room_id: room });
    await bob.ok('join_room', { room_id: other });
    const gone = await send(alice, room, 'to be deleted');
    const elsewhere = await send(alice, other, 'other room');
    await alice.ok('delete_message', { room_id: room, message_id: gone.id });
    await bob.waitFor((e) => e.type === 'message_deleted' && e.data?.message_id === gone.id);

    const reply = (to: string): Promise<Envelope> =>
      bob.request('send_message', { room_id: room, content: 'reply', reply_to: to });
    expect(await errorCode(reply(gone.id))).toBe('message_not_found');
    expect(await errorCode(reply('no-such-message'))).toBe('message_not_found');
    expect(await errorCode(reply(elsewhere.id))).toBe('message_not_found');
    expect(messages(await bob.ok('get_history', { room_id: room }))).toHaveLength(1);
  });
});

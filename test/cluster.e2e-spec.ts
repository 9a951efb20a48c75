/**
 * A real cluster: three demo app processes on one redis-server (see
 * ./support/cluster). PROTOCOL.md sections 3, 4, 7 and 9 across nodes: one
 * seq per room on every node, membership and presence per user across nodes,
 * typing and moderation across nodes, node death (kill -9), a Redis restart,
 * distributed health, consistent routing, and fan-out only to nodes hosting a
 * room's members.
 *
 * Cluster timers: heartbeat 1 s, node_timeout 3 s, presence_cleanup 1 s,
 * typing_timeout 2 s. redis-server must be installed: without it the suite fails.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { eventually, metricValue } from './support/app';
import { startCluster, removeLogs, type Cluster, type ClusterNode } from './support/cluster';
import { ClientPool, WsClient, type Envelope, type Json } from './support/ws-client';

jest.setTimeout(120_000);

const NODE_TIMEOUT_S = 3;
const TYPING_TIMEOUT_S = 2;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

let counter = 0;
/** A user name no other test uses. */
const user = (prefix: string): string => `${prefix}-${++counter}-${randomUUID().slice(0, 4)}`;

/** The wire message object (the fields these tests read). */
interface WireMessage {
  id: string;
  seq: number;
  room_id: string;
  user_id: string;
  content: string;
}

/** Presence entries of `get_presence`. */
type PresenceList = Array<{ user_id: string; status: string }>;

/** `message` envelopes of one room received by a client (from index `from`). */
const roomMessages = (c: WsClient, roomId: string, from = 0): WireMessage[] =>
  c.all((e) => e.type === 'message' && e.data?.room_id === roomId, from).map((e) => e.data as WireMessage);

const isRoomMessage =
  (roomId: string, content?: string) =>
  (e: Envelope): boolean =>
    e.type === 'message' &&
    e.data?.room_id === roomId &&
    (content === undefined || e.data?.content === content);

const isPresence =
  (userId: string, status?: string) =>
  (e: Envelope): boolean =>
    e.type === 'presence' &&
    e.data?.user_id === userId &&
    (status === undefined || e.data?.status === status);

const isTyping =
  (roomId: string, userId: string, typing: boolean) =>
  (e: Envelope): boolean =>
    e.type === 'typing' &&
    e.data?.room_id === roomId &&
    e.data?.user_id === userId &&
    e.data?.typing === typing;

/** Node ids listed by `GET /_/health/streaming/distributed` on `node` (with the HTTP status). */
async function distributedNodes(node: ClusterNode): Promise<{ status: number; ids: string[] }> {
  const res = await node.http('GET', '/_/health/streaming/distributed');
  const nodes = (res.json?.details?.distributed?.nodes ?? []) as Array<{ node_id: string }>;
  return { status: res.status, ids: nodes.map((n) => n.node_id).sort() };
}

/** One metric sample sum from `GET /metrics` of a node. */
async function metric(node: ClusterNode, name: string, labelFilter?: string): Promise<number> {
  const res = await node.http('GET', '/metrics');
  if (res.status !== 200) throw new Error(`/metrics on ${node.nodeId} answered ${res.status}`);
  return metricValue(res.text, name, labelFilter);
}

/** `PUBSUB NUMSUB` of every channel and the subscriber count of every client, for failure messages. */
async function pubsubState(url: string): Promise<string> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    const channels = (await r.pubsub('CHANNELS', '*')) as string[];
    const numsub = channels.length > 0 ? await r.pubsub('NUMSUB', ...channels) : [];
    const clients = ((await r.client('LIST')) as string)
      .split('\n')
      .filter((l) => l.includes(' name='))
      .map((l) => `${/ name=(\S*)/.exec(l)?.[1] ?? '?'} sub=${/ sub=(\d+)/.exec(l)?.[1] ?? '?'}`);
    return `channels ${JSON.stringify(numsub)}; clients ${clients.join(', ')}`;
  } catch (err) {
    return `unavailable (${String(err)})`;
  } finally {
    r.disconnect();
  }
}

/**
 * One cluster per describe block: started in beforeAll, stopped in afterAll
 * (every process group killed). A failing test's error carries the tail of
 * every node's log; the log directory is kept when anything failed.
 */
function useCluster(options: Parameters<typeof startCluster>[0] = {}) {
  const ctx: { cluster: Cluster; pool: ClientPool; failed: boolean } = {
    cluster: undefined as unknown as Cluster,
    pool: new ClientPool(),
    failed: false,
  };
  beforeAll(async () => {
    ctx.cluster = await startCluster(options);
  }, 240_000);
  afterEach(async () => {
    expect(await ctx.pool.closeAll()).toEqual([]);
  });
  afterAll(async () => {
    await ctx.pool.closeAll();
    if (!ctx.cluster) return;
    await ctx.cluster.stopAll();
    if (ctx.failed) console.log(`cluster logs kept in ${ctx.cluster.logDir}`);
    else removeLogs(ctx.cluster);
  }, 60_000);

  /** `it`, with the nodes' logs appended to a failure. */
  const test = (name: string, fn: () => Promise<void>, timeoutMs?: number): void => {
    it(
      name,
      async () => {
        try {
          await fn();
        } catch (err) {
          ctx.failed = true;
          if (err instanceof Error && ctx.cluster) {
            err.message += `\n\nnode logs (${ctx.cluster.logDir}):\n${ctx.cluster.describeLogs(1500)}`;
          }
          throw err;
        }
      },
      timeoutMs,
    );
  };

  /**
   * Log `name` in on a node and open a WebSocket there. Unless `raw`, a `ping`
   * round trip follows: requests wait until the server has set the connection
   * up (user and room subscriptions), so the connection is fully live after it.
   */
  const connect = async (name: string, node: number, raw = false): Promise<WsClient> => {
    const token = await ctx.cluster.login(name, node);
    const c = await ctx.pool.connect(ctx.cluster.nodes[node].wsUrl, { token, timeoutMs: 10_000 });
    if (!raw) expect((await c.request('ping', undefined, 5000)).type).toBe('pong');
    return c;
  };

  /** `create_room` by `owner`: the room id. */
  const createRoom = async (owner: WsClient, name = 'cluster room'): Promise<string> => {
    const ack = await owner.ok('create_room', { name: `${name} ${randomUUID().slice(0, 6)}` });
    return ack.room.id as string;
  };

  /** `join_room` over WebSocket. */
  const join = async (c: WsClient, roomId: string): Promise<void> => {
    await c.ok('join_room', { room_id: roomId });
  };

  return { ctx, test, connect, createRoom, join };
}

describe('distributed health and routing', () => {
  const { ctx, test } = useCluster();

  test('distributed health on every node lists every node id', async () => {
    const all = ctx.cluster.nodes.map((n) => n.nodeId).sort();
    for (const node of ctx.cluster.nodes) {
      await eventually(async () => {
        const { status, ids } = await distributedNodes(node);
        expect(status).toBe(200);
        expect(ids).toEqual(all);
      }, 5000);
    }
  });

  test('/_/streaming/route answers the same node for a room on every node (consistent hashing)', async () => {
    const ids = new Set(ctx.cluster.nodes.map((n) => n.nodeId));
    const picked = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const room = `route-room-${i}-${randomUUID().slice(0, 6)}`;
      const answers: string[] = [];
      for (const node of ctx.cluster.nodes) {
        const res = await node.http('GET', `/_/streaming/route?room=${encodeURIComponent(room)}`);
        expect(res.status).toBe(200);
        expect(res.json.nodes).toBe(ctx.cluster.nodes.length);
        answers.push(res.json.node_id as string);
      }
      expect(new Set(answers).size).toBe(1);
      expect(ids.has(answers[0])).toBe(true);
      picked.add(answers[0]);
      // The same question twice gets the same answer.
      const again = await ctx.cluster.nodes[i % 3].http('GET', `/_/streaming/route?room=${room}`);
      expect(again.json.node_id).toBe(answers[0]);
    }
    // 30 rooms do not all hash to one node (probability 3^-29).
    expect(picked.size).toBeGreaterThan(1);
  });
});

describe('cross-node delivery', () => {
  const { test, connect, createRoom, join } = useCluster();

  test('members on three nodes see the same message ids with the same seq', async () => {
    const a = await connect(user('alice'), 0);
    const b = await connect(user('bob'), 1);
    const c = await connect(user('carol'), 2);
    const roomId = await createRoom(a);
    await join(b, roomId);
    await join(c, roomId);

    const sent: Array<{ message_id: string; seq: number }> = [];
    for (const [i, sender] of [a, b, c].entries()) {
      sent.push(await sender.ok('send_message', { room_id: roomId, content: `hello ${i}` }));
    }
    expect(sent.map((s) => s.seq)).toEqual([1, 2, 3]);
    for (const client of [a, b, c]) {
      await client.waitForCount(isRoomMessage(roomId), 3, 10_000);
      const got = roomMessages(client, roomId);
      expect(got.map((m) => [m.id, m.seq, m.content])).toEqual(
        sent.map((s, i) => [s.message_id, s.seq, `hello ${i}`]),
      );
    }
  });

  test('three senders on three nodes, 15 messages each at once: every connection gets seq 1..45 in order', async () => {
    const senders = [
      await connect(user('s0'), 0),
      await connect(user('s1'), 1),
      await connect(user('s2'), 2),
    ];
    const reader = await connect(user('reader'), 1);
    const roomId = await createRoom(senders[0], 'burst');
    for (const c of [...senders.slice(1), reader]) await join(c, roomId);

    const acks = await Promise.all(
      senders.map((s, i) =>
        Promise.all(
          range(1, 15).map((k) => s.ok('send_message', { room_id: roomId, content: `s${i}-${k}` }, 15_000)),
        ),
      ),
    );
    const ackSeqs = acks.flat().map((a) => a.seq as number);
    expect([...ackSeqs].sort((x, y) => x - y)).toEqual(range(1, 45));
    // Each sender's messages got increasing seqs in the order it sent them.
    for (const perSender of acks) {
      const seqs = perSender.map((a) => a.seq as number);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    const seqOfId = new Map(acks.flat().map((a) => [a.message_id as string, a.seq as number]));

    for (const client of [...senders, reader]) {
      await client.waitForCount(isRoomMessage(roomId), 45, 15_000);
      const got = roomMessages(client, roomId);
      expect(got.map((m) => m.seq)).toEqual(range(1, 45));
      for (const m of got) expect(seqOfId.get(m.id)).toBe(m.seq);
    }
    // Nothing more arrives (no duplicates).
    await reader.expectNone(isRoomMessage(roomId), 500, reader.envelopes.length);
    expect(roomMessages(reader, roomId)).toHaveLength(45);
  });
});

describe('membership per user across nodes', () => {
  const { ctx, test, connect, createRoom } = useCluster({
    env: { FORGE_STREAMING_MAX_ROOMS_PER_USER: '500', FORGE_STREAMING_MAX_ROOMS_OWNED_PER_USER: '500' },
  });

  test('a REST join on node A reaches the user connection on node B; a later connection on C needs no join', async () => {
    const owner = await connect(user('owner'), 0);
    const name = user('erin');
    const onB = await connect(name, 1);
    const roomId = await createRoom(owner);

    const token = await ctx.cluster.login(name, 0);
    const joined = await ctx.cluster.nodes[0].http('POST', `/api/rooms/${roomId}/join`, { token });
    expect(joined.status).toBe(200);
    await owner.waitFor(
      (e) => e.type === 'user_joined' && e.data?.room_id === roomId && e.data?.user_id === name,
      5000,
    );

    const first = await owner.ok('send_message', { room_id: roomId, content: 'first' });
    const m1 = await onB.waitFor(isRoomMessage(roomId, 'first'), 5000);
    expect(m1.data).toMatchObject({
      id: first.message_id,
      seq: first.seq,
      user_id: owner.connected.data.user_id,
    });

    // A second connection of the user, opened later on a third node, gets the room without joining.
    // (`connect` waits for a ping round trip; how soon after `connected` is the next test's subject.)
    const onC = await connect(name, 2);
    expect(onC.connected.data.node_id).toBe(ctx.cluster.nodes[2].nodeId);
    const second = await owner.ok('send_message', { room_id: roomId, content: 'second' });
    for (const c of [onB, onC]) {
      const m2 = await c.waitFor(isRoomMessage(roomId, 'second'), 5000);
      expect(m2.data).toMatchObject({ id: second.message_id, seq: second.seq });
    }
    // The user's own send from C reaches the owner on A and the user's connection on B.
    const third = await onC.ok('send_message', { room_id: roomId, content: 'third' });
    for (const c of [owner, onB, onC]) {
      const m3 = await c.waitFor(isRoomMessage(roomId, 'third'), 5000);
      expect(m3.data.seq).toBe(third.seq);
    }
    // onB saw every message of the room since the join, in seq order, without duplicates.
    const seqsB = roomMessages(onB, roomId).map((m) => m.seq);
    expect(seqsB).toEqual(range(first.seq as number, third.seq as number));
  });

  test('a new connection of a member of many rooms gets the messages sent to them right after `connected`', async () => {
    // PROTOCOL.md section 3: every live connection of a member receives the room's events,
    // including connections opened after the join. The user is a member of 200 rooms (10 owners
    // on node A, 20 rooms each); as soon as the user's new connection on B or C (where no
    // connection of those rooms lives) has received `connected`, each owner sends one message
    // to one of its rooms. Three tries.
    const name = user('late');
    const token = await ctx.cluster.login(name, 0);
    const owners: WsClient[] = [];
    const targets: string[] = [];
    for (let i = 0; i < 10; i++) {
      const owner = await connect(user(`owner${i}`), 0);
      const mine: string[] = [];
      for (let k = 0; k < 20; k++) mine.push(await createRoom(owner, `many ${i}.${k}`));
      const joins = await Promise.all(
        mine.map((roomId) => ctx.cluster.nodes[0].http('POST', `/api/rooms/${roomId}/join`, { token })),
      );
      expect(joins.map((j) => j.status)).toEqual(mine.map(() => 200));
      owners.push(owner);
      targets.push(mine[i % mine.length]);
    }

    const missed: string[] = [];
    for (let t = 1; t <= 3; t++) {
      const node = 1 + (t % 2);
      const c = await connect(name, node, true);
      const content = `right-after-connected-${t}`;
      const acks = await Promise.all(
        owners.map((o, i) => o.ok('send_message', { room_id: targets[i], content })),
      );
      const got = await Promise.all(
        targets.map((roomId) =>
          c.waitFor(isRoomMessage(roomId, content), 2000).then(
            () => true,
            () => false,
          ),
        ),
      );
      got.forEach((ok, i) => {
        if (!ok) missed.push(`try ${t} on ${ctx.cluster.nodes[node].nodeId}: owner ${i} seq ${acks[i].seq}`);
      });
      // The connection is fully set up by now: a message sent now reaches it.
      expect((await c.request('ping', undefined, 5000)).type).toBe('pong');
      await owners[0].ok('send_message', { room_id: targets[0], content: `${content}-later` });
      await c.waitFor(isRoomMessage(targets[0], `${content}-later`), 5000);
      await c.close();
      // Let the node drop its room subscriptions before it is used again.
      await eventually(async () => {
        const stats = await ctx.cluster.nodes[node].http('GET', '/_/streaming/stats');
        expect(stats.json.active_connections).toBe(0);
      }, 5000);
    }
    expect(missed).toEqual([]);
  });
});

describe('presence across nodes', () => {
  const { test, connect, createRoom, join } = useCluster();

  test('online while any connection on any node lives; offline with last_seen after the last; set_presence crosses nodes', async () => {
    const u = user('uma');
    const mate = await connect(user('mate'), 2);
    const roomId = await createRoom(mate);
    const onA = await connect(u, 0);
    await join(onA, roomId);
    const onB = await connect(u, 1);

    // set_presence busy on B reaches the room-mate on C.
    await onB.ok('set_presence', { status: 'busy', custom: 'in a meeting' });
    const busy = await mate.waitFor(isPresence(u, 'busy'), 5000);
    expect(busy.data.custom).toBe('in a meeting');
    expect(busy.data.last_seen).toMatch(ISO_UTC);

    // Closing A keeps U online (connected on B): no offline, get_presence still says busy.
    const mark = mate.envelopes.length;
    await onA.close();
    await mate.expectNone(isPresence(u, 'offline'), 3000, mark);
    const still = await mate.ok('get_presence', { room_id: roomId });
    expect((still.presence as PresenceList).find((p) => p.user_id === u)?.status).toBe('busy');

    // Closing B too: offline with last_seen.
    const before = Date.now();
    await onB.close();
    const offline = await mate.waitFor(isPresence(u, 'offline'), 8000, mark);
    expect(offline.data.last_seen).toMatch(ISO_UTC);
    expect(Date.parse(offline.data.last_seen as string)).toBeGreaterThanOrEqual(before - 2000);
    const after = await mate.ok('get_presence', { user_ids: [u] });
    expect(after.presence).toEqual([expect.objectContaining({ user_id: u, status: 'offline' })]);
  });
});

describe('typing across nodes', () => {
  const { test, connect, createRoom, join } = useCluster();

  test('typing:true from node A reaches node C; typing:false follows after typing_timeout', async () => {
    const typist = await connect(user('typist'), 0);
    const reader = await connect(user('reader'), 2);
    const roomId = await createRoom(typist);
    await join(reader, roomId);
    const who = typist.connected.data.user_id as string;

    const started = Date.now();
    await typist.ok('start_typing', { room_id: roomId });
    await reader.waitFor(isTyping(roomId, who, true), 5000);
    await reader.waitFor(isTyping(roomId, who, false), TYPING_TIMEOUT_S * 1000 + 5000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(TYPING_TIMEOUT_S * 1000 - 250);
    // The typist is not told about their own typing.
    expect(typist.all((e) => e.type === 'typing')).toEqual([]);

    // An explicit stop crosses nodes too.
    const mark = reader.envelopes.length;
    await typist.ok('start_typing', { room_id: roomId });
    await reader.waitFor(isTyping(roomId, who, true), 5000, mark);
    await typist.ok('stop_typing', { room_id: roomId });
    await reader.waitFor(isTyping(roomId, who, false), 5000, mark);
  });
});

describe('moderation across nodes', () => {
  const { test, connect, createRoom, join } = useCluster();

  test('a ban on node A removes the target connections on B and C from the room; their sends are refused', async () => {
    const mod = await connect(user('mod'), 0);
    const witness = await connect(user('witness'), 2);
    const t = user('troll');
    const tB = await connect(t, 1);
    const tC = await connect(t, 2);
    const roomId = await createRoom(mod);
    await join(witness, roomId);
    await join(tB, roomId);

    // Before the ban both of the target's connections get the room's messages.
    await mod.ok('send_message', { room_id: roomId, content: 'before' });
    for (const c of [tB, tC]) await c.waitFor(isRoomMessage(roomId, 'before'), 5000);

    const ban = await mod.ok('moderate', { room_id: roomId, action: 'ban', target_id: t, reason: 'spam' });
    expect(ban).toMatchObject({ room_id: roomId, target_id: t });
    for (const c of [tB, tC]) {
      const banned = await c.waitFor(
        (e) => e.type === 'member_banned' && e.data?.room_id === roomId && e.data?.target_id === t,
        5000,
      );
      expect(banned.data.reason).toBe('spam');
      const left = await c.waitFor((e) => e.type === 'room_left' && e.data?.room_id === roomId, 5000);
      expect(left.data.reason).toBe('banned');
    }
    await witness.waitFor((e) => e.type === 'member_banned' && e.data?.target_id === t, 5000);

    const marks = [tB.envelopes.length, tC.envelopes.length];
    await mod.ok('send_message', { room_id: roomId, content: 'after' });
    await witness.waitFor(isRoomMessage(roomId, 'after'), 5000);
    await tB.expectNone(isRoomMessage(roomId), 500, marks[0]);
    await tC.expectNone(isRoomMessage(roomId), 500, marks[1]);

    for (const c of [tB, tC]) {
      const rejoin = await c.request('join_room', { room_id: roomId });
      expect(rejoin.type).toBe('error');
      expect(rejoin.data.code).toBe('banned');
      const refused = await c.request('send_message', { room_id: roomId, content: 'let me in' });
      expect(refused.type).toBe('error');
    }
    await witness.expectNone(isRoomMessage(roomId, 'let me in'), 300);
  });

  test('a send from a banned user, on any node, is refused with banned', async () => {
    // PROTOCOL.md section 5: "Banned users cannot join or send"; section 6 has the code `banned`.
    const mod = await connect(user('mod'), 0);
    const t = user('banned');
    const tB = await connect(t, 1);
    const tC = await connect(t, 2);
    const roomId = await createRoom(mod);
    await join(tB, roomId);
    await mod.ok('moderate', { room_id: roomId, action: 'ban', target_id: t });
    await tB.waitFor((e) => e.type === 'room_left' && e.data?.room_id === roomId, 5000);
    await tC.waitFor((e) => e.type === 'room_left' && e.data?.room_id === roomId, 5000);
    const codes = [];
    for (const c of [tB, tC]) {
      const refused = await c.request('send_message', { room_id: roomId, content: 'let me in' });
      codes.push([refused.type, refused.data.code]);
    }
    expect(codes).toEqual([
      ['error', 'banned'],
      ['error', 'banned'],
    ]);
  });

  test('a mute on node A refuses sends of the target on nodes B and C with muted', async () => {
    const mod = await connect(user('mod'), 0);
    const witness = await connect(user('witness'), 1);
    const v = user('loud');
    const vB = await connect(v, 1);
    const vC = await connect(v, 2);
    const roomId = await createRoom(mod);
    await join(witness, roomId);
    await join(vC, roomId);

    await mod.ok('moderate', { room_id: roomId, action: 'mute', target_id: v });
    for (const c of [vB, vC, witness]) {
      await c.waitFor((e) => e.type === 'member_muted' && e.data?.target_id === v, 5000);
    }
    for (const c of [vB, vC]) {
      const refused = await c.request('send_message', { room_id: roomId, content: 'shout' });
      expect(refused.type).toBe('error');
      expect(refused.data.code).toBe('muted');
    }
    // Muted users still read the room.
    await mod.ok('send_message', { room_id: roomId, content: 'quiet please' });
    for (const c of [vB, vC]) await c.waitFor(isRoomMessage(roomId, 'quiet please'), 5000);
    await witness.expectNone(isRoomMessage(roomId, 'shout'), 300);

    await mod.ok('moderate', { room_id: roomId, action: 'unmute', target_id: v });
    await vB.waitFor((e) => e.type === 'member_unmuted' && e.data?.target_id === v, 5000);
    const ack = await vB.ok('send_message', { room_id: roomId, content: 'thanks' });
    const seen = await witness.waitFor(isRoomMessage(roomId, 'thanks'), 5000);
    expect(seen.data.seq).toBe(ack.seq);
  });
});

describe('kill -9 of a node', () => {
  const { ctx, test, connect, createRoom, join } = useCluster();

  test('room-mates see its users go offline and stop typing; health drops it; its clients resume elsewhere without gaps or duplicates', async () => {
    const [A, B, C] = ctx.cluster.nodes;
    const watchA = await connect(user('watch-a'), 0);
    const watchB = await connect(user('watch-b'), 1);
    const roomId = await createRoom(watchA);
    await join(watchB, roomId);

    const onlyC = user('only-c');
    const xC = await connect(onlyC, 2);
    await join(xC, roomId);
    const both = user('both');
    const yC = await connect(both, 2);
    await join(yC, roomId);
    await connect(both, 0);
    const typistName = user('typist');
    const zC = await connect(typistName, 2);
    await join(zC, roomId);
    const readerName = user('reader');
    const rC = await connect(readerName, 2);
    await join(rC, roomId);

    for (let i = 1; i <= 3; i++) await watchA.ok('send_message', { room_id: roomId, content: `pre-${i}` });
    await rC.waitForCount(isRoomMessage(roomId), 3, 5000);
    const lastSeq = Math.max(...roomMessages(rC, roomId).map((m) => m.seq));
    expect(lastSeq).toBe(3);

    await zC.ok('start_typing', { room_id: roomId });
    for (const w of [watchA, watchB]) await w.waitFor(isTyping(roomId, typistName, true), 5000);

    const marks = [watchA.envelopes.length, watchB.envelopes.length];
    const killedAt = Date.now();
    await C.kill9();
    // The dead node's sockets are gone.
    await rC.waitForClose(5000);

    // Messages sent while the reader is away (from the surviving nodes).
    const missed: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const ack = await (i % 2 ? watchA : watchB).ok('send_message', {
        room_id: roomId,
        content: `missed-${i}`,
      });
      missed.push(ack.seq as number);
    }
    expect(missed).toEqual([4, 5, 6, 7]);

    const bound = (NODE_TIMEOUT_S + 5) * 1000;
    const remaining = (): number => Math.max(1, killedAt + bound - Date.now());
    await Promise.all(
      [watchA, watchB].map(async (w, i) => {
        for (const u of [onlyC, typistName]) {
          const off = await w.waitFor(isPresence(u, 'offline'), remaining(), marks[i]);
          expect(off.data.last_seen).toMatch(ISO_UTC);
        }
        await w.waitFor(isTyping(roomId, typistName, false), remaining(), marks[i]);
      }),
    );
    const reapedAfter = Date.now() - killedAt;

    // Distributed health drops the dead node within node_timeout + 2 s.
    await eventually(
      async () => {
        for (const n of [A, B]) {
          const { status, ids } = await distributedNodes(n);
          expect(status).toBe(200);
          expect(ids).toEqual([A.nodeId, B.nodeId].sort());
        }
      },
      Math.max(1, killedAt + (NODE_TIMEOUT_S + 2) * 1000 - Date.now()),
      100,
    );
    // The user still connected on A stayed online.
    for (const [i, w] of [watchA, watchB].entries()) {
      expect(w.all(isPresence(both, 'offline'), marks[i])).toEqual([]);
    }
    const p = await watchB.ok('get_presence', { user_ids: [both, onlyC] });
    expect((p.presence as PresenceList).map((x) => [x.user_id, x.status])).toEqual([
      [both, 'online'],
      [onlyC, 'offline'],
    ]);
    expect(reapedAfter).toBeLessThanOrEqual(bound);

    // The reader reconnects to B and resumes from its last seq: exactly 4..7, then resumed, then the ack.
    const r = await connect(readerName, 1);
    const from = r.envelopes.length;
    const answer = await r.request('resume', { rooms: { [roomId]: lastSeq } }, 10_000);
    expect(answer.type).toBe('ack');
    const after = r.envelopes.slice(from);
    const resumedAt = after.findIndex((e) => e.type === 'resumed');
    expect(resumedAt).toBeGreaterThanOrEqual(0);
    expect(after[resumedAt].data.rooms[roomId]).toBe(7);
    expect(after[resumedAt].data.gaps).toBeUndefined();
    expect(
      after
        .slice(0, resumedAt)
        .filter(isRoomMessage(roomId))
        .map((e) => [e.data.seq as number, e.data.content as string]),
    ).toEqual(range(1, 4).map((i) => [3 + i, `missed-${i}`]));
    // Live messages continue after the replay, with no duplicates.
    const live = await watchA.ok('send_message', { room_id: roomId, content: 'live' });
    await r.waitFor(isRoomMessage(roomId, 'live'), 5000);
    expect(roomMessages(r, roomId).map((m) => m.seq)).toEqual([4, 5, 6, 7, live.seq]);
    expect(live.seq).toBe(8);

    // /_/streaming/route never names the dead node.
    for (let i = 0; i < 10; i++) {
      for (const n of [A, B]) {
        const res = await n.http('GET', `/_/streaming/route?room=after-kill-${i}`);
        expect(res.status).toBe(200);
        expect([A.nodeId, B.nodeId]).toContain(res.json.node_id);
        expect(res.json.nodes).toBe(2);
      }
    }
  });

  test('the killed node, restarted with the same id, rejoins: health lists it and its clients get room traffic', async () => {
    const [A, B, C] = ctx.cluster.nodes;
    await C.restart();
    const all = [A, B, C].map((n) => n.nodeId).sort();
    for (const n of [A, B, C]) {
      await eventually(async () => {
        const { status, ids } = await distributedNodes(n);
        expect(status).toBe(200);
        expect(ids).toEqual(all);
      }, 5000);
    }
    const owner = await connect(user('owner'), 0);
    const onC = await connect(user('back-on-c'), 2);
    const roomId = await createRoom(owner);
    await join(onC, roomId);
    const ack = await owner.ok('send_message', { room_id: roomId, content: 'welcome back' });
    const got = await onC.waitFor(isRoomMessage(roomId, 'welcome back'), 5000);
    expect(got.data.seq).toBe(ack.seq);
    const reply = await onC.ok('send_message', { room_id: roomId, content: 'thanks' });
    expect((await owner.waitFor(isRoomMessage(roomId, 'thanks'), 5000)).data.seq).toBe(reply.seq);
  });

  test('a graceful stop (SIGTERM) closes its sockets with 1001; its users go offline; health drops it', async () => {
    const [A, B, C] = ctx.cluster.nodes;
    const mate = await connect(user('mate'), 0);
    const roomId = await createRoom(mate);
    const leaving = user('leaving');
    const onB = await connect(leaving, 1);
    await join(onB, roomId);
    const mark = mate.envelopes.length;
    const stoppedAt = Date.now();
    await B.stop();
    expect((await onB.waitForClose(5000)).code).toBe(1001);
    const off = await mate.waitFor(isPresence(leaving, 'offline'), (NODE_TIMEOUT_S + 5) * 1000, mark);
    expect(off.data.last_seen).toMatch(ISO_UTC);
    await eventually(
      async () => {
        for (const n of [A, C]) {
          const { status, ids } = await distributedNodes(n);
          expect(status).toBe(200);
          expect(ids).toEqual([A.nodeId, C.nodeId].sort());
        }
      },
      Math.max(1, stoppedAt + (NODE_TIMEOUT_S + 2) * 1000 - Date.now()),
      100,
    );
    await B.restart();
  });
});

describe('Redis restart (appendonly)', () => {
  const { ctx, test, connect, createRoom, join } = useCluster({ appendonly: true });

  test('503 and backend_unavailable while Redis is down; recovery by itself; acked messages survive', async () => {
    const [A, B] = ctx.cluster.nodes;
    const a = await connect(user('alice'), 0);
    const b = await connect(user('bob'), 1);
    const c = await connect(user('carol'), 2);
    const roomId = await createRoom(a);
    await join(b, roomId);
    await join(c, roomId);

    const acked: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const ack = await [a, b, c][i % 3].ok('send_message', { room_id: roomId, content: `pre-${i}` });
      acked.push(ack.message_id as string);
    }
    for (const x of [a, b, c]) await x.waitForCount(isRoomMessage(roomId), 5, 5000);

    await ctx.cluster.redis.stop();
    await eventually(
      async () => {
        const res = await A.http('GET', '/_/health/streaming/backend');
        expect(res.status).toBe(503);
      },
      10_000,
      100,
    );
    // A send while Redis is down is answered backend_unavailable, never acked.
    for (const sender of [a, b]) {
      const answer = await sender.request(
        'send_message',
        { room_id: roomId, content: 'during outage' },
        15_000,
      );
      expect(answer.type).toBe('error');
      expect(answer.data.code).toBe('backend_unavailable');
    }
    // Sockets stay open through the outage.
    expect(a.closeInfo).toBeUndefined();
    expect(b.closeInfo).toBeUndefined();

    const restartedAt = Date.now();
    await ctx.cluster.redis.restart();
    // Every node recovers by itself within ~10 s.
    await eventually(
      async () => {
        for (const node of ctx.cluster.nodes) {
          const res = await node.http('GET', '/_/health/streaming');
          expect(res.status).toBe(200);
        }
      },
      10_000,
      100,
    );
    // Messages flow across nodes again (the subscriptions are back): a probe from each node in
    // turn until one reaches all three connections.
    let attempt = 0;
    await eventually(
      async () => {
        const content = `probe-${++attempt}`;
        const marks = [a, b, c].map((x) => x.envelopes.length);
        const answer = await [a, b, c][attempt % 3].request(
          'send_message',
          { room_id: roomId, content },
          2000,
        );
        expect(answer.type).toBe('ack');
        acked.push(answer.data.message_id as string);
        await Promise.all([a, b, c].map((x, i) => x.waitFor(isRoomMessage(roomId, content), 1000, marks[i])));
      },
      Math.max(1, restartedAt + 10_000 - Date.now()),
      100,
    ).catch(async (err: Error) => {
      err.message += `\nRedis pub/sub after the restart: ${await pubsubState(ctx.cluster.redis.url)}`;
      throw err;
    });
    const recoveredAfter = Date.now() - restartedAt;

    // Steady state: three messages from three nodes reach every node, in order.
    const mark = [a, b, c].map((x) => x.envelopes.length);
    const post: number[] = [];
    for (const [i, sender] of [c, b, a].entries()) {
      const ack = await sender.ok('send_message', { room_id: roomId, content: `post-${i}` });
      acked.push(ack.message_id as string);
      post.push(ack.seq as number);
    }
    for (const [i, x] of [a, b, c].entries()) {
      await x.waitForCount(
        (e) => isRoomMessage(roomId)(e) && String(e.data.content).startsWith('post-'),
        3,
        5000,
        mark[i],
      );
      const seqs = roomMessages(x, roomId, mark[i])
        .filter((m) => String(m.content).startsWith('post-'))
        .map((m) => m.seq);
      expect(seqs).toEqual(post);
    }

    // Every acked message, before and after the restart, is in history (appendonly), gap-free.
    const token = await ctx.cluster.login(b.connected.data.user_id as string, 1);
    const res = await B.http('GET', `/api/rooms/${roomId}/history?limit=1000`, { token });
    expect(res.status).toBe(200);
    const ids = (res.json.messages as Json[]).map((m) => m.id as string);
    for (const id of acked) expect(ids).toContain(id);
    const seqs = (res.json.messages as Json[]).map((m) => m.seq as number);
    expect(seqs).toEqual(range(1, seqs.length));
    expect(recoveredAfter).toBeLessThanOrEqual(10_000);
  });
});

describe('fan-out scaling', () => {
  const { ctx, test, connect, createRoom, join } = useCluster();

  test('a room whose members are all on node A reaches the bus of A only', async () => {
    const [A, B, C] = ctx.cluster.nodes;
    const roomMetric = (n: ClusterNode): Promise<number> =>
      metric(n, 'streaming_bus_received_total', 'kind="room"');
    const owner = await connect(user('owner'), 0);
    const member = await connect(user('member'), 0);
    const roomId = await createRoom(owner);
    await join(member, roomId);
    // Users connected elsewhere who are not members of the room.
    await connect(user('elsewhere-b'), 1);
    await connect(user('elsewhere-c'), 2);

    const before = await Promise.all([A, B, C].map(roomMetric));
    const roomMsgsBefore = await metric(A, 'streaming_room_messages_total');
    for (let i = 1; i <= 20; i++) await owner.ok('send_message', { room_id: roomId, content: `m${i}` });
    await member.waitForCount(isRoomMessage(roomId), 20, 10_000);
    await eventually(async () => {
      expect(await roomMetric(A)).toBeGreaterThanOrEqual(before[0] + 20);
      expect(await metric(A, 'streaming_room_messages_total')).toBeGreaterThanOrEqual(roomMsgsBefore + 20);
    }, 5000);
    // Give a stray delivery to B or C time to show up, then check nothing did.
    await new Promise((r) => setTimeout(r, 500));
    expect(await roomMetric(B)).toBe(before[1]);
    expect(await roomMetric(C)).toBe(before[2]);

    // Control: once a member connects on B, B receives the room's traffic too.
    const late = await connect(user('late'), 1);
    await join(late, roomId);
    const bBefore = await roomMetric(B);
    await owner.ok('send_message', { room_id: roomId, content: 'now on B too' });
    await late.waitFor(isRoomMessage(roomId, 'now on B too'), 5000);
    expect(await roomMetric(B)).toBeGreaterThan(bBefore);
    expect(await roomMetric(C)).toBe(before[2]);
  });
});

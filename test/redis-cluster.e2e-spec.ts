/**
 * The Redis backend on a real Redis Cluster (issue 16): 3 masters with one
 * replica each (./support/redis-cluster: AOF with appendfsync always,
 * cluster-node-timeout 2 s), two Nest apps of this process as the nodes.
 *
 * - the cross-node essentials on a cluster: room messages in seq order,
 *   history, resume, presence, a user's events (sendToUser), channels;
 * - sharded pub/sub: a room's topic is subscribed on the shard owning the
 *   room's slot only, no classic PUBLISH crosses the cluster bus, and the
 *   room's messages reach no other master;
 * - durability (`redisWaitReplicas: 1`): a message is acknowledged and
 *   delivered only once its replica has it; a master SIGKILLed mid-stream
 *   (while its replica lags) is replaced by its replica, the nodes carry on,
 *   and no acknowledged message is lost, nor any seq delivered twice.
 *
 * redis-server and redis-cli must be installed (apt-get install -y
 * redis-server): without them this suite fails, it never skips.
 */
import { randomUUID } from 'node:crypto';
import { StreamingManager, type StreamingModuleOptions } from '@nest-streaming/streaming';
import { eventually } from '@nest-streaming/streaming/testing';
import { RedisBackend } from '../libs/streaming/src/backends/redis/redis.backend';
import { roomTopic, type MemberRecord, type RoomRecord } from '../libs/streaming/src/interfaces';
import { signToken, startStreamingApp, type TestApp } from './support/app';
import { startReplicatedRedisCluster, type ReplicatedClusterHandle } from './support/redis-cluster';
import { startRedisServer } from './support/redis-server';
import { ClientPool, type Envelope, type WsClient } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'redis-cluster-e2e-secret-4c1d9e7a2b5f8036';
/** The key prefix of the apps' backend (the default). */
const PREFIX = 'fs:';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

let cluster: ReplicatedClusterHandle;
const pool = new ClientPool();
const apps: TestApp[] = [];

beforeAll(async () => {
  cluster = await startReplicatedRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2000 });
}, 40_000);

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await cluster?.dispose();
});

let users = 0;
const fresh = (name: string): string => `${name}-${++users}-${randomUUID().slice(0, 6)}`;
const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

/** Two nodes on the cluster (every node's URL as startup nodes), messages waiting for one replica. */
async function twoNodes(over: Partial<StreamingModuleOptions> = {}): Promise<[TestApp, TestApp]> {
  const tag = randomUUID().slice(0, 6);
  const start = async (nodeId: string): Promise<TestApp> => {
    const app = await startStreamingApp({
      historyStore: 'memory',
      auth: { jwtSecret: SECRET },
      nodeId,
      backend: 'redis',
      backendUrls: cluster.urls,
      redisWaitReplicas: 1,
      redisWaitTimeout: 0.5,
      rateLimit: { enabled: false },
      maxMessagesPerSecond: 10_000,
      ...over,
    });
    apps.push(app);
    return app;
  };
  return [await start(`rc-${tag}-a`), await start(`rc-${tag}-b`)];
}

const connect = async (app: TestApp, user: string): Promise<WsClient> =>
  pool.connect(app.wsUrl, { token: await token(user), timeoutMs: 10_000 });

const isRoomMessage =
  (roomId: string) =>
  (e: Envelope): boolean =>
    e.type === 'message' && e.data?.room_id === roomId;
const seqs = (c: WsClient, roomId: string, from = 0): number[] =>
  c.all(isRoomMessage(roomId), from).map((e) => e.data.seq as number);

/** `cluster_stats_messages_<name>` of CLUSTER INFO, per node port. */
async function busCounter(name: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const n of cluster.nodes.filter((x) => x.running)) {
    const info = String(await cluster.command(n.port, 'CLUSTER', 'INFO'));
    out.set(n.port, Number(new RegExp(`^cluster_stats_messages_${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0));
  }
  return out;
}

describe('cross-node essentials on a 3-master Redis Cluster', () => {
  it('room messages from both nodes arrive in seq order on both; history, resume and read back agree', async () => {
    const [a, b] = await twoNodes();
    const [aliceId, bobId] = [fresh('alice'), fresh('bob')];
    const alice = await connect(a, aliceId);
    const bob = await connect(b, bobId);
    const roomId = (await alice.ok('create_room', { name: 'cluster room' })).room.id as string;
    await bob.ok('join_room', { room_id: roomId });

    // Two senders on two nodes at once: both readers see 1..40 in order.
    const acks = await Promise.all(
      range(1, 20).flatMap((i) => [
        alice.ok('send_message', { room_id: roomId, content: `a${i}` }, 5000),
        bob.ok('send_message', { room_id: roomId, content: `b${i}` }, 5000),
      ]),
    );
    expect(acks.map((x) => x.seq as number).sort((p, q) => p - q)).toEqual(range(1, 40));
    for (const c of [alice, bob]) {
      await c.waitForCount(isRoomMessage(roomId), 40, 10_000);
      expect(seqs(c, roomId)).toEqual(range(1, 40));
    }

    // History from the other node: the same 40, in order, with their contents.
    const history = await bob.ok('get_history', { room_id: roomId, limit: 100 });
    const bySeq = new Map(bob.all(isRoomMessage(roomId)).map((e) => [e.data.seq, e.data.content]));
    expect((history.messages as Array<{ seq: number }>).map((m) => m.seq)).toEqual(range(1, 40));
    for (const m of history.messages as Array<{ seq: number; content: string }>)
      expect(m.content).toBe(bySeq.get(m.seq));

    // Resume: bob leaves at 40, alice sends 5 more, bob comes back on node A and replays 41..45.
    await bob.close();
    for (let i = 1; i <= 5; i++) await alice.ok('send_message', { room_id: roomId, content: `late${i}` });
    const back = await connect(a, bobId);
    const from = back.envelopes.length;
    expect((await back.request('resume', { rooms: { [roomId]: 40 } }, 10_000)).type).toBe('ack');
    const after = back.envelopes.slice(from);
    const resumedAt = after.findIndex((e) => e.type === 'resumed');
    expect(resumedAt).toBeGreaterThanOrEqual(0);
    expect(after[resumedAt].data.rooms[roomId]).toBe(45);
    expect(
      after
        .slice(0, resumedAt)
        .filter(isRoomMessage(roomId))
        .map((e): [number, string] => [e.data.seq as number, e.data.content as string]),
    ).toEqual(range(1, 5).map((i) => [40 + i, `late${i}`]));
  });

  it('presence, a user event (sendToUser), and channels cross the nodes', async () => {
    const [a, b] = await twoNodes();
    const [aliceId, bobId, carolId] = [fresh('alice'), fresh('bob'), fresh('carol')];
    const alice = await connect(a, aliceId);
    const bob = await connect(b, bobId);
    const roomId = (await alice.ok('create_room', { name: 'presence room' })).room.id as string;
    await bob.ok('join_room', { room_id: roomId });

    // Presence: bob (node B) is online for alice (node A); a third user's going away is seen across.
    const p = await alice.ok('get_presence', { user_ids: [bobId] });
    expect(
      (p.presence as Array<{ user_id: string; status: string }>).map((x) => [x.user_id, x.status]),
    ).toEqual([[bobId, 'online']]);
    const carol = await connect(b, carolId);
    await carol.ok('join_room', { room_id: roomId });
    const mark = alice.envelopes.length;
    await carol.close();
    await alice.waitFor(
      (e) => e.type === 'presence' && e.data?.user_id === carolId && e.data?.status === 'offline',
      10_000,
      mark,
    );

    // A user's events: sent by node A's StreamingManager, received by bob's connection on node B.
    await a.app.get(StreamingManager).sendToUser(bobId, 'cluster_ping', { n: 1 });
    const ping = await bob.waitFor((e) => e.type === 'cluster_ping', 5000);
    expect(ping.data).toEqual({ n: 1 });

    // Channels: a subscriber on node B gets what is published on node A, exact name and pattern.
    const ns = `news${randomUUID().slice(0, 6)}`;
    await bob.ok('subscribe', { channel: `${ns}.eu` });
    await bob.ok('subscribe', { channel: `${ns}.*` });
    await alice.ok('publish', { channel: `${ns}.eu`, data: { headline: 'one' } });
    await alice.ok('publish', { channel: `${ns}.us`, data: { headline: 'two' } });
    await eventually(
      () =>
        expect(
          bob
            .all((e) => e.type === 'channel_message')
            .map((e): [string, string] => [
              e.data.channel as string,
              (e.data.data as { headline: string }).headline,
            ]),
        ).toEqual(
          expect.arrayContaining([
            [`${ns}.eu`, 'one'],
            [`${ns}.us`, 'two'],
          ]),
        ),
      5000,
    );
  });
});

describe('sharded pub/sub', () => {
  it("a room's topic lives on the shard owning the room's slot, and its messages reach no other master", async () => {
    const [a, b] = await twoNodes();
    const bobId = fresh('bob');
    const alice = await connect(a, fresh('alice'));
    const bob = await connect(b, bobId);
    const roomId = (await alice.ok('create_room', { name: 'sharded' })).room.id as string;
    await bob.ok('join_room', { room_id: roomId });
    await alice.ok('send_message', { room_id: roomId, content: 'warm-up' });
    await bob.waitFor(isRoomMessage(roomId), 5000);

    // The shard channel carries the room's hash tag: the same slot as the room's keys.
    const channel = `${PREFIX}{r:${roomId}}:topic`;
    expect(await cluster.slotOf(channel)).toBe(await cluster.slotOf(`${PREFIX}{r:${roomId}}:seq`));
    const owner = await cluster.shardOf(channel);
    const masters = (await cluster.shards()).map((s) => s.master);
    expect(masters).toHaveLength(3);
    for (const m of masters) {
      const [, subscribers] = (await cluster.command(m.port, 'PUBSUB', 'SHARDNUMSUB', channel)) as [
        string,
        number,
      ];
      // Both nodes host a member: two subscriptions, on the owner only.
      expect([m.port, Number(subscribers)]).toEqual([m.port, m === owner.master ? 2 : 0]);
      // No room, user or channel topic is a classic channel anywhere (node-wide ones are).
      const classic = (await cluster.command(m.port, 'PUBSUB', 'CHANNELS', `${PREFIX}*`)) as string[];
      expect([m.port, classic.filter((c) => /^fs:(room|user|chan):/.test(c))]).toEqual([m.port, []]);
    }

    // A user's topic: on the shard of the user's slot, subscribed by the one node bob is on.
    const userChannel = `${PREFIX}{u:${bobId}}:topic`;
    const userShard = await cluster.shardOf(userChannel);
    const [, onUserShard] = (await cluster.command(
      userShard.master.port,
      'PUBSUB',
      'SHARDNUMSUB',
      userChannel,
    )) as [string, number];
    expect(Number(onUserShard)).toBe(1);

    // 30 messages: no classic PUBLISH on the bus; the owner forwards them to its replica only.
    const beforeClassic = await busCounter('publish_sent');
    const beforeShard = await busCounter('publishshard_sent');
    for (let i = 1; i <= 30; i++) await alice.ok('send_message', { room_id: roomId, content: `s${i}` });
    await bob.waitForCount(isRoomMessage(roomId), 31, 5000);
    const afterClassic = await busCounter('publish_sent');
    const afterShard = await busCounter('publishshard_sent');
    for (const [port, n] of afterClassic)
      expect([port, n - (beforeClassic.get(port) ?? 0)]).toEqual([port, 0]);
    const delta = (port: number): number => afterShard.get(port)! - (beforeShard.get(port) ?? 0);
    expect(delta(owner.master.port)).toBeGreaterThanOrEqual(30);
    for (const m of masters.filter((x) => x !== owner.master)) expect(delta(m.port)).toBeLessThan(30);
  });

  it('one URL of any cluster node is enough: the backend finds the cluster and shards its pub/sub', async () => {
    const backend = new RedisBackend({
      urls: [cluster.urls[cluster.urls.length - 1]],
      keyPrefix: 'one-url:',
    });
    try {
      await backend.connect();
      expect(backend.shardedPubSub).toBe(true);
      // Rooms on every shard work through the one URL.
      const got: string[] = [];
      for (let i = 0; i < 6; i++) {
        const room = roomRecord();
        await backend.createRoom(room, owner(room.owner));
        await backend.subscribe(roomTopic(room.id), (payload) => got.push(payload));
        await backend.appendMessage(room.id, draft(room.id), {
          maxHistory: 10,
          publishTopic: roomTopic(room.id),
        });
      }
      await eventually(() => expect(got).toHaveLength(6), 5000);
    } finally {
      await backend.close();
    }
  });
});

describe('redisShardedPubsub modes', () => {
  /** A room's messages through two backends: the payloads' seqs as `b` receives them. */
  async function roomRoundTrip(
    a: RedisBackend,
    b: RedisBackend,
    n = 5,
  ): Promise<{ room: RoomRecord; got: number[] }> {
    const room = roomRecord();
    await a.createRoom(room, owner(room.owner));
    const got: number[] = [];
    await b.subscribe(roomTopic(room.id), (p) =>
      got.push((JSON.parse(p) as { data: { seq: number } }).data.seq),
    );
    for (let i = 0; i < n; i++)
      await a.appendMessage(room.id, draft(room.id), { maxHistory: 10, publishTopic: roomTopic(room.id) });
    await eventually(() => expect(got).toHaveLength(n), 5000);
    return { room, got };
  }

  it('off: classic PUBLISH / SUBSCRIBE on the cluster, as before', async () => {
    const a = new RedisBackend({ urls: cluster.urls, keyPrefix: 'off:', shardedPubSub: 'off' });
    const b = new RedisBackend({ urls: cluster.urls, keyPrefix: 'off:', shardedPubSub: 'off' });
    try {
      await Promise.all([a.connect(), b.connect()]);
      expect([a.shardedPubSub, b.shardedPubSub]).toEqual([false, false]);
      const { room, got } = await roomRoundTrip(a, b);
      expect(got).toEqual(range(1, 5));
      // One classic subscriber connection per node, on any cluster node (replicas included).
      const subscribed: string[] = [];
      for (const n of cluster.nodes.filter((x) => x.running))
        subscribed.push(...((await cluster.command(n.port, 'PUBSUB', 'CHANNELS', 'off:*')) as string[]));
      expect(subscribed).toContain(`off:room:${room.id}`);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('on: sharded pub/sub on a single Redis 7 too; auto stays classic there', async () => {
    const single = await startRedisServer();
    const on = new RedisBackend({ urls: [single.url], keyPrefix: 'on:', shardedPubSub: 'on' });
    const auto = new RedisBackend({ urls: [single.url], keyPrefix: 'on:' });
    try {
      await Promise.all([on.connect(), auto.connect()]);
      expect([on.shardedPubSub, auto.shardedPubSub]).toEqual([true, false]);
      const { room, got } = await roomRoundTrip(on, on);
      expect(got).toEqual(range(1, 5));
      const [, shard] = (await cluster.command(
        single.port,
        'PUBSUB',
        'SHARDNUMSUB',
        `on:{r:${room.id}}:topic`,
      )) as [string, number];
      expect(Number(shard)).toBe(1);
      // Node-wide topics stay classic in sharded mode: an `auto` node and an `on` node hear each other.
      const heard: string[] = [];
      await auto.subscribe('nodes', (p) => heard.push(p));
      await on.publish('nodes', 'hello');
      await eventually(() => expect(heard).toEqual(['hello']), 5000);
    } finally {
      await Promise.all([on.close(), auto.close()]);
      await single.dispose();
    }
  });
});

const roomRecord = (): RoomRecord => ({
  id: `room-${randomUUID()}`,
  name: 'r',
  description: '',
  private: false,
  owner: `owner-${randomUUID()}`,
  maxMembers: null,
  createdAt: new Date().toISOString(),
  metadata: {},
});
const owner = (userId: string): MemberRecord => ({
  userId,
  role: 'owner',
  joinedAt: new Date().toISOString(),
});
const draft = (roomId: string, content = `m-${randomUUID()}`) => ({
  id: randomUUID(),
  roomId,
  userId: 'u',
  content,
  metadata: {},
  timestamp: new Date().toISOString(),
  reactions: {},
});

describe('durability: redisWaitReplicas', () => {
  it('a message its replica has not taken is refused, neither published nor in history; the next one publishes both in order', async () => {
    const backend = new RedisBackend({
      urls: cluster.urls,
      keyPrefix: 'wait:',
      waitReplicas: 1,
      waitTimeoutMs: 300,
    });
    const reader = new RedisBackend({ urls: cluster.urls, keyPrefix: 'wait:' });
    try {
      await Promise.all([backend.connect(), reader.connect()]);
      const room = roomRecord();
      await backend.createRoom(room, owner(room.owner));
      const topic = roomTopic(room.id);
      const seen: number[] = [];
      await reader.subscribe(topic, (p) => seen.push((JSON.parse(p) as { data: { seq: number } }).data.seq));
      expect(
        (await backend.appendMessage(room.id, draft(room.id), { maxHistory: 10, publishTopic: topic })).seq,
      ).toBe(1);

      const shard = await cluster.shardOf(`wait:{r:${room.id}}:seq`);
      const replica = shard.replicas[0];
      replica.pause();
      const started = Date.now();
      try {
        await expect(
          backend.appendMessage(room.id, draft(room.id, 'unconfirmed'), {
            maxHistory: 10,
            publishTopic: topic,
          }),
        ).rejects.toMatchObject({ code: 'backend_unavailable' });
        expect(Date.now() - started).toBeLessThan(2000);
        // Stored on the master, but hidden and unpublished while not replicated.
        expect((await backend.getHistory(room.id, { limit: 10 })).map((m) => m.seq)).toEqual([1]);
        expect(await backend.latestSeq(room.id)).toBe(1);
      } finally {
        replica.resume();
      }
      await sleep(200);
      expect(seen).toEqual([1]);
      // The next message, confirmed, publishes the parked one first.
      expect(
        (await backend.appendMessage(room.id, draft(room.id), { maxHistory: 10, publishTopic: topic })).seq,
      ).toBe(3);
      await eventually(() => expect(seen).toEqual([1, 2, 3]), 5000);
      const history = await reader.getHistory(room.id, { limit: 10 });
      expect(history.map((m) => [m.seq, m.content === 'unconfirmed'])).toEqual([
        [1, false],
        [2, true],
        [3, false],
      ]);
      expect(await reader.latestSeq(room.id)).toBe(3);
    } finally {
      await Promise.all([backend.close(), reader.close()]);
    }
  });

  it('a master killed mid-stream: its replica takes over, the nodes carry on, no acknowledged message is lost', async () => {
    const [a, b] = await twoNodes();
    const sender = await connect(a, fresh('sender'));
    const reader = await connect(b, fresh('reader'));
    const roomId = (await sender.ok('create_room', { name: 'failover' })).room.id as string;
    await reader.ok('join_room', { room_id: roomId });
    const seqKey = `${PREFIX}{r:${roomId}}:seq`;
    const shard = await cluster.shardOf(seqKey);
    expect(shard.replicas).toHaveLength(1);

    // One sender, one request at a time; failures are retried with a new message.
    const acked: Array<{ content: string; seq: number; at: number }> = [];
    let failures = 0;
    let stop = false;
    let n = 0;
    const sending = (async () => {
      while (!stop) {
        const content = `k${++n}`;
        const answer = await sender
          .request('send_message', { room_id: roomId, content }, 8000)
          .catch(() => undefined);
        if (answer?.type === 'ack') acked.push({ content, seq: answer.data.seq as number, at: Date.now() });
        else {
          failures++;
          await sleep(50);
        }
      }
    })();
    const untilAcked = async (count: number, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (acked.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${acked.length} of ${count} acknowledged`);
        await sleep(20);
      }
    };

    try {
      await untilAcked(15, 10_000);
      // The replica stops taking the stream: hung, and its replication link cut (so nothing
      // written from now on reaches it, not even a socket buffer). Then its master dies. (Well
      // within cluster-node-timeout: a replica the cluster marks FAIL is no longer waited for.)
      shard.replicas[0].pause();
      await cluster.command(shard.master.port, 'CLIENT', 'KILL', 'TYPE', 'replica');
      await sleep(700);
      const failuresWhilePaused = failures;
      await shard.master.kill();
      shard.replicas[0].resume();
      const killedAt = Date.now();
      await cluster.waitHealthy({ key: seqKey, notPort: shard.master.port, timeoutMs: 20_000 });
      const promotedAfter = Date.now() - killedAt;
      const before = acked.length;
      await untilAcked(before + 10, 20_000);
      stop = true;
      await sending;
      expect(failuresWhilePaused).toBeGreaterThan(0); // the WAIT held the sends the replica did not take
      expect(promotedAfter).toBeLessThan(15_000);
    } finally {
      stop = true;
      await sending;
      shard.replicas[0].resume();
    }

    // History (read on node B): every acknowledged message, with its seq; seqs 1..N gap-free.
    const history = (await reader.ok('get_history', { room_id: roomId, limit: 1000 }, 10_000))
      .messages as Array<{
      seq: number;
      content: string;
    }>;
    const inHistory = new Map(history.map((m) => [m.seq, m.content]));
    expect(history.map((m) => m.seq)).toEqual(range(1, history.length));
    expect(acked.filter((x) => inHistory.get(x.seq) !== x.content)).toEqual([]);

    // The nodes reconnected: node B's subscription moved to the new master (live delivery resumed).
    const last = acked[acked.length - 1];
    await reader.waitFor((e) => isRoomMessage(roomId)(e) && e.data.seq === last.seq, 10_000);

    // Delivered on node B: nothing that history contradicts (no seq handed out twice) ...
    const live = reader
      .all(isRoomMessage(roomId))
      .map((e): [number, string] => [e.data.seq as number, e.data.content as string]);
    expect(live.filter(([seq, content]) => inHistory.get(seq) !== content)).toEqual([]);
    // ... and every acknowledged message either delivered or replayed by a resume from the first gap.
    const got = new Set(live.map(([seq]) => seq));
    let contiguous = 0;
    while (got.has(contiguous + 1)) contiguous++;
    const from = reader.envelopes.length;
    expect((await reader.request('resume', { rooms: { [roomId]: contiguous } }, 10_000)).type).toBe('ack');
    for (const e of reader.all(isRoomMessage(roomId), from)) got.add(e.data.seq as number);
    expect(acked.filter((x) => !got.has(x.seq)).map((x) => x.seq)).toEqual([]);
  });
});

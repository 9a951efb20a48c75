/**
 * The Redis backend against real redis-server processes: the shared backend
 * contract (standalone and a 3-node Redis Cluster), plus what only a shared,
 * external store shows: several nodes, outages, persistence, caller-owned
 * connections and byte-exact published envelopes.
 *
 * redis-server must be installed (apt-get install -y redis-server): without it
 * this suite fails, it never skips.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { describeBackendContract, eventually } from '@nest-streaming/streaming/testing';
import { RedisBackend, type RedisBackendOptions } from '../libs/streaming/src/backends/redis/redis.backend';
import { StreamingError } from '../libs/streaming/src/protocol/streaming-error';
import { encodeMessageEnvelope, messageToWire } from '../libs/streaming/src/protocol/wire';
import {
  freePort,
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisServerHandle,
} from './support/redis-server';
import {
  roomTopic,
  type MemberRecord,
  type MessageDraft,
  type NodeInfo,
  type RoomRecord,
  type StoredMessage,
} from '../libs/streaming/src/interfaces';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const uid = (p: string): string => `${p}-${randomUUID()}`;
const newPrefix = (): string => `fs-test-${randomUUID().slice(0, 8)}:`;
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

function roomRecord(over: Partial<RoomRecord> = {}): RoomRecord {
  return {
    id: uid('room'),
    name: 'a room',
    description: '',
    private: false,
    owner: uid('owner'),
    maxMembers: null,
    createdAt: new Date().toISOString(),
    metadata: {},
    ...over,
  };
}

const member = (userId: string, role: MemberRecord['role'] = 'member'): MemberRecord => ({
  userId,
  role,
  joinedAt: new Date().toISOString(),
});

function draftFor(roomId: string, over: Partial<MessageDraft> = {}): MessageDraft {
  return {
    id: randomUUID(),
    roomId,
    userId: uid('author'),
    content: `hello ${randomUUID()}`,
    metadata: {},
    timestamp: new Date().toISOString(),
    reactions: {},
    ...over,
  };
}

async function createRoom(backend: RedisBackend, over: Partial<RoomRecord> = {}): Promise<RoomRecord> {
  const room = roomRecord(over);
  await backend.createRoom(room, member(room.owner, 'owner'));
  return room;
}

/** Assert that `p` rejects with StreamingError('backend_unavailable') within `ms`. */
async function expectUnavailableWithin(p: Promise<unknown>, ms: number): Promise<void> {
  const started = Date.now();
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(Date.now() - started).toBeLessThan(ms);
  expect(err).toBeInstanceOf(StreamingError);
  expect((err as StreamingError).code).toBe('backend_unavailable');
}

let server: RedisServerHandle;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.dispose();
});

describeBackendContract(
  'redis',
  async () => new RedisBackend({ urls: [server.url], keyPrefix: newPrefix() }),
  { settleMs: 150 },
);

describe('RedisBackend (Redis only)', () => {
  const opened: RedisBackend[] = [];
  const raw: Redis[] = [];

  /** A connected backend on the shared server, closed after the test. */
  async function open(options: RedisBackendOptions = {}): Promise<RedisBackend> {
    const b = new RedisBackend({ urls: [server.url], keyPrefix: newPrefix(), ...options });
    opened.push(b);
    await b.connect();
    return b;
  }

  /** A plain ioredis connection, disconnected after the test. */
  function rawClient(options: RedisOptions = {}): Redis {
    const c = new Redis({ port: server.port, host: '127.0.0.1', ...options });
    raw.push(c);
    return c;
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    raw.splice(0).forEach((c) => c.disconnect());
  });

  describe('connections', () => {
    /** Connections on the server whose CLIENT SETNAME is `name`. */
    async function countNamed(admin: Redis, name: string): Promise<number> {
      const list = (await admin.call('CLIENT', 'LIST')) as string;
      return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
    }

    it('uses a caller-owned client, duplicates it for pub/sub and closes only the duplicate', async () => {
      const admin = rawClient();
      const name = `owner-${randomUUID().slice(0, 8)}`;
      const client = rawClient({ connectionName: name });
      await client.ping();
      expect(await countNamed(admin, name)).toBe(1);

      const backend = new RedisBackend({ client, keyPrefix: newPrefix() });
      await backend.connect();
      expect(await countNamed(admin, name)).toBe(2);

      const room = await createRoom(backend);
      expect(await backend.getRoom(room.id)).toEqual(room);
      const got: string[] = [];
      await backend.subscribe('t', (p) => got.push(p));
      await backend.publish('t', 'hello');
      await eventually(() => expect(got).toEqual(['hello']));

      await backend.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      await eventually(async () => expect(await countNamed(admin, name)).toBe(1));
    });

    it('leaves a caller-owned subscriber open and only drops its own channels from it', async () => {
      const client = rawClient();
      const subscriber = rawClient();
      const prefix = newPrefix();
      const backend = new RedisBackend({ client, subscriber, keyPrefix: prefix });
      await backend.connect();
      const got: string[] = [];
      await backend.subscribe('t', (p) => got.push(p));
      await client.publish(`${prefix}t`, 'one');
      await eventually(() => expect(got).toEqual(['one']));

      await backend.close();
      expect(client.status).toBe('ready');
      expect(subscriber.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      // The subscriber still works for its owner, and our channel is gone from it.
      expect(await client.call('PUBSUB', 'NUMSUB', `${prefix}t`)).toEqual([`${prefix}t`, 0]);
      const theirs: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => theirs.push(message));
      await subscriber.subscribe('their-channel');
      await client.publish('their-channel', 'still works');
      await eventually(() => expect(theirs).toEqual(['still works']));
      expect(got).toEqual(['one']);
    });

    it('connect() fails fast with backend_unavailable when Redis is unreachable', async () => {
      const port = await freePort();
      const backend = new RedisBackend({ urls: [`redis://127.0.0.1:${port}`] });
      opened.push(backend);
      await expectUnavailableWithin(backend.connect(), 2000);
      await expectUnavailableWithin(backend.ping(), 500);
      await expectUnavailableWithin(backend.getRoom('x'), 500);
      await expectUnavailableWithin(
        backend.subscribe('t', () => undefined),
        500,
      );
    });

    it('fromOptions uses backendUrls, backendUsername and backendPassword (ACL user)', async () => {
      const admin = rawClient();
      const user = `acl-${randomUUID().slice(0, 8)}`;
      await admin.call('ACL', 'SETUSER', user, 'on', '>s3cret', '~*', '&*', '+@all');
      try {
        const ok = RedisBackend.fromOptions(
          { backendUrls: [server.url], backendUsername: user, backendPassword: 's3cret', nodeId: 'node-x' },
          { keyPrefix: newPrefix() },
        );
        opened.push(ok);
        await ok.connect();
        await ok.ping();
        const room = await createRoom(ok);
        expect(await ok.getRoom(room.id)).toEqual(room);
        expect(await admin.call('CLIENT', 'LIST')).toContain(`user=${user}`);

        // Credentials in the URL work as well.
        const inUrl = new RedisBackend({
          urls: [`redis://${user}:s3cret@127.0.0.1:${server.port}`],
          keyPrefix: newPrefix(),
        });
        opened.push(inUrl);
        await inUrl.connect();
        await inUrl.ping();

        const wrong = RedisBackend.fromOptions(
          { backendUrls: [server.url], backendUsername: user, backendPassword: 'wrong' },
          { keyPrefix: newPrefix() },
        );
        opened.push(wrong);
        await expectUnavailableWithin(wrong.connect(), 3000);
      } finally {
        await admin.call('ACL', 'DELUSER', user);
      }
    });

    it('every key carries its hash tag and the key prefix; topics are prefixed channels', async () => {
      const prefix = newPrefix();
      const backend = await open({ keyPrefix: prefix });
      const room = await createRoom(backend);
      const user = uid('u');
      await backend.addMember(room.id, member(user), { maxRoomsPerUser: 5 });
      await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 10 });
      await backend.setRestriction(room.id, {
        kind: 'ban',
        userId: uid('b'),
        by: room.owner,
        reason: '',
        at: new Date().toISOString(),
        until: null,
      });
      await backend.addInvitation(room.id, {
        userId: user,
        invitedBy: room.owner,
        at: new Date().toISOString(),
      });
      await backend.appendModerationLog(
        room.id,
        {
          action: 'kick',
          roomId: room.id,
          moderatorId: room.owner,
          targetId: user,
          reason: '',
          at: new Date().toISOString(),
        },
        10,
      );
      await backend.setPresence({ userId: user, status: 'online', lastSeen: new Date().toISOString() }, 60);
      await backend.incrementCounter('c1', 1, 60_000);
      await backend.addUserNode(user, 'node-1');
      await backend.registerNode({ nodeId: 'n1', startedAt: '', lastHeartbeat: '', connections: 0 }, 60);

      const keys = await rawClient().keys(`${prefix}*`);
      const esc = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const tagged = new RegExp(`^${esc}\\{(r:[^}]+|u:[^}]+|n:[^}]+|c:[^}]+|rooms|nodes)\\}:?`);
      expect(keys.length).toBeGreaterThanOrEqual(12);
      for (const key of keys) expect(key).toMatch(tagged);
      expect(keys.filter((k) => k.includes(`{r:${room.id}}`)).length).toBeGreaterThanOrEqual(8);

      const listener = rawClient();
      const got: string[] = [];
      listener.on('message', (channel: string, message: string) => got.push(`${channel}=${message}`));
      await listener.subscribe(`${prefix}room:${room.id}`);
      await backend.publish(`room:${room.id}`, 'x');
      await eventually(() => expect(got).toEqual([`${prefix}room:${room.id}=x`]));
    });
  });

  describe('messages', () => {
    /** A draft full of values that break naive JSON handling in Lua (cjson) or string splicing. */
    function trickyDraft(roomId: string): MessageDraft {
      return {
        id: randomUUID(),
        roomId,
        userId: 'user "quoted" \\ / é',
        content: 'é ✓ 😀 \u2028 \u0000 \u001f \u001e </script> "q" \ud800 lone',
        metadata: JSON.parse(
          '{"z":1,"a":0.30000000000000004,"big":12345678901234567890,"tiny":5e-324,"e":[],"o":{},' +
            '"nested":{"list":[1,"two",null,true,{"x":[]}]},"__proto__":{"p":1},"uni":"\\ud83d"}',
        ) as Record<string, unknown>,
        timestamp: new Date().toISOString(),
        reactions: JSON.parse('{"__proto__":["a"],"👍":["b","c"],"1":["d"]}') as Record<string, string[]>,
      };
    }

    it('publishes exactly encodeMessageEnvelope(stored), byte for byte, and stores the draft losslessly', async () => {
      const prefix = newPrefix();
      const backend = await open({ keyPrefix: prefix });
      const room = await createRoom(backend);
      const topic = `room:${room.id}`;
      const listener = rawClient();
      const rawPayloads: string[] = [];
      listener.on('message', (_c: string, m: string) => rawPayloads.push(m));
      await listener.subscribe(`${prefix}${topic}`);
      const viaBackend: string[] = [];
      await backend.subscribe(topic, (p) => viaBackend.push(p));

      const drafts = [trickyDraft(room.id), draftFor(room.id), trickyDraft(room.id)];
      drafts[1].editedAt = new Date().toISOString();
      drafts[1].editedBy = 'someone';
      const stored: StoredMessage[] = [];
      for (const d of drafts)
        stored.push(await backend.appendMessage(room.id, d, { maxHistory: 10, publishTopic: topic }));

      await eventually(() => expect(rawPayloads).toHaveLength(3));
      await eventually(() => expect(viaBackend).toHaveLength(3));
      stored.forEach((s, i) => {
        expect(s).toEqual({ ...drafts[i], seq: i + 1 });
        expect(rawPayloads[i]).toBe(encodeMessageEnvelope(s));
        expect(viaBackend[i]).toBe(encodeMessageEnvelope(s));
        expect(JSON.parse(rawPayloads[i])).toEqual({ type: 'message', data: messageToWire(s) });
        // Same key order as messageToWire.
        expect(Object.keys((JSON.parse(rawPayloads[i]) as { data: object }).data)).toEqual(
          Object.keys(messageToWire(s)),
        );
      });
      for (const s of stored) {
        const got = await backend.getMessage(room.id, s.id);
        expect(got).toEqual(s);
        expect(JSON.stringify(got!.metadata)).toBe(JSON.stringify(s.metadata));
        expect(Object.keys(got!.reactions)).toEqual(Object.keys(s.reactions));
      }
      expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    });

    it('edits, deletes and reactions keep tricky values intact and never duplicate the message', async () => {
      const backend = await open();
      const room = await createRoom(backend);
      const draft = trickyDraft(room.id);
      const msg = await backend.appendMessage(room.id, draft, { maxHistory: 10 });
      const metadataJson = JSON.stringify(msg.metadata);

      const at1 = new Date().toISOString();
      const e1 = await backend.updateMessage(room.id, msg.id, {
        kind: 'edit',
        content: 'new \ud800 "content" \u001f',
        by: 'ed "itor"',
        at: at1,
        keepVersions: 20,
      });
      expect(e1?.changed).toBe(true);
      expect(e1?.message.content).toBe('new \ud800 "content" \u001f');
      expect(e1?.message.versions).toEqual([
        { content: draft.content, editedBy: draft.userId, editedAt: draft.timestamp },
      ]);

      const r1 = await backend.updateMessage(room.id, msg.id, {
        kind: 'react',
        reaction: '\ud800',
        userId: 'u "1"',
        add: true,
        maxReactions: 50,
      });
      expect(r1?.changed).toBe(true);
      expect(Object.keys(r1!.message.reactions)).toEqual(['1', '__proto__', '👍', '\ud800']);
      const r2 = await backend.updateMessage(room.id, msg.id, {
        kind: 'react',
        reaction: '👍',
        userId: 'b',
        add: false,
        maxReactions: 50,
      });
      expect(r2?.message.reactions['👍']).toEqual(['c']);

      const d1 = await backend.updateMessage(room.id, msg.id, {
        kind: 'delete',
        by: 'mod',
        at: at1,
        keepVersions: 20,
      });
      expect(d1?.changed).toBe(true);
      expect(d1?.message).toMatchObject({ deleted: true, deletedBy: 'mod', deletedAt: at1, content: '' });
      expect(d1?.message.versions?.map((v) => v.content)).toEqual([
        draft.content,
        'new \ud800 "content" \u001f',
      ]);
      expect(d1?.message.versions?.[1]).toEqual({
        content: 'new \ud800 "content" \u001f',
        editedBy: 'ed "itor"',
        editedAt: at1,
      });

      const final = await backend.getMessage(room.id, msg.id);
      expect(final).toEqual(d1?.message);
      expect(JSON.stringify(final!.metadata)).toBe(metadataJson);
      expect(final!.seq).toBe(1);
      const history = await backend.getHistory(room.id, { limit: 10 });
      expect(history).toEqual([final]);
      expect(await backend.latestSeq(room.id)).toBe(1);
    });

    it('maxHistory 0 keeps nothing, yet seq counts and the message is still published', async () => {
      const backend = await open();
      const room = await createRoom(backend);
      const got: number[] = [];
      await backend.subscribe('t0', (p) => got.push((JSON.parse(p) as { data: { seq: number } }).data.seq));
      for (let i = 0; i < 3; i++) {
        const m = await backend.appendMessage(room.id, draftFor(room.id), {
          maxHistory: 0,
          publishTopic: 't0',
        });
        expect(m.seq).toBe(i + 1);
        expect(await backend.getMessage(room.id, m.id)).toBeNull();
      }
      expect(await backend.getHistory(room.id, { limit: 10 })).toEqual([]);
      expect(await backend.latestSeq(room.id)).toBe(3);
      expect(await backend.oldestSeq(room.id)).toBe(4);
      await eventually(() => expect(got).toEqual([1, 2, 3]));
    });

    it('appendMessage to an unknown room rejects and stores nothing', async () => {
      const backend = await open();
      const roomId = uid('nope');
      await expect(backend.appendMessage(roomId, draftFor(roomId), { maxHistory: 10 })).rejects.toThrow();
      expect(await backend.latestSeq(roomId)).toBe(0);
    });
  });

  describe('two nodes on one Redis', () => {
    it('each node sees the rooms, members, history and state the other wrote', async () => {
      const prefix = newPrefix();
      const a = await open({ keyPrefix: prefix });
      const b = await open({ keyPrefix: prefix });

      const room = await createRoom(a, { maxMembers: 3, metadata: { k: [1, 2] } });
      expect(await b.getRoom(room.id)).toEqual(room);
      expect((await b.listRooms()).map((r) => r.id)).toContain(room.id);

      const u1 = uid('u1');
      const u2 = uid('u2');
      const u3 = uid('u3');
      expect(await b.addMember(room.id, member(u1), {})).toBe('added');
      expect(await a.addMember(room.id, member(u2), {})).toBe('added');
      expect(await b.addMember(room.id, member(u3), {})).toBe('full');
      expect((await a.listMembers(room.id)).map((m) => m.userId).sort()).toEqual([room.owner, u1, u2].sort());
      expect(await a.userRooms(u1)).toEqual([room.id]);

      const m1 = await b.appendMessage(room.id, draftFor(room.id, { userId: u1 }), { maxHistory: 10 });
      const m2 = await a.appendMessage(room.id, draftFor(room.id, { userId: u2 }), { maxHistory: 10 });
      expect([m1.seq, m2.seq]).toEqual([1, 2]);
      expect(await a.getHistory(room.id, { limit: 10 })).toEqual([m1, m2]);
      const reacted = await a.updateMessage(room.id, m1.id, {
        kind: 'react',
        reaction: '👍',
        userId: u2,
        add: true,
        maxReactions: 50,
      });
      expect(await b.getMessage(room.id, m1.id)).toEqual(reacted?.message);

      await a.setPresence({ userId: u1, status: 'busy', lastSeen: new Date().toISOString() }, 60);
      expect((await b.getPresence([u1]))[0]?.status).toBe('busy');
      await a.incrementCounter('shared', 2, 60_000);
      expect(await b.incrementCounter('shared', 3, 60_000)).toBe(5);
      const node: NodeInfo = {
        nodeId: 'node-a',
        startedAt: new Date().toISOString(),
        lastHeartbeat: new Date().toISOString(),
        connections: 1,
      };
      await a.registerNode(node, 60);
      expect(await b.listNodes()).toEqual([node]);

      expect(await b.deleteRoom(room.id)).toBe(true);
      expect(await a.getRoom(room.id)).toBeNull();
      expect(await a.userRooms(u1)).toEqual([]);
    });

    it('3 concurrent senders per node: gap-free seqs 1..120, strictly increasing on both nodes', async () => {
      const prefix = newPrefix();
      const a = await open({ keyPrefix: prefix });
      const b = await open({ keyPrefix: prefix });
      const room = await createRoom(a);
      const topic = `room:${room.id}`;
      const seenA: number[] = [];
      const seenB: number[] = [];
      const seqOf = (p: string): number => (JSON.parse(p) as { data: { seq: number } }).data.seq;
      await a.subscribe(topic, (p) => seenA.push(seqOf(p)));
      await b.subscribe(topic, (p) => seenB.push(seqOf(p)));

      const sender = async (node: RedisBackend): Promise<StoredMessage[]> => {
        const out: StoredMessage[] = [];
        for (let i = 0; i < 20; i++) {
          out.push(
            await node.appendMessage(room.id, draftFor(room.id), { maxHistory: 1000, publishTopic: topic }),
          );
        }
        return out;
      };
      const perSender = await Promise.all([a, a, a, b, b, b].map(sender));

      const all = perSender.flat().map((m) => m.seq);
      expect([...all].sort((x, y) => x - y)).toEqual(range(1, 120));
      for (const mine of perSender) {
        const s = mine.map((m) => m.seq);
        expect(s).toEqual([...s].sort((x, y) => x - y));
      }
      await eventually(() => expect(seenA).toHaveLength(120), 5000);
      await eventually(() => expect(seenB).toHaveLength(120), 5000);
      await sleep(150);
      expect(seenA).toEqual(range(1, 120));
      expect(seenB).toEqual(range(1, 120));
      expect((await b.getHistory(room.id, { limit: 500 })).map((m) => m.seq)).toEqual(range(1, 120));
    });

    it('maxRoomsPerUser and maxMembers hold for concurrent joins from both nodes', async () => {
      const prefix = newPrefix();
      const a = await open({ keyPrefix: prefix });
      const b = await open({ keyPrefix: prefix });
      const user = uid('u');
      const rooms = await Promise.all(range(1, 8).map(() => createRoom(a)));
      const results = await Promise.all(
        rooms.map((r, i) => (i % 2 ? a : b).addMember(r.id, member(user), { maxRoomsPerUser: 3 })),
      );
      expect(results.filter((r) => r === 'added')).toHaveLength(3);
      expect(results.filter((r) => r === 'user_limit')).toHaveLength(5);
      expect(await a.userRooms(user)).toHaveLength(3);

      const small = await createRoom(b, { maxMembers: 4 });
      const joins = await Promise.all(
        range(1, 10).map((i) => (i % 2 ? a : b).addMember(small.id, member(uid('j')), {})),
      );
      expect(joins.filter((r) => r === 'added')).toHaveLength(3);
      expect(await a.countMembers(small.id)).toBe(4);
    });

    it('a stale user-index reservation left by a failure is pruned when the user hits the limit', async () => {
      const prefix = newPrefix();
      const backend = await open({ keyPrefix: prefix });
      const admin = rawClient();
      const user = uid('u');
      // As if a join had reserved a room 60 s ago and died before the room step.
      await admin.zadd(`${prefix}{u:${user}}:rooms`, Date.now() - 60_000, 'ghost-room');
      const r1 = await createRoom(backend);
      expect(await backend.addMember(r1.id, member(user), { maxRoomsPerUser: 1 })).toBe('added');
      expect(await backend.userRooms(user)).toEqual([r1.id]);
      // A fresh stranded reservation is not pruned (it may be a join in flight).
      await admin.zadd(`${prefix}{u:${user}}:rooms`, Date.now(), 'fresh-room');
      const r2 = await createRoom(backend);
      expect(await backend.addMember(r2.id, member(user), { maxRoomsPerUser: 2 })).toBe('user_limit');
    });
  });

  describe('outage and recovery', () => {
    let own: RedisServerHandle;
    beforeAll(async () => {
      own = await startRedisServer();
    });
    afterAll(async () => {
      await own?.dispose();
    });

    it('rejects fast with backend_unavailable while Redis is down, then recovers by itself, subscriptions included', async () => {
      const backend = new RedisBackend({ urls: [own.url], keyPrefix: newPrefix() });
      opened.push(backend);
      await backend.connect();
      const room = await createRoom(backend);
      const got: string[] = [];
      await backend.subscribe('live', (p) => got.push(p));
      await backend.publish('live', 'before');
      await eventually(() => expect(got).toEqual(['before']));

      await own.stop();
      await expectUnavailableWithin(backend.ping(), 2000);
      await expectUnavailableWithin(
        backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 10 }),
        2000,
      );
      await expectUnavailableWithin(backend.getRoom(room.id), 2000);
      await expectUnavailableWithin(backend.publish('live', 'lost'), 2000);
      await expectUnavailableWithin(
        backend.subscribe('other', () => undefined),
        2000,
      );
      // Still down a little later (reconnect attempts in between do not hang commands).
      await sleep(700);
      await expectUnavailableWithin(backend.ping(), 2000);

      await own.restart();
      // Recovers without any call from us.
      await eventually(() => backend.ping(), 10_000, 100);
      // The subscription made before the outage delivers again.
      await eventually(
        async () => {
          await backend.publish('live', 'after');
          expect(got).toContain('after');
        },
        10_000,
        200,
      );
      expect(got[0]).toBe('before');
      expect(got).not.toContain('lost');
      // The server restarted empty (no persistence): the backend works on.
      const room2 = await createRoom(backend);
      const m = await backend.appendMessage(room2.id, draftFor(room2.id), { maxHistory: 10 });
      expect(m.seq).toBe(1);
    });
  });

  describe('persistence (appendonly yes)', () => {
    let own: RedisServerHandle;
    beforeAll(async () => {
      own = await startRedisServer({ appendonly: true });
    });
    afterAll(async () => {
      await own?.dispose();
    });

    it('acknowledged appends, edits and reactions survive a redis-server restart', async () => {
      const prefix = newPrefix();
      const backend = new RedisBackend({ urls: [own.url], keyPrefix: prefix });
      opened.push(backend);
      await backend.connect();
      const room = await createRoom(backend);
      const stored: StoredMessage[] = [];
      for (let i = 0; i < 10; i++)
        stored.push(await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 }));
      const edited = await backend.updateMessage(room.id, stored[3].id, {
        kind: 'edit',
        content: 'edited',
        by: 'x',
        at: new Date().toISOString(),
        keepVersions: 20,
      });
      const reacted = await backend.updateMessage(room.id, stored[5].id, {
        kind: 'react',
        reaction: '🎉',
        userId: 'y',
        add: true,
        maxReactions: 50,
      });
      stored[3] = edited!.message;
      stored[5] = reacted!.message;

      await own.restart();
      await eventually(() => backend.ping(), 10_000, 100);
      expect(await backend.getHistory(room.id, { limit: 100 })).toEqual(stored);
      expect(await backend.latestSeq(room.id)).toBe(10);

      const fresh = new RedisBackend({ urls: [own.url], keyPrefix: prefix });
      opened.push(fresh);
      await fresh.connect();
      expect(await fresh.getRoom(room.id)).toEqual(room);
      expect(await fresh.getHistory(room.id, { limit: 100 })).toEqual(stored);
      expect((await fresh.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 })).seq).toBe(11);
    });
  });
});

describe('RedisBackend on a 3-node Redis Cluster', () => {
  let cluster: RedisClusterHandle;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 30_000);

  afterAll(async () => {
    await cluster?.dispose();
  });

  describeBackendContract(
    'redis-cluster',
    async () => new RedisBackend({ urls: cluster.urls, keyPrefix: newPrefix() }),
    { settleMs: 150 },
  );

  it('publish() keeps per-topic order, also interleaved with the messages appendMessage publishes', async () => {
    const prefix = newPrefix();
    const a = new RedisBackend({ urls: cluster.urls, keyPrefix: prefix });
    const b = new RedisBackend({ urls: [cluster.urls[1]], keyPrefix: prefix });
    try {
      await Promise.all([a.connect(), b.connect()]);
      const room = await createRoom(a);
      const topic = roomTopic(room.id);
      const onRoom: string[] = [];
      const onOther: string[] = [];
      await b.subscribe(topic, (p) => {
        const e = JSON.parse(p) as { type: string; data: { seq: number } };
        onRoom.push(`${e.type}:${e.data.seq}`);
      });
      await b.subscribe('some.channel', (p) => onOther.push(p));
      const expectedRoom: string[] = [];
      for (let i = 1; i <= 25; i++) {
        const m = await a.appendMessage(room.id, draftFor(room.id), { maxHistory: 100, publishTopic: topic });
        await a.publish(topic, JSON.stringify({ type: 'message_edited', data: { seq: m.seq } }));
        expectedRoom.push(`message:${i}`, `message_edited:${i}`);
      }
      for (let i = 1; i <= 50; i++) await a.publish('some.channel', String(i));
      await eventually(() => expect(onRoom).toHaveLength(50), 5000);
      await eventually(() => expect(onOther).toHaveLength(50), 5000);
      expect(onRoom).toEqual(expectedRoom);
      expect(onOther).toEqual(range(1, 50).map(String));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('uses a caller-owned Cluster client and leaves it open', async () => {
    const client = new Cluster(
      cluster.urls.map((u) => ({ host: '127.0.0.1', port: Number(new URL(u).port) })),
    );
    try {
      const backend = new RedisBackend({ client, keyPrefix: newPrefix() });
      await backend.connect();
      const room = await createRoom(backend);
      const got: string[] = [];
      await backend.subscribe(roomTopic(room.id), (p) => got.push(p));
      const m = await backend.appendMessage(room.id, draftFor(room.id), {
        maxHistory: 10,
        publishTopic: roomTopic(room.id),
      });
      await eventually(() => expect(got).toEqual([encodeMessageEnvelope(m)]));
      await backend.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('rooms spread over several slots and nodes keep seq order across two cluster clients', async () => {
    const prefix = newPrefix();
    const a = new RedisBackend({ urls: cluster.urls, keyPrefix: prefix });
    const b = new RedisBackend({ urls: [cluster.urls[2], cluster.urls[0]], keyPrefix: prefix });
    try {
      await Promise.all([a.connect(), b.connect()]);
      const rooms = await Promise.all(range(1, 6).map(() => createRoom(a)));
      const seen = new Map<string, number[]>();
      for (const r of rooms) {
        seen.set(r.id, []);
        await b.subscribe(`room:${r.id}`, (p) =>
          seen.get(r.id)!.push((JSON.parse(p) as { data: { seq: number } }).data.seq),
        );
      }
      await Promise.all(
        rooms.flatMap((r) =>
          [a, b].map(async (node) => {
            for (let i = 0; i < 10; i++) {
              await node.appendMessage(r.id, draftFor(r.id), {
                maxHistory: 100,
                publishTopic: `room:${r.id}`,
              });
            }
          }),
        ),
      );
      for (const r of rooms) {
        await eventually(() => expect(seen.get(r.id)).toEqual(range(1, 20)), 5000);
        expect((await a.getHistory(r.id, { limit: 50 })).map((m) => m.seq)).toEqual(range(1, 20));
      }
      expect((await b.listRooms()).map((r) => r.id).sort()).toEqual(rooms.map((r) => r.id).sort());
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

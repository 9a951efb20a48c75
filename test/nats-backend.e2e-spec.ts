/**
 * The NATS backend against a real nats-server with JetStream: the shared
 * backend contract, plus what only a shared, external store shows: several
 * nodes racing on the same keys, seq order across nodes, recovery of an
 * append a node could not finish, outages, credentials, caller-owned
 * connections and byte-exact published envelopes.
 *
 * One nats-server for the whole file (the outage tests stop and restart it,
 * last). nats-server must be installed (apt-get install -y nats-server):
 * without it this suite fails, it never skips.
 */
import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { describeBackendContract, eventually } from '@nest-streaming/streaming/testing';
import { decodeRoomLog, fromUtf8, jsonBytes } from '../libs/streaming/src/backends/nats/nats-codec';
import { BUCKET_IDS, NatsNames } from '../libs/streaming/src/backends/nats/nats-keys';
import { NatsBackend, type NatsBackendOptions } from '../libs/streaming/src/backends/nats/nats.backend';
import { StreamingError } from '../libs/streaming/src/protocol/streaming-error';
import { encodeMessageEnvelope, messageToWire } from '../libs/streaming/src/protocol/wire';
import { freePort, startNatsServer, type NatsServerHandle } from './support/nats-server';
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
const newPrefix = (): string => `fs${randomUUID().slice(0, 8)}`;
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqOf = (p: string): number => (JSON.parse(p) as { data: { seq: number } }).data.seq;

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

/** A draft full of values that break naive JSON, UTF-8 or subject handling. */
function trickyDraft(roomId: string): MessageDraft {
  return {
    id: randomUUID(),
    roomId,
    userId: 'user "quoted" \\ / é . * > \n',
    content: 'é ✓ 😀 \u2028 \u0000 \u001f \n\n </script> "q" \ud800 lone',
    metadata: JSON.parse(
      '{"z":1,"a":0.30000000000000004,"big":12345678901234567890,"tiny":5e-324,"e":[],"o":{},' +
        '"nested":{"list":[1,"two",null,true,{"x":[]}]},"__proto__":{"p":1},"uni":"\\ud83d"}',
    ) as Record<string, unknown>,
    timestamp: new Date().toISOString(),
    reactions: JSON.parse('{"__proto__":["a"],"👍":["b","c"],"1":["d"]}') as Record<string, string[]>,
  };
}

async function createRoom(backend: NatsBackend, over: Partial<RoomRecord> = {}): Promise<RoomRecord> {
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

const USER = { user: 'fs-user', password: 's3cret' };
let server: NatsServerHandle;

beforeAll(async () => {
  // Anonymous connections act as fs-user (no_auth_user); wrong credentials are refused.
  server = await startNatsServer({ jetstream: true, users: [USER] });
});

afterAll(async () => {
  await server?.dispose();
});

describeBackendContract('nats', async () => new NatsBackend({ servers: [server.url], prefix: newPrefix() }), {
  settleMs: 150,
});

describe('NatsBackend (NATS only)', () => {
  const opened: NatsBackend[] = [];
  const raw: NatsConnection[] = [];

  /** A connected backend on the shared server, closed after the test. */
  async function open(options: NatsBackendOptions = {}): Promise<NatsBackend> {
    const b = new NatsBackend({ servers: [server.url], prefix: newPrefix(), ...options });
    opened.push(b);
    await b.connect();
    return b;
  }

  /** `n` connected backends sharing one prefix: n nodes of one cluster. */
  async function nodes(n: number, options: NatsBackendOptions = {}): Promise<NatsBackend[]> {
    const prefix = newPrefix();
    return Promise.all(range(1, n).map(() => open({ prefix, ...options })));
  }

  /** A plain nats.js connection, closed after the test. */
  async function rawConnection(): Promise<NatsConnection> {
    const nc = await connect({ servers: server.url });
    raw.push(nc);
    return nc;
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    await Promise.all(raw.splice(0).map((c) => c.close()));
  });

  describe('connections', () => {
    it('uses a caller-owned connection, closes only its own subscriptions and leaves it open', async () => {
      const nc = await rawConnection();
      const prefix = newPrefix();
      const backend = new NatsBackend({ connection: nc, prefix });
      await backend.connect();
      const room = await createRoom(backend);
      expect(await backend.getRoom(room.id)).toEqual(room);
      const got: string[] = [];
      await backend.subscribe('t', (p) => got.push(p));
      await backend.publish('t', 'hello');
      await eventually(() => expect(got).toEqual(['hello']));

      await backend.close();
      expect(nc.isClosed()).toBe(false);
      await nc.flush();
      // Still usable by its owner, JetStream included, and our subscription is gone from it.
      const names = new NatsNames(prefix);
      nc.publish(names.topicSubject('t'), new TextEncoder().encode('after close'));
      await nc.flush();
      const kv = await nc.jetstream().views.kv(names.bucket('rooms'), { bindOnly: true });
      expect(await kv.get(names.room(room.id))).not.toBeNull();
      await sleep(100);
      expect(got).toEqual(['hello']);
    });

    it('connect() fails fast with backend_unavailable when NATS is unreachable; calls before connect() too', async () => {
      const port = await freePort();
      const backend = new NatsBackend({ servers: [`nats://127.0.0.1:${port}`] });
      opened.push(backend);
      await expectUnavailableWithin(backend.getRoom('x'), 500);
      await expectUnavailableWithin(backend.connect(), 2000);
      await expectUnavailableWithin(backend.ping(), 500);
      await expectUnavailableWithin(backend.getRoom('x'), 500);
      await expectUnavailableWithin(
        backend.subscribe('t', () => undefined),
        500,
      );
      await expectUnavailableWithin(backend.publish('t', 'x'), 500);
    });

    it('fromOptions uses backendUrls, backendUsername and backendPassword', async () => {
      const ok = NatsBackend.fromOptions(
        {
          backendUrls: [server.url],
          backendUsername: USER.user,
          backendPassword: USER.password,
          nodeId: 'n1',
        },
        { prefix: newPrefix() },
      );
      opened.push(ok);
      await ok.connect();
      await ok.ping();
      const room = await createRoom(ok);
      expect(await ok.getRoom(room.id)).toEqual(room);

      // Credentials in the URL work as well.
      const inUrl = new NatsBackend({
        servers: [`nats://${USER.user}:${USER.password}@127.0.0.1:${server.port}`],
        prefix: newPrefix(),
      });
      opened.push(inUrl);
      await inUrl.connect();
      await inUrl.ping();

      const wrong = NatsBackend.fromOptions(
        { backendUrls: [server.url], backendUsername: USER.user, backendPassword: 'wrong' },
        { prefix: newPrefix() },
      );
      opened.push(wrong);
      await expectUnavailableWithin(wrong.connect(), 3000);
      const wrongInUrl = new NatsBackend({ servers: [`nats://${USER.user}:nope@127.0.0.1:${server.port}`] });
      opened.push(wrongInUrl);
      await expectUnavailableWithin(wrongInUrl.connect(), 3000);
    });

    it('rejects a prefix that is not a valid bucket name / subject token', () => {
      expect(() => new NatsBackend({ prefix: 'a.b' })).toThrow('invalid NATS prefix');
      expect(() => new NatsBackend({ prefix: '' })).toThrow('invalid NATS prefix');
      expect(() => new NatsBackend({ prefix: 'fs*' })).toThrow('invalid NATS prefix');
    });

    it('creates its buckets idempotently; another node with the same prefix binds to them', async () => {
      const prefix = newPrefix();
      const [a] = await nodes(1, { prefix });
      const room = await createRoom(a);
      const b = await open({ prefix }); // second connect: buckets exist already
      expect(await b.getRoom(room.id)).toEqual(room);
      const jsm = await (await rawConnection()).jetstreamManager();
      const streams: string[] = [];
      for await (const name of jsm.streams.names()) if (name.startsWith(`KV_${prefix}-`)) streams.push(name);
      expect(streams.sort()).toEqual(BUCKET_IDS.map((id) => `KV_${prefix}-${id}`).sort());
      const seqs = await jsm.streams.info(`KV_${prefix}-seqs`);
      expect(seqs.config.republish).toEqual(expect.objectContaining({ dest: `${prefix}.rl.>` }));
      expect(seqs.config.max_msgs_per_subject).toBe(1);

      // A seqs bucket made without republish (by hand, an older version): connect says so
      // (servers before 2.10 cannot add republish to an existing stream).
      const bare = newPrefix();
      await (await rawConnection()).jetstream().views.kv(`${bare}-seqs`, { history: 1 });
      const late = new NatsBackend({ servers: [server.url], prefix: bare });
      opened.push(late);
      const ok = await late.connect().then(
        () => true,
        (err: Error) => {
          expect(err.message).toContain(`KV_${bare}-seqs exists without republish`);
          return false;
        },
      );
      if (ok) {
        expect((await jsm.streams.info(`KV_${bare}-seqs`)).config.republish).toEqual(
          expect.objectContaining({ src: `$KV.${bare}-seqs.>`, dest: `${bare}.rl.>` }),
        );
      }
    });
  });

  describe('ids and topics', () => {
    const weird = ['', '.', 'a.b', '*', '>', 'a b', 'room:1', 'x\u0000y', '😀', '\ud800', '\ufffd', '/=-_'];

    it('any string works as a room, user, node, counter or message id', async () => {
      const backend = await open();
      for (const id of weird) {
        const room = await createRoom(backend, { id, owner: id });
        expect(await backend.getRoom(id)).toEqual(room);
        expect(await backend.getMember(id, id)).toMatchObject({ userId: id, role: 'owner' });
        const m = await backend.appendMessage(id, draftFor(id, { id }), { maxHistory: 10 });
        expect(await backend.getMessage(id, id)).toEqual(m);
        await backend.setRestriction(id, {
          kind: 'ban',
          userId: id,
          by: id,
          reason: '',
          at: '',
          until: null,
        });
        expect(await backend.getRestriction(id, 'ban', id)).not.toBeNull();
        await backend.addUserNode(id, id);
        expect(await backend.nodeUsers(id)).toEqual([id]);
        expect(await backend.incrementCounter(id, 1, 60_000)).toBe(1);
      }
      // '\ud800' and '\ufffd' are different ids (UTF-8 alone would merge them).
      expect((await backend.getRoom('\ud800'))?.id).toBe('\ud800');
      expect((await backend.getRoom('\ufffd'))?.id).toBe('\ufffd');
      expect((await backend.listRooms()).map((r) => r.id).sort()).toEqual([...weird].sort());
      expect(await backend.userRooms('.')).toEqual(['.']);
    });

    it('topics with dots, wildcards, colons and unicode reach only their own handler', async () => {
      const [a, b] = await nodes(2);
      const got = new Map<string, string[]>(weird.map((t) => [t, []]));
      // Payloads travel as UTF-8 (JSON envelopes never hold a lone surrogate: JSON.stringify escapes it).
      const payload = (t: string): string => `to ${JSON.stringify(t)}`;
      for (const t of weird) await b.subscribe(t, (p, topic) => got.get(t)!.push(`${topic}=${p}`));
      for (const t of weird) await a.publish(t, payload(t));
      await eventually(() => {
        for (const t of weird) expect(got.get(t)).toEqual([`${t}=${payload(t)}`]);
      });
      await sleep(100);
      for (const t of weird) expect(got.get(t)).toEqual([`${t}=${payload(t)}`]);
    });
  });

  describe('messages', () => {
    it('publishes exactly encodeMessageEnvelope(stored), byte for byte, to every node, and stores drafts losslessly', async () => {
      const [a, b] = await nodes(2);
      const room = await createRoom(a);
      const topic = roomTopic(room.id);
      const onA: string[] = [];
      const onB: string[] = [];
      await a.subscribe(topic, (p) => onA.push(p));
      await b.subscribe(topic, (p) => onB.push(p));

      const drafts = [trickyDraft(room.id), draftFor(room.id), trickyDraft(room.id)];
      drafts[1].editedAt = new Date().toISOString();
      drafts[1].editedBy = 'someone';
      const stored: StoredMessage[] = [];
      for (const d of drafts)
        stored.push(await a.appendMessage(room.id, d, { maxHistory: 10, publishTopic: topic }));

      await eventually(() => expect(onA).toHaveLength(3));
      await eventually(() => expect(onB).toHaveLength(3));
      stored.forEach((s, i) => {
        expect(s).toEqual({ ...drafts[i], seq: i + 1 });
        expect(onA[i]).toBe(encodeMessageEnvelope(s));
        expect(onB[i]).toBe(encodeMessageEnvelope(s));
        expect(JSON.parse(onB[i])).toEqual({ type: 'message', data: messageToWire(s) });
      });
      for (const s of stored) {
        const got = await b.getMessage(room.id, s.id);
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
      expect(Object.keys(r1!.message.reactions)).toEqual(['1', '__proto__', '👍', '\ud800']);
      const d1 = await backend.updateMessage(room.id, msg.id, {
        kind: 'delete',
        by: 'mod',
        at: at1,
        keepVersions: 20,
      });
      expect(d1?.message).toMatchObject({ deleted: true, deletedBy: 'mod', deletedAt: at1, content: '' });

      const final = await backend.getMessage(room.id, msg.id);
      expect(final).toEqual(d1?.message);
      expect(JSON.stringify(final!.metadata)).toBe(metadataJson);
      expect(await backend.getHistory(room.id, { limit: 10 })).toEqual([final]);
      expect(await backend.latestSeq(room.id)).toBe(1);
    });

    it('maxHistory 0 keeps nothing, yet seq counts and the message is still published', async () => {
      const backend = await open();
      const room = await createRoom(backend);
      const got: number[] = [];
      await backend.subscribe('t0', (p) => got.push(seqOf(p)));
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
      await expect(backend.appendMessage(roomId, draftFor(roomId), { maxHistory: 10 })).rejects.toThrow(
        'does not exist',
      );
      expect(await backend.latestSeq(roomId)).toBe(0);
    });

    it('trimmed records are removed from the store, not only hidden', async () => {
      const prefix = newPrefix();
      const backend = await open({ prefix });
      const room = await createRoom(backend);
      for (let i = 0; i < 10; i++) await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 4 });
      await backend.trimHistory(room.id, { maxCount: 2 });
      const kv = await (await rawConnection()).jetstream().views.kv(`${prefix}-messages`, { bindOnly: true });
      // Clean-ups run after the call returns.
      await eventually(async () => {
        const keys: string[] = [];
        for await (const k of await kv.keys()) keys.push(k);
        expect(keys).toHaveLength(4); // 2 records + 2 id index entries
      });
    });

    it('an append a node could not finish is committed (and published) by the next append, in seq order', async () => {
      const prefix = newPrefix();
      const [a, b] = await nodes(2, { prefix });
      const room = await createRoom(a);
      const topic = roomTopic(room.id);
      const seen: number[] = [];
      await b.subscribe(topic, (p) => seen.push(seqOf(p)));
      const first = await a.appendMessage(room.id, draftFor(room.id), {
        maxHistory: 100,
        publishTopic: topic,
      });

      // As if a node had taken slot 2 (step 1) and died before committing it (step 2).
      const nc = await rawConnection();
      const names = new NatsNames(prefix);
      const js = nc.jetstream();
      const seqs = await js.views.kv(names.bucket('seqs'), { bindOnly: true });
      const messages = await js.views.kv(names.bucket('messages'), { bindOnly: true });
      const log = decodeRoomLog(fromUtf8((await seqs.get(names.roomLog(room.id)))!.value))!;
      const orphan: StoredMessage = { ...draftFor(room.id, { content: 'from a dead node' }), seq: 2 };
      await messages.put(names.messageAt(room.id, 2), jsonBytes({ t: topic, h: 100, i: log.inc, m: orphan }));
      await messages.put(names.messageId(room.id, orphan.id), new TextEncoder().encode('2'));
      expect(await a.latestSeq(room.id)).toBe(1);

      const third = await b.appendMessage(room.id, draftFor(room.id), {
        maxHistory: 100,
        publishTopic: topic,
      });
      expect(third.seq).toBe(3);
      expect(await a.getHistory(room.id, { limit: 10 })).toEqual([first, orphan, third]);
      expect(await a.getMessage(room.id, orphan.id)).toEqual(orphan);
      await eventually(() => expect(seen).toEqual([1, 2, 3]));
    });

    it('a leftover record of a deleted room with the same id is discarded, not published', async () => {
      const prefix = newPrefix();
      const backend = await open({ prefix });
      const room = await createRoom(backend);
      const seen: string[] = [];
      await backend.subscribe('t', (p) => seen.push(p));
      const names = new NatsNames(prefix);
      const messages = await (
        await rawConnection()
      )
        .jetstream()
        .views.kv(names.bucket('messages'), { bindOnly: true });
      const stale: StoredMessage = { ...draftFor(room.id, { content: 'stale' }), seq: 1 };
      await messages.put(
        names.messageAt(room.id, 1),
        jsonBytes({ t: 't', h: 100, i: 'an-older-incarnation', m: stale }),
      );

      const m = await backend.appendMessage(room.id, draftFor(room.id), {
        maxHistory: 100,
        publishTopic: 't',
      });
      expect(m.seq).toBe(1);
      expect(await backend.getHistory(room.id, { limit: 10 })).toEqual([m]);
      await eventually(() => expect(seen).toEqual([encodeMessageEnvelope(m)]));
      await sleep(100);
      expect(seen).toHaveLength(1);
    });
    it('a deletion a node gave up half-way is finished by deleteRoom or, once stale, by createRoom', async () => {
      const prefix = newPrefix();
      const backend = await open({ prefix });
      const names = new NatsNames(prefix);
      const rooms = await (
        await rawConnection()
      )
        .jetstream()
        .views.kv(names.bucket('rooms'), { bindOnly: true });
      const strand = async (room: RoomRecord, at: number): Promise<void> => {
        const e = await rooms.get(names.room(room.id));
        const v = JSON.parse(fromUtf8(e!.value)) as Record<string, unknown>;
        await rooms.put(names.room(room.id), jsonBytes({ ...v, d: at }));
      };

      const fresh = await createRoom(backend);
      await backend.appendMessage(fresh.id, draftFor(fresh.id), { maxHistory: 10 });
      await strand(fresh, Date.now());
      expect(await backend.getRoom(fresh.id)).toBeNull();
      // A deletion in progress may still be running: the id is not free yet.
      await expect(createRoom(backend, { id: fresh.id })).rejects.toThrow('already exists');
      expect(await backend.deleteRoom(fresh.id)).toBe(false); // not this call's deletion, but it finishes it
      expect(await backend.latestSeq(fresh.id)).toBe(0);
      await createRoom(backend, { id: fresh.id });

      const stale = await createRoom(backend);
      const user = uid('u');
      await backend.addMember(stale.id, member(user), {});
      await backend.appendMessage(stale.id, draftFor(stale.id), { maxHistory: 10 });
      await strand(stale, Date.now() - 60_000);
      const again = await createRoom(backend, { id: stale.id });
      expect(await backend.getRoom(stale.id)).toEqual(again);
      expect(await backend.latestSeq(stale.id)).toBe(0);
      expect(await backend.userRooms(user)).toEqual([]);
      expect((await backend.listMembers(stale.id)).map((m) => m.userId)).toEqual([again.owner]);
    });
  });

  describe('several nodes on one NATS', () => {
    it('each node sees the rooms, members, history and state the other wrote', async () => {
      const [a, b] = await nodes(2);
      const room = await createRoom(a, { maxMembers: 3, metadata: { k: [1, 2] } });
      expect(await b.getRoom(room.id)).toEqual(room);
      expect((await b.listRooms()).map((r) => r.id)).toContain(room.id);

      const [u1, u2, u3] = [uid('u1'), uid('u2'), uid('u3')];
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
      await a.addUserNode(u1, 'node-a');
      expect(await b.userNodes(u1)).toEqual(['node-a']);

      expect(await b.deleteRoom(room.id)).toBe(true);
      expect(await a.deleteRoom(room.id)).toBe(false);
      expect(await a.getRoom(room.id)).toBeNull();
      expect(await a.userRooms(u1)).toEqual([]);
    });

    it('3 concurrent senders per node: gap-free seqs 1..120, strictly increasing on both nodes', async () => {
      const [a, b] = await nodes(2);
      const room = await createRoom(a);
      const topic = roomTopic(room.id);
      const seenA: number[] = [];
      const seenB: number[] = [];
      await a.subscribe(topic, (p) => seenA.push(seqOf(p)));
      await b.subscribe(topic, (p) => seenB.push(seqOf(p)));

      const sender = async (node: NatsBackend): Promise<StoredMessage[]> => {
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

    it('4 nodes appending all at once to several rooms: every subscriber sees 1..n per room, in order', async () => {
      const ns = await nodes(4);
      const rooms = await Promise.all(range(1, 3).map(() => createRoom(ns[0])));
      const seen = new Map<string, number[][]>();
      for (const r of rooms) {
        seen.set(r.id, []);
        for (const node of ns) {
          const box: number[] = [];
          seen.get(r.id)!.push(box);
          await node.subscribe(roomTopic(r.id), (p) => box.push(seqOf(p)));
        }
      }
      // No awaiting between appends: 4 x 15 appends in flight per room at once.
      const stored = await Promise.all(
        rooms.flatMap((r) =>
          ns.flatMap((node) =>
            range(1, 15).map(() =>
              node.appendMessage(r.id, draftFor(r.id), { maxHistory: 1000, publishTopic: roomTopic(r.id) }),
            ),
          ),
        ),
      );
      expect(stored).toHaveLength(180);
      for (const r of rooms) {
        for (const box of seen.get(r.id)!) await eventually(() => expect(box).toEqual(range(1, 60)), 10_000);
        expect((await ns[3].getHistory(r.id, { limit: 100 })).map((m) => m.seq)).toEqual(range(1, 60));
      }
    });

    it('publish() keeps per-topic order, also interleaved with the messages appendMessage publishes', async () => {
      const [a, b] = await nodes(2);
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
    });

    it('maxRoomsPerUser and maxMembers hold for concurrent joins from several nodes', async () => {
      const ns = await nodes(3);
      const user = uid('u');
      const rooms = await Promise.all(range(1, 8).map(() => createRoom(ns[0])));
      const results = await Promise.all(
        rooms.map((r, i) => ns[i % 3].addMember(r.id, member(user), { maxRoomsPerUser: 3 })),
      );
      expect(results.filter((r) => r === 'added')).toHaveLength(3);
      expect(results.filter((r) => r === 'user_limit')).toHaveLength(5);
      expect(await ns[1].userRooms(user)).toHaveLength(3);

      const small = await createRoom(ns[1], { maxMembers: 4 });
      const joins = await Promise.all(
        range(1, 12).map((i) => ns[i % 3].addMember(small.id, member(uid('j')), {})),
      );
      expect(joins.filter((r) => r === 'added')).toHaveLength(3);
      expect(await ns[0].countMembers(small.id)).toBe(4);
      expect(await ns[2].listMembers(small.id)).toHaveLength(4);

      // The same user joining from three nodes at once: one 'added', the rest 'exists'.
      const open3 = await createRoom(ns[2]);
      const same = uid('same');
      const r3 = await Promise.all(ns.map((n) => n.addMember(open3.id, member(same), {})));
      expect(r3.filter((r) => r === 'added')).toHaveLength(1);
      expect(r3.filter((r) => r === 'exists')).toHaveLength(2);
      expect(await ns[0].countMembers(open3.id)).toBe(2);
      expect(await ns[1].userRooms(same)).toEqual([open3.id]);
    });

    it('counters, reactions and role changes stay exact under concurrent updates from several nodes', async () => {
      const ns = await nodes(4);
      const key = uid('counter');
      const results = await Promise.all(
        ns.flatMap((n) => range(1, 25).map(() => n.incrementCounter(key, 1, 60_000))),
      );
      expect([...results].sort((x, y) => x - y)).toEqual(range(1, 100));
      expect(await ns[0].getCounter(key)).toBe(100);

      const room = await createRoom(ns[0]);
      const msg = await ns[0].appendMessage(room.id, draftFor(room.id), { maxHistory: 10 });
      const users = range(1, 20).map((i) => `u${i}`);
      const reacts = await Promise.all(
        users.map((u, i) =>
          ns[i % 4].updateMessage(room.id, msg.id, {
            kind: 'react',
            reaction: '👍',
            userId: u,
            add: true,
            maxReactions: 50,
          }),
        ),
      );
      expect(reacts.every((r) => r?.changed)).toBe(true);
      const final = await ns[1].getMessage(room.id, msg.id);
      expect([...final!.reactions['👍']].sort()).toEqual([...users].sort());
      expect(final!.seq).toBe(1);
      expect(await ns[2].getHistory(room.id, { limit: 10 })).toHaveLength(1);

      // Role changes racing on one member: one of them wins, the membership stays whole.
      const target = member(uid('t'));
      await ns[0].addMember(room.id, target, {});
      const roles = ['admin', 'moderator', 'member', 'admin'] as const;
      expect(await Promise.all(ns.map((n, i) => n.setMemberRole(room.id, target.userId, roles[i])))).toEqual([
        true,
        true,
        true,
        true,
      ]);
      const now = await ns[3].getMember(room.id, target.userId);
      expect(now).toEqual({ ...target, role: now!.role });
      expect(roles).toContain(now!.role);
      expect(await ns[2].countMembers(room.id)).toBe(2);
    });

    it('trimHistory on one node while another appends keeps history contiguous and seqs gap-free', async () => {
      const [a, b] = await nodes(2);
      const room = await createRoom(a);
      const appends = (async () => {
        const out: number[] = [];
        for (let i = 0; i < 40; i++)
          out.push((await a.appendMessage(room.id, draftFor(room.id), { maxHistory: 30 })).seq);
        return out;
      })();
      let trimmed = 0;
      for (let i = 0; i < 10; i++) {
        trimmed += await b.trimHistory(room.id, { maxCount: 5 });
        await sleep(2);
      }
      expect(await appends).toEqual(range(1, 40));
      const history = (await b.getHistory(room.id, { limit: 100 })).map((m) => m.seq);
      const oldest = await a.oldestSeq(room.id);
      expect(history).toEqual(range(oldest, 40));
      expect(history.length).toBeLessThanOrEqual(30);
      expect(trimmed).toBeGreaterThan(0);
    });
  });

  describe('outage and recovery (stops and restarts the shared server)', () => {
    it('rejects fast with backend_unavailable while NATS is down, then recovers by itself, subscriptions and data included', async () => {
      const [backend, other] = await nodes(2);
      const room = await createRoom(backend);
      const before = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 10 });
      const got: string[] = [];
      await backend.subscribe('live', (p) => got.push(p));
      const roomSeqs: number[] = [];
      await backend.subscribe(roomTopic(room.id), (p) => roomSeqs.push(seqOf(p)));
      await backend.publish('live', 'before');
      await eventually(() => expect(got).toEqual(['before']));

      // A server that hangs: calls fail after requestTimeoutMs.
      const impatient = await open({ prefix: backend.prefix, requestTimeoutMs: 600 });
      await server.pause();
      try {
        await expectUnavailableWithin(impatient.getRoom(room.id), 1500);
        // A call in flight when the server dies fails at that moment, not after its timeout (5 s).
        const inFlight = backend.getRoom(room.id);
        await sleep(100);
        await expectUnavailableWithin(
          Promise.all([inFlight, server.crash()]).then(() => inFlight),
          2000,
        );
      } finally {
        server.resume();
        await server.stop();
      }
      await expectUnavailableWithin(backend.ping(), 500);
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
      // Still down a little later (reconnect attempts in between do not hang calls).
      await sleep(700);
      await expectUnavailableWithin(backend.ping(), 2000);

      await server.restart();
      // Recovers without any call from us.
      await eventually(() => backend.ping(), 10_000, 100);
      await eventually(() => other.ping(), 10_000, 100);
      // The subscriptions made before the outage deliver again: plain topics and the room log.
      await eventually(
        async () => {
          await other.publish('live', 'after');
          expect(got).toContain('after');
        },
        10_000,
        200,
      );
      expect(got[0]).toBe('before');
      expect(got).not.toContain('lost');
      const after = await other.appendMessage(room.id, draftFor(room.id), {
        maxHistory: 10,
        publishTopic: roomTopic(room.id),
      });
      // JetStream kept everything (file storage): seq continues, history survived.
      expect(after.seq).toBe(2);
      expect(await backend.getHistory(room.id, { limit: 10 })).toEqual([before, after]);
      expect(await backend.getRoom(room.id)).toEqual(room);
      await eventually(() => expect(roomSeqs).toEqual([2]));
    });
  });
});

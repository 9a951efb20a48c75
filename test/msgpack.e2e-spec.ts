/**
 * The MessagePack codec (issue 14): chosen with the `nest-streaming.msgpack`
 * WebSocket subprotocol; MessagePack and JSON clients share rooms and
 * channels and get the same envelopes; requests, acks and errors over
 * MessagePack; bad bytes, oversized frames and text frames are answered like
 * bad JSON; a broadcast is encoded once for all its MessagePack receivers.
 * Real Nest app in this process, raw `ws` clients and the client library.
 */
import { randomUUID } from 'node:crypto';
import { Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { pack, unpackMultiple } from 'msgpackr';
import WebSocket, { type RawData } from 'ws';
import { StreamingClient, type WireMessage } from '@nest-streaming/client';
import { StreamingModule, StreamingWsAdapter } from '@nest-streaming/streaming';
import { msgpack } from '@nest-streaming/streaming/protocol/msgpack';
import { eventually, signToken, startNestApp, type TestApp } from './support/app';
import { ClientPool, WsClient, type Envelope, type Json } from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'msgpack-e2e-secret-0b7d2c94e1f6a8355c';
const MAX_MESSAGE_SIZE = 4096;
const MSGPACK = 'nest-streaming.msgpack';

const pool = new ClientPool();
const raw = new Set<RawClient>();
const libClients: StreamingClient[] = [];
let app: TestApp;

/**
 * A raw `ws` client that offers subprotocols and records what comes back:
 * binary frames decoded as concatenated MessagePack values, text frames as
 * newline-delimited JSON.
 */
class RawClient {
  readonly envelopes: Envelope[] = [];
  readonly frames: Array<{ binary: boolean; envelopes: number }> = [];
  closeCode?: number;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      const got = isBinary
        ? (unpackMultiple(bytes) as Envelope[])
        : bytes
            .toString('utf8')
            .split('\n')
            .map((l) => JSON.parse(l) as Envelope);
      this.frames.push({ binary: isBinary, envelopes: got.length });
      this.envelopes.push(...got);
      for (const l of [...this.listeners]) l();
    });
    socket.on('close', (code: number) => {
      this.closeCode = code;
      for (const l of [...this.listeners]) l();
    });
    socket.on('error', () => undefined);
  }

  static async connect(user: string, protocols: string[] = [MSGPACK]): Promise<RawClient> {
    const socket = new WebSocket(`${app.wsUrl}?token=${await token(user)}`, protocols);
    const c = new RawClient(socket);
    raw.add(c);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const first = await c.waitFor(() => true);
    if (first.type !== 'connected') throw new Error(`first envelope ${JSON.stringify(first)}`);
    return c;
  }

  get userId(): string {
    return this.envelopes[0].data.user_id as string;
  }

  /** One binary frame of concatenated MessagePack envelopes. */
  send(...envelopes: Array<Record<string, unknown>>): void {
    this.socket.send(Buffer.concat(envelopes.map((e) => pack(e))), { binary: true });
  }

  async request(type: string, data?: Json): Promise<Envelope> {
    const id = randomUUID();
    const from = this.envelopes.length;
    this.send(data === undefined ? { type, id } : { type, id, data });
    return this.waitFor((e) => e.id === id, 3000, from);
  }

  async ok(type: string, data?: Json): Promise<Json> {
    const answer = await this.request(type, data);
    if (answer.type !== 'ack') throw new Error(`${type} answered ${JSON.stringify(answer)}`);
    return answer.data;
  }

  waitFor(pred: (e: Envelope) => boolean, timeoutMs = 3000, from = 0): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.envelopes.slice(from).find(pred);
        if (found) done(() => resolve(found));
        else if (this.closeCode !== undefined) done(() => reject(new Error(`closed ${this.closeCode}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`nothing matched in ${timeoutMs} ms: ${this.describe(from)}`))),
        timeoutMs,
      );
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        fn();
      };
      this.listeners.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    raw.delete(this);
    if (this.closeCode !== undefined) return;
    const closed = new Promise<void>((r) => this.socket.once('close', () => r()));
    this.socket.close(1000);
    await closed;
  }

  private describe(from: number): string {
    return JSON.stringify(this.envelopes.slice(from).slice(-5));
  }
}

beforeAll(async () => {
  @Module({
    imports: [
      StreamingModule.forRoot({
        historyStore: 'memory',
        auth: { jwtSecret: SECRET },
        maxMessageSize: MAX_MESSAGE_SIZE,
        maxMessagesPerSecond: 10_000,
        rateLimit: { enabled: false },
      }),
    ],
  })
  class MsgpackModule {}
  app = await startNestApp(MsgpackModule, {
    configure: (a: NestExpressApplication) => a.useWebSocketAdapter(new StreamingWsAdapter(a)),
  });
});

afterEach(async () => {
  jest.restoreAllMocks();
  for (const c of libClients.splice(0)) c.close();
  await Promise.all([...raw].map((c) => c.close()));
  expect(await pool.closeAll()).toEqual([]);
});

afterAll(async () => {
  await app.close();
});

let n = 0;
const token = (name: string): Promise<string> =>
  signToken(SECRET, { sub: name, exp: Math.floor(Date.now() / 1000) + 600 });
const jsonUser = async (name: string): Promise<WsClient> =>
  pool.connect(app.wsUrl, { token: await token(`${name}-${++n}`) });
const packedUser = (name: string, protocols?: string[]): Promise<RawClient> =>
  RawClient.connect(`${name}-${++n}`, protocols);

async function roomOf(owner: WsClient): Promise<string> {
  return ((await owner.ok('create_room', { name: `msgpack ${++n}` })) as { room: { id: string } }).room.id;
}

const messagesIn = (envs: Envelope[], roomId: string): WireMessage[] =>
  envs.filter((e) => e.type === 'message' && e.data.room_id === roomId).map((e) => e.data as WireMessage);

describe('the subprotocol chooses the codec', () => {
  it('nest-streaming.msgpack: binary MessagePack frames, from `connected` on', async () => {
    const c = await packedUser('mp');
    expect(c.socket.protocol).toBe(MSGPACK);
    expect(c.frames[0]).toEqual({ binary: true, envelopes: 1 });
    expect(c.envelopes[0]).toMatchObject({ type: 'connected', data: { transport: 'ws', user_id: c.userId } });
  });

  it('no subprotocol, nest-streaming.json, or unknown ones only: JSON text, as before', async () => {
    const plain = await jsonUser('plain');
    expect(plain.socket.protocol).toBe('');
    expect(plain.frames[0]).toContain('"type":"connected"');
    const named = await packedUser('json', ['nest-streaming.json']);
    expect(named.socket.protocol).toBe('nest-streaming.json');
    expect(named.frames[0]).toEqual({ binary: false, envelopes: 1 });
    const unknown = await packedUser('chat', ['chat', 'v2']);
    expect(unknown.socket.protocol).toBe('chat');
    expect(unknown.frames[0]).toEqual({ binary: false, envelopes: 1 });
  });

  it('takes the first supported subprotocol of the client list', async () => {
    const c = await packedUser('first', ['chat', MSGPACK, 'nest-streaming.json']);
    expect(c.socket.protocol).toBe(MSGPACK);
    expect(c.frames[0].binary).toBe(true);
  });
});

describe('MessagePack and JSON clients in the same room', () => {
  it('every member gets every message, with the same seqs and content, whatever its codec', async () => {
    const alice = await jsonUser('alice');
    const bob = await packedUser('bob');
    const carol = await jsonUser('carol');
    const dave = await packedUser('dave');
    const roomId = await roomOf(alice);
    await bob.ok('join_room', { room_id: roomId });
    await carol.ok('join_room', { room_id: roomId });
    await dave.ok('join_room', { room_id: roomId });

    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < 15; i++) {
      const metadata = { i, nested: { list: [1, 2.5, null, true, 'x'], deep: { ok: i % 2 === 0 } } };
      sends.push(
        alice.ok('send_message', { room_id: roomId, content: `from json ${i} — ünïcødé ✓`, metadata }),
      );
      sends.push(bob.ok('send_message', { room_id: roomId, content: `from msgpack ${i} 🚀`, metadata }));
    }
    const acks = (await Promise.all(sends)) as Array<{ seq: number }>;
    expect(acks.map((a) => a.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_v, i) => i + 1),
    );

    await Promise.all([
      alice.waitForCount((e) => e.type === 'message' && e.data?.room_id === roomId, 30),
      carol.waitForCount((e) => e.type === 'message' && e.data?.room_id === roomId, 30),
      eventually(() => expect(messagesIn(bob.envelopes, roomId)).toHaveLength(30)),
      eventually(() => expect(messagesIn(dave.envelopes, roomId)).toHaveLength(30)),
    ]);
    const reference = messagesIn(alice.envelopes, roomId);
    expect(reference.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_v, i) => i + 1));
    for (const other of [carol.envelopes, bob.envelopes, dave.envelopes]) {
      expect(messagesIn(other, roomId)).toEqual(reference);
    }
    // MessagePack receivers only ever got binary frames.
    expect(bob.frames.every((f) => f.binary)).toBe(true);

    // Other events too: a reaction from the MessagePack side.
    await bob.ok('add_reaction', { room_id: roomId, message_id: reference[0].id, reaction: '👍' });
    const isReaction = (e: Envelope) => e.type === 'reaction_added' && e.data?.message_id === reference[0].id;
    const fromJson = await carol.waitFor(isReaction);
    expect(await dave.waitFor(isReaction)).toEqual(fromJson);
  });

  it('channel subscribers of both codecs get the same channel_message', async () => {
    const alice = await jsonUser('alice');
    const bob = await packedUser('bob');
    await alice.ok('subscribe', { channel: 'news.sport' });
    await bob.ok('subscribe', { channel: 'news.*' });
    await alice.ok('publish', { channel: 'news.sport', data: { score: [2, 1], team: 'Ä' } });
    const isNews = (e: Envelope) => e.type === 'channel_message' && e.data?.channel === 'news.sport';
    const [a, b] = await Promise.all([alice.waitFor(isNews), bob.waitFor(isNews)]);
    expect(b).toEqual(a);
    expect(b.data.data).toEqual({ score: [2, 1], team: 'Ä' });
  });

  it('a MessagePack client resumes: the replay, `resumed` and the ack in MessagePack', async () => {
    const alice = await jsonUser('alice');
    const roomId = await roomOf(alice);
    const bob = await packedUser('bob');
    await bob.ok('join_room', { room_id: roomId });
    for (let i = 1; i <= 5; i++) await alice.ok('send_message', { room_id: roomId, content: `m${i}` });
    await eventually(() => expect(messagesIn(bob.envelopes, roomId)).toHaveLength(5));
    const from = bob.envelopes.length;
    const ack = await bob.ok('resume', { rooms: { [roomId]: 2 } });
    expect(ack.rooms).toEqual({ [roomId]: 5 });
    const replayed = messagesIn(bob.envelopes.slice(from), roomId);
    expect(replayed.map((m) => m.content)).toEqual(['m3', 'm4', 'm5']);
    expect(bob.envelopes.slice(from).some((e) => e.type === 'resumed')).toBe(true);
  });

  it('a broadcast is encoded to MessagePack once, whatever the number of MessagePack receivers', async () => {
    const alice = await jsonUser('alice');
    const roomId = await roomOf(alice);
    const receivers = await Promise.all(Array.from({ length: 6 }, () => packedUser('rx')));
    for (const r of receivers) await r.ok('join_room', { room_id: roomId });
    const carol = await jsonUser('carol');
    await carol.ok('join_room', { room_id: roomId });

    const encode = jest.spyOn(msgpack, 'fromJson');
    await alice.ok('send_message', { room_id: roomId, content: 'count-me' });
    await Promise.all([
      ...receivers.map((r) => r.waitFor((e) => e.type === 'message' && e.data.content === 'count-me')),
      carol.waitFor((e) => e.type === 'message' && e.data?.content === 'count-me'),
    ]);
    const encodes = encode.mock.calls.filter(([json]) => json.includes('"content":"count-me"'));
    expect(encodes).toHaveLength(1);
  });
});

describe('requests over MessagePack', () => {
  it('answers every envelope of a frame, in order: acks, pong, errors with their ids', async () => {
    const c = await packedUser('req');
    const from = c.envelopes.length;
    c.send(
      { type: 'ping', id: 'p1' },
      { type: 'create_room', id: 'c1', data: { name: 'packed room' } },
      { type: 'no_such_request', id: 'u1', data: {} },
      { type: 'join_room', id: 'j1', data: { room_id: 'does-not-exist' } },
    );
    const answers = await Promise.all(
      ['p1', 'c1', 'u1', 'j1'].map((id) => c.waitFor((e) => e.id === id, 3000, from)),
    );
    expect(answers.map((a): unknown[] => [a.type, a.data.code])).toEqual([
      ['pong', undefined],
      ['ack', undefined],
      ['error', 'unknown_type'],
      ['error', 'room_not_found'],
    ]);
    expect(answers[1].data.room).toMatchObject({ name: 'packed room', owner: c.userId });
  });

  it('answers bad bytes invalid_message and keeps the connection', async () => {
    const c = await packedUser('bad');
    let from = c.envelopes.length;
    c.socket.send(Buffer.from([0xc1, 0xff, 0x00]), { binary: true });
    expect((await c.waitFor((e) => e.type === 'error', 3000, from)).data.code).toBe('invalid_message');
    // A good envelope followed by a cut one: the first runs, the rest is invalid_message.
    from = c.envelopes.length;
    c.socket.send(
      Buffer.concat([pack({ type: 'ping', id: 'ok' }), pack({ type: 'ping', id: 'cut' }).subarray(0, 5)]),
      {
        binary: true,
      },
    );
    await c.waitFor((e) => e.id === 'ok' && e.type === 'pong', 3000, from);
    expect((await c.waitFor((e) => e.type === 'error', 3000, from)).data.code).toBe('invalid_message');
    // Text on a MessagePack connection.
    from = c.envelopes.length;
    c.socket.send(JSON.stringify({ type: 'ping', id: 'text' }));
    const text = await c.waitFor((e) => e.type === 'error', 3000, from);
    expect(text.data).toMatchObject({ code: 'invalid_message' });
    expect(text.data.message).toContain('binary');
    expect((await c.request('ping')).type).toBe('pong');
    expect(c.closeCode).toBeUndefined();
  });

  it('validates like JSON: nesting depth, non-JSON values, envelope shape', async () => {
    const c = await packedUser('val');
    const j = await jsonUser('val-json');
    let deep: Record<string, unknown> = {};
    for (let i = 1; i < 32; i++) deep = { a: deep }; // data of 32 levels
    expect((await c.request('ping', deep)).type).toBe('pong');
    expect((await j.request('ping', deep)).type).toBe('pong');
    const tooDeep = await c.request('ping', { a: deep }); // 33
    expect(tooDeep.data).toEqual({
      code: 'invalid_message',
      message: '"data" is nested deeper than 32 levels',
    });
    expect((await j.request('ping', { a: deep })).data).toEqual(tooDeep.data);
    expect((await c.request('ping', { blob: Buffer.from('raw') })).data.code).toBe('invalid_message');
    expect((await c.request('ping', { when: new Date() })).data.code).toBe('invalid_message');
    const from = c.envelopes.length;
    c.send({ id: 'no-type' });
    const noType = await c.waitFor((e) => e.id === 'no-type', 3000, from);
    j.send({ id: 'no-type' });
    expect((await j.waitFor((e) => e.id === 'no-type')).data).toEqual(noType.data);
    expect(noType.data.code).toBe('invalid_message');
  });

  it('answers a binary frame over max_message_size with message_too_large, per request id', async () => {
    const c = await packedUser('big');
    const from = c.envelopes.length;
    c.send(
      { type: 'ping', id: 'big-1', data: { pad: 'x'.repeat(MAX_MESSAGE_SIZE) } },
      { type: 'ping', id: 'big-2' },
    );
    const [e1, e2] = await Promise.all(
      ['big-1', 'big-2'].map((id) => c.waitFor((e) => e.id === id, 3000, from)),
    );
    expect(e1.data).toMatchObject({ code: 'message_too_large' });
    expect(e2.data).toMatchObject({ code: 'message_too_large' });
    expect(e1.data.message).toContain(`exceeds max_message_size ${MAX_MESSAGE_SIZE}`);
    expect((await c.request('ping')).type).toBe('pong');
  });
});

describe('JSON connections', () => {
  it('still answer a binary frame invalid_message', async () => {
    const c = await jsonUser('json-binary');
    c.sendBinary(pack({ type: 'ping', id: 'b' }));
    const err = await c.waitFor((e) => e.type === 'error');
    expect(err.data).toMatchObject({
      code: 'invalid_message',
      message: 'binary frames are not accepted: send JSON text',
    });
    expect((await c.request('ping')).type).toBe('pong');
  });
});

describe("the client library with codec: 'msgpack'", () => {
  it('connects, joins, sends and receives next to a JSON client', async () => {
    const alice = await jsonUser('alice');
    const roomId = await roomOf(alice);
    const client = new StreamingClient({
      url: app.wsUrl,
      WebSocket,
      token: await token(`lib-${++n}`),
      codec: 'msgpack',
      ackTimeoutMs: 5000,
    });
    libClients.push(client);
    const got: WireMessage[] = [];
    client.on('message', (m) => got.push(m));
    const connected = await client.connect();
    expect(connected.user_id).toMatch(/^lib-/);
    await client.joinRoom(roomId);

    await alice.ok('send_message', {
      room_id: roomId,
      content: 'to the packed client',
      metadata: { k: [1, 'two'] },
    });
    const sent = await client.sendMessage(roomId, 'from the packed client ✓', { via: 'msgpack' });
    expect(sent.seq).toBe(2);
    const fromLib = await alice.waitFor(
      (e) => e.type === 'message' && e.data?.seq === 2 && e.data?.room_id === roomId,
    );
    expect(fromLib.data).toMatchObject({ content: 'from the packed client ✓', metadata: { via: 'msgpack' } });
    await eventually(() => expect(got.map((m) => m.seq)).toEqual([1, 2]));
    expect(got[0]).toEqual(messagesIn(alice.envelopes, roomId)[0]);

    await expect(client.joinRoom('no-such-room')).rejects.toMatchObject({ code: 'room_not_found' });
    await expect(client.ping()).resolves.toHaveProperty('timestamp');
  });
});

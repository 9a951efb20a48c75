/**
 * The WebSocket gateway of the demo app over real sockets on loopback:
 * PROTOCOL.md sections 2 (auth), 3 (frames), 4 (requests) and 7 (limits).
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt, UnsecuredJWT } from 'jose';
import { StreamingManager } from '@nest-streaming/streaming';
import { activeConnections, eventually, signToken, startDemoApp, type TestApp } from './support/app';
import {
  ClientPool,
  isError,
  isMessage,
  isType,
  WsClient,
  type ConnectOptions,
  type Envelope,
  type Json,
} from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'gateway-e2e-secret-5f1c0a9e-4d2b7e10';
const MAX_MESSAGE_SIZE = 4096;
/** Messages kept per room (retention), for the resume gap test. */
const MAX_HISTORY = 60;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let app: TestApp;
const pool = new ClientPool();

beforeAll(async () => {
  app = await startDemoApp({
    JWT_SECRET: SECRET,
    FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
    FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
    FORGE_STREAMING_TYPING_TIMEOUT: '1',
    FORGE_STREAMING_MAX_MESSAGE_SIZE: String(MAX_MESSAGE_SIZE),
    FORGE_STREAMING_MAX_CONNECTIONS_PER_USER: '3',
    FORGE_STREAMING_MAX_HISTORY_MESSAGES: String(MAX_HISTORY),
  });
});

afterEach(async () => {
  // Every frame any client received in the test was a well-formed envelope.
  expect(await pool.closeAll()).toEqual([]);
});

afterAll(async () => {
  await pool.closeAll();
  await app?.close();
});

let counter = 0;
/** A user name no other test uses (names may hold letters, digits, _ . @ -). */
const user = (prefix: string): string => `${prefix}-${++counter}`;
const now = (): number => Math.floor(Date.now() / 1000);

async function connect(name: string, options: ConnectOptions = {}, on: TestApp = app): Promise<WsClient> {
  const token = await on.login(name);
  return pool.connect(on.wsUrl, { token, ...options });
}

async function createRoom(c: WsClient, name = 'room'): Promise<string> {
  const ack = await c.ok('create_room', { name });
  return ack.room.id as string;
}

/** Two users, connected, both members of a fresh room (a owns it). */
async function pair(): Promise<{ a: string; b: string; ca: WsClient; cb: WsClient; roomId: string }> {
  const a = user('ann');
  const b = user('bob');
  const [ca, cb] = await Promise.all([connect(a), connect(b)]);
  const roomId = await createRoom(ca);
  await cb.ok('join_room', { room_id: roomId });
  await ca.waitFor((e) => e.type === 'user_joined' && e.data.user_id === b && e.data.room_id === roomId);
  return { a, b, ca, cb, roomId };
}

const roomMessages =
  (roomId: string) =>
  (e: Envelope): boolean =>
    e.type === 'message' && e.data?.room_id === roomId;

/** The connection still answers a ping and carries a message (delivered to itself and `also`). */
async function expectUsable(c: WsClient, roomId: string, ...also: WsClient[]): Promise<void> {
  expect(c.isOpen).toBe(true);
  const pong = await c.request('ping');
  expect(pong.type).toBe('pong');
  const content = `still-alive-${randomUUID()}`;
  const ack = await c.ok('send_message', { room_id: roomId, content });
  expect(ack.seq).toEqual(expect.any(Number));
  for (const r of [c, ...also]) {
    const m = await r.waitFor(isMessage(content));
    expect(m.data.seq).toBe(ack.seq);
  }
}

/** An object nested `depth` levels deep (objects count; `{}` is depth 1). */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) v = { n: v };
  return v;
}

describe('connecting', () => {
  it('sends `connected` first, carrying the user and session of the token', async () => {
    const name = user('alice');
    const token = await app.login(name);
    const c = await pool.connect(app.wsUrl, { token });
    expect(c.envelopes[0]).toBe(c.connected);
    expect(c.connected).toEqual({
      type: 'connected',
      data: expect.objectContaining({
        connection_id: expect.any(String),
        user_id: name,
        session_id: decodeJwt(token).sid,
        node_id: expect.any(String),
        ping_interval_ms: 30000,
      }),
    });
    expect(c.connected).not.toHaveProperty('id');
  });

  it('accepts the token in the Authorization header and uses a crafted token`s sid', async () => {
    const name = user('hdr');
    const token = await signToken(SECRET, { sub: name, sid: 'session-xyz', exp: now() + 600 });
    const c = await pool.connect(app.wsUrl, { token, via: 'header' });
    expect(c.connected.data).toMatchObject({ user_id: name, session_id: 'session-xyz' });
    const other = await pool.connect(app.wsUrl, { token });
    expect(other.connected.data.connection_id).not.toBe(c.connected.data.connection_id);
  });

  describe('refuses the upgrade with HTTP 401', () => {
    it('without a token', async () => {
      expect((await WsClient.expectRejected(app.wsUrl)).status).toBe(401);
    });

    it('with a token signed with another secret', async () => {
      const token = await signToken('not-the-secret', { sub: user('x'), exp: now() + 600 });
      expect((await WsClient.expectRejected(app.wsUrl, { token })).status).toBe(401);
      expect((await WsClient.expectRejected(app.wsUrl, { token, via: 'header' })).status).toBe(401);
    });

    it('with an expired token', async () => {
      const token = await signToken(SECRET, { sub: user('x'), iat: now() - 120, exp: now() - 60 });
      expect((await WsClient.expectRejected(app.wsUrl, { token })).status).toBe(401);
    });

    it('with a token without sub', async () => {
      const token = await signToken(SECRET, { name: 'nobody', sid: 's', exp: now() + 600 });
      expect((await WsClient.expectRejected(app.wsUrl, { token })).status).toBe(401);
    });

    it('with a body that matches its Content-Type (JSON error shape when it says JSON)', async () => {
      for (const token of [undefined, 'abc.def.ghi']) {
        const { status, headers, body } = await WsClient.expectRejected(app.wsUrl, { token });
        expect(status).toBe(401);
        expect(body.length).toBeGreaterThan(0);
        if (/json/i.test(String(headers['content-type']))) {
          const parse = (): unknown => JSON.parse(body) as unknown;
          expect(parse).not.toThrow();
          expect(parse()).toMatchObject({ statusCode: 401, message: expect.any(String) });
        }
      }
    });

    it('with garbage and unsigned (alg none) tokens', async () => {
      expect((await WsClient.expectRejected(app.wsUrl, { token: 'abc.def.ghi' })).status).toBe(401);
      const unsigned = new UnsecuredJWT({ sub: user('x') }).setExpirationTime('1h').encode();
      expect((await WsClient.expectRejected(app.wsUrl, { token: unsigned })).status).toBe(401);
    });
  });

  it('refuses the 4th connection of a user with HTTP 429 (max_connections_per_user=3), others unaffected', async () => {
    const name = user('many');
    const token = await app.login(name);
    const first = await pool.connect(app.wsUrl, { token });
    await pool.connect(app.wsUrl, { token });
    await pool.connect(app.wsUrl, { token, via: 'header' });
    expect((await WsClient.expectRejected(app.wsUrl, { token })).status).toBe(429);
    // Another user is not limited by it.
    await connect(user('other'));
    // Closing one frees a slot (the server learns of the close asynchronously).
    await first.close();
    await eventually(() => pool.connect(app.wsUrl, { token }), 3000, 50);
    expect((await WsClient.expectRejected(app.wsUrl, { token })).status).toBe(429);
  });

  it('enforces max_connections_per_user on simultaneous upgrades too', async () => {
    const token = await app.login(user('burst'));
    const attempts = await Promise.allSettled(
      Array.from({ length: 8 }, () => pool.connect(app.wsUrl, { token })),
    );
    const accepted = attempts.filter((r) => r.status === 'fulfilled');
    const refused = attempts.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
    expect(accepted).toHaveLength(3);
    expect(refused).toEqual(Array(5).fill('Error: upgrade refused with HTTP 429'));
  });
});

describe('rooms and messages', () => {
  it('two users create and join a room and exchange messages seq 1,2,3, each delivered once to every member connection', async () => {
    const a = user('ann');
    const b = user('bob');
    const [ca, cb] = await Promise.all([connect(a), connect(b)]);

    const created = await ca.ok('create_room', { name: 'general' });
    expect(created.room).toEqual({
      id: expect.any(String),
      name: 'general',
      description: '',
      private: false,
      owner: a,
      max_members: null,
      member_count: 1,
      created_at: expect.stringMatching(ISO_UTC),
      kind: 'room',
    });
    const roomId = created.room.id as string;

    const joinAck = await cb.request('join_room', { room_id: roomId });
    expect(joinAck.type).toBe('ack');
    const joined = await cb.waitFor((e) => e.type === 'room_joined' && e.data.room_id === roomId);
    expect(joined.data.members).toHaveLength(2);
    expect(joined.data.members).toEqual(
      expect.arrayContaining([
        { user_id: a, role: 'owner' },
        { user_id: b, role: 'member' },
      ]),
    );
    expect(Array.isArray(joined.data.presence)).toBe(true);
    const userJoined = await ca.waitFor((e) => e.type === 'user_joined' && e.data.room_id === roomId);
    expect(userJoined.data).toEqual({ room_id: roomId, user_id: b });

    const s1 = await ca.ok('send_message', { room_id: roomId, content: 'one' });
    const s2 = await cb.ok('send_message', { room_id: roomId, content: 'two', metadata: { lang: 'en' } });
    const s3 = await ca.ok('send_message', { room_id: roomId, content: 'three' });
    expect([s1.seq, s2.seq, s3.seq]).toEqual([1, 2, 3]);
    expect(new Set([s1.message_id, s2.message_id, s3.message_id]).size).toBe(3);

    for (const c of [ca, cb]) {
      const got = await c.waitForCount(roomMessages(roomId), 3);
      expect(got.map((m) => m.data as unknown)).toEqual([
        {
          id: s1.message_id,
          seq: 1,
          room_id: roomId,
          user_id: a,
          content: 'one',
          metadata: {},
          timestamp: expect.stringMatching(ISO_UTC),
          reactions: {},
        },
        {
          id: s2.message_id,
          seq: 2,
          room_id: roomId,
          user_id: b,
          content: 'two',
          metadata: { lang: 'en' },
          timestamp: expect.stringMatching(ISO_UTC),
          reactions: {},
        },
        {
          id: s3.message_id,
          seq: 3,
          room_id: roomId,
          user_id: a,
          content: 'three',
          metadata: {},
          timestamp: expect.stringMatching(ISO_UTC),
          reactions: {},
        },
      ]);
    }
    // Nothing is delivered twice; the joiner is not told of its own join.
    await Promise.all(
      [ca, cb].map((c) => c.expectNone((e) => roomMessages(roomId)(e) && e.data.seq > 3, 200)),
    );
    for (const c of [ca, cb]) expect(c.all(roomMessages(roomId))).toHaveLength(3);
    expect(cb.all((e) => e.type === 'user_joined' && e.data.user_id === b)).toHaveLength(0);
  });

  it('every connection sees a room`s messages in strictly increasing, gap-free seq order under concurrent senders', async () => {
    const { a, ca, cb, roomId } = await pair();
    const ca2 = await connect(a);
    const per = 40;
    const total = per * 3;
    const sends = [ca, cb, ca2].flatMap((c, k) =>
      Array.from({ length: per }, (_, i) => c.ok('send_message', { room_id: roomId, content: `c${k}-${i}` })),
    );
    const acks = await Promise.all(sends);
    const oneToTotal = Array.from({ length: total }, (_, i) => i + 1);
    expect(acks.map((x) => x.seq as number).sort((x, y) => x - y)).toEqual(oneToTotal);
    for (const c of [ca, cb, ca2]) {
      const got = await c.waitForCount(roomMessages(roomId), total, 5000);
      expect(got.map((m) => m.data.seq as number)).toEqual(oneToTotal);
    }
    // Each connection's requests are carried out in the order they were sent.
    for (const k of [0, 1, 2]) {
      const mine = ca.all((e) => roomMessages(roomId)(e) && (e.data.content as string).startsWith(`c${k}-`));
      expect(mine.map((m) => m.data.content as string)).toEqual(
        Array.from({ length: per }, (_, i) => `c${k}-${i}`),
      );
    }
  });

  it('sets server-owned message fields itself: a client cannot forge seq, user_id, timestamp or id', async () => {
    const { b, ca, cb, roomId } = await pair();
    const before = Date.now();
    const ack = await cb.ok('send_message', {
      room_id: roomId,
      content: 'forged?',
      seq: 999,
      user_id: 'mallory',
      timestamp: '1999-01-01T00:00:00.000Z',
      id: 'forged-id',
      reactions: { '👍': ['mallory'] },
      deleted: true,
    });
    expect(ack.seq).toBe(1);
    expect(ack.message_id).not.toBe('forged-id');
    for (const c of [ca, cb]) {
      const m = (await c.waitFor(isMessage('forged?'))).data;
      expect(m).toMatchObject({ id: ack.message_id, seq: 1, user_id: b, reactions: {}, metadata: {} });
      expect(m).not.toHaveProperty('deleted');
      expect(Date.parse(m.timestamp)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(m.timestamp)).toBeLessThanOrEqual(Date.now() + 1000);
    }
    const history = await ca.ok('get_history', { room_id: roomId });
    expect(history.messages).toHaveLength(1);
    expect(history.messages[0]).toMatchObject({ id: ack.message_id, seq: 1, user_id: b });
  });

  it('join_room by a member is idempotent: room_joined again, no second user_joined', async () => {
    const { b, ca, cb, roomId } = await pair();
    const mark = ca.envelopes.length;
    const again = await cb.request('join_room', { room_id: roomId });
    expect(again.type).toBe('ack');
    await cb.waitForCount((e) => e.type === 'room_joined' && e.data.room_id === roomId, 2);
    await ca.expectNone((e) => e.type === 'user_joined' && e.data.user_id === b, 300, mark);
    expect(ca.all((e) => e.type === 'user_joined' && e.data.user_id === b)).toHaveLength(1);
  });

  it('a member`s connection opened after the join receives room events without joining', async () => {
    const { a, b, ca, cb, roomId } = await pair();
    const late = await connect(b);
    await ca.ok('send_message', { room_id: roomId, content: 'for every connection' });
    for (const c of [ca, cb, late]) await c.waitFor(isMessage('for every connection'));
    const fromB = await late.ok('send_message', { room_id: roomId, content: 'from the late one' });
    const m = await ca.waitFor(isMessage('from the late one'));
    expect(m.data).toMatchObject({ user_id: b, seq: fromB.seq });
    expect(late.all((e) => e.type === 'message')).toHaveLength(2);
    expect(a).not.toBe(b);
  });

  it('leave_room ends the membership for all of the user`s connections, with room_left and user_left', async () => {
    const { b, ca, cb, roomId } = await pair();
    const cb2 = await connect(b);
    expect(await cb.ok('leave_room', { room_id: roomId })).toEqual({ room_id: roomId });
    for (const c of [cb, cb2]) await c.waitFor((e) => e.type === 'room_left' && e.data.room_id === roomId);
    expect((await ca.waitFor((e) => e.type === 'user_left' && e.data.room_id === roomId)).data).toEqual({
      room_id: roomId,
      user_id: b,
    });
    await ca.ok('send_message', { room_id: roomId, content: 'after leave' });
    await ca.waitFor(isMessage('after leave'));
    await Promise.all([cb, cb2].map((c) => c.expectNone(isMessage('after leave'), 300)));
    expect(await cb2.request('send_message', { room_id: roomId, content: 'x' })).toMatchObject({
      type: 'error',
      data: { code: 'not_room_member' },
    });
    expect(await cb.request('leave_room', { room_id: roomId })).toMatchObject({
      type: 'error',
      data: { code: 'not_room_member' },
    });
  });

  it('presence is per user: online while any connection lives, offline after the last', async () => {
    const { b, ca, cb } = await pair();
    const aboutB = (status: string) => (e: Envelope) =>
      e.type === 'presence' && e.data.user_id === b && e.data.status === status;
    const cb2 = await connect(b);
    const mark = ca.envelopes.length;
    await cb2.close();
    await ca.expectNone(aboutB('offline'), 300, mark);

    await cb.close();
    const offline = await ca.waitFor(aboutB('offline'), 3000, mark);
    expect(offline.data).toMatchObject({
      user_id: b,
      status: 'offline',
      last_seen: expect.stringMatching(ISO_UTC),
    });

    const again = ca.envelopes.length;
    await connect(b);
    await ca.waitFor(aboutB('online'), 3000, again);
  });

  it('join_room of an unknown room answers room_not_found; a non-member cannot send or read', async () => {
    const { ca, cb, roomId } = await pair();
    const outsider = await connect(user('eve'));
    const join = await outsider.request('join_room', { room_id: `no-such-room-${randomUUID()}` });
    expect(join).toMatchObject({
      type: 'error',
      data: { code: 'room_not_found', message: expect.any(String) },
    });

    const send = await outsider.request('send_message', { room_id: roomId, content: 'intrusion' });
    expect(send).toMatchObject({ type: 'error', data: { code: 'not_room_member' } });
    const read = await outsider.request('get_history', { room_id: roomId });
    expect(read).toMatchObject({ type: 'error', data: { code: 'not_room_member' } });
    await Promise.all([ca, cb, outsider].map((c) => c.expectNone(isMessage('intrusion'), 200)));
    await expectUsable(outsider, await createRoom(outsider));
  });
});

describe('bad frames get documented errors and the same connection keeps working', () => {
  it('non-JSON text → invalid_message (no id)', async () => {
    const { ca, cb, roomId } = await pair();
    const from = ca.envelopes.length;
    ca.sendRaw('this is {not json');
    const err = await ca.waitFor(isType('error'), 3000, from);
    expect(err.data).toEqual(
      expect.objectContaining({ code: 'invalid_message', message: expect.any(String) }),
    );
    expect(err).not.toHaveProperty('id');
    // Empty and blank frames, and a truncated envelope.
    const mark = ca.envelopes.length;
    for (const frame of ['', '   ', '\n\n', '{"type":"ping","id":"trunc"']) ca.sendRaw(frame);
    const more = await ca.waitForCount(isType('error'), 4, 3000, mark);
    expect(more.map((e) => e.data.code as string)).toEqual(Array(4).fill('invalid_message'));
    expect(ca.all((e) => e.type === 'pong', mark)).toHaveLength(0);
    await expectUsable(ca, roomId, cb);
  });

  it('a JSON array, string, number or null → invalid_message', async () => {
    const { ca, cb, roomId } = await pair();
    const from = ca.envelopes.length;
    for (const frame of ['[{"type":"ping","id":"arr"}]', '"ping"', '42', 'null']) ca.sendRaw(frame);
    const errors = await ca.waitForCount(isType('error'), 4, 3000, from);
    expect(errors.map((e) => e.data.code as string)).toEqual([
      'invalid_message',
      'invalid_message',
      'invalid_message',
      'invalid_message',
    ]);
    expect(ca.all((e) => e.type === 'pong', from)).toHaveLength(0);
    await expectUsable(ca, roomId, cb);
  });

  it('a missing or non-string type → invalid_message, echoing the id', async () => {
    const { ca, cb, roomId } = await pair();
    ca.send({ id: 'no-type', data: {} });
    ca.send({ type: 7, id: 'num-type' });
    ca.send({ type: '', id: 'empty-type' });
    for (const id of ['no-type', 'num-type', 'empty-type']) {
      const err = await ca.waitFor((e) => e.id === id);
      expect(err).toMatchObject({ type: 'error', id, data: { code: 'invalid_message' } });
    }
    await expectUsable(ca, roomId, cb);
  });

  it('an unknown type → unknown_type, echoing the id', async () => {
    const { ca, cb, roomId } = await pair();
    const answer = await ca.request('teleport', { to: 'mars' });
    expect(answer).toMatchObject({
      type: 'error',
      data: { code: 'unknown_type', message: expect.any(String) },
    });
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      ca.send({ type, id: `proto-${type}` });
      expect(await ca.waitFor((e) => e.id === `proto-${type}`)).toMatchObject({
        type: 'error',
        data: { code: 'unknown_type' },
      });
    }
    ca.send({ type: 'teleport', id: 'tp-1' });
    expect(await ca.waitFor((e) => e.id === 'tp-1')).toMatchObject({
      type: 'error',
      data: { code: 'unknown_type' },
    });
    await expectUsable(ca, roomId, cb);
  });

  it('wrong field types (room_id: 5, content: {}, data not an object) → invalid_message, nothing delivered', async () => {
    const { ca, cb, roomId } = await pair();
    const answers = await Promise.all([
      ca.request('send_message', { room_id: 5, content: 'typed-1' }),
      ca.request('send_message', { room_id: roomId, content: {} }),
      ca.request('send_message', { room_id: roomId, content: 'typed-3', metadata: 'not an object' }),
      ca.request('join_room', { room_id: ['a'] }),
      ca.request('get_history', { room_id: roomId, limit: 'ten' }),
      ca.request('send_message', [roomId, 'typed-6']),
      ca.request('send_message', 'typed-7'),
    ]);
    for (const a of answers) expect(a).toMatchObject({ type: 'error', data: { code: 'invalid_message' } });
    await Promise.all(
      [ca, cb].map((c) => c.expectNone((e) => e.type === 'message' && /typed-/.test(e.data.content), 200)),
    );
    await expectUsable(ca, roomId, cb);
  });

  it('data nested 33 levels → invalid_message; 31 and 32 levels are accepted (send_message metadata)', async () => {
    const { ca, cb, roomId } = await pair();
    // data is level 1, metadata level 2: metadata of depth k makes data k+1 deep.
    const tooDeep = await ca.request('send_message', {
      room_id: roomId,
      content: 'deep-33',
      metadata: nested(32),
    });
    expect(tooDeep).toMatchObject({ type: 'error', data: { code: 'invalid_message' } });
    const arrays = await ca.request('send_message', {
      room_id: roomId,
      content: 'deep-33-arrays',
      metadata: { a: JSON.parse('['.repeat(31) + ']'.repeat(31)) as unknown },
    });
    expect(arrays).toMatchObject({ type: 'error', data: { code: 'invalid_message' } });

    const ok31 = await ca.ok('send_message', { room_id: roomId, content: 'deep-31', metadata: nested(30) });
    const ok32 = await ca.ok('send_message', { room_id: roomId, content: 'deep-32', metadata: nested(31) });
    expect(ok32.seq).toBe(ok31.seq + 1);
    const m31 = await cb.waitFor(isMessage('deep-31'));
    expect(m31.data.metadata).toEqual(nested(30));
    await cb.waitFor(isMessage('deep-32'));
    await cb.expectNone((e) => e.type === 'message' && /^deep-33/.test(e.data.content), 200);
    await expectUsable(ca, roomId, cb);
  });

  it('a binary frame → invalid_message', async () => {
    const { ca, cb, roomId } = await pair();
    const from = ca.envelopes.length;
    ca.sendBinary(Buffer.from(JSON.stringify({ type: 'ping', id: 'bin-1' })));
    const err = await ca.waitFor(isType('error'), 3000, from);
    expect(err.data.code).toBe('invalid_message');
    await ca.expectNone((e) => e.type === 'pong' && e.id === 'bin-1', 200);
    await expectUsable(ca, roomId, cb);
  });

  it('a frame over max_message_size → message_too_large with its id; nothing is delivered; exactly the limit is fine', async () => {
    const { ca, cb, roomId } = await pair();
    const big = 'x'.repeat(MAX_MESSAGE_SIZE + 1);
    ca.send({ type: 'send_message', id: 'big-1', data: { room_id: roomId, content: big } });
    const err = await ca.waitFor((e) => e.id === 'big-1');
    expect(err).toMatchObject({ type: 'error', id: 'big-1', data: { code: 'message_too_large' } });

    // Two requests in one oversized frame: each id is answered.
    const line = (id: string) =>
      JSON.stringify({ type: 'send_message', id, data: { room_id: roomId, content: 'y'.repeat(2500) } });
    ca.sendRaw(`${line('big-2')}\n${line('big-3')}`);
    for (const id of ['big-2', 'big-3']) {
      expect(await ca.waitFor((e) => e.id === id)).toMatchObject({ data: { code: 'message_too_large' } });
    }
    await Promise.all(
      [ca, cb].map((c) => c.expectNone((e) => e.type === 'message' && e.data.content.length > 2000, 200)),
    );

    // The limit is in bytes, not characters: 1500 three-byte characters are over 4096 bytes.
    const euros = await ca.request('send_message', { room_id: roomId, content: '€'.repeat(1500) });
    expect(euros).toMatchObject({ type: 'error', data: { code: 'message_too_large' } });

    // A frame of exactly max_message_size bytes is accepted.
    const skeleton = JSON.stringify({
      type: 'send_message',
      id: 'exact',
      data: { room_id: roomId, content: '' },
    });
    const exact = JSON.stringify({
      type: 'send_message',
      id: 'exact',
      data: { room_id: roomId, content: 'z'.repeat(MAX_MESSAGE_SIZE - Buffer.byteLength(skeleton)) },
    });
    expect(Buffer.byteLength(exact)).toBe(MAX_MESSAGE_SIZE);
    ca.sendRaw(exact);
    expect(await ca.waitFor((e) => e.id === 'exact')).toMatchObject({ type: 'ack' });
    await expectUsable(ca, roomId, cb);
  });

  it('a frame over 16x max_message_size closes that socket with 1009; other connections are unaffected', async () => {
    const { a, ca, cb, roomId } = await pair();
    const abuser = await connect(a);
    // Exactly 16x is still answered, not closed.
    const skeleton = JSON.stringify({ type: 'ping', id: 'x16', data: { pad: '' } });
    abuser.sendRaw(
      JSON.stringify({
        type: 'ping',
        id: 'x16',
        data: { pad: 'p'.repeat(MAX_MESSAGE_SIZE * 16 - skeleton.length) },
      }),
    );
    expect(await abuser.waitFor((e) => e.id === 'x16')).toMatchObject({
      type: 'error',
      data: { code: 'message_too_large' },
    });
    expect(abuser.isOpen).toBe(true);
    abuser.sendRaw('x'.repeat(MAX_MESSAGE_SIZE * 16 + 1));
    expect((await abuser.waitForClose(5000)).code).toBe(1009);
    await expectUsable(ca, roomId, cb);
    await expectUsable(cb, roomId, ca);
  });

  it('NDJSON: several requests in one frame are each answered, a bad line does not spoil the others', async () => {
    const { ca, cb, roomId } = await pair();
    ca.sendRaw(
      [
        JSON.stringify({ type: 'ping', id: 'nd-1' }),
        JSON.stringify({ type: 'send_message', id: 'nd-2', data: { room_id: roomId, content: 'batched' } }),
      ].join('\n'),
    );
    expect(await ca.waitFor((e) => e.id === 'nd-1')).toMatchObject({ type: 'pong' });
    expect(await ca.waitFor((e) => e.id === 'nd-2')).toMatchObject({ type: 'ack', data: { seq: 1 } });
    await cb.waitFor(isMessage('batched'));

    const from = ca.envelopes.length;
    ca.sendRaw(
      `${JSON.stringify({ type: 'ping', id: 'nd-3' })}\nnot json\n${JSON.stringify({ type: 'ping', id: 'nd-4' })}\n`,
    );
    await ca.waitFor((e) => e.id === 'nd-4');
    const answers = ca.all((e) => e.type === 'pong' || e.type === 'error', from);
    // Answers to different requests may come in any order (PROTOCOL.md promises none).
    expect(
      answers.map((e) => [e.type, e.id ?? null, (e.data.code as string | undefined) ?? null]).sort(),
    ).toEqual([
      ['error', null, 'invalid_message'],
      ['pong', 'nd-3', null],
      ['pong', 'nd-4', null],
    ]);
    await expectUsable(ca, roomId, cb);
  });

  it('answers each request with an id exactly once; a failing request without id gets an error without id', async () => {
    const { ca, cb, roomId } = await pair();
    const requests: Array<Record<string, unknown>> = [
      { type: 'ping', id: 'q-ping' },
      { type: 'send_message', id: 'q-send', data: { room_id: roomId, content: 'once' } },
      { type: 'send_message', id: 'q-nosuch', data: { room_id: 'no-such-room', content: 'x' } },
      { type: 'join_room', id: 'q-join', data: { room_id: roomId } },
      { type: 'get_history', id: 'q-hist', data: { room_id: roomId } },
      { type: 'start_typing', id: 'q-type', data: { room_id: roomId } },
      { type: 'dance', id: 'q-unknown' },
      { type: 'send_message', id: 'q-bad', data: { room_id: 5 } },
      { id: 'q-notype' },
    ];
    const from = ca.envelopes.length;
    for (const r of requests) ca.send(r);
    for (const r of requests) await ca.waitFor((e) => e.id === r.id, 3000, from);
    await ca.expectNone((e) => e.type === 'ack' && e.id === 'never', 300); // let duplicates, if any, arrive
    for (const r of requests) expect(ca.all((e) => e.id === r.id, from)).toHaveLength(1);
    expect(ca.all((e) => e.id === 'q-send', from)[0].type).toBe('ack');
    expect(ca.all((e) => e.id === 'q-nosuch', from)[0].data.code).toBe('room_not_found');

    const mark = ca.envelopes.length;
    ca.send({ type: 'send_message', data: { room_id: 'no-such-room', content: 'x' } });
    const err = await ca.waitFor(isError('room_not_found'), 3000, mark);
    expect(err).not.toHaveProperty('id');
    ca.send({ type: 'fly' });
    const unknown = await ca.waitFor(isError('unknown_type'), 3000, mark);
    expect(unknown).not.toHaveProperty('id');
    // A successful request without id is carried out without an ack.
    ca.send({ type: 'send_message', data: { room_id: roomId, content: 'no-id' } });
    await cb.waitFor(isMessage('no-id'));
    await ca.waitFor(isMessage('no-id'));
    expect(ca.all((e) => e.type === 'ack' && e.id === undefined, mark)).toHaveLength(0);
    await expectUsable(ca, roomId, cb);
  });
});

describe('history', () => {
  it('get_history pages with limit, before and after, oldest first, default limit 50', async () => {
    const { ca, cb, roomId } = await pair();
    const acks = await Promise.all(
      Array.from({ length: 55 }, (_, i) => ca.ok('send_message', { room_id: roomId, content: `h${i + 1}` })),
    );
    expect(acks.map((a) => a.seq as number)).toEqual(Array.from({ length: 55 }, (_, i) => i + 1));
    const seqs = async (q: Record<string, unknown>): Promise<number[]> =>
      ((await cb.ok('get_history', { room_id: roomId, ...q })).messages as Array<{ seq: number }>).map(
        (m) => m.seq,
      );
    const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

    expect(await seqs({})).toEqual(range(6, 55));
    expect(await seqs({ limit: 3 })).toEqual([53, 54, 55]);
    expect(await seqs({ limit: 3, before: 5 })).toEqual([2, 3, 4]);
    expect(await seqs({ before: 3 })).toEqual([1, 2]);
    expect(await seqs({ after: 50 })).toEqual(range(51, 55));
    expect(await seqs({ after: 2, limit: 3 })).toEqual([3, 4, 5]);
    expect(await seqs({ after: 2, before: 6, limit: 10 })).toEqual([3, 4, 5]);
    expect(await seqs({ after: 2, before: 40, limit: 2 })).toEqual([3, 4]);
    expect(await seqs({ limit: 100 })).toEqual(range(1, 55));
    expect(await seqs({ before: 1 })).toEqual([]);
    expect(await seqs({ after: 55 })).toEqual([]);

    // History holds the very messages that were delivered live.
    const live = await cb.waitForCount(roomMessages(roomId), 55);
    const all = await cb.ok('get_history', { room_id: roomId, limit: 100 });
    expect(all.messages).toEqual(live.map((e) => e.data as unknown));

    for (const bad of [{ limit: -1 }, { before: 'x' }, { after: 1.5 }]) {
      expect(await cb.request('get_history', { room_id: roomId, ...bad })).toMatchObject({
        type: 'error',
        data: { code: 'invalid_message' },
      });
    }
  });

  it('edit, delete and reactions are broadcast and reflected in history without duplicate entries', async () => {
    const { a, b, ca, cb, roomId } = await pair();
    const m1 = await ca.ok('send_message', { room_id: roomId, content: 'original' });
    const m2 = await cb.ok('send_message', { room_id: roomId, content: 'reply' });
    const ref = { room_id: roomId, message_id: m1.message_id };

    await ca.ok('edit_message', { ...ref, content: 'edited' });
    for (const c of [ca, cb]) {
      const ev = await c.waitFor((e) => e.type === 'message_edited' && e.data.message_id === m1.message_id);
      expect(ev.data).toMatchObject({
        ...ref,
        content: 'edited',
        edited_by: a,
        edited_at: expect.stringMatching(ISO_UTC),
      });
    }
    expect(await cb.request('edit_message', { ...ref, content: 'hijack' })).toMatchObject({
      type: 'error',
      data: { code: 'forbidden' },
    });
    expect(
      await ca.request('edit_message', { room_id: roomId, message_id: 'no-such-message', content: 'x' }),
    ).toMatchObject({ type: 'error', data: { code: 'message_not_found' } });

    await cb.ok('add_reaction', { ...ref, reaction: '👍' });
    await ca.ok('add_reaction', { ...ref, reaction: '👍' });
    await ca.ok('add_reaction', { ...ref, reaction: '🎉' });
    await ca.ok('remove_reaction', { ...ref, reaction: '🎉' });
    for (const c of [ca, cb]) {
      const added = await c.waitForCount(
        (e) => e.type === 'reaction_added' && e.data.message_id === m1.message_id,
        3,
      );
      expect(added.map((e) => e.data as unknown)).toEqual([
        { ...ref, user_id: b, reaction: '👍' },
        { ...ref, user_id: a, reaction: '👍' },
        { ...ref, user_id: a, reaction: '🎉' },
      ]);
      const removed = await c.waitFor(
        (e) => e.type === 'reaction_removed' && e.data.message_id === m1.message_id,
      );
      expect(removed.data).toEqual({ ...ref, user_id: a, reaction: '🎉' });
    }

    let history = (await cb.ok('get_history', { room_id: roomId })).messages as Json[];
    expect(history.map((m) => m.id as string)).toEqual([m1.message_id, m2.message_id]);
    expect(history[0]).toMatchObject({
      seq: 1,
      content: 'edited',
      user_id: a,
      edited_at: expect.stringMatching(ISO_UTC),
    });
    expect([...history[0].reactions['👍']].sort()).toEqual([a, b].sort());
    expect(history[0].reactions['🎉'] ?? []).toEqual([]);
    expect(history[1]).toMatchObject({ seq: 2, content: 'reply', reactions: {} });

    expect(await cb.request('delete_message', ref)).toMatchObject({
      type: 'error',
      data: { code: 'forbidden' },
    });
    await ca.ok('delete_message', ref);
    for (const c of [ca, cb]) {
      const ev = await c.waitFor((e) => e.type === 'message_deleted' && e.data.message_id === m1.message_id);
      expect(ev.data).toEqual({ ...ref, deleted_by: a });
    }
    expect(await ca.request('edit_message', { ...ref, content: 'too late' })).toMatchObject({
      type: 'error',
      data: { code: 'message_not_found' },
    });

    history = (await cb.ok('get_history', { room_id: roomId })).messages as Json[];
    expect(history.map((m) => m.seq as number)).toEqual([1, 2]);
    expect(history.filter((m) => m.id === m1.message_id)).toHaveLength(1);
    expect(history[0]).toMatchObject({ id: m1.message_id, deleted: true });
    // Edits, reactions and deletes are not new messages.
    for (const c of [ca, cb]) expect(c.all(roomMessages(roomId))).toHaveLength(2);
  });
});

describe('typing', () => {
  it('start_typing reaches the others (not the typist) and stops by itself after typing_timeout (1 s)', async () => {
    const { a, ca, cb, roomId } = await pair();
    const typing = (value: boolean) => (e: Envelope) =>
      e.type === 'typing' && e.data.room_id === roomId && e.data.user_id === a && e.data.typing === value;
    await ca.ok('start_typing', { room_id: roomId });
    const on = await cb.waitFor(typing(true));
    expect(on.data).toEqual({ room_id: roomId, user_id: a, typing: true });
    const started = Date.now();
    await cb.waitFor(typing(false), 4000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(3000);
    expect(ca.all((e) => e.type === 'typing')).toHaveLength(0);

    // stop_typing stops it at once.
    const mark = cb.envelopes.length;
    await ca.ok('start_typing', { room_id: roomId });
    await cb.waitFor(typing(true), 3000, mark);
    const t0 = Date.now();
    await ca.ok('stop_typing', { room_id: roomId });
    await cb.waitFor(typing(false), 3000, mark);
    expect(Date.now() - t0).toBeLessThan(900);

    const outsider = await connect(user('eve'));
    expect(await outsider.request('start_typing', { room_id: roomId })).toMatchObject({
      type: 'error',
      data: { code: 'not_room_member' },
    });
  });
});

describe('resume', () => {
  it('after a reconnect replays exactly the missed messages in seq order, then `resumed`, then the ack', async () => {
    const { b, ca, cb, roomId } = await pair();
    await ca.ok('send_message', { room_id: roomId, content: 'r1' });
    await ca.ok('send_message', { room_id: roomId, content: 'r2' });
    const seen = await cb.waitForCount(roomMessages(roomId), 2);
    const lastSeen = seen[seen.length - 1].data.seq as number;
    expect(lastSeen).toBe(2);
    await cb.close();

    for (const content of ['r3', 'r4', 'r5']) await ca.ok('send_message', { room_id: roomId, content });

    const back = await connect(b);
    const from = back.envelopes.length;
    back.send({ type: 'resume', id: 'resume-1', data: { rooms: { [roomId]: lastSeen } } });
    const ack = await back.waitFor((e) => e.id === 'resume-1');
    expect(ack).toMatchObject({ type: 'ack', data: { rooms: { [roomId]: 5 } } });

    const relevant = back
      .all((e) => roomMessages(roomId)(e) || e.type === 'resumed' || e.id === 'resume-1', from)
      .map((e) => (e.type === 'message' ? `message:${e.data.seq}:${e.data.content}` : e.type));
    expect(relevant).toEqual(['message:3:r3', 'message:4:r4', 'message:5:r5', 'resumed', 'ack']);
    const resumed = back.all(isType('resumed'), from)[0];
    expect(resumed.data).toEqual({ rooms: { [roomId]: 5 } });

    // Up to date: nothing replayed.
    const mark = back.envelopes.length;
    const upToDate = await back.request('resume', { rooms: { [roomId]: 5 } });
    expect(upToDate).toMatchObject({ type: 'ack', data: { rooms: { [roomId]: 5 } } });
    expect(back.all(roomMessages(roomId), mark)).toHaveLength(0);

    // Bad resumes are refused without replaying anything.
    const outsiderRoom = await createRoom(ca, 'not-for-b');
    expect(await back.request('resume', { rooms: { [outsiderRoom]: 0 } })).toMatchObject({
      type: 'error',
      data: { code: 'not_room_member' },
    });
    expect(await back.request('resume', { rooms: { [roomId]: -1 } })).toMatchObject({
      type: 'error',
      data: { code: 'invalid_message' },
    });
    expect(back.all(roomMessages(roomId), mark)).toHaveLength(0);

    // Live delivery continues on the resumed connection.
    await ca.ok('send_message', { room_id: roomId, content: 'r6' });
    expect((await back.waitFor(isMessage('r6'))).data.seq).toBe(6);
  });
});

describe('resume of rooms that no longer exist', () => {
  it('lists them in resumed.gone (and errors) and still resumes the others; only gone rooms is not an error', async () => {
    const { b, ca, cb, roomId } = await pair();
    await ca.ok('send_message', { room_id: roomId, content: 'kept-1' });
    await cb.waitFor(isMessage('kept-1'));
    await cb.close();
    await ca.ok('send_message', { room_id: roomId, content: 'kept-2' });

    const back = await connect(b);
    const from = back.envelopes.length;
    const ack = await back.request('resume', { rooms: { [roomId]: 1, 'vanished-room': 4 } });
    expect(ack).toMatchObject({
      type: 'ack',
      data: {
        rooms: { [roomId]: 2 },
        gone: ['vanished-room'],
        errors: { 'vanished-room': 'room_not_found' },
      },
    });
    expect((await back.waitFor(isType('resumed'), 3000, from)).data).toEqual({
      rooms: { [roomId]: 2 },
      gone: ['vanished-room'],
      errors: { 'vanished-room': 'room_not_found' },
    });
    expect(back.all(roomMessages(roomId), from).map((e) => e.data?.content as string)).toEqual(['kept-2']);

    // Every room gone (an in-memory server restarted): told so, not refused.
    const onlyGone = await back.request('resume', { rooms: { 'gone-a': 1, 'gone-b': 2 } });
    expect(onlyGone).toMatchObject({ type: 'ack', data: { rooms: {}, gone: ['gone-a', 'gone-b'] } });
  });
});

describe('resume across a retention gap', () => {
  it('lists a room whose missed messages were dropped in resumed.gaps and replays nothing for it', async () => {
    const { b, ca, cb, roomId } = await pair();
    await ca.ok('send_message', { room_id: roomId, content: 'g1' });
    await cb.waitFor(isMessage('g1'));
    await cb.close();
    const latest = MAX_HISTORY + 11;
    for (let i = 2; i <= latest; i++) await ca.ok('send_message', { room_id: roomId, content: `g${i}` });

    const back = await connect(b);
    const from = back.envelopes.length;
    const ack = await back.request('resume', { rooms: { [roomId]: 1 } });
    expect(ack).toMatchObject({ type: 'ack', data: { rooms: { [roomId]: latest }, gaps: [roomId] } });
    const resumed = await back.waitFor(isType('resumed'), 3000, from);
    expect(resumed.data).toEqual({ rooms: { [roomId]: latest }, gaps: [roomId] });
    expect(back.all(roomMessages(roomId), from)).toHaveLength(0);

    // The client reloads history instead: the newest MAX_HISTORY messages remain.
    const page = await back.ok('get_history', { room_id: roomId, limit: 1000 });
    const seqs = (page.messages as Array<{ seq: number }>).map((m) => m.seq);
    expect(seqs).toEqual(Array.from({ length: MAX_HISTORY }, (_, i) => latest - MAX_HISTORY + 1 + i));
  });
});

describe('rate limit, token expiry, typing on disconnect (typing_timeout 5 s)', () => {
  let lim: TestApp;

  beforeAll(async () => {
    lim = await startDemoApp({
      JWT_SECRET: SECRET,
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '2',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '5',
      FORGE_STREAMING_AUTH_VALIDATE_ON_MESSAGE: 'true',
    });
  });

  afterAll(async () => {
    await pool.closeAll();
    await lim?.close();
  });

  it('over the rate limit: rate_limited with retry_after_ms, nothing delivered, the connection stays open', async () => {
    const [ca, cb] = await Promise.all([connect(user('fast'), {}, lim), connect(user('calm'), {}, lim)]);
    const roomId = await createRoom(ca);
    await cb.ok('join_room', { room_id: roomId });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        ca.request('send_message', { room_id: roomId, content: `burst-${i}` }),
      ),
    );
    const acked = answers.filter((e) => e.type === 'ack');
    const limited = answers.filter((e) => e.type === 'error');
    expect(acked.length).toBeGreaterThanOrEqual(4);
    expect(acked.length).toBeLessThanOrEqual(7);
    expect(limited.length).toBe(10 - acked.length);
    for (const e of limited) {
      expect(e.data).toMatchObject({ code: 'rate_limited', retry_after_ms: expect.any(Number) });
      expect(e.data.retry_after_ms).toBeGreaterThan(0);
    }
    // Exactly the accepted messages were delivered.
    await cb.waitForCount(roomMessages(roomId), acked.length);
    await cb.expectNone((e) => roomMessages(roomId)(e) && e.data.seq > acked.length, 300);
    expect(ca.isOpen).toBe(true);
    expect((await ca.request('ping')).type).toBe('pong');
    // The limit is per user: the other member is not affected.
    expect((await cb.request('send_message', { room_id: roomId, content: 'calm one' })).type).toBe('ack');
    // After the advertised wait, requests go through again.
    await eventually(
      async () => expect(await ca.ok('send_message', { room_id: roomId, content: 'later' })).toBeTruthy(),
      4000,
      250,
    );
  });

  it('typing stops as soon as the typist`s last connection closes, well before typing_timeout', async () => {
    const typist = user('typist');
    const [ca, cb] = await Promise.all([connect(user('reader'), {}, lim), connect(typist, {}, lim)]);
    const roomId = await createRoom(ca);
    await cb.ok('join_room', { room_id: roomId });
    await cb.ok('start_typing', { room_id: roomId });
    await ca.waitFor((e) => e.type === 'typing' && e.data.user_id === typist && e.data.typing === true);
    const closedAt = Date.now();
    await cb.close();
    await ca.waitFor(
      (e) => e.type === 'typing' && e.data.user_id === typist && e.data.typing === false,
      4500,
    );
    expect(Date.now() - closedAt).toBeLessThan(4000);
  });

  it('with validate_on_message, a token expiring mid-connection closes the socket with 4401 (within 5 s of exp)', async () => {
    const exp = now() + 2;
    const token = await signToken(SECRET, { sub: user('brief'), exp });
    const c = await pool.connect(lim.wsUrl, { token });
    expect((await c.request('ping')).type).toBe('pong');
    const info = await c.waitForClose(9000);
    expect(info.code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(Date.now()).toBeLessThanOrEqual(exp * 1000 + 5000);
  });
});

describe('dead peers and shutdown', () => {
  let hb: TestApp;

  beforeAll(async () => {
    hb = await startDemoApp({
      JWT_SECRET: SECRET,
      FORGE_STREAMING_PING_INTERVAL: '1',
      FORGE_STREAMING_PONG_TIMEOUT: '1',
    });
  });

  afterAll(async () => {
    await pool.closeAll();
    await hb?.close();
  });

  it('terminates a peer that stops answering pings; stats and presence follow; live peers stay', async () => {
    const healthyUser = user('alive');
    const deadUser = user('dead');
    const healthy = await connect(healthyUser, {}, hb);
    expect(healthy.connected.data.ping_interval_ms).toBe(1000);
    const dead = await connect(deadUser, { autoPong: false }, hb);
    const roomId = await createRoom(healthy);
    await dead.ok('join_room', { room_id: roomId });
    await eventually(async () => expect(await activeConnections(hb)).toBe(2));

    const info = await dead.waitForClose(8000);
    expect(info.code).toBe(1006); // terminated: no close handshake
    await eventually(async () => expect(await activeConnections(hb)).toBe(1), 3000);
    const offline = await healthy.waitFor(
      (e) => e.type === 'presence' && e.data.user_id === deadUser && e.data.status === 'offline',
    );
    expect(offline.data.last_seen).toMatch(ISO_UTC);

    // The healthy peer has been through several ping rounds and is still served.
    expect(healthy.isOpen).toBe(true);
    expect((await healthy.request('ping')).type).toBe('pong');
  });

  it('graceful shutdown closes open sockets with 1001', async () => {
    const sd = await startDemoApp({ JWT_SECRET: SECRET });
    try {
      const c1 = await connect(user('sd'), {}, sd);
      const c2 = await connect(user('sd'), {}, sd);
      await c1.ok('create_room', { name: 'closing' });
      // A frame queued just before shutdown is flushed before the close.
      const manager = sd.app.get(StreamingManager);
      await manager.sendToUser(c1.connected.data.user_id as string, 'farewell', { bye: true });
      await sd.close();
      expect(await c1.waitForClose(5000)).toMatchObject({ code: 1001 });
      expect(c1.all(isType('farewell'))).toEqual([{ type: 'farewell', data: { bye: true } }]);
      expect(await c2.waitForClose(5000)).toMatchObject({ code: 1001 });
    } finally {
      await sd.close();
    }
  });
});

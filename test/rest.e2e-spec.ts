/**
 * The demo app's HTTP side over real sockets: login, the room REST API (and
 * that it acts on WebSocket connections), health, stats and metrics.
 * PROTOCOL.md section 1.
 */
import { jwtVerify } from 'jose';
import {
  activeConnections,
  eventually,
  metricValue,
  signToken,
  startDemoApp,
  type HttpResponse,
  type TestApp,
} from './support/app';
import { ClientPool, isMessage, type Envelope, type Json, type WsClient } from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'rest-e2e-secret-93b7d2-5e0a8c1f47b6';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let app: TestApp;
const pool = new ClientPool();

beforeAll(async () => {
  app = await startDemoApp({
    JWT_SECRET: SECRET,
    FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
    FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
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
const user = (prefix: string): string => `${prefix}-${++counter}`;

/** A logged-in user: name and token. */
async function login(prefix: string): Promise<{ name: string; token: string }> {
  const name = user(prefix);
  return { name, token: await app.login(name) };
}

function ws(token: string): Promise<WsClient> {
  return pool.connect(app.wsUrl, { token });
}

/** Nest's error shape with the given status. */
function expectError(res: HttpResponse, status: number, error: string): void {
  expect(res.status).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/application\/json/);
  expect(res.json).toEqual(expect.objectContaining({ statusCode: status, error }));
  const message: unknown = res.json.message;
  if (Array.isArray(message)) {
    expect(message.length).toBeGreaterThan(0);
    for (const m of message) expect(typeof m).toBe('string');
  } else {
    expect(typeof message).toBe('string');
    expect((message as string).length).toBeGreaterThan(0);
  }
}

async function createRoom(token: string, body: Record<string, unknown> = { name: 'room' }): Promise<Json> {
  const res = await app.http('POST', '/api/rooms', { token, body });
  expect(res.status).toBe(201);
  return res.json;
}

describe('POST /api/auth/login', () => {
  it('issues a JWT for the name (sub, sid, exp) signed with JWT_SECRET', async () => {
    const res = await app.http('POST', '/api/auth/login', { body: { username: 'carol.smith@example' } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ token: expect.any(String), user_id: 'carol.smith@example' });
    const { payload } = await jwtVerify(res.json.token as string, new TextEncoder().encode(SECRET));
    expect(payload).toMatchObject({ sub: 'carol.smith@example', sid: expect.any(String) });
    expect(payload.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('answers 400 on a missing, empty, non-string or malformed username', async () => {
    for (const body of [{}, { username: '' }, { username: 42 }, { username: 'has spaces' }, { name: 'x' }]) {
      expectError(await app.http('POST', '/api/auth/login', { body }), 400, 'Bad Request');
    }
    expectError(await app.http('POST', '/api/auth/login'), 400, 'Bad Request');
  });
});

describe('rooms', () => {
  it('POST /api/rooms answers 201 with the room object; the caller is its owner', async () => {
    const { name, token } = await login('owner');
    const plain = await createRoom(token, { name: 'plain' });
    expect(plain).toEqual({
      id: expect.any(String),
      name: 'plain',
      description: '',
      private: false,
      owner: name,
      max_members: null,
      member_count: 1,
      created_at: expect.stringMatching(ISO_UTC),
      kind: 'room',
    });
    const full = await createRoom(token, { name: 'full', description: 'd', private: true, max_members: 5 });
    expect(full).toMatchObject({
      name: 'full',
      description: 'd',
      private: true,
      max_members: 5,
      owner: name,
    });
    expect(full.id).not.toBe(plain.id);

    const details = await app.http('GET', `/api/rooms/${plain.id}`, { token });
    expect(details.status).toBe(200);
    expect(details.json.members).toEqual([{ user_id: name, role: 'owner' }]);
  });

  it('POST /api/rooms validates its body (400) and needs a valid token (401)', async () => {
    const { token } = await login('val');
    for (const body of [
      {},
      { name: '' },
      { name: 5 },
      { name: 'x', private: 'yes' },
      { name: 'x', max_members: 0 },
    ]) {
      expectError(await app.http('POST', '/api/rooms', { token, body }), 400, 'Bad Request');
    }
    expectError(await app.http('POST', '/api/rooms', { body: { name: 'x' } }), 401, 'Unauthorized');
    const forged = await signToken('wrong-secret', { sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 });
    expectError(
      await app.http('POST', '/api/rooms', { token: forged, body: { name: 'x' } }),
      401,
      'Unauthorized',
    );
    const expired = await signToken(SECRET, { sub: 'x', exp: Math.floor(Date.now() / 1000) - 60 });
    expectError(await app.http('GET', '/api/rooms', { token: expired }), 401, 'Unauthorized');
    // ?token= works as well as the header.
    const viaQuery = await app.http('GET', `/api/rooms?token=${encodeURIComponent(token)}`);
    expect(viaQuery.status).toBe(200);
  });

  it('GET /api/rooms lists public rooms and only the private rooms the caller belongs to', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const pub = await createRoom(a.token, { name: 'public' });
    const priv = await createRoom(a.token, { name: 'secret', private: true });

    const ofA = await app.http('GET', '/api/rooms', { token: a.token });
    expect(ofA.status).toBe(200);
    const idsA = (ofA.json.rooms as Array<{ id: string }>).map((r) => r.id);
    expect(idsA).toEqual(expect.arrayContaining([pub.id, priv.id]));

    const ofB = await app.http('GET', '/api/rooms', { token: b.token });
    const idsB = (ofB.json.rooms as Array<{ id: string }>).map((r) => r.id);
    expect(idsB).toContain(pub.id);
    expect(idsB).not.toContain(priv.id);
    expect((ofB.json.rooms as Array<{ id: string }>).find((r) => r.id === pub.id)).toEqual(pub);

    expectError(await app.http('GET', `/api/rooms/${priv.id}`, { token: b.token }), 403, 'Forbidden');
    expectError(await app.http('POST', `/api/rooms/${priv.id}/join`, { token: b.token }), 403, 'Forbidden');
    expectError(await app.http('GET', '/api/rooms'), 401, 'Unauthorized');
  });

  it('GET /api/rooms/:id returns the room with members and roles; unknown rooms are 404', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const room = await createRoom(a.token, { name: 'roles' });
    expect((await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token })).status).toBe(200);
    const res = await app.http('GET', `/api/rooms/${room.id}`, { token: b.token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ...room, member_count: 2, members: expect.any(Array) });
    expect(res.json.members).toHaveLength(2);
    expect(res.json.members).toEqual(
      expect.arrayContaining([
        { user_id: a.name, role: 'owner' },
        { user_id: b.name, role: 'member' },
      ]),
    );
    expectError(await app.http('GET', '/api/rooms/no-such-room', { token: a.token }), 404, 'Not Found');
    expectError(await app.http('POST', '/api/rooms/no-such-room/join', { token: a.token }), 404, 'Not Found');
    expectError(
      await app.http('POST', '/api/rooms/no-such-room/leave', { token: a.token }),
      404,
      'Not Found',
    );
    expectError(
      await app.http('GET', '/api/rooms/no-such-room/history', { token: a.token }),
      404,
      'Not Found',
    );
  });

  it('a malformed JSON body answers 400 and an oversized body 413, both in the JSON error shape', async () => {
    const { token } = await login('big');
    const malformed = await app.http('POST', '/api/rooms', {
      token,
      headers: { 'Content-Type': 'application/json' },
      rawBody: '{"name": ',
    });
    expectError(malformed, 400, 'Bad Request');
    const huge = await app.http('POST', '/api/rooms', {
      token,
      body: { name: 'x', description: 'y'.repeat(300_000) },
    });
    expectError(huge, 413, 'Payload Too Large');
  });

  it('a full room answers 409 on join', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const room = await createRoom(a.token, { name: 'tiny', max_members: 1 });
    expectError(await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token }), 409, 'Conflict');
  });

  it('REST join and leave act on WebSocket membership, with the same events', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const [ca, cb] = await Promise.all([ws(a.token), ws(b.token)]);
    const room = await createRoom(a.token, { name: 'rest-joined' });
    const roomMsg = (content: string) => (e: Envelope) => isMessage(content)(e) && e.data.room_id === room.id;

    const join = await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token });
    expect(join.status).toBe(200);
    expect(join.json).toMatchObject({ room_id: room.id, members: expect.any(Array) });
    const joined = await cb.waitFor((e) => e.type === 'room_joined' && e.data.room_id === room.id);
    expect(joined.data.members).toEqual(expect.arrayContaining([{ user_id: b.name, role: 'member' }]));
    expect((await ca.waitFor((e) => e.type === 'user_joined' && e.data.room_id === room.id)).data).toEqual({
      room_id: room.id,
      user_id: b.name,
    });

    // The connection opened before the REST join receives the room's messages.
    await ca.ok('send_message', { room_id: room.id, content: 'after rest join' });
    await cb.waitFor(roomMsg('after rest join'));
    const sent = await cb.ok('send_message', { room_id: room.id, content: 'b over ws' });
    expect((await ca.waitFor(roomMsg('b over ws'))).data).toMatchObject({ user_id: b.name, seq: sent.seq });

    // Joining again answers 200 and tells nobody.
    const mark = ca.envelopes.length;
    expect((await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token })).status).toBe(200);
    await ca.expectNone((e) => e.type === 'user_joined', 300, mark);

    const leave = await app.http('POST', `/api/rooms/${room.id}/leave`, { token: b.token });
    expect(leave.status).toBe(200);
    expect(leave.json).toEqual({ room_id: room.id });
    await cb.waitFor((e) => e.type === 'room_left' && e.data.room_id === room.id);
    expect((await ca.waitFor((e) => e.type === 'user_left' && e.data.room_id === room.id)).data).toEqual({
      room_id: room.id,
      user_id: b.name,
    });
    await ca.ok('send_message', { room_id: room.id, content: 'after rest leave' });
    await ca.waitFor(roomMsg('after rest leave'));
    await cb.expectNone(roomMsg('after rest leave'), 300);
    expect(await cb.request('send_message', { room_id: room.id, content: 'x' })).toMatchObject({
      type: 'error',
      data: { code: 'not_room_member' },
    });
    expectError(await app.http('POST', `/api/rooms/${room.id}/leave`, { token: b.token }), 403, 'Forbidden');
  });

  it('REST history equals WebSocket history, page for page; members only', async () => {
    const a = await login('ann');
    const outsider = await login('eve');
    const ca = await ws(a.token);
    const room = await createRoom(a.token, { name: 'history' });
    for (let i = 1; i <= 12; i++) {
      await ca.ok('send_message', { room_id: room.id, content: `m${i}`, metadata: { i } });
    }
    const pages: Array<Record<string, number>> = [
      {},
      { limit: 5 },
      { limit: 5, before: 10 },
      { after: 3, limit: 4 },
      { after: 3, before: 6 },
      { after: 12 },
    ];
    for (const q of pages) {
      const query = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)])).toString();
      const rest = await app.http('GET', `/api/rooms/${room.id}/history${query ? `?${query}` : ''}`, {
        token: a.token,
      });
      expect(rest.status).toBe(200);
      const viaWs = await ca.ok('get_history', { room_id: room.id, ...q });
      expect(rest.json).toEqual({ messages: viaWs.messages });
    }
    const all = await app.http('GET', `/api/rooms/${room.id}/history`, { token: a.token });
    expect((all.json.messages as Array<{ seq: number }>).map((m) => m.seq)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]);
    expect(all.json.messages[0]).toMatchObject({ content: 'm1', metadata: { i: 1 }, user_id: a.name });

    expectError(
      await app.http('GET', `/api/rooms/${room.id}/history`, { token: outsider.token }),
      403,
      'Forbidden',
    );
    expectError(await app.http('GET', `/api/rooms/${room.id}/history`), 401, 'Unauthorized');
    for (const q of ['limit=-1', 'limit=abc', 'before=1.5']) {
      expectError(
        await app.http('GET', `/api/rooms/${room.id}/history?${q}`, { token: a.token }),
        400,
        'Bad Request',
      );
    }
  });

  // PROTOCOL.md section 1 lists these endpoints.
  it('POST /api/rooms/:id/invitations lets an invited user join a private room', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const cb = await ws(b.token);
    const priv = await createRoom(a.token, { name: 'invite-only', private: true });
    const invite = await app.http('POST', `/api/rooms/${priv.id}/invitations`, {
      token: a.token,
      body: { user_id: b.name },
    });
    expect([200, 201]).toContain(invite.status);
    expect((await cb.waitFor((e) => e.type === 'room_invitation')).data).toEqual({
      room_id: priv.id,
      room_name: 'invite-only',
      invited_by: a.name,
    });
    expect((await app.http('POST', `/api/rooms/${priv.id}/join`, { token: b.token })).status).toBe(200);
    const list = await app.http('GET', '/api/rooms', { token: b.token });
    expect((list.json.rooms as Array<{ id: string }>).map((r) => r.id)).toContain(priv.id);
  });

  it('POST /api/rooms/:id/moderation kicks a member', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const cb = await ws(b.token);
    const room = await createRoom(a.token, { name: 'moderated' });
    expect((await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token })).status).toBe(200);
    const kick = await app.http('POST', `/api/rooms/${room.id}/moderation`, {
      token: a.token,
      body: { action: 'kick', target_id: b.name, reason: 'test' },
    });
    expect([200, 201]).toContain(kick.status);
    await cb.waitFor((e) => e.type === 'member_kicked' && e.data.target_id === b.name);
    const details = await app.http('GET', `/api/rooms/${room.id}`, { token: a.token });
    expect((details.json.members as Array<{ user_id: string }>).map((m) => m.user_id)).toEqual([a.name]);
    // A member may not moderate the owner.
    expect((await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token })).status).toBe(200);
    expectError(
      await app.http('POST', `/api/rooms/${room.id}/moderation`, {
        token: b.token,
        body: { action: 'kick', target_id: a.name },
      }),
      403,
      'Forbidden',
    );
  });

  it('a ban over REST keeps the user out over REST and WebSocket', async () => {
    const a = await login('ann');
    const b = await login('bob');
    const cb = await ws(b.token);
    const room = await createRoom(a.token, { name: 'banned' });
    expect((await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token })).status).toBe(200);
    const ban = await app.http('POST', `/api/rooms/${room.id}/moderation`, {
      token: a.token,
      body: { action: 'ban', target_id: b.name, reason: 'spam' },
    });
    expect([200, 201]).toContain(ban.status);
    expect((await cb.waitFor((e) => e.type === 'member_banned')).data).toMatchObject({
      room_id: room.id,
      target_id: b.name,
      moderator_id: a.name,
      reason: 'spam',
    });
    const rejoin = await app.http('POST', `/api/rooms/${room.id}/join`, { token: b.token });
    expectError(rejoin, 403, 'Forbidden');
    expect(rejoin.json.code).toBe('banned');
    expect(await cb.request('join_room', { room_id: room.id })).toMatchObject({
      type: 'error',
      data: { code: 'banned' },
    });
    expect(await cb.request('send_message', { room_id: room.id, content: 'let me in' })).toMatchObject({
      type: 'error',
    });
    expectError(await app.http('GET', `/api/rooms/${room.id}/history`, { token: b.token }), 403, 'Forbidden');
  });
});

describe('observability', () => {
  it('health endpoints answer 200 with Terminus bodies', async () => {
    const stats = await app.http('GET', '/_/streaming/stats');
    const nodeId = stats.json.node_id as string;
    expect(nodeId).toEqual(expect.any(String));

    const all = await app.http('GET', '/_/health/streaming');
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({
      status: 'ok',
      info: { streaming: { status: 'up', node_id: nodeId }, backend: { status: 'up', kind: 'local' } },
    });
    const backend = await app.http('GET', '/_/health/streaming/backend');
    expect(backend.status).toBe(200);
    expect(backend.json).toMatchObject({ status: 'ok', info: { backend: { status: 'up' } } });
    const distributed = await app.http('GET', '/_/health/streaming/distributed');
    expect(distributed.status).toBe(200);
    expect(distributed.json).toMatchObject({ status: 'ok', info: { distributed: { status: 'up' } } });
    const nodes = distributed.json.info.distributed.nodes as Array<{ node_id: string }>;
    expect(nodes.map((n) => n.node_id)).toEqual([nodeId]);
  });

  it('/_/streaming/stats counts active connections exactly, and rooms', async () => {
    await eventually(async () => expect(await activeConnections(app)).toBe(0));
    const first = await app.http('GET', '/_/streaming/stats');
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      active_connections: 0,
      total_rooms: expect.any(Number),
      total_channels: expect.any(Number),
      messages_per_second: expect.any(Number),
      node_id: expect.any(String),
    });

    const a = await login('ann');
    const b = await login('bob');
    const c1 = await ws(a.token);
    await eventually(async () => expect(await activeConnections(app)).toBe(1));
    const c2 = await ws(a.token);
    await ws(b.token);
    await eventually(async () => expect(await activeConnections(app)).toBe(3));
    await c1.close();
    await eventually(async () => expect(await activeConnections(app)).toBe(2));
    c2.terminate();
    await eventually(async () => expect(await activeConnections(app)).toBe(1));
    await pool.closeAll();
    await eventually(async () => expect(await activeConnections(app)).toBe(0));

    await createRoom(a.token, { name: 'counted' });
    const after = await app.http('GET', '/_/streaming/stats');
    expect(after.json.total_rooms).toBe(first.json.total_rooms + 1);
  });

  it('/metrics is Prometheus text with streaming_ names; streaming_messages_in_total grows with traffic', async () => {
    const before = await app.http('GET', '/metrics');
    expect(before.status).toBe(200);
    expect(String(before.headers['content-type'])).toMatch(/^text\/plain/);
    expect(before.text).toMatch(/^# TYPE streaming_messages_in_total counter$/m);
    const names = before.text
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][\w:]*/.exec(l)?.[0]);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(n).toMatch(/^streaming_/);

    const sendsBefore = metricValue(before.text, 'streaming_messages_in_total', 'type="send_message"');
    const totalBefore = metricValue(before.text, 'streaming_messages_in_total');
    const a = await login('ann');
    const ca = await ws(a.token);
    const room = await createRoom(a.token, { name: 'metered' });
    for (const content of ['1', '2', '3']) await ca.ok('send_message', { room_id: room.id, content });

    const after = await app.http('GET', '/metrics');
    expect(metricValue(after.text, 'streaming_messages_in_total', 'type="send_message"')).toBe(
      sendsBefore + 3,
    );
    expect(metricValue(after.text, 'streaming_messages_in_total')).toBeGreaterThanOrEqual(totalBefore + 3);
    expect(metricValue(after.text, 'streaming_connections', 'transport="ws"')).toBe(
      await activeConnections(app),
    );
  });

  it('GET / serves the demo page', async () => {
    const res = await app.http('GET', '/');
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/text\/html/);
  });
});

/**
 * The server API of PROTOCOL.md §10 (issue 14), over real HTTP: on one local
 * node, and on two nodes sharing a real redis-server, where every call is
 * made on node A and its effect checked on connections of node B.
 */
import { Redis } from 'ioredis';
import { StreamingModule, type StreamingModuleOptions } from '@nest-streaming/streaming';
import { eventually, signToken, startStreamingApp, type HttpResponse, type TestApp } from './support/app';
import { startRedisServer, type RedisServerHandle } from './support/redis-server';
import { ClientPool } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'server-api-e2e-secret-3b1d7e99c2f04a61';
const KEY = 'key-one-0123456789abcdef';
const ROTATED = 'key-two-fedcba9876543210';

const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let users = 0;
const fresh = (name: string): string => `${name}-${++users}-${Date.now()}`;
const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

async function startNode(config: Parameters<typeof StreamingModule.forRoot>[0]): Promise<TestApp> {
  const t = await startStreamingApp({ historyStore: 'memory', auth: { jwtSecret: SECRET }, ...config });
  apps.push(t);
  return t;
}

const api = (app: TestApp, method: string, path: string, body?: unknown, key = KEY): Promise<HttpResponse> =>
  app.http(method, `/_/streaming/api${path}`, {
    body,
    headers: key === '' ? {} : { authorization: `apikey ${key}` },
  });

describe('server API switched off', () => {
  it('answers 404 on every route while no api_key is configured, whatever the header', async () => {
    const app = await startNode({});
    for (const [method, path] of [
      ['POST', '/publish'],
      ['POST', '/rooms/r/messages'],
      ['POST', '/users/u/disconnect'],
      ['GET', '/rooms/r/presence'],
      ['GET', '/rooms/r/history'],
    ]) {
      expect((await api(app, method, path, { channel: 'a', data: {} })).status).toBe(404);
      expect((await api(app, method, path, { channel: 'a', data: {} }, '')).status).toBe(404);
    }
  });

  it('moves with routes.api and the prefix; routes.api false removes it even with a key', async () => {
    const moved = await startNode({ apiKey: [KEY], routes: { prefix: 'rt', api: 'ops/api' } });
    const ok = await moved.http('POST', '/rt/ops/api/publish', {
      body: { channel: 'a', data: {} },
      headers: { authorization: `apikey ${KEY}` },
    });
    expect(ok.status).toBe(200);
    expect((await api(moved, 'POST', '/publish', { channel: 'a', data: {} })).status).toBe(404);
    const off = await startNode({ apiKey: [KEY], routes: { api: false } });
    expect((await api(off, 'POST', '/publish', { channel: 'a', data: {} })).status).toBe(404);
  });

  it('refuses a key shorter than 16 characters at start-up, naming the option', async () => {
    await expect(startNode({ apiKey: ['short'] })).rejects.toThrow(/apiKey/);
  });
});

describe.each(['local', 'redis'] as const)('server API (%s)', (kind) => {
  let redis: RedisServerHandle | undefined;
  let run = 0;

  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  /** Node A takes the API calls; node B holds the clients (the same node on `local`). */
  async function nodes(options: Partial<StreamingModuleOptions> = {}): Promise<[TestApp, TestApp]> {
    const base: StreamingModuleOptions = { apiKey: [KEY, ROTATED], ...options };
    if (kind === 'local') {
      const a = await startNode(base);
      return [a, a];
    }
    // Each test starts from an empty Redis: the REST rate limit counts per key, cluster-wide.
    const r = new Redis({ port: redis!.port, host: '127.0.0.1' });
    await r.flushall();
    r.disconnect();
    const prefix = `api${++run}-${Date.now()}`;
    const shared = { ...base, backend: 'redis' as const, backendUrls: [redis!.url] };
    return [
      await startNode({ ...shared, nodeId: `${prefix}-a` }),
      await startNode({ ...shared, nodeId: `${prefix}-b` }),
    ];
  }

  async function roomWith(app: TestApp, owner: string): Promise<string> {
    const c = await pool.connect(app.wsUrl, { token: await token(owner) });
    const ack = (await c.ok('create_room', { name: `room of ${owner}` })) as { room: { id: string } };
    return ack.room.id;
  }

  it('refuses a missing, malformed or wrong key with 401 and accepts every configured key', async () => {
    const [a] = await nodes();
    const body = { channel: 'news.x', data: { n: 1 } };
    const variants: Array<Record<string, string>> = [
      {},
      { authorization: KEY },
      { authorization: `Bearer ${KEY}` },
      { authorization: 'apikey nope-nope-nope-nope' },
    ];
    for (const headers of variants) {
      const res = await a.http('POST', '/_/streaming/api/publish', { body, headers });
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ statusCode: 401 });
    }
    expect((await api(a, 'POST', '/publish', body, KEY)).status).toBe(200);
    expect((await api(a, 'POST', '/publish', body, ROTATED)).status).toBe(200);
    expect((await api(a, 'POST', '/publish', body, KEY.toUpperCase())).status).toBe(401);
  });

  it('publish reaches pattern subscribers and private user channels on the other node, as the server', async () => {
    const [a, b] = await nodes();
    const alice = fresh('alice');
    const c = await pool.connect(b.wsUrl, { token: await token(alice) });
    await c.ok('subscribe', { channel: 'orders.*' });
    await c.ok('subscribe', { channel: `user.${alice}.notifications` });
    const res = await api(a, 'POST', '/publish', {
      channel: 'orders.eu',
      data: { id: 7 },
      metadata: { k: 'v' },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ channel: 'orders.eu' });
    expect(typeof (res.json as { timestamp: unknown }).timestamp).toBe('string');
    const got = await c.waitFor((e) => e.type === 'channel_message' && e.data?.channel === 'orders.eu');
    expect(got.data).toMatchObject({ data: { id: 7 }, metadata: { k: 'v' }, publisher_id: null });

    expect(
      (await api(a, 'POST', '/publish', { channel: `user.${alice}.notifications`, data: { hi: 1 } })).status,
    ).toBe(200);
    const note = await c.waitFor(
      (e) => e.type === 'channel_message' && e.data?.channel === `user.${alice}.notifications`,
    );
    expect(note.data).toMatchObject({ data: { hi: 1 }, publisher_id: null });
  });

  it('publish validates its body: 400 for a bad channel, non-object data or unknown fields', async () => {
    const [a] = await nodes();
    expect((await api(a, 'POST', '/publish', { channel: 'a.*', data: {} })).status).toBe(400);
    expect((await api(a, 'POST', '/publish', { channel: 'a', data: 'x' })).status).toBe(400);
    expect((await api(a, 'POST', '/publish', { channel: 'a', data: {}, extra: 1 })).status).toBe(400);
    expect((await api(a, 'POST', '/publish', {})).status).toBe(400);
  });

  it('posts a room message with seq, delivered to members on the other node, in history and resumable', async () => {
    const [a, b] = await nodes();
    const owner = fresh('owner');
    const roomId = await roomWith(b, owner);
    const member = await pool.connect(b.wsUrl, { token: await token(owner) });
    const first = await member.ok('send_message', { room_id: roomId, content: 'from a user' });

    const res = await api(a, 'POST', `/rooms/${roomId}/messages`, {
      content: 'from the server',
      metadata: { via: 'api' },
    });
    expect(res.status).toBe(201);
    const msg = res.json as { id: string; seq: number; user_id: string; room_id: string };
    expect(msg).toMatchObject({
      room_id: roomId,
      user_id: 'system',
      content: 'from the server',
      metadata: { via: 'api' },
    });
    expect(msg.seq).toBe((first as { seq: number }).seq + 1);
    const got = await member.waitFor((e) => e.type === 'message' && e.data?.id === msg.id);
    expect(got.data).toMatchObject({ seq: msg.seq, user_id: 'system' });

    const asBot = await api(a, 'POST', `/rooms/${roomId}/messages`, {
      content: 'bot here',
      user_id: 'bot-7',
    });
    expect(asBot.json).toMatchObject({ user_id: 'bot-7', seq: msg.seq + 1 });

    // A member who was away resumes past them, gap-free.
    const back = await pool.connect(b.wsUrl, { token: await token(owner) });
    await back.ok('resume', { rooms: { [roomId]: (first as { seq: number }).seq } });
    const replayed = back
      .all((e) => e.type === 'message' && e.data?.room_id === roomId)
      .map((e) => e.data?.seq as number);
    expect(replayed).toEqual([msg.seq, msg.seq + 1]);

    const hist = await api(a, 'GET', `/rooms/${roomId}/history?limit=2`);
    expect(hist.status).toBe(200);
    expect((hist.json as { messages: Array<{ content: string }> }).messages.map((m) => m.content)).toEqual([
      'from the server',
      'bot here',
    ]);
    const after = await api(a, 'GET', `/rooms/${roomId}/history?after=${msg.seq}`);
    expect((after.json as { messages: Array<{ seq: number }> }).messages.map((m) => m.seq)).toEqual([
      msg.seq + 1,
    ]);
  });

  it('posts a thread reply with reply_to: members get it and thread_updated, get_thread lists it', async () => {
    const [a, b] = await nodes();
    const owner = fresh('owner');
    const roomId = await roomWith(b, owner);
    const member = await pool.connect(b.wsUrl, { token: await token(owner) });
    const parent = (await member.ok('send_message', { room_id: roomId, content: 'deploy?' })) as {
      message_id: string;
    };

    const res = await api(a, 'POST', `/rooms/${roomId}/messages`, {
      content: 'deploy finished',
      user_id: 'deploy-bot',
      reply_to: parent.message_id,
    });
    expect(res.status).toBe(201);
    const reply = res.json as { id: string };
    expect(reply).toMatchObject({ reply_to: parent.message_id, thread_id: parent.message_id });
    const got = await member.waitFor((e) => e.type === 'message' && e.data?.id === reply.id);
    expect(got.data).toMatchObject({ reply_to: parent.message_id, thread_id: parent.message_id });
    const updated = await member.waitFor((e) => e.type === 'thread_updated');
    expect(updated.data).toMatchObject({ room_id: roomId, thread_id: parent.message_id, reply_count: 1 });
    const thread = (await member.ok('get_thread', { room_id: roomId, thread_id: parent.message_id })) as {
      messages: Array<{ content: string }>;
    };
    expect(thread.messages.map((m) => m.content)).toEqual(['deploy?', 'deploy finished']);

    // As for send_message: an unknown parent is message_not_found, a bad one 400; nothing is stored.
    const unknown = await api(a, 'POST', `/rooms/${roomId}/messages`, { content: 'x', reply_to: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'message_not_found' });
    expect((await api(a, 'POST', `/rooms/${roomId}/messages`, { content: 'x', reply_to: '' })).status).toBe(
      400,
    );
    const hist = await api(a, 'GET', `/rooms/${roomId}/history`);
    expect((hist.json as { messages: unknown[] }).messages).toHaveLength(2);
  });

  it('room routes answer 404 for an unknown room and 400 for bad input', async () => {
    const [a, b] = await nodes();
    expect((await api(a, 'POST', '/rooms/no-such-room/messages', { content: 'x' })).status).toBe(404);
    expect((await api(a, 'GET', '/rooms/no-such-room/presence')).status).toBe(404);
    expect((await api(a, 'GET', '/rooms/no-such-room/history')).status).toBe(404);
    const roomId = await roomWith(b, fresh('owner'));
    expect((await api(a, 'POST', `/rooms/${roomId}/messages`, { content: '' })).status).toBe(400);
    expect((await api(a, 'POST', `/rooms/${roomId}/messages`, { content: 5 })).status).toBe(400);
    expect((await api(a, 'POST', `/rooms/${roomId}/messages`, { content: 'x'.repeat(70_000) })).status).toBe(
      413,
    );
    expect((await api(a, 'GET', `/rooms/${roomId}/history?limit=-1`)).status).toBe(400);
    expect((await api(a, 'GET', `/rooms/${roomId}/history?limit=abc`)).status).toBe(400);
  });

  it('room presence lists every member with status and last_seen', async () => {
    const [a, b] = await nodes();
    const owner = fresh('owner');
    const roomId = await roomWith(b, owner);
    const res = await api(a, 'GET', `/rooms/${roomId}/presence`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ presence: [expect.objectContaining({ user_id: owner, status: 'online' })] });
  });

  it('disconnects every connection of a user on every node with 4403 and the reason, and nobody else', async () => {
    const [a, b] = await nodes();
    const bob = fresh('bob');
    const t = await token(bob);
    const onB = await pool.connect(b.wsUrl, { token: t });
    const onA = await pool.connect(a.wsUrl, { token: t });
    const other = await pool.connect(b.wsUrl, { token: await token(fresh('carol')) });
    const closedB = onB.waitForClose(5000);
    const closedA = onA.waitForClose(5000);
    const res = await api(a, 'POST', `/users/${bob}/disconnect`, { reason: 'account suspended' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ disconnected: 2 });
    expect(await closedB).toEqual({ code: 4403, reason: 'account suspended' });
    expect(await closedA).toEqual({ code: 4403, reason: 'account suspended' });
    expect((await other.request('ping')).type).toBe('pong');
    // The nodes drop their counts once their clean-up of the closed connections has run.
    await eventually(
      async () => {
        expect((await api(a, 'POST', `/users/${bob}/disconnect`, {})).json).toEqual({ disconnected: 0 });
      },
      5000,
      250,
    );
    expect((await api(a, 'POST', `/users/${bob}/disconnect`, { reason: 'x'.repeat(200) })).status).toBe(400);
  });

  it('is rate limited per key like any REST route: 429 with Retry-After, the other key unaffected', async () => {
    const [a] = await nodes({ rateLimit: { requestsPerSecond: 1, burstSize: 3 } });
    const body = { channel: 'rl.x', data: {} };
    const statuses: number[] = [];
    let limited: HttpResponse | undefined;
    for (let i = 0; i < 6; i++) {
      const res = await api(a, 'POST', '/publish', body);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(limited?.headers['retry-after']).toBeDefined();
    expect(limited?.json).toMatchObject({ statusCode: 429 });
    expect((await api(a, 'POST', '/publish', body, ROTATED)).status).toBe(200);
  });
});

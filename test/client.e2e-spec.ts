/**
 * @nest-streaming/client against the real demo app, run as a separate
 * process (built with `npm run build`) so it can be SIGKILLed and restarted
 * on the same port. The client uses the `ws` package as its WebSocket,
 * Node's global fetch, and the `eventsource` package for SSE.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import {
  StreamingClient,
  StreamingClientError,
  type EventSourceConstructor,
  type StreamingClientEvents,
  type StreamingClientOptions,
  type WireMessage,
} from '@nest-streaming/client';
import { buildDemoApp, demoProcess, gate, waitFor, type DemoProcess } from './support/client-server';

const JWT_SECRET = 'client-e2e-secret-2f8a61d0c7b3e945';
const BASE_ENV = {
  JWT_SECRET,
  FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
  FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
  FORGE_STREAMING_PING_INTERVAL: '1',
  FORGE_STREAMING_PONG_TIMEOUT: '1',
};

const clients: StreamingClient[] = [];

function makeClient(server: DemoProcess, options: Partial<StreamingClientOptions>): StreamingClient {
  const c = new StreamingClient({
    url: server.wsUrl,
    WebSocket,
    ackTimeoutMs: 5000,
    ...options,
  });
  clients.push(c);
  return c;
}

/** Everything one event delivered, in order. */
function record<K extends keyof StreamingClientEvents>(
  client: StreamingClient,
  event: K,
): Array<StreamingClientEvents[K]> {
  const out: Array<StreamingClientEvents[K]> = [];
  client.on(event, (p) => out.push(p as StreamingClientEvents[K]));
  return out;
}

/** The next `event` matching `pred`, or a rejection after `timeoutMs`. */
function next<K extends keyof StreamingClientEvents>(
  client: StreamingClient,
  event: K,
  pred: (p: StreamingClientEvents[K]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<StreamingClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(event, (p) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

const seqsOf = (messages: WireMessage[], room: string) =>
  messages.filter((m) => m.room_id === room).map((m) => m.seq);

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

beforeAll(() => buildDemoApp(), 300_000);

describe('client against the demo app (memory store)', () => {
  let server: DemoProcess;

  beforeAll(async () => {
    server = await demoProcess({
      ...BASE_ENV,
      FORGE_STREAMING_HISTORY_STORE: 'memory',
      FORGE_STREAMING_AUTH_VALIDATE_ON_MESSAGE: 'true',
    });
    await server.start();
  }, 30_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
  });

  it('connects, answers requests with their ack data and rejects with the server error codes', async () => {
    const alice = makeClient(server, { token: await server.login('alice') });
    const states = record(alice, 'state');
    const hello = await alice.connect();
    expect(hello).toMatchObject({
      user_id: 'alice',
      connection_id: expect.any(String),
      ping_interval_ms: 1000,
    });
    expect(alice.state).toBe('open');
    expect(states.map((s) => s.state)).toEqual(['connecting', 'open']);

    const { room } = await alice.createRoom({ name: 'acks', description: 'd' });
    expect(room).toMatchObject({
      name: 'acks',
      description: 'd',
      owner: 'alice',
      private: false,
      member_count: 1,
    });
    await expect(alice.sendMessage(room.id, 'one', { k: 1 })).resolves.toEqual({
      message_id: expect.any(String),
      seq: 1,
    });
    const history = await alice.getHistory(room.id, { limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.content, m.metadata])).toEqual([[1, 'one', { k: 1 }]]);
    await expect(alice.ping()).resolves.toEqual({ timestamp: expect.any(String) });

    const errorOf = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => e,
      );
    const notFound = await errorOf(alice.joinRoom('no-such-room'));
    expect(notFound).toBeInstanceOf(StreamingClientError);
    expect(notFound).toMatchObject({ code: 'room_not_found', data: { code: 'room_not_found' } });
    expect(typeof (notFound as StreamingClientError).message).toBe('string');

    const bob = makeClient(server, { token: await server.login('bob') });
    await bob.connect();
    expect(await errorOf(bob.sendMessage(room.id, 'x'))).toMatchObject({ code: 'not_room_member' });
    expect(await errorOf(bob.request('send_message', { room_id: room.id }))).toMatchObject({
      code: 'invalid_message',
    });
    expect(await errorOf(bob.request('no_such_request'))).toMatchObject({ code: 'unknown_type' });
    await bob.joinRoom(room.id);
    expect(await errorOf(bob.setRole(room.id, 'alice', 'member'))).toMatchObject({ code: 'forbidden' });
    expect(await errorOf(bob.editMessage(room.id, history.messages[0].id, 'hijack'))).toMatchObject({
      code: 'forbidden',
    });
    expect(await errorOf(bob.deleteMessage(room.id, 'nope'))).toMatchObject({ code: 'message_not_found' });
  });

  it('rejects with code timeout when no ack comes within ackTimeoutMs (server process stopped)', async () => {
    const alice = makeClient(server, { token: await server.login('alice'), ackTimeoutMs: 300 });
    await alice.connect();
    await server.kill('SIGSTOP');
    let err: unknown;
    try {
      const started = Date.now();
      err = await alice.getPresence({ user_ids: ['alice'] }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await server.kill('SIGCONT');
    }
    expect(err).toBeInstanceOf(StreamingClientError);
    expect(err).toMatchObject({ code: 'timeout' });
    // The connection survives; the late ack is ignored and later requests work.
    await expect(
      alice.request('get_presence', { user_ids: ['alice'] }, { timeoutMs: 5000 }),
    ).resolves.toEqual({
      presence: [expect.objectContaining({ user_id: 'alice' })],
    });
  });

  it('on a 4401 token expiry reconnects with getToken(), stops when that token is refused, and resumes after connect() with a new token', async () => {
    const refused = makeClient(server, { token: 'not-a-jwt' });
    const refusedExpired = record(refused, 'auth_expired');
    await expect(refused.connect()).rejects.toMatchObject({ code: 'unauthorized' });
    expect(refused.state).toBe('closed');
    expect(refusedExpired).toHaveLength(1);

    const shortLived = await new SignJWT({ sid: 'short' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('dave')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(JWT_SECRET));
    let token = shortLived;
    const dave = makeClient(server, {
      getToken: () => token,
      reconnect: { initialDelayMs: 20, maxDelayMs: 50 },
    });
    const bob = makeClient(server, { token: await server.login('bob') });
    await Promise.all([dave.connect(), bob.connect()]);
    const { room } = await bob.createRoom({ name: 'expiry' });
    await dave.joinRoom(room.id);
    const messages = record(dave, 'message');
    await bob.sendMessage(room.id, 'before');
    await waitFor(() => expect(seqsOf(messages, room.id)).toEqual([1]));

    // Closed with 4401 at exp: with getToken the client reconnects for a fresh token, but this
    // getToken still returns the expired one, so the upgrade is refused (401) and the client stops.
    const closed = next(dave, 'disconnected', () => true, 10_000);
    const expired = next(dave, 'auth_expired', () => true, 10_000);
    expect(await closed).toMatchObject({ code: 4401 });
    expect(await expired).toEqual({ code: 401, reason: expect.any(String) });
    expect(dave.state).toBe('closed');
    const reconnecting = record(dave, 'reconnecting');
    await bob.sendMessage(room.id, 'while expired');
    const queued = dave.sendMessage(room.id, 'queued during expiry');
    await new Promise((r) => setTimeout(r, 300));
    expect(reconnecting).toEqual([]);

    token = await server.login('dave');
    await dave.connect();
    await expect(queued).resolves.toMatchObject({ seq: 3 });
    await waitFor(() =>
      expect(messages.map((m) => m.content)).toEqual(['before', 'while expired', 'queued during expiry']),
    );
  });

  it('delivers typed events for rooms, messages, reactions, typing, presence, channels, roles and moderation', async () => {
    const alice = makeClient(server, { token: await server.login('alice') });
    const bob = makeClient(server, { token: await server.login('bob') });
    const carol = makeClient(server, { token: await server.login('carol') });
    await Promise.all([alice.connect(), bob.connect(), carol.connect()]);
    const everything = record(alice, '*');

    const created = next(alice, 'room_created');
    const { room } = await alice.createRoom({ name: 'events' });
    expect(await created).toEqual({ room_id: room.id });

    const userJoined = next(alice, 'user_joined', (e) => e.room_id === room.id);
    const roomJoined = next(bob, 'room_joined', (e) => e.room_id === room.id);
    await bob.joinRoom(room.id);
    expect(await userJoined).toEqual({ room_id: room.id, user_id: 'bob' });
    expect((await roomJoined).members).toEqual(
      expect.arrayContaining([
        { user_id: 'alice', role: 'owner' },
        { user_id: 'bob', role: 'member' },
      ]),
    );

    const typing = next(alice, 'typing');
    await bob.startTyping(room.id);
    expect(await typing).toEqual({ room_id: room.id, user_id: 'bob', typing: true });
    const stopped = next(alice, 'typing', (t) => !t.typing);
    await bob.stopTyping(room.id);
    expect(await stopped).toEqual({ room_id: room.id, user_id: 'bob', typing: false });

    const aliceMsg = next(alice, 'message');
    const bobMsg = next(bob, 'message');
    const ack = await bob.sendMessage(room.id, 'hello', { lang: 'en' });
    const m = await aliceMsg;
    expect(m).toMatchObject({
      id: ack.message_id,
      seq: ack.seq,
      room_id: room.id,
      user_id: 'bob',
      content: 'hello',
      metadata: { lang: 'en' },
      reactions: {},
    });
    expect(await bobMsg).toEqual(m);

    const edited = next(alice, 'message_edited');
    await bob.editMessage(room.id, m.id, 'hello!');
    expect(await edited).toMatchObject({
      room_id: room.id,
      message_id: m.id,
      content: 'hello!',
      edited_by: 'bob',
    });

    const reacted = next(bob, 'reaction_added');
    await alice.addReaction(room.id, m.id, '👍');
    expect(await reacted).toEqual({ room_id: room.id, message_id: m.id, user_id: 'alice', reaction: '👍' });
    const unreacted = next(bob, 'reaction_removed');
    await alice.removeReaction(room.id, m.id, '👍');
    expect(await unreacted).toEqual({ room_id: room.id, message_id: m.id, user_id: 'alice', reaction: '👍' });

    const presence = next(alice, 'presence', (p) => p.user_id === 'bob' && p.status === 'busy');
    await bob.setPresence('busy', 'in a meeting');
    expect(await presence).toMatchObject({ user_id: 'bob', status: 'busy', custom: 'in a meeting' });
    const roomPresence = await alice.getPresence({ room_id: room.id });
    expect(roomPresence.presence.map((p) => p.user_id).sort()).toEqual(['alice', 'bob']);

    const role = next(bob, 'role_changed');
    await alice.setRole(room.id, 'bob', 'moderator');
    expect(await role).toEqual({ room_id: room.id, user_id: 'bob', role: 'moderator', changed_by: 'alice' });

    const deleted = next(alice, 'message_deleted');
    await bob.deleteMessage(room.id, m.id);
    expect(await deleted).toMatchObject({ room_id: room.id, message_id: m.id, deleted_by: 'bob' });

    // Channels with filters: only matching publications arrive.
    const channelMessages = record(alice, 'channel_message');
    await expect(alice.subscribe('alerts.*', { level: ['high', 'critical'] })).resolves.toEqual({
      channel: 'alerts.*',
    });
    await bob.publish('alerts.db', { level: 'low', n: 1 });
    await bob.publish('alerts.db', { level: 'high', n: 2 }, { source: 'test' });
    await bob.publish('other.db', { level: 'high', n: 3 });
    await waitFor(() => expect(channelMessages).toHaveLength(1));
    expect(channelMessages[0]).toMatchObject({
      channel: 'alerts.db',
      data: { level: 'high', n: 2 },
      metadata: { source: 'test' },
      publisher_id: 'bob',
      timestamp: expect.any(String),
    });
    await alice.unsubscribe('alerts.*');
    expect(alice.subscriptions.size).toBe(0);

    // Invitations to a private room, joins and leaves.
    const { room: secret } = await alice.createRoom({ name: 'secret', private: true });
    const invitation = next(carol, 'room_invitation');
    await alice.invite(secret.id, 'carol');
    expect(await invitation).toEqual({ room_id: secret.id, room_name: 'secret', invited_by: 'alice' });
    await carol.joinRoom(secret.id);
    const userLeft = next(alice, 'user_left', (e) => e.room_id === secret.id);
    const roomLeft = next(carol, 'room_left', (e) => e.room_id === secret.id);
    await carol.leaveRoom(secret.id);
    expect(await userLeft).toEqual({ room_id: secret.id, user_id: 'carol' });
    expect(await roomLeft).toMatchObject({ room_id: secret.id });

    // Moderation.
    await carol.joinRoom(room.id);
    const muted = next(carol, 'member_muted');
    await bob.moderate({ room_id: room.id, action: 'mute', target_id: 'carol', reason: 'calm down' });
    expect(await muted).toMatchObject({
      room_id: room.id,
      target_id: 'carol',
      moderator_id: 'bob',
      reason: 'calm down',
    });
    await expect(carol.sendMessage(room.id, 'let me talk')).rejects.toMatchObject({ code: 'muted' });
    const unmuted = next(carol, 'member_unmuted');
    await bob.moderate({ room_id: room.id, action: 'unmute', target_id: 'carol' });
    await unmuted;
    const carolSeq = (await carol.sendMessage(room.id, 'thanks')).seq;
    await waitFor(() => expect(carol.lastSeqs[room.id]).toBe(carolSeq));
    const kicked = next(carol, 'member_kicked');
    const kickedOut = next(carol, 'room_left', (e) => e.room_id === room.id);
    await bob.moderate({ room_id: room.id, action: 'kick', target_id: 'carol' });
    expect(await kicked).toMatchObject({ room_id: room.id, target_id: 'carol', moderator_id: 'bob' });
    expect(await kickedOut).toMatchObject({ room_id: room.id, reason: 'kicked' });
    expect(carol.lastSeqs[room.id]).toBeUndefined(); // a room left is not resumed
    const banned = next(alice, 'member_banned');
    await alice.moderate({ room_id: room.id, action: 'ban', target_id: 'carol' });
    expect(await banned).toMatchObject({ room_id: room.id, target_id: 'carol' });
    await expect(carol.joinRoom(room.id)).rejects.toMatchObject({ code: 'banned' });

    // The catch-all saw every event type delivered to alice (not acks).
    const types = new Set(everything.map((e) => e.type));
    expect(types).not.toContain('ack');
    for (const t of [
      'room_created',
      'user_joined',
      'typing',
      'message',
      'message_edited',
      'channel_message',
      'role_changed',
      'member_banned',
    ])
      expect(types).toContain(t);
  });
});

/** `streaming_errors_total{code="rate_limited"}` of the server's `/metrics`. */
async function rateLimitedRefusals(server: DemoProcess): Promise<number> {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('streaming_errors_total{code="rate_limited"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe.each([
  {
    limiter: 'the request limiter (token bucket, the demo defaults: burst 20, 10/s)',
    env: {
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '10',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '20',
      FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '100',
    },
  },
  {
    limiter: 'the message limiter (max_messages_per_second 10)',
    env: { FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '10' },
  },
])('client sending a burst over $limiter', ({ env }) => {
  let server: DemoProcess;
  const texts = Array.from({ length: 40 }, (_, i) => `burst ${i + 1}`);

  beforeAll(async () => {
    server = await demoProcess({ ...BASE_ENV, FORGE_STREAMING_HISTORY_STORE: 'memory', ...env });
    await server.start();
  }, 30_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
  });

  it('without retries (retryRateLimited: 0) part of the burst is refused with rate_limited', async () => {
    const carol = makeClient(server, { token: await server.login('carol'), retryRateLimited: 0 });
    await carol.connect();
    const { room } = await carol.createRoom({ name: 'no retries' });
    const results = await Promise.allSettled(texts.map((t) => carol.sendMessage(room.id, t)));
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(StreamingClientError);
      expect(r.reason).toMatchObject({ code: 'rate_limited', data: { retry_after_ms: expect.any(Number) } });
    }
  });

  it('loses no message: refused sends are retried after retry_after_ms, in order', async () => {
    const alice = makeClient(server, { token: await server.login('alice'), ackTimeoutMs: 10_000 });
    const bob = makeClient(server, { token: await server.login('bob') });
    await Promise.all([alice.connect(), bob.connect()]);
    const { room } = await alice.createRoom({ name: 'burst' });
    await bob.joinRoom(room.id);
    const received = record(bob, 'message');
    const refusalsBefore = await rateLimitedRefusals(server);

    const acks = await Promise.all(texts.map((t) => alice.sendMessage(room.id, t)));

    expect(await rateLimitedRefusals(server)).toBeGreaterThan(refusalsBefore); // the limit was hit
    expect(acks.map((a) => a.seq)).toEqual(texts.map((_, i) => i + 1));
    await waitFor(() => expect(received.map((m) => m.content)).toEqual(texts));
    expect(seqsOf(received, room.id)).toEqual(texts.map((_, i) => i + 1));
    const history = await bob.getHistory(room.id, { limit: 100 });
    expect(history.messages.map((m) => m.content)).toEqual(texts);
  }, 30_000);
});

describe('client reconnect across a server kill and restart (sqlite store)', () => {
  let server: DemoProcess;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'client-e2e-'));
    server = await demoProcess({
      ...BASE_ENV,
      FORGE_STREAMING_HISTORY_STORE: 'sqlite',
      FORGE_STREAMING_HISTORY_PATH: join(dir, 'chat.sqlite'),
    });
    await server.start();
  }, 30_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reconnects with backoff, re-subscribes, resumes exactly once in seq order, then sends the offline buffer', async () => {
    const aliceToken = await server.login('alice');
    const bobToken = await server.login('bob');
    // Alice's reconnect attempts wait at getToken() while `hold` is set: the test decides when she is back.
    let hold: { promise: Promise<void>; open: () => void } | null = null;
    let tokenCalls = 0;
    const alice = makeClient(server, {
      getToken: async () => {
        tokenCalls++;
        if (hold) await hold.promise;
        return aliceToken;
      },
      reconnect: { initialDelayMs: 100, maxDelayMs: 800, factor: 2 },
      offlineBufferSize: 3,
    });
    const bob = makeClient(server, { token: bobToken, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    await alice.connect();
    await bob.connect();

    const messages = record(alice, 'message');
    const states = record(alice, 'state');
    const reconnecting = record(alice, 'reconnecting');
    const disconnects = record(alice, 'disconnected');
    const gaps = record(alice, 'gap');
    const channel = record(alice, 'channel_message');

    const { room } = await alice.createRoom({ name: 'durable' });
    await bob.joinRoom(room.id);
    await alice.subscribe('news.*', { kind: 'sport' });
    for (const text of ['m1', 'm2', 'm3']) await bob.sendMessage(room.id, text);
    await waitFor(() => expect(seqsOf(messages, room.id)).toEqual([1, 2, 3]));
    expect(alice.lastSeqs[room.id]).toBe(3);

    // Kill the server: alice retries with growing, jittered delays while it is down.
    await server.kill('SIGKILL');
    await waitFor(() => expect(alice.state).toBe('reconnecting'));
    expect(disconnects[0]).toMatchObject({ code: 1006, will_reconnect: true });
    await waitFor(() => expect(reconnecting.length).toBeGreaterThanOrEqual(5), 10_000);
    reconnecting.forEach((r, i) => {
      expect(r.attempt).toBe(i + 1);
      expect(r.delay_ms).toBeGreaterThanOrEqual(0);
      expect(r.delay_ms).toBeLessThan(Math.min(800, 100 * 2 ** i));
    });
    expect(new Set(reconnecting.map((r) => r.delay_ms)).size).toBeGreaterThan(1);

    // Requests issued while reconnecting wait in the bounded offline buffer.
    const queued = ['q1', 'q2', 'q3'].map((t) => alice.sendMessage(room.id, t));
    await expect(alice.sendMessage(room.id, 'q4')).rejects.toMatchObject({ code: 'offline_buffer_full' });
    expect(alice.queuedRequests).toBe(3);

    // The server comes back with its rooms and history; bob writes while alice is still away.
    hold = gate();
    await server.start();
    await waitFor(() => expect(bob.state).toBe('open'), 10_000);
    for (const text of ['m4', 'm5', 'm6']) await bob.sendMessage(room.id, text);
    expect(alice.state).toBe('reconnecting');
    expect(seqsOf(messages, room.id)).toEqual([1, 2, 3]);

    // Let alice in: she resumes from seq 3 and then sends what she queued.
    const back = next(alice, 'state', (s) => s.state === 'open', 10_000);
    hold.open();
    hold = null;
    await back;
    expect(tokenCalls).toBeGreaterThan(reconnecting.length - 1); // a fresh token for every attempt
    const acks = await Promise.all(queued);
    expect(acks.map((a) => a.seq)).toEqual([7, 8, 9]);
    await waitFor(() => expect(seqsOf(messages, room.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(messages.filter((m) => m.room_id === room.id).map((m) => m.content)).toEqual([
      'm1',
      'm2',
      'm3',
      'm4',
      'm5',
      'm6',
      'q1',
      'q2',
      'q3',
    ]);
    expect(gaps).toEqual([]);
    expect(states.map((s) => s.state)).toEqual(['reconnecting', 'open']);

    // The channel subscription (with its filters) was restored on the new server process.
    await bob.publish('news.eu', { kind: 'politics' });
    await bob.publish('news.eu', { kind: 'sport', score: '2-1' });
    await waitFor(() => expect(channel).toHaveLength(1));
    expect(channel[0]).toMatchObject({ channel: 'news.eu', data: { kind: 'sport', score: '2-1' } });

    // Live traffic after the resume still arrives once.
    await bob.sendMessage(room.id, 'm10');
    await waitFor(() => expect(seqsOf(messages, room.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  }, 60_000);

  it('stops reconnecting after close()', async () => {
    const alice = makeClient(server, {
      token: await server.login('alice'),
      reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
    });
    await alice.connect();
    const reconnecting = record(alice, 'reconnecting');
    alice.close();
    expect(alice.state).toBe('closed');
    await new Promise((r) => setTimeout(r, 300));
    expect(reconnecting).toEqual([]);
    await expect(alice.ping()).rejects.toMatchObject({ code: 'not_connected' });
  });
});

describe('client in SSE mode (receive-only)', () => {
  let server: DemoProcess;
  let dir: string;
  let EventSourceImpl: EventSourceConstructor;

  beforeAll(async () => {
    // Not imported at the top: the package is a devDependency that may be missing; this suite then fails loudly.
    const name = 'eventsource';
    const mod = (await import(name)) as { EventSource?: EventSourceConstructor };
    if (!mod.EventSource)
      throw new Error('the eventsource package exports no EventSource (use eventsource@^3)');
    EventSourceImpl = mod.EventSource;
    dir = mkdtempSync(join(tmpdir(), 'client-sse-e2e-'));
    server = await demoProcess({
      ...BASE_ENV,
      FORGE_STREAMING_HISTORY_STORE: 'sqlite',
      FORGE_STREAMING_HISTORY_PATH: join(dir, 'chat.sqlite'),
    });
    await server.start();
  }, 30_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('receives room messages and resumes after a dropped stream without gaps or duplicates', async () => {
    const aliceToken = await server.login('alice');
    const bob = makeClient(server, {
      token: await server.login('bob'),
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    await bob.connect();
    const { room } = await bob.createRoom({ name: 'sse room' });

    let hold: { promise: Promise<void>; open: () => void } | null = null;
    const alice = makeClient(server, {
      url: server.baseUrl,
      transport: 'sse',
      EventSource: EventSourceImpl,
      getToken: async () => {
        if (hold) await hold.promise;
        return aliceToken;
      },
      sse: { rooms: [room.id] },
      reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
    });
    const messages = record(alice, 'message');
    const gaps = record(alice, 'gap');
    const joined = next(alice, 'room_joined', (e) => e.room_id === room.id);
    await expect(alice.connect()).resolves.toMatchObject({ user_id: 'alice' });
    await joined;
    await expect(alice.sendMessage(room.id, 'nope')).rejects.toMatchObject({ code: 'receive_only' });
    await expect(alice.subscribe('a.b')).rejects.toMatchObject({ code: 'receive_only' });

    for (const text of ['s1', 's2']) await bob.sendMessage(room.id, text);
    await waitFor(() => expect(seqsOf(messages, room.id)).toEqual([1, 2]));

    await server.kill('SIGKILL');
    await waitFor(() => expect(alice.state).toBe('reconnecting'));
    hold = gate();
    await server.start();
    await waitFor(() => expect(bob.state).toBe('open'), 10_000);
    for (const text of ['s3', 's4', 's5']) await bob.sendMessage(room.id, text);

    const back = next(alice, 'state', (s) => s.state === 'open', 10_000);
    const resumed = next(alice, 'resumed', () => true, 10_000);
    hold.open();
    hold = null;
    await back;
    expect(await resumed).toMatchObject({ rooms: { [room.id]: 5 } });
    await bob.sendMessage(room.id, 's6');
    await waitFor(() => expect(seqsOf(messages, room.id)).toEqual([1, 2, 3, 4, 5, 6]));
    expect(messages.map((m) => m.content)).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
    expect(gaps).toEqual([]);

    // History over REST (usable in SSE mode, e.g. after a gap).
    const history = await alice.fetchHistory(room.id, { limit: 3 });
    expect(history.map((m) => m.seq)).toEqual([4, 5, 6]);
  }, 60_000);
});

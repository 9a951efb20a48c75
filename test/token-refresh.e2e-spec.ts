/**
 * Token rotation against a real in-process app with `auth.validateOnMessage` (PROTOCOL.md
 * sections 2 and 10): `refresh_token` over a raw socket (ack, `forbidden`, `unauthorized`, the
 * 4401 close at the old `exp`), and @nest-streaming/client keeping a connection alive across
 * short-lived tokens: proactive refresh, or a reconnect with a fresh token after a 4401.
 */
import { Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import WebSocket from 'ws';
import {
  StreamingClient,
  type EventSourceConstructor,
  type StreamingClientEvents,
  type StreamingClientOptions,
  type WebSocketConstructor,
  type WireMessage,
} from '@nest-streaming/client';
import { StreamingModule, StreamingWsAdapter } from '@nest-streaming/streaming';
import { eventually, signToken, startNestApp, type TestApp } from './support/app';
import { ClientPool, isError, type Envelope, type Json } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'token-refresh-e2e-secret-5c1e8a93-d7f2b640';

const nowS = (): number => Math.floor(Date.now() / 1000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let users = 0;
/** A user id no other test uses. */
const fresh = (name: string): string => `${name}-${++users}`;

/** A JWT for `sub` living `lifetimeS` seconds (exp has a 1 s granularity: 2 to 3 s for 3). */
const tokenFor = (sub: string, lifetimeS: number): Promise<string> =>
  signToken(SECRET, { sub, exp: nowS() + lifetimeS });

let app: TestApp;
const pool = new ClientPool();
const clients: StreamingClient[] = [];

beforeAll(async () => {
  @Module({
    imports: [
      StreamingModule.forRoot({
        historyStore: 'memory',
        auth: { jwtSecret: SECRET, validateOnMessage: true },
        rateLimit: { requestsPerSecond: 1000, burstSize: 1000 },
      }),
    ],
  })
  class TokenRefreshTestModule {}
  app = await startNestApp(TokenRefreshTestModule, {
    configure: (a: NestExpressApplication) => a.useWebSocketAdapter(new StreamingWsAdapter(a)),
  });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  expect(await pool.closeAll()).toEqual([]);
});

afterAll(async () => {
  await app?.close();
});

/** Frames one client's sockets sent and received (the client's own WebSocket, tapped). */
interface Tap {
  sent: Array<{ type: string; id?: string; data?: Json }>;
  received: Envelope[];
}

/** The `ws` WebSocket, recording every envelope in both directions into `tap`. */
function tappedWebSocket(tap: Tap): WebSocketConstructor {
  return class TappedWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      const send = this.send.bind(this) as (data: string) => void;
      (this as unknown as { send: (data: string) => void }).send = (data: string) => {
        for (const line of data.split('\n')) tap.sent.push(JSON.parse(line) as Tap['sent'][number]);
        send(data);
      };
      this.on('message', (raw: WebSocket.RawData) => {
        for (const line of (raw as Buffer).toString('utf8').split('\n'))
          if (line.trim() !== '') tap.received.push(JSON.parse(line) as Envelope);
      });
    }
  };
}

function makeClient(options: Partial<StreamingClientOptions>): StreamingClient {
  const c = new StreamingClient({ url: app.wsUrl, WebSocket, ackTimeoutMs: 5000, ...options });
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

/** A public room of `ownerId` (a raw socket with a long-lived token) and a way to post in it. */
async function roomOf(
  ownerId: string,
): Promise<{ roomId: string; send: (content: string) => Promise<Json> }> {
  const owner = await pool.connect(app.wsUrl, { token: await tokenFor(ownerId, 600) });
  const roomId = String((await owner.ok('create_room', { name: 'rotation' })).room.id);
  return { roomId, send: (content) => owner.ok('send_message', { room_id: roomId, content }) };
}

const contents = (messages: WireMessage[], roomId: string): string[] =>
  messages.filter((m) => m.room_id === roomId).map((m) => m.content);

describe('refresh_token over a raw socket', () => {
  it('acks the new expiry, and the connection outlives the old exp', async () => {
    const sub = fresh('raw-ok');
    const firstExp = nowS() + 2;
    const c = await pool.connect(app.wsUrl, { token: await signToken(SECRET, { sub, exp: firstExp }) });
    const newExp = nowS() + 600;
    const ack = await c.ok('refresh_token', { token: await signToken(SECRET, { sub, exp: newExp }) });
    expect(ack).toEqual({ expires_at: new Date(newExp * 1000).toISOString() });
    // Well past the first exp (the server checks every second): still open, requests carried out.
    await sleep(Math.max(0, firstExp * 1000 - Date.now()) + 2500);
    expect(c.isOpen).toBe(true);
    expect((await c.request('get_presence', { user_ids: [sub] })).type).toBe('ack');
  });

  it("refuses another user's token (forbidden) and garbage (unauthorized); the old exp still closes it with 4401", async () => {
    const sub = fresh('raw-refused');
    const exp = nowS() + 3;
    const c = await pool.connect(app.wsUrl, { token: await signToken(SECRET, { sub, exp }) });

    const other = await c.request('refresh_token', { token: await tokenFor(fresh('mallory'), 600) });
    expect(other).toMatchObject({ type: 'error', data: { code: 'forbidden' } });
    const garbage = await c.request('refresh_token', { token: 'not-a-jwt' });
    expect(garbage).toMatchObject({ type: 'error', data: { code: 'unauthorized' } });
    const expired = await c.request('refresh_token', {
      token: await signToken(SECRET, { sub, exp: nowS() - 10 }),
    });
    expect(expired).toMatchObject({ type: 'error', data: { code: 'unauthorized' } });
    const wrongKey = await c.request('refresh_token', {
      token: await signToken('some-other-secret-of-at-least-32-bytes', { sub, exp: nowS() + 600 }),
    });
    expect(wrongKey).toMatchObject({ type: 'error', data: { code: 'unauthorized' } });
    expect(c.isOpen).toBe(true);

    // The refused refreshes changed nothing: closed at the old exp (generous bound: loaded machines).
    const info = await c.waitForClose(Math.max(0, exp * 1000 - Date.now()) + 10_000);
    expect(info.code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    expect(c.all(isError('forbidden'))).toHaveLength(1);
  });
});

describe('@nest-streaming/client with short-lived tokens', () => {
  it('refreshes before exp and stays connected well past it, receiving room messages', async () => {
    const sub = fresh('alice');
    const { roomId, send } = await roomOf(fresh('bob'));
    const tap: Tap = { sent: [], received: [] };
    const exps: number[] = [];
    const getToken = jest.fn(async () => {
      exps.push(nowS() + 3);
      return signToken(SECRET, { sub, exp: exps[exps.length - 1] });
    });
    const alice = makeClient({ getToken, WebSocket: tappedWebSocket(tap) });
    const disconnected = record(alice, 'disconnected');
    const expired = record(alice, 'auth_expired');
    const errors = record(alice, 'error');
    const messages = record(alice, 'message');

    const { connection_id } = await alice.connect();
    await alice.joinRoom(roomId);
    const firstExp = exps[0];
    const started = Date.now();
    const sentContents: string[] = [];
    // ~8 s of traffic: more than twice the tokens' lifetime.
    while (Date.now() - started < 8000) {
      const content = `m${sentContents.length + 1}`;
      await send(content);
      sentContents.push(content);
      await sleep(400);
    }
    expect(Date.now()).toBeGreaterThan(firstExp * 1000 + 4000);
    await eventually(() => expect(contents(messages, roomId)).toEqual(sentContents), 5000);
    // Its own requests are carried out too (the server would refuse them after an expiry).
    await expect(alice.sendMessage(roomId, 'alice still here')).resolves.toMatchObject({
      seq: sentContents.length + 1,
    });

    expect(disconnected).toEqual([]);
    expect(expired).toEqual([]);
    expect(errors).toEqual([]);
    expect(alice.state).toBe('open');
    expect(alice.connection?.connection_id).toBe(connection_id);
    // Refreshed several times, each refresh acked with the new token's exp.
    const refreshes = tap.sent.filter((e) => e.type === 'refresh_token');
    expect(refreshes.length).toBeGreaterThanOrEqual(3);
    expect(getToken.mock.calls.length).toBeGreaterThanOrEqual(refreshes.length + 1);
    const answers = refreshes.map((r) => tap.received.find((e) => e.id === r.id));
    const acked = answers.filter((a) => a?.type === 'ack');
    expect(acked.length).toBeGreaterThanOrEqual(refreshes.length - 1); // the last one may be in flight
    for (const a of acked)
      expect(exps.map((e) => new Date(e * 1000).toISOString())).toContain(a!.data.expires_at);
    expect(answers.filter((a) => a?.type === 'error')).toEqual([]);
    expect(tap.received.filter((e) => e.type === 'connected')).toHaveLength(1);
  });

  it('without getToken: closed with 4401 at exp, auth_expired, no reconnect', async () => {
    const sub = fresh('fixed');
    const alice = makeClient({ token: await tokenFor(sub, 2), reconnect: { initialDelayMs: 50 } });
    const expired = new Promise<StreamingClientEvents['auth_expired']>((resolve) =>
      alice.once('auth_expired', resolve),
    );
    const reconnecting = record(alice, 'reconnecting');
    await alice.connect();
    expect(await expired).toEqual({ code: 4401, reason: expect.any(String) });
    expect(alice.state).toBe('closed');
    await sleep(500);
    expect(reconnecting).toEqual([]);
  });

  it('without refresh but with getToken: after the 4401 close it reconnects with a fresh token and resumes', async () => {
    const sub = fresh('renew');
    const { roomId, send } = await roomOf(fresh('bob'));
    let issued = 0;
    // The first token lives 1 to 2 s; the one after the 4401 long.
    const getToken = jest.fn(() => tokenFor(sub, ++issued === 1 ? 2 : 600));
    const alice = makeClient({
      getToken,
      refreshBeforeExpMs: false,
      reconnect: { initialDelayMs: 300, maxDelayMs: 600 },
    });
    const expired = record(alice, 'auth_expired');
    const connected = record(alice, 'connected');
    const messages = record(alice, 'message');
    const dropped = new Promise<StreamingClientEvents['disconnected']>((resolve) =>
      alice.once('disconnected', resolve),
    );
    await alice.connect();
    await alice.joinRoom(roomId);
    await send('before');
    await eventually(() => expect(contents(messages, roomId)).toEqual(['before']));

    expect(await dropped).toEqual({ code: 4401, reason: expect.any(String), will_reconnect: true });
    await send('while away');
    await eventually(() => expect(alice.state).toBe('open'), 10_000);
    await send('after');
    await eventually(() => expect(contents(messages, roomId)).toEqual(['before', 'while away', 'after']));
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(connected).toHaveLength(2);
    expect(connected[1].connection_id).not.toBe(connected[0].connection_id);
    expect(expired).toEqual([]);
    await expect(alice.sendMessage(roomId, 'mine')).resolves.toMatchObject({ seq: 4 });
  });

  it('over SSE: the stream ends at exp, and the client comes back with a fresh token and resumes (last_event_id)', async () => {
    const name = 'eventsource'; // a devDependency, imported only here
    const { EventSource } = (await import(name)) as { EventSource: EventSourceConstructor };
    const sub = fresh('sse');
    const { roomId, send } = await roomOf(fresh('bob'));
    const getToken = jest.fn(() => tokenFor(sub, 3));
    const alice = makeClient({
      url: app.baseUrl,
      transport: 'sse',
      EventSource,
      getToken,
      sse: { rooms: [roomId] },
      reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
    });
    const expired = record(alice, 'auth_expired');
    const gaps = record(alice, 'gap');
    const messages = record(alice, 'message');
    const connected = record(alice, 'connected');
    const resumed = record(alice, 'resumed');
    await alice.connect();

    const started = Date.now();
    const sentContents: string[] = [];
    while (Date.now() - started < 7000) {
      const content = `s${sentContents.length + 1}`;
      await send(content);
      sentContents.push(content);
      await sleep(300);
    }
    await eventually(() => expect(contents(messages, roomId)).toEqual(sentContents), 10_000);
    // At least one expiry ended the stream; each reconnect took a new token.
    expect(connected.length).toBeGreaterThanOrEqual(2);
    expect(getToken.mock.calls.length).toBeGreaterThanOrEqual(connected.length);
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    expect(resumed.every((r) => r.rooms[roomId] !== undefined)).toBe(true);
    expect(expired).toEqual([]);
    expect(gaps).toEqual([]);
  });
});

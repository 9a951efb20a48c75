import { StreamingClient, orderMessages, type StreamingClientOptions } from './client';
import { StreamingClientError } from './errors';
import type { EventSourceLike, SseMessageEventLike, WebSocketLike } from './transports';
import type { ServerEnvelope, WireMessage } from '@nest-streaming/protocol';

/** A scripted WebSocket: the test plays the server. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: Array<{ type: string; id?: string; data?: Record<string, unknown> }> = [];
  onopen: ((ev: never) => void) | null = null;
  onmessage: ((ev: never) => void) | null = null;
  onclose: ((ev: never) => void) | null = null;
  onerror: ((ev: never) => void) | null = null;
  closedWith: { code?: number; reason?: string } | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    for (const line of data.split('\n')) this.sent.push(JSON.parse(line));
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // ---- server side
  accept(userId = 'alice'): void {
    this.readyState = 1;
    (this.onopen as ((e: unknown) => void) | null)?.({});
    this.push({
      type: 'connected',
      data: {
        connection_id: `c${FakeSocket.all.length}`,
        user_id: userId,
        session_id: 's',
        node_id: 'n',
        ping_interval_ms: 1000,
      },
    });
  }
  push(...envs: Array<{ type: string; id?: string; data: unknown }>): void {
    (this.onmessage as ((e: { data: string }) => void) | null)?.({
      data: envs.map((e) => JSON.stringify(e)).join('\n'),
    });
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    (this.onclose as ((e: unknown) => void) | null)?.({ code, reason });
  }
  fail(message: string): void {
    (this.onerror as ((e: unknown) => void) | null)?.({ message });
    this.drop(1006, '');
  }
  requests(type: string) {
    return this.sent.filter((e) => e.type === type);
  }
  request(type: string) {
    const r = this.requests(type);
    if (r.length === 0)
      throw new Error(`no ${type} request sent (sent: ${this.sent.map((s) => s.type).join(',')})`);
    return r[r.length - 1];
  }
  ack(type: string, data: unknown = {}): void {
    this.push({ type: 'ack', id: this.request(type).id, data });
  }
}

const msg = (room: string, seq: number, content = `m${seq}`): WireMessage => ({
  id: `${room}-${seq}`,
  seq,
  room_id: room,
  user_id: 'bob',
  content,
  metadata: {},
  timestamp: new Date(0).toISOString(),
  reactions: {},
});

const tick = () => jest.advanceTimersByTimeAsync(0);

/** The server's refusal of a request over the rate limit (PROTOCOL.md section 11, Security). */
const rateLimited = (id: string | undefined, retryAfterMs: number) => ({
  type: 'error',
  id,
  data: { code: 'rate_limited', message: 'too many requests, slow down', retry_after_ms: retryAfterMs },
});

function makeClient(extra: Partial<StreamingClientOptions> = {}) {
  const client = new StreamingClient({
    url: 'ws://server:3000/ws',
    token: 'tok',
    WebSocket: FakeSocket,
    random: () => 0.5,
    ...extra,
  });
  const states: string[] = [];
  client.on('state', (s) => states.push(s.state));
  return { client, states };
}

async function connected(extra: Partial<StreamingClientOptions> = {}) {
  const made = makeClient(extra);
  const p = made.client.connect();
  await tick();
  FakeSocket.last.accept();
  await p;
  return { ...made, socket: FakeSocket.last };
}

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('StreamingClient over WebSocket (fake server)', () => {
  it('connects with ?token= and resolves with the connected data', async () => {
    const { client, states } = makeClient();
    const p = client.connect();
    expect(client.state).toBe('connecting');
    await tick();
    expect(FakeSocket.last.url).toBe('ws://server:3000/ws?token=tok');
    FakeSocket.last.accept();
    await expect(p).resolves.toMatchObject({ user_id: 'alice', ping_interval_ms: 1000 });
    expect(client.state).toBe('open');
    expect(states).toEqual(['connecting', 'open']);
    expect(client.connection?.connection_id).toBe('c1');
  });

  it('rejects connect() when the first attempt fails, without retrying', async () => {
    const { client, states } = makeClient();
    const p = client.connect();
    await tick();
    FakeSocket.last.fail('connect ECONNREFUSED');
    await expect(p).rejects.toMatchObject({ code: 'connect_failed' });
    expect(states).toEqual(['connecting', 'closed']);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('rejects connect() with unauthorized on an HTTP 401 upgrade answer', async () => {
    const { client } = makeClient();
    const expired = jest.fn();
    client.on('auth_expired', expired);
    const p = client.connect();
    await tick();
    FakeSocket.last.fail('Unexpected server response: 401');
    await expect(p).rejects.toMatchObject({ code: 'unauthorized' });
    expect(expired).toHaveBeenCalledTimes(1);
    expect(client.state).toBe('closed');
  });

  it('answers requests with their ack, errors with StreamingClientError, and times out', async () => {
    const { client, socket } = await connected({ ackTimeoutMs: 1000 });
    const sent = client.sendMessage('r1', 'hi', { k: 1 });
    const req = socket.request('send_message');
    expect(req).toEqual({
      type: 'send_message',
      id: expect.any(String),
      data: { room_id: 'r1', content: 'hi', metadata: { k: 1 } },
    });
    socket.ack('send_message', { message_id: 'm1', seq: 1 });
    await expect(sent).resolves.toEqual({ message_id: 'm1', seq: 1 });

    const joined = client.joinRoom('nope');
    socket.push({
      type: 'error',
      id: socket.request('join_room').id,
      data: { code: 'room_not_found', message: 'room nope does not exist' },
    });
    const err = await joined.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamingClientError);
    expect(err).toMatchObject({
      code: 'room_not_found',
      message: 'room nope does not exist',
      data: { code: 'room_not_found' },
    });

    const slow = client.request('get_presence', { user_ids: ['x'] });
    const caught = slow.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(999);
    socket.push({ type: 'ack', id: 'unrelated', data: {} });
    await jest.advanceTimersByTimeAsync(1);
    expect(await caught).toMatchObject({ code: 'timeout' });
    // A late ack is ignored.
    socket.push({ type: 'ack', id: socket.request('get_presence').id, data: {} });
    expect(new Set(socket.sent.map((s) => s.id)).size).toBe(socket.sent.length);
  });

  it('resolves ping with the pong that carries the request id', async () => {
    const { client, socket } = await connected();
    const p = client.ping();
    socket.push({ type: 'pong', id: socket.request('ping').id, data: { timestamp: 't' } });
    await expect(p).resolves.toEqual({ timestamp: 't' });
  });

  it('splits NDJSON frames and delivers typed events, the catch-all, and off()', async () => {
    const { client, socket } = await connected();
    const got: string[] = [];
    const all: string[] = [];
    const onTyping = (t: { user_id: string; typing: boolean }) => got.push(`typing:${t.user_id}:${t.typing}`);
    client.on('message', (m) => got.push(`message:${m.content}`));
    client.on('typing', onTyping);
    client.on('channel_message', (c) => got.push(`channel:${c.channel}`));
    client.on('member_kicked', (k) => got.push(`kicked:${k.target_id}`));
    client.on('*', (e) => all.push(e.type));
    socket.push(
      { type: 'message', data: msg('r1', 1, 'hello') },
      { type: 'typing', data: { room_id: 'r1', user_id: 'bob', typing: true } },
      {
        type: 'channel_message',
        data: { channel: 'a.b', data: {}, metadata: {}, publisher_id: 'x', timestamp: 't' },
      },
      { type: 'member_kicked', data: { room_id: 'r1', target_id: 'eve', moderator_id: 'alice', reason: '' } },
      { type: 'custom_thing', data: { x: 1 } },
    );
    client.off('typing', onTyping);
    socket.push({ type: 'typing', data: { room_id: 'r1', user_id: 'bob', typing: false } });
    expect(got).toEqual(['message:hello', 'typing:bob:true', 'channel:a.b', 'kicked:eve']);
    expect(all).toEqual(['message', 'typing', 'channel_message', 'member_kicked', 'custom_thing', 'typing']);
  });

  it('reports an error envelope without id through the error event', async () => {
    const { client, socket } = await connected();
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    socket.push({ type: 'error', data: { code: 'invalid_message', message: 'bad' } });
    expect(errors).toEqual(['invalid_message']);
  });

  it('drops duplicate messages (seq <= last seen for the room)', async () => {
    const { client, socket } = await connected();
    const seqs: string[] = [];
    client.on('message', (m) => seqs.push(`${m.room_id}:${m.seq}`));
    socket.push(
      { type: 'message', data: msg('r1', 1) },
      { type: 'message', data: msg('r1', 2) },
      { type: 'message', data: msg('r1', 2) },
      { type: 'message', data: msg('r2', 1) },
      { type: 'message', data: msg('r1', 1) },
    );
    expect(seqs).toEqual(['r1:1', 'r1:2', 'r2:1']);
    expect(client.lastSeqs).toEqual({ r1: 2, r2: 1 });
  });

  it('reconnects with growing jittered delays, then re-subscribes and resumes in seq order', async () => {
    let n = 0;
    const { client, socket, states } = await connected({
      getToken: () => `tok${++n}`,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2 },
    });
    const sub = client.subscribe('news.*', { kind: ['a', 'b'] });
    socket.ack('subscribe', { channel: 'news.*' });
    await sub;
    socket.push({ type: 'message', data: msg('r1', 5) }, { type: 'message', data: msg('r2', 3) });

    const delays: number[] = [];
    client.on('reconnecting', (r) => delays.push(r.delay_ms));
    const pendingReq = client.getPresence({ user_ids: ['x'] }).catch((e: unknown) => e);
    socket.drop(1006);
    expect(await pendingReq).toMatchObject({ code: 'disconnected' });
    expect(client.state).toBe('reconnecting');

    // Attempts 1..4 fail: delays are random(0.5) * 100, 200, 400, 800.
    for (let i = 0; i < 4; i++) {
      await jest.advanceTimersByTimeAsync(delays[i]);
      FakeSocket.last.fail('ECONNREFUSED');
    }
    expect(delays.slice(0, 5)).toEqual([50, 100, 200, 400, 500]);
    await jest.advanceTimersByTimeAsync(500);
    const s2 = FakeSocket.last;
    expect(FakeSocket.all).toHaveLength(6);
    expect(s2.url).toBe('ws://server:3000/ws?token=tok6');

    const got: string[] = [];
    client.on('message', (m) => got.push(`${m.room_id}:${m.seq}`));
    s2.accept();
    await tick();
    // A live message arrives before the replay: it must wait for it.
    s2.push({ type: 'message', data: msg('r1', 8) });
    expect(s2.request('subscribe').data).toEqual({ channel: 'news.*', filters: { kind: ['a', 'b'] } });
    expect(s2.request('resume').data).toEqual({ rooms: { r1: 5, r2: 3 } });
    expect(got).toEqual([]);
    s2.ack('subscribe', { channel: 'news.*' });
    s2.push(
      { type: 'message', data: msg('r1', 6) },
      { type: 'message', data: msg('r1', 7) },
      { type: 'message', data: msg('r1', 8) },
      { type: 'message', data: msg('r2', 4) },
      { type: 'resumed', data: { rooms: { r1: 8, r2: 4 } } },
    );
    expect(client.state).toBe('reconnecting');
    s2.ack('resume', { rooms: { r1: 8, r2: 4 } });
    await tick();
    expect(client.state).toBe('open');
    expect(got).toEqual(['r1:6', 'r1:7', 'r1:8', 'r2:4']);
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    // The attempt counter restarts after a success.
    s2.drop(1001);
    expect(delays[delays.length - 1]).toBe(50);
  });

  it('emits gap for rooms listed in resumed.gaps and carries on from the latest seq', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 2) }, { type: 'message', data: msg('r2', 2) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gaps: unknown[] = [];
    const got: string[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.on('message', (m) => got.push(`${m.room_id}:${m.seq}`));
    s2.accept();
    await tick();
    s2.push({ type: 'message', data: msg('r2', 3) });
    s2.ack('resume', { rooms: { r1: 50, r2: 3 }, gaps: ['r1'] });
    await tick();
    expect(gaps).toEqual([{ room_id: 'r1', reason: 'retention', last_seq: 2, latest_seq: 50 }]);
    expect(got).toEqual(['r2:3']);
    expect(client.lastSeqs).toEqual({ r1: 50, r2: 3 });
    s2.push({ type: 'message', data: msg('r1', 51) });
    expect(got).toEqual(['r2:3', 'r1:51']);
    expect(gaps).toHaveLength(1);
  });

  it('emits gap on a live seq jump', async () => {
    const { client, socket } = await connected();
    const gaps: unknown[] = [];
    client.on('gap', (g) => gaps.push(g));
    socket.push({ type: 'message', data: msg('r1', 1) }, { type: 'message', data: msg('r1', 4) });
    expect(gaps).toEqual([{ room_id: 'r1', reason: 'seq_jump', last_seq: 1 }]);
  });

  it('resumes room by room when one room is no longer the user’s', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('gone', 1) }, { type: 'message', data: msg('ok', 1) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    s2.accept();
    await tick();
    s2.push({ type: 'error', id: s2.request('resume').id, data: { code: 'not_room_member', message: 'no' } });
    await tick();
    // Room by room, one after the other.
    expect(
      s2
        .requests('resume')
        .slice(1)
        .map((r) => r.data),
    ).toEqual([{ rooms: { gone: 1 } }]);
    s2.push({
      type: 'error',
      id: s2.requests('resume')[1].id,
      data: { code: 'not_room_member', message: 'no' },
    });
    await tick();
    expect(s2.requests('resume')[2].data).toEqual({ rooms: { ok: 1 } });
    s2.push(
      { type: 'message', data: msg('ok', 2) },
      { type: 'ack', id: s2.requests('resume')[2].id, data: { rooms: { ok: 2 } } },
    );
    await tick();
    expect(client.state).toBe('open');
    expect(client.lastSeqs).toEqual({ ok: 2 });
  });

  it('queues requests while reconnecting, sends them after the resume, and bounds the buffer', async () => {
    const { client, socket } = await connected({ offlineBufferSize: 2, reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 1) });
    socket.drop();
    const a = client.sendMessage('r1', 'a');
    const b = client.sendMessage('r1', 'b');
    const c = client.sendMessage('r1', 'c').catch((e: unknown) => e);
    expect(await c).toMatchObject({ code: 'offline_buffer_full' });
    expect(client.queuedRequests).toBe(2);
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    s2.accept();
    await tick();
    expect(s2.requests('send_message')).toHaveLength(0); // not before the resume completes
    s2.ack('resume', { rooms: { r1: 1 } });
    await tick();
    const sends = s2.requests('send_message');
    expect(sends.map((s) => s.data?.content)).toEqual(['a', 'b']);
    s2.push({ type: 'ack', id: sends[0].id, data: { message_id: 'x', seq: 2 } });
    s2.push({ type: 'error', id: sends[1].id, data: { code: 'muted', message: 'muted' } });
    await expect(a).resolves.toEqual({ message_id: 'x', seq: 2 });
    await expect(b).rejects.toMatchObject({ code: 'muted' });
  });

  it('rejects queued and pending requests on close(), and does not reconnect', async () => {
    const { client, socket, states } = await connected({ reconnect: { initialDelayMs: 10 } });
    const pending = client.joinRoom('r').catch((e: unknown) => e);
    client.close();
    expect(await pending).toMatchObject({ code: 'closed' });
    expect(socket.closedWith?.code).toBe(1000);
    await expect(client.joinRoom('r')).rejects.toMatchObject({ code: 'not_connected' });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(states).toEqual(['connecting', 'open', 'closed']);
  });

  it('stops on 4401 (auth_expired) and resumes after connect() with a fresh token', async () => {
    let token = 'old';
    const { client, socket } = await connected({ getToken: () => token, reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 3) });
    const expired = jest.fn();
    client.on('auth_expired', expired);
    socket.drop(4401, 'token expired');
    expect(expired).toHaveBeenCalledWith({ code: 4401, reason: 'token expired' });
    expect(client.state).toBe('closed');
    const queued = client.sendMessage('r1', 'later');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);

    token = 'new';
    const p = client.connect();
    await tick();
    const s2 = FakeSocket.last;
    expect(s2.url).toContain('token=new');
    s2.accept();
    await tick();
    s2.ack('resume', { rooms: { r1: 3 } });
    await expect(p).resolves.toMatchObject({ user_id: 'alice' });
    s2.ack('send_message', { message_id: 'm', seq: 4 });
    await expect(queued).resolves.toEqual({ message_id: 'm', seq: 4 });
  });

  it('retries with backoff when getToken() fails during a reconnect', async () => {
    let fail = false;
    const { client, socket } = await connected({
      getToken: () => {
        if (fail) throw new Error('refresh endpoint down');
        return 'tok';
      },
      reconnect: { initialDelayMs: 10 },
    });
    fail = true;
    socket.drop();
    await jest.advanceTimersByTimeAsync(5); // attempt 1 fails in getToken
    await jest.advanceTimersByTimeAsync(10); // attempt 2 too
    expect(FakeSocket.all).toHaveLength(1);
    expect(client.state).toBe('reconnecting');
    fail = false;
    await jest.advanceTimersByTimeAsync(20);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last.accept();
    await tick();
    expect(client.state).toBe('open');
  });

  it('treats a missing connected envelope as a failed attempt', async () => {
    const { client, socket } = await connected({ ackTimeoutMs: 500, reconnect: { initialDelayMs: 10 } });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    FakeSocket.last.readyState = 1; // opened, but the server never says `connected`
    await jest.advanceTimersByTimeAsync(500);
    expect(FakeSocket.last.closedWith?.code).toBe(4000);
    expect(client.state).toBe('reconnecting');
  });

  it('forgets the seq of rooms it left; tracks created rooms from 0', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push(
      { type: 'message', data: msg('r1', 3) },
      { type: 'room_left', data: { room_id: 'r1' } },
      { type: 'room_created', data: { room_id: 'new' } },
    );
    expect(client.lastSeqs).toEqual({ new: 0 });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    FakeSocket.last.accept();
    await tick();
    expect(FakeSocket.last.request('resume').data).toEqual({ rooms: { new: 0 } });
  });

  it('starts the resume after the newest history page the app loaded', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    const h = client.getHistory('r9', { limit: 2 });
    socket.ack('get_history', { messages: [msg('r9', 41), msg('r9', 42)] });
    await h;
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    FakeSocket.last.accept();
    await tick();
    expect(FakeSocket.last.request('resume').data).toEqual({ rooms: { r9: 42 } });
  });

  it('retries a request refused with rate_limited after retry_after_ms instead of rejecting it', async () => {
    const { client, socket } = await connected();
    const sent = client.sendMessage('r1', 'hi');
    const settled = jest.fn();
    sent.then(settled, settled);
    const first = socket.request('send_message');
    socket.push(rateLimited(first.id, 200));
    await jest.advanceTimersByTimeAsync(199);
    expect(socket.requests('send_message')).toHaveLength(1);
    expect(settled).not.toHaveBeenCalled();
    expect(client.queuedRequests).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    const second = socket.requests('send_message')[1];
    expect(second.data).toEqual(first.data);
    expect(second.id).not.toBe(first.id);
    socket.push({ type: 'ack', id: second.id, data: { message_id: 'm1', seq: 1 } });
    await expect(sent).resolves.toEqual({ message_id: 'm1', seq: 1 });
    expect(client.queuedRequests).toBe(0);
  });

  it('keeps requests in order across rate-limit retries: later ones wait, then one at a time', async () => {
    const { client, socket } = await connected();
    const contents = () => socket.requests('send_message').map((r) => r.data?.content);
    const lastId = () => socket.requests('send_message').slice(-1)[0].id;
    const a = client.sendMessage('r1', 'a');
    const b = client.sendMessage('r1', 'b');
    const [ra, rb] = socket.requests('send_message');
    // Both were pipelined before the first refusal came back.
    socket.push(rateLimited(ra.id, 100));
    socket.push(rateLimited(rb.id, 100));
    const c = client.sendMessage('r1', 'c'); // issued during the pause: waits behind a and b
    expect(contents()).toEqual(['a', 'b']);
    expect(client.queuedRequests).toBe(3);
    await jest.advanceTimersByTimeAsync(100);
    expect(contents()).toEqual(['a', 'b', 'a']); // one at a time until the backlog is sent
    socket.push({ type: 'ack', id: lastId(), data: { message_id: 'ma', seq: 1 } });
    await tick();
    expect(contents()).toEqual(['a', 'b', 'a', 'b']);
    socket.push(rateLimited(lastId(), 50)); // refused again: b's second retry
    await tick();
    expect(contents()).toEqual(['a', 'b', 'a', 'b']);
    await jest.advanceTimersByTimeAsync(50);
    expect(contents()).toEqual(['a', 'b', 'a', 'b', 'b']);
    socket.push({ type: 'ack', id: lastId(), data: { message_id: 'mb', seq: 2 } });
    await tick();
    expect(contents()).toEqual(['a', 'b', 'a', 'b', 'b', 'c']);
    socket.push({ type: 'ack', id: lastId(), data: { message_id: 'mc', seq: 3 } });
    await expect(Promise.all([a, b, c])).resolves.toEqual([
      { message_id: 'ma', seq: 1 },
      { message_id: 'mb', seq: 2 },
      { message_id: 'mc', seq: 3 },
    ]);
    // The backlog is gone: requests are pipelined again.
    void client.sendMessage('r1', 'd');
    void client.sendMessage('r1', 'e');
    expect(contents().slice(-2)).toEqual(['d', 'e']);
  });

  it('rejects with the rate_limited error once the retries are used up (retryRateLimited)', async () => {
    const { client, socket } = await connected({ retryRateLimited: 2 });
    const p = client.sendMessage('r1', 'x').catch((e: unknown) => e);
    for (let i = 0; i < 3; i++) {
      socket.push(rateLimited(socket.request('send_message').id, 100));
      await jest.advanceTimersByTimeAsync(100);
    }
    expect(socket.requests('send_message')).toHaveLength(3);
    const err = await p;
    expect(err).toBeInstanceOf(StreamingClientError);
    expect(err).toMatchObject({ code: 'rate_limited', data: { retry_after_ms: 100 } });
    expect(client.queuedRequests).toBe(0);
  });

  it('rejects at once with retryRateLimited: 0, or per request with { retryRateLimited: 0 }', async () => {
    const off = await connected({ retryRateLimited: 0 });
    const p = off.client.sendMessage('r1', 'x').catch((e: unknown) => e);
    off.socket.push(rateLimited(off.socket.request('send_message').id, 100));
    expect(await p).toMatchObject({ code: 'rate_limited' });
    await jest.advanceTimersByTimeAsync(1000);
    expect(off.socket.requests('send_message')).toHaveLength(1);
    // The refusal does not hold back later requests either.
    void off.client.sendMessage('r1', 'y');
    expect(off.socket.requests('send_message')).toHaveLength(2);

    const on = await connected();
    const q = on.client
      .request('start_typing', { room_id: 'r1' }, { retryRateLimited: 0 })
      .catch((e: unknown) => e);
    on.socket.push(rateLimited(on.socket.request('start_typing').id, 100));
    expect(await q).toMatchObject({ code: 'rate_limited' });

    // ... and the other way round: retries for one request of a client that has them off.
    const r = off.client.request('start_typing', { room_id: 'r1' }, { retryRateLimited: 1 });
    off.socket.push(rateLimited(off.socket.request('start_typing').id, 100));
    await jest.advanceTimersByTimeAsync(100);
    expect(off.socket.requests('start_typing')).toHaveLength(2);
    off.socket.ack('start_typing', { room_id: 'r1', typing: true });
    await expect(r).resolves.toEqual({ room_id: 'r1', typing: true });
  });

  it('retries only within the request timeout', async () => {
    const { client, socket } = await connected({ ackTimeoutMs: 1000 });
    // The wait would end after the timeout: rejected at once with the refusal.
    const early = client.sendMessage('r1', 'x').catch((e: unknown) => e);
    socket.push(rateLimited(socket.request('send_message').id, 1500));
    expect(await early).toMatchObject({ code: 'rate_limited', data: { retry_after_ms: 1500 } });
    await jest.advanceTimersByTimeAsync(1500);

    // A request waiting behind the pause times out when its own timeout passes, unsent.
    const long = client.request('get_presence', { user_ids: ['a'] }, { timeoutMs: 5000 });
    const longErr = long.catch((e: unknown) => e);
    socket.push(rateLimited(socket.request('get_presence').id, 300));
    const short = client
      .request('get_presence', { user_ids: ['b'] }, { timeoutMs: 200 })
      .catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(200);
    expect(await short).toMatchObject({ code: 'timeout' });
    expect(socket.requests('get_presence')).toHaveLength(1);
    // The retry waits only for what is left of the 5000 ms.
    await jest.advanceTimersByTimeAsync(100);
    expect(socket.requests('get_presence')).toHaveLength(2);
    const settled = jest.fn();
    void longErr.then(settled);
    await jest.advanceTimersByTimeAsync(4699);
    expect(settled).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(await longErr).toMatchObject({ code: 'timeout' });
  });

  it('sends a request still waiting for its rate-limit retry after the reconnect', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 1) });
    const p = client.sendMessage('r1', 'x');
    socket.push(rateLimited(socket.request('send_message').id, 1000));
    socket.drop();
    expect(client.queuedRequests).toBe(1);
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    s2.accept();
    await tick();
    s2.ack('resume', { rooms: { r1: 1 } });
    await tick();
    expect(s2.requests('send_message').map((r) => r.data?.content)).toEqual(['x']);
    s2.ack('send_message', { message_id: 'm', seq: 2 });
    await expect(p).resolves.toEqual({ message_id: 'm', seq: 2 });
  });

  it('rejects requests held back by a rate-limit refusal on close()', async () => {
    const { client, socket } = await connected();
    const a = client.sendMessage('r1', 'a').catch((e: unknown) => e);
    socket.push(rateLimited(socket.request('send_message').id, 100));
    const b = client.sendMessage('r1', 'b').catch((e: unknown) => e);
    client.close();
    expect(await a).toMatchObject({ code: 'closed' });
    expect(await b).toMatchObject({ code: 'closed' });
    expect(client.queuedRequests).toBe(0);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(socket.requests('send_message')).toHaveLength(1);
  });

  it('retries a resume refused with rate_limited after a reconnect', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 1) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gaps: unknown[] = [];
    const errors: unknown[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.on('error', (e) => errors.push(e));
    s2.accept();
    await tick();
    s2.push(rateLimited(s2.request('resume').id, 100));
    await jest.advanceTimersByTimeAsync(99);
    expect(s2.requests('resume')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(s2.requests('resume').map((r) => r.data)).toEqual([{ rooms: { r1: 1 } }, { rooms: { r1: 1 } }]);
    s2.ack('resume', { rooms: { r1: 1 } });
    await tick();
    expect(client.state).toBe('open');
    expect(gaps).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('emits rooms_gone for rooms resumed.gone lists and stops resuming them', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('lost', 3) }, { type: 'message', data: msg('kept', 2) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    const gaps: unknown[] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    client.on('gap', (g) => gaps.push(g));
    s2.accept();
    await tick();
    expect(s2.request('resume').data).toEqual({ rooms: { lost: 3, kept: 2 } });
    s2.ack('resume', { rooms: { kept: 2 }, errors: { lost: 'room_not_found' }, gone: ['lost'] });
    await tick();
    expect(client.state).toBe('open');
    expect(gone).toEqual([['lost']]);
    expect(gaps).toEqual([]);
    expect(client.lastSeqs).toEqual({ kept: 2 });
    s2.drop();
    await jest.advanceTimersByTimeAsync(10);
    FakeSocket.last.accept();
    await tick();
    expect(FakeSocket.last.request('resume').data).toEqual({ rooms: { kept: 2 } });
  });

  it('reads resumed.errors from servers without gone: room_not_found is gone, lost membership is forgotten', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push(
      { type: 'message', data: msg('deleted', 1) },
      { type: 'message', data: msg('kicked', 1) },
      { type: 'message', data: msg('kept', 1) },
    );
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    s2.accept();
    await tick();
    s2.ack('resume', {
      rooms: { kept: 1 },
      errors: { deleted: 'room_not_found', kicked: 'not_room_member' },
    });
    await tick();
    expect(gone).toEqual([['deleted']]);
    expect(client.lastSeqs).toEqual({ kept: 1 });
  });

  it('keeps gone and errors of the room-by-room resumes (a whole resume refused for another room)', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('kicked', 1) }, { type: 'message', data: msg('lost', 2) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    s2.accept();
    await tick();
    // Nothing can be resumed and one room is refused: the server fails the whole request.
    s2.push({
      type: 'error',
      id: s2.request('resume').id,
      data: { code: 'not_room_member', message: 'cannot resume room kicked: not room member' },
    });
    await tick();
    s2.push({
      type: 'error',
      id: s2.requests('resume')[1].id,
      data: { code: 'not_room_member', message: 'no' },
    });
    await tick();
    // Alone, the gone room is not an error: the server answers with `gone`.
    expect(s2.requests('resume')[2].data).toEqual({ rooms: { lost: 2 } });
    s2.push({
      type: 'ack',
      id: s2.requests('resume')[2].id,
      data: { rooms: {}, errors: { lost: 'room_not_found' }, gone: ['lost'] },
    });
    await tick();
    expect(client.state).toBe('open');
    expect(gone).toEqual([['lost']]);
    expect(client.lastSeqs).toEqual({});
  });

  it('emits rooms_gone when the whole resume fails with room_not_found (older servers)', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('x', 1) }, { type: 'message', data: msg('y', 4) });
    socket.drop();
    await jest.advanceTimersByTimeAsync(10);
    const s2 = FakeSocket.last;
    const gone: string[][] = [];
    const errors: unknown[] = [];
    const gaps: unknown[] = [];
    client.on('rooms_gone', (g) => gone.push(g.room_ids));
    client.on('error', (e) => errors.push(e));
    client.on('gap', (g) => gaps.push(g));
    s2.accept();
    await tick();
    const notFound = (id: string | undefined) => ({
      type: 'error',
      id,
      data: { code: 'room_not_found', message: 'cannot resume room x: room not found' },
    });
    s2.push(notFound(s2.request('resume').id));
    await tick();
    s2.push(notFound(s2.requests('resume')[1].id));
    await tick();
    s2.push(notFound(s2.requests('resume')[2].id));
    await tick();
    expect(s2.requests('resume').map((r) => r.data)).toEqual([
      { rooms: { x: 1, y: 4 } },
      { rooms: { x: 1 } },
      { rooms: { y: 4 } },
    ]);
    expect(client.state).toBe('open');
    expect(gone).toEqual([['x', 'y']]);
    expect(errors).toEqual([]);
    expect(gaps).toEqual([]);
    expect(client.lastSeqs).toEqual({});
  });

  it('detects a dead connection with the optional heartbeat', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1000, ackTimeoutMs: 300 });
    await jest.advanceTimersByTimeAsync(1000);
    socket.push({ type: 'pong', id: socket.request('ping').id, data: { timestamp: 't' } });
    await jest.advanceTimersByTimeAsync(1000 + 300);
    expect(client.state).toBe('reconnecting');
  });
});

/** A scripted EventSource. */
class FakeEventSource implements EventSourceLike {
  static all: FakeEventSource[] = [];
  readyState = 0;
  onerror: ((ev: never) => void) | null = null;
  onopen: ((ev: never) => void) | null = null;
  closed = false;
  private readonly listeners = new Map<string, Array<(ev: SseMessageEventLike) => void>>();
  constructor(readonly url: string) {
    FakeEventSource.all.push(this);
  }
  static get last(): FakeEventSource {
    return FakeEventSource.all[FakeEventSource.all.length - 1];
  }
  addEventListener(type: string, listener: (ev: SseMessageEventLike) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l({ data: JSON.stringify(data) });
  }
  fail(code?: number): void {
    (this.onerror as ((e: unknown) => void) | null)?.({ code, message: 'stream error' });
  }
}

describe('StreamingClient over SSE (fake server)', () => {
  beforeEach(() => {
    FakeEventSource.all = [];
  });
  const connectedData = {
    connection_id: 'c',
    user_id: 'alice',
    session_id: 's',
    node_id: 'n',
    ping_interval_ms: 1000,
  };

  it('opens the stream at the path the server moved it to (paths.sse)', async () => {
    const client = new StreamingClient({
      url: 'http://server:3000',
      token: 't',
      transport: 'sse',
      EventSource: FakeEventSource,
      paths: { sse: 'rt/events' },
    });
    const p = client.connect();
    await tick();
    expect(FakeEventSource.last.url).toBe('http://server:3000/rt/events?token=t');
    FakeEventSource.last.emit('connected', connectedData);
    await p;
    client.close();
  });

  it('is receive-only, builds the stream URL, and resumes with last_event_id without duplicates', async () => {
    const client = new StreamingClient({
      url: 'ws://server:3000/ws',
      getToken: () => 't k',
      transport: 'sse',
      EventSource: FakeEventSource,
      sse: { rooms: ['r1', 'r2'], channels: ['a.b'] },
      reconnect: { initialDelayMs: 10 },
      random: () => 0.5,
    });
    const p = client.connect();
    await tick();
    const es = FakeEventSource.last;
    expect(es.url).toBe('http://server:3000/sse?token=t%20k&rooms=r1,r2&channels=a.b');
    es.emit('connected', connectedData);
    await expect(p).resolves.toMatchObject({ user_id: 'alice' });
    await expect(client.sendMessage('r1', 'x')).rejects.toMatchObject({ code: 'receive_only' });

    const got: string[] = [];
    client.on('message', (m) => got.push(`${m.room_id}:${m.seq}`));
    es.emit('message', msg('r1', 1));
    es.emit('message', msg('r2', 7));
    es.fail();
    expect(es.closed).toBe(true);
    expect(client.state).toBe('reconnecting');
    await jest.advanceTimersByTimeAsync(5);
    const es2 = FakeEventSource.last;
    expect(decodeURIComponent(es2.url)).toContain('last_event_id=r1:1,r2:7');
    es2.emit('connected', connectedData);
    es2.emit('message', msg('r1', 3)); // live, before the replay
    es2.emit('message', msg('r1', 2));
    es2.emit('message', msg('r1', 3));
    es2.emit('resumed', { rooms: { r1: 3, r2: 7 } });
    await tick();
    expect(got).toEqual(['r1:1', 'r2:7', 'r1:2', 'r1:3']);
    expect(client.state).toBe('open');
  });

  it('stops on HTTP 401 and reconnects when heartbeats stop', async () => {
    const client = new StreamingClient({
      url: 'http://server:3000',
      token: 't',
      transport: 'sse',
      EventSource: FakeEventSource,
      reconnect: { initialDelayMs: 10 },
    });
    const p = client.connect();
    await tick();
    FakeEventSource.last.emit('connected', connectedData);
    await p;
    await jest.advanceTimersByTimeAsync(2500);
    FakeEventSource.last.emit('heartbeat', { timestamp: 't' });
    await jest.advanceTimersByTimeAsync(2500);
    expect(client.state).toBe('open');
    await jest.advanceTimersByTimeAsync(600);
    expect(client.state).toBe('reconnecting');
    await jest.advanceTimersByTimeAsync(10);
    const expired = jest.fn();
    client.on('auth_expired', expired);
    FakeEventSource.last.fail(401);
    expect(expired).toHaveBeenCalled();
    expect(client.state).toBe('closed');
  });
});

describe('orderMessages', () => {
  it('puts each room’s messages in seq order and keeps other events in place', () => {
    const e = (type: string, data: unknown): ServerEnvelope => ({ type, data });
    const held = [
      e('message', msg('a', 3)),
      e('typing', { room_id: 'a' }),
      e('message', msg('b', 9)),
      e('message', msg('a', 1)),
      e('message', msg('a', 2)),
      e('message', msg('b', 8)),
    ];
    expect(
      orderMessages(held).map((x) =>
        x.type === 'message' ? `${(x.data as WireMessage).room_id}${(x.data as WireMessage).seq}` : x.type,
      ),
    ).toEqual(['a1', 'typing', 'b8', 'a2', 'a3', 'b9']);
  });
});

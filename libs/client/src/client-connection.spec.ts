/**
 * StreamingClient against a scripted WebSocket server: connecting, reconnecting with backoff,
 * closing, auth expiry (a stop, or a reconnect with getToken), a missing `connected`, the optional heartbeat.
 */
import { FakeSocket, connected, makeClient, msg, tick } from '../test/fake-server';

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

  it('without getToken stops on 4401 (auth_expired) and resumes after connect()', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10 } });
    socket.push({ type: 'message', data: msg('r1', 3) });
    const expired = jest.fn();
    client.on('auth_expired', expired);
    socket.drop(4401, 'token expired');
    expect(expired).toHaveBeenCalledWith({ code: 4401, reason: 'token expired' });
    expect(client.state).toBe('closed');
    const queued = client.sendMessage('r1', 'later');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);

    const p = client.connect();
    await tick();
    const s2 = FakeSocket.last;
    expect(s2.url).toContain('token=tok');
    s2.accept();
    await tick();
    s2.ack('resume', { rooms: { r1: 3 } });
    await expect(p).resolves.toMatchObject({ user_id: 'alice' });
    s2.ack('send_message', { message_id: 'm', seq: 4 });
    await expect(queued).resolves.toEqual({ message_id: 'm', seq: 4 });
  });

  it('with getToken reconnects after 4401 with a fresh token and resumes', async () => {
    let token = 'old';
    const { client, socket, states } = await connected({
      getToken: () => token,
      reconnect: { initialDelayMs: 10 },
    });
    socket.push({ type: 'message', data: msg('r1', 3) });
    const expired = jest.fn();
    const disconnected = jest.fn();
    client.on('auth_expired', expired);
    client.on('disconnected', disconnected);
    token = 'new';
    socket.drop(4401, 'token expired');
    expect(disconnected).toHaveBeenCalledWith({ code: 4401, reason: 'token expired', will_reconnect: true });
    expect(client.state).toBe('reconnecting');
    const queued = client.sendMessage('r1', 'later');
    await jest.advanceTimersByTimeAsync(5);
    const s2 = FakeSocket.last;
    expect(FakeSocket.all).toHaveLength(2);
    expect(s2.url).toContain('token=new');
    s2.accept();
    await tick();
    expect(s2.request('resume').data).toEqual({ rooms: { r1: 3 } });
    s2.ack('resume', { rooms: { r1: 3 } });
    await tick();
    expect(client.state).toBe('open');
    s2.ack('send_message', { message_id: 'm', seq: 4 });
    await expect(queued).resolves.toEqual({ message_id: 'm', seq: 4 });
    expect(expired).not.toHaveBeenCalled();
    expect(states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
  });

  it('with getToken stops when the token after a 4401 is refused too, keeping the buffer', async () => {
    const { client, socket } = await connected({
      getToken: () => 'still-expired',
      reconnect: { initialDelayMs: 10 },
    });
    const expired = jest.fn();
    client.on('auth_expired', expired);
    socket.drop(4401, 'token expired');
    const queued = client.sendMessage('r1', 'later');
    await jest.advanceTimersByTimeAsync(5);
    FakeSocket.last.fail('Unexpected server response: 401');
    expect(expired).toHaveBeenCalledWith({ code: 401, reason: 'Unexpected server response: 401' });
    expect(client.state).toBe('closed');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(client.queuedRequests).toBe(1);
    client.close();
    await expect(queued).rejects.toMatchObject({ code: 'closed' });
  });

  it('with getToken but reconnect disabled, stops on 4401 as before', async () => {
    const { client, socket } = await connected({ getToken: () => 'tok', reconnect: { enabled: false } });
    const expired = jest.fn();
    client.on('auth_expired', expired);
    socket.drop(4401, 'token expired');
    expect(expired).toHaveBeenCalledWith({ code: 4401, reason: 'token expired' });
    expect(client.state).toBe('closed');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('does not reconnect after a 4403 disconnect by the server (server API, admin console)', async () => {
    const { client, socket, states } = await connected({ reconnect: { initialDelayMs: 10 } });
    const disconnected = jest.fn();
    client.on('disconnected', disconnected);
    socket.drop(4403, 'disconnected by an administrator');
    expect(disconnected).toHaveBeenCalledWith({
      code: 4403,
      reason: 'disconnected by an administrator',
      will_reconnect: false,
    });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(states).toEqual(['connecting', 'open', 'closed']);
    await expect(client.joinRoom('r')).rejects.toMatchObject({ code: 'not_connected' });
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

  it('detects a dead connection with the optional heartbeat', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1000, ackTimeoutMs: 300 });
    await jest.advanceTimersByTimeAsync(1000);
    socket.push({ type: 'pong', id: socket.request('ping').id, data: { timestamp: 't' } });
    await jest.advanceTimersByTimeAsync(1000 + 300);
    expect(client.state).toBe('reconnecting');
  });
});

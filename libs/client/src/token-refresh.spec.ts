/**
 * Proactive token refresh (`refresh_token` before the JWT's `exp`, PROTOCOL.md section 10):
 * the JWT decoding, the schedule, failures and retries, and the timers' life cycle.
 */
import type { ErrorData } from '@nest-streaming/protocol';
import { FakeEventSource, FakeSocket, connected, tick } from '../test/fake-server';
import { StreamingClient } from './client';
import { TokenRefresher, jwtExpiryMs, refreshDelay, refreshRetryDelay } from './token-refresh';

const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
/** An (unsigned) JWT with these claims: the client never verifies. */
const jwt = (claims: Record<string, unknown>) =>
  `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify(claims))}.c2ln`;

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const nowS = () => Math.floor(Date.now() / 1000);

describe('jwtExpiryMs', () => {
  it('reads exp (seconds) of a JWT payload as epoch ms, without verifying', () => {
    expect(jwtExpiryMs(jwt({ sub: 'alice', exp: 1_900_000_000 }))).toBe(1_900_000_000_000);
    // base64url characters and UTF-8 claims
    expect(jwtExpiryMs(jwt({ sub: 'ü?>~~~', name: 'Zoë ✓', exp: 12 }))).toBe(12_000);
  });

  it('is undefined for tokens without a numeric exp, opaque tokens and garbage', () => {
    for (const t of [
      undefined,
      '',
      'opaque-session-token',
      'a.b',
      'a..c',
      `${b64url('{}')}.${b64url('not json')}.x`,
      jwt({ sub: 'alice' }),
      jwt({ sub: 'alice', exp: '1900000000' }),
      `${b64url('{}')}.${b64url('[1,2]')}.x`,
      `${b64url('{}')}.%%%.x`,
    ]) {
      expect(jwtExpiryMs(t)).toBeUndefined();
    }
  });
});

describe('refreshDelay / refreshRetryDelay', () => {
  it('refreshes at 80% of the remaining lifetime, or the lead before exp when that is earlier', () => {
    expect(refreshDelay(3_600_000, 5000)).toBe(2_880_000);
    expect(refreshDelay(20_000, 5000)).toBe(15_000);
    expect(refreshDelay(60_000, 20_000)).toBe(40_000);
  });

  it('never sooner than 1 s, never beyond what setTimeout can wait', () => {
    expect(refreshDelay(3000, 5000)).toBe(1000);
    expect(refreshDelay(0, 5000)).toBe(1000);
    expect(refreshDelay(-60_000, 5000)).toBe(1000);
    expect(refreshDelay(365 * 24 * 3600_000, 5000)).toBe(2 ** 31 - 1);
  });

  it('retries after 1 s, 2 s, 4 s ... up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(refreshRetryDelay)).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });
});

describe('TokenRefresher timers', () => {
  it('does not keep the Node event loop alive, and stop() clears it', () => {
    const r = new TokenRefresher(
      { getToken: () => 'x', send: () => Promise.resolve({}), error: () => undefined },
      5000,
    );
    r.start(jwt({ exp: nowS() + 3600 }));
    const timer = (r as unknown as { timer: NodeJS.Timeout | null }).timer;
    expect(timer).not.toBeNull();
    expect(timer!.hasRef()).toBe(false);
    r.stop();
    expect((r as unknown as { timer: unknown }).timer).toBeNull();
  });

  it('schedules nothing for a token without exp', () => {
    const r = new TokenRefresher(
      { getToken: () => 'x', send: () => Promise.resolve({}), error: () => undefined },
      5000,
    );
    r.start('opaque');
    expect((r as unknown as { timer: unknown }).timer).toBeNull();
  });
});

describe('StreamingClient proactive token refresh (fake server)', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    jest.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  /** A client whose getToken hands out t1, t2, ... each living `lifetimeS` seconds from now. */
  async function refreshingClient(lifetimeS: number, extra: Record<string, unknown> = {}) {
    const issued: string[] = [];
    const getToken = jest.fn(() => {
      const t = jwt({ sub: 'alice', n: issued.length + 1, exp: nowS() + lifetimeS });
      issued.push(t);
      return t;
    });
    const made = await connected({ getToken, ...extra });
    const errors: ErrorData[] = [];
    made.client.on('error', (e) => errors.push(e));
    return { ...made, getToken, issued, errors };
  }

  it('sends refresh_token with a new token at 80% of the lifetime, then again from the new exp', async () => {
    const { socket, getToken, issued } = await refreshingClient(60);
    expect(FakeSocket.last.url).toContain(`token=${issued[0]}`);
    await jest.advanceTimersByTimeAsync(47_999);
    expect(socket.requests('refresh_token')).toHaveLength(0);
    expect(getToken).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(socket.request('refresh_token').data).toEqual({ token: issued[1] });
    socket.ack('refresh_token', { expires_at: new Date(T0 + 48_000 + 60_000).toISOString() });
    // Next one 48 s after this refresh.
    await jest.advanceTimersByTimeAsync(47_999);
    expect(socket.requests('refresh_token')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(socket.requests('refresh_token')).toHaveLength(2);
    expect(socket.request('refresh_token').data).toEqual({ token: issued[2] });
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('honours refreshBeforeExpMs and never refreshes sooner than every second', async () => {
    const long = await refreshingClient(60, { refreshBeforeExpMs: 20_000 });
    await jest.advanceTimersByTimeAsync(39_999);
    expect(long.socket.requests('refresh_token')).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(long.socket.requests('refresh_token')).toHaveLength(1);
    long.client.close();

    // 3 s tokens with the default 5 s lead: once a second, not in a tight loop.
    const short = await refreshingClient(3);
    for (let i = 1; i <= 5; i++) {
      await jest.advanceTimersByTimeAsync(1000);
      expect(short.socket.requests('refresh_token')).toHaveLength(i);
      short.socket.ack('refresh_token', { expires_at: new Date((nowS() + 3) * 1000).toISOString() });
    }
    expect(short.getToken).toHaveBeenCalledTimes(6);
  });

  it('sends nothing while getToken() returns the token in use, and asks again ever closer to exp', async () => {
    let token = jwt({ sub: 'alice', exp: nowS() + 60 });
    const getToken = jest.fn(() => token);
    const { socket } = await connected({ getToken });
    await jest.advanceTimersByTimeAsync(48_000);
    expect(getToken).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(7000); // 12 s left: 5 s before exp
    expect(getToken).toHaveBeenCalledTimes(3);
    await jest.advanceTimersByTimeAsync(1000); // then once a second
    expect(getToken).toHaveBeenCalledTimes(4);
    expect(socket.requests('refresh_token')).toHaveLength(0);
    token = jwt({ sub: 'alice', exp: nowS() + 60 });
    await jest.advanceTimersByTimeAsync(1000);
    expect(socket.request('refresh_token').data).toEqual({ token });
  });

  it('uses the token exp when the ack has no expires_at, and stops for a token without exp', async () => {
    let n = 0;
    const { socket } = await connected({
      getToken: () => (++n < 3 ? jwt({ sub: 'alice', exp: nowS() + 10 }) : 'opaque'),
    });
    await jest.advanceTimersByTimeAsync(5000);
    expect(socket.requests('refresh_token')).toHaveLength(1);
    socket.ack('refresh_token', {});
    await jest.advanceTimersByTimeAsync(5000);
    expect(socket.requests('refresh_token')).toHaveLength(2);
    socket.ack('refresh_token', { expires_at: null });
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(socket.requests('refresh_token')).toHaveLength(2);
  });

  it('reports a refused refresh or a failing getToken as error events and retries later, never tightly', async () => {
    let failGetToken = false;
    let n = 0;
    const getToken = jest.fn(() => {
      if (failGetToken) throw new Error('auth server down');
      return jwt({ sub: 'alice', n: ++n, exp: nowS() + 60 });
    });
    const { client, socket } = await connected({ getToken });
    const errors: ErrorData[] = [];
    client.on('error', (e) => errors.push(e));

    await jest.advanceTimersByTimeAsync(48_000);
    socket.push({
      type: 'error',
      id: socket.request('refresh_token').id,
      data: { code: 'unauthorized', message: 'invalid or expired token' },
    });
    await tick();
    expect(errors).toEqual([
      { code: 'unauthorized', message: 'token refresh failed: invalid or expired token' },
    ]);
    // Retried 1 s later: refused again (another user's token).
    await jest.advanceTimersByTimeAsync(999);
    expect(socket.requests('refresh_token')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(socket.requests('refresh_token')).toHaveLength(2);
    socket.push({
      type: 'error',
      id: socket.request('refresh_token').id,
      data: { code: 'forbidden', message: 'the new token is for another user' },
    });
    await tick();
    expect(errors[1]).toMatchObject({ code: 'forbidden' });
    // Then getToken() throws: 2 s later.
    failGetToken = true;
    await jest.advanceTimersByTimeAsync(2000);
    expect(errors[2]).toEqual({
      code: 'token_refresh_failed',
      message: 'token refresh failed: getToken() failed: auth server down',
    });
    expect(socket.requests('refresh_token')).toHaveLength(2);
    // 4 s later it works again; the following refresh is 48 s after that.
    failGetToken = false;
    await jest.advanceTimersByTimeAsync(4000);
    expect(socket.requests('refresh_token')).toHaveLength(3);
    socket.ack('refresh_token', { expires_at: new Date(Date.now() + 60_000).toISOString() });
    await jest.advanceTimersByTimeAsync(47_000);
    expect(socket.requests('refresh_token')).toHaveLength(3);
    await jest.advanceTimersByTimeAsync(1000);
    expect(socket.requests('refresh_token')).toHaveLength(4);
    expect(errors).toHaveLength(3);
    expect(client.state).toBe('open');
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('reports a refresh that times out, and stops asking a server without refresh_token', async () => {
    const { client, socket, errors } = await refreshingClient(60, { ackTimeoutMs: 500 });
    await jest.advanceTimersByTimeAsync(48_000 + 500);
    expect(errors).toEqual([expect.objectContaining({ code: 'timeout' })]);
    await jest.advanceTimersByTimeAsync(1000);
    socket.push({
      type: 'error',
      id: socket.request('refresh_token').id,
      data: { code: 'unknown_type', message: 'unknown request type "refresh_token"' },
    });
    await tick();
    expect(errors[1]).toMatchObject({ code: 'unknown_type' });
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(socket.requests('refresh_token')).toHaveLength(2);
    expect(client.state).toBe('open');
  });

  it('is off without getToken, with refreshBeforeExpMs: false, and over SSE', async () => {
    const fixed = await connected({ token: jwt({ sub: 'alice', exp: nowS() + 10 }) });
    await jest.advanceTimersByTimeAsync(9000);
    expect(fixed.socket.requests('refresh_token')).toHaveLength(0);
    fixed.client.close();

    const off = await refreshingClient(10, { refreshBeforeExpMs: false });
    await jest.advanceTimersByTimeAsync(9000);
    expect(off.socket.requests('refresh_token')).toHaveLength(0);
    expect(off.getToken).toHaveBeenCalledTimes(1);
    off.client.close();

    FakeEventSource.all = [];
    const getToken = jest.fn(() => jwt({ sub: 'alice', exp: nowS() + 10 }));
    const sse = new StreamingClient({
      url: 'http://server:3000',
      getToken,
      transport: 'sse',
      EventSource: FakeEventSource,
    });
    const p = sse.connect();
    await tick();
    FakeEventSource.last.emit('connected', {
      connection_id: 'c',
      user_id: 'alice',
      ping_interval_ms: 60_000,
    });
    await p;
    await jest.advanceTimersByTimeAsync(9000);
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(FakeEventSource.all).toHaveLength(1);
    sse.close();
  });

  it('clears its timer on close() and on a disconnect, and starts over from the new connection', async () => {
    const { client, socket, getToken, issued } = await refreshingClient(60, {
      reconnect: { initialDelayMs: 10 },
    });
    await jest.advanceTimersByTimeAsync(30_000);
    socket.drop(1006);
    await jest.advanceTimersByTimeAsync(5); // the reconnect attempt
    expect(getToken).toHaveBeenCalledTimes(2);
    const s2 = FakeSocket.last;
    await jest.advanceTimersByTimeAsync(9000); // not connected yet: the old schedule is gone
    expect(socket.requests('refresh_token')).toHaveLength(0);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(s2.url).toContain(`token=${issued[1]}`);
    s2.accept();
    await tick();
    expect(client.state).toBe('open');
    await jest.advanceTimersByTimeAsync(48_000);
    expect(s2.request('refresh_token').data).toEqual({ token: issued[2] });

    // A refresh in flight when the connection closes: no error, nothing scheduled.
    const errors: ErrorData[] = [];
    client.on('error', (e) => errors.push(e));
    s2.ack('refresh_token', { expires_at: new Date(Date.now() + 60_000).toISOString() });
    await jest.advanceTimersByTimeAsync(48_000);
    expect(s2.requests('refresh_token')).toHaveLength(2);
    client.close();
    await tick();
    expect(errors).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(getToken).toHaveBeenCalledTimes(4);
  });

  it('ignores a getToken() that resolves after the connection dropped', async () => {
    let release: ((t: string) => void) | null = null;
    let n = 0;
    const getToken = jest.fn(() =>
      ++n === 2
        ? new Promise<string>((resolve) => (release = resolve))
        : jwt({ sub: 'alice', exp: nowS() + 60 }),
    );
    const { client, socket } = await connected({ getToken, reconnect: { initialDelayMs: 10 } });
    const errors: ErrorData[] = [];
    client.on('error', (e) => errors.push(e));
    await jest.advanceTimersByTimeAsync(48_000);
    expect(getToken).toHaveBeenCalledTimes(2);
    socket.drop(1006);
    release!(jwt({ sub: 'alice', exp: nowS() + 60 }));
    await jest.advanceTimersByTimeAsync(10);
    expect(socket.requests('refresh_token')).toHaveLength(0);
    FakeSocket.last.accept();
    await tick();
    expect(FakeSocket.last.requests('refresh_token')).toHaveLength(0);
    expect(errors).toEqual([]);
  });
});

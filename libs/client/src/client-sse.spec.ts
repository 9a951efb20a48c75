/** StreamingClient over SSE (receive-only) against a scripted server. */
import { StreamingClient } from './client';
import { FakeEventSource, FakeSocket, msg, tick } from '../test/fake-server';

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

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

  it('reconnects with a fresh token from getToken() and resumes by last_event_id (stream ended at exp)', async () => {
    let n = 0;
    const getToken = jest.fn(() => `tok${++n}`);
    const client = new StreamingClient({
      url: 'http://server:3000',
      getToken,
      transport: 'sse',
      EventSource: FakeEventSource,
      sse: { rooms: ['r1'] },
      reconnect: { initialDelayMs: 10 },
      random: () => 0.5,
    });
    const expired = jest.fn();
    client.on('auth_expired', expired);
    const got: number[] = [];
    client.on('message', (m) => got.push(m.seq));
    const p = client.connect();
    await tick();
    expect(FakeEventSource.last.url).toBe('http://server:3000/sse?token=tok1&rooms=r1');
    FakeEventSource.last.emit('connected', connectedData);
    await p;
    FakeEventSource.last.emit('message', msg('r1', 4));
    // The server ends the stream when the token expires: the EventSource reports an error.
    FakeEventSource.last.fail();
    await jest.advanceTimersByTimeAsync(5);
    const es2 = FakeEventSource.last;
    expect(FakeEventSource.all).toHaveLength(2);
    expect(es2.url).toBe(
      `http://server:3000/sse?token=tok2&rooms=r1&last_event_id=${encodeURIComponent('r1:4')}`,
    );
    es2.emit('connected', connectedData);
    es2.emit('message', msg('r1', 5));
    es2.emit('resumed', { rooms: { r1: 5 } });
    await tick();
    expect(client.state).toBe('open');
    expect(got).toEqual([4, 5]);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(expired).not.toHaveBeenCalled();
    client.close();
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

/**
 * StreamingClient against a scripted WebSocket server: requests and their acks, errors and
 * timeouts, the offline buffer, and rate-limit retries.
 */
import { StreamingClientError } from './errors';
import { FakeSocket, connected, msg, rateLimited, tick } from '../test/fake-server';

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('StreamingClient over WebSocket (fake server)', () => {
  it('threads: sendMessage with replyTo, getThread, thread_updated', async () => {
    const { client, socket } = await connected({ ackTimeoutMs: 1000 });
    const updates: unknown[] = [];
    client.on('thread_updated', (u) => updates.push(u));
    const sent = client.sendMessage('r1', 're', undefined, { replyTo: 'm1' });
    expect(socket.request('send_message').data).toEqual({ room_id: 'r1', content: 're', reply_to: 'm1' });
    socket.ack('send_message', { message_id: 'm2', seq: 2 });
    await expect(sent).resolves.toEqual({ message_id: 'm2', seq: 2 });

    const thread = client.getThread('r1', 'm1', 10);
    expect(socket.request('get_thread').data).toEqual({ room_id: 'r1', thread_id: 'm1', limit: 10 });
    socket.ack('get_thread', { messages: [] });
    await expect(thread).resolves.toEqual({ messages: [] });

    const update = {
      room_id: 'r1',
      thread_id: 'm1',
      reply_count: 1,
      last_reply_at: '2024-01-01T00:00:00.000Z',
    };
    socket.push({ type: 'thread_updated', data: update });
    await tick();
    expect(updates).toEqual([update]);
  });

  it('direct rooms, search and the live room list: openDirect, searchMessages, room_listed / room_unlisted', async () => {
    const { client, socket } = await connected({ ackTimeoutMs: 1000 });
    const direct = client.openDirect('bob');
    expect(socket.request('open_direct').data).toEqual({ user_id: 'bob' });
    socket.ack('open_direct', { room: { id: 'dm-x', kind: 'direct' } });
    await expect(direct).resolves.toEqual({ room: { id: 'dm-x', kind: 'direct' } });

    const found = client.searchMessages('r1', 'deploy cat', 5);
    expect(socket.request('search_messages').data).toEqual({ room_id: 'r1', query: 'deploy cat', limit: 5 });
    socket.ack('search_messages', { messages: [] });
    await expect(found).resolves.toEqual({ messages: [] });

    const seen: unknown[] = [];
    client.on('room_listed', (e) => seen.push(['listed', e.room.id]));
    client.on('room_unlisted', (e) => seen.push(['unlisted', e.room_id]));
    socket.push({ type: 'room_listed', data: { room: { id: 'r9' } } });
    socket.push({ type: 'room_unlisted', data: { room_id: 'r9' } });
    await tick();
    expect(seen).toEqual([
      ['listed', 'r9'],
      ['unlisted', 'r9'],
    ]);
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
});

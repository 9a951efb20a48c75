/**
 * StreamingClient against a scripted WebSocket server: delivering server events (typed listeners,
 * the catch-all), de-duplication by seq, live gaps and the per-room seq cursors; orderMessages.
 */
import type { ServerEnvelope, WireMessage } from '@nest-streaming/protocol';
import { orderMessages } from './client';
import { FakeSocket, connected, msg, tick } from '../test/fake-server';

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('StreamingClient over WebSocket (fake server)', () => {
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

  it('emits gap on a live seq jump', async () => {
    const { client, socket } = await connected();
    const gaps: unknown[] = [];
    client.on('gap', (g) => gaps.push(g));
    socket.push({ type: 'message', data: msg('r1', 1) }, { type: 'message', data: msg('r1', 4) });
    expect(gaps).toEqual([{ room_id: 'r1', reason: 'seq_jump', last_seq: 1 }]);
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

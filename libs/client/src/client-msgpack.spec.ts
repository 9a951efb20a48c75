/**
 * StreamingClient with `codec: 'msgpack'` against a scripted WebSocket server that speaks
 * MessagePack: the subprotocol, binary frames both ways, batched frames, and requests that carry
 * the JSON data model.
 */
import { pack, unpackMultiple } from 'msgpackr';
import { MSGPACK_SUBPROTOCOL, type WireMessage } from '@nest-streaming/protocol';
import { StreamingClient, type StreamingClientOptions } from './client';
import { bytesOf, parseBinaryFrame } from './msgpack';
import type { WebSocketLike } from './transports';

type Sent = { type: string; id?: string; data?: Record<string, unknown> };

/** A scripted WebSocket whose server speaks MessagePack. */
class PackedSocket implements WebSocketLike {
  static all: PackedSocket[] = [];
  readyState = 0;
  binaryType?: string;
  readonly sent: Sent[] = [];
  readonly rawSent: Array<string | Uint8Array> = [];
  onopen: ((ev: never) => void) | null = null;
  onmessage: ((ev: never) => void) | null = null;
  onclose: ((ev: never) => void) | null = null;
  onerror: ((ev: never) => void) | null = null;
  readonly args: unknown[];

  constructor(
    readonly url: string,
    ...rest: unknown[]
  ) {
    this.args = rest;
    PackedSocket.all.push(this);
  }
  static get last(): PackedSocket {
    return PackedSocket.all[PackedSocket.all.length - 1];
  }
  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.rawSent.push(data);
    if (typeof data !== 'string') this.sent.push(...(unpackMultiple(data) as Sent[]));
  }
  close(): void {
    this.readyState = 3;
  }
  accept(): void {
    this.readyState = 1;
    (this.onopen as ((e: unknown) => void) | null)?.({});
    this.push({
      type: 'connected',
      data: { connection_id: 'c1', user_id: 'alice', session_id: 's', node_id: 'n', ping_interval_ms: 1000 },
    });
  }
  /** One binary frame holding the envelopes, as an ArrayBuffer (what browsers deliver). */
  push(...envs: Array<{ type: string; id?: string; data: unknown }>): void {
    const bytes = Buffer.concat(envs.map((e) => pack(e)));
    this.deliver(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  }
  deliver(data: unknown): void {
    (this.onmessage as ((e: { data: unknown }) => void) | null)?.({ data });
  }
  request(type: string): Sent {
    const r = this.sent.filter((e) => e.type === type);
    if (r.length === 0) throw new Error(`no ${type} request sent`);
    return r[r.length - 1];
  }
  ack(type: string, data: unknown = {}): void {
    this.push({ type: 'ack', id: this.request(type).id, data });
  }
}

const msg = (room: string, seq: number): WireMessage => ({
  id: `${room}-${seq}`,
  seq,
  room_id: room,
  user_id: 'bob',
  content: `m${seq} ✓`,
  metadata: { n: seq },
  timestamp: new Date(0).toISOString(),
  reactions: {},
});

const tick = () => jest.advanceTimersByTimeAsync(0);

async function connected(extra: Partial<StreamingClientOptions> = {}) {
  const client = new StreamingClient({
    url: 'ws://server:3000/ws',
    token: 'tok',
    WebSocket: PackedSocket,
    codec: 'msgpack',
    random: () => 0.5,
    ...extra,
  });
  const p = client.connect();
  await tick();
  PackedSocket.last.accept();
  await p;
  return { client, socket: PackedSocket.last };
}

beforeEach(() => {
  PackedSocket.all = [];
  jest.useFakeTimers();
});
afterEach(() => jest.useRealTimers());

describe("StreamingClient with codec: 'msgpack'", () => {
  it('asks for the nest-streaming.msgpack subprotocol and binary frames as ArrayBuffers', async () => {
    const { client, socket } = await connected();
    expect(socket.args).toEqual([MSGPACK_SUBPROTOCOL]);
    expect(socket.binaryType).toBe('arraybuffer');
    expect(client.connection).toMatchObject({ connection_id: 'c1', user_id: 'alice' });
    client.close();
  });

  it('sends requests as MessagePack and settles them from MessagePack acks and errors', async () => {
    const { client, socket } = await connected();
    const joined = client.joinRoom('r1');
    expect(socket.rawSent[0]).toBeInstanceOf(Uint8Array);
    expect(socket.request('join_room')).toMatchObject({ type: 'join_room', data: { room_id: 'r1' } });
    socket.ack('join_room', { room: { id: 'r1' } });
    await expect(joined).resolves.toMatchObject({ room: { id: 'r1' } });

    const refused = client.sendMessage('r1', 'hi').catch((e: unknown) => e);
    socket.push({
      type: 'error',
      id: socket.request('send_message').id,
      data: { code: 'muted', message: 'you are muted' },
    });
    expect(await refused).toMatchObject({ code: 'muted', message: 'you are muted' });
    client.close();
  });

  it('writes the JSON values of a request: undefined dropped, dates as ISO strings', async () => {
    const { client, socket } = await connected();
    void client.request('custom', { a: undefined, when: new Date(0), list: [undefined, 1] }).catch(() => {});
    expect(socket.request('custom').data).toEqual({ when: '1970-01-01T00:00:00.000Z', list: [null, 1] });
    client.close();
  });

  it('delivers every envelope of a batched binary frame, in order', async () => {
    const { client, socket } = await connected();
    const got: string[] = [];
    client.on('message', (m) => got.push(`${m.room_id}:${m.seq}:${m.content}`));
    socket.push(
      { type: 'message', data: msg('r1', 1) },
      { type: 'message', data: msg('r1', 2) },
      { type: 'message', data: msg('r2', 1) },
    );
    // A Node Buffer (ws without binaryType) is read too.
    socket.deliver(pack({ type: 'message', data: msg('r1', 3) }));
    expect(got).toEqual(['r1:1:m1 ✓', 'r1:2:m2 ✓', 'r2:1:m1 ✓', 'r1:3:m3 ✓']);
    client.close();
  });

  it('ignores text frames and undecodable bytes, keeping what decoded before them', async () => {
    const { client, socket } = await connected();
    const got: number[] = [];
    client.on('message', (m) => got.push(m.seq));
    socket.deliver(JSON.stringify({ type: 'message', data: msg('r1', 9) }));
    socket.deliver(Buffer.concat([pack({ type: 'message', data: msg('r1', 1) }), Buffer.from([0xc1, 0xdd])]));
    socket.deliver(pack('not an envelope'));
    expect(got).toEqual([1]);
    client.close();
  });
});

describe('a server that does not speak MessagePack', () => {
  it('accepted the subprotocol but answers in JSON text: the client goes on in JSON', async () => {
    const client = new StreamingClient({
      url: 'ws://server:3000/ws',
      token: 'tok',
      WebSocket: PackedSocket,
      codec: 'msgpack',
    });
    const p = client.connect();
    await tick();
    const socket = PackedSocket.last;
    expect(socket.args).toEqual([MSGPACK_SUBPROTOCOL]);
    socket.readyState = 1;
    socket.deliver(JSON.stringify({ type: 'connected', data: { connection_id: 'c1', user_id: 'alice' } }));
    await expect(p).resolves.toMatchObject({ user_id: 'alice' });
    const joined = client.joinRoom('r1');
    const sent = JSON.parse(socket.rawSent[0] as string) as { id: string; type: string };
    expect(sent.type).toBe('join_room');
    socket.deliver(JSON.stringify({ type: 'ack', id: sent.id, data: { room: { id: 'r1' } } }));
    await expect(joined).resolves.toMatchObject({ room: { id: 'r1' } });
    client.close();
  });
});

describe('default codec', () => {
  it('opens the WebSocket without a subprotocol and sends JSON text', async () => {
    const client = new StreamingClient({ url: 'ws://server:3000/ws', token: 'tok', WebSocket: PackedSocket });
    const p = client.connect();
    await tick();
    const socket = PackedSocket.last;
    expect(socket.args).toEqual([]);
    expect(socket.binaryType).toBeUndefined();
    socket.readyState = 1;
    socket.deliver(JSON.stringify({ type: 'connected', data: { connection_id: 'c1', user_id: 'alice' } }));
    await p;
    void client.joinRoom('r1').catch(() => {});
    expect(() => socket.request('join_room')).toThrow(); // not decoded as MessagePack ...
    expect(JSON.parse(socket.rawSent[0] as string)).toMatchObject({ type: 'join_room' }); // ... it is JSON text
    client.close();
  });
});

describe('bytesOf / parseBinaryFrame', () => {
  it('reads ArrayBuffers, views and fragment lists; null for text', () => {
    const bytes = pack({ type: 'x', data: { a: 1 } });
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    for (const form of [bytes, ab, new Uint8Array(ab), [bytes.subarray(0, 3), bytes.subarray(3)]]) {
      expect(parseBinaryFrame(bytesOf(form)!)).toEqual([{ type: 'x', data: { a: 1 } }]);
    }
    expect(bytesOf('text')).toBeNull();
    expect(parseBinaryFrame(new Uint8Array(0))).toEqual([]);
  });
});

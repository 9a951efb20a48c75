import { unpackMultiple } from 'msgpackr';
import type { WireCodec } from '@nest-streaming/protocol';
import { encodeEnvelope } from '../protocol/envelope';
import { msgpack } from '../protocol/msgpack';
import { Connection, ConnectionTransport, SendLimits, WireFrame } from './connection';
import { TickFlushScheduler } from './flush-scheduler';
import { StreamingHub } from './hub';
import type { TopicTable } from './topic-table';

/** A socket that keeps every write (the frames as given) and takes everything at once. */
class FakeSocket implements ConnectionTransport {
  readonly kind = 'ws';
  writes: Array<readonly WireFrame[]> = [];
  constructor(readonly codec: WireCodec) {}
  write(frames: readonly WireFrame[]): void {
    this.writes.push([...frames]);
  }
  bufferedAmount(): number {
    return 0;
  }
  close(): void {}
}

const LIMITS: SendLimits = { budgetBytes: 100_000, hardCapBytes: 400_000, writeTimeoutMs: 1000 };

function connection(scheduler: TickFlushScheduler, codec: WireCodec, id: string) {
  const socket = new FakeSocket(codec);
  const conn = new Connection(
    id,
    { userId: id, sessionId: id, roles: [], anonymous: false, metadata: {} },
    socket,
    scheduler,
    LIMITS,
    () => undefined,
  );
  conn.sendFirst(encodeEnvelope('connected', { connection_id: id }));
  return { conn, socket };
}

/** Every envelope a socket got, decoded in its codec. */
function received(socket: FakeSocket): unknown[] {
  return socket.writes.flatMap((frames) =>
    socket.codec === 'json'
      ? (frames as string[])
          .join('\n')
          .split('\n')
          .map((l) => JSON.parse(l) as unknown)
      : (unpackMultiple(Buffer.concat(frames as Uint8Array[])) as unknown[]),
  );
}

describe('StreamingHub.deliver with JSON and MessagePack receivers', () => {
  const hub = new StreamingHub({} as TopicTable);
  let scheduler: TickFlushScheduler;

  beforeEach(() => {
    scheduler = new TickFlushScheduler(LIMITS.budgetBytes / 4, 60_000);
  });
  afterEach(() => {
    scheduler.dispose();
    jest.restoreAllMocks();
  });

  function room(json: number, packed: number) {
    const all = [
      ...Array.from({ length: json }, (_v, i) => connection(scheduler, 'json', `j${i}`)),
      ...Array.from({ length: packed }, (_v, i) => connection(scheduler, 'msgpack', `m${i}`)),
    ];
    scheduler.flush(); // `connected`
    scheduler.flush(); // a turn later: the sockets are idle, the next frame is written at once
    for (const c of all) c.socket.writes = [];
    return all;
  }

  it('encodes MessagePack once per broadcast and shares the bytes among its receivers', () => {
    const conns = room(3, 50);
    const encode = jest.spyOn(msgpack, 'fromJson');
    const envelope = encodeEnvelope('message', { seq: 1, content: 'hi' });
    expect(hub.deliver(envelope, (send) => conns.forEach((c) => send(c.conn)))).toBe(53);
    expect(encode).toHaveBeenCalledTimes(1);
    const packed = conns.filter((c) => c.socket.codec === 'msgpack').map((c) => c.socket.writes[0][0]);
    expect(packed[0]).toBeInstanceOf(Uint8Array);
    expect(packed.every((b) => b === packed[0])).toBe(true); // the same Buffer, not copies
    for (const c of conns)
      expect(received(c.socket)).toEqual([{ type: 'message', data: { seq: 1, content: 'hi' } }]);
    for (const c of conns.filter((x) => x.socket.codec === 'json'))
      expect(c.socket.writes[0][0]).toBe(envelope);
  });

  it('does no MessagePack work when every receiver uses JSON', () => {
    const conns = room(20, 0);
    const encode = jest.spyOn(msgpack, 'fromJson');
    for (let i = 0; i < 5; i++)
      hub.deliver(encodeEnvelope('message', { seq: i }), (send) => conns.forEach((c) => send(c.conn)));
    expect(encode).not.toHaveBeenCalled();
  });

  it('batches MessagePack envelopes of one turn into one write, counted without separators', () => {
    const [json, packed] = room(1, 1);
    const encode = jest.spyOn(msgpack, 'fromJson');
    for (let seq = 1; seq <= 4; seq++)
      hub.deliver(encodeEnvelope('message', { seq }), (send) => [json, packed].forEach((c) => send(c.conn)));
    expect(encode).toHaveBeenCalledTimes(4);
    scheduler.flush();
    // The first went at once (idle socket), the other three in one batch.
    expect(packed.socket.writes.map((w) => w.length)).toEqual([1, 3]);
    expect(json.socket.writes.map((w) => w.length)).toEqual([1, 3]);
    const seqs = (s: FakeSocket) => received(s).map((e) => (e as { data: { seq: number } }).data.seq);
    expect(seqs(packed.socket)).toEqual([1, 2, 3, 4]);
    expect(seqs(json.socket)).toEqual([1, 2, 3, 4]);
  });

  it('encodes frames for one MessagePack connection (acks, errors) in its codec', () => {
    const [packed] = room(0, 1);
    packed.conn.sendEvent('error', { code: 'invalid_message', message: 'no' }, 'r1');
    expect(received(packed.socket)).toEqual([
      { type: 'error', id: 'r1', data: { code: 'invalid_message', message: 'no' } },
    ]);
  });

  it('skips MessagePack receivers of a payload whose JSON does not parse, and still serves JSON ones', () => {
    const conns = room(2, 2);
    expect(hub.deliver('{"type":"broken"', (send) => conns.forEach((c) => send(c.conn)))).toBe(2);
  });
});

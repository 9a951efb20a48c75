import { Packr, pack, unpackMultiple } from 'msgpackr';
import { decodeFrame } from './codec';
import { encodeEnvelope } from './envelope';
import {
  JSON_SUBPROTOCOL,
  MSGPACK_SUBPROTOCOL,
  codecOfSubprotocol,
  msgpack,
  selectSubprotocol,
} from './msgpack';

/** What a frame decodes to: envelopes, or `error:<message>` (with the id when known). */
const summary = (bytes: Uint8Array) =>
  msgpack
    .decodeFrame(bytes)
    .map((l) => (l.ok ? l.envelope : { error: l.error.message, code: l.error.code, id: l.id }));

/** `levels` nested objects: `{a:{a:...{}}}`. */
function nested(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

describe('msgpack codec: server envelopes', () => {
  it('encodes the values of the JSON envelope, as a plain MessagePack map', () => {
    const json = encodeEnvelope(
      'message',
      { seq: 3, content: 'héllo', metadata: { n: 1.5, ok: true, x: null } },
      'r1',
    );
    const bytes = msgpack.fromJson(json);
    expect(unpackMultiple(bytes)).toEqual([JSON.parse(json)]);
    expect(bytes.length).toBeLessThan(Buffer.byteLength(json));
    // No msgpackr records: a standard decoder reads maps (0x80-0x8f fixmap first).
    expect(bytes[0] & 0xf0).toBe(0x80);
  });

  it('keeps the JSON data model: what JSON.stringify drops or turns into strings stays so', () => {
    const json = encodeEnvelope('x', { when: new Date(0), gone: undefined, nan: Number.NaN });
    expect(unpackMultiple(msgpack.fromJson(json))).toEqual([
      { type: 'x', data: { when: '1970-01-01T00:00:00.000Z', nan: null } },
    ]);
  });

  it('returns bytes that later encodes do not overwrite', () => {
    const a = msgpack.fromJson(encodeEnvelope('a', { n: 1 }));
    const copy = Buffer.from(a);
    for (let i = 0; i < 200; i++) msgpack.fromJson(encodeEnvelope('b', { n: i, pad: 'x'.repeat(100) }));
    expect(a.equals(copy)).toBe(true);
  });
});

describe('msgpack codec: client frames', () => {
  it('decodes one envelope, and several concatenated in one frame', () => {
    expect(summary(pack({ type: 'ping', id: '1' }))).toEqual([{ type: 'ping', id: '1', data: {} }]);
    const frame = Buffer.concat([
      pack({ type: 'join_room', id: 'a', data: { room_id: 'r' } }),
      pack({
        type: 'send_message',
        id: 'b',
        data: { room_id: 'r', content: 'hi', metadata: { k: [1, 'x'] } },
      }),
      pack({ type: 'ping', data: null }),
    ]);
    expect(summary(frame)).toEqual([
      { type: 'join_room', id: 'a', data: { room_id: 'r' } },
      { type: 'send_message', id: 'b', data: { room_id: 'r', content: 'hi', metadata: { k: [1, 'x'] } } },
      { type: 'ping', id: undefined, data: {} },
    ]);
  });

  it('answers bad bytes invalid_message, keeping the envelopes decoded before them', () => {
    expect(summary(Buffer.from([0xc1]))).toEqual([
      { code: 'invalid_message', error: 'a frame must hold MessagePack maps (envelopes)', id: undefined },
    ]);
    const truncated = Buffer.concat([
      pack({ type: 'ping', id: 'ok' }),
      pack({ type: 'ping', id: 'cut' }).subarray(0, 4),
    ]);
    expect(summary(truncated)).toEqual([
      { type: 'ping', id: 'ok', data: {} },
      { code: 'invalid_message', error: 'frame is not valid MessagePack', id: undefined },
    ]);
    expect(summary(Buffer.alloc(0))).toEqual([
      { code: 'invalid_message', error: 'empty frame', id: undefined },
    ]);
    expect(summary(Buffer.from([0xff, 0xff, 0xd9]))[0]).toMatchObject({ code: 'invalid_message' });
  });

  it('checks the envelope like a JSON line: type, id, data object', () => {
    expect(summary(pack('hello'))[0]).toMatchObject({ code: 'invalid_message' });
    expect(summary(pack({ id: 'x', data: {} }))[0]).toEqual({
      code: 'invalid_message',
      error: '"type" must be a non-empty string',
      id: 'x',
    });
    expect(summary(pack({ type: 'ping', id: 7 }))[0]).toMatchObject({ error: '"id" must be a string' });
    expect(summary(pack({ type: 'ping', id: 'x', data: [1] }))[0]).toEqual({
      code: 'invalid_message',
      error: '"data" must be a JSON object',
      id: 'x',
    });
    // Same messages as the JSON codec.
    const [jsonLine] = decodeFrame(JSON.stringify({ type: 'ping', id: 'x', data: [1] }));
    expect(jsonLine.ok ? null : jsonLine.error.message).toBe('"data" must be a JSON object');
  });

  it('applies the nesting limit of 32 levels inside data, as for JSON', () => {
    expect(summary(pack({ type: 'x', data: nested(32) }))[0]).toEqual({
      type: 'x',
      id: undefined,
      data: nested(32),
    });
    expect(summary(pack({ type: 'x', id: 'd', data: nested(33) }))[0]).toEqual({
      code: 'invalid_message',
      error: '"data" is nested deeper than 32 levels',
      id: 'd',
    });
    const [json] = decodeFrame(JSON.stringify({ type: 'x', data: nested(33) }));
    expect(json.ok ? null : json.error.message).toBe('"data" is nested deeper than 32 levels');
  });

  it('survives nesting deep enough to overflow the decoder, and decodes the next frame', () => {
    const deep = Buffer.alloc(60_000, 0x91); // array of array of ...
    deep[deep.length - 1] = 0xc0;
    expect(summary(deep)[0]).toMatchObject({ code: 'invalid_message' });
    expect(summary(pack({ type: 'ping', id: 'after' }))).toEqual([{ type: 'ping', id: 'after', data: {} }]);
  });

  it('refuses what JSON cannot say: binary, extensions, undefined, NaN, non-string keys, __proto__', () => {
    const bad = (data: unknown) => summary(pack({ type: 'x', id: 'i', data }))[0];
    const refused = { code: 'invalid_message', id: 'i' };
    expect(bad({ b: Buffer.from('bytes') })).toMatchObject(refused);
    expect(bad({ d: new Date(0) })).toMatchObject(refused);
    expect(bad({ u: undefined })).toMatchObject(refused);
    expect(bad({ n: Number.NaN })).toMatchObject(refused);
    expect(bad({ n: [Infinity] })).toMatchObject(refused);
    const moreTypes = new Packr({ moreTypes: true, useRecords: false });
    expect(summary(moreTypes.pack({ type: 'x', id: 'i', data: { s: new Set([1]) } }))[0]).toMatchObject(
      refused,
    );
    expect(bad({ m: new Map([[1, 'one']]) })).toMatchObject({
      ...refused,
      error: 'map keys must be strings',
    });
    expect(summary(moreTypes.pack({ type: 'x', id: 'i', data: { r: /x/ } }))[0]).toMatchObject(refused);
    // msgpackr records (its own extension) and structured-clone references (cycles).
    const records = new Packr({ useRecords: true });
    expect(summary(records.pack({ type: 'x', data: { a: 1 } }))[0]).toMatchObject({
      code: 'invalid_message',
    });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const clone = new Packr({ structuredClone: true });
    expect(summary(clone.pack({ type: 'x', data: cyclic }))[0]).toMatchObject({ code: 'invalid_message' });
    // __proto__ keys: {"__proto__": 1} inside data, and at the top.
    const proto = Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01]);
    const inData = Buffer.concat([
      Buffer.from([0x83, 0xa4]),
      Buffer.from('type'),
      pack('x'),
      Buffer.from([0xa2]),
      Buffer.from('id'),
      pack('p'),
      Buffer.from([0xa4]),
      Buffer.from('data'),
      proto,
    ]);
    expect(summary(inData)[0]).toEqual({
      code: 'invalid_message',
      error: 'the key "__proto__" is not allowed',
      id: 'p',
    });
    expect(summary(proto)[0]).toMatchObject({ error: 'the key "__proto__" is not allowed' });
  });

  it('reads 64-bit integers as numbers, like JSON.parse', () => {
    const big = Buffer.from([0xcf, 0, 0, 1, 0, 0, 0, 0, 0]);
    const frame = Buffer.concat([
      Buffer.from([0x82, 0xa4]),
      Buffer.from('type'),
      pack('x'),
      Buffer.from([0xa4]),
      Buffer.from('data'),
      Buffer.from([0x81, 0xa1, 0x6e]),
      big,
    ]);
    expect(summary(frame)).toEqual([{ type: 'x', id: undefined, data: { n: 2 ** 40 } }]);
  });

  it('finds the request ids of an oversized frame', () => {
    const frame = Buffer.concat([
      pack({ type: 'a', id: 'one' }),
      pack({ type: 'b' }),
      pack({ type: 'c', id: 'three' }),
    ]);
    expect(msgpack.idsOfOversizedFrame(frame)).toEqual(['one', undefined, 'three']);
    expect(msgpack.idsOfOversizedFrame(Buffer.from([0xc1, 0xdd]))).toEqual([undefined, undefined]);
    expect(msgpack.idsOfOversizedFrame(Buffer.from([0xdd]))).toEqual([undefined]);
  });
});

describe('subprotocol', () => {
  it('takes the first subprotocol of the list that the server speaks', () => {
    expect(selectSubprotocol(new Set([MSGPACK_SUBPROTOCOL]))).toBe(MSGPACK_SUBPROTOCOL);
    expect(selectSubprotocol(new Set(['chat', MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL]))).toBe(
      MSGPACK_SUBPROTOCOL,
    );
    expect(selectSubprotocol(new Set([JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL]))).toBe(JSON_SUBPROTOCOL);
  });

  it('accepts a list of unknown subprotocols as JSON, answering with the first (as ws did)', () => {
    expect(selectSubprotocol(new Set(['chat', 'v2']))).toBe('chat');
    expect(codecOfSubprotocol('chat')).toBe('json');
    expect(codecOfSubprotocol('')).toBe('json');
    expect(codecOfSubprotocol(JSON_SUBPROTOCOL)).toBe('json');
    expect(codecOfSubprotocol(MSGPACK_SUBPROTOCOL)).toBe('msgpack');
    expect(selectSubprotocol(new Set())).toBe(false);
  });
});

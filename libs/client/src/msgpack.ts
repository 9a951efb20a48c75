import { Packr, Unpackr } from 'msgpackr';
import {
  MSGPACK_SUBPROTOCOL,
  type ClientEnvelope,
  type ServerEnvelope,
  type WireCodec,
} from '@nest-streaming/protocol';
import { toEnvelope } from './ndjson';

/**
 * The MessagePack codec of the WebSocket transport (`codec: 'msgpack'`): the
 * `nest-streaming.msgpack` subprotocol, binary frames holding one or more
 * concatenated MessagePack envelopes, each the same `{type, id?, data}` as in
 * JSON. msgpackr runs in browsers and Node.
 */

/** Plain MessagePack maps (no msgpackr records): what the server accepts. */
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Writes one request envelope in a connection's codec. */
export type EnvelopeEncoder = (env: ClientEnvelope) => string | Uint8Array;

const encodeJson: EnvelopeEncoder = (env) => JSON.stringify(env);

/**
 * MessagePack of the envelope's JSON values: what `JSON.stringify` drops or
 * turns into strings (`undefined`, dates, `toJSON`) is dropped or turned into
 * strings here too, so a request means the same in both codecs (the server
 * refuses MessagePack that JSON could not have said).
 */
const encodeMsgpack: EnvelopeEncoder = (env) => packr.pack(JSON.parse(JSON.stringify(env)) as unknown);

/** The request encoder of a codec. */
export const envelopeEncoder = (codec: WireCodec): EnvelopeEncoder =>
  codec === 'msgpack' ? encodeMsgpack : encodeJson;

/** The subprotocol to ask for at the upgrade (none for JSON: the server's default). */
export const subprotocolOf = (codec: WireCodec): string | undefined =>
  codec === 'msgpack' ? MSGPACK_SUBPROTOCOL : undefined;

/**
 * The bytes of a binary WebSocket message: an `ArrayBuffer` (browsers and `ws`
 * with `binaryType = 'arraybuffer'`) or a view (a Node `Buffer`); null for
 * anything else (text, a `Blob`).
 */
export function bytesOf(data: unknown): Uint8Array | null {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // Checked by tag, not instanceof: an ArrayBuffer from another realm (a worker, a test VM) counts.
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]') {
    return new Uint8Array(data as ArrayBuffer);
  }
  if (Array.isArray(data) && data.every((d) => ArrayBuffer.isView(d))) {
    // `ws` with binaryType 'fragments'.
    const out = new Uint8Array(data.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of data) {
      out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
      at += p.byteLength;
    }
    return out;
  }
  return null;
}

/**
 * Split one binary frame into envelopes: the server may batch several
 * MessagePack envelopes in one frame, concatenated. Values that are not maps
 * with a string `type` are skipped; bytes that do not decode end the frame
 * (what was decoded before them is kept).
 */
export function parseBinaryFrame(bytes: Uint8Array): ServerEnvelope[] {
  const out: ServerEnvelope[] = [];
  if (bytes.length === 0) return out;
  try {
    unpackr.unpackMultiple(bytes, (value: unknown) => {
      const env = toEnvelope(value);
      if (env) out.push(env);
    });
  } catch {
    // Not MessagePack: nothing more in this frame.
  }
  return out;
}

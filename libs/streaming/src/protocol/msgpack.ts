import { Packr, Unpackr } from 'msgpackr';
import { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, type WireCodec } from '@nest-streaming/protocol';
import { DecodedLine, MAX_DATA_DEPTH, validateEnvelope } from './codec';
import { StreamingError } from './streaming-error';

export { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, type WireCodec } from '@nest-streaming/protocol';

/**
 * The MessagePack codec of the WebSocket transport (subprotocol
 * `nest-streaming.msgpack`). What it carries is the JSON data model and
 * nothing more: server envelopes are made from their JSON serialization (one
 * `JSON.parse` + `pack` per broadcast, so both codecs deliver the same
 * values), and client envelopes may only hold nil, booleans, finite numbers,
 * strings, arrays and maps with string keys: binary, extension types
 * (timestamps, msgpackr's records, `undefined`, ...), NaN and infinities are
 * `invalid_message`, like anything JSON could not have said.
 */

/** Plain MessagePack maps (no msgpackr records), sized to their content. */
const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * Maps decode as `Map` (converted below, key by key, so `__proto__` and
 * non-string keys are seen); no structured-clone references (cycles); 64-bit
 * integers as numbers, as `JSON.parse` reads them.
 */
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false,
  structuredClone: false,
  int64AsType: 'number',
});

/** The key that JSON clients may not send either (see `validateEnvelope`). */
const PROTO_KEY = '__proto__';

const invalid = (message: string): StreamingError => new StreamingError('invalid_message', message);

/**
 * A decoded MessagePack value as the JSON value it stands for (maps become
 * plain objects, arrays are converted in place). `level` is the nesting level
 * of `value` when it is a container (`data` is level 1); past
 * {@link MAX_DATA_DEPTH} it throws, with the message JSON clients get.
 */
function toJsonValue(value: unknown, level: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value;
      throw invalid('NaN and infinite numbers are not accepted (JSON has none)');
    case 'object': {
      if (value === null) return null;
      if (level > MAX_DATA_DEPTH) throw invalid(`"data" is nested deeper than ${MAX_DATA_DEPTH} levels`);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) value[i] = toJsonValue(value[i], level + 1);
        return value;
      }
      if (value instanceof Map) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of value as Map<unknown, unknown>) {
          if (typeof k !== 'string') throw invalid('map keys must be strings');
          if (k === PROTO_KEY) throw invalid('the key "__proto__" is not allowed');
          out[k] = toJsonValue(v, level + 1);
        }
        return out;
      }
      break;
    }
  }
  throw invalid('binary, extension types and undefined are not accepted: send JSON-like values');
}

/** One decoded MessagePack value as a client envelope, checked like a JSON line. */
function envelopeOf(value: unknown): DecodedLine {
  if (!(value instanceof Map)) {
    return { ok: false, error: invalid('a frame must hold MessagePack maps (envelopes)') };
  }
  const head: Record<string, unknown> = {};
  let data: unknown;
  for (const [k, v] of value as Map<unknown, unknown>) {
    if (k === 'type' || k === 'id') head[k] = v;
    else if (k === 'data') data = v;
    else if (k === PROTO_KEY) {
      return { ok: false, id: idOf(value), error: invalid('the key "__proto__" is not allowed') };
    }
  }
  // type and id first, as for JSON; then data.
  const checked = validateEnvelope(head);
  if (!checked.ok || data === undefined || data === null) return checked;
  const id = checked.envelope.id;
  if (!(data instanceof Map)) {
    return { ok: false, id, error: invalid('"data" must be a JSON object') };
  }
  try {
    return validateEnvelope({ type: checked.envelope.type, id, data: toJsonValue(data, 1) });
  } catch (err) {
    return { ok: false, id, error: err instanceof StreamingError ? err : invalid('invalid "data"') };
  }
}

/** The request id of a decoded value, if it is an envelope with one. */
function idOf(value: unknown): string | undefined {
  if (!(value instanceof Map)) return undefined;
  const id: unknown = (value as Map<unknown, unknown>).get('id');
  return typeof id === 'string' ? id : undefined;
}

/**
 * The codec's operations. An object (not loose functions) so that tests can
 * count the encodes of a broadcast.
 */
export const msgpack = {
  /**
   * The MessagePack bytes of a serialized server envelope: decoded once from
   * its JSON and packed once. A broadcast calls this at most once, whatever
   * the number of MessagePack receivers; the bytes are shared.
   */
  fromJson(json: string): Buffer {
    return packr.pack(JSON.parse(json));
  },

  /**
   * Decode one binary frame from a client: one or more concatenated
   * MessagePack envelopes. Never throws; every bad envelope becomes an error
   * entry, and bytes that do not decode end the frame with one.
   */
  decodeFrame(bytes: Uint8Array): DecodedLine[] {
    if (bytes.length === 0) return [{ ok: false, error: invalid('empty frame') }];
    const out: DecodedLine[] = [];
    try {
      unpackr.unpackMultiple(bytes, (value: unknown) => {
        out.push(envelopeOf(value));
      });
    } catch {
      out.push({ ok: false, error: invalid('frame is not valid MessagePack') });
    }
    return out;
  },

  /** Best effort: the request ids of an oversized frame, so that its error can carry them. */
  idsOfOversizedFrame(bytes: Uint8Array): Array<string | undefined> {
    const ids: Array<string | undefined> = [];
    try {
      unpackr.unpackMultiple(bytes, (value: unknown) => {
        ids.push(idOf(value));
      });
    } catch {
      ids.push(undefined);
    }
    return ids.length > 0 ? ids : [undefined];
  },
};

/**
 * The `handleProtocols` of the WebSocket server: the first subprotocol of the
 * client's list that the server speaks. A list of unknown subprotocols only
 * is accepted as JSON, answering with the first of them, as `ws` does when
 * the server has no preference (clients that send one today keep working).
 */
export function selectSubprotocol(offered: ReadonlySet<string>): string | false {
  for (const p of offered) if (p === MSGPACK_SUBPROTOCOL || p === JSON_SUBPROTOCOL) return p;
  const first = offered.values().next();
  return first.done === true ? false : first.value;
}

/** The codec of a WebSocket whose handshake settled on `protocol` (`''` when none). */
export function codecOfSubprotocol(protocol: string): WireCodec {
  return protocol === MSGPACK_SUBPROTOCOL ? 'msgpack' : 'json';
}

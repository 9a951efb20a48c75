import { ClientEnvelope } from './envelope';
import { StreamingError } from './streaming-error';

/** Deepest nesting allowed inside `data` (data itself is level 1). */
export const MAX_DATA_DEPTH = 32;

/** One decoded line of a frame: an envelope, or the error to answer with (and the request id, if known). */
export type DecodedLine =
  { ok: true; envelope: ClientEnvelope } | { ok: false; error: StreamingError; id?: string };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A key that would replace an object's prototype when copied with assignment. */
const PROTO_KEY = '__proto__';

/**
 * Nesting depth of a JSON value (objects and arrays count; scalars are 0),
 * without recursion; -1 when some object has a `__proto__` key.
 */
export function jsonDepth(value: unknown, limit = Infinity): number {
  if (typeof value !== 'object' || value === null) return 0;
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (d > max) {
      max = d;
      if (max > limit) return max;
    }
    if (Array.isArray(v)) {
      for (const c of v) if (typeof c === 'object' && c !== null) stack.push([c, d + 1]);
      continue;
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k === PROTO_KEY) return -1;
      const c = o[k];
      if (typeof c === 'object' && c !== null) stack.push([c, d + 1]);
    }
  }
  return max;
}

function idOf(v: unknown): string | undefined {
  return isPlainObject(v) && typeof v.id === 'string' ? v.id : undefined;
}

/** Check the shape of one parsed envelope. */
export function validateEnvelope(parsed: unknown): DecodedLine {
  if (!isPlainObject(parsed)) {
    return { ok: false, error: new StreamingError('invalid_message', 'a frame must be a JSON object') };
  }
  const id = idOf(parsed);
  if (parsed.id !== undefined && typeof parsed.id !== 'string') {
    return { ok: false, error: new StreamingError('invalid_message', '"id" must be a string') };
  }
  if (typeof parsed.type !== 'string' || parsed.type.length === 0) {
    return {
      ok: false,
      id,
      error: new StreamingError('invalid_message', '"type" must be a non-empty string'),
    };
  }
  let data = parsed.data;
  if (data === undefined || data === null) data = {};
  if (!isPlainObject(data)) {
    return { ok: false, id, error: new StreamingError('invalid_message', '"data" must be a JSON object') };
  }
  const depth = Object.prototype.hasOwnProperty.call(parsed, PROTO_KEY)
    ? -1
    : jsonDepth(data, MAX_DATA_DEPTH);
  if (depth === -1) {
    return {
      ok: false,
      id,
      error: new StreamingError('invalid_message', 'the key "__proto__" is not allowed'),
    };
  }
  if (depth > MAX_DATA_DEPTH) {
    return {
      ok: false,
      id,
      error: new StreamingError('invalid_message', `"data" is nested deeper than ${MAX_DATA_DEPTH} levels`),
    };
  }
  return { ok: true, envelope: { type: parsed.type, id, data } };
}

/**
 * Decode one text frame: newline-delimited JSON, one envelope per non-empty line.
 * Never throws; every bad line becomes an error entry.
 */
export function decodeFrame(text: string): DecodedLine[] {
  const out: DecodedLine[] = [];
  const lines = text.indexOf('\n') === -1 ? [text] : text.split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line.length === 0) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      out.push({ ok: false, error: new StreamingError('invalid_message', 'frame is not valid JSON') });
      continue;
    }
    out.push(validateEnvelope(parsed));
  }
  if (out.length === 0) out.push({ ok: false, error: new StreamingError('invalid_message', 'empty frame') });
  return out;
}

/** Best effort: the request ids of an oversized frame, so that its error can carry them. */
export function idsOfOversizedFrame(text: string): Array<string | undefined> {
  const ids: Array<string | undefined> = [];
  for (const raw of text.split('\n')) {
    if (raw.trim().length === 0) continue;
    try {
      ids.push(idOf(JSON.parse(raw)));
    } catch {
      ids.push(undefined);
    }
  }
  return ids.length > 0 ? ids : [undefined];
}

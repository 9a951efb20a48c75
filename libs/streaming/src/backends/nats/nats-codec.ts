import { type RoomRecord, type StoredMessage } from '../../interfaces';
/**
 * Value layouts of the NATS backend. Values are JSON (UTF-8), except the room
 * log entry, which leads with plain fields so that every node can route a
 * republished entry without parsing the envelope it carries.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string (values we write are JSON: lone surrogates arrive escaped). */
export const utf8 = (s: string): Uint8Array => encoder.encode(s);
/** String of UTF-8 bytes. */
export const fromUtf8 = (b: Uint8Array): string => decoder.decode(b);
/** JSON bytes of a value. */
export const jsonBytes = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));
/** Parse JSON bytes (`__proto__` keys stay own data properties, as JSON.parse defines them). */
export const parseJson = <T>(b: Uint8Array): T => JSON.parse(decoder.decode(b)) as T;

// ---------------------------------------------------------------- room log

/**
 * The value of a room's key in the `seqs` bucket: the room's sequencer.
 *
 *   line 1: `<seq> <floor> <incarnation>`   last seq given out, lowest seq still in history, room incarnation
 *   line 2: JSON literal of the publish topic, or empty
 *   rest:   the `message` envelope published on that topic, or empty
 *
 * Every appendMessage replaces it with compare-and-swap (expected last subject
 * sequence), so the stream holds the entries in seq order; the server
 * republishes each stored entry on `<prefix>.rl.<room>` in that order.
 */
export interface RoomLogEntry {
  seq: number;
  floor: number;
  inc: string;
  topic?: string;
  envelope?: string;
}

export function encodeRoomLog(e: RoomLogEntry): string {
  const topic = e.topic === undefined ? '' : JSON.stringify(e.topic);
  return `${e.seq} ${e.floor} ${e.inc}\n${topic}\n${e.topic === undefined ? '' : (e.envelope ?? '')}`;
}

/** Decode a room log value; null for anything else (delete markers, garbage). */
export function decodeRoomLog(text: string): RoomLogEntry | null {
  const nl1 = text.indexOf('\n');
  if (nl1 < 0) return null;
  const nl2 = text.indexOf('\n', nl1 + 1);
  if (nl2 < 0) return null;
  const head = text.slice(0, nl1).split(' ');
  if (head.length !== 3) return null;
  const seq = Number(head[0]);
  const floor = Number(head[1]);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(floor) || head[2] === '') return null;
  const entry: RoomLogEntry = { seq, floor, inc: head[2] };
  const topic = text.slice(nl1 + 1, nl2);
  if (topic !== '') {
    try {
      entry.topic = JSON.parse(topic) as string;
    } catch {
      return null;
    }
    if (typeof entry.topic !== 'string') return null;
    entry.envelope = text.slice(nl2 + 1);
  }
  return entry;
}

// ---------------------------------------------------------------- records

/** The value of a room's key in the `rooms` bucket. */
export interface RoomValue {
  /** The room as given (extra fields kept). */
  r: RoomRecord;
  /** Incarnation: a fresh id per createRoom, so leftovers of a deleted room with the same id are recognised. */
  inc: string;
  /** Number of members (kept with the room so that `maxMembers` is checked in the same compare-and-swap). */
  n: number;
  /** Set (epoch ms) while deleteRoom removes the room's data: the room reads as absent. */
  d?: number;
}

/**
 * The value of `<room>.s.<seq>` in the `messages` bucket. Written before the
 * seq is committed in the room log, so it also carries what another node needs
 * to finish that commit if this one dies half-way (topic and maxHistory).
 */
export interface MessageValue {
  /** Publish topic, or null. */
  t: string | null;
  /** maxHistory of the append (-1: unlimited). */
  h: number;
  /** Incarnation of the room it was appended to. */
  i: string;
  m: StoredMessage;
}

/** A user's room index: [roomId, reserved at (epoch ms)] in join order. */
export type UserRoomsValue = [string, number][];

/** A value that expires at `e` (epoch ms). */
export interface Expiring<T> {
  v: T;
  e: number;
}

/** Epoch ms of a message timestamp for age trimming; unparsable timestamps never count as old. */
export function timestampMs(timestamp: string): number {
  const t = Date.parse(timestamp);
  return Number.isFinite(t) ? t : Number.MAX_SAFE_INTEGER;
}

/** ECMAScript ToIntegerOrInfinity, as `Array.prototype.slice` applies it to its arguments. */
const toIntegerOrInfinity = (x: number): number => (Number.isNaN(x) ? 0 : Math.trunc(x));

/**
 * The seqs `first..last` that selectHistory keeps of the contiguous range
 * `lo..hi`: `slice(0, limit)` of it with `after` (`fromOldest`), else
 * `slice(-limit)`, with the exact slice semantics (so 0 < limit < 1 without
 * `after` keeps everything, as it does for the in-memory stores). Null when empty.
 */
export function pageRange(
  lo: number,
  hi: number,
  limit: number,
  fromOldest: boolean,
): { first: number; last: number } | null {
  if (limit <= 0 || lo > hi) return null;
  const len = hi - lo + 1;
  let n: number;
  if (fromOldest) {
    n = Math.min(len, Math.max(0, toIntegerOrInfinity(limit)));
  } else {
    const start = toIntegerOrInfinity(-limit);
    n = start < 0 ? Math.min(len, -start) : len;
  }
  if (n <= 0) return null;
  return fromOldest ? { first: lo, last: lo + n - 1 } : { first: hi - n + 1, last: hi };
}

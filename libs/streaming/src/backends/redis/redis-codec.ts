/**
 * How the Redis backend lays records out in Redis values, and back.
 *
 * The Lua scripts never decode JSON (Redis' cjson loses float precision, turns
 * `[]` into `{}`, reorders keys and rejects lone surrogates). Instead, the
 * parts a script must read or change are kept as separate fields of a value,
 * joined by ASCII control characters that `JSON.stringify` never emits raw
 * (it escapes every code unit below 0x20), and each field is either a plain
 * token or a JSON literal that the script only compares or concatenates.
 */
import { encodeMessageEnvelope } from '../../protocol/wire';
import {
  type MemberRecord,
  type MessageDraft,
  type MessageVersion,
  type Restriction,
  type RoomRecord,
  type StoredMessage,
} from '../../interfaces';

/** Field separator of records (US). */
export const FIELD_SEP = '\x1f';
/** Separator between reaction groups (RS). */
export const GROUP_SEP = '\x1e';
/** Separator inside a reaction group: emoji, then user ids (GS). */
export const ITEM_SEP = '\x1d';

/** JSON literal of a value; `undefined` (which JSON cannot hold) becomes `null`. */
export const jsonLiteral = (v: unknown): string => JSON.stringify(v) ?? 'null';
const lit = jsonLiteral;
/** JSON literal of an optional value: '' when absent. */
const opt = (v: unknown): string => (v === undefined ? '' : lit(v));

/** Copy `extra`'s own keys not in `known` onto `target` (future fields survive the round trip). */
function copyExtras(target: Record<string, unknown>, extra: Record<string, unknown>, known: string[]): void {
  for (const key of Object.keys(extra)) {
    if (known.includes(key)) continue;
    Object.defineProperty(target, key, {
      value: extra[key],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
}

// ---------------------------------------------------------------- messages

/*
 * A message is one value of the room's `msgs` hash:
 *
 *   [0] seq            decimal (written by the append script)
 *   [1] userId         JSON literal
 *   [2] timestamp      JSON literal
 *   [3] content        JSON literal
 *   [4] editedAt       JSON literal or ''
 *   [5] editedBy       JSON literal or ''
 *   [6] deleted        JSON literal or ''
 *   [7] deletedBy      JSON literal or ''
 *   [8] deletedAt      JSON literal or ''
 *   [9] reactions      groups joined by RS; a group is the emoji literal then the user literals, joined by GS
 *  [10] versions       JSON array or ''
 *  [11] the rest       JSON object: id, roomId, metadata and any other field (threads: replyTo, threadId)
 *  [12] replyCount     decimal or '' (threads)
 *  [13] lastReplyAt    JSON literal or ''
 *
 * The update script (`UPDATE_MESSAGE` in scripts/broker-scripts.ts) edits fields 3..10, 12 and 13 in
 * place. Records written before threads have 12 fields; they decode the same (no replies).
 */
const MUTABLE_KEYS = [
  'seq',
  'userId',
  'timestamp',
  'content',
  'editedAt',
  'editedBy',
  'deleted',
  'deletedBy',
  'deletedAt',
  'reactions',
  'versions',
  'replyCount',
  'lastReplyAt',
];
export const MESSAGE_FIELDS = 14;
/** Fields of a record written before threads (no replyCount, lastReplyAt). */
const LEGACY_MESSAGE_FIELDS = 12;

/** Everything of a message record after `<seq>` + FIELD_SEP. */
export function encodeMessageTail(m: MessageDraft): string {
  const rest: Record<string, unknown> = {};
  copyExtras(rest, m, MUTABLE_KEYS);
  const groups: string[] = [];
  for (const [emoji, users] of Object.entries(m.reactions ?? {})) {
    groups.push([lit(emoji), ...(Array.isArray(users) ? users : []).map(lit)].join(ITEM_SEP));
  }
  return [
    lit(m.userId),
    lit(m.timestamp),
    lit(m.content),
    opt(m.editedAt),
    opt(m.editedBy),
    opt(m.deleted),
    opt(m.deletedBy),
    opt(m.deletedAt),
    groups.join(GROUP_SEP),
    m.versions === undefined ? '' : lit(m.versions),
    lit(rest),
    m.replyCount === undefined ? '' : String(m.replyCount),
    opt(m.lastReplyAt),
  ].join(FIELD_SEP);
}

/** A full message record (what the append script stores). */
export const encodeMessageRecord = (seq: number, m: MessageDraft): string =>
  `${seq}${FIELD_SEP}${encodeMessageTail(m)}`;

const parseLit = (s: string): unknown => JSON.parse(s) as unknown;

function decodeReactions(field: string): Record<string, string[]> {
  const entries: [string, string[]][] = [];
  if (field !== '') {
    for (const group of field.split(GROUP_SEP)) {
      const [emoji, ...users] = group.split(ITEM_SEP);
      entries.push([String(parseLit(emoji)), users.map((u) => parseLit(u) as string)]);
    }
  }
  // fromEntries defines own data properties: "__proto__" stays a plain key.
  return Object.fromEntries(entries);
}

function decodeVersions(field: string): MessageVersion[] {
  const raw = parseLit(field);
  if (!Array.isArray(raw)) return [];
  return raw.map((v: Record<string, unknown>) => {
    const out = { content: v.content, editedBy: v.editedBy, editedAt: v.editedAt } as MessageVersion;
    copyExtras(out as unknown as Record<string, unknown>, v, ['content', 'editedBy', 'editedAt']);
    return out;
  });
}

/** Decode a record of the `msgs` hash into a StoredMessage (fixed key order). */
export function decodeMessageRecord(record: string): StoredMessage {
  const f = record.split(FIELD_SEP);
  if (f.length !== MESSAGE_FIELDS && f.length !== LEGACY_MESSAGE_FIELDS)
    throw new Error(`corrupt message record (${f.length} fields)`);
  const rest = parseLit(f[11]) as Record<string, unknown>;
  const m: Record<string, unknown> = {
    id: rest.id,
    seq: Number(f[0]),
    roomId: rest.roomId,
    userId: parseLit(f[1]),
    content: parseLit(f[3]),
    metadata: rest.metadata,
    timestamp: parseLit(f[2]),
  };
  if (rest.metadata === undefined) delete m.metadata;
  if (f[4] !== '') m.editedAt = parseLit(f[4]);
  if (f[5] !== '') m.editedBy = parseLit(f[5]);
  if (f[6] !== '') m.deleted = parseLit(f[6]);
  if (f[7] !== '') m.deletedBy = parseLit(f[7]);
  if (f[8] !== '') m.deletedAt = parseLit(f[8]);
  m.reactions = decodeReactions(f[9]);
  if (f[10] !== '') m.versions = decodeVersions(f[10]);
  if (f[12] !== undefined && f[12] !== '') m.replyCount = Number(f[12]);
  if (f[13] !== undefined && f[13] !== '') m.lastReplyAt = parseLit(f[13]);
  copyExtras(m, rest, ['id', 'roomId', 'metadata']);
  return m as unknown as StoredMessage;
}

/**
 * Split the `message` envelope of `m` around its seq: `prefix + seq + suffix`
 * is byte for byte `encodeMessageEnvelope({ ...m, seq })`, for any seq. The
 * append script splices the seq it assigns in between and PUBLISHes the result.
 */
export function splitMessageEnvelope(
  m: MessageDraft,
  encode: (stored: StoredMessage) => string = encodeMessageEnvelope,
): { prefix: string; suffix: string } {
  const zero = encode({ ...m, seq: 0 });
  // Fast path: messageToWire puts seq right after id.
  const fast = `{"type":"message","data":{"id":${lit(m.id)},"seq":`;
  if (zero.startsWith(fast) && zero[fast.length] === '0') {
    return { prefix: fast, suffix: zero.slice(fast.length + 1) };
  }
  // General path: the one character where seq 0 and seq 1 differ is the seq.
  const one = encode({ ...m, seq: 1 });
  let i = 0;
  while (i < zero.length && zero[i] === one[i]) i++;
  const prefix = zero.slice(0, i);
  const suffix = zero.slice(i + 1);
  if (zero[i] !== '0' || one !== `${prefix}1${suffix}`) {
    throw new Error('cannot locate seq in the message envelope');
  }
  return { prefix, suffix };
}

/** Epoch ms of a message timestamp for age trimming; unparsable timestamps never count as old. */
export function timestampMs(timestamp: string): number {
  const t = Date.parse(timestamp);
  return Number.isFinite(t) ? t : Number.MAX_SAFE_INTEGER;
}

// ---------------------------------------------------------------- rooms

const ROOM_KEYS = ['id', 'name', 'description', 'private', 'owner', 'maxMembers', 'createdAt', 'metadata'];

/** A room as `HSET` arguments: field, JSON value, field, JSON value, ... (`undefined` values skipped). */
export function roomToHashArgs(room: Partial<RoomRecord>): string[] {
  const args: string[] = [];
  for (const [field, value] of Object.entries(room)) {
    if (value === undefined) continue;
    args.push(field, lit(value));
  }
  return args;
}

/** A room from its hash (as an object or as HGETALL's flat array); null when empty. */
export function roomFromHash(hash: Record<string, string> | string[]): RoomRecord | null {
  const fields: Record<string, unknown> = {};
  const set = (k: string, v: string): void => {
    Object.defineProperty(fields, k, {
      value: parseLit(v),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  };
  if (Array.isArray(hash)) for (let i = 0; i + 1 < hash.length; i += 2) set(hash[i], hash[i + 1]);
  else for (const k of Object.keys(hash)) set(k, hash[k]);
  if (Object.keys(fields).length === 0) return null;
  const room: Record<string, unknown> = {};
  for (const k of ROOM_KEYS) if (k in fields) room[k] = fields[k];
  copyExtras(room, fields, ROOM_KEYS);
  return room as unknown as RoomRecord;
}

// ---------------------------------------------------------------- members

const MEMBER_KEYS = ['userId', 'role', 'joinedAt'];

/** `<role>` FIELD_SEP `<JSON without role>`: the role can be changed without parsing JSON. */
export function encodeMember(m: MemberRecord): string {
  const rest: Record<string, unknown> = { userId: m.userId, joinedAt: m.joinedAt };
  copyExtras(rest, m as unknown as Record<string, unknown>, MEMBER_KEYS);
  return `${m.role}${FIELD_SEP}${lit(rest)}`;
}

export function decodeMember(value: string): MemberRecord {
  const i = value.indexOf(FIELD_SEP);
  const rest = parseLit(value.slice(i + 1)) as Record<string, unknown>;
  const m: Record<string, unknown> = {
    userId: rest.userId,
    role: value.slice(0, i),
    joinedAt: rest.joinedAt,
  };
  copyExtras(m, rest, MEMBER_KEYS);
  return m as unknown as MemberRecord;
}

// ---------------------------------------------------------------- restrictions

export const restrictionField = (kind: Restriction['kind'], userId: string): string => `${kind}:${userId}`;

/** `<until ms or ''>` FIELD_SEP `<JSON>`: scripts check expiry without parsing JSON. */
export function encodeRestriction(r: Restriction): string {
  const until = typeof r.until === 'number' && Number.isFinite(r.until) ? String(r.until) : '';
  return `${until}${FIELD_SEP}${lit(r)}`;
}

export function decodeRestriction(value: string): Restriction {
  return parseLit(value.slice(value.indexOf(FIELD_SEP) + 1)) as Restriction;
}

/**
 * Names the NATS backend uses on the server: KV bucket names, KV keys and
 * core subjects, all derived from one prefix.
 *
 * Ids and topics are arbitrary strings (`room:42`, `a.b.*`, emoji, ...), but
 * a KV key or a subject token may only hold `[-/_=.A-Za-z0-9]` (no `.` inside
 * a token). Every id therefore becomes one token: `b` + base64url of its UTF-8
 * bytes, or `w` + base64url of its UTF-16 code units when the string holds a
 * lone surrogate (which UTF-8 cannot carry). The encoding is injective, so two
 * ids never share a key, and reversible.
 */

/** The KV buckets of one prefix (`<prefix>-<id>`). */
export const BUCKET_IDS = [
  'rooms',
  'members',
  'restrictions',
  'invitations',
  'modlog',
  'messages',
  'seqs',
  'presence',
  'counters',
  'nodes',
  'directory',
  'reads',
] as const;

export type BucketId = (typeof BUCKET_IDS)[number];

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const PREFIX_RE = /^[A-Za-z0-9_-]+$/;

/** One KV-key / subject token for any string (never empty, never containing `.`). */
export function encodeToken(s: string): string {
  if (LONE_SURROGATE.test(s)) return `w${Buffer.from(s, 'utf16le').toString('base64url')}`;
  return `b${Buffer.from(s, 'utf8').toString('base64url')}`;
}

/** The string behind a token made by {@link encodeToken}. */
export function decodeToken(token: string): string {
  const body = token.slice(1);
  if (token[0] === 'b') return Buffer.from(body, 'base64url').toString('utf8');
  if (token[0] === 'w') return Buffer.from(body, 'base64url').toString('utf16le');
  throw new Error(`not an encoded token: ${token}`);
}

/** Every name under one prefix. */
export class NatsNames {
  constructor(readonly prefix: string) {
    if (!PREFIX_RE.test(prefix)) {
      throw new Error(`invalid NATS prefix "${prefix}": use letters, digits, "-" and "_" only`);
    }
  }

  /** KV bucket name, e.g. `fs-rooms` (stream `KV_fs-rooms`). */
  bucket(id: BucketId): string {
    return `${this.prefix}-${id}`;
  }

  /** The stream behind a bucket. */
  stream(id: BucketId): string {
    return `KV_${this.bucket(id)}`;
  }

  /** The subject a key of a bucket is stored on (keys may end in `*` / `>` for filters). */
  keySubject(id: BucketId, key: string): string {
    return `$KV.${this.bucket(id)}.${key}`;
  }

  /** Core subject of a topic's plain publishes. */
  topicSubject(topic: string): string {
    return `${this.prefix}.t.${encodeToken(topic)}`;
  }

  /**
   * Core subjects the server republishes the room log on (`<prefix>.rl.<room>`),
   * in the order the entries were stored. See nats-broker.ts, "ordering".
   */
  roomLogRepublish(): { src: string; dest: string } {
    return { src: `$KV.${this.bucket('seqs')}.>`, dest: `${this.prefix}.rl.>` };
  }

  /** Subscription subject of the republished room log, every room. */
  roomLogWildcard(): string {
    return `${this.prefix}.rl.*`;
  }

  // ---------------------------------------------------------------- keys

  /** rooms: the room record, its incarnation and member count. */
  room = (roomId: string): string => encodeToken(roomId);
  /** seqs: the room log (last seq, history floor, last published envelope). */
  roomLog = (roomId: string): string => encodeToken(roomId);
  /** members: one membership. */
  member = (roomId: string, userId: string): string => `r.${encodeToken(roomId)}.${encodeToken(userId)}`;
  /** members: filter of a room's memberships. */
  membersOf = (roomId: string): string => `r.${encodeToken(roomId)}.*`;
  /** members: a user's room index. */
  userRooms = (userId: string): string => `u.${encodeToken(userId)}`;
  /** restrictions: a ban or mute. */
  restriction = (roomId: string, kind: string, userId: string): string =>
    `${encodeToken(roomId)}.${encodeToken(kind)}.${encodeToken(userId)}`;
  /** invitations: one invitation. */
  invitation = (roomId: string, userId: string): string => `${encodeToken(roomId)}.${encodeToken(userId)}`;
  /** reads: how far a user has read in a room. */
  readState = (roomId: string, userId: string): string => `${encodeToken(roomId)}.${encodeToken(userId)}`;
  /** restrictions / invitations / messages / reads: filter of everything of a room. */
  roomScope = (roomId: string): string => `${encodeToken(roomId)}.>`;
  /** modlog: a room's log (one JSON array). */
  modlog = (roomId: string): string => encodeToken(roomId);
  /** messages: the record of one seq. */
  messageAt = (roomId: string, seq: number): string => `${encodeToken(roomId)}.s.${seq}`;
  /** messages: message id -> seq. */
  messageId = (roomId: string, messageId: string): string =>
    `${encodeToken(roomId)}.i.${encodeToken(messageId)}`;
  presence = (userId: string): string => encodeToken(userId);
  counter = (key: string): string => encodeToken(key);
  /** counters: an expiring set (one JSON object member -> expiry ms); two tokens, so never a counter's key. */
  expiringSet = (key: string): string => `x.${encodeToken(key)}`;
  node = (nodeId: string): string => encodeToken(nodeId);
  /** directory: the nodes of a user (one JSON array). */
  userNodes = (userId: string): string => `u.${encodeToken(userId)}`;
  /** directory: the user's open connections per node (one JSON object). */
  userConnections = (userId: string): string => `c.${encodeToken(userId)}`;
  /** directory: one user on one node. */
  nodeUser = (nodeId: string, userId: string): string => `n.${encodeToken(nodeId)}.${encodeToken(userId)}`;
  /** directory: filter of a node's users. */
  nodeUsersOf = (nodeId: string): string => `n.${encodeToken(nodeId)}.*`;
}

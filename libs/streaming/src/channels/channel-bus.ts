import { SINGLE_WILDCARD, TAIL_WILDCARD } from './channel-trie';

/**
 * How channel messages travel between nodes.
 *
 * Topics (one backend subscription per node per topic, held only while a
 * local subscription needs it):
 * - `chan:<first token>` carries every channel whose first token is that
 *   literal (`chan:orders` for `orders.eu.created`);
 * - `chan:user.<id>` carries the `user.<id>.…` channels: the `user`
 *   namespace is split per user, because every local pattern starting with
 *   `user.` names its user literally (PROTOCOL.md section 8), so a node only
 *   hears the notifications of the users connected to it;
 * - `chan:~all` carries every channel, for patterns starting with a wildcard
 *   (`*.eu.created`, `>`), or `user.*`-style patterns should a policy ever
 *   allow them.
 *
 * A publish sends the same payload to its channel's topic and to
 * `chan:~all`: two bus messages at most, one of which nobody may hear. A
 * node holding both topics receives both copies and processes only the first
 * (by the publish id in the header), matching it against all its patterns.
 *
 * Payload: the fan-out's bus framing, `#<header JSON>\n<envelope>`, where the
 * envelope is the `channel_message` envelope serialized once by the publisher
 * and written as is to every matching connection.
 */

/** Topic prefix of channel messages. */
export const CHANNEL_TOPIC_PREFIX = 'chan:';
/** Topic carrying every channel message, for wildcard-first patterns. */
export const ALL_CHANNELS_TOPIC = 'chan:~all';
/** First token of the per-user namespace. */
export const USER_NAMESPACE = 'user';

const isWildcard = (t: string): boolean => t === SINGLE_WILDCARD || t === TAIL_WILDCARD;

/** The topic a (valid, wildcard-free) channel name is published on, besides {@link ALL_CHANNELS_TOPIC}. */
export function channelTopic(channel: string): string {
  const dot = channel.indexOf('.');
  const first = dot === -1 ? channel : channel.slice(0, dot);
  if (first === USER_NAMESPACE && dot !== -1) {
    const end = channel.indexOf('.', dot + 1);
    return `${CHANNEL_TOPIC_PREFIX}${USER_NAMESPACE}.${end === -1 ? channel.slice(dot + 1) : channel.slice(dot + 1, end)}`;
  }
  return CHANNEL_TOPIC_PREFIX + first;
}

/** The one topic that carries every channel a (valid) pattern can match. */
export function patternTopic(pattern: string): string {
  const tokens = pattern.split('.');
  if (isWildcard(tokens[0])) return ALL_CHANNELS_TOPIC;
  if (tokens[0] === USER_NAMESPACE && tokens.length > 1) {
    return isWildcard(tokens[1])
      ? ALL_CHANNELS_TOPIC
      : `${CHANNEL_TOPIC_PREFIX}${USER_NAMESPACE}.${tokens[1]}`;
  }
  return CHANNEL_TOPIC_PREFIX + tokens[0];
}

const PLAIN_USER_TOKEN = /^[A-Za-z0-9_\-@]+$/;

/**
 * A user id as one channel token, the second token of its `user.<token>…`
 * channels: the id itself when it holds only letters, digits, `_`, `-` and
 * `@`; otherwise every other character is written as `:` and the hex of its
 * UTF-8 bytes (`alice.smith` → `alice:2esmith`, `a:b` → `a:3ab`). One id, one
 * token, and no two ids share one, so a dot in an id never splits it.
 */
export function userToken(userId: string): string {
  if (PLAIN_USER_TOKEN.test(userId)) return userId;
  let out = '';
  for (const ch of userId) {
    if (PLAIN_USER_TOKEN.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `:${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The user token a channel name or pattern belongs to: the second token of
 * `user.<token>…` (which may be a wildcard in a pattern), or undefined.
 */
export function channelOwner(nameOrPattern: string): string | undefined {
  if (!nameOrPattern.startsWith(`${USER_NAMESPACE}.`)) return undefined;
  const start = USER_NAMESPACE.length + 1;
  const end = nameOrPattern.indexOf('.', start);
  return end === -1 ? nameOrPattern.slice(start) : nameOrPattern.slice(start, end);
}

/** Routing header in front of a channel envelope on the bus. */
export interface ChannelBusHeader {
  /** Publish id, unique per publish in the cluster: copies on two topics are processed once. */
  i: string;
  /** The channel name. */
  c: string;
  /** Set for private channels: the channel's `created_at`; only subscriptions authorized for it receive. */
  p?: string;
}

export function encodeChannelPayload(header: ChannelBusHeader, envelope: string): string {
  return `#${JSON.stringify(header)}\n${envelope}`;
}

/** Decode a channel bus payload; null when it is not one. */
export function decodeChannelPayload(payload: string): { header: ChannelBusHeader; envelope: string } | null {
  if (payload.charCodeAt(0) !== 35 /* # */) return null;
  const nl = payload.indexOf('\n');
  if (nl === -1) return null;
  let header: Partial<ChannelBusHeader> | null;
  try {
    header = JSON.parse(payload.slice(1, nl)) as Partial<ChannelBusHeader> | null;
  } catch {
    return null;
  }
  if (typeof header !== 'object' || !header || typeof header.i !== 'string' || typeof header.c !== 'string')
    return null;
  return { header: header as ChannelBusHeader, envelope: payload.slice(nl + 1) };
}

/**
 * The last `capacity` publish ids seen, in a ring: remembers long enough for
 * the second copy of a publish (sent right after the first) to be recognized.
 */
export class RecentIds {
  private readonly ring: (string | undefined)[];
  private readonly set = new Set<string>();
  private next = 0;

  constructor(private readonly capacity = 8192) {
    this.ring = new Array<string | undefined>(capacity);
  }

  /** Records `id`; returns false when it was already recorded. */
  add(id: string): boolean {
    if (this.set.has(id)) return false;
    const old = this.ring[this.next];
    if (old !== undefined) this.set.delete(old);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.set.add(id);
    return true;
  }
}

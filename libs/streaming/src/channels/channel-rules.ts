import type { ChannelRecord } from '../interfaces';
import { StreamingError } from '../protocol/streaming-error';
import { channelOwner, userToken } from './channel-bus';
import { SINGLE_WILDCARD, TAIL_WILDCARD, validateChannelName } from './channel-trie';

/* The rules on channel names and payloads the channel service applies, as plain functions. */

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Epoch of a private channel: tells two incarnations of the same name apart. */
export const epochOf = (c: ChannelRecord): string => `${c.createdBy ?? ''}@${c.createdAt}`;

/**
 * `user.*.x` and `user.>` name the subscriber's own namespace: only their own
 * `user.<id>` channels could ever reach them, so the pattern is narrowed to it.
 */
export function ownUserPattern(userId: string, pattern: string): string {
  const me = userToken(userId);
  if (pattern === 'user.>') return `user.${me}.>`;
  if (pattern === 'user.*') return `user.${me}`;
  if (pattern.startsWith('user.*.')) return `user.${me}.${pattern.slice('user.*.'.length)}`;
  return pattern;
}

/** A valid channel name, or `invalid_message`. */
export function requireName(name: unknown): string {
  const reason = validateChannelName(name);
  if (reason !== null) throw new StreamingError('invalid_message', reason);
  return name as string;
}

/**
 * `user.<token>…` belongs to the user whose {@link userToken} it is: anyone
 * else, and any wildcard in place of the token, is refused.
 */
export function requireOwnNamespace(userId: string, nameOrPattern: string, verb: string): void {
  const owner = channelOwner(nameOrPattern);
  if (owner === undefined) return;
  const me = userToken(userId);
  if (owner === SINGLE_WILDCARD || owner === TAIL_WILDCARD) {
    throw new StreamingError(
      'forbidden',
      `a pattern starting with "user." must name your own user id as its second token (user.${me}.…)`,
    );
  }
  if (owner !== me) {
    throw new StreamingError(
      'forbidden',
      `only the owner of user.${owner}.* may ${verb} there (yours: user.${me}.*)`,
    );
  }
}

/** The `data` and `metadata` of a serialized `channel_message` envelope, or null if unreadable. */
export function parseEvent(envelope: string): { data: unknown; metadata: unknown } | null {
  try {
    const env = JSON.parse(envelope) as { data?: { data?: unknown; metadata?: unknown } };
    return { data: env.data?.data, metadata: env.data?.metadata };
  } catch {
    return null;
  }
}

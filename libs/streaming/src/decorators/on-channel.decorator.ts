import { validatePattern } from '../channels/channel-trie';
import type { ChannelMessageEventPayload } from '../events/streaming-events';
import { StreamingHandlerDecorator, streamingHandler } from './streaming-handler.metadata';

/**
 * Calls the decorated method for every message published on a channel whose
 * name matches the NATS-style `pattern` (`*` matches exactly one token, `>`
 * one or more trailing tokens: `news.*` matches `news.a` but not `news.a.b`;
 * `news.>` matches both), with a {@link ChannelMessageEventPayload}. Fires on
 * the node that accepted the publish, for client and server publishes alike.
 *
 * ```ts
 * @OnChannel('orders.*.created')
 * onOrder({ channel, data }: ChannelMessageEventPayload) { ... }
 * ```
 *
 * An invalid pattern throws when the class is defined.
 */
export function OnChannel(pattern: string): StreamingHandlerDecorator<ChannelMessageEventPayload> {
  const reason = validatePattern(pattern);
  if (reason !== null) throw new TypeError(`@OnChannel(${JSON.stringify(pattern)}): ${reason}`);
  return streamingHandler<ChannelMessageEventPayload>({ event: 'channel_message', pattern });
}

import type { PresenceEvent } from '../events/streaming-events';
import { StreamingHandlerDecorator, streamingHandler } from './streaming-handler.metadata';

/**
 * Calls the decorated method with a {@link PresenceEvent} whenever a user's
 * presence changes on this node (online on a first connection, `set_presence`,
 * away after inactivity, offline when the last connection closes).
 */
export function OnPresence(): StreamingHandlerDecorator<PresenceEvent> {
  return streamingHandler<PresenceEvent>({ event: 'presence' });
}

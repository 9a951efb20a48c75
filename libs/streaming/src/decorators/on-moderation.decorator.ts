import type { ModerationEvent } from '../events/streaming-events';
import { StreamingHandlerDecorator, streamingHandler } from './streaming-handler.metadata';

/**
 * Calls the decorated method with a {@link ModerationEvent} for each
 * moderation action (ban, unban, kick, mute, unmute, set_role) taken on this node, as
 * it is written to the room's moderation log.
 */
export function OnModeration(): StreamingHandlerDecorator<ModerationEvent> {
  return streamingHandler<ModerationEvent>({ event: 'moderation' });
}

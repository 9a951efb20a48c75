import type { TypingEvent } from '../events/streaming-events';
import { StreamingHandlerDecorator, streamingHandler } from './streaming-handler.metadata';

/**
 * Calls the decorated method with a {@link TypingEvent} whenever a user starts
 * or stops typing in a room (including the automatic stop after `typingTimeout`).
 */
export function OnTyping(): StreamingHandlerDecorator<TypingEvent> {
  return streamingHandler<TypingEvent>({ event: 'typing' });
}

import type { ConnectionEvent } from '../events/streaming-events';
import { StreamingHandlerDecorator, streamingHandler } from './streaming-handler.metadata';

/**
 * Calls the decorated method with a {@link ConnectionEvent} when a WebSocket
 * or SSE connection is opened on this node (after its `connected` envelope).
 */
export function OnConnect(): StreamingHandlerDecorator<ConnectionEvent> {
  return streamingHandler<ConnectionEvent>({ event: 'connect' });
}

/**
 * Calls the decorated method with a {@link ConnectionEvent} when a connection
 * of this node closes (client close, drop, kick, expiry). Closes during
 * application shutdown may come after the handlers were unregistered.
 */
export function OnDisconnect(): StreamingHandlerDecorator<ConnectionEvent> {
  return streamingHandler<ConnectionEvent>({ event: 'disconnect' });
}

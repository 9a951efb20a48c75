import type { RoomMessageEvent } from '../events/streaming-events';
import {
  StreamingHandlerDecorator,
  streamingHandler,
  validateRoomPattern,
} from './streaming-handler.metadata';

/**
 * Calls the decorated method for every chat message accepted in a room whose
 * id matches `pattern`, with a {@link RoomMessageEvent} (on the node that
 * accepted the message, after the request that sent it was answered).
 *
 * `pattern` is a glob on the room id: `*` stands for any run of characters,
 * so `'*'` (the default) matches every room and a pattern without `*` is an
 * exact room id. Messages the app saves itself (`StreamingManager.saveMessage`)
 * fire too: a handler that answers must ignore its own messages.
 *
 * ```ts
 * @SubscribeRoom()
 * async onMessage({ roomId, message }: RoomMessageEvent) { ... }
 * ```
 *
 * Handlers run on singleton providers and controllers; errors are logged.
 */
export function SubscribeRoom(pattern = '*'): StreamingHandlerDecorator<RoomMessageEvent> {
  const reason = validateRoomPattern(pattern);
  if (reason !== null) throw new TypeError(`@SubscribeRoom(${JSON.stringify(pattern)}): ${reason}`);
  return streamingHandler<RoomMessageEvent>({ event: 'room_message', pattern });
}

/** Handler decorators and their explorer: re-exported by name from the library's index.ts. */
export { SubscribeRoom } from './subscribe-room.decorator';
export { OnChannel } from './on-channel.decorator';
export { OnPresence } from './on-presence.decorator';
export { OnTyping } from './on-typing.decorator';
export { OnConnect, OnDisconnect } from './on-connection.decorator';
export { OnModeration } from './on-moderation.decorator';
export { StreamingHandlersExplorer } from './streaming-handlers.explorer';
export {
  STREAMING_HANDLER_METADATA,
  getStreamingHandlerMetadata,
  roomPatternMatches,
  validateRoomPattern,
} from './streaming-handler.metadata';
export type {
  StreamingHandlerMetadata,
  StreamingHandlerEvent,
  StreamingHandlerDecorator,
} from './streaming-handler.metadata';

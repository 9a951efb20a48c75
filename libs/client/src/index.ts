/**
 * `@nest-streaming/client`: a typed client of the nest-streaming wire protocol
 * for browsers and Node (WebSocket or receive-only SSE), with automatic
 * reconnect, channel re-subscription, room resume and an offline send buffer.
 */

/** The client: connect, requests with acks, typed events, reconnect and resume. */
export { StreamingClient, orderMessages } from './client';
/** Options, connection states and the client's own events. */
export type {
  StreamingClientOptions,
  ConnectionState,
  TransportKind,
  StateChange,
  DisconnectedEvent,
  ReconnectingEvent,
  AuthExpiredEvent,
  GapEvent,
  RoomsGoneEvent,
  StreamingClientEvents,
  RequestOptions,
} from './client';
/** The error every failed request rejects with. */
export { StreamingClientError } from './errors';
export type { ClientErrorCode } from './errors';
/** Reconnect backoff (exponential, full jitter). */
export { backoffDelay, backoffCeiling, DEFAULT_BACKOFF } from './backoff';
export type { BackoffOptions } from './backoff';
/** Newline-delimited frame parsing, and MessagePack binary frames (`codec: 'msgpack'`). */
export { parseFrame } from './ndjson';
export { parseBinaryFrame } from './msgpack';
export { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL } from '@nest-streaming/protocol';
export type { WireCodec } from '@nest-streaming/protocol';
/** The small typed event emitter the client uses. */
export { TypedEmitter } from './emitter';
export type { Listener } from './emitter';
export type { EventMap } from './events';
/** Platform shapes (WebSocket, EventSource, fetch) and URL helpers. */
export { toWsUrl, toHttpBase } from './transports';
export type {
  WebSocketLike,
  WebSocketConstructor,
  EventSourceLike,
  EventSourceConstructor,
  SseMessageEventLike,
  FetchLike,
  FetchResponseLike,
  CloseEventLike,
  ErrorEventLike,
} from './transports';
/** Wire types: messages, rooms, events, request inputs and ack results. */
export type {
  RoomRole,
  PresenceStatus,
  ModerationAction,
  WireMessage,
  WireRoom,
  WireMember,
  WirePresence,
  ClientEnvelope,
  ServerEnvelope,
  Connected,
  ErrorData,
  MessageEditedEvent,
  MessageDeletedEvent,
  ReactionEvent,
  ThreadUpdatedEvent,
  TypingEvent,
  RoomUserEvent,
  RoomJoinedEvent,
  RoomLeftEvent,
  RoomCreatedEvent,
  RoomUpdatedEvent,
  RoomDeletedEvent,
  ChannelMessageEvent,
  ModerationEvent,
  RoomInvitationEvent,
  RoleChangedEvent,
  ResumedEvent,
  ReadStateEvent,
  HeartbeatEvent,
  CreateRoomInput,
  UpdateRoomInput,
  HistoryQuery,
  ModerateInput,
  GetPresenceInput,
  ChannelFilters,
  CreateRoomResult,
  JoinRoomResult,
  RoomIdResult,
  SendMessageResult,
  EditMessageResult,
  DeleteMessageResult,
  ReactionResult,
  HistoryResult,
  ThreadResult,
  TypingResult,
  SetPresenceResult,
  GetPresenceResult,
  SubscribeResult,
  UnsubscribeResult,
  PublishResult,
  InviteResult,
  SetRoleResult,
  PongResult,
  UnreadRoom,
  GetUnreadResult,
} from '@nest-streaming/protocol';

import type {
  ChannelMessageEvent,
  Connected,
  ErrorData,
  HeartbeatEvent,
  MessageDeletedEvent,
  MessageEditedEvent,
  ModerationEvent,
  ReactionEvent,
  ReadStateEvent,
  ResumedEvent,
  RoleChangedEvent,
  RoomCreatedEvent,
  RoomDeletedEvent,
  RoomListedEvent,
  RoomUnlistedEvent,
  RoomInvitationEvent,
  RoomJoinedEvent,
  RoomLeftEvent,
  RoomUpdatedEvent,
  RoomUserEvent,
  ServerEnvelope,
  ThreadUpdatedEvent,
  TypingEvent,
  WireMessage,
  WirePresence,
} from '@nest-streaming/protocol';
import { TypedEmitter } from './emitter';
import type { ConnectionState } from './options';

/** `state` listener payload. */
export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
}

/** `disconnected`: the transport closed (`will_reconnect` false after close() or an auth expiry). */
export interface DisconnectedEvent {
  code: number;
  reason: string;
  will_reconnect: boolean;
}

/** `reconnecting`: the next attempt is scheduled (`attempt` counts from 1). */
export interface ReconnectingEvent {
  attempt: number;
  delay_ms: number;
}

/**
 * `auth_expired`: the server closed with 4401 (or refused the token with 401); the client stopped.
 * With `getToken` a 4401 on an open connection reconnects with a fresh token instead.
 */
export interface AuthExpiredEvent {
  code: number;
  reason: string;
}

/**
 * `gap`: messages of a room were missed and cannot be replayed; reload its
 * history. `retention`: the server listed the room in `resumed.gaps`;
 * `resume_failed`: the resume request failed for it; `seq_jump`: a live
 * message skipped seqs.
 */
export interface GapEvent {
  room_id: string;
  reason: 'retention' | 'resume_failed' | 'seq_jump';
  /** Last seq the client had delivered for the room (if any). */
  last_seq?: number;
  /** Latest seq on the server, when known. */
  latest_seq?: number;
}

/**
 * `rooms_gone`: rooms the server no longer has (found while resuming after a reconnect, e.g.
 * the server lost its in-memory rooms in a restart). The client has stopped tracking them:
 * the next reconnect does not resume them.
 */
export interface RoomsGoneEvent {
  room_ids: string[];
}

/** Every event a client emits, with its payload type. Unknown (custom) event names carry `unknown`. */
export interface StreamingClientEvents {
  message: WireMessage;
  message_edited: MessageEditedEvent;
  message_deleted: MessageDeletedEvent;
  reaction_added: ReactionEvent;
  reaction_removed: ReactionEvent;
  thread_updated: ThreadUpdatedEvent;
  typing: TypingEvent;
  presence: WirePresence;
  user_joined: RoomUserEvent;
  user_left: RoomUserEvent;
  room_joined: RoomJoinedEvent;
  room_left: RoomLeftEvent;
  room_created: RoomCreatedEvent;
  room_updated: RoomUpdatedEvent;
  room_deleted: RoomDeletedEvent;
  room_listed: RoomListedEvent;
  room_unlisted: RoomUnlistedEvent;
  channel_message: ChannelMessageEvent;
  member_banned: ModerationEvent;
  member_unbanned: ModerationEvent;
  member_kicked: ModerationEvent;
  member_muted: ModerationEvent;
  member_unmuted: ModerationEvent;
  room_invitation: RoomInvitationEvent;
  role_changed: RoleChangedEvent;
  /** The user's read state of a room moved (`mark_read` on any of their connections). */
  read_state: ReadStateEvent;
  /** Server errors not tied to a request, and client-side failures (e.g. a re-subscribe refused). */
  error: ErrorData;
  heartbeat: HeartbeatEvent;
  resumed: ResumedEvent;
  connected: Connected;
  /** Every server event delivered to listeners (after ordering and de-duplication); not acks. */
  '*': ServerEnvelope;
  state: StateChange;
  disconnected: DisconnectedEvent;
  reconnecting: ReconnectingEvent;
  auth_expired: AuthExpiredEvent;
  gap: GapEvent;
  rooms_gone: RoomsGoneEvent;
}

/** Event map with a fallback for custom server events. */
export type EventMap = StreamingClientEvents & { [custom: string]: unknown };

/** The emitter a client and its parts emit through. */
export type ClientEmitter = TypedEmitter<EventMap>;

/** A client's emitter: a listener that throws is reported through `error` (unless it is an `error` listener). */
export function createClientEmitter(): ClientEmitter {
  const emitter: ClientEmitter = new TypedEmitter<EventMap>((err, event) => {
    if (event === 'error') return;
    emitter.emit('error', {
      code: 'listener_error',
      message: `a "${event}" listener threw: ${err instanceof Error ? err.message : String(err)}`,
    });
  });
  return emitter;
}

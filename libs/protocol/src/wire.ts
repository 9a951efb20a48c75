/**
 * Wire types of the streaming protocol (PROTOCOL.md sections 3 and 4): the
 * one definition the server (`@nest-streaming/streaming`) and the client
 * (`@nest-streaming/client`) share. Types only: nothing here runs. The
 * objects and event data are derived from the schemas of events.ts (which
 * the AsyncAPI document is generated from), so each is defined once.
 */
import type { MODERATION_ACTIONS, PRESENCE_STATUSES, ProtocolSchemas, ROOM_ROLES } from './events';
import type { Infer } from './schema';

/** A room role, highest first: owner, admin, moderator, member. */
export type RoomRole = (typeof ROOM_ROLES)[number];

/** A presence status. */
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

/** A moderation action of `moderate`. */
export type ModerationAction = (typeof MODERATION_ACTIONS)[number];

/** A room message (the `message` event's data). */
export type WireMessage = Infer<ProtocolSchemas['WireMessage']>;

/** A room object. */
export type WireRoom = Infer<ProtocolSchemas['WireRoom']>;

/** A member of a room. */
export type WireMember = Infer<ProtocolSchemas['WireMember']>;

/** A user's presence. */
export type WirePresence = Infer<ProtocolSchemas['WirePresence']>;

/** Client to server envelope. */
export interface ClientEnvelope {
  type: string;
  id?: string;
  data?: Record<string, unknown>;
}

/** Server to client envelope. */
export interface ServerEnvelope<T = unknown> {
  type: string;
  id?: string;
  data: T;
}

/** Data of the `connected` envelope, the first one on every connection. */
export type Connected = Infer<ProtocolSchemas['Connected']>;

/** Data of an `error` envelope (PROTOCOL.md section 6). */
export type ErrorData = Infer<ProtocolSchemas['ErrorData']>;

/** `message_edited` */
export type MessageEditedEvent = Infer<ProtocolSchemas['MessageEditedEvent']>;

/** `message_deleted` */
export type MessageDeletedEvent = Infer<ProtocolSchemas['MessageDeletedEvent']>;

/** `reaction_added`, `reaction_removed` */
export type ReactionEvent = Infer<ProtocolSchemas['ReactionEvent']>;

/** `thread_updated` (a thread got a reply: the first message's new counters) */
export type ThreadUpdatedEvent = Infer<ProtocolSchemas['ThreadUpdatedEvent']>;

/** `typing` */
export type TypingEvent = Infer<ProtocolSchemas['TypingEvent']>;

/** `user_joined`, `user_left` */
export type RoomUserEvent = Infer<ProtocolSchemas['RoomUserEvent']>;

/** `room_joined` (to the joiner's connections) */
export type RoomJoinedEvent = Infer<ProtocolSchemas['RoomJoinedEvent']>;

/** `room_left` (to the leaver's connections; `reason` is `kicked` or `banned` when removed) */
export type RoomLeftEvent = Infer<ProtocolSchemas['RoomLeftEvent']>;

/** `room_created` (to the creator's connections) */
export type RoomCreatedEvent = Infer<ProtocolSchemas['RoomCreatedEvent']>;

/** `room_updated` */
export type RoomUpdatedEvent = Infer<ProtocolSchemas['RoomUpdatedEvent']>;

/** `room_deleted` */
export type RoomDeletedEvent = Infer<ProtocolSchemas['RoomDeletedEvent']>;

/** `room_listed`: a public room appeared or changed. */
export type RoomListedEvent = Infer<ProtocolSchemas['RoomListedEvent']>;

/** `room_unlisted`: a public room was deleted or made private. */
export type RoomUnlistedEvent = Infer<ProtocolSchemas['RoomUnlistedEvent']>;

/** `channel_message` */
export type ChannelMessageEvent<T = Record<string, unknown>> = Omit<
  Infer<ProtocolSchemas['ChannelMessageEvent']>,
  'data'
> & { data: T };

/** `member_banned`, `member_unbanned`, `member_kicked`, `member_muted`, `member_unmuted` */
export type ModerationEvent = Infer<ProtocolSchemas['ModerationEvent']>;

/** `room_invitation` */
export type RoomInvitationEvent = Infer<ProtocolSchemas['RoomInvitationEvent']>;

/** `role_changed` */
export type RoleChangedEvent = Infer<ProtocolSchemas['RoleChangedEvent']>;

/** `resumed`: the latest seq per resumed room; `gaps` lists rooms whose missed messages are gone. */
export type ResumedEvent = Infer<ProtocolSchemas['ResumedEvent']>;

/** `heartbeat` (SSE) */
export type HeartbeatEvent = Infer<ProtocolSchemas['HeartbeatEvent']>;

/** `read_state`, and the ack of `mark_read` */
export type ReadStateEvent = Infer<ProtocolSchemas['ReadStateEvent']>;

// ----- request data and ack results -----

/** `create_room` data. */
export interface CreateRoomInput {
  name: string;
  description?: string;
  private?: boolean;
  max_members?: number | null;
  metadata?: Record<string, unknown>;
}

/** `update_room` data (without room_id). */
export interface UpdateRoomInput {
  name?: string;
  description?: string;
  private?: boolean;
  max_members?: number | null;
}

/** `get_history` paging: without `after` the newest `limit` (below `before`), with `after` the oldest above it. */
export interface HistoryQuery {
  limit?: number;
  before?: number;
  after?: number;
}

/** `moderate` data. */
export interface ModerateInput {
  room_id: string;
  action: ModerationAction;
  target_id: string;
  reason?: string;
  duration_s?: number;
}

/** `get_presence` data: one of the two. */
export type GetPresenceInput = { room_id: string } | { user_ids: string[] };

/** Channel subscription filters: `{field: value}` or `{field: [any, of]}`; every field must match. */
export type ChannelFilters = Record<string, unknown>;

export interface CreateRoomResult {
  room: WireRoom;
}
export interface JoinRoomResult {
  room_id: string;
  room?: WireRoom;
}
export interface RoomIdResult {
  room_id: string;
}
export interface SendMessageResult {
  message_id: string;
  seq: number;
}
export interface EditMessageResult {
  message: WireMessage;
}
export interface DeleteMessageResult {
  room_id: string;
  message_id: string;
}
export interface ReactionResult {
  reactions: Record<string, string[]>;
}
export interface HistoryResult {
  messages: WireMessage[];
}
/** `get_thread`: the thread's first message, then its replies, oldest first. */
export interface ThreadResult {
  messages: WireMessage[];
}
export interface TypingResult {
  room_id: string;
  typing: boolean;
}
export interface SetPresenceResult {
  presence: WirePresence;
}
export interface GetPresenceResult {
  presence: WirePresence[];
}
export interface SubscribeResult {
  channel: string;
}
export interface UnsubscribeResult {
  channel: string;
  removed?: boolean;
}
export interface PublishResult {
  channel: string;
  timestamp?: string;
}
export interface InviteResult {
  room_id: string;
  user_id: string;
}
export interface SetRoleResult {
  room_id: string;
  user_id: string;
  role: RoomRole;
}
export type PongResult = Infer<ProtocolSchemas['Pong']>;
/** One room of the `get_unread` ack. */
export interface UnreadRoom {
  room_id: string;
  last_read_seq: number;
  latest_seq: number;
  /** Messages above `last_read_seq` that are neither deleted nor the user's own. */
  unread: number;
}
export interface GetUnreadResult {
  rooms: UnreadRoom[];
}

/**
 * Wire types of the streaming protocol (PROTOCOL.md sections 3 and 4): the
 * one definition the server (`@nest-streaming/streaming`) and the client
 * (`@nest-streaming/client`) share. Types only: nothing here runs.
 */

/** A room role, highest first: owner, admin, moderator, member. */
export type RoomRole = 'owner' | 'admin' | 'moderator' | 'member';

/** A presence status. */
export type PresenceStatus = 'online' | 'away' | 'busy' | 'offline';

/** A moderation action of `moderate`. */
export type ModerationAction = 'ban' | 'unban' | 'kick' | 'mute' | 'unmute';

/** A room message (the `message` event's data). */
export interface WireMessage {
  id: string;
  /** Per room, starts at 1, strictly increasing and gap-free. */
  seq: number;
  room_id: string;
  user_id: string;
  content: string;
  metadata: Record<string, unknown>;
  timestamp: string;
  edited_at?: string;
  edited_by?: string;
  deleted?: boolean;
  deleted_by?: string;
  /** emoji -> user ids */
  reactions: Record<string, string[]>;
}

/** A room object. */
export interface WireRoom {
  id: string;
  name: string;
  description: string;
  private: boolean;
  owner: string;
  max_members: number | null;
  member_count: number;
  created_at: string;
}

/** A member of a room. */
export interface WireMember {
  user_id: string;
  role: RoomRole;
}

/** A user's presence. */
export interface WirePresence {
  user_id: string;
  status: PresenceStatus;
  custom?: string;
  last_seen: string | null;
}

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
export interface Connected {
  connection_id: string;
  user_id: string;
  session_id: string;
  node_id: string;
  ping_interval_ms: number;
  /** `ws` or `sse` (servers may omit it). */
  transport?: string;
}

/** Data of an `error` envelope (PROTOCOL.md section 6). */
export interface ErrorData {
  code: string;
  message: string;
  retry_after_ms?: number;
  [key: string]: unknown;
}

/** `message_edited` */
export interface MessageEditedEvent {
  room_id: string;
  message_id: string;
  content: string;
  edited_by: string;
  edited_at: string;
}

/** `message_deleted` */
export interface MessageDeletedEvent {
  room_id: string;
  message_id: string;
  deleted_by: string;
}

/** `reaction_added`, `reaction_removed` */
export interface ReactionEvent {
  room_id: string;
  message_id: string;
  user_id: string;
  reaction: string;
}

/** `typing` */
export interface TypingEvent {
  room_id: string;
  user_id: string;
  typing: boolean;
}

/** `user_joined`, `user_left` */
export interface RoomUserEvent {
  room_id: string;
  user_id: string;
}

/** `room_joined` (to the joiner's connections) */
export interface RoomJoinedEvent {
  room_id: string;
  room?: WireRoom;
  members: WireMember[];
  presence: WirePresence[];
}

/** `room_left` (to the leaver's connections; `reason` is `kicked` or `banned` when removed) */
export interface RoomLeftEvent {
  room_id: string;
  reason?: string;
}

/** `room_created` (to the creator's connections) */
export interface RoomCreatedEvent {
  room_id: string;
}

/** `room_updated` */
export interface RoomUpdatedEvent {
  room_id: string;
  room: WireRoom;
  updated_by: string | null;
}

/** `room_deleted` */
export interface RoomDeletedEvent {
  room_id: string;
  deleted_by: string | null;
}

/** `channel_message` */
export interface ChannelMessageEvent<T = Record<string, unknown>> {
  channel: string;
  data: T;
  metadata: Record<string, unknown>;
  /** The publishing user, or null when the server published. */
  publisher_id: string | null;
  timestamp: string;
}

/** `member_banned`, `member_unbanned`, `member_kicked`, `member_muted`, `member_unmuted` */
export interface ModerationEvent {
  room_id: string;
  target_id: string;
  moderator_id: string | null;
  reason: string;
  duration_s?: number;
  until?: string;
}

/** `room_invitation` */
export interface RoomInvitationEvent {
  room_id: string;
  room_name: string;
  invited_by: string;
}

/** `role_changed` */
export interface RoleChangedEvent {
  room_id: string;
  user_id: string;
  role: RoomRole;
  changed_by: string;
}

/** `resumed`: the latest seq per resumed room; `gaps` lists rooms whose missed messages are gone. */
export interface ResumedEvent {
  /** room id -> latest seq, for every room resumed. */
  rooms: Record<string, number>;
  /** Rooms whose missed messages retention dropped: nothing replayed, reload their history. */
  gaps?: string[];
  /** room id -> error code, for rooms that could not be resumed. */
  errors?: Record<string, string>;
  /** Rooms that no longer exist on the server (also in `errors` as `room_not_found`): forget them. */
  gone?: string[];
}

/** `heartbeat` (SSE) */
export interface HeartbeatEvent {
  timestamp: string;
}

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
export interface PongResult {
  timestamp: string;
}

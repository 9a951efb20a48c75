/**
 * The server events of the protocol (PROTOCOL.md sections 3, 4 and 10) as
 * data: each event type with its `data` schema. The TypeScript types of
 * wire.ts are derived from these schemas, and the AsyncAPI document of
 * `@nest-streaming/streaming` is generated from {@link protocolSchemas}, so
 * an event is described once.
 *
 * The schemas are built by a function, on first use: a bundle (the client's
 * browser script) that never calls it leaves them out entirely.
 */
import { ERROR_CODES } from './error-codes';
import { s, type Infer, type Schema } from './schema';

/** Room roles, highest first. */
export const ROOM_ROLES = ['owner', 'admin', 'moderator', 'member'] as const;
/** Presence statuses. */
export const PRESENCE_STATUSES = ['online', 'away', 'busy', 'offline'] as const;
/** Actions of `moderate`. */
export const MODERATION_ACTIONS = ['ban', 'unban', 'kick', 'mute', 'unmute'] as const;

/** What the table says of one event type. */
export interface ServerEventSpec {
  /** One line: when it is sent and to whom. */
  summary: string;
  /** The schema of the envelope's `data`. */
  data: Schema<unknown>;
  /** Sent on this transport only (default both). */
  only?: 'ws' | 'sse';
}

/** Every schema of the protocol, and the table of server events. */
function buildSchemas() {
  const RoomRoleSchema = s.enum(ROOM_ROLES, { description: 'A room role, highest first.' });
  const PresenceStatusSchema = s.enum(PRESENCE_STATUSES);

  const metadata = () => s.record(s.unknown(), { description: 'Free-form object (default `{}`).' });

  const WireMessageSchema = s.object(
    {
      id: s.string(),
      seq: s.integer({ description: 'Per room, starts at 1, strictly increasing and gap-free.', minimum: 1 }),
      room_id: s.string(),
      user_id: s.string(),
      content: s.string(),
      metadata: metadata(),
      timestamp: s.timestamp(),
      edited_at: s.optional(s.timestamp()),
      edited_by: s.optional(s.string()),
      deleted: s.optional(s.boolean()),
      deleted_by: s.optional(s.string()),
      reactions: s.record(s.array(s.string()), { description: 'emoji -> user ids' }),
      reply_to: s.optional(s.string({ description: 'Threads: the message this one replies to.' })),
      thread_id: s.optional(
        s.string({ description: "Threads: the id of the thread's first message (on replies)." }),
      ),
      reply_count: s.optional(s.integer({ description: 'Threads: replies to this message.', minimum: 1 })),
      last_reply_at: s.optional(s.timestamp({ description: 'Threads: when the latest reply was sent.' })),
    },
    { description: "A room message (the `message` event's data)." },
  );

  const WireRoomSchema = s.object(
    {
      id: s.string(),
      name: s.string(),
      description: s.string({ description: 'Defaults to "".' }),
      private: s.boolean(),
      owner: s.string(),
      max_members: s.nullable(s.integer({ minimum: 1 }), { description: '`null` when unlimited.' }),
      member_count: s.integer({ minimum: 0 }),
      created_at: s.timestamp(),
      kind: s.enum(['room', 'direct'] as const, {
        description: '`direct`: the one room of two users (`open_direct`); `room` otherwise.',
      }),
    },
    { description: 'A room object.' },
  );

  const WireMemberSchema = s.object(
    { user_id: s.string(), role: RoomRoleSchema },
    { description: 'A member of a room.' },
  );

  const WirePresenceSchema = s.object(
    {
      user_id: s.string(),
      status: PresenceStatusSchema,
      custom: s.optional(s.string()),
      last_seen: s.nullable(s.timestamp()),
    },
    { description: "A user's presence." },
  );

  const ConnectedSchema = s.object(
    {
      connection_id: s.string(),
      user_id: s.string(),
      session_id: s.string({ description: "The token's `sid` when it has one." }),
      node_id: s.string(),
      ping_interval_ms: s.integer({ minimum: 0 }),
      transport: s.optional(s.string({ description: '`ws` or `sse` (servers may omit it).' })),
    },
    { description: 'Data of the `connected` envelope, the first one on every connection.' },
  );

  const ErrorDataSchema = s.open(
    {
      // Documented as the codes this version sends; typed as string, since clients must accept new ones.
      code: { ...s.string(), enum: [...ERROR_CODES] },
      message: s.string({ description: 'A human sentence.' }),
      retry_after_ms: s.optional(s.integer({ description: 'With `rate_limited`.', minimum: 0 })),
    },
    { description: 'Data of an `error` envelope (PROTOCOL.md section 6).' },
  );

  const MessageEditedEventSchema = s.object({
    room_id: s.string(),
    message_id: s.string(),
    content: s.string(),
    edited_by: s.string(),
    edited_at: s.timestamp(),
  });

  const MessageDeletedEventSchema = s.object({
    room_id: s.string(),
    message_id: s.string(),
    deleted_by: s.string(),
  });

  const ReactionEventSchema = s.object({
    room_id: s.string(),
    message_id: s.string(),
    user_id: s.string(),
    reaction: s.string(),
  });

  const ThreadUpdatedEventSchema = s.object({
    room_id: s.string(),
    thread_id: s.string(),
    reply_count: s.integer({ minimum: 1 }),
    last_reply_at: s.timestamp(),
  });

  const TypingEventSchema = s.object({ room_id: s.string(), user_id: s.string(), typing: s.boolean() });

  const RoomUserEventSchema = s.object({ room_id: s.string(), user_id: s.string() });

  const RoomJoinedEventSchema = s.object({
    room_id: s.string(),
    room: s.optional(WireRoomSchema),
    members: s.array(WireMemberSchema),
    presence: s.array(WirePresenceSchema),
    latest_seq: s.optional(
      s.integer({ description: "The room's latest seq: resume from here.", minimum: 0 }),
    ),
    last_read_seq: s.optional(
      s.integer({ description: 'How far the user has read (`mark_read`); 0 when never.', minimum: 0 }),
    ),
  });

  const RoomLeftEventSchema = s.object({
    room_id: s.string(),
    reason: s.optional(s.string({ description: '`kicked` or `banned` when removed.' })),
  });

  const RoomCreatedEventSchema = s.object({ room_id: s.string() });

  const RoomUpdatedEventSchema = s.object({
    room_id: s.string(),
    room: WireRoomSchema,
    updated_by: s.nullable(s.string()),
  });

  const RoomDeletedEventSchema = s.object({ room_id: s.string(), deleted_by: s.nullable(s.string()) });
  const RoomListedEventSchema = s.object({ room: WireRoomSchema });
  const RoomUnlistedEventSchema = s.object({ room_id: s.string() });

  const ChannelMessageEventSchema = s.object({
    channel: s.string(),
    data: s.record(s.unknown()),
    metadata: metadata(),
    publisher_id: s.nullable(s.string(), {
      description: 'The publishing user, or null when the server published.',
    }),
    timestamp: s.timestamp(),
  });

  const ModerationEventSchema = s.object({
    room_id: s.string(),
    target_id: s.string(),
    moderator_id: s.nullable(s.string()),
    reason: s.string(),
    duration_s: s.optional(s.integer({ minimum: 1 })),
    until: s.optional(s.timestamp()),
  });

  const RoomInvitationEventSchema = s.object({
    room_id: s.string(),
    room_name: s.string(),
    invited_by: s.string(),
  });

  const RoleChangedEventSchema = s.object({
    room_id: s.string(),
    user_id: s.string(),
    role: RoomRoleSchema,
    changed_by: s.string(),
  });

  const ResumedEventSchema = s.object({
    rooms: s.record(s.integer(), { description: 'room id -> latest seq, for every room resumed.' }),
    gaps: s.optional(
      s.array(s.string(), {
        description: 'Rooms whose missed messages retention dropped: nothing replayed, reload their history.',
      }),
    ),
    errors: s.optional(
      s.record(s.string(), { description: 'room id -> error code, for rooms that could not be resumed.' }),
    ),
    gone: s.optional(s.array(s.string(), { description: 'Rooms that no longer exist on the server.' })),
  });

  const ReadStateEventSchema = s.object({
    room_id: s.string(),
    last_read_seq: s.integer({ description: 'The highest seq the user marked read.', minimum: 0 }),
  });

  const HeartbeatEventSchema = s.object({ timestamp: s.timestamp() });

  const PongSchema = s.object({ timestamp: s.timestamp() });

  const moderation = (what: string) => ({
    summary: `A member was ${what}: to the room and the target.`,
    data: ModerationEventSchema,
  });

  /**
   * Every server → client envelope type with the schema of its `data`.
   * `ack` and `error` answer requests; the others are events.
   */
  const events = {
    connected: { summary: 'The first envelope on every connection.', data: ConnectedSchema },
    ack: {
      summary: 'Answers a request that carried an `id` (same `id`): the result of the request.',
      data: s.record(s.unknown()),
      only: 'ws',
    },
    error: {
      summary:
        'A request failed (with its `id` when it had one), or an SSE join or subscription was refused.',
      data: ErrorDataSchema,
    },
    pong: { summary: 'Answers `ping` (with its `id`).', data: PongSchema, only: 'ws' },
    heartbeat: { summary: 'Every `ping_interval` on SSE streams.', data: HeartbeatEventSchema, only: 'sse' },
    message: {
      summary: 'A room message, to every member connection (sender included).',
      data: WireMessageSchema,
    },
    message_edited: { summary: 'A message was edited: to the room.', data: MessageEditedEventSchema },
    message_deleted: { summary: 'A message was deleted: to the room.', data: MessageDeletedEventSchema },
    reaction_added: { summary: 'A reaction was added: to the room.', data: ReactionEventSchema },
    reaction_removed: { summary: 'A reaction was removed: to the room.', data: ReactionEventSchema },
    thread_updated: {
      summary: "A thread got a reply: to the room, with its first message's new counters.",
      data: ThreadUpdatedEventSchema,
    },
    typing: { summary: 'A member started or stopped typing: to the other members.', data: TypingEventSchema },
    presence: {
      summary: "A user's presence changed: to everyone sharing a room with them.",
      data: WirePresenceSchema,
    },
    user_joined: { summary: 'A user joined: to the other members.', data: RoomUserEventSchema },
    user_left: { summary: 'A user left: to the other members.', data: RoomUserEventSchema },
    room_joined: {
      summary: "The user joined a room: to the joiner's connections.",
      data: RoomJoinedEventSchema,
    },
    room_left: {
      summary: "The user left or was removed: to the user's connections.",
      data: RoomLeftEventSchema,
    },
    room_created: {
      summary: "The user created a room: to the creator's connections.",
      data: RoomCreatedEventSchema,
    },
    room_updated: { summary: "A room's settings changed: to the room.", data: RoomUpdatedEventSchema },
    room_deleted: { summary: 'A room was deleted: to the room.', data: RoomDeletedEventSchema },
    room_listed: {
      summary: 'A public room was created or changed (or made public): to every connection, on every node.',
      data: RoomListedEventSchema,
    },
    room_unlisted: {
      summary: 'A public room was deleted or made private: to every connection, on every node.',
      data: RoomUnlistedEventSchema,
    },
    room_invitation: {
      summary: "The user was invited to a room: to the invitee's connections.",
      data: RoomInvitationEventSchema,
    },
    role_changed: { summary: "A member's role changed: to the room.", data: RoleChangedEventSchema },
    member_banned: moderation('banned'),
    member_unbanned: moderation('unbanned'),
    member_kicked: moderation('kicked'),
    member_muted: moderation('muted'),
    member_unmuted: moderation('unmuted'),
    channel_message: {
      summary: 'A publication on a channel, to every subscriber whose pattern and filters match.',
      data: ChannelMessageEventSchema,
    },
    resumed: {
      summary: 'After `resume` (or an SSE `Last-Event-ID`) replayed the missed messages.',
      data: ResumedEventSchema,
    },
    read_state: {
      summary:
        "The user's read state of a room moved (`mark_read`): to the user's connections, on every node.",
      data: ReadStateEventSchema,
    },
  } as const satisfies Record<string, ServerEventSpec>;

  return {
    RoomRole: RoomRoleSchema,
    PresenceStatus: PresenceStatusSchema,
    WireMessage: WireMessageSchema,
    WireRoom: WireRoomSchema,
    WireMember: WireMemberSchema,
    WirePresence: WirePresenceSchema,
    Connected: ConnectedSchema,
    ErrorData: ErrorDataSchema,
    MessageEditedEvent: MessageEditedEventSchema,
    MessageDeletedEvent: MessageDeletedEventSchema,
    ReactionEvent: ReactionEventSchema,
    ThreadUpdatedEvent: ThreadUpdatedEventSchema,
    TypingEvent: TypingEventSchema,
    RoomUserEvent: RoomUserEventSchema,
    RoomJoinedEvent: RoomJoinedEventSchema,
    RoomLeftEvent: RoomLeftEventSchema,
    RoomCreatedEvent: RoomCreatedEventSchema,
    RoomUpdatedEvent: RoomUpdatedEventSchema,
    RoomDeletedEvent: RoomDeletedEventSchema,
    RoomListedEvent: RoomListedEventSchema,
    RoomUnlistedEvent: RoomUnlistedEventSchema,
    ChannelMessageEvent: ChannelMessageEventSchema,
    ModerationEvent: ModerationEventSchema,
    RoomInvitationEvent: RoomInvitationEventSchema,
    RoleChangedEvent: RoleChangedEventSchema,
    ResumedEvent: ResumedEventSchema,
    ReadStateEvent: ReadStateEventSchema,
    HeartbeatEvent: HeartbeatEventSchema,
    Pong: PongSchema,
    events,
  };
}

/** What {@link protocolSchemas} returns. */
export type ProtocolSchemas = ReturnType<typeof buildSchemas>;

let built: ProtocolSchemas | undefined;

/**
 * The JSON Schemas of the protocol's objects and event data (`WireMessage`,
 * `WireRoom`, `RoomJoinedEvent`, ...), and `events`: every server → client
 * envelope type with a summary and the schema of its `data` (`ack` and
 * `error` answer requests; the others are events). Built once; do not modify.
 */
export function protocolSchemas(): ProtocolSchemas {
  return (built ??= buildSchemas());
}

/** A server → client envelope type. */
export type ServerEventType = keyof ProtocolSchemas['events'];

/** The `data` of each server → client envelope type. */
export type ServerEventMap = { [K in ServerEventType]: Infer<ProtocolSchemas['events'][K]['data']> };

import { Inject } from '@nestjs/common';

/** Injection token of the active {@link StreamingBackend}. */
export const STREAMING_BACKEND = Symbol('STREAMING_BACKEND');

/** Parameter decorator: inject the active {@link StreamingBackend}. */
export const InjectStreamingBackend = (): ParameterDecorator => Inject(STREAMING_BACKEND);

/** Room roles, highest first. */
export type RoomRole = 'owner' | 'admin' | 'moderator' | 'member';

/** A room as stored by a backend. */
export interface RoomRecord {
  id: string;
  name: string;
  description: string;
  private: boolean;
  owner: string;
  maxMembers: number | null;
  createdAt: string;
  metadata: Record<string, unknown>;
}

/** One membership. */
export interface MemberRecord {
  userId: string;
  role: RoomRole;
  joinedAt: string;
}

/** An earlier version of an edited message. */
export interface MessageVersion {
  content: string;
  editedBy: string;
  editedAt: string;
}

/** A message as stored in a room's history. */
export interface StoredMessage {
  id: string;
  seq: number;
  roomId: string;
  userId: string;
  content: string;
  metadata: Record<string, unknown>;
  timestamp: string;
  editedAt?: string;
  editedBy?: string;
  deleted?: boolean;
  deletedBy?: string;
  deletedAt?: string;
  /** emoji -> user ids, in the order they reacted. */
  reactions: Record<string, string[]>;
  /** Audit trail: earlier versions, oldest first. */
  versions?: MessageVersion[];
}

/** A message before the backend gives it its `seq`. */
export type MessageDraft = Omit<StoredMessage, 'seq'>;

/** A change to a stored message, applied atomically by the backend. */
export type MessageMutation =
  /** `keepVersions`: how many earlier versions the audit trail keeps (the oldest are dropped). */
  | { kind: 'edit'; content: string; by: string; at: string; keepVersions: number }
  | { kind: 'delete'; by: string; at: string; keepVersions: number }
  /** `maxReactions`: distinct reactions a message may have; a new one beyond is refused (`limited`). */
  | { kind: 'react'; reaction: string; userId: string; add: boolean; maxReactions: number };

/** Result of {@link StreamingBackend.updateMessage}. */
export interface MutationResult {
  message: StoredMessage;
  /** False when the mutation changed nothing (e.g. the same reaction twice). */
  changed: boolean;
  /** Set when a new reaction was refused: the message already has `maxReactions` distinct ones. */
  limited?: boolean;
}

/** History query: without `after`, the newest `limit` below `before`; with `after`, the oldest `limit` above it. */
export interface HistoryQuery {
  limit: number;
  before?: number;
  after?: number;
}

/** Result of {@link StreamingBackend.addMember}. */
export type AddMemberResult = 'added' | 'exists' | 'full' | 'no_room' | 'user_limit';

/** A ban or a mute. `until` is epoch ms, or null for "until lifted". */
export interface Restriction {
  kind: 'ban' | 'mute';
  userId: string;
  by: string;
  reason: string;
  at: string;
  until: number | null;
}

/** An invitation to a private room. */
export interface Invitation {
  userId: string;
  invitedBy: string;
  at: string;
}

/** One entry of a room's moderation log. */
export interface ModerationLogEntry {
  action: 'ban' | 'unban' | 'kick' | 'mute' | 'unmute' | 'set_role' | 'delete_message';
  roomId: string;
  moderatorId: string | null;
  targetId: string;
  reason: string;
  at: string;
  /** Seconds, for timed bans and mutes. */
  durationS?: number;
  /** The new role, for `set_role`. */
  role?: RoomRole;
}

/** Presence of one user. */
export interface PresenceRecord {
  userId: string;
  status: 'online' | 'away' | 'busy' | 'offline';
  custom?: string;
  lastSeen: string;
}

/** A node of the cluster. */
export interface NodeInfo {
  nodeId: string;
  startedAt: string;
  lastHeartbeat: string;
  connections: number;
  region?: string;
  address?: string;
}

/** Called with each payload published on a subscribed topic. */
export type TopicHandler = (payload: string, topic: string) => void;

/**
 * The state and fan-out contract every backend (local, Redis, NATS) fulfils.
 * One implementation per process; services never talk to Redis or NATS directly.
 * The shared contract tests (`backend.contract.ts`) run against every implementation.
 */
export interface StreamingBackend {
  /** `local`, `redis`, `nats`, ... */
  readonly kind: string;
  /** True when other nodes may share this backend. */
  readonly distributed: boolean;

  connect(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the backend answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  /**
   * Optional: why an acknowledged message could be lost if the backend's server
   * restarted (e.g. Redis without AOF), or null when its settings keep them.
   * Shown as a warning by the backend health indicator.
   */
  durabilityWarning?(): Promise<string | null>;

  // --- pub/sub: one subscription per node per topic ---
  publish(topic: string, payload: string): Promise<void>;
  subscribe(topic: string, handler: TopicHandler): Promise<void>;
  unsubscribe(topic: string): Promise<void>;

  // --- rooms and membership ---
  /** Stores the room and makes `owner` its first member. Rejects if the id exists. */
  createRoom(room: RoomRecord, owner: MemberRecord): Promise<void>;
  getRoom(roomId: string): Promise<RoomRecord | null>;
  updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null>;
  /** Deletes the room, its members, restrictions and history. */
  deleteRoom(roomId: string): Promise<boolean>;
  listRooms(): Promise<RoomRecord[]>;
  countRooms(): Promise<number>;
  /** Atomic: checks the room's `maxMembers` and the user's room count (`maxRoomsPerUser`). */
  addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult>;
  removeMember(roomId: string, userId: string): Promise<boolean>;
  getMember(roomId: string, userId: string): Promise<MemberRecord | null>;
  setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean>;
  listMembers(roomId: string): Promise<MemberRecord[]>;
  countMembers(roomId: string): Promise<number>;
  /** Ids of the rooms a user is a member of. */
  userRooms(userId: string): Promise<string[]>;

  // --- bans and mutes ---
  setRestriction(roomId: string, restriction: Restriction): Promise<void>;
  /** The live restriction, or null (expired ones count as none). */
  getRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<Restriction | null>;
  clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean>;
  listRestrictions(roomId: string): Promise<Restriction[]>;

  // --- invitations to private rooms ---
  addInvitation(roomId: string, invitation: Invitation): Promise<void>;
  getInvitation(roomId: string, userId: string): Promise<Invitation | null>;
  removeInvitation(roomId: string, userId: string): Promise<boolean>;

  // --- moderation log (newest last; bounded by `maxEntries`) ---
  appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void>;
  /** The newest `limit` entries, oldest first. */
  getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]>;

  // --- history ---
  /**
   * Gives the draft the room's next `seq` (1, 2, 3, ... gap-free), stores it and,
   * when `publishTopic` is set, publishes its `message` envelope there in the same
   * atomic step, so that every subscriber sees a room's messages in seq order.
   * Rejects with a `room_not_found` StreamingError when the room does not exist.
   */
  appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage>;
  getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]>;
  getMessage(roomId: string, messageId: string): Promise<StoredMessage | null>;
  updateMessage(roomId: string, messageId: string, mutation: MessageMutation): Promise<MutationResult | null>;
  /** The last seq given out in the room (0 when none). */
  latestSeq(roomId: string): Promise<number>;
  /** The lowest seq still in history (latestSeq + 1 when history is empty). */
  oldestSeq(roomId: string): Promise<number>;
  /** Drops messages beyond `maxCount` and older than `olderThan` (epoch ms); returns how many. */
  trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number>;

  // --- presence ---
  setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void>;
  getPresence(userIds: string[]): Promise<PresenceRecord[]>;
  removePresence(userId: string): Promise<void>;

  // --- connection directory: which nodes a user has connections on ---
  addUserNode(userId: string, nodeId: string): Promise<void>;
  removeUserNode(userId: string, nodeId: string): Promise<void>;
  /** Nodes (dead ones included until reaped) where the user has connections. */
  userNodes(userId: string): Promise<string[]>;
  /** Users with connections on a node. */
  nodeUsers(nodeId: string): Promise<string[]>;

  /**
   * Records that the user has `count` connections on `nodeId` (0 removes the
   * entry). With `max`, a change that would take the user's total over every
   * node above `max` is refused: resolves false and changes nothing (lowering
   * a count is always accepted). Entries of `deadNodes` are removed first and
   * not counted.
   */
  setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits?: { max?: number; deadNodes?: readonly string[] },
  ): Promise<boolean>;
  /** The user's connections per node (dead nodes included until reaped). */
  userConnections(userId: string): Promise<Record<string, number>>;

  // --- expiring sets: members with a TTL each (typing, channel use) ---
  /**
   * Adds `member` to the set `key`, or renews it, for `ttlMs`. Resolves its
   * new expiry stamp (epoch ms by the backend's clock) and whether it was
   * absent or expired before; or null, changing nothing, when `max` other
   * live members are in. Members expired for over a minute are dropped.
   */
  touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null>;
  /**
   * Removes `member` (expired or not); with `stamp`, only when its expiry is
   * still that stamp (nobody renewed it since). Resolves whether it removed it.
   */
  removeExpiring(key: string, member: string, stamp?: number): Promise<boolean>;
  /** The live (unexpired) members of the set `key`. */
  listExpiring(key: string): Promise<string[]>;

  // --- counters for limits ---
  /** Atomically adds `by` to a counter that expires `ttlMs` after its creation; returns the new value. */
  incrementCounter(key: string, by: number, ttlMs: number): Promise<number>;
  getCounter(key: string): Promise<number>;

  // --- node registry ---
  registerNode(info: NodeInfo, ttlSeconds: number): Promise<void>;
  listNodes(): Promise<NodeInfo[]>;
  removeNode(nodeId: string): Promise<void>;
}

/** Topic carrying a room's events. */
export const roomTopic = (roomId: string): string => `room:${roomId}`;
/** Topic carrying events addressed to one user's connections. */
export const userTopic = (userId: string): string => `user:${userId}`;
/** Topic carrying cluster-wide events. */
export const NODE_TOPIC = 'nodes';

/** How long an expired member of an expiring set is kept for its owner to remove (and announce) it. */
export const EXPIRED_MEMBER_GRACE_MS = 60_000;

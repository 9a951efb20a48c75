/**
 * The records the backend ports store and return. Plain data: no Nest, no
 * imports; shared by every port and every backend.
 */

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
  /** `direct`: the one room of two users (`open_direct`); absent: an ordinary room. */
  kind?: 'room' | 'direct';
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
  /** Threads: the message this one replies to (same room). */
  replyTo?: string;
  /** Threads: the id of the thread's first message (set on replies only). */
  threadId?: string;
  /** Threads: replies to this message (set once it has one; see `Broker.addReply`). */
  replyCount?: number;
  /** Threads: timestamp of the latest reply. */
  lastReplyAt?: string;
}

/** A message before the backend gives it its `seq`. */
export type MessageDraft = Omit<StoredMessage, 'seq'>;

/** A change to a stored message, applied atomically by the backend. */
export type MessageMutation =
  /** `keepVersions`: how many earlier versions the audit trail keeps (the oldest are dropped). */
  | { kind: 'edit'; content: string; by: string; at: string; keepVersions: number }
  | { kind: 'delete'; by: string; at: string; keepVersions: number }
  /** `maxReactions`: distinct reactions a message may have; a new one beyond is refused (`limited`). */
  | { kind: 'react'; reaction: string; userId: string; add: boolean; maxReactions: number }
  /** One more reply (threads): `replyCount` + 1, `lastReplyAt` the later of it and `at`; a deleted message changes nothing. */
  | { kind: 'reply'; at: string };

/** Result of `Broker.updateMessage`. */
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

/** Result of `RoomStore.addMember`. */
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
  /** Room messages accepted on the node per second, over its last seconds (as of the heartbeat). */
  messagesPerSecond?: number;
  /** Room messages accepted on the node since it started. */
  totalMessages?: number;
}

/** Called with each payload published on a subscribed topic. */
export type TopicHandler = (payload: string, topic: string) => void;

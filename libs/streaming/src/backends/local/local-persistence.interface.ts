import {
  type HistoryQuery,
  type Invitation,
  type MemberRecord,
  type ModerationLogEntry,
  type Restriction,
  type RoomRecord,
  type StoredMessage,
} from '../../interfaces';

/** A room as its store keeps it: the record and where its message log stands. */
export interface PersistedRoom {
  record: RoomRecord;
  /** The last seq given out (0: none yet). */
  lastSeq: number;
  /** The lowest seq still stored (`lastSeq + 1` when the log is empty). */
  oldestSeq: number;
}

/** A search of one room's messages through the store's index (see `Broker.searchMessages`). */
export interface PersistedSearch {
  /** Every one of these words (as `wordsOf` splits text) must be in the content. */
  words: string[];
  limit: number;
  /** Only among the room's newest `window` messages. */
  window: number;
  /** Only seqs below this one. */
  before?: number;
}

/**
 * The durable store behind the local backend (the `sqlite` history store):
 * the source of truth for rooms, members, bans and mutes, invitations, the
 * moderation log, message logs and read state. The backend reads what it
 * does not hold in its bounded cache from here and writes every change here
 * first. Synchronous on purpose (an embedded database): a call is atomic in
 * the process, and a write is durable before the request is acknowledged.
 */
export interface LocalPersistence {
  /** The room, or null. Reads no message. */
  getRoom(roomId: string): PersistedRoom | null;
  listRooms(): RoomRecord[];
  countRooms(): number;
  /** The room and its owner, in one transaction. */
  createRoom(record: RoomRecord, owner: MemberRecord): void;
  saveRoom(record: RoomRecord): void;
  /** The room and all of it: members, restrictions, invitations, log, messages, read state. */
  deleteRoom(roomId: string): void;

  listMembers(roomId: string): MemberRecord[];
  countMembers(roomId: string): number;
  /** Ids of the rooms the user is a member of. */
  userRooms(userId: string): string[];
  saveMember(roomId: string, member: MemberRecord): void;
  deleteMember(roomId: string, userId: string): void;

  listRestrictions(roomId: string): Restriction[];
  saveRestriction(roomId: string, restriction: Restriction): void;
  deleteRestriction(roomId: string, kind: Restriction['kind'], userId: string): void;
  listInvitations(roomId: string): Invitation[];
  saveInvitation(roomId: string, invitation: Invitation): void;
  deleteInvitation(roomId: string, userId: string): void;
  /** Appends to the room's log, keeping the newest `maxEntries`. */
  appendLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): void;
  /** The newest `limit` entries, oldest first. */
  moderationLog(roomId: string, limit: number): ModerationLogEntry[];

  /**
   * Store a new message and the room's last seq and, when `dropBelow` > 0,
   * drop the room's messages with a lower seq, in one transaction.
   */
  appendMessage(message: StoredMessage, dropBelow: number): void;
  /** A page of the room's log, as {@link HistoryQuery} describes it; oldest first. */
  history(roomId: string, query: HistoryQuery): StoredMessage[];
  getMessage(roomId: string, messageId: string): StoredMessage | null;
  /** Replace a stored message (edit, delete, reaction, reply count); `contentChanged` re-indexes its words. */
  saveMessage(message: StoredMessage, contentChanged: boolean): void;
  /**
   * Drop the oldest messages beyond `maxCount`, then the oldest ones older than
   * `olderThan` (epoch ms), as `Broker.trimHistory`; returns how many and the new oldest seq.
   */
  trimHistory(roomId: string, maxCount: number, olderThan?: number): { dropped: number; oldestSeq: number };
  /** Candidates of `search_messages`, newest first (see `Broker.searchMessages`). */
  searchMessages(roomId: string, query: PersistedSearch): StoredMessage[];

  /** Read state: store max(stored, seq) for the user in the room; returns the stored value. */
  markRead(roomId: string, userId: string, seq: number): number;
  /** Read state: the stored value (0 when none). */
  readSeq(roomId: string, userId: string): number;
  close(): void;
}

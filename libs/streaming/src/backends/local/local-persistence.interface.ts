import {
  type Invitation,
  type MemberRecord,
  type ModerationLogEntry,
  type Restriction,
  type RoomRecord,
  type StoredMessage,
} from '../../interfaces';

/** Everything durable of one room, as loaded at start-up. */
export interface PersistedRoom {
  record: RoomRecord;
  lastSeq: number;
  members: MemberRecord[];
  restrictions: Restriction[];
  invitations: Invitation[];
  modLog: ModerationLogEntry[];
  /** Oldest first. */
  history: StoredMessage[];
  /** Read state: user id -> highest seq read. */
  readSeqs?: Record<string, number>;
}

/**
 * Durable store behind the local backend (the pluggable HistoryStore): the
 * backend keeps serving from memory and writes every change through, so a
 * restart finds rooms, members, bans and history again. Synchronous on purpose
 * (an embedded database): a write is durable before the request is acknowledged.
 */
export interface LocalPersistence {
  load(): PersistedRoom[];
  saveRoom(record: RoomRecord): void;
  deleteRoom(roomId: string): void;
  saveMember(roomId: string, member: MemberRecord): void;
  deleteMember(roomId: string, userId: string): void;
  saveRestriction(roomId: string, restriction: Restriction): void;
  deleteRestriction(roomId: string, kind: Restriction['kind'], userId: string): void;
  saveInvitation(roomId: string, invitation: Invitation): void;
  deleteInvitation(roomId: string, userId: string): void;
  appendLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): void;
  /** Store a new message and the room's seq, dropping `dropIds` (trimmed), in one transaction. */
  appendMessage(message: StoredMessage, dropIds: string[]): void;
  /** Replace a stored message (edit, delete, reaction). */
  saveMessage(message: StoredMessage): void;
  deleteMessages(roomId: string, ids: string[]): void;
  /** Read state: store max(stored, seq) for the user in the room (deleteRoom drops it). */
  saveReadSeq(roomId: string, userId: string, seq: number): void;
  close(): void;
}

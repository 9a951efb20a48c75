import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { loadOptionalPackage } from '../../common/optional-package';
import type { LocalPersistence, PersistedRoom, PersistedSearch } from './local-persistence.interface';
import { SqliteMessages } from './sqlite-messages';
import { openSchema } from './sqlite-schema';
import {
  type HistoryQuery,
  type Invitation,
  type MemberRecord,
  type ModerationLogEntry,
  type Restriction,
  type RoomRecord,
  type StoredMessage,
} from '../../interfaces';

/** Options of {@link SqlitePersistence}. */
export interface SqlitePersistenceOptions {
  /** Called with the text of every SQL statement run (better-sqlite3's `verbose`): tests, diagnostics. */
  trace?: (sql: string) => void;
}

const parseAll = <T>(rows: unknown[]): T[] => rows.map((j) => JSON.parse(j as string) as T);

/** The prepared statements of {@link SqlitePersistence} (the messages' are in {@link SqliteMessages}). */
function prepare(db: Database.Database) {
  const p = (sql: string): Database.Statement => db.prepare(sql);
  const byRoom = (table: string): Database.Statement => p(`DELETE FROM ${table} WHERE room_id = ?`);
  return {
    getRoom: p(
      'SELECT json, last_seq, (SELECT min(seq) FROM messages WHERE room_id = rooms.id) AS oldest FROM rooms WHERE id = ?',
    ),
    listRooms: p('SELECT json FROM rooms').pluck(),
    countRooms: p('SELECT count(*) FROM rooms').pluck(),
    saveRoom: p(
      'INSERT INTO rooms (id, json) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET json = excluded.json',
    ),
    deleteRoom: [
      ...['members', 'restrictions', 'invitations', 'modlog', 'reads'].map(byRoom),
      p('DELETE FROM rooms WHERE id = ?'),
    ],
    listMembers: p('SELECT json FROM members WHERE room_id = ?').pluck(),
    countMembers: p('SELECT count(*) FROM members WHERE room_id = ?').pluck(),
    userRooms: p('SELECT room_id FROM members WHERE user_id = ?').pluck(),
    saveMember: p('INSERT OR REPLACE INTO members (room_id, user_id, json) VALUES (?, ?, ?)'),
    deleteMember: p('DELETE FROM members WHERE room_id = ? AND user_id = ?'),
    listRestrictions: p('SELECT json FROM restrictions WHERE room_id = ?').pluck(),
    saveRestriction: p(
      'INSERT OR REPLACE INTO restrictions (room_id, kind, user_id, json) VALUES (?, ?, ?, ?)',
    ),
    deleteRestriction: p('DELETE FROM restrictions WHERE room_id = ? AND kind = ? AND user_id = ?'),
    listInvitations: p('SELECT json FROM invitations WHERE room_id = ?').pluck(),
    saveInvitation: p('INSERT OR REPLACE INTO invitations (room_id, user_id, json) VALUES (?, ?, ?)'),
    deleteInvitation: p('DELETE FROM invitations WHERE room_id = ? AND user_id = ?'),
    appendLog: p('INSERT INTO modlog (room_id, json) VALUES (?, ?)'),
    trimLog: p(
      'DELETE FROM modlog WHERE room_id = ? AND n NOT IN (SELECT n FROM modlog WHERE room_id = ? ORDER BY n DESC LIMIT ?)',
    ),
    moderationLog: p(
      'SELECT json FROM (SELECT n, json FROM modlog WHERE room_id = ? ORDER BY n DESC LIMIT ?) ORDER BY n',
    ).pluck(),
    markRead: p(
      'INSERT INTO reads (room_id, user_id, seq) VALUES (?, ?, ?) ON CONFLICT(room_id, user_id) DO UPDATE SET seq = max(seq, excluded.seq) RETURNING seq',
    ).pluck(),
    readSeq: p('SELECT seq FROM reads WHERE room_id = ? AND user_id = ?').pluck(),
  };
}

/**
 * The SQLite (better-sqlite3) history store of the local backend, the source
 * of truth of everything durable: WAL journal with `synchronous = FULL`, one
 * transaction per change, so an acknowledged message is on disk (WAL synced)
 * before its ack. Opening a file reads no room and no message (only the
 * schema version, migrating an older file once).
 */
export class SqlitePersistence implements LocalPersistence {
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly messages: SqliteMessages;
  private readonly createTx: (record: RoomRecord, owner: MemberRecord) => void;
  private readonly deleteTx: (roomId: string) => void;
  private readonly logTx: (roomId: string, entry: ModerationLogEntry, maxEntries: number) => void;

  constructor(
    readonly path: string,
    options: SqlitePersistenceOptions = {},
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const Sqlite = loadOptionalPackage(
      'better-sqlite3',
      'SQLite history store (historyStore: sqlite)',
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      () => require('better-sqlite3') as typeof Database,
    );
    const trace = options.trace;
    this.db = new Sqlite(path, trace ? { verbose: (sql: unknown) => trace(String(sql)) } : {});
    this.db.pragma('journal_mode = WAL');
    // FULL: a message is on disk (WAL synced) before it is acknowledged, power loss included.
    this.db.pragma('synchronous = FULL');
    // 8 MiB of pages (SQLite's default: 2 MiB): on a large file the index pages of the rooms in use stay
    // cached, so an append costs what it costs on an empty file (measured on 1M messages, bench/local-store.mjs).
    this.db.pragma('cache_size = -8192');
    openSchema(this.db);
    this.stmt = prepare(this.db);
    this.messages = new SqliteMessages(this.db);
    const s = this.stmt;
    this.createTx = this.db.transaction((record: RoomRecord, owner: MemberRecord) => {
      this.saveRoom(record);
      this.saveMember(record.id, owner);
    });
    this.deleteTx = this.db.transaction((roomId: string) => {
      this.messages.deleteRoom(roomId);
      for (const st of s.deleteRoom) st.run(roomId);
    });
    this.logTx = this.db.transaction((roomId: string, entry: ModerationLogEntry, maxEntries: number) => {
      s.appendLog.run(roomId, JSON.stringify(entry));
      s.trimLog.run(roomId, roomId, maxEntries);
    });
  }

  getRoom(roomId: string): PersistedRoom | null {
    const row = this.stmt.getRoom.get(roomId) as
      { json: string; last_seq: number; oldest: number | null } | undefined;
    if (!row) return null;
    return {
      record: JSON.parse(row.json) as RoomRecord,
      lastSeq: row.last_seq,
      oldestSeq: row.oldest ?? row.last_seq + 1,
    };
  }

  listRooms(): RoomRecord[] {
    return parseAll<RoomRecord>(this.stmt.listRooms.all());
  }

  countRooms(): number {
    return this.stmt.countRooms.get() as number;
  }

  createRoom(record: RoomRecord, owner: MemberRecord): void {
    this.createTx(record, owner);
  }

  saveRoom(record: RoomRecord): void {
    this.stmt.saveRoom.run(record.id, JSON.stringify(record));
  }

  deleteRoom(roomId: string): void {
    this.deleteTx(roomId);
  }

  listMembers(roomId: string): MemberRecord[] {
    return parseAll<MemberRecord>(this.stmt.listMembers.all(roomId));
  }

  countMembers(roomId: string): number {
    return this.stmt.countMembers.get(roomId) as number;
  }

  userRooms(userId: string): string[] {
    return this.stmt.userRooms.all(userId) as string[];
  }

  saveMember(roomId: string, member: MemberRecord): void {
    this.stmt.saveMember.run(roomId, member.userId, JSON.stringify(member));
  }

  deleteMember(roomId: string, userId: string): void {
    this.stmt.deleteMember.run(roomId, userId);
  }

  listRestrictions(roomId: string): Restriction[] {
    return parseAll<Restriction>(this.stmt.listRestrictions.all(roomId));
  }

  saveRestriction(roomId: string, r: Restriction): void {
    this.stmt.saveRestriction.run(roomId, r.kind, r.userId, JSON.stringify(r));
  }

  deleteRestriction(roomId: string, kind: Restriction['kind'], userId: string): void {
    this.stmt.deleteRestriction.run(roomId, kind, userId);
  }

  listInvitations(roomId: string): Invitation[] {
    return parseAll<Invitation>(this.stmt.listInvitations.all(roomId));
  }

  saveInvitation(roomId: string, invitation: Invitation): void {
    this.stmt.saveInvitation.run(roomId, invitation.userId, JSON.stringify(invitation));
  }

  deleteInvitation(roomId: string, userId: string): void {
    this.stmt.deleteInvitation.run(roomId, userId);
  }

  appendLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): void {
    this.logTx(roomId, entry, maxEntries);
  }

  moderationLog(roomId: string, limit: number): ModerationLogEntry[] {
    return limit > 0 ? parseAll<ModerationLogEntry>(this.stmt.moderationLog.all(roomId, limit)) : [];
  }

  appendMessage(message: StoredMessage, dropBelow: number): void {
    this.messages.append(message, dropBelow);
  }

  history(roomId: string, query: HistoryQuery): StoredMessage[] {
    return this.messages.history(roomId, query);
  }

  getMessage(roomId: string, messageId: string): StoredMessage | null {
    return this.messages.get(roomId, messageId);
  }

  saveMessage(message: StoredMessage, contentChanged: boolean): void {
    this.messages.save(message, contentChanged);
  }

  trimHistory(roomId: string, maxCount: number, olderThan?: number): { dropped: number; oldestSeq: number } {
    return this.messages.trim(roomId, maxCount, olderThan);
  }

  searchMessages(roomId: string, query: PersistedSearch): StoredMessage[] {
    return this.messages.search(roomId, query);
  }

  markRead(roomId: string, userId: string, seq: number): number {
    if (seq <= 0) return this.readSeq(roomId, userId);
    return this.stmt.markRead.get(roomId, userId, seq) as number;
  }

  readSeq(roomId: string, userId: string): number {
    return (this.stmt.readSeq.get(roomId, userId) as number | undefined) ?? 0;
  }

  /**
   * Run `fn` (calls of this store) in one transaction, one disk sync for all
   * of its writes: bulk imports, seeding a benchmark. All or nothing.
   */
  batch<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Put every message in the search index now. It is also done in batches
   * (within 50 ms of an append, every 256 appends, at close); searches are
   * exact either way.
   */
  indexSearchNow(): void {
    this.messages.indexNow();
  }

  close(): void {
    if (!this.db.open) return;
    this.messages.close();
    this.db.close();
  }
}

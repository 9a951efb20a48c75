import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { loadOptionalPackage } from '../../common/optional-package';
import { LocalPersistence, PersistedRoom } from './local-persistence.interface';
import {
  type Invitation,
  type MemberRecord,
  type ModerationLogEntry,
  type Restriction,
  type RoomRecord,
  type StoredMessage,
} from '../../interfaces';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rooms (id TEXT PRIMARY KEY, json TEXT NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS members (room_id TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE TABLE IF NOT EXISTS restrictions (room_id TEXT NOT NULL, kind TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, kind, user_id));
CREATE TABLE IF NOT EXISTS invitations (room_id TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE TABLE IF NOT EXISTS modlog (n INTEGER PRIMARY KEY AUTOINCREMENT, room_id TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS modlog_room ON modlog (room_id, n);
CREATE TABLE IF NOT EXISTS messages (room_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, seq));
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages (room_id, id);
CREATE TABLE IF NOT EXISTS reads (room_id TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (room_id, user_id));
`;

type Row = { json: string };

/**
 * SQLite (better-sqlite3) store for the local backend: WAL journal, one
 * transaction per change, so that acknowledged messages survive a restart.
 */
export class SqlitePersistence implements LocalPersistence {
  private readonly db: Database.Database;
  private readonly stmt: Record<string, Database.Statement>;
  private readonly appendTx: (m: StoredMessage, dropIds: string[]) => void;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const Sqlite = loadOptionalPackage(
      'better-sqlite3',
      'SQLite history store (historyStore: sqlite)',
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      () => require('better-sqlite3') as typeof Database,
    );
    this.db = new Sqlite(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: a message is on disk (WAL synced) before it is acknowledged, power loss included.
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
    const p = (sql: string): Database.Statement => this.db.prepare(sql);
    this.stmt = {
      saveRoom: p(
        'INSERT INTO rooms (id, json) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET json = excluded.json',
      ),
      setSeq: p('UPDATE rooms SET last_seq = ? WHERE id = ?'),
      saveMember: p('INSERT OR REPLACE INTO members (room_id, user_id, json) VALUES (?, ?, ?)'),
      deleteMember: p('DELETE FROM members WHERE room_id = ? AND user_id = ?'),
      saveRestriction: p(
        'INSERT OR REPLACE INTO restrictions (room_id, kind, user_id, json) VALUES (?, ?, ?, ?)',
      ),
      deleteRestriction: p('DELETE FROM restrictions WHERE room_id = ? AND kind = ? AND user_id = ?'),
      saveInvitation: p('INSERT OR REPLACE INTO invitations (room_id, user_id, json) VALUES (?, ?, ?)'),
      deleteInvitation: p('DELETE FROM invitations WHERE room_id = ? AND user_id = ?'),
      appendLog: p('INSERT INTO modlog (room_id, json) VALUES (?, ?)'),
      trimLog: p(
        'DELETE FROM modlog WHERE room_id = ? AND n NOT IN (SELECT n FROM modlog WHERE room_id = ? ORDER BY n DESC LIMIT ?)',
      ),
      insertMessage: p('INSERT INTO messages (room_id, seq, id, json) VALUES (?, ?, ?, ?)'),
      saveMessage: p('UPDATE messages SET json = ? WHERE room_id = ? AND id = ?'),
      deleteMessage: p('DELETE FROM messages WHERE room_id = ? AND id = ?'),
      saveReadSeq: p(
        'INSERT INTO reads (room_id, user_id, seq) VALUES (?, ?, ?) ON CONFLICT(room_id, user_id) DO UPDATE SET seq = max(seq, excluded.seq)',
      ),
    };
    this.appendTx = this.db.transaction((m: StoredMessage, dropIds: string[]) => {
      this.stmt.insertMessage.run(m.roomId, m.seq, m.id, JSON.stringify(m));
      this.stmt.setSeq.run(m.seq, m.roomId);
      for (const id of dropIds) this.stmt.deleteMessage.run(m.roomId, id);
    });
  }

  load(): PersistedRoom[] {
    const rows = this.db.prepare('SELECT id, json, last_seq FROM rooms').all() as Array<
      Row & { id: string; last_seq: number }
    >;
    const byRoom = <T>(sql: string, id: string): T[] =>
      (this.db.prepare(sql).all(id) as Row[]).map((r) => JSON.parse(r.json) as T);
    return rows.map((r) => ({
      record: JSON.parse(r.json) as RoomRecord,
      lastSeq: r.last_seq,
      members: byRoom<MemberRecord>('SELECT json FROM members WHERE room_id = ?', r.id),
      restrictions: byRoom<Restriction>('SELECT json FROM restrictions WHERE room_id = ?', r.id),
      invitations: byRoom<Invitation>('SELECT json FROM invitations WHERE room_id = ?', r.id),
      modLog: byRoom<ModerationLogEntry>('SELECT json FROM modlog WHERE room_id = ? ORDER BY n', r.id),
      history: byRoom<StoredMessage>('SELECT json FROM messages WHERE room_id = ? ORDER BY seq', r.id),
      readSeqs: Object.fromEntries(
        (
          this.db.prepare('SELECT user_id, seq FROM reads WHERE room_id = ?').all(r.id) as Array<{
            user_id: string;
            seq: number;
          }>
        ).map((x) => [x.user_id, x.seq]),
      ),
    }));
  }

  saveRoom(record: RoomRecord): void {
    this.stmt.saveRoom.run(record.id, JSON.stringify(record));
  }

  deleteRoom(roomId: string): void {
    this.db.transaction(() => {
      for (const t of ['rooms', 'members', 'restrictions', 'invitations', 'modlog', 'messages', 'reads']) {
        this.db.prepare(`DELETE FROM ${t} WHERE ${t === 'rooms' ? 'id' : 'room_id'} = ?`).run(roomId);
      }
    })();
  }

  saveMember(roomId: string, member: MemberRecord): void {
    this.stmt.saveMember.run(roomId, member.userId, JSON.stringify(member));
  }

  deleteMember(roomId: string, userId: string): void {
    this.stmt.deleteMember.run(roomId, userId);
  }

  saveRestriction(roomId: string, r: Restriction): void {
    this.stmt.saveRestriction.run(roomId, r.kind, r.userId, JSON.stringify(r));
  }

  deleteRestriction(roomId: string, kind: Restriction['kind'], userId: string): void {
    this.stmt.deleteRestriction.run(roomId, kind, userId);
  }

  saveInvitation(roomId: string, invitation: Invitation): void {
    this.stmt.saveInvitation.run(roomId, invitation.userId, JSON.stringify(invitation));
  }

  deleteInvitation(roomId: string, userId: string): void {
    this.stmt.deleteInvitation.run(roomId, userId);
  }

  appendLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): void {
    this.stmt.appendLog.run(roomId, JSON.stringify(entry));
    this.stmt.trimLog.run(roomId, roomId, maxEntries);
  }

  appendMessage(message: StoredMessage, dropIds: string[]): void {
    this.appendTx(message, dropIds);
  }

  saveMessage(message: StoredMessage): void {
    this.stmt.saveMessage.run(JSON.stringify(message), message.roomId, message.id);
  }

  deleteMessages(roomId: string, ids: string[]): void {
    this.db.transaction(() => {
      for (const id of ids) this.stmt.deleteMessage.run(roomId, id);
    })();
  }

  saveReadSeq(roomId: string, userId: string, seq: number): void {
    this.stmt.saveReadSeq.run(roomId, userId, seq);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

import type Database from 'better-sqlite3';
import type { HistoryQuery, StoredMessage } from '../../interfaces';
import type { PersistedSearch } from './local-persistence.interface';
import { indexedText, matchQuery, timestampMs } from './sqlite-schema';

const NO_LIMIT = Number.MAX_SAFE_INTEGER;
/** The search index takes the new messages this long after the first of them, or at once past INDEX_BATCH. */
const INDEX_DELAY_MS = 50;
const INDEX_BATCH = 256;
const parse = (rows: unknown[]): StoredMessage[] => rows.map((j) => JSON.parse(j as string) as StoredMessage);

/** The prepared statements of {@link SqliteMessages}. */
function prepare(db: Database.Database) {
  const p = (sql: string): Database.Statement => db.prepare(sql);
  // CROSS JOIN: the index first (the room token and every word, intersected), then the rows.
  const indexed = `SELECT m.seq, m.json FROM message_words w CROSS JOIN messages m ON m.n = w.rowid
    WHERE message_words MATCH ? AND m.room_id = ? AND m.seq >= ? AND m.seq < ?`;
  return {
    insert: p('INSERT INTO messages (room_id, seq, id, at, json) VALUES (?, ?, ?, ?, ?)'),
    setSeq: p('UPDATE rooms SET last_seq = ? WHERE id = ?'),
    unindexBelow: p(
      'DELETE FROM message_words WHERE rowid IN (SELECT n FROM messages WHERE room_id = ? AND seq < ? AND n <= ?)',
    ),
    deleteBelow: p('DELETE FROM messages WHERE room_id = ? AND seq < ?'),
    newest: p('SELECT json FROM messages WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?').pluck(),
    after: p(
      'SELECT json FROM messages WHERE room_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?',
    ).pluck(),
    byId: p('SELECT json FROM messages WHERE room_id = ? AND id = ?').pluck(),
    save: p('UPDATE messages SET json = ? WHERE room_id = ? AND id = ? RETURNING n').pluck(),
    index: p('INSERT INTO message_words (rowid, words) VALUES (?, ?)'),
    unindex: p('DELETE FROM message_words WHERE rowid = ?'),
    lastSeq: p('SELECT last_seq FROM rooms WHERE id = ?').pluck(),
    oldest: p('SELECT min(seq) FROM messages WHERE room_id = ?').pluck(),
    firstKept: p(
      'SELECT seq FROM messages WHERE room_id = ? AND seq >= ? AND (at IS NULL OR at >= ?) ORDER BY seq LIMIT 1',
    ).pluck(),
    windowStart: p('SELECT seq FROM messages WHERE room_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?').pluck(),
    search: p(`SELECT json FROM (${indexed}) ORDER BY seq DESC LIMIT ?`).pluck(),
    // With messages not indexed yet: those of the room in the window are candidates too.
    searchWithNew: p(
      `SELECT json FROM (${indexed}
         UNION ALL SELECT seq, json FROM messages WHERE room_id = ? AND seq >= ? AND seq < ? AND n > ?)
       ORDER BY seq DESC LIMIT ?`,
    ).pluck(),
    lastN: p('SELECT max(n) FROM messages').pluck(),
    indexedUpTo: p('SELECT indexed_upto FROM search_state').pluck(),
    indexFrom: p(
      'INSERT INTO message_words (rowid, words) SELECT n, streaming_words(room_id, json) FROM messages WHERE n > ?',
    ),
    setIndexedUpTo: p('UPDATE search_state SET indexed_upto = ?'),
  };
}

/**
 * The message logs of the SQLite store and their FTS5 index (one prepared
 * statement per access, every read on an index: (room_id, seq), (room_id,
 * id) or the FTS5 table). Each write is one transaction.
 *
 * The search index is written in batches, off the append: an FTS5 row in a
 * transaction of its own costs more than the rest of the append. Every
 * message with `n` up to {@link indexedUpTo} is indexed; a search also takes
 * the room's newer messages as candidates (the caller's rule confirms every
 * candidate), so its results never depend on when the batch ran.
 */
export class SqliteMessages {
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly appendTx: (m: StoredMessage, dropBelow: number) => number;
  private readonly saveTx: (m: StoredMessage, contentChanged: boolean) => void;
  private readonly indexTx: (upTo: number) => void;
  private readonly trimTx: (
    roomId: string,
    maxCount: number,
    olderThan?: number,
  ) => { dropped: number; oldestSeq: number };
  /** Messages up to this `n` are in the search index. */
  private indexedUpTo: number;
  /** The last `n` given out (AUTOINCREMENT: later rows get higher ones). */
  private lastN: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Database.Database) {
    this.stmt = prepare(db);
    const s = this.stmt;
    this.indexedUpTo = s.indexedUpTo.get() as number;
    this.lastN = (s.lastN.get() as number | null) ?? 0;
    this.appendTx = db.transaction((m: StoredMessage, dropBelow: number) => {
      const n = s.insert.run(
        m.roomId,
        m.seq,
        m.id,
        timestampMs(m.timestamp),
        JSON.stringify(m),
      ).lastInsertRowid;
      s.setSeq.run(m.seq, m.roomId);
      if (dropBelow > 0) this.deleteBelow(m.roomId, dropBelow);
      return Number(n);
    });
    this.saveTx = db.transaction((m: StoredMessage, contentChanged: boolean) => {
      const n = s.save.get(JSON.stringify(m), m.roomId, m.id) as number | undefined;
      // A message not indexed yet is indexed with its content of then.
      if (n === undefined || !contentChanged || n > this.indexedUpTo) return;
      s.unindex.run(n);
      s.index.run(n, indexedText(m.roomId, m.content));
    });
    this.indexTx = db.transaction((upTo: number) => {
      s.indexFrom.run(this.indexedUpTo);
      s.setIndexedUpTo.run(upTo);
    });
    this.trimTx = db.transaction((roomId: string, maxCount: number, olderThan?: number) => {
      const last = s.lastSeq.get(roomId) as number | undefined;
      if (last === undefined) return { dropped: 0, oldestSeq: 1 };
      const oldest = (s.oldest.get(roomId) as number | null) ?? last + 1;
      // As the in-memory log: the oldest beyond maxCount, then on while they are older than the cutoff.
      let from = Math.max(oldest, last - maxCount + 1);
      if (olderThan !== undefined) {
        from = (s.firstKept.get(roomId, from, olderThan) as number | undefined) ?? last + 1;
      }
      if (from <= oldest) return { dropped: 0, oldestSeq: oldest };
      return { dropped: this.deleteBelow(roomId, from), oldestSeq: from };
    });
    // A process that stopped before its last batch: index the rest soon (searches are right meanwhile).
    if (this.lastN > this.indexedUpTo) this.scheduleIndex();
  }

  /** Delete the room's messages below `seq` and their index rows; returns how many. */
  private deleteBelow(roomId: string, seq: number): number {
    this.stmt.unindexBelow.run(roomId, seq, this.indexedUpTo);
    return this.stmt.deleteBelow.run(roomId, seq).changes;
  }

  append(m: StoredMessage, dropBelow: number): void {
    this.lastN = this.appendTx(m, dropBelow);
    if (this.lastN - this.indexedUpTo >= INDEX_BATCH) this.indexNow();
    else this.scheduleIndex();
  }

  /** Index every message not in the search index yet, in one transaction. */
  indexNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.lastN <= this.indexedUpTo || !this.db.open) return;
    this.indexTx(this.lastN);
    this.indexedUpTo = this.lastN;
  }

  private scheduleIndex(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      try {
        this.indexNow();
      } catch {
        // Retried after the next append; searches take the messages not indexed yet meanwhile.
      }
    }, INDEX_DELAY_MS);
    this.timer.unref();
  }

  history(roomId: string, q: HistoryQuery): StoredMessage[] {
    if (q.limit <= 0) return [];
    const hi = q.before ?? NO_LIMIT;
    if (q.after !== undefined) return parse(this.stmt.after.all(roomId, q.after, hi, q.limit));
    return parse(this.stmt.newest.all(roomId, hi, q.limit)).reverse();
  }

  get(roomId: string, messageId: string): StoredMessage | null {
    const json = this.stmt.byId.get(roomId, messageId) as string | undefined;
    return json === undefined ? null : (JSON.parse(json) as StoredMessage);
  }

  save(m: StoredMessage, contentChanged: boolean): void {
    this.saveTx(m, contentChanged);
  }

  trim(roomId: string, maxCount: number, olderThan?: number): { dropped: number; oldestSeq: number } {
    return this.trimTx(roomId, maxCount, olderThan);
  }

  search(roomId: string, q: PersistedSearch): StoredMessage[] {
    if (q.window <= 0 || q.limit <= 0) return [];
    const from = (this.stmt.windowStart.get(roomId, q.window - 1) as number | undefined) ?? 0;
    const before = q.before ?? NO_LIMIT;
    const match = matchQuery(roomId, q.words);
    if (this.lastN <= this.indexedUpTo)
      return parse(this.stmt.search.all(match, roomId, from, before, q.limit));
    return parse(
      this.stmt.searchWithNew.all(
        match,
        roomId,
        from,
        before,
        roomId,
        from,
        before,
        this.indexedUpTo,
        q.limit,
      ),
    );
  }

  /** Every message of the room and its index rows (within the caller's transaction). */
  deleteRoom(roomId: string): void {
    this.deleteBelow(roomId, NO_LIMIT);
  }

  /** Index what is left and stop the timer (before the database closes). */
  close(): void {
    try {
      this.indexNow();
    } catch {
      // Indexed at the next open.
    }
  }
}

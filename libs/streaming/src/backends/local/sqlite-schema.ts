import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { wordsOf } from '../../protocol/search-words';

/**
 * Layout of the SQLite history store, kept in `PRAGMA user_version`. 0: a
 * file written before there was a version (messages keyed by room and seq,
 * no search index); it is migrated when opened.
 */
export const SCHEMA_VERSION = 2;

/** Unchanged since the first layout. */
const TABLES = `
CREATE TABLE IF NOT EXISTS rooms (id TEXT PRIMARY KEY, json TEXT NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS members (room_id TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE TABLE IF NOT EXISTS restrictions (room_id TEXT NOT NULL, kind TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, kind, user_id));
CREATE TABLE IF NOT EXISTS invitations (room_id TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE TABLE IF NOT EXISTS modlog (n INTEGER PRIMARY KEY AUTOINCREMENT, room_id TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS modlog_room ON modlog (room_id, n);
CREATE TABLE IF NOT EXISTS reads (room_id TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (room_id, user_id));
CREATE INDEX IF NOT EXISTS members_user ON members (user_id);
`;

/**
 * Version 2 messages: `n`, an INTEGER PRIMARY KEY (a rowid VACUUM keeps;
 * AUTOINCREMENT: never given twice, so the index's watermark below holds), is
 * the message's row in the FTS5 index; `at` is the timestamp in epoch ms
 * (null when it does not parse), for retention.
 *
 * The index (`message_words`) is contentless and holds, per message, a room
 * token (`_` + 16 hex digits of the room id's SHA-1: `_` is never part of a
 * word, so it cannot match one) and the words of its content exactly as
 * `wordsOf` splits them, space-separated. The `ascii` tokenizer then splits
 * on the spaces only (every non-ASCII character is a token character, and
 * the ASCII ones of a word are lower-case letters and digits), so a query of
 * quoted words matches exactly the messages that have them all.
 *
 * The index is written in batches (see `SqliteMessages`): every message with
 * `n` up to `search_state.indexed_upto` is in it, the newer ones not yet.
 */
const MESSAGES = `
CREATE TABLE messages (n INTEGER PRIMARY KEY AUTOINCREMENT, room_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, at INTEGER, json TEXT NOT NULL);
CREATE UNIQUE INDEX messages_seq ON messages (room_id, seq);
CREATE UNIQUE INDEX messages_id ON messages (room_id, id);
CREATE VIRTUAL TABLE message_words USING fts5(words, content='', contentless_delete=1, detail=none, tokenize="ascii tokenchars '_'");
CREATE TABLE search_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_upto INTEGER NOT NULL);
INSERT INTO search_state (id, indexed_upto) VALUES (1, 0);
`;

/** The search index's token for a room. */
export function roomToken(roomId: string): string {
  return '_' + createHash('sha1').update(roomId).digest('hex').slice(0, 16);
}

/** What the search index holds for a message of `roomId` with this content. */
export function indexedText(roomId: string, content: string): string {
  const words = wordsOf(content);
  return words.length > 0 ? `${roomToken(roomId)} ${words.join(' ')}` : roomToken(roomId);
}

/** The FTS5 query for messages of `roomId` that have every one of `words`. */
export function matchQuery(roomId: string, words: readonly string[]): string {
  return [roomToken(roomId), ...words].map((w) => `"${w.replace(/"/g, '""')}"`).join(' ');
}

/** A timestamp in epoch ms, or null (what `Date.parse` cannot read never counts as old). */
export function timestampMs(timestamp: string): number | null {
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? null : t;
}

/**
 * Register the SQL functions the store uses (`streaming_words(room_id, json)`:
 * a message row's index text; `streaming_at(json)`: its timestamp in ms), then
 * create the tables of an empty file, or bring an older file up to
 * {@link SCHEMA_VERSION} in one transaction: a version-0 file's messages are
 * copied into the new table and indexed (once, at that first open).
 */
export function openSchema(db: Database.Database): void {
  const message = (json: unknown): { content?: unknown; timestamp?: unknown } =>
    JSON.parse(String(json)) as { content?: unknown; timestamp?: unknown };
  db.function('streaming_at', { deterministic: true }, (json) => {
    const t = message(json).timestamp;
    return typeof t === 'string' ? timestampMs(t) : null;
  });
  db.function('streaming_words', { deterministic: true }, (roomId, json) => {
    const c = message(json).content;
    return indexedText(String(roomId), typeof c === 'string' ? c : '');
  });
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `the SQLite history store ${db.name} has schema version ${version}; this version of the library reads ${SCHEMA_VERSION}`,
    );
  }
  db.transaction(() => {
    db.exec(TABLES);
    const legacy = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").get();
    if (legacy) db.exec('DROP INDEX IF EXISTS messages_id; ALTER TABLE messages RENAME TO messages_v1;');
    db.exec(MESSAGES);
    if (legacy) {
      db.exec(`
        INSERT INTO messages (room_id, seq, id, at, json)
          SELECT room_id, seq, id, streaming_at(json), json FROM messages_v1 ORDER BY room_id, seq;
        DROP TABLE messages_v1;
        INSERT INTO message_words (rowid, words) SELECT n, streaming_words(room_id, json) FROM messages;
        UPDATE search_state SET indexed_upto = (SELECT coalesce(max(n), 0) FROM messages);
      `);
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { StoredMessage } from '../../interfaces';
import { draftFor, memberRecord, roomRecord } from '../../testing/contract-helpers';
import { LocalBackend, type LocalBackendOptions } from './local.backend';
import type { RoomCache } from './room-cache';
import { SqlitePersistence } from './sqlite-persistence';

/** The backend with its cache in view. */
class Probe extends LocalBackend {
  get cache(): RoomCache {
    return this.rooms;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'streaming-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = (): string => join(dir, `s${files++}.db`);

/** A backend on `file`, collecting the SQL it runs in `sql`. */
function open(file: string, options: LocalBackendOptions = {}): { b: Probe; sql: string[] } {
  const sql: string[] = [];
  return { b: new Probe(new SqlitePersistence(file, { trace: (s) => sql.push(s) }), options), sql };
}

const readsMessages = (sql: string[]): string[] => sql.filter((s) => /\bFROM messages\b/i.test(s));

/** Seed rooms r0.. with `perRoom` messages each (content `m<seq> of r<i>`), in one transaction. */
function seed(file: string, rooms: number, perRoom: number): void {
  const p = new SqlitePersistence(file);
  p.batch(() => {
    for (let i = 0; i < rooms; i++) {
      const room = roomRecord({ id: `r${i}`, owner: 'o' });
      p.createRoom(room, memberRecord('o', 'owner'));
      for (let seq = 1; seq <= perRoom; seq++) {
        p.appendMessage({ ...draftFor(room.id, { content: `m${seq} of r${i}` }), seq }, 0);
      }
    }
  });
  p.close();
}

const contents = (ms: StoredMessage[]): string[] => ms.map((m) => m.content);

describe('local backend on the SQLite store: the bounded cache', () => {
  it('holds at most cacheEntries entries, drops the least recently used rooms first, reads them back', async () => {
    const { b } = open(newFile(), { cacheEntries: 30 });
    await b.connect();
    for (let i = 0; i < 5; i++) {
      await b.createRoom(roomRecord({ id: `r${i}` }), memberRecord('o', 'owner'));
      for (let k = 1; k <= 10; k++)
        await b.appendMessage(`r${i}`, draftFor(`r${i}`, { content: `c${k}` }), { maxHistory: 100 });
      expect(b.cache.entries).toBeLessThanOrEqual(30);
    }
    // Each room: its record, one member, ten messages = 12 entries; two fit.
    expect([...b.cache.values()].map((r) => r.record.id)).toEqual(['r3', 'r4']);
    await b.getMember('r3', 'o'); // r3 is used: r4 is now the least recently used
    await b.getRoom('r0'); // its record only: 1 entry, it fits
    expect([...b.cache.values()].map((r) => r.record.id)).toEqual(['r4', 'r3', 'r0']);
    await b.getHistory('r0', { limit: 50 }); // its messages come in: r4 goes
    expect([...b.cache.values()].map((r) => r.record.id)).toEqual(['r3', 'r0']);
    // Nothing was lost: the dropped rooms read back from the file.
    for (let i = 0; i < 5; i++) {
      expect(contents(await b.getHistory(`r${i}`, { limit: 50 }))).toEqual(
        Array.from({ length: 10 }, (_, k) => `c${k + 1}`),
      );
      expect(await b.getMember(`r${i}`, 'o')).toMatchObject({ role: 'owner' });
      expect(await b.latestSeq(`r${i}`)).toBe(10);
    }
    expect(b.cache.entries).toBeLessThanOrEqual(30);
    await b.close();
  });

  it('keeps the newest messages of a room alone over capacity; older pages, edits and threads use the file', async () => {
    const file = newFile();
    const { b, sql } = open(file, { cacheEntries: 10 });
    await b.connect();
    await b.createRoom(roomRecord({ id: 'big' }), memberRecord('o', 'owner'));
    const stored: StoredMessage[] = [];
    for (let k = 1; k <= 50; k++)
      stored.push(await b.appendMessage('big', draftFor('big', { content: `c${k}` }), { maxHistory: 40 }));
    const r = b.cache.peek('big')!;
    expect(r.history.map((m) => m.seq)).toEqual([43, 44, 45, 46, 47, 48, 49, 50]); // 10 - record - owner
    expect(b.cache.entries).toBe(10);

    sql.length = 0;
    expect((await b.getHistory('big', { limit: 5 })).map((m) => m.seq)).toEqual([46, 47, 48, 49, 50]);
    expect((await b.getHistory('big', { after: 45, limit: 100 })).map((m) => m.seq)).toEqual([
      46, 47, 48, 49, 50,
    ]);
    expect(readsMessages(sql)).toEqual([]); // both from memory

    expect((await b.getHistory('big', { limit: 100 })).map((m) => m.seq)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 11),
    );
    expect((await b.getHistory('big', { after: 20, limit: 3 })).map((m) => m.seq)).toEqual([21, 22, 23]);
    expect(readsMessages(sql).length).toBe(2);
    expect(await b.oldestSeq('big')).toBe(11);
    expect(await b.getMessage('big', stored[0].id)).toBeNull(); // trimmed by maxHistory
    expect(await b.getMessage('big', stored[14].id)).toEqual(stored[14]);

    // An edit of a message only the file holds, and a thread on it.
    const edit = { kind: 'edit', content: 'edited', by: 'o', at: 'now', keepVersions: 5 } as const;
    expect((await b.updateMessage('big', stored[14].id, edit))?.message.content).toBe('edited');
    expect((await b.addReply('big', stored[14].id, '2030-01-01T00:00:00.000Z'))?.replyCount).toBe(1);
    expect(await b.getMessage('big', stored[14].id)).toMatchObject({ content: 'edited', replyCount: 1 });
    // And one of a cached message: memory and the file agree.
    await b.updateMessage('big', stored[49].id, {
      kind: 'react',
      reaction: '👍',
      userId: 'u',
      add: true,
      maxReactions: 5,
    });
    expect(b.cache.peek('big')!.byId.get(stored[49].id)?.reactions).toEqual({ '👍': ['u'] });
    await b.close();

    const again = open(file, { cacheEntries: 10 }).b;
    expect(await again.getMessage('big', stored[14].id)).toMatchObject({ content: 'edited', replyCount: 1 });
    expect((await again.getMessage('big', stored[49].id))?.reactions).toEqual({ '👍': ['u'] });
    await again.close();
  });

  it('a newest-first page that reaches the cached messages extends them (scrolling up stays in memory)', async () => {
    const file = newFile();
    seed(file, 1, 30);
    const { b, sql } = open(file, { cacheEntries: 100 });
    await b.getRoom('r0');
    expect(contents(await b.getHistory('r0', { limit: 10 }))).toEqual(
      Array.from({ length: 10 }, (_, i) => `m${i + 21} of r0`),
    );
    expect((await b.getHistory('r0', { before: 21, limit: 10 })).map((m) => m.seq)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 11),
    );
    expect(b.cache.peek('r0')!.cachedFrom).toBe(11);
    const before = readsMessages(sql).length;
    expect((await b.getHistory('r0', { after: 10, limit: 20 })).map((m) => m.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 11),
    );
    expect(readsMessages(sql).length).toBe(before);
    // A short page reaches the first message: the whole log is in memory.
    await b.getHistory('r0', { before: 11, limit: 50 });
    expect(b.cache.peek('r0')!.cachedFrom).toBe(1);
    expect(b.cache.peek('r0')!.history.map((m) => m.seq)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    await b.close();
  });

  it('trims by count and age in the file and in memory alike', async () => {
    const { b } = open(newFile(), { cacheEntries: 8 });
    await b.createRoom(roomRecord({ id: 't' }), memberRecord('o', 'owner'));
    const now = Date.now();
    for (let k = 10; k >= 1; k--) {
      const timestamp = new Date(now - k * 3_600_000).toISOString();
      await b.appendMessage('t', draftFor('t', { content: `h${k}`, timestamp }), { maxHistory: 100 });
    }
    expect(await b.trimHistory('t', { maxCount: 8 })).toBe(2);
    expect(await b.trimHistory('t', { maxCount: 100, olderThan: now - 4.5 * 3_600_000 })).toBe(4);
    expect(contents(await b.getHistory('t', { limit: 50 }))).toEqual(['h4', 'h3', 'h2', 'h1']);
    expect(b.cache.peek('t')!.history.map((m) => m.content)).toEqual(['h4', 'h3', 'h2', 'h1']);
    expect(await b.oldestSeq('t')).toBe(7);
    expect(await b.trimHistory('nope', { maxCount: 0 })).toBe(0);
    await b.close();
  });
});

describe('local backend on the SQLite store: start-up and durability', () => {
  it('start-up reads no room, member or message (10,000 messages in 20 rooms), only metadata', async () => {
    const file = newFile();
    seed(file, 20, 500);
    const t0 = performance.now();
    const { b, sql } = open(file, { cacheEntries: 100 });
    await b.connect();
    const ms = performance.now() - t0;
    // The layout version, where the search index stands and the last row id: no row of any table.
    expect(sql.filter((s) => !/^PRAGMA /i.test(s))).toEqual([
      'SELECT indexed_upto FROM search_state',
      'SELECT max(n) FROM messages',
    ]);
    expect(b.cache.size).toBe(0);
    expect(ms).toBeLessThan(1000);
    // The first use of a room reads its record; its history only when asked, a page at a time.
    sql.length = 0;
    expect((await b.getRoom('r7'))?.id).toBe('r7');
    expect(readsMessages(sql).every((s) => /min\(seq\)/i.test(s))).toBe(true);
    expect(contents(await b.getHistory('r7', { limit: 2 }))).toEqual(['m499 of r7', 'm500 of r7']);
    expect(await b.countRooms()).toBe(20);
    expect(await b.userRooms('o')).toHaveLength(20);
    await b.close();
  });

  it('an acknowledged message, edit, read mark and membership are on disk before the call resolves', async () => {
    const file = newFile();
    const { b } = open(file, { cacheEntries: 10 });
    await b.createRoom(roomRecord({ id: 'd' }), memberRecord('o', 'owner'));
    const m = await b.appendMessage('d', draftFor('d', { content: 'durable' }), { maxHistory: 100 });
    // A second connection to the file, while the first is still open.
    const other = new Database(file, { readonly: true });
    const row = (): StoredMessage =>
      JSON.parse(
        other
          .prepare('SELECT json FROM messages WHERE room_id = ? AND id = ?')
          .pluck()
          .get('d', m.id) as string,
      ) as StoredMessage;
    expect(row()).toEqual(m);
    await b.updateMessage('d', m.id, {
      kind: 'edit',
      content: 'changed',
      by: 'o',
      at: 'now',
      keepVersions: 5,
    });
    expect(row().content).toBe('changed');
    expect(await b.markRead('d', 'o', 1)).toBe(1);
    expect(
      other.prepare('SELECT seq FROM reads WHERE room_id = ? AND user_id = ?').pluck().get('d', 'o'),
    ).toBe(1);
    await b.addMember('d', memberRecord('u'), {});
    expect(other.prepare('SELECT count(*) FROM members WHERE room_id = ?').pluck().get('d')).toBe(2);
    other.close();
    await b.close();

    const { b: again } = open(file);
    const [back] = await again.getHistory('d', { limit: 10 });
    expect(back).toMatchObject({ id: m.id, seq: 1, content: 'changed', versions: [{ content: 'durable' }] });
    expect(await again.readSeqs('o', ['d'])).toEqual({ d: 1 });
    expect(await again.listMembers('d')).toHaveLength(2);
    expect((await again.appendMessage('d', draftFor('d'), { maxHistory: 100 })).seq).toBe(2);
    await again.close();
  });

  it('migrates a file of the first layout (no schema version) on open, once', async () => {
    const file = newFile();
    const old = new Database(file);
    old.exec(`
      CREATE TABLE rooms (id TEXT PRIMARY KEY, json TEXT NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE members (room_id TEXT NOT NULL, user_id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, user_id));
      CREATE TABLE messages (room_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (room_id, seq));
      CREATE UNIQUE INDEX messages_id ON messages (room_id, id);
    `);
    const room = roomRecord({ id: 'old', owner: 'o' });
    old.prepare('INSERT INTO rooms VALUES (?, ?, ?)').run('old', JSON.stringify(room), 3);
    old
      .prepare('INSERT INTO members VALUES (?, ?, ?)')
      .run('old', 'o', JSON.stringify(memberRecord('o', 'owner')));
    const msgs = [2, 3].map((seq) => ({ ...draftFor('old', { content: `Legacy message ${seq}` }), seq }));
    for (const x of msgs)
      old.prepare('INSERT INTO messages VALUES (?, ?, ?, ?)').run('old', x.seq, x.id, JSON.stringify(x));
    old.close();

    const { b } = open(file);
    expect(await b.getHistory('old', { limit: 10 })).toEqual(msgs);
    expect(await b.oldestSeq('old')).toBe(2);
    expect(await b.userRooms('o')).toEqual(['old']);
    expect(await b.searchMessages('old', { words: ['legacy', '3'], limit: 5, window: 100 })).toEqual([
      msgs[1],
    ]);
    expect((await b.appendMessage('old', draftFor('old'), { maxHistory: 100 })).seq).toBe(4);
    await b.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    check.close();
    const { b: again, sql } = open(file);
    expect((await again.getHistory('old', { limit: 10 })).map((m) => m.seq)).toEqual([2, 3, 4]);
    expect(sql.some((s) => /messages_v1/.test(s))).toBe(false);
    await again.close();
  });
});

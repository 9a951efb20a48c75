import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultStreamingOptions } from '../../config/streaming-defaults';
import { MessageSearchService } from '../../history/message-search';
import type { MessageMutation, StreamingBackend } from '../../interfaces';
import type { RoomService } from '../../rooms/room.service';
import { draftFor, memberRecord, roomRecord } from '../../testing/contract-helpers';
import { LocalBackend } from './local.backend';
import { SqlitePersistence } from './sqlite-persistence';

const dir = mkdtempSync(join(tmpdir(), 'streaming-search-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Words and near-words that stress the rule: case, accents, scripts, prefixes, FTS5 keywords, separators. */
const VOCAB = [
  'cat',
  'Cat',
  'CATS',
  'concatenate',
  'deploy',
  'e-mail',
  'e',
  'mail',
  '42x',
  '42',
  'ünïcode',
  'ÜNÏCODE',
  'unicode',
  '日本',
  '日本語',
  'naïve',
  'and',
  'OR',
  'NOT',
  'NEAR',
  '"quoted"',
  'hello,world',
  'x_y',
  'İstanbul',
  'straße',
  'STRASSE',
  'ﬁne',
  'Ωmega',
  'σς',
  'r0',
  '_abc',
  '*',
  'a*',
  '(x)',
  'Привет',
  'привет',
  '١٢٣',
];

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `search_messages` of the service (the scan, or the index's candidates confirmed by the same rule). */
const service = (broker: StreamingBackend, maxHistoryMessages = 1000): MessageSearchService =>
  new MessageSearchService(
    broker,
    { ...defaultStreamingOptions(), maxHistoryMessages, messageRetention: 1 },
    { requirePermission: async () => undefined } as unknown as RoomService,
  );

describe('search_messages on the SQLite store (FTS5) returns what the scan returns', () => {
  const random = rng(20240613);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const text = (): string =>
    Array.from({ length: 1 + Math.floor(random() * 7) }, () => pick(VOCAB)).join(
      pick([' ', ', ', '. ', '-', '\n', '!?']),
    );

  let memory: LocalBackend;
  let sqlite: LocalBackend;
  let persistence: SqlitePersistence;
  const rooms = ['a', 'b'];
  const searchSql: string[] = [];

  beforeAll(async () => {
    // The index's 50 ms timer never fires: what is not indexed at a batch of 256 stays so until indexSearchNow().
    jest.useFakeTimers();
    memory = new LocalBackend();
    persistence = new SqlitePersistence(join(dir, 'search.db'), {
      trace: (sql) => {
        if (sql.includes(' MATCH ')) searchSql.push(sql);
      },
    });
    sqlite = new LocalBackend(persistence, { cacheEntries: 10 });
    const both = async (fn: (b: StreamingBackend) => Promise<unknown>): Promise<void> => {
      await fn(memory);
      await fn(sqlite);
    };
    for (const id of rooms) await both((b) => b.createRoom(roomRecord({ id }), memberRecord('o', 'owner')));
    const now = Date.now();
    const ids: Record<string, string[]> = { a: [], b: [] };
    for (let i = 0; i < 700; i++) {
      const roomId = pick(rooms);
      // Spread over the last two hours: retention (1 h below) cuts the older half.
      const timestamp = new Date(now - Math.floor(random() * 7_200_000)).toISOString();
      const draft = draftFor(roomId, { content: text(), timestamp });
      await both((b) => b.appendMessage(roomId, draft, { maxHistory: 300 }));
      ids[roomId].push(draft.id);
      if (random() < 0.25) {
        const target = pick(ids[roomId].slice(-300));
        const r = random();
        const mutation: MessageMutation =
          r < 0.5
            ? { kind: 'edit', content: text(), by: 'o', at: timestamp, keepVersions: 3 }
            : r < 0.8
              ? { kind: 'delete', by: 'o', at: timestamp, keepVersions: 3 }
              : { kind: 'react', reaction: pick(['👍', 'cat']), userId: 'u', add: true, maxReactions: 5 };
        await both((b) => b.updateMessage(roomId, target, mutation));
      }
    }
  });
  afterAll(async () => {
    await memory.close();
    await sqlite.close();
    jest.useRealTimers();
  });

  const PENDING = 'some messages not indexed yet';
  const INDEXED = 'every message indexed';
  it.each([
    [1000, PENDING],
    [300, PENDING],
    [150, PENDING],
    [1, PENDING],
    [1000, INDEXED],
    [300, INDEXED],
    [250, INDEXED],
    [150, INDEXED],
    [1, INDEXED],
  ])('for 300 random queries (max_history_messages %i, %s)', async (maxHistory, state) => {
    if (state === INDEXED) persistence.indexSearchNow();
    searchSql.length = 0;
    const scan = service(memory, maxHistory);
    const fts = service(sqlite, maxHistory);
    const viaIndex = jest.spyOn(persistence, 'searchMessages');
    let nonEmpty = 0;
    for (let q = 0; q < 300; q++) {
      const query = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(VOCAB)).join(' ');
      const roomId = pick(rooms);
      const limit = pick([1, 5, 20, 100]);
      const expected = await scan.search('o', roomId, query, limit).catch((e: Error) => e.message);
      const got = await fts.search('o', roomId, query, limit).catch((e: Error) => e.message);
      expect({ query, got }).toEqual({ query, got: expected });
      if (Array.isArray(expected) && expected.length > 0) nonEmpty++;
    }
    expect(viaIndex).toHaveBeenCalled();
    viaIndex.mockRestore();
    if (maxHistory > 1) expect(nonEmpty).toBeGreaterThan(50);
    // The messages not indexed yet are candidates too (and only then).
    expect(searchSql.some((sql) => sql.includes('UNION ALL'))).toBe(state === PENDING);
  });

  it('memory mode has no index (the service scans)', async () => {
    expect(await memory.searchMessages('a', { words: ['cat'], limit: 5, window: 100 })).toBeNull();
  });
});

describe('the search index is written in batches', () => {
  const roomId = 'r';
  const search = async (b: LocalBackend, query: string): Promise<string[]> =>
    (await service(b).search('o', roomId, query)).map((m) => m.content);
  const open = async (file: string): Promise<{ b: LocalBackend; p: SqlitePersistence }> => {
    const p = new SqlitePersistence(file);
    const b = new LocalBackend(p, { cacheEntries: 10 });
    await b.connect();
    return { b, p };
  };

  it('finds messages before and after their batch, with edits, deletes and trims of either', async () => {
    const { b, p } = await open(join(dir, 'batches.db'));
    await b.createRoom(roomRecord({ id: roomId }), memberRecord('o', 'owner'));
    const send = (content: string) =>
      b.appendMessage(roomId, draftFor(roomId, { content }), { maxHistory: 4 });
    const edit = (id: string, content: string) =>
      b.updateMessage(roomId, id, { kind: 'edit', content, by: 'o', at: 'x', keepVersions: 2 });
    const first = await send('alpha one');
    const second = await send('beta two');
    await edit(first.id, 'gamma one'); // before its batch
    expect(await search(b, 'one')).toEqual(['gamma one']);
    expect(await search(b, 'alpha')).toEqual([]);
    p.indexSearchNow();
    expect(await search(b, 'alpha')).toEqual([]);
    expect(await search(b, 'gamma')).toEqual(['gamma one']);
    await edit(second.id, 'delta two'); // after it
    expect(await search(b, 'beta')).toEqual([]);
    expect(await search(b, 'two')).toEqual(['delta two']);
    for (const c of ['epsilon', 'zeta', 'eta']) await send(c); // maxHistory 4: the first message goes
    expect(await search(b, 'one')).toEqual([]);
    expect(await b.trimHistory(roomId, { maxCount: 1 })).toBe(3);
    expect(await search(b, 'two')).toEqual([]);
    expect(await search(b, 'eta')).toEqual(['eta']);
    // maxHistory 0 drops the new message at once; the next one is indexed all the same.
    await b.appendMessage(roomId, draftFor(roomId, { content: 'theta' }), { maxHistory: 0 });
    await send('iota');
    p.indexSearchNow();
    expect(await search(b, 'theta')).toEqual([]);
    expect(await search(b, 'iota')).toEqual(['iota']);
    await b.close();
  });

  it('a process that stopped before its batch leaves the rest to the next one, which searches right meanwhile', async () => {
    const file = join(dir, 'crash.db');
    const { b } = await open(file);
    await b.createRoom(roomRecord({ id: roomId }), memberRecord('o', 'owner'));
    await b.appendMessage(roomId, draftFor(roomId, { content: 'kept before' }), { maxHistory: 10 });
    await b.close(); // indexed at close
    const { b: live } = await open(file);
    for (const c of ['lost batch one', 'lost batch two'])
      await live.appendMessage(roomId, draftFor(roomId, { content: c }), { maxHistory: 10 });
    // A copy of the file now (its WAL holds the acknowledged messages): what a crash leaves.
    const copy = join(dir, 'crash-copy.db');
    for (const suffix of ['', '-wal']) copyFileSync(file + suffix, copy + suffix);
    await live.close();
    const { b: after, p } = await open(copy);
    expect(await search(after, 'batch')).toEqual(['lost batch two', 'lost batch one']);
    expect(await search(after, 'kept')).toEqual(['kept before']);
    p.indexSearchNow();
    expect(await search(after, 'batch one')).toEqual(['lost batch one']);
    expect(await search(after, 'kept')).toEqual(['kept before']);
    await after.close();
  });
});

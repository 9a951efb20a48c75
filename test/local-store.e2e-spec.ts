/**
 * The local backend on the SQLite history store with a cache far smaller
 * than the data (issue 16): a node writes 2,000 messages in 50 rooms, stops;
 * a new node on the same file starts without reading any message or
 * membership, and serves history, resume, threads and search from the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type StreamingModuleOptions } from '@nest-streaming/streaming';
import { signToken, startStreamingApp, type TestApp } from './support/app';
import { ClientPool, type Envelope } from './support/ws-client';

jest.setTimeout(120_000);

const SECRET = 'local-store-e2e-secret-0a1b2c3d4e5f60718';
const ROOMS = 50;
const PER_ROOM = 40;
const pool = new ClientPool();
const dir = mkdtempSync(join(tmpdir(), 'local-store-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });
const config = (cacheEntries: number): StreamingModuleOptions => ({
  auth: { jwtSecret: SECRET },
  historyStore: 'sqlite',
  historyPath: join(dir, 'store.sqlite'),
  historyCacheEntries: cacheEntries,
  rateLimit: { enabled: false },
  maxMessagesPerSecond: 100_000,
  maxRoomsPerUser: 100,
  maxRoomsOwnedPerUser: 100,
});
const content = (room: number, k: number): string => `message ${k} of room ${room} word${room}x${k}`;

/** Record the SQL of every statement better-sqlite3 runs in this process until `stop()`. */
function recordStatements(): { sql: string[]; stop: () => void } {
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, unknown>;
  probe.close();
  const sql: string[] = [];
  const saved = new Map<string, unknown>();
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = proto[method] as (this: { source: string }, ...args: unknown[]) => unknown;
    saved.set(method, original);
    proto[method] = function (this: { source: string }, ...args: unknown[]) {
      sql.push(this.source);
      return original.apply(this, args);
    };
  }
  return { sql, stop: () => saved.forEach((fn, method) => (proto[method] = fn)) };
}

describe('local backend on the SQLite store, restarted with a tiny cache', () => {
  const roomIds: string[] = [];
  const ids = new Map<string, string>(); // content -> message id

  beforeAll(async () => {
    const first = await startStreamingApp(config(20));
    try {
      const alice = await pool.connect(first.wsUrl, { token: await token('alice') });
      const bob = await pool.connect(first.wsUrl, { token: await token('bob') });
      for (let i = 0; i < ROOMS; i++) {
        const created = (await alice.ok('create_room', { name: `store ${i}` })) as { room: { id: string } };
        roomIds.push(created.room.id);
        await bob.ok('join_room', { room_id: created.room.id });
      }
      // Sent in parallel per room: each room's seqs are still 1..40, in the order acknowledged.
      await Promise.all(
        roomIds.map(async (roomId, i) => {
          for (let k = 1; k <= PER_ROOM; k++) {
            const ack = (await alice.ok(
              'send_message',
              { room_id: roomId, content: content(i, k) },
              10_000,
            )) as {
              message_id: string;
            };
            ids.set(content(i, k), ack.message_id);
          }
        }),
      );
      await alice.ok('edit_message', {
        room_id: roomIds[7],
        message_id: ids.get(content(7, 3)),
        content: 'an edited word',
      });
      await alice.ok('delete_message', { room_id: roomIds[7], message_id: ids.get(content(7, 4)) });
      await bob.ok('send_message', {
        room_id: roomIds[9],
        content: 'a reply',
        reply_to: ids.get(content(9, 2)),
      });
    } finally {
      expect(await pool.closeAll()).toEqual([]);
      await first.close();
    }
  });

  it('starts without reading a message or a membership, then serves history, resume, threads and search', async () => {
    const recorder = recordStatements();
    let app: TestApp | undefined;
    try {
      app = await startStreamingApp(config(20));
    } finally {
      recorder.stop();
    }
    try {
      // Start-up read room records and restrictions (re-arming timed bans), and of the messages only
      // the last row id (where the search index stands): no message, membership or read state.
      expect(recorder.sql.some((s) => s.startsWith('PRAGMA'))).toBe(true); // the recorder works
      const reads = recorder.sql.filter((s) => /\bFROM (messages|members|message_words|reads)\b/.test(s));
      expect(reads).toEqual(['SELECT max(n) FROM messages']);

      const bob = await pool.connect(app.wsUrl, { token: await token('bob') });
      // History of a room the cache does not hold, newest page and an older one.
      const page = (await bob.ok('get_history', { room_id: roomIds[3], limit: 5 })) as {
        messages: Array<{ seq: number; content: string }>;
      };
      expect(page.messages.map((m) => [m.seq, m.content])).toEqual(
        [36, 37, 38, 39, 40].map((k) => [k, content(3, k)]),
      );
      const older = (await bob.ok('get_history', { room_id: roomIds[3], before: 11, limit: 3 })) as {
        messages: Array<{ seq: number }>;
      };
      expect(older.messages.map((m) => m.seq)).toEqual([8, 9, 10]);

      // Resume of ten rooms at once from seq 5: 35 messages each, in seq order, then `resumed`.
      const resumed = roomIds.slice(20, 30);
      const from = bob.envelopes.length;
      const ack = await bob.ok('resume', { rooms: Object.fromEntries(resumed.map((r) => [r, 5])) }, 20_000);
      expect(ack).toEqual({ rooms: Object.fromEntries(resumed.map((r) => [r, PER_ROOM])) });
      resumed.forEach((roomId, j) => {
        const got = bob
          .all((e: Envelope) => e.type === 'message' && e.data.room_id === roomId, from)
          .map((e): [number, string] => [e.data.seq as number, e.data.content as string]);
        expect(got).toEqual(Array.from({ length: 35 }, (_, k) => [k + 6, content(20 + j, k + 6)]));
      });

      // Threads and edits were kept.
      const thread = (await bob.ok('get_thread', {
        room_id: roomIds[9],
        thread_id: ids.get(content(9, 2)),
      })) as {
        messages: Array<{ content: string; reply_count?: number }>;
      };
      expect(thread.messages.map((m) => m.content)).toEqual([content(9, 2), 'a reply']);
      expect(thread.messages[0].reply_count).toBe(1);

      // Search through the FTS5 index: whole words, the edit by its new content, the delete never.
      const search = async (roomId: string, query: string): Promise<string[]> =>
        (
          (await bob.ok('search_messages', { room_id: roomId, query })) as {
            messages: Array<{ content: string }>;
          }
        ).messages.map((m) => m.content);
      expect(await search(roomIds[12], 'word12x33')).toEqual([content(12, 33)]);
      expect(await search(roomIds[12], 'word13x33')).toEqual([]);
      expect(await search(roomIds[7], 'EDITED word')).toEqual(['an edited word']);
      expect(await search(roomIds[7], 'word7x4')).toEqual([]);
      expect(await search(roomIds[7], 'word7x3')).toEqual([]);
      expect((await search(roomIds[40], 'room 40')).length).toBe(20);

      // The log goes on where it stopped.
      const next = (await bob.ok('send_message', { room_id: roomIds[0], content: 'after the restart' })) as {
        seq: number;
      };
      expect(next.seq).toBe(PER_ROOM + 1);
    } finally {
      expect(await pool.closeAll()).toEqual([]);
      await app.close();
    }
  });
});

/**
 * `search_messages` (PROTOCOL.md §10, issue 15) on every backend: the local
 * store (in memory and on SQLite), and two nodes on a real redis-server or
 * nats-server (messages sent on node A, searched on node B). Whole words,
 * case-insensitive, every word of the query, newest first; edits match by
 * their current content only, deletes never; members only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type StreamingModuleOptions } from '@nest-streaming/streaming';
import { signToken, startStreamingApp, type TestApp } from './support/app';
import { startNatsServer, type NatsServerHandle } from './support/nats-server';
import { startRedisServer, type RedisServerHandle } from './support/redis-server';
import { ClientPool, type WsClient } from './support/ws-client';

jest.setTimeout(90_000);

const SECRET = 'search-e2e-secret-7d6c5b4a39281706f5e4';
const pool = new ClientPool();
const apps: TestApp[] = [];
const dir = mkdtempSync(join(tmpdir(), 'search-e2e-'));

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

type Kind = 'memory' | 'sqlite' | 'redis' | 'nats';

describe.each(['memory', 'sqlite', 'redis', 'nats'] as const)('search_messages (%s)', (kind: Kind) => {
  let redis: RedisServerHandle | undefined;
  let nats: NatsServerHandle | undefined;
  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
    if (kind === 'nats') nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    await redis?.dispose();
    await nats?.dispose();
  });

  /** Node A (senders) and node B (the searcher): one node on the local store. */
  async function nodes(): Promise<[TestApp, TestApp]> {
    const base: StreamingModuleOptions = {
      auth: { jwtSecret: SECRET },
      historyStore: kind === 'sqlite' ? 'sqlite' : 'memory',
      historyPath: join(dir, `search-${++n}.sqlite`),
      rateLimit: { enabled: false },
      maxMessagesPerSecond: 100_000,
    };
    const start = async (extra: Partial<StreamingModuleOptions>): Promise<TestApp> => {
      const t = await startStreamingApp({ ...base, ...extra });
      apps.push(t);
      return t;
    };
    if (kind === 'memory' || kind === 'sqlite') {
      const a = await start({});
      return [a, a];
    }
    const shared: Partial<StreamingModuleOptions> =
      kind === 'redis'
        ? { backend: 'redis', backendUrls: [redis!.url] }
        : { backend: 'nats', backendUrls: [nats!.url] };
    const id = `search${++n}-${Date.now()}`;
    return [await start({ ...shared, nodeId: `${id}-a` }), await start({ ...shared, nodeId: `${id}-b` })];
  }

  async function room(
    a: TestApp,
    b: TestApp,
  ): Promise<{ sender: WsClient; searcher: WsClient; roomId: string }> {
    const sender = await pool.connect(a.wsUrl, { token: await token(`sender-${++n}`) });
    const searcher = await pool.connect(b.wsUrl, { token: await token(`searcher-${++n}`) });
    const roomId = ((await sender.ok('create_room', { name: `search ${n}` })) as { room: { id: string } })
      .room.id;
    await searcher.ok('join_room', { room_id: roomId });
    return { sender, searcher, roomId };
  }

  const contents = async (c: WsClient, data: Record<string, unknown>): Promise<string[]> =>
    ((await c.ok('search_messages', data)) as { messages: Array<{ content: string }> }).messages.map(
      (m) => m.content,
    );

  it('matches whole words of every query word, newest first; edits by current content, deletes never', async () => {
    const [a, b] = await nodes();
    const { sender, searcher, roomId } = await room(a, b);
    const ids: Record<string, string> = {};
    for (const content of [
      'Deploy finished on node 7',
      'the deploy of the cat',
      'concatenate the deploys',
      'DEPLOY CAT picture',
      'deploy notes, draft',
      'nothing to see',
    ]) {
      ids[content] = (
        (await sender.ok('send_message', { room_id: roomId, content })) as { message_id: string }
      ).message_id;
    }
    await sender.ok('edit_message', {
      room_id: roomId,
      message_id: ids['deploy notes, draft'],
      content: 'final notes',
    });
    await sender.ok('edit_message', {
      room_id: roomId,
      message_id: ids['nothing to see'],
      content: 'a deploy after all',
    });
    await sender.ok('delete_message', { room_id: roomId, message_id: ids['Deploy finished on node 7'] });

    expect(await contents(searcher, { room_id: roomId, query: 'deploy' })).toEqual([
      'a deploy after all',
      'DEPLOY CAT picture',
      'the deploy of the cat',
    ]);
    expect(await contents(searcher, { room_id: roomId, query: 'Cat  DEPLOY' })).toEqual([
      'DEPLOY CAT picture',
      'the deploy of the cat',
    ]);
    expect(await contents(searcher, { room_id: roomId, query: 'draft' })).toEqual([]);
    expect(await contents(searcher, { room_id: roomId, query: 'notes' })).toEqual(['final notes']);
    expect(await contents(searcher, { room_id: roomId, query: 'finished' })).toEqual([]);
    expect(await contents(searcher, { room_id: roomId, query: 'deploy', limit: 1 })).toEqual([
      'a deploy after all',
    ]);
  });

  it('finds matches across more history than one page, and refuses bad queries and non-members', async () => {
    const [a, b] = await nodes();
    const { sender, searcher, roomId } = await room(a, b);
    for (let i = 1; i <= 450; i++) {
      const content = i % 150 === 1 ? `needle number ${i}` : `hay ${i}`;
      sender.send({ type: 'send_message', id: `m${i}`, data: { room_id: roomId, content } });
    }
    await sender.waitFor((e) => e.type === 'ack' && e.id === 'm450', 30_000);
    expect(await contents(searcher, { room_id: roomId, query: 'needle' })).toEqual([
      'needle number 301',
      'needle number 151',
      'needle number 1',
    ]);
    for (const data of [
      { room_id: roomId, query: '' },
      { room_id: roomId, query: ' ,;! ' },
      { room_id: roomId, query: 'x', limit: 0 },
      { room_id: roomId, query: 'x', limit: 101 },
      { room_id: roomId },
    ]) {
      expect(await searcher.request('search_messages', data)).toMatchObject({
        type: 'error',
        data: { code: 'invalid_message' },
      });
    }
    const outsider = await pool.connect(b.wsUrl, { token: await token(`outsider-${++n}`) });
    expect(await outsider.request('search_messages', { room_id: roomId, query: 'needle' })).toMatchObject({
      type: 'error',
      data: { code: 'not_room_member' },
    });
  });
});

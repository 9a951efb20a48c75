/**
 * The live room list (issue 15): public rooms created, changed, made private
 * or deleted while a user is connected reach every connection, on every node,
 * as `room_listed {room}` and `room_unlisted {room_id}`, so lists never need
 * a reload. On one local node and on two nodes sharing a real redis-server.
 */
import { StreamingManager, type StreamingModuleOptions } from '@nest-streaming/streaming';
import { signToken, startStreamingApp, type TestApp } from './support/app';
import { startRedisServer, type RedisServerHandle } from './support/redis-server';
import { ClientPool, type Envelope } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'room-list-e2e-secret-0f1e2d3c4b5a69788796';
const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let n = 0;
const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

describe.each(['local', 'redis'] as const)('live room list (%s)', (kind) => {
  let redis: RedisServerHandle | undefined;
  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  /** Node A, where rooms change, and node B, where the watcher is (the same node on `local`). */
  async function nodes(): Promise<[TestApp, TestApp]> {
    const start = async (extra: Partial<StreamingModuleOptions>): Promise<TestApp> => {
      const t = await startStreamingApp({ historyStore: 'memory', auth: { jwtSecret: SECRET }, ...extra });
      apps.push(t);
      return t;
    };
    if (kind === 'local') {
      const a = await start({});
      return [a, a];
    }
    const shared = { backend: 'redis' as const, backendUrls: [redis!.url] };
    const id = `list${++n}-${Date.now()}`;
    return [await start({ ...shared, nodeId: `${id}-a` }), await start({ ...shared, nodeId: `${id}-b` })];
  }

  const listed = (roomId: string) => (e: Envelope) => e.type === 'room_listed' && e.data?.room?.id === roomId;
  const unlisted = (roomId: string) => (e: Envelope) =>
    e.type === 'room_unlisted' && e.data?.room_id === roomId;

  it('reaches every connection: created, renamed, made private, made public, deleted; private rooms stay unseen', async () => {
    const [a, b] = await nodes();
    const owner = await pool.connect(a.wsUrl, { token: await token(`owner-${++n}`) });
    const watcher = await pool.connect(b.wsUrl, { token: await token(`watcher-${++n}`) });

    const created = (await owner.ok('create_room', { name: 'lobby' })) as { room: { id: string } };
    const roomId = created.room.id;
    const added = await watcher.waitFor(listed(roomId));
    expect(added.data?.room).toMatchObject({ id: roomId, name: 'lobby', private: false, kind: 'room' });

    const secret = (await owner.ok('create_room', { name: 'secret', private: true })) as {
      room: { id: string };
    };
    await watcher.expectNone((e) => e.type === 'room_listed' && e.data?.room?.id === secret.room.id, 300);

    const from = watcher.all(() => true).length;
    await owner.ok('update_room', { room_id: roomId, name: 'lobby 2' });
    expect((await watcher.waitFor(listed(roomId), 3000, from)).data?.room).toMatchObject({ name: 'lobby 2' });

    await owner.ok('update_room', { room_id: roomId, private: true });
    await watcher.waitFor(unlisted(roomId));
    const from2 = watcher.all(() => true).length;
    await owner.ok('update_room', { room_id: roomId, private: false });
    await watcher.waitFor(listed(roomId), 3000, from2);

    const from3 = watcher.all(() => true).length;
    await a.app.get(StreamingManager).deleteRoom(roomId);
    await watcher.waitFor(unlisted(roomId), 3000, from3);
  });
});

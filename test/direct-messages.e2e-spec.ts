/**
 * Direct messages (PROTOCOL.md §10, issue 15): `open_direct` gives the one
 * room of two users, the same id from either side and on every node, created
 * once even when both open it at the same moment on two nodes. On the demo
 * app (local backend) and on two nodes sharing a real redis-server or
 * nats-server.
 */
import { signToken, startDemoApp, type TestApp } from './support/app';
import { backendNodes } from './support/backend-nodes';
import { ClientPool, type Json } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'direct-messages-e2e-secret-9a8b7c6d5e4f3a2b';
const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let users = 0;
const fresh = (name: string): string => `${name}-${++users}-${Date.now()}`;

interface Room {
  id: string;
  kind: string;
  private: boolean;
  member_count: number;
}
const roomOf = (ack: Json): Room => (ack as { room: Room }).room;

describe('direct messages on the demo app (local backend)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startDemoApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('one room per pair from either side, private, both members, listed for both; the other side gets room_joined', async () => {
    const [aliceName, bobName] = [fresh('alice'), fresh('bob')];
    const [aliceToken, bobToken] = [await app.login(aliceName), await app.login(bobName)];
    const alice = await pool.connect(app.wsUrl, { token: aliceToken });
    const bob = await pool.connect(app.wsUrl, { token: bobToken });
    const room = roomOf(await alice.ok('open_direct', { user_id: bobName }));
    expect(room).toMatchObject({ kind: 'direct', private: true, member_count: 2 });
    const joined = await bob.waitFor((e) => e.type === 'room_joined' && e.data?.room_id === room.id);
    expect((joined.data?.members as Array<{ user_id: string; role: string }>).map((m) => m.role)).toEqual([
      'member',
      'member',
    ]);
    expect(roomOf(await bob.ok('open_direct', { user_id: aliceName })).id).toBe(room.id);
    expect(roomOf(await alice.ok('open_direct', { user_id: bobName })).id).toBe(room.id);

    for (const token of [aliceToken, bobToken]) {
      const list = await app.http('GET', '/api/rooms', { token });
      const listed = (list.json as { rooms: Room[] }).rooms.filter((r) => r.id === room.id);
      expect(listed).toEqual([expect.objectContaining({ kind: 'direct' })]);
    }
    // Ordinary rooms say what they are too.
    const ordinary = roomOf(await alice.ok('create_room', { name: `plain ${users}` }));
    expect(ordinary.kind).toBe('room');
    // Somebody else does not see it.
    const carolToken = await app.login(fresh('carol'));
    const carolList = await app.http('GET', '/api/rooms', { token: carolToken });
    expect((carolList.json as { rooms: Room[] }).rooms.some((r) => r.id === room.id)).toBe(false);

    await alice.ok('send_message', { room_id: room.id, content: 'hi bob' });
    const got = await bob.waitFor((e) => e.type === 'message' && e.data?.room_id === room.id);
    expect(got.data).toMatchObject({ content: 'hi bob', seq: 1 });
  });

  it('nobody can invite, change roles, moderate or join; opening one with yourself is invalid_message', async () => {
    const [aliceName, bobName, carolName] = [fresh('alice'), fresh('bob'), fresh('carol')];
    const alice = await pool.connect(app.wsUrl, { token: await app.login(aliceName) });
    const carol = await pool.connect(app.wsUrl, { token: await app.login(carolName) });
    const room = roomOf(await alice.ok('open_direct', { user_id: bobName }));
    const code = async (p: Promise<{ type: string; data?: Json }>): Promise<unknown> =>
      ((await p).data as { code?: string }).code;
    expect(await code(alice.request('invite', { room_id: room.id, user_id: carolName }))).toBe('forbidden');
    expect(await code(alice.request('set_role', { room_id: room.id, user_id: bobName, role: 'admin' }))).toBe(
      'forbidden',
    );
    expect(
      await code(alice.request('moderate', { room_id: room.id, action: 'kick', target_id: bobName })),
    ).toBe('forbidden');
    expect(await code(carol.request('join_room', { room_id: room.id }))).toBe('forbidden');
    expect(await code(alice.request('open_direct', { user_id: aliceName }))).toBe('invalid_message');
    expect(await code(alice.request('open_direct', {}))).toBe('invalid_message');
    // A member leaving and opening again is a member again.
    await alice.ok('leave_room', { room_id: room.id });
    expect(roomOf(await alice.ok('open_direct', { user_id: bobName }))).toMatchObject({
      id: room.id,
      member_count: 2,
    });
  });
});

describe.each(['redis', 'nats'] as const)('direct messages across two nodes (%s)', (kind) => {
  const { twoNodes } = backendNodes(
    kind,
    { historyStore: 'memory', auth: { jwtSecret: SECRET } },
    apps,
    'dm',
  );

  const token = (sub: string): Promise<string> =>
    signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

  it('both users opening at the same moment on two nodes get one room, with both as members', async () => {
    const [a, b] = await twoNodes();
    const pairs = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const [x, y] = [fresh('x'), fresh('y')];
        const cx = await pool.connect(a.wsUrl, { token: await token(x) });
        const cy = await pool.connect(b.wsUrl, { token: await token(y) });
        return { x, y, cx, cy };
      }),
    );
    const results = await Promise.all(
      pairs.map(async ({ x, y, cx, cy }) => {
        const [rx, ry] = await Promise.all([
          cx.ok('open_direct', { user_id: y }),
          cy.ok('open_direct', { user_id: x }),
        ]);
        return { x, y, cx, cy, rx: roomOf(rx), ry: roomOf(ry) };
      }),
    );
    for (const { x, y, cx, cy, rx, ry } of results) {
      expect(rx.id).toBe(ry.id);
      expect(rx.kind).toBe('direct');
      const presence = (await cx.ok('get_presence', { room_id: rx.id })) as {
        presence: Array<{ user_id: string }>;
      };
      expect(presence.presence.map((p) => p.user_id).sort()).toEqual([x, y].sort());
      // Messages cross the nodes.
      await cx.ok('send_message', { room_id: rx.id, content: `from ${x}` });
      await cy.waitFor(
        (e) => e.type === 'message' && e.data?.room_id === rx.id && e.data?.content === `from ${x}`,
      );
    }
  });
});

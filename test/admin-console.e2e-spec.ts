/**
 * The admin console (issue 15, `routes.admin`), over real HTTP: off by
 * default, its page open and its API behind the admin role (or the app's
 * guard); on one local node, and on two nodes sharing a real redis-server,
 * where node A's console must show node B's node, users, rooms and
 * moderation, and disconnect a user held by node B.
 */
import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import {
  StreamingModule,
  type AdminConnections,
  type AdminModerationEntry,
  type AdminOverview,
  type AdminRooms,
} from '@nest-streaming/streaming';
import { eventually, signToken, startStreamingApp, type HttpResponse, type TestApp } from './support/app';
import { startRedisServer, type RedisServerHandle } from './support/redis-server';
import { ClientPool } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'admin-console-e2e-secret-5c0f2a8e71d94b36';
const ADMIN = '/_/streaming/admin';

const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

let users = 0;
const fresh = (name: string): string => `${name}-${++users}-${Date.now()}`;
const token = (sub: string, roles?: string[]): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600, ...(roles ? { roles } : {}) });

async function startNode(config: Parameters<typeof StreamingModule.forRoot>[0]): Promise<TestApp> {
  const t = await startStreamingApp({ historyStore: 'memory', auth: { jwtSecret: SECRET }, ...config });
  apps.push(t);
  return t;
}

const adminApi = (
  app: TestApp,
  method: string,
  path: string,
  tok?: string,
  body?: unknown,
): Promise<HttpResponse> => app.http(method, `${ADMIN}/api${path}`, { token: tok, body });

/** GET an admin API route, expecting 200, as its typed body. */
async function adminGet<T>(app: TestApp, path: string, tok: string): Promise<T> {
  const res = await adminApi(app, 'GET', path, tok);
  expect(res.status).toBe(200);
  return res.json as T;
}

/** Lets a request through when it carries `x-ops: yes` (an app's own admin check). */
@Injectable()
class OpsHeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return (
      context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-ops'] === 'yes'
    );
  }
}

describe('admin console routes', () => {
  it('does not exist unless routes.admin turns it on', async () => {
    const app = await startNode({});
    expect((await app.http('GET', ADMIN)).status).toBe(404);
    expect((await adminApi(app, 'GET', '/overview', await token('root', ['admin']))).status).toBe(404);
  });

  it('serves a static page, and its API only to a token with the admin role (401 without a token, 403 without the role)', async () => {
    const app = await startNode({ routes: { admin: true } });
    const page = await app.http('GET', ADMIN);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.text).toContain('nest-streaming admin');

    const none = await adminApi(app, 'GET', '/overview');
    expect(none.status).toBe(401);
    const bad = await app.http('GET', `${ADMIN}/api/overview`, {
      headers: { authorization: 'Bearer not-a-jwt' },
    });
    expect(bad.status).toBe(401);
    const member = await adminApi(app, 'GET', '/overview', await token('mallory', ['moderator']));
    expect(member.status).toBe(403);
    expect(member.json).toMatchObject({ code: 'forbidden' });
    // Disconnecting is refused too, and harms nobody.
    const victim = await pool.connect(app.wsUrl, { token: await token('victim') });
    expect((await adminApi(app, 'POST', '/users/victim/disconnect', await token('mallory'), {})).status).toBe(
      403,
    );
    expect((await victim.request('ping')).type).toBe('pong');

    const ok = await adminApi(app, 'GET', '/overview', await token('root', ['admin']));
    expect(ok.status).toBe(200);
    expect(ok.json.totals).toMatchObject({ nodes: 1, connections: 1 });
  });

  it('takes another role from adminRole, another path from routes.admin, and the app guard from routes.adminGuards', async () => {
    const custom = await startNode({ adminRole: 'ops', routes: { prefix: 'rt', admin: 'console' } });
    expect((await custom.http('GET', '/rt/console')).status).toBe(200);
    const get = async (tok: string): Promise<number> =>
      (await custom.http('GET', '/rt/console/api/overview', { token: tok })).status;
    expect(await get(await token('root', ['admin']))).toBe(403);
    expect(await get(await token('root', ['ops']))).toBe(200);

    const guarded = await startNode({ routes: { admin: true, adminGuards: [OpsHeaderGuard] } });
    const plain = await guarded.http('GET', `${ADMIN}/api/overview`);
    expect(plain.status).toBe(403);
    const allowed = await guarded.http('GET', `${ADMIN}/api/overview`, { headers: { 'x-ops': 'yes' } });
    expect(allowed.status).toBe(200);
  });

  it('validates its queries and bodies with a clear 400', async () => {
    const app = await startNode({ routes: { admin: true } });
    const root = await token('root', ['admin']);
    expect((await adminApi(app, 'GET', '/rooms?limit=0', root)).status).toBe(400);
    expect((await adminApi(app, 'GET', '/rooms?limit=abc', root)).status).toBe(400);
    expect((await adminApi(app, 'GET', '/rooms?other=1', root)).status).toBe(400);
    const long = await adminApi(app, 'POST', '/users/u/disconnect', root, { reason: 'x'.repeat(200) });
    expect(long.status).toBe(400);
  });
});

describe.each(['local', 'redis'] as const)('admin console (%s)', (kind) => {
  let redis: RedisServerHandle | undefined;
  let run = 0;

  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  /** Node A serves the console; node B holds most clients (the same node on `local`). */
  async function nodes(): Promise<[TestApp, TestApp]> {
    const base: Parameters<typeof StreamingModule.forRoot>[0] = {
      routes: { admin: true },
      heartbeatInterval: 1,
      rateLimit: { requestsPerSecond: 1000, burstSize: 1000 },
    };
    if (kind === 'local') {
      const a = await startNode({ ...base, nodeId: `solo-${++run}` });
      return [a, a];
    }
    const r = new Redis({ port: redis!.port, host: '127.0.0.1' });
    await r.flushall();
    r.disconnect();
    const prefix = `adm${++run}-${Date.now()}`;
    const shared = { ...base, backend: 'redis' as const, backendUrls: [redis!.url] };
    return [
      await startNode({ ...shared, nodeId: `${prefix}-a` }),
      await startNode({ ...shared, nodeId: `${prefix}-b` }),
    ];
  }

  it('lists every live node with its connections and heartbeat, and the cluster totals', async () => {
    const [a, b] = await nodes();
    const root = await token('root', ['admin']);
    await pool.connect(b.wsUrl, { token: await token(fresh('u')) });
    await pool.connect(b.wsUrl, { token: await token(fresh('u')) });
    await pool.connect(a.wsUrl, { token: await token(fresh('u')) });
    const o = await eventually(
      async () => {
        const got = await adminGet<AdminOverview>(a, '/overview', root);
        expect(got.totals.connections).toBe(3);
        return got;
      },
      5000,
      200,
    );
    expect(o.nodes).toHaveLength(kind === 'local' ? 1 : 2);
    expect(o.totals.nodes).toBe(o.nodes.length);
    const self = o.nodes.find((n) => n.self)!;
    expect(self.node_id).toBe(o.node_id);
    for (const n of o.nodes) {
      expect(Date.parse(n.last_heartbeat!)).toBeGreaterThan(Date.now() - 5000);
      expect(n.heartbeat_age_s).toBeLessThan(5);
    }
    if (kind === 'redis') {
      expect(o.nodes.find((n) => !n.self)!.connections).toBe(2);
      expect(self.connections).toBe(1);
    }
  });

  it('lists rooms by member count with message rates, and messages per second per node', async () => {
    const [a, b] = await nodes();
    const root = await token('root', ['admin']);
    const owner = fresh('owner');
    const c = await pool.connect(b.wsUrl, { token: await token(owner) });
    const busy = ((await c.ok('create_room', { name: 'busy' })) as { room: { id: string } }).room.id;
    const quiet = ((await c.ok('create_room', { name: 'quiet' })) as { room: { id: string } }).room.id;
    for (let i = 0; i < 3; i++) {
      const m = await pool.connect(b.wsUrl, { token: await token(fresh('m')) });
      await m.ok('join_room', { room_id: busy });
    }
    const first = await adminGet<AdminRooms>(a, '/rooms', root);
    expect(first.rooms.map((r) => r.id)).toEqual([busy, quiet]);
    expect(first.rooms[0]).toMatchObject({
      members: 4,
      last_seq: 0,
      messages_per_second: null,
      kind: 'room',
    });
    expect(first.rooms[1]).toMatchObject({ members: 1 });
    expect(first.total).toBe(2);

    const started = Date.now();
    for (let i = 0; i < 20; i++) await c.ok('send_message', { room_id: busy, content: `m${i}` });
    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - started))));
    const second = await adminGet<AdminRooms>(a, '/rooms', root);
    const room = second.rooms.find((r) => r.id === busy)!;
    expect(room.last_seq).toBe(20);
    // 20 messages over the time between the two listings (a little over a second, at most a few).
    expect(room.messages_per_second).toBeGreaterThan(3);
    expect(room.messages_per_second).toBeLessThanOrEqual(20);
    expect(second.rooms.find((r) => r.id === quiet)!.messages_per_second).toBe(0);

    // Node B counted them; node A hears it through B's heartbeat (every second here).
    await eventually(
      async () => {
        const o = await adminGet<AdminOverview>(a, '/overview', root);
        const nodeB = o.nodes.find((n) => n.node_id !== o.node_id) ?? o.nodes[0];
        expect(nodeB.total_messages).toBe(20);
        expect(o.totals.messages_per_second).toBeGreaterThan(0);
      },
      5000,
      250,
    );
  });

  it("lists the users on every node with this node's connections, filters by user, and disconnects a user everywhere", async () => {
    const [a, b] = await nodes();
    const root = await token('root', ['admin']);
    const bob = fresh('bob');
    const carol = fresh('carol');
    const bobOnB = await pool.connect(b.wsUrl, { token: await token(bob) });
    const bobOnA = await pool.connect(a.wsUrl, { token: await token(bob) });
    const carolOnB = await pool.connect(b.wsUrl, { token: await token(carol) });
    const list = await eventually(
      async () => {
        const got = await adminGet<AdminConnections>(a, '/connections', root);
        expect(got.users.map((u) => u.user_id)).toEqual([bob, carol].sort());
        return got;
      },
      5000,
      200,
    );
    const bobRow = list.users.find((u) => u.user_id === bob)!;
    expect(bobRow.local_connections).toBe(kind === 'local' ? 2 : 1);
    expect(bobRow.nodes).toHaveLength(kind === 'local' ? 1 : 2);
    expect(list.local.filter((l) => l.user_id === bob)).toHaveLength(kind === 'local' ? 2 : 1);
    expect(list.local[0]).toMatchObject({ transport: 'ws', codec: 'json', anonymous: false });

    const filtered = await adminGet<AdminConnections>(
      a,
      `/connections?user=${encodeURIComponent(carol)}`,
      root,
    );
    expect(filtered.users).toEqual([
      { user_id: carol, nodes: [expect.any(String)], local_connections: kind === 'local' ? 1 : 0 },
    ]);

    const closedB = bobOnB.waitForClose(5000);
    const closedA = bobOnA.waitForClose(5000);
    const res = await adminApi(a, 'POST', `/users/${bob}/disconnect`, root, {});
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ disconnected: 2 });
    expect(await closedB).toEqual({ code: 4403, reason: 'disconnected by an administrator' });
    expect(await closedA).toEqual({ code: 4403, reason: 'disconnected by an administrator' });
    expect((await carolOnB.request('ping')).type).toBe('pong');
    await eventually(
      async () => {
        const got = await adminGet<AdminConnections>(a, '/connections', root);
        expect(got.users.map((u) => u.user_id)).toEqual([carol]);
      },
      5000,
      200,
    );
  });

  it('shows the moderation actions taken on any node, newest first', async () => {
    const [a, b] = await nodes();
    const root = await token('root', ['admin']);
    const owner = fresh('owner');
    const target = fresh('target');
    const c = await pool.connect(b.wsUrl, { token: await token(owner) });
    const roomId = ((await c.ok('create_room', { name: 'moderated' })) as { room: { id: string } }).room.id;
    const t = await pool.connect(b.wsUrl, { token: await token(target) });
    await t.ok('join_room', { room_id: roomId });
    await c.ok('set_role', { room_id: roomId, user_id: target, role: 'moderator' });
    await c.ok('moderate', {
      room_id: roomId,
      action: 'mute',
      target_id: target,
      reason: 'spam',
      duration_s: 60,
    });
    await c.ok('moderate', { room_id: roomId, action: 'kick', target_id: target, reason: 'still spam' });
    const actions = await eventually(
      async () => {
        const got = await adminGet<{ actions: AdminModerationEntry[] }>(a, '/moderation', root);
        expect(got.actions).toHaveLength(3);
        return got.actions;
      },
      5000,
      200,
    );
    expect(actions.map((x) => x.action)).toEqual(['kick', 'mute', 'set_role']);
    expect(actions[0]).toMatchObject({
      room_id: roomId,
      moderator_id: owner,
      target_id: target,
      reason: 'still spam',
    });
    expect(actions[1]).toMatchObject({ duration_s: 60 });
    expect(actions[2]).toMatchObject({ role: 'moderator' });
  });
});

/**
 * The app owns its surface (issue 12): StreamingModule adds only the
 * WebSocket endpoint and SSE unless asked; every route can be moved, prefixed
 * or turned off, stats/route/metrics take the app's guards, no global filter
 * is installed, and `forRoot` reads the FORGE_STREAMING_* environment.
 */
import {
  CanActivate,
  Controller,
  DynamicModule,
  ExecutionContext,
  Get,
  Injectable,
  Module,
  Type,
} from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  STREAMING_OPTIONS,
  StreamingError,
  StreamingManager,
  StreamingModule,
  StreamingWsAdapter,
  type StreamingOptions,
} from '@nest-streaming/streaming';
import { signToken, startNestApp, withEnv, type TestApp } from './support/app';
import { ClientPool, WsClient } from './support/ws-client';

const SECRET = 'routes-e2e-secret-4b1f9a6c03-e27d58';

const pool = new ClientPool();
const apps: TestApp[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

/** An app of `imports` and `controllers` with the library's WebSocket adapter. */
async function start(
  imports: DynamicModule[],
  controllers: Type[] = [],
  env: Record<string, string> = {},
): Promise<TestApp> {
  @Module({ imports, controllers })
  class RoutesTestModule {}
  const t = await startNestApp(RoutesTestModule, {
    env,
    configure: (app: NestExpressApplication) => app.useWebSocketAdapter(new StreamingWsAdapter(app)),
  });
  apps.push(t);
  return t;
}

/** `METHOD path` of every route the Express app serves. */
function servedRoutes(t: TestApp): string[] {
  const express = t.app.getHttpAdapter().getInstance() as {
    router?: { stack: Layer[] };
    _router?: { stack: Layer[] };
  };
  type Layer = { route?: { path: string; methods: Record<string, boolean> } };
  const stack = (express.router ?? express._router)?.stack ?? [];
  return stack
    .filter((l) => l.route)
    .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path}`))
    .sort();
}

/** Lets a request in only with `x-admin: yes`. */
@Injectable()
class AdminGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>();
    return req.headers['x-admin'] === 'yes';
  }
}

describe('routes StreamingModule adds', () => {
  it('by default: the WebSocket endpoint and SSE only; no health, stats, route or metrics', async () => {
    const t = await start([StreamingModule.forRoot({ historyStore: 'memory', auth: { jwtSecret: SECRET } })]);
    expect(servedRoutes(t)).toEqual([
      'GET /sse',
      'POST /sse/:connectionId/subscriptions',
      'POST /sse/:connectionId/unsubscribe',
    ]);
    for (const path of ['/metrics', '/_/streaming/stats', '/_/streaming/route', '/_/health/streaming']) {
      expect((await t.http('GET', path)).status).toBe(404);
    }
    const c = await pool.connect(t.wsUrl, { token: await token('alice') });
    expect(c.connected.data.user_id).toBe('alice');
  });

  it('with sse off: no HTTP route at all, the WebSocket still works', async () => {
    const t = await start([
      StreamingModule.forRoot({
        historyStore: 'memory',
        auth: { jwtSecret: SECRET },
        routes: { sse: false },
      }),
    ]);
    expect(servedRoutes(t)).toEqual([]);
    expect((await t.http('GET', `/sse?token=${await token('bob')}`)).status).toBe(404);
    await pool.connect(t.wsUrl, { token: await token('bob') });
  });

  it('moves every route: wsPath, a prefix, custom paths, and guards on stats and metrics', async () => {
    const t = await start([
      StreamingModule.forRoot({
        historyStore: 'memory',
        auth: { jwtSecret: SECRET },
        wsPath: '/realtime',
        routes: {
          prefix: 'rt',
          sse: 'events',
          health: 'healthz',
          stats: true,
          metrics: 'prom',
          route: false,
          guards: [AdminGuard],
        },
      }),
    ]);
    expect(servedRoutes(t)).toEqual([
      'GET /rt/_/streaming/stats',
      'GET /rt/events',
      'GET /rt/healthz',
      'GET /rt/healthz/backend',
      'GET /rt/healthz/distributed',
      'GET /rt/prom',
      'POST /rt/events/:connectionId/subscriptions',
      'POST /rt/events/:connectionId/unsubscribe',
    ]);
    const base = t.wsUrl.replace(/\/ws$/, '');
    const c = await pool.connect(`${base}/realtime`, { token: await token('carol') });
    expect(c.connected.data.user_id).toBe('carol');
    await expect(WsClient.connect(`${base}/ws`, { token: await token('carol') })).rejects.toThrow();

    expect((await t.http('GET', '/rt/healthz')).status).toBe(200);
    expect((await t.http('GET', '/rt/_/streaming/stats')).status).toBe(403);
    const stats = await t.http('GET', '/rt/_/streaming/stats', { headers: { 'x-admin': 'yes' } });
    expect(stats.status).toBe(200);
    expect(stats.json.active_connections).toBe(1);
    expect((await t.http('GET', '/rt/prom')).status).toBe(403);
    const prom = await t.http('GET', '/rt/prom', { headers: { 'x-admin': 'yes' } });
    expect(prom.text).toContain('# TYPE');

    // SSE at its new path (the stream's first event is `connected`).
    const sse = await fetch(`${t.baseUrl}/rt/events?token=${await token('dave')}`);
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    let text = '';
    while (!text.includes('event: connected')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
  });

  it('reads FORGE_STREAMING_ROUTES_* when routes are not given in code, and names a bad one', async () => {
    const module = await withEnv(
      { FORGE_STREAMING_ROUTES_METRICS: 'true', FORGE_STREAMING_ROUTES_SSE: 'false' },
      async () => StreamingModule.forRoot({ historyStore: 'memory', auth: { jwtSecret: SECRET } }),
    );
    const t = await start([module]);
    expect(servedRoutes(t)).toEqual(['GET /metrics']);
    await expect(
      withEnv({ FORGE_STREAMING_ROUTES_HEALTH: 'bad path!' }, async () =>
        StreamingModule.forRoot({ auth: { jwtSecret: SECRET } }),
      ),
    ).rejects.toThrow('routes.health (FORGE_STREAMING_ROUTES_HEALTH) = "bad path!"');
  });
});

describe('errors in the app', () => {
  @Controller('mine')
  class MineController {
    constructor(private readonly manager: StreamingManager) {}

    @Get('save')
    save(): Promise<unknown> {
      return this.manager.saveMessage('no-such-room', 'server', 'hello');
    }

    @Get('streaming')
    streaming(): never {
      throw new StreamingError('room_not_found', 'no such room');
    }

    @Get('plain')
    plain(): never {
      throw new Error('boom');
    }
  }

  it('no global filter is installed: a StreamingError maps to its status by itself, other errors stay Nest’s', async () => {
    const t = await start(
      [StreamingModule.forRoot({ historyStore: 'memory', auth: { jwtSecret: SECRET } })],
      [MineController],
    );
    const mine = await t.http('GET', '/mine/streaming');
    expect(mine.status).toBe(404);
    expect(mine.json).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'no such room',
      code: 'room_not_found',
    });
    // The server API on a room that does not exist: 404, not a 500.
    const save = await t.http('GET', '/mine/save');
    expect(save.status).toBe(404);
    expect(save.json.code).toBe('room_not_found');
    const plain = await t.http('GET', '/mine/plain');
    expect(plain.status).toBe(500);
    expect(plain.json).toEqual({ statusCode: 500, message: 'Internal server error' });
  });
});

describe('forRoot and the environment', () => {
  it('forRoot({}) reads FORGE_STREAMING_* and JWT_SECRET; options given in code win', async () => {
    const t = await start([StreamingModule.forRoot({ pingInterval: 9 })], [], {
      JWT_SECRET: SECRET,
      FORGE_STREAMING_NODE_ID: 'from-env',
      FORGE_STREAMING_PING_INTERVAL: '7',
      FORGE_STREAMING_HISTORY_STORE: 'memory',
    });
    const o = t.app.get<StreamingOptions>(STREAMING_OPTIONS);
    expect(o).toMatchObject({ nodeId: 'from-env', pingInterval: 9, historyStore: 'memory' });
    const c = await pool.connect(t.wsUrl, { token: await token('erin') });
    expect(c.connected.data).toMatchObject({ node_id: 'from-env', ping_interval_ms: 9000 });
  });
});

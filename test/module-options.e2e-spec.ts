/**
 * StreamingModule as a user wires it into their own app (not the demo):
 * forRoot, forRootAsync (useFactory / useClass / useExisting), isGlobal,
 * configuration from env and YAML taking effect on a real socket, invalid
 * configuration failing start-up, and two apps in one process staying apart.
 * PROTOCOL.md section 9.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigurableModuleOptionsFactory,
  Injectable,
  Logger,
  Module,
  type DynamicModule,
  type Provider,
  type Type,
} from '@nestjs/common';
import { ConfigModule, ConfigService, type ConfigType } from '@nestjs/config';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  RoomService,
  STREAMING_OPTIONS,
  StreamingConfigError,
  StreamingModule,
  StreamingWsAdapter,
  streamingConfig,
  type StreamingModuleOptions,
  type StreamingOptions,
} from '@nest-streaming/streaming';
import {
  ALL_ROUTES,
  activeConnections,
  metricValue,
  signToken,
  startDemoApp,
  startNestApp,
  type TestApp,
} from './support/app';
import { ClientPool, WsClient } from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'module-options-secret-7c41e0-9b2d5a';

/** How start-up errors name the secret and the JWKS URL. */
const SECRET_KEY = 'auth.jwtSecret (auth.jwt_secret, FORGE_STREAMING_AUTH_JWT_SECRET or JWT_SECRET)';
const JWKS_KEY = 'auth.jwksUrl (auth.jwks_url, FORGE_STREAMING_AUTH_JWKS_URL)';

const pool = new ClientPool();
const apps: TestApp[] = [];
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'streaming-e2e-'));
});

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Boot a throwaway app module made of `imports` (+ providers), with the library's WebSocket adapter. */
async function startTiny(
  imports: Array<DynamicModule | Type<unknown>>,
  options: { env?: Record<string, string>; providers?: Provider[] } = {},
): Promise<TestApp> {
  @Module({ imports, providers: options.providers ?? [] })
  class TinyAppModule {}
  const started = await startNestApp(TinyAppModule, {
    env: options.env,
    configure: (app: NestExpressApplication) => app.useWebSocketAdapter(new StreamingWsAdapter(app)),
  });
  apps.push(started);
  return started;
}

const optionsOf = (t: TestApp): StreamingOptions => t.app.get<StreamingOptions>(STREAMING_OPTIONS);

async function connectAs(t: TestApp, sub: string, secret = SECRET): Promise<WsClient> {
  const token = await signToken(secret, { sub, exp: Math.floor(Date.now() / 1000) + 600 });
  return pool.connect(t.wsUrl, { token });
}

/** A `ping` frame of exactly `size` bytes (padding in data). */
function pingOfSize(id: string, size: number): string {
  const skeleton = JSON.stringify({ type: 'ping', id, data: { pad: '' } });
  const frame = JSON.stringify({ type: 'ping', id, data: { pad: 'p'.repeat(size - skeleton.length) } });
  expect(Buffer.byteLength(frame)).toBe(size);
  return frame;
}

/** max_message_size is what the socket enforces: `limit` bytes pass, `limit + 1` are message_too_large. */
async function expectSocketLimit(t: TestApp, limit: number): Promise<void> {
  const c = await connectAs(t, `limit-${limit}`);
  c.sendRaw(pingOfSize('at-limit', limit));
  expect(await c.waitFor((e) => e.id === 'at-limit')).toMatchObject({ type: 'pong' });
  c.sendRaw(pingOfSize('over-limit', limit + 1));
  expect(await c.waitFor((e) => e.id === 'over-limit')).toMatchObject({
    type: 'error',
    data: { code: 'message_too_large' },
  });
  expect((await c.request('ping')).type).toBe('pong');
}

describe('StreamingModule.forRoot', () => {
  it('takes options directly: defaults fill the rest, auth and max_message_size apply to real sockets', async () => {
    const t = await startTiny([
      StreamingModule.forRoot({ auth: { jwtSecret: SECRET }, maxMessageSize: 1024, routes: ALL_ROUTES }),
    ]);
    const o = optionsOf(t);
    expect(o.maxMessageSize).toBe(1024);
    expect(o.auth.jwtSecret).toBe(SECRET);
    expect(o).toMatchObject({ backend: 'local', pingInterval: 30, maxConnectionsPerUser: 5 });
    expect(o.nodeId).not.toBe('');

    const c = await connectAs(t, 'alice');
    expect(c.connected.data).toMatchObject({ user_id: 'alice', node_id: o.nodeId, ping_interval_ms: 30000 });
    await expectSocketLimit(t, 1024);
    const wrong = await signToken('another-secret', {
      sub: 'alice',
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    expect((await WsClient.expectRejected(t.wsUrl, { token: wrong })).status).toBe(401);
    expect((await t.http('GET', '/_/health/streaming')).status).toBe(200);
  });

  it('rejects invalid options at start-up, naming the key', async () => {
    await expect(
      startTiny([StreamingModule.forRoot({ auth: { jwtSecret: SECRET }, pingInterval: -5 })]),
    ).rejects.toThrow(/pingInterval.*-5/);
    await expect(
      startTiny([
        StreamingModule.forRoot({ auth: { jwtSecret: SECRET }, maxMessageSize: 'big' as unknown as number }),
      ]),
    ).rejects.toThrow(/maxMessageSize.*big/);
  });
});

describe('StreamingModule.forRootAsync', () => {
  it('useFactory + inject ConfigService (ConfigModule.forFeature(streamingConfig)) reads FORGE_STREAMING_* and JWT_SECRET', async () => {
    const t = await startTiny(
      [
        StreamingModule.forRootAsync({
          imports: [ConfigModule.forFeature(streamingConfig)],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => config.get<StreamingModuleOptions>('streaming') ?? {},
        }),
      ],
      {
        env: {
          JWT_SECRET: SECRET,
          FORGE_STREAMING_MAX_MESSAGE_SIZE: '2048',
          FORGE_STREAMING_NODE_ID: 'env-node-1',
          FORGE_STREAMING_PING_INTERVAL: '12',
          FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '33',
        },
      },
    );
    const o = optionsOf(t);
    expect(o).toMatchObject({ maxMessageSize: 2048, nodeId: 'env-node-1', pingInterval: 12 });
    expect(o.rateLimit.burstSize).toBe(33);
    expect(o.auth.jwtSecret).toBe(SECRET);
    // The environment was only visible while the app was built.
    expect(process.env.FORGE_STREAMING_MAX_MESSAGE_SIZE).toBeUndefined();

    const c = await connectAs(t, 'bob');
    expect(c.connected.data).toMatchObject({ node_id: 'env-node-1', ping_interval_ms: 12000 });
    await expectSocketLimit(t, 2048);
  });

  it('useClass: a factory class with create()', async () => {
    let calls = 0;
    @Injectable()
    class StreamingOptionsFactory implements ConfigurableModuleOptionsFactory<
      StreamingModuleOptions,
      'create'
    > {
      create(): StreamingModuleOptions {
        calls++;
        return { auth: { jwtSecret: SECRET }, maxMessageSize: 1500, nodeId: 'use-class-node' };
      }
    }
    const t = await startTiny([StreamingModule.forRootAsync({ useClass: StreamingOptionsFactory })]);
    expect(calls).toBe(1);
    expect(optionsOf(t)).toMatchObject({ maxMessageSize: 1500, nodeId: 'use-class-node' });
    const c = await connectAs(t, 'carol');
    expect(c.connected.data.node_id).toBe('use-class-node');
    await expectSocketLimit(t, 1500);
  });

  it('useExisting: reuses a factory provider exported by another module', async () => {
    @Injectable()
    class SharedStreamingOptions implements ConfigurableModuleOptionsFactory<
      StreamingModuleOptions,
      'create'
    > {
      calls = 0;
      create(): Promise<StreamingModuleOptions> {
        this.calls++;
        return Promise.resolve({
          auth: { jwtSecret: SECRET },
          maxMessageSize: 1800,
          nodeId: 'use-existing-node',
        });
      }
    }
    @Module({ providers: [SharedStreamingOptions], exports: [SharedStreamingOptions] })
    class SharedOptionsModule {}

    const t = await startTiny([
      SharedOptionsModule,
      StreamingModule.forRootAsync({ imports: [SharedOptionsModule], useExisting: SharedStreamingOptions }),
    ]);
    expect(t.app.get(SharedStreamingOptions).calls).toBe(1);
    expect(optionsOf(t)).toMatchObject({ maxMessageSize: 1800, nodeId: 'use-existing-node' });
    await expectSocketLimit(t, 1800);
  });

  it('inject: [streamingConfig.KEY] with a YAML file (FORGE_STREAMING_CONFIG_FILE); env overrides YAML key by key', async () => {
    const file = join(dir, 'streaming.yaml');
    writeFileSync(
      file,
      [
        'extensions:',
        '  other:',
        '    ignored: true',
        '  streaming:',
        '    max_message_size: 1200',
        '    node_id: yaml-node',
        '    ping_interval: 15',
        '    rate_limit:',
        '      burst_size: 7',
        '    auth:',
        `      jwt_secret: "${SECRET}"`,
        '',
      ].join('\n'),
    );
    const t = await startTiny(
      [
        StreamingModule.forRootAsync({
          imports: [ConfigModule.forFeature(streamingConfig)],
          inject: [streamingConfig.KEY],
          useFactory: (config: ConfigType<typeof streamingConfig>) => config,
        }),
      ],
      { env: { FORGE_STREAMING_CONFIG_FILE: file, FORGE_STREAMING_NODE_ID: 'env-beats-yaml' } },
    );
    const o = optionsOf(t);
    expect(o).toMatchObject({ maxMessageSize: 1200, pingInterval: 15, nodeId: 'env-beats-yaml' });
    expect(o.rateLimit).toMatchObject({ burstSize: 7, requestsPerSecond: 10 });
    const c = await connectAs(t, 'dave');
    expect(c.connected.data).toMatchObject({ node_id: 'env-beats-yaml', ping_interval_ms: 15000 });
    await expectSocketLimit(t, 1200);
  });
});

describe('isGlobal', () => {
  @Injectable()
  class RoomDirectory {
    constructor(readonly rooms: RoomService) {}
  }
  @Module({ providers: [RoomDirectory], exports: [RoomDirectory] })
  class SiblingModule {}

  it('makes RoomService injectable in a sibling module that does not import StreamingModule', async () => {
    const t = await startTiny([
      StreamingModule.forRoot({ isGlobal: true, auth: { jwtSecret: SECRET } }),
      SiblingModule,
    ]);
    const directory = t.app.get(RoomDirectory);
    expect(directory.rooms).toBe(t.app.get(RoomService));

    // A room created through the sibling's RoomService is the one clients see.
    const room = await directory.rooms.create('erin', { name: 'from-sibling' });
    const erin = await connectAs(t, 'erin');
    const frank = await connectAs(t, 'frank');
    await frank.ok('join_room', { room_id: room.id });
    await erin.waitFor((e) => e.type === 'user_joined' && e.data.user_id === 'frank');
    const ack = await erin.ok('send_message', { room_id: room.id, content: 'hi from a sibling room' });
    expect((await frank.waitFor((e) => e.type === 'message' && e.data.id === ack.message_id)).data.seq).toBe(
      1,
    );
  });

  it('without isGlobal the sibling cannot resolve RoomService', async () => {
    await expect(
      startTiny([StreamingModule.forRoot({ auth: { jwtSecret: SECRET } }), SiblingModule]),
    ).rejects.toThrow(/RoomService/);
  });
});

describe('invalid configuration fails start-up with a message naming the key and the value', () => {
  it.each([
    [{ FORGE_STREAMING_MAX_MESSAGE_SIZE: 'abc' }, [/FORGE_STREAMING_MAX_MESSAGE_SIZE/, /abc/]],
    [{ FORGE_STREAMING_BACKEND: 'mongo' }, [/backend/, /mongo/]],
    [{ FORGE_STREAMING_PING_INTERVAL: '-1' }, [/ping_?interval|pingInterval/i, /-1/]],
    [{ FORGE_STREAMING_RATE_LIMIT_ENABLED: 'maybe' }, [/FORGE_STREAMING_RATE_LIMIT_ENABLED/, /maybe/]],
    [{ JWT_SECRET: 'change-me' }, [SECRET_KEY, /= <hidden>: must be at least 32 bytes long \(it is 9\)/]],
    [
      { FORGE_STREAMING_AUTH_JWT_SECRET: 'x'.repeat(31) },
      [SECRET_KEY, /must be at least 32 bytes long \(it is 31\)/],
    ],
    [
      { FORGE_STREAMING_AUTH_JWKS_URL: 'http://auth.example.com/.well-known/jwks.json' },
      [JWKS_KEY, /"http:\/\/auth\.example\.com\/\.well-known\/jwks\.json": must be an https:\/\/ URL/],
    ],
  ])('demo app with %j', async (env: Record<string, string>, patterns: Array<RegExp | string>) => {
    let error: unknown;
    try {
      apps.push(await startDemoApp({ JWT_SECRET: SECRET, ...env }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StreamingConfigError);
    for (const p of patterns) expect((error as Error).message).toMatch(p);
    for (const k of Object.keys(env)) expect(process.env[k]).toBeUndefined();
  });

  it('a YAML file with an unknown key or a missing file', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'extensions:\n  streaming:\n    max_mesage_size: 10\n');
    await expect(startDemoApp({ FORGE_STREAMING_CONFIG_FILE: bad })).rejects.toThrow(/max_mesage_size/);
    await expect(startDemoApp({ FORGE_STREAMING_CONFIG_FILE: join(dir, 'missing.yaml') })).rejects.toThrow(
      /missing\.yaml/,
    );
  });

  it('a good app still starts after failed ones', async () => {
    await expect(startDemoApp({ FORGE_STREAMING_BACKEND: 'mongo' })).rejects.toThrow(/mongo/);
    const t = await startDemoApp({ JWT_SECRET: SECRET });
    apps.push(t);
    const c = await pool.connect(t.wsUrl, { token: await t.login('gina') });
    expect(c.connected.data.user_id).toBe('gina');
  });
});

describe('auth key rules at start-up', () => {
  it('forRoot: a short secret or a non-https JWKS URL fails start-up naming the key; the secret is not shown', async () => {
    const short = startTiny([StreamingModule.forRoot({ auth: { jwtSecret: 'short-secret' } })]);
    await expect(short).rejects.toThrow(StreamingConfigError);
    await expect(short).rejects.toThrow(SECRET_KEY);
    await expect(short).rejects.not.toThrow(/short-secret/);
    await expect(
      startTiny([
        StreamingModule.forRoot({ auth: { jwksUrl: 'http://10.1.2.3/jwks', jwtAlgorithms: ['ES256'] } }),
      ]),
    ).rejects.toThrow(JWKS_KEY);
  });

  it('a plain-http JWKS URL on a loopback host is accepted', async () => {
    for (const jwksUrl of ['http://127.0.0.1:9/jwks', 'http://localhost:9/jwks', 'http://[::1]:9/jwks']) {
      const t = await startTiny([StreamingModule.forRoot({ auth: { jwksUrl, jwtAlgorithms: ['ES256'] } })]);
      expect(optionsOf(t).auth.jwksUrl).toBe(jwksUrl);
    }
  });
});

describe('the demo without JWT_SECRET', () => {
  afterEach(() => jest.restoreAllMocks());

  it('generates a random 32-byte secret per start, says so once, and its own logins connect', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const one = await startDemoApp();
    apps.push(one);
    const generated = warn.mock.calls.filter(([m]) => /random 32-byte secret/.test(String(m)));
    expect(generated).toHaveLength(1);
    expect(String(generated[0][0])).toMatch(/JWT_SECRET is not set.*will not survive a restart/);

    const secret = optionsOf(one).auth.jwtSecret ?? '';
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const c = await pool.connect(one.wsUrl, { token: await one.login('ivy') });
    expect(c.connected.data.user_id).toBe('ivy');
    // The old hard-coded default no longer opens anything.
    const legacy = await signToken('demo-chat-insecure-secret-set-JWT_SECRET', {
      sub: 'ivy',
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    expect((await WsClient.expectRejected(one.wsUrl, { token: legacy })).status).toBe(401);

    // Another start makes another secret: the first one's tokens are refused there.
    const two = await startDemoApp();
    apps.push(two);
    expect(optionsOf(two).auth.jwtSecret).not.toBe(secret);
    expect((await WsClient.expectRejected(two.wsUrl, { token: await one.login('ivy') })).status).toBe(401);
    expect(warn.mock.calls.filter(([m]) => /random 32-byte secret/.test(String(m)))).toHaveLength(2);
  });

  it('a configured secret is used as is, with no warning', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const t = await startDemoApp({ JWT_SECRET: SECRET });
    apps.push(t);
    expect(optionsOf(t).auth.jwtSecret).toBe(SECRET);
    expect(warn.mock.calls.filter(([m]) => /random 32-byte secret/.test(String(m)))).toHaveLength(0);
    await connectAs(t, 'jack');
  });
});

describe('two apps in one process', () => {
  it('do not share rooms, connections or metrics', async () => {
    const one = await startTiny([
      StreamingModule.forRoot({ auth: { jwtSecret: SECRET }, routes: ALL_ROUTES }),
    ]);
    const two = await startTiny([
      StreamingModule.forRoot({ auth: { jwtSecret: SECRET }, routes: ALL_ROUTES }),
    ]);
    expect(optionsOf(one).nodeId).not.toBe(optionsOf(two).nodeId);

    const metricsOf = async (t: TestApp) => (await t.http('GET', '/metrics')).text;
    const twoBefore = await metricsOf(two);
    const oneBefore = await metricsOf(one);

    const a1 = await connectAs(one, 'hank');
    const a2 = await connectAs(two, 'hank');
    const created = await a1.ok('create_room', { name: 'only-in-one' });
    const roomId = created.room.id as string;
    for (const content of ['x', 'y', 'z']) await a1.ok('send_message', { room_id: roomId, content });

    // The room does not exist in the other app, and its messages never reach it.
    expect(await a2.request('join_room', { room_id: roomId })).toMatchObject({
      type: 'error',
      data: { code: 'room_not_found' },
    });
    expect(await a2.request('get_history', { room_id: roomId })).toMatchObject({
      type: 'error',
      data: { code: 'room_not_found' },
    });
    expect(a2.all((e) => e.type === 'message')).toHaveLength(0);
    expect((await one.http('GET', '/_/streaming/stats')).json.total_rooms).toBe(1);
    expect((await two.http('GET', '/_/streaming/stats')).json.total_rooms).toBe(0);
    expect(await activeConnections(one)).toBe(1);
    expect(await activeConnections(two)).toBe(1);

    const oneAfter = await metricsOf(one);
    const twoAfter = await metricsOf(two);
    const sends = (text: string) => metricValue(text, 'streaming_messages_in_total', 'type="send_message"');
    expect(sends(oneAfter) - sends(oneBefore)).toBe(3);
    expect(sends(twoAfter)).toBe(sends(twoBefore));
    expect(metricValue(twoAfter, 'streaming_messages_in_total', 'type="create_room"')).toBe(0);
    expect(metricValue(oneAfter, 'streaming_messages_in_total', 'type="create_room"')).toBe(1);

    // Closing one leaves the other serving.
    await one.close();
    expect((await a1.waitForClose(5000)).code).toBe(1001);
    expect((await a2.request('ping')).type).toBe('pong');
    expect((await a2.ok('create_room', { name: 'still-here' })).room.name).toBe('still-here');
  });
});

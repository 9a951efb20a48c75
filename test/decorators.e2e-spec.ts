/**
 * The handler decorators (@SubscribeRoom, @OnChannel, @OnPresence, @OnTyping,
 * @OnConnect, @OnDisconnect) in a user's own app (not the demo), driven over
 * real WebSocket connections: payloads, patterns, async handlers, failing
 * handlers, request-scoped classes, unregistration at shutdown. Then the
 * demo's help bot and presence audit, which use the same decorators.
 */
import { Controller, Injectable, Logger, Module, Scope } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  OnChannel,
  OnConnect,
  OnDisconnect,
  OnPresence,
  OnTyping,
  StreamingEvents,
  StreamingManager,
  StreamingModule,
  StreamingWsAdapter,
  SubscribeRoom,
  type ChannelMessageEventPayload,
  type ConnectionEvent,
  type PresenceEvent,
  type RoomMessageEvent,
  type StreamingEventMap,
  type TypingEvent,
} from '@nest-streaming/streaming';
import { HELP_BOT_USER_ID } from '../apps/demo-chat/src/help-bot.service';
import { eventually, signToken, startDemoApp, startNestApp, type TestApp } from './support/app';
import { ClientPool, isMessage, type Envelope, type WsClient } from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'decorators-e2e-secret-4c8e1a7f20b9d653';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** An exact room id no room of these tests has (room ids are UUIDs). */
const OTHER_ROOM_ID = 'no-such-room';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every handler call of one app, in order. */
@Injectable()
class HandlerLog {
  readonly calls: Array<{ handler: string; payload: unknown }> = [];

  record(handler: string, payload: unknown): void {
    this.calls.push({ handler, payload });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  of(handler: string): any[] {
    return this.calls.filter((c) => c.handler === handler).map((c) => c.payload);
  }
}

@Injectable()
class RecordingHandlers {
  constructor(
    private readonly log: HandlerLog,
    private readonly streaming: StreamingManager,
  ) {}

  @SubscribeRoom()
  anyRoom(e: RoomMessageEvent): void {
    this.log.record('anyRoom', e);
  }

  @SubscribeRoom(OTHER_ROOM_ID)
  exactRoom(e: RoomMessageEvent): void {
    this.log.record('exactRoom', e);
  }

  @OnChannel('news.*')
  news(e: ChannelMessageEventPayload): void {
    this.log.record('news', e);
  }

  @OnPresence()
  presence(e: PresenceEvent): void {
    this.log.record('presence', e);
  }

  @OnTyping()
  typing(e: TypingEvent): void {
    this.log.record('typing', e);
  }

  @OnConnect()
  connect(e: ConnectionEvent): void {
    this.log.record('connect', e);
  }

  @OnDisconnect()
  disconnect(e: ConnectionEvent): void {
    this.log.record('disconnect', e);
  }

  /** Async: answers `echo <text>` with a message of `echo-bot`, then records. */
  @SubscribeRoom('*')
  async echo({ roomId, message }: RoomMessageEvent): Promise<void> {
    if (!message.content.startsWith('echo ')) return;
    await sleep(50);
    await this.streaming.saveMessage(roomId, 'echo-bot', `echoed: ${message.content.slice(5)}`);
    this.log.record('echo', message);
  }

  @SubscribeRoom()
  throwsSync({ message }: RoomMessageEvent): void {
    if (!message.content.startsWith('boom')) return;
    this.log.record('throwsSync', message);
    throw new Error(`sync ${message.content}`);
  }

  @SubscribeRoom()
  async rejects({ message }: RoomMessageEvent): Promise<void> {
    if (!message.content.startsWith('boom')) return;
    await sleep(10);
    this.log.record('rejects', message);
    throw new Error(`async ${message.content}`);
  }
}

/** Handlers on a controller are found too. */
@Controller('recording')
class RecordingController {
  constructor(private readonly log: HandlerLog) {}

  @OnConnect()
  connect(e: ConnectionEvent): void {
    this.log.record('controller.connect', e);
  }

  @OnDisconnect()
  disconnect(e: ConnectionEvent): void {
    this.log.record('controller.disconnect', e);
  }

  @SubscribeRoom()
  room(e: RoomMessageEvent): void {
    this.log.record('controller.room', e);
  }

  @OnChannel('news.>')
  newsTail(e: ChannelMessageEventPayload): void {
    this.log.record('controller.newsTail', e);
  }
}

/** Not singletons: skipped with a warning, never called. */
@Injectable({ scope: Scope.REQUEST })
class RequestScopedHandlers {
  constructor(private readonly log: HandlerLog) {}

  @OnConnect()
  connect(e: ConnectionEvent): void {
    this.log.record('requestScoped', e);
  }
}

@Injectable({ scope: Scope.TRANSIENT })
class TransientHandlers {
  constructor(private readonly log: HandlerLog) {}

  @OnConnect()
  connect(e: ConnectionEvent): void {
    this.log.record('transient', e);
  }
}

@Module({
  imports: [
    StreamingModule.forRoot({
      auth: { jwtSecret: SECRET },
      rateLimit: { requestsPerSecond: 1000, burstSize: 1000 },
      typingTimeout: 1,
      historyStore: 'memory',
    }),
  ],
  controllers: [RecordingController],
  providers: [HandlerLog, RecordingHandlers, RequestScopedHandlers, TransientHandlers],
})
class DecoratorsTestModule {}

const startTestApp = (): Promise<TestApp> =>
  startNestApp(DecoratorsTestModule, {
    configure: (a: NestExpressApplication) => a.useWebSocketAdapter(new StreamingWsAdapter(a)),
  });

const pool = new ClientPool();
let errorSpy: jest.SpyInstance;
let warnSpy: jest.SpyInstance;

beforeAll(() => {
  // Nest's Logger is silent in tests; record what the explorer logs.
  errorSpy = jest.spyOn(Logger.prototype, 'error');
  warnSpy = jest.spyOn(Logger.prototype, 'warn');
});

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
});

afterAll(() => {
  errorSpy.mockRestore();
  warnSpy.mockRestore();
});

let counter = 0;
const user = (prefix: string): string => `${prefix}-${++counter}`;

/** Log lines (first argument) of a Logger method spy. */
const logged = (spy: jest.SpyInstance): string[] => spy.mock.calls.map((c: unknown[]) => String(c[0]));

describe('handler decorators in a user app', () => {
  let app: TestApp;
  let log: HandlerLog;

  beforeAll(async () => {
    app = await startTestApp();
    log = app.app.get(HandlerLog);
  });

  afterAll(async () => {
    await app?.close();
  });

  async function connect(name: string, sid = `sid-${name}`): Promise<WsClient> {
    const token = await signToken(SECRET, {
      sub: name,
      sid,
      name: `Name of ${name}`,
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    return pool.connect(app.wsUrl, { token });
  }

  /** Two connected users, both members of a fresh room (a owns it). */
  async function pair(): Promise<{ a: string; b: string; ca: WsClient; cb: WsClient; roomId: string }> {
    const a = user('ann');
    const b = user('bob');
    const [ca, cb] = await Promise.all([connect(a), connect(b)]);
    const roomId = (await ca.ok('create_room', { name: 'decorated' })).room.id as string;
    await cb.ok('join_room', { room_id: roomId });
    return { a, b, ca, cb, roomId };
  }

  it('@OnConnect fires with the connection, on providers and controllers', async () => {
    const name = user('conn');
    const c = await connect(name, 'session-42');
    const connectionId = c.connected.data.connection_id as string;
    const expected = {
      connectionId,
      userId: name,
      transport: 'ws',
      identity: expect.objectContaining({ userId: name, sessionId: 'session-42', name: `Name of ${name}` }),
    };
    await eventually(() => {
      expect(log.of('connect').filter((e: ConnectionEvent) => e.userId === name)).toEqual([expected]);
      expect(log.of('controller.connect').filter((e: ConnectionEvent) => e.userId === name)).toEqual([
        expected,
      ]);
    });
  });

  it('@OnDisconnect fires with the closed connection', async () => {
    const name = user('disc');
    const c = await connect(name);
    const connectionId = c.connected.data.connection_id as string;
    await c.close();
    await eventually(() => {
      for (const handler of ['disconnect', 'controller.disconnect']) {
        expect(log.of(handler).filter((e: ConnectionEvent) => e.userId === name)).toEqual([
          expect.objectContaining({ connectionId, userId: name, transport: 'ws' }),
        ]);
      }
    });
  });

  it('request-scoped and transient classes are skipped with a warning', () => {
    expect(log.of('requestScoped')).toEqual([]);
    expect(log.of('transient')).toEqual([]);
    const warnings = logged(warnSpy);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('RequestScopedHandlers is request-scoped'),
        expect.stringContaining('TransientHandlers is transient'),
      ]),
    );
  });

  it('@OnPresence fires with the presence change', async () => {
    const name = user('pres');
    const c = await connect(name);
    await eventually(() =>
      expect(log.of('presence')).toContainEqual({
        userId: name,
        presence: expect.objectContaining({ user_id: name, status: 'online' }),
      }),
    );
    await c.ok('set_presence', { status: 'away', custom: 'lunch' });
    await eventually(() => {
      const away = log
        .of('presence')
        .filter((e: PresenceEvent) => e.userId === name && e.presence.status === 'away');
      expect(away).toEqual([
        {
          userId: name,
          presence: {
            user_id: name,
            status: 'away',
            custom: 'lunch',
            last_seen: expect.stringMatching(ISO_UTC),
          },
        },
      ]);
    });
  });

  it('@OnTyping fires on start and stop', async () => {
    const { a, ca, roomId } = await pair();
    await ca.ok('start_typing', { room_id: roomId });
    await eventually(() =>
      expect(log.of('typing')).toContainEqual({ roomId, userId: a, typing: true } satisfies TypingEvent),
    );
    await ca.ok('stop_typing', { room_id: roomId });
    await eventually(() =>
      expect(log.of('typing')).toContainEqual({ roomId, userId: a, typing: false } satisfies TypingEvent),
    );
  });

  it("@SubscribeRoom('*') fires for every accepted message; an exact id of another room does not", async () => {
    const { a, ca, roomId } = await pair();
    const ack = await ca.ok('send_message', { room_id: roomId, content: 'hello', metadata: { k: 1 } });
    const expected = {
      roomId,
      message: expect.objectContaining({
        id: ack.message_id,
        seq: ack.seq,
        room_id: roomId,
        user_id: a,
        content: 'hello',
        metadata: { k: 1 },
        timestamp: expect.stringMatching(ISO_UTC),
      }),
    };
    await eventually(() => {
      expect(log.of('anyRoom').filter((e: RoomMessageEvent) => e.roomId === roomId)).toEqual([expected]);
      expect(log.of('controller.room').filter((e: RoomMessageEvent) => e.roomId === roomId)).toEqual([
        expected,
      ]);
    });
    await sleep(100);
    expect(log.of('exactRoom')).toEqual([]);
  });

  it("@OnChannel('news.*') matches news.a, not news.a.b; 'news.>' matches both", async () => {
    const name = user('pub');
    const c = await connect(name);
    await c.ok('publish', { channel: 'news.a', data: { n: 1 }, metadata: { src: 't' } });
    await c.ok('publish', { channel: 'news.a.b', data: { n: 2 } });
    await c.ok('publish', { channel: 'sports.a', data: { n: 3 } });
    await eventually(() =>
      expect(log.of('controller.newsTail').map((e: ChannelMessageEventPayload) => e.channel)).toEqual(
        expect.arrayContaining(['news.a', 'news.a.b']),
      ),
    );
    // Every listener of the sports.a publish has run once the server publishes and that arrives.
    await app.app.get(StreamingManager).publishToChannel('news.z', { n: 4 });
    await eventually(() =>
      expect(log.of('news').map((e: ChannelMessageEventPayload) => e.channel)).toContain('news.z'),
    );
    expect(log.of('news').filter((e: ChannelMessageEventPayload) => e.publisherId === name)).toEqual([
      {
        channel: 'news.a',
        data: { n: 1 },
        metadata: { src: 't' },
        publisherId: name,
        timestamp: expect.stringMatching(ISO_UTC),
      },
    ]);
    expect(
      log.of('news').find((e: ChannelMessageEventPayload) => e.channel === 'news.z').publisherId,
    ).toBeNull();
    const tail = log.of('controller.newsTail').map((e: ChannelMessageEventPayload) => e.channel);
    expect(tail).not.toContain('sports.a');
  });

  it('an async handler is awaited: its reply reaches another client', async () => {
    const { ca, cb, roomId } = await pair();
    await ca.ok('send_message', { room_id: roomId, content: 'echo hi' });
    const reply = await cb.waitFor(isMessage('echoed: hi'), 3000);
    expect(reply.data).toEqual(expect.objectContaining({ room_id: roomId, user_id: 'echo-bot' }));
    await eventually(() =>
      expect(log.of('echo').map((m: { content: string }) => m.content)).toContain('echo hi'),
    );
    // The echo bot's own message did not trigger another echo.
    await cb.expectNone(isMessage('echoed: hi'), 200, cb.envelopes.indexOf(reply) + 1);
  });

  it('a throwing or rejecting handler is logged by name and stops neither the ack, nor the other handlers, nor later events', async () => {
    const { cb, ca, roomId } = await pair();
    const errorsBefore = errorSpy.mock.calls.length;
    const first = await ca.request('send_message', { room_id: roomId, content: 'boom 1' });
    expect(first).toEqual(
      expect.objectContaining({ type: 'ack', data: expect.objectContaining({ seq: 1 }) }),
    );
    await cb.waitFor(isMessage('boom 1'));
    await eventually(() => {
      expect(log.of('throwsSync').map((m: { content: string }) => m.content)).toContain('boom 1');
      expect(log.of('rejects').map((m: { content: string }) => m.content)).toContain('boom 1');
      const contents = log.of('anyRoom').filter((e: RoomMessageEvent) => e.roomId === roomId);
      expect(contents.map((e: RoomMessageEvent) => e.message.content)).toEqual(['boom 1']);
      const lines = logged(errorSpy).slice(errorsBefore);
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/RecordingHandlers\.throwsSync failed: sync boom 1/),
          expect.stringMatching(/RecordingHandlers\.rejects failed: async boom 1/),
        ]),
      );
    });
    // Later events still reach every handler, the failing ones included.
    await ca.ok('send_message', { room_id: roomId, content: 'after' });
    await ca.ok('send_message', { room_id: roomId, content: 'boom 2' });
    await cb.waitFor(isMessage('boom 2'));
    await eventually(() => {
      const contents = log
        .of('anyRoom')
        .filter((e: RoomMessageEvent) => e.roomId === roomId)
        .map((e: RoomMessageEvent) => e.message.content);
      expect(contents).toEqual(['boom 1', 'after', 'boom 2']);
      expect(log.of('throwsSync').map((m: { content: string }) => m.content)).toContain('boom 2');
      expect(log.of('rejects').map((m: { content: string }) => m.content)).toContain('boom 2');
    });
    expect(ca.isOpen && cb.isOpen).toBe(true);
  });
});

describe('handler decorators at shutdown', () => {
  it('are unregistered by app.close(): events emitted afterwards reach nobody', async () => {
    const app = await startTestApp();
    const log = app.app.get(HandlerLog);
    const events = app.app.get(StreamingEvents);
    const kinds: Array<keyof StreamingEventMap> = [
      'room_message',
      'channel_message',
      'presence',
      'typing',
      'connect',
      'disconnect',
    ];
    for (const k of kinds) expect(events.has(k)).toBe(true);
    const token = await signToken(SECRET, { sub: 'closer', exp: Math.floor(Date.now() / 1000) + 600 });
    await pool.connect(app.wsUrl, { token });
    await eventually(() => expect(log.of('connect')).toHaveLength(1));

    await app.close();
    for (const k of kinds) expect(events.has(k)).toBe(false);
    const before = log.calls.length;
    const conn: ConnectionEvent = {
      connectionId: 'c',
      userId: 'u',
      transport: 'ws',
      identity: { userId: 'u', sessionId: 's', roles: [], anonymous: false, metadata: {} },
    };
    events.emit('connect', conn);
    events.emit('disconnect', conn);
    events.emit('typing', { roomId: 'r', userId: 'u', typing: true });
    events.emit('presence', {
      userId: 'u',
      presence: { user_id: 'u', status: 'online', last_seen: new Date().toISOString() },
    });
    events.emit('channel_message', {
      channel: 'news.a',
      data: {},
      metadata: {},
      publisherId: null,
      timestamp: new Date().toISOString(),
    });
    await sleep(100);
    expect(log.calls.length).toBe(before);
  });
});

describe('the demo app', () => {
  let demo: TestApp;

  beforeAll(async () => {
    demo = await startDemoApp({
      JWT_SECRET: 'decorators-demo-secret-93f0b6a2e8c1d475',
      DEMO_ADMINS: 'auditor',
    });
  });

  afterAll(async () => {
    await demo?.close();
  });

  const fromBot = (e: Envelope): boolean => e.type === 'message' && e.data?.user_id === HELP_BOT_USER_ID;

  it('answers /help with the command list from the help bot, once, and nothing else', async () => {
    const [ta, tb] = await Promise.all([demo.login(user('alice')), demo.login(user('bert'))]);
    const [ca, cb] = await Promise.all([
      pool.connect(demo.wsUrl, { token: ta }),
      pool.connect(demo.wsUrl, { token: tb }),
    ]);
    const roomId = (await ca.ok('create_room', { name: 'help' })).room.id as string;
    await cb.ok('join_room', { room_id: roomId });

    await ca.ok('send_message', { room_id: roomId, content: 'hello' });
    await ca.ok('send_message', { room_id: roomId, content: '/help me' });
    const ack = await ca.ok('send_message', { room_id: roomId, content: '/help' });
    const reply = await cb.waitFor(fromBot, 3000);
    expect(reply.data).toEqual(
      expect.objectContaining({ room_id: roomId, user_id: HELP_BOT_USER_ID, seq: ack.seq + 1 }),
    );
    expect(reply.data.content).toContain('/help');
    expect(reply.data.metadata).toEqual({ reply_to: ack.message_id });
    await ca.waitFor(fromBot, 3000);
    // One answer, to `/help` only, and no answer to its own answer.
    await cb.expectNone(fromBot, 300, cb.envelopes.indexOf(reply) + 1);
    expect(cb.all(fromBot)).toHaveLength(1);
  });

  it('GET /api/audit/presence lists connections and presence changes (admins only)', async () => {
    const name = user('audited');
    const token = await demo.login(name);
    const c = await pool.connect(demo.wsUrl, { token });
    const connectionId = c.connected.data.connection_id as string;
    expect((await demo.http('GET', '/api/audit/presence')).status).toBe(401);
    expect((await demo.http('GET', '/api/audit/presence', { token })).status).toBe(403);
    const admin = await demo.login('auditor');
    await c.close();
    await eventually(async () => {
      const res = await demo.http('GET', '/api/audit/presence', { token: admin });
      expect(res.status).toBe(200);
      const mine = (res.json.entries as Array<Record<string, unknown>>).filter((e) => e.user_id === name);
      expect(mine).toEqual(
        expect.arrayContaining([
          {
            at: expect.stringMatching(ISO_UTC),
            kind: 'connect',
            user_id: name,
            connection_id: connectionId,
            transport: 'ws',
          },
          { at: expect.stringMatching(ISO_UTC), kind: 'presence', user_id: name, status: 'online' },
          {
            at: expect.stringMatching(ISO_UTC),
            kind: 'disconnect',
            user_id: name,
            connection_id: connectionId,
            transport: 'ws',
          },
        ]),
      );
    });
  });
});

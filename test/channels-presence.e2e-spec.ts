/**
 * Channels, presence, typing and feature switches of the demo app over real
 * sockets on loopback: PROTOCOL.md sections 4 (subscribe / unsubscribe /
 * publish, NATS-style patterns, filters, presence, typing), 7 and 8
 * (`user.<id>.*`, SSE), and section 11 of docs/PROTOCOL.md (acks, private
 * channels, the channel registry, the presence grace period,
 * `feature_disabled`).
 */
import { randomUUID } from 'node:crypto';
import { EventSource } from 'eventsource';
import { StreamingManager } from '@nest-streaming/streaming';
import { eventually, startDemoApp, type TestApp } from './support/app';
import {
  ClientPool,
  isMessage,
  WsClient,
  type Envelope,
  type EnvelopePredicate,
  type Json,
} from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'channels-presence-e2e-secret-3b7d91';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** Generous limits so that no test trips the rate limiter by accident. */
const BASE_ENV: Record<string, string> = {
  JWT_SECRET: SECRET,
  FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000',
  FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000',
  FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '1000',
};

const pool = new ClientPool();
const streams = new Set<SseStream>();

/** The shared app of most tests: typing_timeout 1 s, at most 2 typists per room. */
let app: TestApp;

beforeAll(async () => {
  app = await startDemoApp({
    ...BASE_ENV,
    FORGE_STREAMING_TYPING_TIMEOUT: '1',
    FORGE_STREAMING_MAX_TYPING_USERS_PER_ROOM: '2',
  });
});

afterEach(async () => {
  for (const s of streams) s.close();
  streams.clear();
  // Every frame any client received in the test was a well-formed envelope.
  expect(await pool.closeAll()).toEqual([]);
});

afterAll(async () => {
  await pool.closeAll();
  await app?.close();
});

/** A demo app of its own for one describe block (started before, closed after its tests). */
function useApp(env: Record<string, string>): () => TestApp {
  let own: TestApp | undefined;
  beforeAll(async () => {
    own = await startDemoApp({ ...BASE_ENV, ...env });
  });
  afterAll(async () => {
    await pool.closeAll();
    await own?.close();
  });
  return () => {
    if (!own) throw new Error('the app did not start');
    return own;
  };
}

let counter = 0;
/** A name no other test uses: a user id, or a channel token (letters, digits and `-`). */
const uniq = (prefix: string): string => `${prefix}-${++counter}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function connect(name: string, on: TestApp = app): Promise<WsClient> {
  const token = await on.login(name);
  return pool.connect(on.wsUrl, { token });
}

async function createRoom(c: WsClient, name = 'room'): Promise<string> {
  const ack = await c.ok('create_room', { name });
  return ack.room.id as string;
}

/** `join_room` and wait until the others saw the join. */
async function join(c: WsClient, roomId: string, ...others: WsClient[]): Promise<void> {
  await c.ok('join_room', { room_id: roomId });
  const joiner = c.connected.data.user_id as string;
  for (const o of others) {
    await o.waitFor(
      (e) => e.type === 'user_joined' && e.data.room_id === roomId && e.data.user_id === joiner,
    );
  }
}

/** Join a room over REST, without any open connection of the joiner. */
async function joinOverRest(on: TestApp, token: string, roomId: string): Promise<void> {
  const res = await on.http('POST', `/api/rooms/${roomId}/join`, { token });
  expect(res.status).toBe(200);
}

/** The request is answered with an `error` of `code`. */
async function expectError(c: WsClient, type: string, data: unknown, code: string): Promise<Envelope> {
  const answer = await c.request(type, data);
  expect(answer).toMatchObject({ type: 'error', data: { code, message: expect.any(String) } });
  return answer;
}

const channelMessage: EnvelopePredicate = (e) => e.type === 'channel_message';
const onChannel =
  (channel: string): EnvelopePredicate =>
  (e) =>
    e.type === 'channel_message' && e.data?.channel === channel;
/** Channels of the channel messages a client received (from `from`), in order. */
const channelsOf = (c: WsClient, from = 0): string[] =>
  c.all(channelMessage, from).map((e) => e.data.channel as string);
/** The `tag` field of the data of the channel messages received on `channel`. */
const tagsOn = (c: WsClient, channel: string): unknown[] =>
  c.all(onChannel(channel)).map((e): unknown => e.data.data.tag);

const presenceOf =
  (userId: string, status?: string): EnvelopePredicate =>
  (e) =>
    e.type === 'presence' && e.data?.user_id === userId && (status === undefined || e.data.status === status);
const statusesOf = (c: WsClient, userId: string, from = 0): string[] =>
  c.all(presenceOf(userId), from).map((e) => e.data.status as string);

const typingOf =
  (roomId: string, userId: string, value?: boolean): EnvelopePredicate =>
  (e) =>
    e.type === 'typing' &&
    e.data?.room_id === roomId &&
    e.data.user_id === userId &&
    (value === undefined || e.data.typing === value);

/** One SSE stream read with the `eventsource` package; records the events of the given types. */
class SseStream {
  readonly events: { type: string; data: Json }[] = [];

  private constructor(private readonly source: EventSource) {}

  static async open(on: TestApp, token: string, query: string): Promise<SseStream> {
    const url = `${on.baseUrl}/sse?token=${encodeURIComponent(token)}&${query}`;
    const stream = new SseStream(new EventSource(url));
    streams.add(stream);
    for (const type of ['connected', 'channel_message', 'error', 'presence', 'message']) {
      stream.source.addEventListener(type, (ev: MessageEvent) => {
        if (typeof ev.data !== 'string') return; // a transport error event, not a server event
        stream.events.push({ type, data: JSON.parse(ev.data) });
      });
    }
    await stream.waitFor((e) => e.type === 'connected');
    return stream;
  }

  all(predicate: (e: { type: string; data: Json }) => boolean): { type: string; data: Json }[] {
    return this.events.filter(predicate);
  }

  async waitFor(
    predicate: (e: { type: string; data: Json }) => boolean,
    timeoutMs = 3000,
  ): Promise<{ type: string; data: Json }> {
    return eventually(
      () => {
        const found = this.events.find(predicate);
        if (!found) throw new Error(`no matching SSE event; got ${JSON.stringify(this.events.slice(-8))}`);
        return found;
      },
      timeoutMs,
      20,
    );
  }

  close(): void {
    this.source.close();
  }
}

// ---------------------------------------------------------------- channels

describe('channels: names and patterns', () => {
  it('an exact subscription receives only its channel; the ack is {channel}', async () => {
    const ns = uniq('exact');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    expect(await sub.ok('subscribe', { channel: `${ns}.a` })).toEqual({ channel: `${ns}.a` });
    for (const ch of [`${ns}.b`, ns, `${ns}.a.b`, `${ns}.a`]) {
      await pub.ok('publish', { channel: ch, data: { tag: ch } });
    }
    await sub.waitFor(onChannel(`${ns}.a`));
    await sub.expectNone((e) => channelMessage(e) && e.data.channel !== `${ns}.a`, 200);
    expect(channelsOf(sub)).toEqual([`${ns}.a`]);
  });

  it('`news.*` receives news.a, not news.a.b nor news', async () => {
    const news = uniq('news');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    expect(await sub.ok('subscribe', { channel: `${news}.*` })).toEqual({ channel: `${news}.*` });
    for (const ch of [news, `${news}.a.b`, `${news}.a`, `${news}.a.b.c`, `${news}.z`]) {
      await pub.ok('publish', { channel: ch, data: {} });
    }
    await sub.waitFor(onChannel(`${news}.z`));
    await sub.expectNone(channelMessage, 150, sub.envelopes.length);
    expect(channelsOf(sub)).toEqual([`${news}.a`, `${news}.z`]);
  });

  it('`news.>` receives news.a and news.a.b, not news', async () => {
    const news = uniq('news');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    await sub.ok('subscribe', { channel: `${news}.>` });
    for (const ch of [news, `${news}.a`, `${news}.a.b`, `${news}.a.b.c.d`, `other-${news}.a`, `${news}.z`]) {
      await pub.ok('publish', { channel: ch, data: {} });
    }
    await sub.waitFor(onChannel(`${news}.z`));
    await sub.expectNone(channelMessage, 150, sub.envelopes.length);
    expect(channelsOf(sub)).toEqual([`${news}.a`, `${news}.a.b`, `${news}.a.b.c.d`, `${news}.z`]);
  });

  it('`*.alerts` receives x.alerts, not alerts nor x.y.alerts', async () => {
    const alerts = uniq('alerts');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    await sub.ok('subscribe', { channel: `*.${alerts}` });
    for (const ch of [alerts, `x.y.${alerts}`, `x.${alerts}`, `${alerts}.x`, `y.${alerts}`]) {
      await pub.ok('publish', { channel: ch, data: {} });
    }
    await sub.waitFor(onChannel(`y.${alerts}`));
    await sub.expectNone(channelMessage, 150, sub.envelopes.length);
    expect(channelsOf(sub)).toEqual([`x.${alerts}`, `y.${alerts}`]);
  });

  it('`>` receives every public channel, one token or many', async () => {
    const ns = uniq('all');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    await sub.ok('subscribe', { channel: '>' });
    const published = [ns, `${ns}.a`, `${ns}.a.b.c`];
    for (const ch of published) await pub.ok('publish', { channel: ch, data: {} });
    await sub.waitFor(onChannel(`${ns}.a.b.c`));
    // Other tests may publish meanwhile: look at this test's channels only.
    expect(channelsOf(sub).filter((ch) => ch === ns || ch.startsWith(`${ns}.`))).toEqual(published);
  });

  it('a connection with several matching patterns gets one copy of each message', async () => {
    const ns = uniq('dup');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    for (const p of [`${ns}.a`, `${ns}.*`, `${ns}.>`, `*.a`]) await sub.ok('subscribe', { channel: p });
    await pub.ok('publish', { channel: `${ns}.a`, data: { tag: 1 } });
    await pub.ok('publish', { channel: `${ns}.b`, data: { tag: 2 } });
    await pub.ok('publish', { channel: `${ns}.b.c`, data: { tag: 3 } });
    await sub.waitFor(onChannel(`${ns}.b.c`));
    await sub.expectNone(channelMessage, 200, sub.envelopes.length);
    expect(channelsOf(sub)).toEqual([`${ns}.a`, `${ns}.b`, `${ns}.b.c`]);
  });

  it('unsubscribe stops delivery: ack {channel, removed: true}, then removed: false; other patterns keep working', async () => {
    const ns = uniq('unsub');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    await sub.ok('subscribe', { channel: `${ns}.a` });
    await sub.ok('subscribe', { channel: `${ns}.*` });
    await pub.ok('publish', { channel: `${ns}.a`, data: { tag: 'both' } });
    await sub.waitFor(onChannel(`${ns}.a`));

    expect(await sub.ok('unsubscribe', { channel: `${ns}.a` })).toEqual({
      channel: `${ns}.a`,
      removed: true,
    });
    expect(await sub.ok('unsubscribe', { channel: `${ns}.a` })).toEqual({
      channel: `${ns}.a`,
      removed: false,
    });
    expect(await sub.ok('unsubscribe', { channel: `${ns}.never` })).toEqual({
      channel: `${ns}.never`,
      removed: false,
    });
    // Still subscribed through the wildcard: one copy.
    await pub.ok('publish', { channel: `${ns}.a`, data: { tag: 'wildcard' } });
    await sub.waitForCount(onChannel(`${ns}.a`), 2);

    expect(await sub.ok('unsubscribe', { channel: `${ns}.*` })).toEqual({
      channel: `${ns}.*`,
      removed: true,
    });
    const mark = sub.envelopes.length;
    await pub.ok('publish', { channel: `${ns}.a`, data: { tag: 'none' } });
    await pub.ok('publish', { channel: `${ns}.b`, data: { tag: 'none' } });
    await sub.expectNone(channelMessage, 400, mark);
    expect(tagsOn(sub, `${ns}.a`)).toEqual(['both', 'wildcard']);
  });

  it('invalid names and patterns (`a..b`, `a.>.b`, empty, wildcards in publish) are invalid_message', async () => {
    const c = await connect(uniq('bad'));
    for (const channel of ['a..b', 'a.>.b', '', '.a', 'a.', '>.a', 'a b', 'a.**', 'a.b>']) {
      await expectError(c, 'subscribe', { channel }, 'invalid_message');
    }
    for (const channel of ['a..b', 'a.>.b', '', 'news.*', 'news.>', '>', 'a.']) {
      await expectError(c, 'publish', { channel, data: {} }, 'invalid_message');
    }
    for (const name of ['a..b', 'a.*', '']) {
      await expectError(c, 'create_channel', { name }, 'invalid_message');
    }
    await expectError(c, 'publish', { channel: 'ok.name', data: 'not an object' }, 'invalid_message');
    await expectError(c, 'unsubscribe', { channel: '' }, 'invalid_message');
    // The connection keeps working.
    expect(await c.ok('subscribe', { channel: 'ok.name' })).toEqual({ channel: 'ok.name' });
  });
});

describe('channels: messages and filters', () => {
  it('channel_message carries {channel, data, metadata, publisher_id, timestamp}; publish acks {channel, timestamp}', async () => {
    const ch = `${uniq('shape')}.x`;
    const pubName = uniq('pub');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(pubName)]);
    await sub.ok('subscribe', { channel: ch });
    const before = Date.now();
    const ack = await pub.ok('publish', {
      channel: ch,
      data: { n: 1, s: 'x' },
      metadata: { source: 'test' },
    });
    expect(ack).toEqual({ channel: ch, timestamp: expect.stringMatching(ISO_UTC) });
    const got = await sub.waitFor(onChannel(ch));
    expect(got).toEqual({
      type: 'channel_message',
      data: {
        channel: ch,
        data: { n: 1, s: 'x' },
        metadata: { source: 'test' },
        publisher_id: pubName,
        timestamp: ack.timestamp,
      },
    });
    expect(got).not.toHaveProperty('id');
    expect(Math.abs(Date.parse(ack.timestamp as string) - before)).toBeLessThan(5000);

    // Without metadata: metadata is {}.
    await pub.ok('publish', { channel: ch, data: { n: 2 } });
    const second = await sub.waitForCount(onChannel(ch), 2);
    expect(second[1].data).toMatchObject({ data: { n: 2 }, metadata: {}, publisher_id: pubName });
  });

  it('the publisher receives its own publish only if subscribed', async () => {
    const ch = `${uniq('self')}.x`;
    const me = await connect(uniq('me'));
    await me.ok('publish', { channel: ch, data: { tag: 'unsubscribed' } });
    await me.expectNone(channelMessage, 300);
    await me.ok('subscribe', { channel: ch });
    await me.ok('publish', { channel: ch, data: { tag: 'subscribed' } });
    await me.waitFor(onChannel(ch));
    await me.expectNone((e) => channelMessage(e) && e.data.data.tag !== 'subscribed', 200);
    expect(tagsOn(me, ch)).toEqual(['subscribed']);
  });

  it('only the subscribing connection receives, not the user`s other connections', async () => {
    const ch = `${uniq('conn')}.x`;
    const name = uniq('multi');
    const [c1, c2, pub] = await Promise.all([connect(name), connect(name), connect(uniq('pub'))]);
    await c1.ok('subscribe', { channel: ch });
    await pub.ok('publish', { channel: ch, data: { tag: 1 } });
    await c1.waitFor(onChannel(ch));
    await c2.expectNone(channelMessage, 300);
    // A publish from the subscriber's other connection reaches the subscriber only.
    await c2.ok('publish', { channel: ch, data: { tag: 2 } });
    await c1.waitForCount(onChannel(ch), 2);
    await c2.expectNone(channelMessage, 200);
    expect(tagsOn(c1, ch)).toEqual([1, 2]);
  });

  it('filters: equality on data and metadata, any-of arrays, all fields must match, a missing field never matches', async () => {
    const ch = `${uniq('filter')}.x`;
    const pub = await connect(uniq('pub'));
    const subs = {
      dataEq: { kind: 'alert' },
      metaEq: { source: 'sensor' },
      anyOf: { level: ['high', 'critical'] },
      all: { kind: 'alert', level: 'high' },
      number: { n: 3 },
      nullValue: { gone: null },
    } as const;
    const clients = new Map<string, WsClient>();
    for (const [label, filters] of Object.entries(subs)) {
      const c = await connect(uniq(`f${label}`));
      expect(await c.ok('subscribe', { channel: ch, filters })).toEqual({ channel: ch });
      clients.set(label, c);
    }
    const publications: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
      ['alert', { kind: 'alert' }],
      ['info', { kind: 'info', level: 'high' }],
      ['meta-sensor', {}, { source: 'sensor' }],
      ['meta-other', {}, { source: 'camera' }],
      ['critical', { level: 'critical' }],
      ['low', { level: 'low' }],
      ['alert-low', { kind: 'alert', level: 'low' }],
      ['alert-meta-high', { kind: 'alert' }, { level: 'high' }],
      ['empty', {}],
      ['n3', { n: 3 }],
      ['n3-string', { n: '3' }],
      ['null', { gone: null }],
      ['kind-object', { kind: { v: 'alert' } }],
      ['kind-array', { kind: ['alert'] }],
      // data is looked up first: data.kind "info" hides metadata.kind "alert".
      ['data-wins', { kind: 'info' }, { kind: 'alert' }],
      // Matches every filter: the marker that ends the test.
      ['end', { kind: 'alert', level: 'high', n: 3, gone: null }, { source: 'sensor' }],
    ];
    for (const [tag, data, metadata] of publications) {
      await pub.ok('publish', { channel: ch, data: { ...data, tag }, metadata });
    }
    for (const c of clients.values()) await c.waitFor((e) => onChannel(ch)(e) && e.data.data.tag === 'end');
    const received = Object.fromEntries([...clients].map(([label, c]) => [label, tagsOn(c, ch)]));
    expect(received).toEqual({
      dataEq: ['alert', 'alert-low', 'alert-meta-high', 'end'],
      metaEq: ['meta-sensor', 'end'],
      // metadata.level "high" counts when data has no level.
      anyOf: ['info', 'critical', 'alert-meta-high', 'end'],
      all: ['alert-meta-high', 'end'],
      number: ['n3', 'end'],
      nullValue: ['null', 'end'],
    });
  });

  it('overlapping patterns with different filters: a message passing any of them arrives once', async () => {
    const ns = uniq('overlap');
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    await sub.ok('subscribe', { channel: `${ns}.*`, filters: { kind: 'a' } });
    await sub.ok('subscribe', { channel: `${ns}.>`, filters: { kind: ['b', 'a'] } });
    await sub.ok('subscribe', { channel: `${ns}.x`, filters: { kind: 'c' } });
    for (const [tag, channel, kind] of [
      ['a', `${ns}.x`, 'a'],
      ['b', `${ns}.x`, 'b'],
      ['c', `${ns}.x`, 'c'],
      ['d', `${ns}.x`, 'd'],
      ['deep-a', `${ns}.x.y`, 'a'],
      ['deep-c', `${ns}.x.y`, 'c'],
      ['end', `${ns}.z`, 'a'],
    ]) {
      await pub.ok('publish', { channel, data: { kind, tag } });
    }
    await sub.waitFor((e) => channelMessage(e) && e.data.data.tag === 'end');
    await sub.expectNone(channelMessage, 150, sub.envelopes.length);
    expect(sub.all(channelMessage).map((e): unknown => e.data.data.tag)).toEqual([
      'a',
      'b',
      'c',
      'deep-a',
      'end',
    ]);
  });

  it('subscribing again to the same pattern replaces its filters (one subscription, one copy)', async () => {
    const ch = `${uniq('refilter')}.x`;
    const [sub, pub] = await Promise.all([connect(uniq('sub')), connect(uniq('pub'))]);
    await sub.ok('subscribe', { channel: ch, filters: { kind: 'a' } });
    await sub.ok('subscribe', { channel: ch, filters: { kind: 'b' } });
    await pub.ok('publish', { channel: ch, data: { kind: 'a', tag: 'a' } });
    await pub.ok('publish', { channel: ch, data: { kind: 'b', tag: 'b' } });
    await sub.waitFor(onChannel(ch));
    await sub.expectNone((e) => channelMessage(e) && e.data.data.tag !== 'b', 200);
    expect(tagsOn(sub, ch)).toEqual(['b']);
  });
});

describe('channels: user.<id>.* namespaces', () => {
  it('only the user and the server publish on user.<id>.*; others are forbidden to subscribe or publish', async () => {
    const alice = uniq('alice');
    const bob = uniq('bob');
    const [ca, cb] = await Promise.all([connect(alice), connect(bob)]);
    const mine = `user.${alice}.alerts`;
    expect(await ca.ok('subscribe', { channel: mine })).toEqual({ channel: mine });

    await expectError(cb, 'subscribe', { channel: mine }, 'forbidden');
    await expectError(cb, 'subscribe', { channel: `user.${alice}.>` }, 'forbidden');
    await expectError(cb, 'subscribe', { channel: `user.${alice}` }, 'forbidden');
    await expectError(cb, 'publish', { channel: mine, data: { tag: 'bob' } }, 'forbidden');
    await expectError(cb, 'publish', { channel: `user.${alice}.other`, data: {} }, 'forbidden');

    await ca.ok('publish', { channel: mine, data: { tag: 'alice' } });
    const own = await ca.waitFor(onChannel(mine));
    expect(own.data).toMatchObject({ publisher_id: alice, data: { tag: 'alice' } });

    const manager = app.app.get(StreamingManager);
    await manager.publishToChannel(mine, { tag: 'server' }, { via: 'manager' });
    const fromServer = await ca.waitForCount(onChannel(mine), 2);
    expect(fromServer[1].data).toEqual({
      channel: mine,
      data: { tag: 'server' },
      metadata: { via: 'manager' },
      publisher_id: null,
      timestamp: expect.stringMatching(ISO_UTC),
    });
    await ca.expectNone((e) => channelMessage(e) && e.data.data.tag === 'bob', 200);
    expect(cb.all(channelMessage)).toEqual([]);
  });

  it('`user.*.alerts` subscribed by U means U`s own alerts only; wildcard-first patterns never see others` namespaces', async () => {
    const alice = uniq('alice');
    const bob = uniq('bob');
    const eve = uniq('eve');
    const [ca, cb, ce] = await Promise.all([connect(alice), connect(bob), connect(eve)]);
    expect(await cb.ok('subscribe', { channel: 'user.*.alerts' })).toEqual({ channel: 'user.*.alerts' });
    await ca.ok('subscribe', { channel: 'user.*.alerts' });
    // Eve tries to listen in on everything and on alice in particular.
    for (const p of ['>', `*.${alice}.alerts`, `*.${bob}.>`, '*.*.alerts']) {
      await ce.ok('subscribe', { channel: p });
    }
    const manager = app.app.get(StreamingManager);
    await manager.publishToChannel(`user.${alice}.alerts`, { tag: 'for-alice' });
    await manager.publishToChannel(`user.${bob}.alerts`, { tag: 'for-bob' });
    await manager.publishToChannel(`user.${bob}.other`, { tag: 'bob-other' });
    await cb.waitFor(onChannel(`user.${bob}.alerts`));
    await ca.waitFor(onChannel(`user.${alice}.alerts`));
    // A public marker that eve's `>` receives: everything before it was delivered already.
    const marker = `${uniq('marker')}.x`;
    await manager.publishToChannel(marker, { tag: 'marker' });
    await ce.waitFor(onChannel(marker));
    await sleep(100);

    expect(channelsOf(cb)).toEqual([`user.${bob}.alerts`]);
    expect(channelsOf(ca)).toEqual([`user.${alice}.alerts`]);
    expect(channelsOf(ce).filter((ch) => ch.startsWith('user.'))).toEqual([]);

    // Unsubscribing uses the same narrowing.
    expect(await cb.ok('unsubscribe', { channel: 'user.*.alerts' })).toEqual({
      channel: 'user.*.alerts',
      removed: true,
    });
    // Nor may eve publish into alice's namespace.
    await expectError(ce, 'publish', { channel: `user.${alice}.alerts`, data: {} }, 'forbidden');
  });
});

describe('channels: private channels and the registry', () => {
  it('a private channel: only its creator subscribes and publishes, others are forbidden, wildcards never receive it', async () => {
    const ns = uniq('priv');
    const secret = `${ns}.secret`;
    const owner = uniq('owner');
    const other = uniq('other');
    const [co, co2, cx] = await Promise.all([connect(owner), connect(owner), connect(other)]);
    const created = await co.ok('create_channel', { name: secret, private: true, description: 'hush' });
    expect(created).toEqual({
      channel: {
        name: secret,
        private: true,
        created_by: owner,
        created_at: expect.stringMatching(ISO_UTC),
        description: 'hush',
      },
    });

    await expectError(cx, 'subscribe', { channel: secret }, 'forbidden');
    await expectError(cx, 'publish', { channel: secret, data: { tag: 'intruder' } }, 'forbidden');
    // Wildcards are accepted but never carry the private channel, not even to its creator.
    await cx.ok('subscribe', { channel: `${ns}.*` });
    await cx.ok('subscribe', { channel: '>' });
    await co2.ok('subscribe', { channel: `${ns}.>` });
    expect(await co.ok('subscribe', { channel: secret })).toEqual({ channel: secret });

    await co.ok('publish', { channel: secret, data: { tag: 'creator' } });
    await app.app.get(StreamingManager).publishToChannel(secret, { tag: 'server' });
    const got = await co.waitForCount(onChannel(secret), 2);
    expect(got.map((e): unknown[] => [e.data.data.tag, e.data.publisher_id])).toEqual([
      ['creator', owner],
      ['server', null],
    ]);
    // A public sibling reaches both wildcards: the private messages would have come before it.
    const marker = `${ns}.public`;
    await cx.ok('publish', { channel: marker, data: { tag: 'marker' } });
    await cx.waitFor(onChannel(marker));
    await co2.waitFor(onChannel(marker));
    await sleep(100);
    expect(cx.all(onChannel(secret))).toEqual([]);
    expect(co2.all(onChannel(secret))).toEqual([]);
    expect(tagsOn(co, secret)).toEqual(['creator', 'server']);
  });

  it('list_channels and find_channels show public channels and only one`s own private ones', async () => {
    const ns = uniq('reg');
    const owner = uniq('owner');
    const other = uniq('other');
    const [co, cx] = await Promise.all([connect(owner), connect(other)]);
    await co.ok('create_channel', { name: `${ns}.open` });
    await co.ok('create_channel', { name: `${ns}.closed`, private: true });
    await cx.ok('create_channel', { name: `${ns}.deep.x` });
    await expectError(cx, 'create_channel', { name: `user.${owner}.x` }, 'forbidden');

    const names = (list: Json): string[] =>
      (list.channels as { name: string }[]).map((c) => c.name).filter((n) => n.startsWith(`${ns}.`));
    const ownerList = await co.ok('list_channels');
    expect(names(ownerList)).toEqual([`${ns}.closed`, `${ns}.deep.x`, `${ns}.open`]);
    expect((ownerList.channels as Json[]).find((c) => c.name === `${ns}.open`)).toEqual({
      name: `${ns}.open`,
      private: false,
      created_by: owner,
      created_at: expect.stringMatching(ISO_UTC),
    });
    expect(names(await cx.ok('list_channels'))).toEqual([`${ns}.deep.x`, `${ns}.open`]);

    expect(names(await co.ok('find_channels', { pattern: `${ns}.*` }))).toEqual([
      `${ns}.closed`,
      `${ns}.open`,
    ]);
    expect(names(await cx.ok('find_channels', { pattern: `${ns}.*` }))).toEqual([`${ns}.open`]);
    expect(names(await cx.ok('find_channels', { pattern: `${ns}.>` }))).toEqual([
      `${ns}.deep.x`,
      `${ns}.open`,
    ]);
    expect((await cx.ok('find_channels', { pattern: `${ns}-none.>` })).channels).toEqual([]);
    await expectError(cx, 'find_channels', { pattern: 'a..b' }, 'invalid_message');
  });
});

describe('channels: max_channels_per_user=3', () => {
  const limited = useApp({ FORGE_STREAMING_MAX_CHANNELS_PER_USER: '3' });

  it('the 4th subscription across the user`s connections is limit_exceeded; freeing one makes room', async () => {
    const on = limited();
    const name = uniq('greedy');
    const [c1, c2] = await Promise.all([connect(name, on), connect(name, on)]);
    await c1.ok('subscribe', { channel: 'lim.a' });
    await c1.ok('subscribe', { channel: 'lim.*' });
    await c2.ok('subscribe', { channel: 'lim.b' });
    const refused = await expectError(c2, 'subscribe', { channel: 'lim.c' }, 'limit_exceeded');
    expect(refused.data.message).toEqual(expect.any(String));
    await expectError(c1, 'subscribe', { channel: 'lim.c' }, 'limit_exceeded');
    // Re-subscribing to a held pattern (new filters) is not a new subscription.
    await c1.ok('subscribe', { channel: 'lim.a', filters: { k: 1 } });
    // Another user is not limited by it.
    const other = await connect(uniq('other'), on);
    for (const ch of ['lim.a', 'lim.b', 'lim.c']) await other.ok('subscribe', { channel: ch });

    // The refused subscription does not deliver.
    const pub = await connect(uniq('pub'), on);
    await pub.ok('publish', { channel: 'lim.c', data: {} });
    await other.waitFor(onChannel('lim.c'));
    await c2.expectNone(channelMessage, 200);

    expect(await c1.ok('unsubscribe', { channel: 'lim.a' })).toMatchObject({ removed: true });
    await c2.ok('subscribe', { channel: 'lim.c' });
    await expectError(c1, 'subscribe', { channel: 'lim.d' }, 'limit_exceeded');
    // Closing a connection frees its subscriptions (the server learns of the close asynchronously).
    await c2.close();
    await eventually(() => c1.ok('subscribe', { channel: 'lim.d' }), 3000, 50);
    await c1.ok('subscribe', { channel: 'lim.e' });
    await expectError(c1, 'subscribe', { channel: 'lim.f' }, 'limit_exceeded');
  });
});

describe('channels over SSE', () => {
  it('GET /sse?channels=news.* receives channel_message events, and user.<id>.notifications always', async () => {
    const news = uniq('news');
    const name = uniq('sse');
    const token = await app.login(name);
    const stream = await SseStream.open(app, token, `channels=${encodeURIComponent(`${news}.*`)}`);
    const pub = await connect(uniq('pub'));
    // The stream subscribes after `connected`: probe until a message arrives.
    await eventually(
      async () => {
        await pub.ok('publish', { channel: `${news}.probe`, data: { tag: 'probe' } });
        await stream.waitFor((e) => e.type === 'channel_message', 150);
      },
      5000,
      10,
    );
    const probes = stream.all((e) => e.type === 'channel_message').length;

    for (const ch of [`${news}.a`, `${news}.a.b`, news, `${news}.z`]) {
      await pub.ok('publish', { channel: ch, data: { tag: ch }, metadata: { m: 1 } });
    }
    await stream.waitFor((e) => e.type === 'channel_message' && e.data.channel === `${news}.z`);
    await app.app.get(StreamingManager).publishToChannel(`user.${name}.notifications`, { tag: 'note' });
    const note = await stream.waitFor(
      (e) => e.type === 'channel_message' && e.data.channel === `user.${name}.notifications`,
    );
    expect(note.data).toEqual({
      channel: `user.${name}.notifications`,
      data: { tag: 'note' },
      metadata: {},
      publisher_id: null,
      timestamp: expect.stringMatching(ISO_UTC),
    });
    const after = stream.all((e) => e.type === 'channel_message').slice(probes);
    expect(after.map((e): unknown => e.data.channel)).toEqual([
      `${news}.a`,
      `${news}.z`,
      `user.${name}.notifications`,
    ]);
    expect(after[0].data).toEqual({
      channel: `${news}.a`,
      data: { tag: `${news}.a` },
      metadata: { m: 1 },
      publisher_id: pub.connected.data.user_id,
      timestamp: expect.stringMatching(ISO_UTC),
    });
  });
});

// ---------------------------------------------------------------- presence

describe('presence', () => {
  it('per user across connections: online once; closing one keeps U online; offline ~1 s after the last closes', async () => {
    const u = uniq('pu');
    const cr = await connect(uniq('mate'));
    const roomId = await createRoom(cr);
    const tokenU = await app.login(u);
    await joinOverRest(app, tokenU, roomId);

    const mark = cr.envelopes.length;
    const [c1, c2] = await Promise.all([
      pool.connect(app.wsUrl, { token: tokenU }),
      pool.connect(app.wsUrl, { token: tokenU }),
    ]);
    const online = await cr.waitFor(presenceOf(u, 'online'), 3000, mark);
    expect(online.data).toMatchObject({
      user_id: u,
      status: 'online',
      last_seen: expect.stringMatching(ISO_UTC),
    });
    await sleep(300);
    expect(statusesOf(cr, u, mark)).toEqual(['online']);

    await c1.close();
    await cr.expectNone(presenceOf(u), 2000, cr.envelopes.length);
    expect(statusesOf(cr, u, mark)).toEqual(['online']);
    expect((await cr.ok('get_presence', { user_ids: [u] })).presence).toEqual([
      expect.objectContaining({ user_id: u, status: 'online' }),
    ]);

    await c2.close();
    const closedAt = Date.now();
    const offline = await cr.waitFor(presenceOf(u, 'offline'), 3000, mark);
    const elapsed = Date.now() - closedAt;
    expect(elapsed).toBeGreaterThanOrEqual(700); // the 1 s grace period
    expect(elapsed).toBeLessThan(3000);
    expect(offline.data).toEqual({
      user_id: u,
      status: 'offline',
      last_seen: expect.stringMatching(ISO_UTC),
    });
    expect(Math.abs(Date.parse(offline.data.last_seen as string) - Date.now())).toBeLessThan(5000);
    await sleep(200);
    expect(statusesOf(cr, u, mark)).toEqual(['online', 'offline']);
    expect((await cr.ok('get_presence', { user_ids: [u] })).presence).toEqual([
      expect.objectContaining({ user_id: u, status: 'offline', last_seen: expect.stringMatching(ISO_UTC) }),
    ]);
  });

  it('a quick reconnect within the grace period produces no offline/online flap', async () => {
    const u = uniq('flap');
    const cr = await connect(uniq('mate'));
    const roomId = await createRoom(cr);
    const tokenU = await app.login(u);
    await joinOverRest(app, tokenU, roomId);
    const first = await pool.connect(app.wsUrl, { token: tokenU });
    await cr.waitFor(presenceOf(u, 'online'));

    const mark = cr.envelopes.length;
    await first.close();
    await pool.connect(app.wsUrl, { token: tokenU });
    await cr.expectNone(presenceOf(u), 2000, mark);
    expect((await cr.ok('get_presence', { user_ids: [u] })).presence).toEqual([
      expect.objectContaining({ user_id: u, status: 'online' }),
    ]);
  });

  it('set_presence busy with custom reaches room-mates and sticks despite activity until set online', async () => {
    const u = uniq('busy');
    const r = uniq('mate');
    const [cu, cr] = await Promise.all([connect(u), connect(r)]);
    const roomId = await createRoom(cu);
    await join(cr, roomId, cu);

    const mark = cr.envelopes.length;
    const ack = await cu.ok('set_presence', { status: 'busy', custom: 'in a meeting' });
    expect(ack).toEqual({
      presence: {
        user_id: u,
        status: 'busy',
        custom: 'in a meeting',
        last_seen: expect.stringMatching(ISO_UTC),
      },
    });
    const busy = await cr.waitFor(presenceOf(u, 'busy'), 3000, mark);
    expect(busy.data).toEqual({
      user_id: u,
      status: 'busy',
      custom: 'in a meeting',
      last_seen: expect.stringMatching(ISO_UTC),
    });

    // Activity of any kind does not override a chosen status.
    const afterBusy = cr.envelopes.length;
    await cu.request('ping');
    await cu.ok('send_message', { room_id: roomId, content: 'still busy' });
    await cu.ok('get_history', { room_id: roomId });
    await cr.waitFor(isMessage('still busy'));
    await cr.expectNone(presenceOf(u), 400, afterBusy);
    expect((await cr.ok('get_presence', { user_ids: [u] })).presence).toEqual([
      expect.objectContaining({ user_id: u, status: 'busy' }),
    ]);
    // A second connection keeps the chosen status too.
    await connect(u);
    await cr.expectNone(presenceOf(u), 300, afterBusy);

    await cu.ok('set_presence', { status: 'online' });
    const online = await cr.waitFor(presenceOf(u, 'online'), 3000, afterBusy);
    expect(online.data).not.toHaveProperty('custom');
    expect(statusesOf(cr, u, mark)).toEqual(['busy', 'online']);
  });

  it('get_presence by room_id (members only) and by user_ids', async () => {
    const a = uniq('pa');
    const b = uniq('pb');
    const gone = uniq('gone');
    const [ca, cb, stranger] = await Promise.all([connect(a), connect(b), connect(uniq('stranger'))]);
    const roomId = await createRoom(ca);
    await join(cb, roomId, ca);
    await joinOverRest(app, await app.login(gone), roomId); // a member who never connected

    const byRoom = (await cb.ok('get_presence', { room_id: roomId })).presence as Json[];
    expect(byRoom).toHaveLength(3);
    expect(byRoom).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ user_id: a, status: 'online', last_seen: expect.stringMatching(ISO_UTC) }),
        expect.objectContaining({ user_id: b, status: 'online', last_seen: expect.stringMatching(ISO_UTC) }),
        expect.objectContaining({ user_id: gone, status: 'offline' }),
      ]),
    );
    await expectError(stranger, 'get_presence', { room_id: roomId }, 'not_room_member');
    await expectError(stranger, 'get_presence', { room_id: 'no-such-room' }, 'room_not_found');
    await expectError(stranger, 'get_presence', {}, 'invalid_message');

    // By user_ids: only users who share a room with the caller are listed.
    const nobody = uniq('nobody');
    const byIds = (await cb.ok('get_presence', { user_ids: [a, nobody, gone, b] })).presence as Json[];
    expect(byIds.map((p): unknown[] => [p.user_id, p.status])).toEqual([
      [a, 'online'],
      [gone, 'offline'],
      [b, 'online'],
    ]);
    expect((await stranger.ok('get_presence', { user_ids: [a, nobody, b] })).presence).toEqual([]);
  });

  // PROTOCOL.md section 3: all timestamps are ISO 8601 UTC strings. A user who
  // never connected has no last_seen: null would say so; "" is not a timestamp.
  it('get_presence of a user who never connected has last_seen null or an ISO timestamp, not ""', async () => {
    const c = await connect(uniq('asker'));
    const roomId = await createRoom(c);
    const never = uniq('never');
    await joinOverRest(app, await app.login(never), roomId);
    const lastSeen = (list: Json[]): unknown => list.find((p) => p.user_id === never)?.last_seen;
    const byIds = (await c.ok('get_presence', { user_ids: [never] })).presence as Json[];
    const byRoom = (await c.ok('get_presence', { room_id: roomId })).presence as Json[];
    for (const value of [lastSeen(byIds), lastSeen(byRoom)]) {
      expect({ last_seen: value }).toEqual({
        last_seen: value === null ? null : expect.stringMatching(ISO_UTC),
      });
    }
  });

  it('presence events reach only users sharing a room, once each even across two shared rooms', async () => {
    const u = uniq('pu');
    const twoRooms = await connect(uniq('two'));
    const stranger = await connect(uniq('stranger'));
    const tokenU = await app.login(u);
    const room1 = await createRoom(twoRooms, 'one');
    const room2 = await createRoom(twoRooms, 'two');
    await joinOverRest(app, tokenU, room1);
    await joinOverRest(app, tokenU, room2);
    // The stranger shares a room with the two-room user, not with U.
    const other = await createRoom(stranger, 'other');
    await join(twoRooms, other, stranger);

    const mark = twoRooms.envelopes.length;
    const cu = await pool.connect(app.wsUrl, { token: tokenU });
    await twoRooms.waitFor(presenceOf(u, 'online'), 3000, mark);
    await cu.ok('set_presence', { status: 'away', custom: 'lunch' });
    await twoRooms.waitFor(presenceOf(u, 'away'), 3000, mark);
    await cu.ok('set_presence', { status: 'online' });
    await twoRooms.waitForCount(presenceOf(u, 'online'), 2, 3000, mark);
    await cu.close();
    await twoRooms.waitFor(presenceOf(u, 'offline'), 3000, mark);
    await sleep(300);

    expect(statusesOf(twoRooms, u, mark)).toEqual(['online', 'away', 'online', 'offline']);
    expect(stranger.all(presenceOf(u))).toEqual([]);
  });
});

describe('presence: away after presence_timeout (1 s, cleanup 1 s)', () => {
  const idle = useApp({ FORGE_STREAMING_PRESENCE_TIMEOUT: '1', FORGE_STREAMING_PRESENCE_CLEANUP: '1' });

  it('an idle user becomes away; any frame brings them back online', async () => {
    const on = idle();
    const u = uniq('idle');
    const [cu, cr] = await Promise.all([connect(u, on), connect(uniq('mate'), on)]);
    const roomId = await createRoom(cu);
    await join(cr, roomId, cu);
    const mark = cr.envelopes.length;
    expect((await cu.request('ping')).type).toBe('pong');
    const lastFrame = Date.now();

    const away = await cr.waitFor(presenceOf(u, 'away'), 4000, mark);
    expect(Date.now() - lastFrame).toBeGreaterThanOrEqual(800);
    expect(away.data).toEqual({ user_id: u, status: 'away', last_seen: expect.stringMatching(ISO_UTC) });

    const pong = await cu.request('ping');
    expect(pong.type).toBe('pong');
    await cr.waitFor(presenceOf(u, 'online'), 2000, mark);
    expect(statusesOf(cr, u, mark)).toEqual(['away', 'online']);
    // And away again once idle.
    await cr.waitForCount(presenceOf(u, 'away'), 2, 4000, mark);
  });

  it('a frame on any of the user`s connections ends automatic away', async () => {
    const on = idle();
    const u = uniq('idle2');
    const tokenU = await on.login(u);
    const cr = await connect(uniq('mate'), on);
    const roomId = await createRoom(cr);
    await joinOverRest(on, tokenU, roomId);
    const mark = cr.envelopes.length;
    await pool.connect(on.wsUrl, { token: tokenU });
    const c2 = await pool.connect(on.wsUrl, { token: tokenU });
    await cr.waitFor(presenceOf(u, 'away'), 4000, mark);
    const awayAt = cr.envelopes.length;
    expect((await c2.request('ping')).type).toBe('pong');
    await cr.waitFor(presenceOf(u, 'online'), 2000, awayAt);
    expect(statusesOf(cr, u, mark)).toEqual(['online', 'away', 'online']);
  });

  // A new connection is activity: the server refreshes the user's idle timer
  // on connect, and a connection opened on another node ends `away` (see
  // PresenceService.connected). On the node that already holds a connection of
  // the user, the status stays `away` until the next frame.
  it('a new connection of an automatically away user brings them back online', async () => {
    const on = idle();
    const u = uniq('idle3');
    const tokenU = await on.login(u);
    const cr = await connect(uniq('mate'), on);
    const roomId = await createRoom(cr);
    await joinOverRest(on, tokenU, roomId);
    const mark = cr.envelopes.length;
    await pool.connect(on.wsUrl, { token: tokenU });
    await cr.waitFor(presenceOf(u, 'away'), 4000, mark);
    const awayAt = cr.envelopes.length;

    await pool.connect(on.wsUrl, { token: tokenU }); // no frame sent on any connection of u
    const back = cr.waitFor(presenceOf(u, 'online'), 2000, awayAt).then(
      () => 'online',
      () => 'no presence event',
    );
    const [event, state] = await Promise.all([
      back,
      sleep(300).then(
        async (): Promise<unknown> => (await cr.ok('get_presence', { user_ids: [u] })).presence[0].status,
      ),
    ]);
    expect({ event, state }).toEqual({ event: 'online', state: 'online' });
  });

  it('a chosen status sticks while idle (no automatic away)', async () => {
    const on = idle();
    const u = uniq('chosen');
    const [cu, cr] = await Promise.all([connect(u, on), connect(uniq('mate'), on)]);
    const roomId = await createRoom(cu);
    await join(cr, roomId, cu);
    const mark = cr.envelopes.length;
    await cu.ok('set_presence', { status: 'busy', custom: 'focus' });
    await cr.waitFor(presenceOf(u, 'busy'), 3000, mark);
    await sleep(2500);
    expect(statusesOf(cr, u, mark)).toEqual(['busy']);
    expect((await cr.ok('get_presence', { user_ids: [u] })).presence).toEqual([
      expect.objectContaining({ user_id: u, status: 'busy' }),
    ]);
  });
});

// ------------------------------------------------------------------ typing

describe('typing (typing_timeout 1 s, at most 2 typists per room)', () => {
  it('start_typing reaches the others (not the typist) and stops by itself after about 1 s', async () => {
    const a = uniq('typist');
    const [ca, cb, cc] = await Promise.all([connect(a), connect(uniq('b')), connect(uniq('c'))]);
    const roomId = await createRoom(ca);
    await join(cb, roomId, ca);
    await join(cc, roomId, ca, cb);

    expect(await ca.ok('start_typing', { room_id: roomId })).toEqual({ room_id: roomId, typing: true });
    const on = await cb.waitFor(typingOf(roomId, a, true));
    const started = Date.now();
    expect(on.data).toEqual({ room_id: roomId, user_id: a, typing: true });
    await cc.waitFor(typingOf(roomId, a, true));
    await cb.waitFor(typingOf(roomId, a, false), 3000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(800);
    expect(elapsed).toBeLessThan(2000);
    await cc.waitFor(typingOf(roomId, a, false), 1000);
    expect(ca.all((e) => e.type === 'typing')).toEqual([]);
    expect(cb.all(typingOf(roomId, a))).toHaveLength(2);
  });

  it('stop_typing stops at once', async () => {
    const a = uniq('typist');
    const [ca, cb] = await Promise.all([connect(a), connect(uniq('b'))]);
    const roomId = await createRoom(ca);
    await join(cb, roomId, ca);
    await ca.ok('start_typing', { room_id: roomId });
    await cb.waitFor(typingOf(roomId, a, true));
    const t0 = Date.now();
    expect(await ca.ok('stop_typing', { room_id: roomId })).toEqual({ room_id: roomId, typing: false });
    await cb.waitFor(typingOf(roomId, a, false), 1000);
    expect(Date.now() - t0).toBeLessThan(600);
    await sleep(1200); // past typing_timeout: no second typing:false
    expect(cb.all(typingOf(roomId, a)).map((e): unknown => e.data.typing)).toEqual([true, false]);
    expect(ca.all((e) => e.type === 'typing')).toEqual([]);
  });

  it('leaving the room, and closing the typist`s last connection, send typing:false at once', async () => {
    const a = uniq('leaver');
    const b = uniq('closer');
    const [ca, cb, cr] = await Promise.all([connect(a), connect(b), connect(uniq('mate'))]);
    const roomId = await createRoom(cr);
    await join(ca, roomId, cr);
    await join(cb, roomId, cr);

    await ca.ok('start_typing', { room_id: roomId });
    await cr.waitFor(typingOf(roomId, a, true));
    const leftAt = Date.now();
    await ca.ok('leave_room', { room_id: roomId });
    await cr.waitFor(typingOf(roomId, a, false), 1000);
    expect(Date.now() - leftAt).toBeLessThan(600);
    await cr.waitFor((e) => e.type === 'user_left' && e.data.user_id === a);

    await cb.ok('start_typing', { room_id: roomId });
    await cr.waitFor(typingOf(roomId, b, true));
    const closedAt = Date.now();
    await cb.close();
    await cr.waitFor(typingOf(roomId, b, false), 1000);
    expect(Date.now() - closedAt).toBeLessThan(600);
    await sleep(1000);
    expect(cr.all(typingOf(roomId, a)).map((e): unknown => e.data.typing)).toEqual([true, false]);
    expect(cr.all(typingOf(roomId, b)).map((e): unknown => e.data.typing)).toEqual([true, false]);
  });

  it('a kicked typist stops typing for the room', async () => {
    const t = uniq('kicked');
    const [ct, cr] = await Promise.all([connect(t), connect(uniq('owner'))]);
    const roomId = await createRoom(cr);
    await join(ct, roomId, cr);
    await ct.ok('start_typing', { room_id: roomId });
    await cr.waitFor(typingOf(roomId, t, true));
    const kickedAt = Date.now();
    await cr.ok('moderate', { room_id: roomId, action: 'kick', target_id: t });
    await cr.waitFor(typingOf(roomId, t, false), 1000);
    expect(Date.now() - kickedAt).toBeLessThan(600);
    await sleep(1000);
    expect(cr.all(typingOf(roomId, t)).map((e): unknown => e.data.typing)).toEqual([true, false]);
  });

  it('a third typist in a room is limit_exceeded; a typist may restart; a free slot can be taken', async () => {
    const names = [uniq('t1'), uniq('t2'), uniq('t3')];
    const [c1, c2, c3, cr] = await Promise.all([...names.map((n) => connect(n)), connect(uniq('mate'))]);
    const roomId = await createRoom(cr);
    for (const c of [c1, c2, c3]) await join(c, roomId, cr);

    await c1.ok('start_typing', { room_id: roomId });
    await c2.ok('start_typing', { room_id: roomId });
    await expectError(c3, 'start_typing', { room_id: roomId }, 'limit_exceeded');
    expect(await c1.ok('start_typing', { room_id: roomId })).toEqual({ room_id: roomId, typing: true });
    await c1.ok('stop_typing', { room_id: roomId });
    await c3.ok('start_typing', { room_id: roomId });
    await cr.waitFor(typingOf(roomId, names[2], true));
    expect(cr.all(typingOf(roomId, names[0])).map((e): unknown => e.data.typing)).toEqual([true, false]);
    // Another room has its own budget.
    const room2 = await createRoom(c3, 'second');
    expect(await c3.ok('start_typing', { room_id: room2 })).toEqual({ room_id: room2, typing: true });
  });
});

// --------------------------------------------------------- feature toggles

/** Two users in a fresh room of `on`, both connected. */
async function roomPair(on: TestApp): Promise<{ a: string; ca: WsClient; cb: WsClient; roomId: string }> {
  const a = uniq('fa');
  const [ca, cb] = await Promise.all([connect(a, on), connect(uniq('fb'), on)]);
  const roomId = await createRoom(ca);
  await join(cb, roomId, ca);
  return { a, ca, cb, roomId };
}

/** Channels still work: subscribe, publish, delivery. */
async function expectChannelsWork(on: TestApp): Promise<void> {
  const ch = `${uniq('works')}.x`;
  const [sub, pub] = await Promise.all([connect(uniq('csub'), on), connect(uniq('cpub'), on)]);
  await sub.ok('subscribe', { channel: ch });
  await pub.ok('publish', { channel: ch, data: { ok: true } });
  await sub.waitFor(onChannel(ch));
}

describe('feature switches', () => {
  describe('enable_rooms=false', () => {
    const off = useApp({ FORGE_STREAMING_ENABLE_ROOMS: 'false' });

    it('room requests and REST room creation are feature_disabled; channels and presence still work', async () => {
      const on = off();
      const name = uniq('noroom');
      const c = await connect(name, on);
      await expectError(c, 'create_room', { name: 'r' }, 'feature_disabled');
      await expectError(c, 'join_room', { room_id: 'some-room' }, 'feature_disabled');
      await expectError(c, 'send_message', { room_id: 'some-room', content: 'hi' }, 'feature_disabled');

      const res = await on.http('POST', '/api/rooms', { token: await on.login(name), body: { name: 'r' } });
      expect(res.status).toBe(403);
      expect(res.json).toMatchObject({
        statusCode: 403,
        code: 'feature_disabled',
        message: expect.any(String),
      });

      await expectChannelsWork(on);
      expect(await c.ok('set_presence', { status: 'busy' })).toMatchObject({
        presence: { user_id: name, status: 'busy' },
      });
      expect((await c.ok('get_presence', { user_ids: [name] })).presence).toEqual([
        expect.objectContaining({ user_id: name, status: 'busy' }),
      ]);
      expect((await c.request('ping')).type).toBe('pong');
    });
  });

  describe('enable_channels=false', () => {
    const off = useApp({ FORGE_STREAMING_ENABLE_CHANNELS: 'false' });

    it('subscribe and publish are feature_disabled; rooms still work', async () => {
      const on = off();
      const { ca, cb, roomId } = await roomPair(on);
      await expectError(ca, 'subscribe', { channel: 'news.*' }, 'feature_disabled');
      await expectError(ca, 'publish', { channel: 'news.a', data: {} }, 'feature_disabled');
      await expectError(ca, 'unsubscribe', { channel: 'news.*' }, 'feature_disabled');
      await expectError(ca, 'create_channel', { name: 'news.a' }, 'feature_disabled');
      await expectError(ca, 'list_channels', undefined, 'feature_disabled');
      await ca.ok('send_message', { room_id: roomId, content: 'rooms work' });
      await cb.waitFor(isMessage('rooms work'));
      expect(cb.all((e) => e.type === 'channel_message')).toEqual([]);
    });
  });

  describe('enable_presence=false', () => {
    const off = useApp({ FORGE_STREAMING_ENABLE_PRESENCE: 'false' });

    it('set_presence and get_presence are feature_disabled and no presence events are sent', async () => {
      const on = off();
      const cr = await connect(uniq('mate'), on);
      const roomId = await createRoom(cr);
      const u = uniq('ghost');
      const tokenU = await on.login(u);
      await joinOverRest(on, tokenU, roomId);

      const cu = await pool.connect(on.wsUrl, { token: tokenU });
      await expectError(cu, 'set_presence', { status: 'busy' }, 'feature_disabled');
      await expectError(cu, 'get_presence', { user_ids: [u] }, 'feature_disabled');
      await expectError(cu, 'get_presence', { room_id: roomId }, 'feature_disabled');
      // Rooms and typing still work.
      await cu.ok('send_message', { room_id: roomId, content: 'no presence here' });
      await cr.waitFor(isMessage('no presence here'));
      await cu.ok('start_typing', { room_id: roomId });
      await cr.waitFor(typingOf(roomId, u, true));
      await cu.close();
      await sleep(2000); // past the 1 s grace period
      expect(cr.all((e) => e.type === 'presence')).toEqual([]);
    });
  });

  describe('enable_typing_indicators=false', () => {
    const off = useApp({ FORGE_STREAMING_ENABLE_TYPING_INDICATORS: 'false' });

    it('start_typing is feature_disabled and no typing events are sent; messages and presence still work', async () => {
      const on = off();
      const { a, ca, cb, roomId } = await roomPair(on);
      await expectError(ca, 'start_typing', { room_id: roomId }, 'feature_disabled');
      await expectError(ca, 'stop_typing', { room_id: roomId }, 'feature_disabled');
      await ca.ok('send_message', { room_id: roomId, content: 'typed silently' });
      await cb.waitFor(isMessage('typed silently'));
      await ca.ok('set_presence', { status: 'busy' });
      await cb.waitFor(presenceOf(a, 'busy'));
      await ca.close();
      await sleep(300);
      expect(cb.all((e) => e.type === 'typing')).toEqual([]);
    });
  });

  describe('enable_message_history=false', () => {
    const off = useApp({ FORGE_STREAMING_ENABLE_MESSAGE_HISTORY: 'false' });

    it('get_history and resume are feature_disabled; send_message still delivers live', async () => {
      const on = off();
      const { ca, cb, roomId } = await roomPair(on);
      const ack = await ca.ok('send_message', { room_id: roomId, content: `live-${randomUUID()}` });
      expect(ack).toEqual({ message_id: expect.any(String), seq: 1 });
      const live = await cb.waitFor((e) => e.type === 'message' && e.data.room_id === roomId);
      expect(live.data).toMatchObject({ seq: 1, room_id: roomId, user_id: ca.connected.data.user_id });
      await expectError(cb, 'get_history', { room_id: roomId }, 'feature_disabled');
      await expectError(cb, 'resume', { rooms: { [roomId]: 0 } }, 'feature_disabled');
      const rest = await on.http('GET', `/api/rooms/${roomId}/history`, {
        token: await on.login(cb.connected.data.user_id as string),
      });
      expect(rest.status).toBe(403);
      expect(rest.json).toMatchObject({ code: 'feature_disabled' });
      await expectChannelsWork(on);
    });
  });
});

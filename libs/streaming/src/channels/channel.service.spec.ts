import { Logger } from '@nestjs/common';
import { ALL_CHANNELS_TOPIC } from './channel-bus';
import { node, codeOf, channelsOf } from './channel-test-kit';

describe('ChannelService: publish, subscribe, filters, user channels', () => {
  beforeAll(() => {
    Logger.overrideLogger(false);
  });
  afterAll(() => {
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);
  });

  describe('publish and subscribe', () => {
    it('delivers channel_message {channel, data, metadata, publisher_id, timestamp}', async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      const bob = connect('bob');
      await expect(service.subscribe(bob.conn, 'news.sports')).resolves.toEqual({ channel: 'news.sports' });
      const ack = await service.publish({ userId: 'alice' }, 'news.sports', { score: 3 }, { lang: 'en' });
      expect(ack.channel).toBe('news.sports');
      const [env, ...rest] = bob.received();
      expect(rest).toEqual([]);
      expect(env).toEqual({
        type: 'channel_message',
        data: {
          channel: 'news.sports',
          data: { score: 3 },
          metadata: { lang: 'en' },
          publisher_id: 'alice',
          timestamp: ack.timestamp,
        },
      });
      expect(new Date(ack.timestamp).toISOString()).toBe(ack.timestamp);
      expect(alice.received()).toEqual([]);
    });

    it('defaults metadata to {} and publisher_id to null for the server', async () => {
      const { service, connect } = node();
      const bob = connect('bob');
      await service.subscribe(bob.conn, 'alerts');
      await service.publish(null, 'alerts', { level: 1 });
      const [env] = bob.received();
      expect(env.data.metadata).toEqual({});
      expect(env.data.publisher_id).toBeNull();
    });

    it('delivers to the publisher too when it is subscribed', async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      await service.subscribe(alice.conn, 'room.chat');
      await service.publish({ userId: 'alice' }, 'room.chat', { t: 'hi' });
      expect(channelsOf(alice.received())).toEqual(['room.chat']);
    });

    it.each([
      ['a.*', ['a.b'], ['a', 'a.b.c', 'b.a']],
      ['a.>', ['a.b', 'a.b.c'], ['a', 'b.c']],
      ['*.b', ['a.b', 'x.b'], ['b', 'a.b.c', 'a.c']],
      ['>', ['a', 'a.b.c'], []],
      ['a.b', ['a.b'], ['a', 'a.b.c', 'a.c']],
    ])('pattern %s gets %j and not %j', async (pattern, yes, no) => {
      const { service, connect } = node();
      const c = connect('carol');
      await service.subscribe(c.conn, pattern);
      for (const ch of [...yes, ...no]) await service.publish(null, ch, {});
      expect(channelsOf(c.received())).toEqual(yes);
    });

    it('sends one copy per connection even when several of its patterns match', async () => {
      const { service, connect } = node();
      const c = connect('carol');
      const d = connect('dave');
      for (const p of ['a.b', 'a.*', 'a.>', '*.b', '>']) await service.subscribe(c.conn, p);
      await service.subscribe(d.conn, 'a.*');
      await service.publish(null, 'a.b', { n: 1 });
      await service.publish(null, 'a.c', { n: 2 });
      expect(c.received().map((e) => e.data.data.n)).toEqual([1, 2]);
      expect(d.received().map((e) => e.data.data.n)).toEqual([1, 2]);
    });

    it('serializes once per publish, however many recipients', async () => {
      const count = async (recipients: number): Promise<number> => {
        const { service, connect } = node();
        for (let i = 0; i < recipients; i++) await service.subscribe(connect(`u${i}`).conn, 'fan.out');
        const spy = jest.spyOn(JSON, 'stringify');
        await service.publish(null, 'fan.out', { x: 1 });
        const calls = spy.mock.calls.length;
        spy.mockRestore();
        return calls;
      };
      expect(await count(50)).toBe(await count(1));
    });

    it('writes the very same string to every recipient', async () => {
      const { service, connect } = node();
      const a = connect('a');
      const b = connect('b');
      await service.subscribe(a.conn, 'x.y');
      await service.subscribe(b.conn, 'x.*');
      await service.publish(null, 'x.y', { k: 'v' });
      expect(a.transport.frames).toHaveLength(0); // queued, not yet flushed
      a.conn.flush(1e9);
      b.conn.flush(1e9);
      expect(a.transport.frames).toEqual(b.transport.frames);
    });

    it('refuses invalid names, patterns, data and filters with invalid_message', async () => {
      const { service, connect } = node();
      const c = connect('carol');
      expect(await codeOf(service.subscribe(c.conn, 'a..b'))).toBe('invalid_message');
      expect(await codeOf(service.subscribe(c.conn, 'a.>.b'))).toBe('invalid_message');
      expect(await codeOf(service.subscribe(c.conn, ''))).toBe('invalid_message');
      expect(await codeOf(service.subscribe(c.conn, 'a', { f: {} }))).toBe('invalid_message');
      expect(await codeOf(service.subscribe(c.conn, 'a', { f: [] }))).toBe('invalid_message');
      expect(await codeOf(service.publish(null, 'a.*', {}))).toBe('invalid_message');
      expect(await codeOf(service.publish(null, 'a.>', {}))).toBe('invalid_message');
      expect(await codeOf(service.publish(null, 'a b', {}))).toBe('invalid_message');
      expect(await codeOf(service.publish(null, 'a', [] as never))).toBe('invalid_message');
      expect(await codeOf(service.publish(null, 'a', {}, 'x' as never))).toBe('invalid_message');
      expect(await codeOf(service.unsubscribe(c.conn, ''))).toBe('invalid_message');
      expect((await service.stats()).channel_subscriptions).toBe(0);
    });
  });

  describe('filters', () => {
    it('delivers only messages whose data or metadata match, any-of arrays included', async () => {
      const { service, connect } = node();
      const c = connect('carol');
      await service.subscribe(c.conn, 'orders.>', { priority: ['high', 'medium'], region: 'eu' });
      const send = (n: number, data: Record<string, unknown>, metadata?: Record<string, unknown>) =>
        service.publish(null, 'orders.new', { n, ...data }, metadata);
      await send(1, { priority: 'high', region: 'eu' });
      await send(2, { priority: 'low', region: 'eu' });
      await send(3, { priority: 'medium' }, { region: 'eu' });
      await send(4, { priority: 'medium' }); // region missing
      await send(5, { region: 'eu' }); // priority missing
      await send(6, { priority: 'high', region: 'us' }, { region: 'eu' }); // data wins
      await send(7, { priority: ['high'], region: 'eu' }); // arrays never equal
      expect(c.received().map((e) => e.data.data.n)).toEqual([1, 3]);
    });

    it('evaluates filters per subscription: one copy if any of the connection’s matching subscriptions passes', async () => {
      const { service, connect } = node();
      const c = connect('carol');
      await service.subscribe(c.conn, 'm.*', { kind: 'a' });
      await service.subscribe(c.conn, 'm.x', { kind: 'b' });
      await service.subscribe(c.conn, '*.x', { kind: ['a', 'b'] });
      await service.publish(null, 'm.x', { kind: 'a', n: 1 });
      await service.publish(null, 'm.x', { kind: 'b', n: 2 });
      await service.publish(null, 'm.x', { kind: 'c', n: 3 });
      await service.publish(null, 'm.y', { kind: 'b', n: 4 });
      await service.publish(null, 'm.y', { kind: 'a', n: 5 });
      expect(c.received().map((e) => e.data.data.n)).toEqual([1, 2, 5]);
    });

    it('subscribing again replaces the filters, without counting twice', async () => {
      const { service, connect } = node({ maxChannelsPerUser: 1 });
      const c = connect('carol');
      await service.subscribe(c.conn, 't', { k: 1 });
      await service.subscribe(c.conn, 't', { k: 2 });
      await service.publish(null, 't', { k: 1 });
      await service.publish(null, 't', { k: 2 });
      await service.subscribe(c.conn, 't');
      await service.publish(null, 't', { k: 3 });
      expect(c.received().map((e) => e.data.data.k)).toEqual([2, 3]);
      expect((await service.stats()).channel_subscriptions).toBe(1);
    });

    it('does not let prototype keys match', async () => {
      const { service, connect } = node();
      const c = connect('carol');
      await service.subscribe(c.conn, 'p', JSON.parse('{"constructor": "Object"}'));
      await service.subscribe(c.conn, 'q', { toString: 'x' });
      await service.publish(null, 'p', {});
      await service.publish(null, 'q', {});
      expect(c.received()).toEqual([]);
    });
  });

  describe('unsubscribe', () => {
    it('stops delivery and releases the backend topic', async () => {
      const { service, connect } = node();
      const c = connect('carol');
      await service.subscribe(c.conn, 'a.b');
      await service.subscribe(c.conn, '*.b');
      expect(service.heldTopics().sort()).toEqual(['chan:a', ALL_CHANNELS_TOPIC]);
      await expect(service.unsubscribe(c.conn, 'a.b')).resolves.toEqual({ channel: 'a.b', removed: true });
      await expect(service.unsubscribe(c.conn, 'a.b')).resolves.toEqual({ channel: 'a.b', removed: false });
      expect(service.heldTopics()).toEqual([ALL_CHANNELS_TOPIC]);
      await service.publish(null, 'a.b', { n: 1 });
      expect(c.received()).toHaveLength(1); // still via *.b
      await service.unsubscribe(c.conn, '*.b');
      await service.publish(null, 'a.b', { n: 2 });
      expect(c.received()).toEqual([]);
      expect(service.heldTopics()).toEqual([]);
      expect((await service.stats()).channel_subscriptions).toBe(0);
    });

    it('unsubscribeAll removes every subscription of the connection only', async () => {
      const { service, connect } = node({ maxChannelsPerUser: 3 });
      const c = connect('carol');
      const c2 = connect('carol');
      await service.subscribe(c.conn, 'a');
      await service.subscribe(c.conn, 'b.*');
      await service.subscribe(c2.conn, 'b.c');
      await expect(service.unsubscribeAll(c.conn)).resolves.toBe(2);
      await expect(service.unsubscribeAll(c.conn)).resolves.toBe(0);
      expect(service.heldTopics()).toEqual(['chan:b']);
      await service.publish(null, 'a', {});
      await service.publish(null, 'b.c', {});
      expect(c.received()).toEqual([]);
      expect(channelsOf(c2.received())).toEqual(['b.c']);
      // The user's quota is freed.
      await service.subscribe(c2.conn, 'x');
      await service.subscribe(c2.conn, 'y');
      expect(await codeOf(service.subscribe(c2.conn, 'z'))).toBe('limit_exceeded');
    });

    it('indexes nothing for a connection that closed meanwhile', async () => {
      const { service, connect, registry } = node();
      const c = connect('carol');
      c.conn.close(1000, 'bye');
      registry.remove(c.conn);
      await service.subscribe(c.conn, 'a');
      expect((await service.stats()).channel_subscriptions).toBe(0);
      expect(service.heldTopics()).toEqual([]);
    });

    it('refuses a connection that is not registered on this node', async () => {
      const { service, connect, registry } = node();
      const c = connect('carol');
      registry.remove(c.conn);
      await expect(service.subscribe(c.conn, 'a')).rejects.toThrow(/not registered/);
    });
  });

  describe('user.<id> channels', () => {
    it('lets a user subscribe to their own namespace only', async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      for (const p of ['user.alice.notifications', 'user.alice.*', 'user.alice.>', 'user.alice']) {
        await expect(service.subscribe(alice.conn, p)).resolves.toEqual({ channel: p });
      }
      for (const p of ['user.bob.notifications', 'user.bob.>', 'user.bob']) {
        expect(await codeOf(service.subscribe(alice.conn, p))).toBe('forbidden');
      }
    });

    it("narrows user.*.x, user.* and user.> to the subscriber's own namespace", async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      const bob = connect('bob');
      for (const p of ['user.*.alerts', 'user.>', 'user.*']) {
        await expect(service.subscribe(alice.conn, p)).resolves.toEqual({ channel: p });
      }
      await service.publish(null, 'user.bob.alerts', { n: 1 });
      await service.publish(null, 'user.alice.alerts', { n: 2 });
      await service.publish(null, 'user.alice', { n: 3 });
      await new Promise((r) => setTimeout(r, 20));
      expect(alice.received().map((e) => [e.data.channel, e.data.data.n])).toEqual([
        ['user.alice.alerts', 2],
        ['user.alice', 3],
      ]);
      expect(bob.received()).toEqual([]);
      await expect(service.unsubscribe(alice.conn, 'user.*.alerts')).resolves.toEqual({
        channel: 'user.*.alerts',
        removed: true,
      });
    });

    it('lets only that user or the server publish there', async () => {
      const { service, connect } = node();
      const bob = connect('bob');
      await service.subscribe(bob.conn, 'user.bob.notifications');
      expect(await codeOf(service.publish({ userId: 'alice' }, 'user.bob.notifications', {}))).toBe(
        'forbidden',
      );
      expect(await codeOf(service.publish({ userId: 'alice' }, 'user.bob', {}))).toBe('forbidden');
      await service.publish({ userId: 'bob' }, 'user.bob.notifications', { n: 1 });
      await service.publish(null, 'user.bob.notifications', { n: 2 });
      expect(bob.received().map((e) => [e.data.data.n, e.data.publisher_id])).toEqual([
        [1, 'bob'],
        [2, null],
      ]);
    });

    it('never delivers user.<other>.… to wildcard-first patterns of another user', async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      const bob = connect('bob');
      await service.subscribe(alice.conn, '>');
      await service.subscribe(alice.conn, '*.bob.notifications');
      await service.subscribe(alice.conn, '*.*.*');
      await service.subscribe(bob.conn, '>');
      await service.publish(null, 'user.bob.notifications', { secret: true });
      await service.publish(null, 'user.bob', { secret: true });
      await service.publish(null, 'team.bob.notifications', { secret: false });
      expect(channelsOf(alice.received())).toEqual(['team.bob.notifications']);
      expect(channelsOf(bob.received())).toEqual([
        'user.bob.notifications',
        'user.bob',
        'team.bob.notifications',
      ]);
    });

    it('holds one topic per local user for the user namespace', async () => {
      const { service, connect } = node();
      await service.subscribe(connect('alice').conn, 'user.alice.notifications');
      await service.subscribe(connect('bob').conn, 'user.bob.>');
      expect(service.heldTopics().sort()).toEqual(['chan:user.alice', 'chan:user.bob']);
    });
  });
});

import { Logger } from '@nestjs/common';
import { LocalBackend } from '../backends/local/local.backend';
import { ALL_CHANNELS_TOPIC, encodeChannelPayload } from './channel-bus';
import type { ChannelAuthorizer } from '../interfaces';
import { Hub, HubBackend, node, codeOf, channelsOf } from './channel-test-kit';

describe('ChannelService: private channels, limits, registry, nodes, robustness', () => {
  beforeAll(() => {
    Logger.overrideLogger(false);
  });
  afterAll(() => {
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']);
  });

  describe('private channels', () => {
    it('lets only the creator subscribe and publish by default', async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      const bob = connect('bob');
      await service.createChannel({ userId: 'alice' }, { name: 'secret.plans', private: true });
      expect(await codeOf(service.subscribe(bob.conn, 'secret.plans'))).toBe('forbidden');
      expect(await codeOf(service.publish({ userId: 'bob' }, 'secret.plans', {}))).toBe('forbidden');
      await service.subscribe(alice.conn, 'secret.plans');
      await service.publish({ userId: 'alice' }, 'secret.plans', { n: 1 });
      await service.publish(null, 'secret.plans', { n: 2 });
      expect(alice.received().map((e) => e.data.data.n)).toEqual([1, 2]);
      expect(bob.received()).toEqual([]);
    });

    it('never delivers a private channel to wildcard patterns', async () => {
      const { service, connect } = node();
      const alice = connect('alice');
      const bob = connect('bob');
      await service.createChannel({ userId: 'alice' }, { name: 'secret.plans', private: true });
      await service.subscribe(bob.conn, 'secret.*');
      await service.subscribe(bob.conn, '>');
      await service.subscribe(alice.conn, 'secret.>');
      await service.publish(null, 'secret.plans', {});
      await service.publish(null, 'secret.public', {});
      expect(channelsOf(bob.received())).toEqual(['secret.public']);
      expect(channelsOf(alice.received())).toEqual(['secret.public']);
    });

    it('refuses by default to make private a name someone else subscribes to or publishes on', async () => {
      const { service, connect } = node();
      const bob = connect('bob');
      const alice = connect('alice');
      await service.subscribe(bob.conn, 'alerts.fire');
      await service.publish(null, 'prices.btc', { p: 1 });
      await service.publish({ userId: 'bob' }, 'news.today', { n: 1 });
      await service.subscribe(bob.conn, 'wild.*'); // a pattern alone uses no name
      for (const name of ['alerts.fire', 'prices.btc', 'news.today']) {
        expect(await codeOf(service.createChannel({ userId: 'mallory' }, { name, private: true }))).toBe(
          'forbidden',
        );
      }
      // Public registration takes nothing from anyone; the server may do anything.
      await service.createChannel({ userId: 'mallory' }, { name: 'alerts.fire' });
      await service.createChannel(null, { name: 'prices.btc', private: true });
      // Names only the creator used, names never used, and a wildcard-covered name are fine.
      await service.subscribe(alice.conn, 'alice.own');
      await service.publish({ userId: 'alice' }, 'alice.own', {});
      await service.createChannel({ userId: 'alice' }, { name: 'alice.own', private: true });
      await service.createChannel({ userId: 'mallory' }, { name: 'wild.card', private: true });
      await service.createChannel({ userId: 'mallory' }, { name: 'never.used', private: true });
      // bob still gets what the server publishes on the name he subscribed to.
      await service.publish(null, 'alerts.fire', { n: 2 });
      expect(bob.received().filter((e) => e.data.channel === 'alerts.fire')).toHaveLength(1);
    });

    it('asks authorizeCreate, when the authorizer has it, with usedByOthers', async () => {
      const asked: Array<[string, string, boolean]> = [];
      const authorizer: ChannelAuthorizer = {
        authorize: (actor, c) => actor.userId === c.created_by,
        authorizeCreate: (actor, c, { usedByOthers }) => {
          asked.push([actor.userId, c.name, usedByOthers]);
          return actor.roles?.includes('admin') ?? false;
        },
      };
      const { service, connect } = node({}, { authorizer });
      await service.subscribe(connect('bob').conn, 'busy');
      await service.createChannel({ userId: 'root', roles: ['admin'] }, { name: 'busy', private: true });
      expect(await codeOf(service.createChannel({ userId: 'eve' }, { name: 'quiet', private: true }))).toBe(
        'forbidden',
      );
      expect(asked).toEqual([
        ['root', 'busy', true],
        ['eve', 'quiet', false],
      ]);
    });

    it('does not deliver a channel made private after an exact subscription', async () => {
      // An app that lets anyone make any name private (authorizeCreate): existing subscribers lose it.
      const authorizer: ChannelAuthorizer = {
        authorize: (actor, c) => actor.userId === c.created_by,
        authorizeCreate: () => true,
      };
      const { service, connect } = node({}, { authorizer });
      const bob = connect('bob');
      await service.subscribe(bob.conn, 'later.private');
      await service.publish(null, 'later.private', { n: 1 });
      await service.createChannel({ userId: 'alice' }, { name: 'later.private', private: true });
      await service.publish(null, 'later.private', { n: 2 });
      expect(bob.received().map((e) => e.data.data.n)).toEqual([1]);
    });

    it('consults a custom authorizer with the action', async () => {
      const calls: string[] = [];
      const authorizer: ChannelAuthorizer = {
        authorize: async (actor, channel, action) => {
          calls.push(`${actor.userId}:${action}:${channel.name}`);
          return actor.userId === 'bob' || channel.created_by === actor.userId;
        },
      };
      const { service, connect } = node({}, { authorizer });
      const bob = connect('bob');
      const eve = connect('eve');
      await service.createChannel({ userId: 'alice' }, { name: 'club', private: true });
      await service.subscribe(bob.conn, 'club');
      expect(await codeOf(service.subscribe(eve.conn, 'club'))).toBe('forbidden');
      await service.publish({ userId: 'bob' }, 'club', { hi: 1 });
      expect(calls).toEqual(['bob:subscribe:club', 'eve:subscribe:club', 'bob:publish:club']);
      expect(channelsOf(bob.received())).toEqual(['club']);
      // The server is never asked.
      await service.publish(null, 'club', {});
      expect(calls).toHaveLength(3);
    });

    it('does not honour an old grant after the channel is deleted and recreated by someone else', async () => {
      const authorizer: ChannelAuthorizer = {
        authorize: (actor, c) => actor.userId === c.created_by,
        authorizeCreate: () => true,
      };
      const { service, connect } = node({}, { authorizer });
      const alice = connect('alice');
      await service.createChannel({ userId: 'alice' }, { name: 'vault', private: true });
      await service.subscribe(alice.conn, 'vault');
      await service.deleteChannel({ userId: 'alice' }, 'vault');
      await service.createChannel({ userId: 'mallory' }, { name: 'vault', private: true });
      await service.publish({ userId: 'mallory' }, 'vault', {});
      expect(alice.received()).toEqual([]);
    });
  });

  describe('limits and feature toggle', () => {
    it('counts subscriptions across all connections of a user on this node', async () => {
      const { service, connect } = node({ maxChannelsPerUser: 3 });
      const a1 = connect('alice');
      const a2 = connect('alice');
      const bob = connect('bob');
      await service.subscribe(a1.conn, 'x');
      await service.subscribe(a1.conn, 'y.*');
      await service.subscribe(a2.conn, 'x');
      expect(await codeOf(service.subscribe(a2.conn, 'z'))).toBe('limit_exceeded');
      expect(await codeOf(service.subscribe(a1.conn, 'z'))).toBe('limit_exceeded');
      await service.subscribe(a1.conn, 'x', { f: 1 }); // same pattern again: no new slot
      await service.subscribe(bob.conn, 'z'); // other users are unaffected
      await service.unsubscribe(a1.conn, 'y.*');
      await expect(service.subscribe(a2.conn, 'z')).resolves.toEqual({ channel: 'z' });
    });

    it('caps the channels a user registers at max_channels_per_user (the server is not capped)', async () => {
      const { service } = node({ maxChannelsPerUser: 2 });
      await service.createChannel({ userId: 'alice' }, { name: 'a1' });
      await service.createChannel({ userId: 'alice' }, { name: 'a2', private: true });
      expect(await codeOf(service.createChannel({ userId: 'alice' }, { name: 'a3' }))).toBe('limit_exceeded');
      await service.createChannel({ userId: 'bob' }, { name: 'b1' });
      for (let i = 0; i < 5; i++) await service.createChannel(null, { name: `server${i}` });
      await service.deleteChannel({ userId: 'alice' }, 'a1');
      await expect(service.createChannel({ userId: 'alice' }, { name: 'a3' })).resolves.toMatchObject({
        name: 'a3',
      });
    });

    it('refuses everything with feature_disabled when channels are off', async () => {
      const { service, connect } = node({ enableChannels: false });
      const c = connect('carol');
      expect(await codeOf(service.subscribe(c.conn, 'a'))).toBe('feature_disabled');
      expect(await codeOf(service.unsubscribe(c.conn, 'a'))).toBe('feature_disabled');
      expect(await codeOf(service.publish(null, 'a', {}))).toBe('feature_disabled');
      expect(await codeOf(service.createChannel(null, { name: 'a' }))).toBe('feature_disabled');
      expect(await codeOf(service.listChannels())).toBe('feature_disabled');
      expect(await codeOf(service.findByPattern('a.*'))).toBe('feature_disabled');
      await expect(service.unsubscribeAll(c.conn)).resolves.toBe(0);
    });
  });

  describe('registry', () => {
    it('creates, gets, lists, finds by pattern and deletes channels', async () => {
      const { service } = node();
      const news = await service.createChannel(
        { userId: 'alice' },
        { name: 'news.world', description: 'World news' },
      );
      expect(news).toEqual({
        name: 'news.world',
        private: false,
        created_by: 'alice',
        created_at: expect.any(String),
        description: 'World news',
      });
      await service.createChannel(null, { name: 'news.sports' });
      await service.createChannel({ userId: 'bob' }, { name: 'news.sports.tennis', private: true });
      await service.createChannel({ userId: 'bob' }, { name: 'user.bob.inbox' });
      expect(await service.getChannel('news.world')).toEqual(news);
      expect(await service.getChannel('nope')).toBeNull();
      expect((await service.listChannels()).map((c) => c.name)).toEqual([
        'news.sports',
        'news.sports.tennis',
        'news.world',
        'user.bob.inbox',
      ]);
      expect((await service.findByPattern('news.*')).map((c) => c.name)).toEqual([
        'news.sports',
        'news.world',
      ]);
      expect((await service.findByPattern('news.>')).map((c) => c.name)).toEqual([
        'news.sports',
        'news.sports.tennis',
        'news.world',
      ]);
      // A viewer sees neither others' private channels nor others' user namespace.
      expect((await service.findByPattern('>', { userId: 'alice' })).map((c) => c.name)).toEqual([
        'news.sports',
        'news.world',
      ]);
      expect((await service.listChannels({ userId: 'bob' })).map((c) => c.name)).toHaveLength(4);
      expect(await codeOf(service.findByPattern('news.>.x'))).toBe('invalid_message');

      expect(await codeOf(service.deleteChannel({ userId: 'bob' }, 'news.world'))).toBe('forbidden');
      await service.deleteChannel({ userId: 'alice' }, 'news.world');
      await service.deleteChannel(null, 'news.sports');
      expect(await codeOf(service.deleteChannel(null, 'news.world'))).toBe('channel_not_found');
      expect(await service.getChannel('news.world')).toBeNull();
    });

    it('validates new channels', async () => {
      const { service } = node();
      await service.createChannel(null, { name: 'dup' });
      expect(await codeOf(service.createChannel(null, { name: 'dup' }))).toBe('invalid_message');
      expect(await codeOf(service.createChannel(null, { name: 'a.*' }))).toBe('invalid_message');
      expect(await codeOf(service.createChannel(null, { name: 'a', private: 'yes' as never }))).toBe(
        'invalid_message',
      );
      expect(await codeOf(service.createChannel(null, { name: 'a', description: 'x'.repeat(2001) }))).toBe(
        'invalid_message',
      );
      expect(await codeOf(service.createChannel({ userId: 'alice' }, { name: 'user.bob.x' }))).toBe(
        'forbidden',
      );
      await expect(service.createChannel(null, { name: 'user.bob.x', private: true })).resolves.toMatchObject(
        {
          created_by: null,
        },
      );
    });

    it('reports stats', async () => {
      const { service, connect } = node();
      await service.createChannel(null, { name: 'a' });
      await service.createChannel(null, { name: 'b' });
      const c = connect('carol');
      const d = connect('dave');
      await service.subscribe(c.conn, 'a');
      await service.subscribe(c.conn, 'x.*');
      await service.subscribe(d.conn, 'x.*');
      expect(await service.stats()).toEqual({
        total_channels: 3,
        channel_patterns: 2,
        channel_subscriptions: 3,
      });
    });
  });

  describe('across nodes', () => {
    it('sends two bus payloads per publish and holds topics only for local needs', async () => {
      const hub = new Hub();
      const a = node({}, { backend: new HubBackend(hub) });
      const b = node({}, { backend: new HubBackend(hub) });
      const c = node({}, { backend: new HubBackend(hub) });
      const alice = a.connect('alice');
      const bob = b.connect('bob');
      const bob2 = b.connect('bob');
      await a.service.subscribe(alice.conn, 'orders.*');
      await a.service.subscribe(alice.conn, 'orders.eu');
      await b.service.subscribe(bob.conn, '*.eu');
      await b.service.subscribe(bob2.conn, 'orders.>');
      await b.service.subscribe(bob2.conn, '>');
      expect((a.backend as HubBackend).topics()).toEqual(['chan:orders']);
      expect((b.backend as HubBackend).topics().sort()).toEqual(['chan:orders', ALL_CHANNELS_TOPIC]);
      expect((c.backend as HubBackend).topics()).toEqual([]);

      await c.service.publish(null, 'orders.eu', { n: 1 });
      await a.service.publish({ userId: 'alice' }, 'orders.us', { n: 2 });
      await b.service.publish(null, 'stock.eu', { n: 3 });
      expect(hub.published.map((p) => p.topic)).toEqual([
        'chan:orders',
        ALL_CHANNELS_TOPIC,
        'chan:orders',
        ALL_CHANNELS_TOPIC,
        'chan:stock',
        ALL_CHANNELS_TOPIC,
      ]);
      expect(alice.received().map((e) => e.data.data.n)).toEqual([1, 2]);
      expect(bob.received().map((e) => e.data.data.n)).toEqual([1, 3]);
      expect(bob2.received().map((e) => e.data.data.n)).toEqual([1, 2, 3]);
    });

    it('routes user.<id> channels to the nodes of that user only', async () => {
      const hub = new Hub();
      const a = node({}, { backend: new HubBackend(hub) });
      const b = node({}, { backend: new HubBackend(hub) });
      const alice = a.connect('alice');
      const bob = b.connect('bob');
      await a.service.subscribe(alice.conn, 'user.alice.notifications');
      await b.service.subscribe(bob.conn, 'user.bob.>');
      expect((a.backend as HubBackend).topics()).toEqual(['chan:user.alice']);
      await a.service.publish(null, 'user.bob.notifications', { n: 1 });
      expect(bob.received().map((e) => e.data.data.n)).toEqual([1]);
      expect(alice.received()).toEqual([]);
    });

    it('keeps private channel grants across nodes', async () => {
      const hub = new Hub();
      // Both nodes must see the same registry: share one store instance.
      const a = node({}, { backend: new HubBackend(hub) });
      const store = (a.service as unknown as { store: unknown }).store;
      const b = node({}, { backend: new HubBackend(hub) });
      (b.service as unknown as { store: unknown }).store = store;
      const alice = b.connect('alice');
      const bob = b.connect('bob');
      await a.service.createChannel({ userId: 'alice' }, { name: 'vault', private: true });
      await b.service.subscribe(alice.conn, 'vault');
      await b.service.subscribe(bob.conn, '>');
      await a.service.publish({ userId: 'alice' }, 'vault', { n: 1 });
      expect(channelsOf(alice.received())).toEqual(['vault']);
      expect(bob.received()).toEqual([]);
    });
  });

  describe('robustness', () => {
    it('reports backend_unavailable and rolls back when the backend refuses a subscription', async () => {
      const backend = new LocalBackend();
      const { service, connect } = node({ maxChannelsPerUser: 1 }, { backend });
      const c = connect('carol');
      const spy = jest.spyOn(backend, 'subscribe').mockRejectedValueOnce(new Error('down'));
      expect(await codeOf(service.subscribe(c.conn, 'a'))).toBe('backend_unavailable');
      expect((await service.stats()).channel_subscriptions).toBe(0);
      expect(service.heldTopics()).toEqual([]);
      spy.mockRestore();
      await expect(service.subscribe(c.conn, 'a')).resolves.toEqual({ channel: 'a' });
      await service.publish(null, 'a', {});
      expect(c.received()).toHaveLength(1);
    });

    it('reports backend_unavailable when publishing fails', async () => {
      const backend = new LocalBackend();
      const { service } = node({}, { backend });
      jest.spyOn(backend, 'publish').mockRejectedValue(new Error('down'));
      expect(await codeOf(service.publish(null, 'a', {}))).toBe('backend_unavailable');
    });

    it('serializes topic changes: racing subscribe and unsubscribe end consistent', async () => {
      const backend = new LocalBackend();
      const { service, connect } = node({}, { backend });
      const c = connect('carol');
      const sub = jest.spyOn(backend, 'subscribe');
      const unsub = jest.spyOn(backend, 'unsubscribe');
      // Unsubscribed before the backend subscription ran: nothing is held.
      const [, removed] = await Promise.all([
        service.subscribe(c.conn, 'a.*'),
        service.unsubscribe(c.conn, 'a.*'),
      ]);
      expect(removed.removed).toBe(true);
      expect(service.heldTopics()).toEqual([]);
      expect(sub.mock.calls.length).toBe(unsub.mock.calls.length);
      // Held topic released and re-acquired at once: still held, still delivering.
      await service.subscribe(c.conn, 'a.*');
      await Promise.all([service.unsubscribe(c.conn, 'a.*'), service.subscribe(c.conn, 'a.*')]);
      expect(service.heldTopics()).toEqual(['chan:a']);
      expect(sub.mock.calls.length - unsub.mock.calls.length).toBe(1);
      await service.publish(null, 'a.y', {});
      expect(c.received()).toHaveLength(1);
    });

    it('drops malformed bus payloads without throwing', async () => {
      const backend = new LocalBackend();
      const { service, connect } = node({}, { backend });
      const c = connect('carol');
      await service.subscribe(c.conn, 'a', { k: 1 });
      await backend.publish('chan:a', 'not a channel payload');
      await backend.publish('chan:a', '#{broken\n{}');
      await backend.publish('chan:a', '#{"c":"a"}\n{}');
      // Filters need the data: an unreadable envelope is not delivered to filtered subscriptions.
      await backend.publish('chan:a', encodeChannelPayload({ i: 'x1', c: 'a' }, 'not json'));
      expect(c.transport.frames).toHaveLength(0);
      c.conn.flush(1e9);
      expect(c.transport.frames).toHaveLength(0);
      await service.publish(null, 'a', { k: 1 });
      expect(c.received()).toHaveLength(1);
    });
  });
});

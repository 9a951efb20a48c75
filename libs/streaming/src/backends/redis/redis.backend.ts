import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { StreamingOptions } from '../../config/streaming-options.interface';
import type { StreamingBackend } from '../../interfaces';
import {
  ConnectionSettings,
  commandConnectionOptions,
  createCluster,
  createSentinel,
  createStandalone,
  reconnectBackoff,
  subscriberConnectionOptions,
} from './redis-connection';
import { StreamingConfigError } from '../../config/streaming-config.error';
import { RedisReadState } from './redis-read-state';
import type { RedisClient, RedisConnections } from './redis-core';

export type { RedisClient } from './redis-core';

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions {
  /**
   * `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS).
   * One URL: a standalone server, or any node of a Redis Cluster (`connect()`
   * asks the server, and switches to cluster connections). Several: Redis
   * Cluster startup nodes.
   * Default `redis://127.0.0.1:6379`. Ignored when `client` or `sentinels` is given.
   */
  urls?: string[];
  /** ACL user name, used when a URL carries none. */
  username?: string;
  /** Password, used when a URL carries none. */
  password?: string;
  /** An existing connection for commands. The backend never closes it. */
  client?: RedisClient;
  /** An existing connection for pub/sub (never closed). Default: a duplicate of `client`, closed by `close()`. */
  subscriber?: RedisClient;
  /** Prefix of every key and channel. Default `fs:`. */
  keyPrefix?: string;
  /** Treat even a single URL as a Redis Cluster startup node. */
  cluster?: boolean;
  /** Sentinels of a sentinel-managed master (instead of `urls`). */
  sentinels?: { host: string; port: number }[];
  /** Master name for `sentinels`. Default `mymaster`. */
  sentinelName?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** TLS to the master and the sentinels (sentinel mode only; URLs say it with rediss://). */
  sentinelTls?: boolean;
  /** A command with no reply after this long fails with `backend_unavailable`. Default 5000 ms. */
  commandTimeoutMs?: number;
  /** TCP connect timeout, and how long `connect()` waits. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Cap of the reconnection backoff. Default 2000 ms. */
  maxReconnectDelayMs?: number;
  /** `CLIENT SETNAME` of the created connections (the subscriber gets a `:sub` suffix). */
  connectionName?: string;
  /** Extra ioredis options for the connections the backend creates. */
  redisOptions?: Partial<RedisOptions>;
  /** Extra ioredis Cluster options. */
  clusterOptions?: Partial<ClusterOptions>;
  /** Told about connection errors of created connections and exceptions thrown by topic handlers. */
  onError?: (err: unknown) => void;
  /**
   * Pub/sub flavour: `auto` (default) uses sharded pub/sub (SPUBLISH /
   * SSUBSCRIBE, Redis 7) on a Redis Cluster and classic PUBLISH / SUBSCRIBE on
   * a single server; `on` uses sharded pub/sub on a single Redis 7 too; `off`
   * uses classic pub/sub everywhere (Redis 6 clusters, or while nodes of an
   * older version still run). Every node of a deployment must use the same.
   * A caller's `subscriber` Cluster needs `shardedSubscribers: true` for it.
   */
  shardedPubSub?: RedisShardedPubSub;
  /**
   * Replicas an appended message must reach (Redis WAIT) before it is
   * acknowledged and published: at most the replicas the cluster lists for the
   * room's master and has not marked failed (on a single server: those
   * online). Default 0 (acknowledged once the master has it).
   */
  waitReplicas?: number;
  /** How long an append waits for `waitReplicas`; fewer in time fail with `backend_unavailable`. Default 1000 ms. */
  waitTimeoutMs?: number;
}

/** See {@link RedisBackendOptions.shardedPubSub}. */
export type RedisShardedPubSub = 'auto' | 'on' | 'off';

/** What {@link RedisBackend.fromOptions} reads from the module options. */
export type RedisStreamingOptions = Pick<
  StreamingOptions,
  'backendUrls' | 'backendUsername' | 'backendPassword'
> &
  Partial<Pick<StreamingOptions, 'nodeId' | 'redisShardedPubsub' | 'redisWaitReplicas' | 'redisWaitTimeout'>>;

/**
 * The Redis backend: rooms, history, presence, counters and the node registry
 * in Redis, fan-out through Redis pub/sub, so that any number of nodes share
 * them. Works with a standalone server, a sentinel-managed master or a Redis
 * Cluster (see redis-keys.ts for the hash-tagged key layout; redis-codec.ts
 * for the value layouts; scripts/ for the Lua scripts).
 *
 * The class is the top of a stack of layers, one per port of the backend
 * contract, each in its own file and using only what is below it:
 * - redis-core.ts: the connections, key names, `exec` / `run` and the mapping
 *   of connection failures to `backend_unavailable`;
 * - redis-nodes.ts: NodeDirectory and the counters;
 * - redis-presence.ts: PresenceStore (presence, connection directory and
 *   counts, expiring sets);
 * - redis-rooms.ts: RoomStore (rooms, members, restrictions, invitations,
 *   moderation log), with the ordering of its multi-slot operations;
 * - redis-broker.ts: Broker (pub/sub and the message log), with the ordering
 *   of a room's messages;
 * - redis-read-state.ts: ReadStateStore (a hash per room, max by script);
 * - this file: building the connections from the options, and the lifecycle.
 *
 * Failures to reach Redis reject quickly with `StreamingError('backend_unavailable')`:
 * commands are never queued while disconnected, a command without a reply
 * fails after `commandTimeoutMs`, and reconnection is automatic (capped
 * backoff), with pub/sub subscriptions restored after a reconnect.
 */
export class RedisBackend extends RedisReadState implements StreamingBackend {
  readonly kind = 'redis';

  /** The backend `StreamingModule` builds for `backend: redis`. */
  static fromOptions(options: RedisStreamingOptions, extra: RedisBackendOptions = {}): RedisBackend {
    return new RedisBackend({
      urls: options.backendUrls.length > 0 ? options.backendUrls : undefined,
      username: options.backendUsername || undefined,
      password: options.backendPassword || undefined,
      connectionName: options.nodeId ? `nest-streaming:${options.nodeId}` : undefined,
      shardedPubSub: options.redisShardedPubsub,
      waitReplicas: options.redisWaitReplicas,
      waitTimeoutMs: options.redisWaitTimeout === undefined ? undefined : options.redisWaitTimeout * 1000,
      ...extra,
    });
  }

  private readonly shardedMode: RedisShardedPubSub;

  constructor(options: RedisBackendOptions = {}) {
    super(openConnections(options));
    this.shardedMode = options.shardedPubSub ?? 'auto';
  }

  // ------------------------------------------------------------ lifecycle

  async connect(): Promise<void> {
    try {
      await Promise.all([this.ensureReady(this.client), this.ensureReady(this.subscriber)]);
      const server = await this.inspectServer();
      if (server.cluster && !this.client.isCluster && this.clusterFallback) await this.becomeCluster();
      this.clusterFallback = undefined;
      this.choosePubSub(server.version);
    } catch (err) {
      // Give up this attempt: stop the reconnection loops of our own connections.
      if (this.ownsClient) this.client.disconnect();
      if (this.ownsSubscriber) this.subscriber.disconnect();
      throw err instanceof StreamingConfigError ? err : this.unavailable(err);
    }
    this.listen();
    this.resubscribe();
  }

  /** The server's major version and whether it runs in cluster mode (INFO; unknown: 0 and false). */
  private async inspectServer(): Promise<{ version: number; cluster: boolean }> {
    let info: string;
    try {
      info = await this.client.info();
    } catch {
      return { version: 0, cluster: this.client.isCluster };
    }
    const version = Number(/^redis_version:(\d+)/m.exec(info)?.[1] ?? 0);
    return { version, cluster: /^cluster_enabled:1/m.test(info) };
  }

  /** The one URL is a cluster node: carry on with Cluster connections built from it. */
  private async becomeCluster(): Promise<void> {
    const { client, subscriber } = this.clusterFallback!();
    const old = [this.client, this.subscriber];
    this.client = client;
    this.subscriber = subscriber;
    this.watchErrors();
    old.forEach((c) => {
      c.removeAllListeners('error');
      c.on('error', () => undefined);
      c.disconnect();
    });
    await Promise.all([this.ensureReady(this.client), this.ensureReady(this.subscriber)]);
  }

  private choosePubSub(version: number): void {
    const cluster = this.client.isCluster && this.subscriber.isCluster;
    let sharded = this.shardedMode === 'on' || (this.shardedMode === 'auto' && cluster && version >= 7);
    if (this.shardedMode === 'on' && version > 0 && version < 7) {
      throw new StreamingConfigError(
        `redisShardedPubsub (redis_sharded_pubsub, FORGE_STREAMING_REDIS_SHARDED_PUBSUB) = "on": sharded pub/sub needs Redis 7 or later; this server is Redis ${version}`,
      );
    }
    if (sharded && this.subscriber.isCluster && !(this.subscriber as Cluster).options.shardedSubscribers) {
      const problem =
        'redisShardedPubsub (redis_sharded_pubsub, FORGE_STREAMING_REDIS_SHARDED_PUBSUB): sharded pub/sub on a ' +
        'Redis Cluster needs a subscriber Cluster created with { shardedSubscribers: true }';
      if (this.shardedMode === 'on') throw new StreamingConfigError(problem);
      // auto: classic pub/sub, as every node given such a subscriber will do.
      this.onError(new Error(`${problem}; using classic pub/sub`));
      sharded = false;
    }
    this.usePubSub(sharded);
  }

  private async ensureReady(c: RedisClient): Promise<void> {
    if (c.status === 'ready') return;
    if (c.status === 'wait' || c.status === 'end') {
      await c.connect();
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        c.off('ready', onReady);
        c.off('end', onEnd);
        if (err) reject(err);
        else resolve();
      };
      const onReady = (): void => done();
      const onEnd = (): void => done(new Error('connection ended'));
      const timer = setTimeout(
        () => done(new Error(`not ready after ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      c.once('ready', onReady);
      c.once('end', onEnd);
    });
  }

  async close(): Promise<void> {
    const channels = this.stopListening();
    const tasks: Promise<void>[] = [];
    if (this.ownsSubscriber) tasks.push(shutdown(this.subscriber));
    else if (channels.length > 0 && this.subscriber.status === 'ready') {
      // A caller's subscriber stays open: just drop our channels from it.
      tasks.push(this.unsubscribeChannels(this.subscriber, channels).catch((err) => this.onError(err)));
    }
    if (this.ownsClient) tasks.push(shutdown(this.client));
    await Promise.all(tasks);
  }

  async ping(): Promise<void> {
    await this.exec((c) => c.ping());
  }

  /**
   * "Acknowledged means kept" needs the append-only file with `appendfsync`
   * `everysec` (at most a second lost on power loss) or `always`. Null when
   * so, or when the server does not let us read its configuration.
   */
  async durabilityWarning(): Promise<string | null> {
    let config: string[];
    try {
      config = (await this.exec((c) => c.call('CONFIG', 'GET', 'append*'))) as string[];
    } catch {
      return null; // CONFIG disabled (managed Redis): nothing to say
    }
    const value = (key: string): string | undefined => config[config.indexOf(key) + 1];
    if (value('appendonly') !== 'yes') {
      return 'Redis runs without AOF (appendonly no): acknowledged messages are lost if Redis restarts; set appendonly yes with appendfsync everysec or always';
    }
    if (value('appendfsync') === 'no') {
      return 'Redis AOF has appendfsync no: acknowledged messages can be lost on power loss; use everysec or always';
    }
    return null;
  }
}

/** The connections of a backend: the caller's, or created from the options. */
function openConnections(options: RedisBackendOptions): RedisConnections {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const settings: ConnectionSettings = {
    username: options.username,
    password: options.password,
    commandTimeoutMs: options.commandTimeoutMs ?? 5000,
    connectTimeoutMs,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? 2000,
    connectionName: options.connectionName,
    redisOptions: options.redisOptions,
    clusterOptions: options.clusterOptions,
  };
  const sharded = (options.shardedPubSub ?? 'auto') !== 'off';

  let client: RedisClient;
  let ownsClient: boolean;
  if (options.client) {
    client = options.client;
    ownsClient = false;
  } else {
    client = create(options, settings, commandConnectionOptions(settings));
    ownsClient = true;
  }

  let subscriber: RedisClient;
  let ownsSubscriber: boolean;
  if (options.subscriber) {
    subscriber = options.subscriber;
    ownsSubscriber = false;
  } else if (options.client) {
    subscriber = duplicate(options.client, settings, sharded);
    ownsSubscriber = true;
  } else {
    subscriber = create(options, settings, subscriberConnectionOptions(settings), sharded);
    ownsSubscriber = true;
  }

  // One URL, both connections ours: if it turns out to be a cluster node, connect() switches to these.
  const urls = options.urls ?? [];
  const single = !options.client && !options.subscriber && !options.sentinels?.length && !options.cluster;
  const clusterFallback =
    single && urls.length <= 1
      ? () => {
          const startup = urls.length === 1 ? urls : ['redis://127.0.0.1:6379'];
          return {
            client: createCluster(startup, settings, commandConnectionOptions(settings)),
            subscriber: createCluster(startup, settings, subscriberConnectionOptions(settings), sharded),
          };
        }
      : undefined;

  return {
    keyPrefix: options.keyPrefix ?? 'fs:',
    client,
    subscriber,
    ownsClient,
    ownsSubscriber,
    connectTimeoutMs,
    onError: options.onError ?? (() => undefined),
    durability: {
      waitReplicas: Math.max(0, Math.floor(options.waitReplicas ?? 0)),
      waitTimeoutMs: options.waitTimeoutMs ?? 1000,
    },
    clusterFallback,
  };
}

function create(
  options: RedisBackendOptions,
  settings: ConnectionSettings,
  base: RedisOptions,
  shardedSubscribers = false,
): RedisClient {
  if (options.sentinels && options.sentinels.length > 0) {
    return createSentinel(
      options.sentinels,
      options.sentinelName ?? 'mymaster',
      {
        ...settings,
        sentinelUsername: options.sentinelUsername,
        sentinelPassword: options.sentinelPassword,
        tls: options.sentinelTls,
      },
      base,
    );
  }
  const urls = options.urls && options.urls.length > 0 ? options.urls : ['redis://127.0.0.1:6379'];
  if (urls.length > 1 || options.cluster) return createCluster(urls, settings, base, shardedSubscribers);
  return createStandalone(urls[0], settings, base);
}

function duplicate(
  client: RedisClient,
  settings: ConnectionSettings,
  shardedSubscribers: boolean,
): RedisClient {
  if (client.isCluster) {
    return (client as Cluster).duplicate([], {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectBackoff(settings.maxReconnectDelayMs),
      shardedSubscribers,
    });
  }
  const { connectionName: _name, ...overrides } = subscriberConnectionOptions({
    ...settings,
    redisOptions: undefined,
  });
  return (client as Redis).duplicate(overrides);
}

/** QUIT a connection we created (DISCONNECT when that fails or takes over a second). */
async function shutdown(c: RedisClient): Promise<void> {
  if (c.status === 'end') return;
  if (c.status !== 'ready') {
    c.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      c.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('QUIT timed out')), 1000);
      }),
    ]);
  } catch {
    c.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

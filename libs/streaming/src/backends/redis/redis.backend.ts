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
import { RedisReadState } from './redis-read-state';
import type { RedisClient, RedisConnections } from './redis-core';

export type { RedisClient } from './redis-core';

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions {
  /**
   * `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS).
   * One URL: a standalone server. Several: Redis Cluster startup nodes.
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
}

/** What {@link RedisBackend.fromOptions} reads from the module options. */
export type RedisStreamingOptions = Pick<
  StreamingOptions,
  'backendUrls' | 'backendUsername' | 'backendPassword'
> &
  Partial<Pick<StreamingOptions, 'nodeId'>>;

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
      ...extra,
    });
  }

  constructor(options: RedisBackendOptions = {}) {
    super(openConnections(options));
  }

  // ------------------------------------------------------------ lifecycle

  async connect(): Promise<void> {
    this.listen();
    try {
      await Promise.all([this.ensureReady(this.client), this.ensureReady(this.subscriber)]);
    } catch (err) {
      // Give up this attempt: stop the reconnection loops of our own connections.
      if (this.ownsClient) this.client.disconnect();
      if (this.ownsSubscriber) this.subscriber.disconnect();
      throw this.unavailable(err);
    }
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
      tasks.push(
        this.subscriber.unsubscribe(...channels).then(
          () => undefined,
          (err) => this.onError(err),
        ),
      );
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
    subscriber = duplicate(options.client, settings);
    ownsSubscriber = true;
  } else {
    subscriber = create(options, settings, subscriberConnectionOptions(settings));
    ownsSubscriber = true;
  }

  return {
    keyPrefix: options.keyPrefix ?? 'fs:',
    client,
    subscriber,
    ownsClient,
    ownsSubscriber,
    connectTimeoutMs,
    onError: options.onError ?? (() => undefined),
  };
}

function create(options: RedisBackendOptions, settings: ConnectionSettings, base: RedisOptions): RedisClient {
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
  if (urls.length > 1 || options.cluster) return createCluster(urls, settings, base);
  return createStandalone(urls[0], settings, base);
}

function duplicate(client: RedisClient, settings: ConnectionSettings): RedisClient {
  if (client.isCluster) {
    return (client as Cluster).duplicate([], {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectBackoff(settings.maxReconnectDelayMs),
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

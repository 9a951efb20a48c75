/**
 * Building ioredis connections for the Redis backend from URLs, sentinels or
 * an existing client, with fail-fast settings: no offline queue, one retry per
 * command, a command timeout, and endless reconnection with capped backoff.
 */
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { loadOptionalPackage } from '../../common/optional-package';

/** The ioredis module, loaded when a Redis connection is first built. */
const ioredis = (): typeof import('ioredis') =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loadOptionalPackage('ioredis', 'Redis backend', () => require('ioredis') as typeof import('ioredis'));

/** One parsed `redis://` / `rediss://` URL. */
export interface ParsedRedisUrl {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  db?: number;
}

/** Parse `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS). */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      `invalid Redis URL "${redactUrl(url)}": expected redis://host:port or rediss://host:port`,
    );
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`invalid Redis URL "${redactUrl(url)}": the scheme must be redis:// or rediss://`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = u.port ? Number(u.port) : 6379;
  const parsed: ParsedRedisUrl = { host, port, tls: u.protocol === 'rediss:' };
  if (u.username) parsed.username = decodeURIComponent(u.username);
  if (u.password) parsed.password = decodeURIComponent(u.password);
  const dbPath = u.pathname.replace(/^\//, '');
  if (dbPath !== '') {
    const db = Number(dbPath);
    if (!Number.isInteger(db) || db < 0) {
      throw new Error(`invalid Redis URL "${redactUrl(url)}": the path must be a database number`);
    }
    parsed.db = db;
  }
  return parsed;
}

/** The URL with its password replaced by `***` (for messages and logs). */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** Settings shared by every connection the backend creates. */
export interface ConnectionSettings {
  username?: string;
  password?: string;
  /** Per-command timeout (ms). */
  commandTimeoutMs: number;
  /** TCP connect timeout (ms). */
  connectTimeoutMs: number;
  /** Upper bound of the reconnection backoff (ms). */
  maxReconnectDelayMs: number;
  connectionName?: string;
  /** Extra ioredis options for created connections (they win over the defaults above). */
  redisOptions?: Partial<RedisOptions>;
  /** Extra ioredis Cluster options. */
  clusterOptions?: Partial<ClusterOptions>;
}

/** Capped exponential backoff with jitter; never gives up. */
export const reconnectBackoff =
  (maxDelayMs: number) =>
  (times: number): number =>
    Math.min(50 * 2 ** Math.min(times - 1, 10), maxDelayMs) + Math.floor(Math.random() * 50);

/** Options of a connection used for commands (fail fast, reconnect forever). */
export function commandConnectionOptions(s: ConnectionSettings): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResubscribe: true,
    commandTimeout: s.commandTimeoutMs,
    connectTimeout: s.connectTimeoutMs,
    retryStrategy: reconnectBackoff(s.maxReconnectDelayMs),
    ...(s.connectionName ? { connectionName: s.connectionName } : {}),
    ...s.redisOptions,
  };
}

/** Options of the subscriber connection: like commands, and channels are resubscribed after a reconnect. */
export function subscriberConnectionOptions(s: ConnectionSettings): RedisOptions {
  return {
    ...commandConnectionOptions(s),
    autoResubscribe: true,
    ...(s.connectionName ? { connectionName: `${s.connectionName}:sub` } : {}),
  };
}

function credentials(
  url: ParsedRedisUrl,
  s: ConnectionSettings,
): Pick<RedisOptions, 'username' | 'password'> {
  const username = url.username ?? s.username;
  const password = url.password ?? s.password;
  return {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
  };
}

/** A standalone connection to one URL. */
export function createStandalone(url: string, s: ConnectionSettings, base: RedisOptions): Redis {
  const p = parseRedisUrl(url);
  return new (ioredis().Redis)({
    host: p.host,
    port: p.port,
    ...(p.db !== undefined ? { db: p.db } : {}),
    ...(p.tls ? { tls: { servername: p.host } } : {}),
    ...credentials(p, s),
    ...base,
  });
}

/**
 * A cluster client from several startup URLs (TLS and credentials from the
 * first URL). `shardedSubscribers`: one more connection per master, made when
 * a shard channel of that master is first subscribed (SSUBSCRIBE).
 */
export function createCluster(
  urls: string[],
  s: ConnectionSettings,
  base: RedisOptions,
  shardedSubscribers = false,
): Cluster {
  const parsed = urls.map(parseRedisUrl);
  const first = parsed[0];
  const nodes: ClusterNode[] = parsed.map((p) => ({ host: p.host, port: p.port }));
  const { lazyConnect: _lazy, enableOfflineQueue: _queue, retryStrategy, ...redisOptions } = base;
  return new (ioredis().Cluster)(nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: retryStrategy,
    shardedSubscribers,
    redisOptions: {
      ...redisOptions,
      ...credentials(first, s),
      ...(first.tls ? { tls: {} } : {}),
    },
    ...s.clusterOptions,
  });
}

/** Sentinel-managed master. */
export function createSentinel(
  sentinels: { host: string; port: number }[],
  name: string,
  s: ConnectionSettings & { sentinelPassword?: string; sentinelUsername?: string; tls?: boolean },
  base: RedisOptions,
): Redis {
  return new (ioredis().Redis)({
    sentinels,
    name,
    ...(s.sentinelUsername ? { sentinelUsername: s.sentinelUsername } : {}),
    ...(s.sentinelPassword ? { sentinelPassword: s.sentinelPassword } : {}),
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
    ...(s.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    ...base,
  });
}

import type { Cluster, Redis } from 'ioredis';
import { StreamingError } from '../../protocol/streaming-error';
import { RedisKeys } from './redis-keys';
import { LuaScript, runScript } from './scripts/lua-script';

/** A standalone / sentinel connection or a cluster client. */
export type RedisClient = Redis | Cluster;

/** The connections a Redis backend runs on, and who closes them (built by redis.backend.ts). */
export interface RedisConnections {
  /** Prefix of every key and channel. */
  keyPrefix: string;
  /** Commands and scripts. */
  client: RedisClient;
  /** Pub/sub only. */
  subscriber: RedisClient;
  /** Whether the backend created `client` (and so handles its errors and closes it). */
  ownsClient: boolean;
  /** Whether the backend created `subscriber`. */
  ownsSubscriber: boolean;
  /** How long `connect()` waits for a connection to be ready. */
  connectTimeoutMs: number;
  /** Told about connection errors of created connections and exceptions thrown by topic handlers. */
  onError: (err: unknown) => void;
  /** Replicas an appended message must reach before it is acknowledged (0: none), and how long to wait. */
  durability: Durability;
  /**
   * Cluster connections to use instead of `client` and `subscriber` when
   * `connect()` finds that the one URL they were built from is a Redis Cluster
   * node (set only when the backend created both from a single URL).
   */
  clusterFallback?: () => { client: RedisClient; subscriber: RedisClient };
}

/** See {@link RedisConnections.durability}. */
export interface Durability {
  waitReplicas: number;
  waitTimeoutMs: number;
}

/** The same connection error reported at most once per this many ms (a failover repeats them). */
const ERROR_REPORT_INTERVAL_MS = 1000;

/** Reply errors that mean "the server cannot serve now", not "the command is wrong". */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|NOREPLICAS|MISCONF|OOM|NOAUTH|WRONGPASS|NOPERM)\b/;

/** The largest count handed to a script. */
export const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** A finite non-negative integer for Lua (which cannot read "Infinity" / "NaN"): Infinity clamps, NaN is 0. */
export const count = (n: number): number =>
  n === Infinity ? MAX_COUNT : Number.isFinite(n) ? Math.max(0, Math.min(Math.floor(n), MAX_COUNT)) : 0;

/**
 * The base of the Redis backend's layers: the command and pub/sub
 * connections, the key names (redis-keys.ts) and the plumbing every layer
 * runs its commands through. The layers stack on it, each adding the methods
 * of one port and using only what is below it:
 * RedisCore -> RedisNodes (NodeDirectory, counters) -> RedisPresence
 * (PresenceStore) -> RedisRooms (RoomStore) -> RedisBroker (Broker) ->
 * RedisReadState (ReadStateStore) ->
 * RedisBackend (lifecycle, options).
 *
 * Failures to reach Redis reject quickly with `StreamingError('backend_unavailable')`:
 * commands are never queued while disconnected (`exec` refuses when the
 * connection is not ready), a command without a reply fails after
 * `commandTimeoutMs` (see redis-connection.ts), and a Redis error about the
 * command itself is rethrown as is.
 */
export abstract class RedisCore {
  readonly distributed = true;
  /** Prefix of every key and channel. */
  readonly keyPrefix: string;

  protected readonly keys: RedisKeys;
  /** Replaced (once, by `connect()`) only when {@link RedisConnections.clusterFallback} applies. */
  protected client: RedisClient;
  protected subscriber: RedisClient;
  protected readonly ownsClient: boolean;
  protected readonly ownsSubscriber: boolean;
  protected readonly connectTimeoutMs: number;
  protected readonly onError: (err: unknown) => void;
  protected readonly durability: Durability;
  protected clusterFallback: RedisConnections['clusterFallback'];
  /** message -> when last reported, and how many were not reported since */
  private readonly reported = new Map<string, { at: number; skipped: number }>();

  protected constructor(connections: RedisConnections) {
    this.keyPrefix = connections.keyPrefix;
    this.keys = new RedisKeys(this.keyPrefix);
    this.client = connections.client;
    this.subscriber = connections.subscriber;
    this.ownsClient = connections.ownsClient;
    this.ownsSubscriber = connections.ownsSubscriber;
    this.connectTimeoutMs = connections.connectTimeoutMs;
    this.onError = connections.onError;
    this.durability = connections.durability;
    this.clusterFallback = connections.clusterFallback;
    this.watchErrors();
  }

  /**
   * ioredis reports connection problems as 'error' events; ours go to onError
   * (commands still reject on their own), the same message at most once a
   * second. A caller's connection keeps its own handling.
   */
  protected watchErrors(): void {
    if (this.ownsClient) this.client.on('error', this.connectionError);
    if (this.ownsSubscriber) this.subscriber.on('error', this.connectionError);
  }

  private readonly connectionError = (err: unknown): void => {
    const key = err instanceof Error ? err.message : String(err);
    const now = Date.now();
    const last = this.reported.get(key);
    if (last && now - last.at < ERROR_REPORT_INTERVAL_MS) {
      last.skipped++;
      return;
    }
    if (this.reported.size > 100) this.reported.clear();
    this.reported.set(key, { at: now, skipped: 0 });
    if (last && last.skipped > 0 && err instanceof Error) {
      const repeated = new Error(`${err.message} (and ${last.skipped} more since the last report)`);
      repeated.cause = err;
      this.onError(repeated);
    } else {
      this.onError(err);
    }
  };

  protected unavailable(cause: unknown): StreamingError {
    const err = new StreamingError('backend_unavailable', 'The streaming backend (Redis) is unavailable.');
    err.cause = cause;
    return err;
  }

  /** Connection-level failures become `backend_unavailable`; a Redis error about the command itself is rethrown as is. */
  protected mapError(err: unknown): Error {
    if (err instanceof StreamingError) return err;
    if (err instanceof Error && err.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(err.message)) return err;
    return this.unavailable(err);
  }

  /** Run commands on the command connection; fails at once when it is not ready (no queueing). */
  protected async exec<T>(fn: (c: Redis) => Promise<T>): Promise<T> {
    const c = this.client;
    if (c.status !== 'ready') throw this.unavailable(new Error(`Redis connection is ${c.status}`));
    try {
      // Cluster exposes the same command API as Redis.
      return await fn(c as Redis);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /** Run a script (scripts/) on the node owning `keys`, through {@link exec}. */
  protected run(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.exec((c) => runScript(c, script, keys, args));
  }
}

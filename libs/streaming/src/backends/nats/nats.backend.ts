import type {
  ConnectionOptions,
  JetStreamClient,
  JetStreamManager,
  KV,
  KvOptions,
  NatsConnection,
  Status,
} from 'nats';
import type { StreamingOptions } from '../../config/streaming-options.interface';
import type { StreamingBackend } from '../../interfaces';
import { NatsReadState } from './nats-read-state';
import { parseNatsUrl } from './nats-connection';
import { BUCKET_IDS, BucketId } from './nats-keys';
import { casBackoff, isUnavailableError, natsModule } from './nats-util';

/** Options of {@link NatsBackend}. */
export interface NatsBackendOptions {
  /**
   * `nats://[user:pass@|token@]host[:port]` or `tls://...` URLs of the cluster.
   * Default `nats://127.0.0.1:4222`. Ignored when `connection` is given.
   */
  servers?: string[];
  /** User name, used when the URLs carry none. */
  user?: string;
  /** Password, used when the URLs carry none. */
  pass?: string;
  /** Token, used when the URLs carry none. */
  token?: string;
  /**
   * An existing connection (JetStream enabled on its account). The backend never
   * closes or drains it: `close()` only removes the subscriptions it made.
   */
  connection?: NatsConnection;
  /**
   * Prefix of every bucket (`<prefix>-rooms`, ...) and subject (`<prefix>.t.*`,
   * `<prefix>.rl.*`). Letters, digits, `-` and `_`. Default `fs`.
   */
  prefix?: string;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** A JetStream request without a reply after this long fails with `backend_unavailable`. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** How long `connect()` waits for the server. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Pause between reconnection attempts (reconnection never gives up). Default 250 ms. */
  reconnectTimeWaitMs?: number;
  /** Storage of the buckets the backend creates. Default `file`. */
  storage?: 'file' | 'memory';
  /** Replicas of the buckets the backend creates (1, 3 or 5). Default 1. */
  replicas?: number;
  /**
   * Bucket max age (seconds) of the presence, counters and nodes buckets: the
   * server drops entries not rewritten for this long, so abandoned ones do not
   * pile up. Per-entry TTLs (which the backend enforces itself) must not exceed
   * it. Default 86400 (one day).
   */
  maxTtlSeconds?: number;
  /** Extra nats.js options for the connection the backend creates. */
  natsOptions?: Partial<ConnectionOptions>;
  /** Told about connection errors, failed clean-ups and exceptions thrown by topic handlers. */
  onError?: (err: unknown) => void;
}

/** What {@link NatsBackend.fromOptions} reads from the module options. */
export type NatsStreamingOptions = Pick<
  StreamingOptions,
  'backendUrls' | 'backendUsername' | 'backendPassword'
> &
  Partial<Pick<StreamingOptions, 'nodeId'>>;

/** Buckets whose entries expire (per-entry expiry, plus the bucket max age as a safety net). */
const EXPIRING_BUCKETS: BucketId[] = ['presence', 'counters', 'nodes'];

/**
 * The NATS backend: state in JetStream key-value buckets, fan-out over core
 * NATS, so that any number of nodes share rooms, history, presence, counters
 * and the node registry.
 *
 * It is built in layers, one file per port, each class extending the one
 * before and using only what is below it. Each layer's doc comment describes
 * the buckets it owns (bucket `<prefix>-<name>`, keys built from ids by
 * nats-keys.ts, each id one base64url token):
 * - nats-core.ts: the session, compare-and-swap, reads, purges, error mapping
 * - nats-nodes.ts: NodeDirectory and counters (buckets nodes, counters)
 * - nats-presence.ts: PresenceStore (presence, directory; expiring sets in counters)
 * - nats-rooms.ts: rooms and memberships of RoomStore (rooms, members)
 * - nats-moderation.ts: the rest of RoomStore (restrictions, invitations, modlog)
 * - nats-broker.ts: Broker, pub/sub and the room message log (seqs, messages)
 * - nats-read-state.ts: ReadStateStore (reads)
 * - this file: options, connect (every bucket, the connection's status) and close
 *
 * The presence, counters and nodes buckets hold values with their own expiry
 * (treated as absent once expired, removed lazily); their bucket max age
 * (`maxTtlSeconds`) collects abandoned ones.
 */
export class NatsBackend extends NatsReadState implements StreamingBackend {
  readonly kind = 'nats';

  private readonly options: NatsBackendOptions;
  private connecting: Promise<void> | null = null;
  private statusIterator: (AsyncIterable<Status> & { stop?: () => void }) | null = null;

  /** The backend `StreamingModule` builds for `backend: nats`. */
  static fromOptions(options: NatsStreamingOptions, extra: NatsBackendOptions = {}): NatsBackend {
    return new NatsBackend({
      servers: options.backendUrls.length > 0 ? options.backendUrls : undefined,
      user: options.backendUsername || undefined,
      pass: options.backendPassword || undefined,
      name: options.nodeId ? `nest-streaming:${options.nodeId}` : undefined,
      ...extra,
    });
  }

  constructor(options: NatsBackendOptions = {}) {
    super(options);
    this.options = options;
  }

  // ------------------------------------------------------------ lifecycle

  async connect(): Promise<void> {
    if (this.session) return;
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    let nc = this.options.connection;
    const owns = !nc;
    if (!nc) {
      try {
        nc = await natsModule().connect(this.connectionOptions());
      } catch (err) {
        throw this.unavailable(err);
      }
    } else if (nc.isClosed()) {
      throw this.unavailable(new Error('the given NATS connection is closed'));
    }
    try {
      const js = nc.jetstream({ timeout: this.requestTimeoutMs });
      const jsm = await nc.jetstreamManager({ timeout: this.requestTimeoutMs });
      const kv = await this.openBuckets(js, jsm);
      this.session = { nc, js, jsm, kv, owns };
    } catch (err) {
      if (owns) await nc.close().catch(() => undefined);
      throw this.mapError(err);
    }
    this.connected = true;
    this.resetLost();
    this.watchStatus(nc);
  }

  private connectionOptions(): ConnectionOptions {
    const o = this.options;
    const urls = o.servers && o.servers.length > 0 ? o.servers : ['nats://127.0.0.1:4222'];
    const parsed = urls.map(parseNatsUrl);
    const fromUrl = parsed.find((p) => p.user !== undefined || p.pass !== undefined || p.token !== undefined);
    const opts: ConnectionOptions = {
      servers: parsed.map((p) => p.server),
      name: o.name,
      timeout: o.connectTimeoutMs ?? 5000,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectTimeWaitMs ?? 250,
      reconnectJitter: 100,
      waitOnFirstConnect: false,
      pingInterval: 10_000,
      maxPingOut: 3,
      ...o.natsOptions,
    };
    if (o.user !== undefined || o.pass !== undefined || o.token !== undefined) {
      if (o.token !== undefined) opts.token = o.token;
      if (o.user !== undefined) opts.user = o.user;
      if (o.pass !== undefined) opts.pass = o.pass;
    } else if (fromUrl) {
      if (fromUrl.token !== undefined) opts.token = fromUrl.token;
      if (fromUrl.user !== undefined) opts.user = fromUrl.user;
      if (fromUrl.pass !== undefined) opts.pass = fromUrl.pass;
    }
    if (parsed.some((p) => p.server.startsWith('tls://')) && opts.tls === undefined) opts.tls = {};
    return opts;
  }

  /** Create (or bind to) every bucket; idempotent, so every node may run it at start-up. */
  private async openBuckets(js: JetStreamClient, jsm: JetStreamManager): Promise<Record<BucketId, KV>> {
    const maxTtlMs = Math.round((this.options.maxTtlSeconds ?? 86_400) * 1000);
    const base: Partial<KvOptions> = {
      history: 1,
      storage:
        this.options.storage === 'memory' ? natsModule().StorageType.Memory : natsModule().StorageType.File,
      replicas: this.options.replicas ?? 1,
      timeout: this.requestTimeoutMs,
    };
    const republish = this.names.roomLogRepublish();
    const entries = await Promise.all(
      BUCKET_IDS.map(async (id): Promise<[BucketId, KV]> => {
        const opts: Partial<KvOptions> = { ...base };
        if (EXPIRING_BUCKETS.includes(id)) opts.ttl = maxTtlMs;
        if (id === 'seqs') opts.republish = republish;
        return [id, await this.bucket(js, id, opts)];
      }),
    );
    // A seqs bucket made without republish (by hand, or by an older version) needs it:
    // the room log's fan-out depends on it. Servers before 2.10 cannot add it to an
    // existing stream; then fail loudly rather than run without ordered delivery.
    const stream = this.names.stream('seqs');
    const info = await jsm.streams.info(stream);
    const rp = info.config.republish;
    if (!rp || rp.src !== republish.src || rp.dest !== republish.dest || rp.headers_only) {
      try {
        await jsm.streams.update(stream, { ...info.config, republish });
      } catch (err) {
        if (isUnavailableError(err)) throw err;
        const why = err instanceof Error ? err.message : String(err);
        throw new Error(
          `NATS stream ${stream} exists without republish ${republish.src} -> ${republish.dest} and the server ` +
            `refused to add it (${why}): remove that bucket (its room sequences are lost) or use another prefix`,
          { cause: err },
        );
      }
    }
    return Object.fromEntries(entries) as Record<BucketId, KV>;
  }

  /**
   * Create or bind one bucket. Nodes starting together race to create it; the
   * losers get an error from the server (e.g. "subjects overlap") and bind to
   * the winner's stream on the next attempt.
   */
  private async bucket(js: JetStreamClient, id: BucketId, opts: Partial<KvOptions>): Promise<KV> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await js.views.kv(this.names.bucket(id), opts);
      } catch (err) {
        if (attempt >= 5 || isUnavailableError(err)) throw err;
        await casBackoff(attempt + 2);
      }
    }
  }

  private watchStatus(nc: NatsConnection): void {
    const it = nc.status() as AsyncIterable<Status> & { stop?: () => void };
    this.statusIterator = it;
    void (async () => {
      for await (const s of it) {
        if (this.session?.nc !== nc) break;
        if (s.type === natsModule().Events.Disconnect) {
          this.connected = false;
          this.failInFlight(
            this.unavailable(new Error(`disconnected from ${typeof s.data === 'string' ? s.data : 'NATS'}`)),
          );
        } else if (s.type === natsModule().Events.Reconnect) {
          this.connected = true;
        } else if (s.type === natsModule().Events.Error) {
          this.onError(s.data);
        }
      }
    })().catch((err) => this.onError(err));
    void nc.closed().then((err) => {
      if (this.session?.nc !== nc) return;
      this.connected = false;
      this.failInFlight(this.unavailable(err ?? new Error('NATS connection closed')));
      if (err) this.onError(err);
    });
  }

  async close(): Promise<void> {
    if (this.connecting) await this.connecting.catch(() => undefined);
    const s = this.session;
    if (!s) return;
    // Let clean-ups finish while the connection is still ours.
    await this.settleBackground();
    this.session = null;
    this.connected = false;
    this.statusIterator?.stop?.();
    this.statusIterator = null;
    this.dropSubscriptions();
    this.failInFlight(this.unavailable(new Error('backend closed')));
    if (s.owns) {
      await s.nc.close().catch((err) => this.onError(err));
    } else if (!s.nc.isClosed()) {
      // A caller's connection stays open: just make our unsubscriptions reach the server.
      await s.nc.flush().catch((err) => this.onError(err));
    }
  }

  async ping(): Promise<void> {
    // Through JetStream: a server that answers PING but whose JetStream is not ready yet is not "up".
    await this.exec(async (s) => {
      await s.jsm.getAccountInfo();
    });
  }
}

import { randomUUID } from 'node:crypto';
import type {
  ConnectionOptions,
  JetStreamClient,
  JetStreamManager,
  KV,
  KvOptions,
  Msg,
  NatsConnection,
  Status,
  Subscription,
} from 'nats';
import type { StreamingOptions } from '../../config/streaming-options.interface';
import { StreamingError } from '../../protocol/streaming-error';
import { encodeMessageEnvelope } from '../../protocol/wire';
import { applyMutation } from '../backend-helpers';
import {
  Expiring,
  MessageValue,
  RoomLogEntry,
  RoomValue,
  UserRoomsValue,
  decodeRoomLog,
  encodeRoomLog,
  fromUtf8,
  jsonBytes,
  pageRange,
  parseJson,
  timestampMs,
  utf8,
} from './nats-codec';
import { parseNatsUrl } from './nats-connection';
import { BUCKET_IDS, BucketId, NatsNames, decodeToken } from './nats-keys';
import {
  KeyedQueue,
  casBackoff,
  count,
  isConflict,
  isUnavailableError,
  natsModule,
  ttlMsFromSeconds,
} from './nats-util';
import {
  AddMemberResult,
  EXPIRED_MEMBER_GRACE_MS,
  HistoryQuery,
  Invitation,
  MemberRecord,
  MessageDraft,
  MessageMutation,
  ModerationLogEntry,
  MutationResult,
  NodeInfo,
  PresenceRecord,
  Restriction,
  RoomRecord,
  StoredMessage,
  StreamingBackend,
  TopicHandler,
} from '../../interfaces';

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

interface Session {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: Record<BucketId, KV>;
  owns: boolean;
}

/** A KV key's current value (null when absent or deleted) and revision (0 when never written). */
interface Slot<T> {
  value: T | null;
  revision: number;
}

/** Returned by a compare-and-swap step to delete the key. */
const DELETE = Symbol('delete');

/** What a compare-and-swap step decides: the result, and the new value if it writes one. */
type CasStep<T, R> = { result: R; next?: T | typeof DELETE };

/** Attempts of a compare-and-swap loop before giving up with `backend_unavailable`. */
const MAX_CAS_ATTEMPTS = 100;

/** A user-index entry this old whose room does not list the user is a leftover of a failed step. */
const STALE_RESERVATION_MS = 30_000;

/** Buckets whose entries expire (per-entry expiry, plus the bucket max age as a safety net). */
const EXPIRING_BUCKETS: BucketId[] = ['presence', 'counters', 'nodes'];

/** How many KV reads a history page or a trim issues at once. */
const READ_BATCH = 64;

type MemberValue = MemberRecord;
interface ModlogValue {
  /** Room incarnation: a log left by a deleted room with the same id is ignored. */
  i: string;
  e: ModerationLogEntry[];
}

/**
 * The NATS backend: state in JetStream key-value buckets, fan-out over core
 * NATS, so that any number of nodes share rooms, history, presence, counters
 * and the node registry.
 *
 * Layout (bucket `<prefix>-<name>`, keys built from ids by nats-keys.ts, each
 * id one base64url token):
 * - rooms: room -> { record, incarnation, member count }
 * - members: `r.<room>.<user>` -> membership; `u.<user>` -> the user's rooms
 * - restrictions / invitations: `<room>.<kind>.<user>` / `<room>.<user>`
 * - modlog: room -> its log (one JSON array, bounded)
 * - seqs: room -> the room log entry (last seq, history floor, last envelope)
 * - messages: `<room>.s.<seq>` -> message record; `<room>.i.<id>` -> seq
 * - presence, counters, nodes: values with their own expiry (treated as absent
 *   once expired, removed lazily; the bucket max age collects abandoned ones)
 * - directory: `u.<user>` -> the user's nodes; `n.<node>.<user>` -> marker
 *
 * Atomicity: every read-modify-write is a compare-and-swap loop (KV update with
 * the expected revision, create when absent), retried on conflicts up to
 * {@link MAX_CAS_ATTEMPTS} times. Within one node, the cycles on one key are
 * queued ({@link KeyedQueue}), so conflicts only arise between nodes.
 *
 * Ordering (appendMessage): the room log entry in `seqs` is the room's
 * sequencer. Appending seq n+1 (1) creates the message record `<room>.s.<n+1>`
 * (create fails if it exists: the slot is taken), then (2) replaces the room
 * log entry at revision r (the one holding seq n) with seq n+1 and the
 * message's envelope. Step 2 is one JetStream publish with an expected last
 * subject sequence, so the stream stores a room's entries strictly in seq
 * order, and the server republishes each stored entry on `<prefix>.rl.<room>`
 * (stream `republish`) from one internal connection, in that order. Every
 * node listens on `<prefix>.rl.*` with one core subscription and hands the
 * envelope to the handler of the entry's topic. So all subscribers, on all
 * nodes, see a room's messages in strictly increasing seq order, even with
 * concurrent appends from several nodes, without reorder buffers or timers.
 * The cost: every node with at least one subscription receives every room's
 * appended messages (filtered by topic locally), like adapters that broadcast
 * to all nodes. Plain `publish()` goes to `<prefix>.t.<topic>`: per-topic
 * order per publishing connection, as core NATS gives it. On one server, a
 * publish made after appendMessage resolved reaches subscribers after the
 * appended message (the server queues the republish before the publish ack).
 * If a node dies between (1) and (2), the next appender finds the record,
 * finishes (2) for it (publishing its envelope), then appends its own: no seq
 * is ever lost or reused, and a record is in history before its seq is given
 * out. Records of a deleted room (older incarnation) are discarded instead.
 *
 * In a NATS cluster the room log keeps its order (one stream leader
 * republishes), but a plain publish from another server may overtake a
 * republished entry: only appended messages are ordered among themselves.
 *
 * Rooms: deleteRoom first marks the room (it reads as absent, joins answer
 * no_room, its id cannot be re-created), then purges its keys and indexes,
 * then removes the mark; a deletion a node gave up half-way is finished by
 * the next deleteRoom, or by createRoom once the mark is 30 s old. Writes of
 * room-scoped keys check the room again after writing and undo themselves if
 * a deletion raced them, so a re-created room starts clean.
 *
 * Limits: membership counts live in the room value so that `maxMembers` is
 * checked in the same compare-and-swap; the member key is written next. A
 * node dying between the two leaves the count one too high (not repaired).
 * User-index reservations stranded that way are pruned after 30 s, as in the
 * Redis backend. Payloads and values travel as UTF-8 (JSON escapes lone
 * surrogates; a raw one in a plain `publish()` payload becomes U+FFFD). Message
 * ids are not checked for uniqueness within a room (the callers generate UUIDs).
 *
 * Failures to reach NATS reject quickly with `StreamingError('backend_unavailable')`:
 * while disconnected every call fails at once, calls in flight when the
 * connection drops fail at that moment, and a request without a reply fails
 * after `requestTimeoutMs`. Reconnection is automatic and never gives up;
 * core subscriptions (topics and the room log) are restored by nats.js.
 */
export class NatsBackend implements StreamingBackend {
  readonly kind = 'nats';
  readonly distributed = true;
  /** Prefix of every bucket and subject. */
  readonly prefix: string;

  private readonly names: NatsNames;
  private readonly options: NatsBackendOptions;
  private readonly requestTimeoutMs: number;
  private readonly onError: (err: unknown) => void;
  private readonly queue = new KeyedQueue();
  /** Clean-ups running after the call that scheduled them returned. */
  private readonly background = new Set<Promise<void>>();
  /** topic -> its core subscription and handler */
  private readonly topics = new Map<
    string,
    { sub: Subscription; handler: TopicHandler; ready: Promise<void> }
  >();
  private roomLogSub: Subscription | null = null;
  private session: Session | null = null;
  private connecting: Promise<void> | null = null;
  private statusIterator: (AsyncIterable<Status> & { stop?: () => void }) | null = null;
  private connected = false;
  /** Rejects when the current connection drops: calls in flight race it. */
  private lost!: Promise<never>;
  private rejectLost: (err: unknown) => void = () => undefined;

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
    this.options = options;
    this.prefix = options.prefix ?? 'fs';
    this.names = new NatsNames(this.prefix);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.onError = options.onError ?? (() => undefined);
    this.resetLost();
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
          this.rejectLost(
            this.unavailable(new Error(`disconnected from ${typeof s.data === 'string' ? s.data : 'NATS'}`)),
          );
          this.resetLost();
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
      this.rejectLost(this.unavailable(err ?? new Error('NATS connection closed')));
      this.resetLost();
      if (err) this.onError(err);
    });
  }

  private resetLost(): void {
    this.lost = new Promise<never>((_, reject) => {
      this.rejectLost = reject;
    });
    this.lost.catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.connecting) await this.connecting.catch(() => undefined);
    const s = this.session;
    if (!s) return;
    // Let clean-ups finish while the connection is still ours.
    await Promise.allSettled([...this.background]);
    this.session = null;
    this.connected = false;
    this.statusIterator?.stop?.();
    this.statusIterator = null;
    for (const t of this.topics.values()) this.unsub(t.sub);
    this.topics.clear();
    if (this.roomLogSub) this.unsub(this.roomLogSub);
    this.roomLogSub = null;
    this.rejectLost(this.unavailable(new Error('backend closed')));
    this.resetLost();
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

  // ------------------------------------------------------------ plumbing

  private unavailable(cause: unknown): StreamingError {
    if (cause instanceof StreamingError) return cause;
    const err = new StreamingError('backend_unavailable', 'The streaming backend (NATS) is unavailable.');
    err.cause = cause;
    return err;
  }

  /** Connection-level failures become `backend_unavailable`; anything about the request itself is rethrown as is. */
  private mapError(err: unknown): Error {
    if (err instanceof StreamingError) return err;
    if (isUnavailableError(err)) return this.unavailable(err);
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Run `fn` on the live session; fails at once when disconnected, and when the connection drops meanwhile. */
  private async exec<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const s = this.session;
    if (!s) throw this.unavailable(new Error('not connected: call connect() first'));
    if (!this.connected) throw this.unavailable(new Error('NATS connection lost, reconnecting'));
    try {
      return await Promise.race([fn(s), this.lost]);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /** Run a clean-up after the current call returns; failures are reported, close() waits for it. */
  private later(task: () => Promise<void>): void {
    // Raced with the connection like a call, so that close() never waits for a request timeout.
    const p: Promise<void> = Promise.race([task(), this.lost])
      .catch((err) => this.onError(err))
      .finally(() => this.background.delete(p));
    this.background.add(p);
  }

  private unsub(sub: Subscription): void {
    try {
      sub.unsubscribe();
    } catch (err) {
      this.onError(err);
    }
  }

  private async slot<T>(kv: KV, key: string): Promise<Slot<T>> {
    const e = await kv.get(key);
    if (!e) return { value: null, revision: 0 };
    if (e.operation !== 'PUT') return { value: null, revision: e.revision };
    return { value: parseJson<T>(e.value), revision: e.revision };
  }

  private async value<T>(kv: KV, key: string): Promise<T | null> {
    return (await this.slot<T>(kv, key)).value;
  }

  /**
   * Compare-and-swap loop on one key: `step` sees the current value (null when
   * absent) and decides the result and, optionally, the value to write (or
   * DELETE). The write only succeeds if nobody wrote the key in between;
   * otherwise the loop reads again.
   */
  private cas<T, R>(
    s: Session,
    bucket: BucketId,
    key: string,
    step: (current: T | null) => CasStep<T, R>,
  ): Promise<R> {
    const kv = s.kv[bucket];
    return this.queue.run(`${bucket}/${key}`, async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const cur = await this.slot<T>(kv, key);
        const d = step(cur.value);
        if (d.next === undefined) return d.result;
        try {
          if (d.next === DELETE) {
            if (cur.value !== null) await kv.delete(key, { previousSeq: cur.revision });
          } else {
            await kv.put(key, jsonBytes(d.next), { previousSeq: cur.revision });
          }
          return d.result;
        } catch (err) {
          if (!isConflict(err)) throw err;
          await casBackoff(attempt);
        }
      }
      throw this.contention(bucket, key);
    });
  }

  private contention(bucket: string, key: string): StreamingError {
    return new StreamingError(
      'backend_unavailable',
      `Too much contention on NATS key ${bucket}/${key}: gave up after ${MAX_CAS_ATTEMPTS} attempts.`,
    );
  }

  /** Remove every message of a bucket's stream on a subject (a key or a filter); leaves no delete marker. */
  private async purge(s: Session, bucket: BucketId, keyOrFilter: string): Promise<void> {
    await s.jsm.streams.purge(this.names.stream(bucket), {
      filter: this.names.keySubject(bucket, keyOrFilter),
    });
  }

  /** Remove a key only if it is still at `revision` (stream purge up to that revision: no marker left). */
  private async purgeRevision(s: Session, bucket: BucketId, key: string, revision: number): Promise<void> {
    await s.jsm.streams.purge(this.names.stream(bucket), {
      filter: this.names.keySubject(bucket, key),
      seq: revision + 1,
    });
  }

  /** Delete a key if it is still at `revision`; a newer write wins silently. */
  private async deleteIfUnchanged(kv: KV, key: string, revision: number): Promise<void> {
    try {
      await kv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  /** Keys of a bucket matching a filter (`a.*`, `a.>`, `>`), with a deadline. */
  private async listKeys(kv: KV, filter: string): Promise<string[]> {
    const it = await kv.keys(filter);
    const out: string[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        it.stop();
        reject(this.unavailable(new Error(`listing ${filter} timed out`)));
      }, this.requestTimeoutMs * 2);
    });
    try {
      await Promise.race([
        (async () => {
          for await (const k of it) out.push(k);
        })(),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
    return out;
  }

  /** Current values of the keys matching a filter (keys deleted in between are skipped). */
  private async listValues<T>(
    kv: KV,
    filter: string,
  ): Promise<{ key: string; value: T; revision: number }[]> {
    const keys = await this.listKeys(kv, filter);
    const slots = await batched(keys, (k) => this.slot<T>(kv, k));
    const out: { key: string; value: T; revision: number }[] = [];
    slots.forEach((slot, i) => {
      if (slot.value !== null) out.push({ key: keys[i], value: slot.value, revision: slot.revision });
    });
    return out;
  }

  // ------------------------------------------------------------ pub/sub

  private readonly onTopicMessage = (topic: string, msg: Msg): void => {
    this.deliver(topic, fromUtf8(msg.data));
  };

  /** A republished room log entry: hand its envelope to the handler of its topic. */
  private readonly onRoomLog = (_err: unknown, msg: Msg): void => {
    if (!msg || msg.data.length === 0) return;
    const entry = decodeRoomLog(fromUtf8(msg.data));
    if (entry?.topic === undefined || entry.envelope === undefined) return;
    this.deliver(entry.topic, entry.envelope);
  };

  private deliver(topic: string, payload: string): void {
    const t = this.topics.get(topic);
    if (!t) return;
    try {
      t.handler(payload, topic);
    } catch (err) {
      this.onError(err);
    }
  }

  async publish(topic: string, payload: string): Promise<void> {
    await this.exec(async (s) => {
      s.nc.publish(this.names.topicSubject(topic), utf8(payload));
    });
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    await this.exec(async (s) => {
      const existing = this.topics.get(topic);
      if (existing) {
        // One subscription per topic: a new handler replaces the old one.
        existing.handler = handler;
        return existing.ready;
      }
      const sub = s.nc.subscribe(this.names.topicSubject(topic), {
        callback: (_err, msg) => this.onTopicMessage(topic, msg),
      });
      this.roomLogSub ??= s.nc.subscribe(this.names.roomLogWildcard(), { callback: this.onRoomLog });
      // Live on the server once the server answered the PING behind the SUBs.
      const ready = s.nc.flush();
      const entry = { sub, handler, ready };
      this.topics.set(topic, entry);
      try {
        await ready;
      } catch (err) {
        if (this.topics.get(topic) === entry) {
          this.topics.delete(topic);
          this.unsub(sub);
          this.dropRoomLogIfIdle();
        }
        throw err;
      }
    });
  }

  async unsubscribe(topic: string): Promise<void> {
    const t = this.topics.get(topic);
    this.topics.delete(topic);
    if (t) this.unsub(t.sub);
    this.dropRoomLogIfIdle();
  }

  private dropRoomLogIfIdle(): void {
    if (this.topics.size === 0 && this.roomLogSub) {
      this.unsub(this.roomLogSub);
      this.roomLogSub = null;
    }
  }

  // ------------------------------------------------------------ rooms

  /** The room value when the room exists and is not being deleted. */
  private async liveRoom(s: Session, roomId: string): Promise<RoomValue | null> {
    const v = await this.value<RoomValue>(s.kv.rooms, this.names.room(roomId));
    return v && !v.d ? v : null;
  }

  async createRoom(room: RoomRecord, owner: MemberRecord): Promise<void> {
    await this.exec(async (s) => {
      const inc = randomUUID();
      const value: RoomValue = { r: room, inc, n: 1 };
      const key = this.names.room(room.id);
      const create = (): Promise<'created' | 'exists' | { stranded: string }> =>
        this.cas<RoomValue, 'created' | 'exists' | { stranded: string }>(s, 'rooms', key, (cur) => {
          if (!cur) return { result: 'created', next: value };
          // A deletion that a node gave up half-way through: finish it, then create.
          if (cur.d && cur.d <= Date.now() - STALE_RESERVATION_MS) return { result: { stranded: cur.inc } };
          return { result: 'exists' };
        });
      let created = await create();
      if (typeof created === 'object') {
        await this.finishDelete(s, room.id, created.stranded);
        created = await create();
      }
      if (created !== 'created') throw new Error(`room ${room.id} already exists`);
      try {
        await Promise.all([
          s.kv.seqs.put(this.names.roomLog(room.id), utf8(encodeRoomLog({ seq: 0, floor: 1, inc }))),
          s.kv.members.put(this.names.member(room.id, owner.userId), jsonBytes(owner)),
          this.reserveUserRoom(s, owner.userId, room.id, undefined),
        ]);
      } catch (err) {
        await this.undoCreateRoom(s, room.id, owner.userId, inc);
        throw err;
      }
    });
  }

  private async undoCreateRoom(s: Session, roomId: string, ownerId: string, inc: string): Promise<void> {
    try {
      await this.cas<RoomValue, void>(s, 'rooms', this.names.room(roomId), (cur) =>
        cur?.inc === inc ? { result: undefined, next: DELETE } : { result: undefined },
      );
      await Promise.all([
        this.purge(s, 'seqs', this.names.roomLog(roomId)),
        this.purge(s, 'members', this.names.member(roomId, ownerId)),
        this.releaseUserRoom(s, ownerId, roomId),
      ]);
    } catch (err) {
      // The original failure is what the caller gets; this one is reported.
      this.onError(err);
    }
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    return this.exec(async (s) => (await this.liveRoom(s, roomId))?.r ?? null);
  }

  async updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null> {
    return this.exec((s) =>
      this.cas<RoomValue, RoomRecord | null>(s, 'rooms', this.names.room(roomId), (cur) => {
        if (!cur || cur.d) return { result: null };
        const r: RoomRecord = { ...cur.r };
        for (const [k, v] of Object.entries(patch)) {
          if (k !== 'id' && v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
        }
        // What a reader gets back is the JSON form.
        const next = JSON.parse(JSON.stringify({ ...cur, r })) as RoomValue;
        return { result: next.r, next };
      }),
    );
  }

  async deleteRoom(roomId: string): Promise<boolean> {
    return this.exec(async (s) => {
      // Phase 1: mark the room as being deleted. From now on it reads as absent,
      // joins answer no_room, and its id cannot be re-created until phase 3.
      const marked = await this.cas<RoomValue, { inc: string; first: boolean } | null>(
        s,
        'rooms',
        this.names.room(roomId),
        (cur) => {
          if (!cur) return { result: null };
          if (cur.d) return { result: { inc: cur.inc, first: false } }; // in progress (or stranded): finish it
          return { result: { inc: cur.inc, first: true }, next: { ...cur, d: Date.now() } };
        },
      );
      if (!marked) return false;
      await this.finishDelete(s, roomId, marked.inc);
      return marked.first;
    });
  }

  /** Phases 2 and 3 of deleteRoom: the room's data and indexes, then the room itself. */
  private async finishDelete(s: Session, roomId: string, inc: string): Promise<void> {
    const members = await this.listKeys(s.kv.members, this.names.membersOf(roomId));
    const users = members.map((k) => decodeToken(k.slice(k.lastIndexOf('.') + 1)));
    await batched(users, (u) => this.releaseUserRoom(s, u, roomId));
    await Promise.all([
      this.purge(s, 'members', this.names.membersOf(roomId)),
      this.purge(s, 'restrictions', this.names.roomScope(roomId)),
      this.purge(s, 'invitations', this.names.roomScope(roomId)),
      this.purge(s, 'modlog', this.names.modlog(roomId)),
      this.purge(s, 'messages', this.names.roomScope(roomId)),
      this.purge(s, 'seqs', this.names.roomLog(roomId)),
    ]);
    await this.cas<RoomValue, void>(s, 'rooms', this.names.room(roomId), (cur) =>
      cur?.d && cur.inc === inc ? { result: undefined, next: DELETE } : { result: undefined },
    );
  }

  async listRooms(): Promise<RoomRecord[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<RoomValue>(s.kv.rooms, '>');
      return entries
        .filter((e) => !e.value.d)
        .map((e) => e.value.r)
        .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.id, b.id));
    });
  }

  async countRooms(): Promise<number> {
    return this.exec(async (s) => (await this.listKeys(s.kv.rooms, '>')).length);
  }

  // ------------------------------------------------------------ membership

  async addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult> {
    return this.exec(async (s) => {
      const memberKey = this.names.member(roomId, member.userId);
      const [room, existing] = await Promise.all([
        this.liveRoom(s, roomId),
        this.slot<MemberValue>(s.kv.members, memberKey),
      ]);
      // The local backend's order of answers: no_room, exists, full, then user_limit.
      if (!room) return 'no_room';
      if (existing.value) return 'exists';
      if (room.r.maxMembers !== null && room.n >= room.r.maxMembers) return 'full';

      // Step 1, the user's index: reserve (checks maxRoomsPerUser atomically).
      const limit = limits.maxRoomsPerUser === undefined ? undefined : count(limits.maxRoomsPerUser);
      let reserved = await this.reserveUserRoom(s, member.userId, roomId, limit);
      if (reserved === 'user_limit' && (await this.pruneUserRooms(s, member.userId)) > 0) {
        reserved = await this.reserveUserRoom(s, member.userId, roomId, limit);
      }
      if (reserved === 'user_limit') return 'user_limit';

      // Step 2, the room: take a place (checks maxMembers atomically).
      const placed = await this.cas<RoomValue, 'ok' | 'no_room' | 'full'>(
        s,
        'rooms',
        this.names.room(roomId),
        (cur) => {
          if (!cur || cur.d || cur.inc !== room.inc) return { result: 'no_room' };
          if (cur.r.maxMembers !== null && cur.n >= cur.r.maxMembers) return { result: 'full' };
          return { result: 'ok', next: { ...cur, n: cur.n + 1 } };
        },
      );
      if (placed !== 'ok') {
        if (reserved === 'reserved') await this.releaseUserRoom(s, member.userId, roomId);
        return placed;
      }

      // Step 3, the membership itself.
      let revision: number;
      try {
        revision = await s.kv.members.put(memberKey, jsonBytes(member), { previousSeq: existing.revision });
      } catch (err) {
        await this.adjustMemberCount(s, roomId, room.inc, -1);
        // The same user joined concurrently: theirs stands (and so does the index entry).
        if (isConflict(err)) return 'exists';
        if (reserved === 'reserved') await this.releaseUserRoom(s, member.userId, roomId);
        throw err;
      }

      // A deleteRoom may have purged the room between step 2 and 3: undo ours.
      const after = await this.liveRoom(s, roomId);
      if (!after || after.inc !== room.inc) {
        await this.deleteIfUnchanged(s.kv.members, memberKey, revision);
        if (reserved === 'reserved') await this.releaseUserRoom(s, member.userId, roomId);
        return 'no_room';
      }
      return 'added';
    });
  }

  private adjustMemberCount(s: Session, roomId: string, inc: string, by: number): Promise<void> {
    return this.cas<RoomValue, void>(s, 'rooms', this.names.room(roomId), (cur) =>
      cur && cur.inc === inc
        ? { result: undefined, next: { ...cur, n: Math.max(0, cur.n + by) } }
        : { result: undefined },
    );
  }

  /** Add a room to a user's index unless it holds `limit` rooms already. */
  private reserveUserRoom(
    s: Session,
    userId: string,
    roomId: string,
    limit: number | undefined,
  ): Promise<'reserved' | 'already' | 'user_limit'> {
    return this.cas<UserRoomsValue, 'reserved' | 'already' | 'user_limit'>(
      s,
      'members',
      this.names.userRooms(userId),
      (cur) => {
        const list = cur ?? [];
        if (list.some(([id]) => id === roomId)) return { result: 'already' };
        if (limit !== undefined && list.length >= limit) return { result: 'user_limit' };
        return { result: 'reserved', next: [...list, [roomId, Date.now()]] };
      },
    );
  }

  private releaseUserRoom(s: Session, userId: string, roomId: string): Promise<void> {
    return this.cas<UserRoomsValue, void>(s, 'members', this.names.userRooms(userId), (cur) => {
      if (!cur || !cur.some(([id]) => id === roomId)) return { result: undefined };
      const next = cur.filter(([id]) => id !== roomId);
      return { result: undefined, next: next.length > 0 ? next : DELETE };
    });
  }

  /** Drop user-index entries older than STALE_RESERVATION_MS whose room does not list the user. */
  private async pruneUserRooms(s: Session, userId: string): Promise<number> {
    const list = (await this.value<UserRoomsValue>(s.kv.members, this.names.userRooms(userId))) ?? [];
    const old = list.filter(([, at]) => at <= Date.now() - STALE_RESERVATION_MS);
    const present = await Promise.all(
      old.map(([id]) => this.value<MemberValue>(s.kv.members, this.names.member(id, userId))),
    );
    const stale = new Set(old.filter((_, i) => present[i] === null).map(([id]) => id));
    if (stale.size === 0) return 0;
    return this.cas<UserRoomsValue, number>(s, 'members', this.names.userRooms(userId), (cur) => {
      const next = (cur ?? []).filter(([id]) => !stale.has(id));
      const removed = (cur ?? []).length - next.length;
      if (removed === 0) return { result: 0 };
      return { result: removed, next: next.length > 0 ? next : DELETE };
    });
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    return this.exec(async (s) => {
      const removed = await this.cas<MemberValue, boolean>(
        s,
        'members',
        this.names.member(roomId, userId),
        (cur) => (cur ? { result: true, next: DELETE } : { result: false }),
      );
      if (!removed) return false;
      const room = await this.liveRoom(s, roomId);
      if (room) await this.adjustMemberCount(s, roomId, room.inc, -1);
      await this.releaseUserRoom(s, userId, roomId);
      return true;
    });
  }

  async getMember(roomId: string, userId: string): Promise<MemberRecord | null> {
    return this.exec((s) => this.value<MemberValue>(s.kv.members, this.names.member(roomId, userId)));
  }

  async setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean> {
    return this.exec((s) =>
      this.cas<MemberValue, boolean>(s, 'members', this.names.member(roomId, userId), (cur) =>
        cur ? { result: true, next: { ...cur, role } } : { result: false },
      ),
    );
  }

  async listMembers(roomId: string): Promise<MemberRecord[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<MemberValue>(s.kv.members, this.names.membersOf(roomId));
      return entries
        .map((e) => e.value)
        .sort((a, b) => compare(a.joinedAt, b.joinedAt) || compare(a.userId, b.userId));
    });
  }

  async countMembers(roomId: string): Promise<number> {
    return this.exec(async (s) => (await this.liveRoom(s, roomId))?.n ?? 0);
  }

  async userRooms(userId: string): Promise<string[]> {
    return this.exec(async (s) => {
      const list = await this.value<UserRoomsValue>(s.kv.members, this.names.userRooms(userId));
      return (list ?? []).map(([id]) => id);
    });
  }

  /**
   * Write a room-scoped key if the room exists, then check the room again: if
   * it was deleted (or re-created) meanwhile, a deleteRoom may have purged
   * before our write landed, so ours is removed. Returns whether it stands.
   */
  private async putInRoom(
    s: Session,
    roomId: string,
    bucket: BucketId,
    key: string,
    value: unknown,
  ): Promise<boolean> {
    const room = await this.liveRoom(s, roomId);
    if (!room) return false;
    const revision = await s.kv[bucket].put(key, jsonBytes(value));
    const after = await this.liveRoom(s, roomId);
    if (after?.inc === room.inc) return true;
    await this.deleteIfUnchanged(s.kv[bucket], key, revision);
    return false;
  }

  // ------------------------------------------------------------ bans and mutes

  async setRestriction(roomId: string, restriction: Restriction): Promise<void> {
    await this.exec((s) =>
      this.putInRoom(
        s,
        roomId,
        'restrictions',
        this.names.restriction(roomId, restriction.kind, restriction.userId),
        restriction,
      ),
    );
  }

  async getRestriction(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
  ): Promise<Restriction | null> {
    return this.exec(async (s) => {
      const key = this.names.restriction(roomId, kind, userId);
      const slot = await this.slot<Restriction>(s.kv.restrictions, key);
      if (!slot.value) return null;
      if (isExpired(slot.value)) {
        await this.deleteIfUnchanged(s.kv.restrictions, key, slot.revision);
        return null;
      }
      return slot.value;
    });
  }

  async clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Restriction, boolean>(
        s,
        'restrictions',
        this.names.restriction(roomId, kind, userId),
        (cur) => (cur ? { result: true, next: DELETE } : { result: false }),
      ),
    );
  }

  async listRestrictions(roomId: string): Promise<Restriction[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<Restriction>(s.kv.restrictions, this.names.roomScope(roomId));
      const expired = entries.filter((e) => isExpired(e.value));
      if (expired.length > 0) {
        await Promise.all(expired.map((e) => this.deleteIfUnchanged(s.kv.restrictions, e.key, e.revision)));
      }
      return entries.filter((e) => !isExpired(e.value)).map((e) => e.value);
    });
  }

  // ------------------------------------------------------------ invitations

  async addInvitation(roomId: string, invitation: Invitation): Promise<void> {
    await this.exec((s) =>
      this.putInRoom(s, roomId, 'invitations', this.names.invitation(roomId, invitation.userId), invitation),
    );
  }

  async getInvitation(roomId: string, userId: string): Promise<Invitation | null> {
    return this.exec((s) => this.value<Invitation>(s.kv.invitations, this.names.invitation(roomId, userId)));
  }

  async removeInvitation(roomId: string, userId: string): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Invitation, boolean>(s, 'invitations', this.names.invitation(roomId, userId), (cur) =>
        cur ? { result: true, next: DELETE } : { result: false },
      ),
    );
  }

  // ------------------------------------------------------------ moderation log

  async appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void> {
    await this.exec(async (s) => {
      const room = await this.liveRoom(s, roomId);
      if (!room) return;
      const max = count(maxEntries);
      const clean = JSON.parse(JSON.stringify(entry)) as ModerationLogEntry;
      await this.cas<ModlogValue, void>(s, 'modlog', this.names.modlog(roomId), (cur) => {
        // A log left by a deleted room with the same id starts over.
        const entries = cur && cur.i === room.inc ? cur.e : [];
        const next = [...entries, clean];
        return { result: undefined, next: { i: room.inc, e: max === 0 ? [] : next.slice(-max) } };
      });
    });
  }

  async getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]> {
    return this.exec(async (s) => {
      const n = count(limit);
      if (n === 0) return [];
      const [room, log] = await Promise.all([
        this.liveRoom(s, roomId),
        this.value<ModlogValue>(s.kv.modlog, this.names.modlog(roomId)),
      ]);
      if (!room || !log || log.i !== room.inc) return [];
      return log.e.slice(-n);
    });
  }

  // ------------------------------------------------------------ history

  private async roomLog(
    s: Session,
    roomId: string,
  ): Promise<{ entry: RoomLogEntry; revision: number } | null> {
    const e = await s.kv.seqs.get(this.names.roomLog(roomId));
    if (!e || e.operation !== 'PUT') return null;
    const entry = decodeRoomLog(fromUtf8(e.value));
    return entry ? { entry, revision: e.revision } : null;
  }

  /** The room log entry that commits a message record at its seq. */
  private commitEntry(current: RoomLogEntry, rec: MessageValue): RoomLogEntry {
    const seq = rec.m.seq;
    const floor = rec.h < 0 ? current.floor : Math.max(current.floor, seq - rec.h + 1);
    const entry: RoomLogEntry = { seq, floor, inc: current.inc };
    if (rec.t !== null) {
      entry.topic = rec.t;
      entry.envelope = encodeMessageEnvelope(rec.m);
    }
    return entry;
  }

  async appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage> {
    return this.exec((s) =>
      this.queue.run(`append/${roomId}`, async () => {
        const h = options.maxHistory === Infinity ? -1 : count(options.maxHistory);
        const topic = options.publishTopic ? options.publishTopic : null;
        const base = { ...draft, metadata: draft.metadata ?? {}, reactions: draft.reactions ?? {} };
        for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
          const log = await this.roomLog(s, roomId);
          if (!log) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
          const seq = log.entry.seq + 1;
          // The JSON form, exactly what readers (and a node finishing this commit) will see.
          const stored = JSON.parse(JSON.stringify({ ...base, seq })) as StoredMessage;
          const rec: MessageValue = { t: topic, h, i: log.entry.inc, m: stored };
          const recKey = this.names.messageAt(roomId, seq);
          // (1) Take the slot: the record exists before its seq is given out.
          try {
            await s.kv.messages.put(recKey, jsonBytes(rec), { previousSeq: 0 });
          } catch (err) {
            if (!isConflict(err)) throw err;
            // Another append holds this slot (or died holding it): finish its commit, then retry.
            await this.helpCommit(s, roomId, log, recKey);
            await casBackoff(attempt);
            continue;
          }
          const indexed = s.kv.messages.put(this.names.messageId(roomId, stored.id), utf8(String(seq)));
          indexed.catch(() => undefined); // awaited below; the commit's failure comes first
          // (2) Commit: the room log moves to seq (and the server republishes the envelope).
          const floors = await this.commit(s, roomId, log, rec);
          await indexed;
          if (floors && floors.to > floors.from)
            this.later(() => this.dropRecords(s, roomId, log.entry.inc, floors.from, floors.to));
          return stored;
        }
        throw this.contention('seqs', roomId);
      }),
    );
  }

  /**
   * Compare-and-swap the room log from `log` to the entry committing `rec`.
   * Returns the history floor before and after, or null when another node
   * committed the record for us.
   */
  private async commit(
    s: Session,
    roomId: string,
    log: { entry: RoomLogEntry; revision: number },
    rec: MessageValue,
  ): Promise<{ from: number; to: number } | null> {
    let cur = log;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = this.commitEntry(cur.entry, rec);
      try {
        await s.kv.seqs.update(this.names.roomLog(roomId), utf8(encodeRoomLog(entry)), cur.revision);
        return { from: cur.entry.floor, to: entry.floor };
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      const again = await this.roomLog(s, roomId);
      if (!again || again.entry.inc !== rec.i) throw new Error(`room ${roomId} was deleted`);
      if (again.entry.seq >= rec.m.seq) return null; // committed by a node that found our record
      cur = again; // the floor moved (trimHistory): commit on top of it
    }
    throw this.contention('seqs', roomId);
  }

  /** The record at the next seq exists but the room log has not moved: finish that commit (or drop a leftover). */
  private async helpCommit(
    s: Session,
    roomId: string,
    log: { entry: RoomLogEntry; revision: number },
    recKey: string,
  ): Promise<void> {
    const slot = await this.slot<MessageValue>(s.kv.messages, recKey);
    if (!slot.value || slot.value.i !== log.entry.inc) {
      // A delete marker, or a record of a deleted room with the same id (not ours
      // to publish): remove exactly that revision, so that the slot can be taken.
      if (slot.revision > 0) await this.purgeRevision(s, 'messages', recKey, slot.revision);
      return;
    }
    const entry = this.commitEntry(log.entry, slot.value);
    try {
      await s.kv.seqs.update(this.names.roomLog(roomId), utf8(encodeRoomLog(entry)), log.revision);
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  /** Remove the records (and id index entries) of seqs [from, to) of one incarnation. */
  private async dropRecords(
    s: Session,
    roomId: string,
    inc: string,
    from: number,
    to: number,
  ): Promise<void> {
    const seqs = Array.from({ length: to - from }, (_, i) => from + i);
    await batched(seqs, async (seq) => {
      const key = this.names.messageAt(roomId, seq);
      const rec = await this.slot<MessageValue>(s.kv.messages, key);
      if (!rec.value || rec.value.i !== inc) return;
      const idKey = this.names.messageId(roomId, rec.value.m.id);
      const idSlot = await s.kv.messages.get(idKey);
      await Promise.all([
        this.purgeRevision(s, 'messages', key, rec.revision),
        idSlot && idSlot.operation === 'PUT' && fromUtf8(idSlot.value) === String(seq)
          ? this.purgeRevision(s, 'messages', idKey, idSlot.revision)
          : undefined,
      ]);
    });
  }

  /** Records of seqs `first..last` that belong to `log`'s incarnation, in seq order. */
  private async records(
    s: Session,
    roomId: string,
    inc: string,
    first: number,
    last: number,
  ): Promise<StoredMessage[]> {
    const seqs = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    const recs = await batched(seqs, (seq) =>
      this.value<MessageValue>(s.kv.messages, this.names.messageAt(roomId, seq)),
    );
    return recs.filter((r): r is MessageValue => r !== null && r.i === inc).map((r) => r.m);
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    return this.exec(async (s) => {
      const { after, before, limit } = query;
      if (limit <= 0 || Number.isNaN(after) || Number.isNaN(before)) return [];
      const log = await this.roomLog(s, roomId);
      if (!log) return [];
      // History is the contiguous range floor..seq; intersect with (after, before).
      let lo = log.entry.floor;
      let hi = log.entry.seq;
      if (after !== undefined) lo = Math.max(lo, Math.floor(after) + 1);
      if (before !== undefined) hi = Math.min(hi, Math.ceil(before) - 1);
      const page = pageRange(lo, hi, limit, after !== undefined);
      if (!page) return [];
      return this.records(s, roomId, log.entry.inc, page.first, page.last);
    });
  }

  /** The record of a message by id, if it is in history; with its key and revision. */
  private async findMessage(
    s: Session,
    roomId: string,
    messageId: string,
  ): Promise<{ key: string; slot: Slot<MessageValue> } | null> {
    const idEntry = await s.kv.messages.get(this.names.messageId(roomId, messageId));
    if (!idEntry || idEntry.operation !== 'PUT') return null;
    const seq = Number(fromUtf8(idEntry.value));
    const key = this.names.messageAt(roomId, seq);
    const [log, slot] = await Promise.all([
      this.roomLog(s, roomId),
      this.slot<MessageValue>(s.kv.messages, key),
    ]);
    if (!log || !slot.value) return null;
    const { entry } = log;
    if (seq < entry.floor || seq > entry.seq || slot.value.i !== entry.inc || slot.value.m.id !== messageId) {
      return null;
    }
    return { key, slot };
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    return this.exec(async (s) => (await this.findMessage(s, roomId, messageId))?.slot.value?.m ?? null);
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    return this.exec((s) =>
      this.queue.run(`message/${roomId}/${messageId}`, async () => {
        for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
          const found = await this.findMessage(s, roomId, messageId);
          if (!found) return null;
          const rec = found.slot.value!;
          const applied = applyMutation(rec.m, mutation);
          if (applied === 'limited') return { message: rec.m, changed: false, limited: true };
          const changed = applied;
          if (!changed) return { message: rec.m, changed };
          const bytes = jsonBytes(rec);
          try {
            await s.kv.messages.update(found.key, bytes, found.slot.revision);
          } catch (err) {
            if (!isConflict(err)) throw err;
            await casBackoff(attempt);
            continue;
          }
          return { message: parseJson<MessageValue>(bytes).m, changed };
        }
        throw this.contention('messages', messageId);
      }),
    );
  }

  async latestSeq(roomId: string): Promise<number> {
    return this.exec(async (s) => (await this.roomLog(s, roomId))?.entry.seq ?? 0);
  }

  async oldestSeq(roomId: string): Promise<number> {
    return this.exec(async (s) => (await this.roomLog(s, roomId))?.entry.floor ?? 1);
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    return this.exec((s) =>
      this.queue.run(`append/${roomId}`, async () => {
        const maxCount = count(limits.maxCount);
        const { olderThan } = limits;
        for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
          const log = await this.roomLog(s, roomId);
          if (!log) return 0;
          const { entry } = log;
          const size = entry.seq - entry.floor + 1;
          let floor = entry.floor + Math.max(0, size - maxCount);
          if (olderThan !== undefined && !Number.isNaN(olderThan)) {
            // Walk up from the new floor while messages are older than the cutoff.
            scan: while (floor <= entry.seq) {
              const last = Math.min(entry.seq, floor + READ_BATCH - 1);
              const recs = await this.records(s, roomId, entry.inc, floor, last);
              if (recs.length === 0) break;
              for (const m of recs) {
                if (m.seq !== floor || timestampMs(m.timestamp) >= olderThan) break scan;
                floor++;
              }
            }
          }
          if (floor === entry.floor) return 0;
          const next: RoomLogEntry = { seq: entry.seq, floor, inc: entry.inc };
          try {
            await s.kv.seqs.update(this.names.roomLog(roomId), utf8(encodeRoomLog(next)), log.revision);
          } catch (err) {
            if (!isConflict(err)) throw err;
            await casBackoff(attempt);
            continue;
          }
          this.later(() => this.dropRecords(s, roomId, entry.inc, entry.floor, floor));
          return floor - entry.floor;
        }
        throw this.contention('seqs', roomId);
      }),
    );
  }

  // ------------------------------------------------------------ presence

  async setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void> {
    await this.exec(async (s) => {
      const value: Expiring<PresenceRecord> = { v: record, e: Date.now() + ttlMsFromSeconds(ttlSeconds) };
      await s.kv.presence.put(this.names.presence(record.userId), jsonBytes(value));
    });
  }

  async getPresence(userIds: string[]): Promise<PresenceRecord[]> {
    return this.exec(async (s) => {
      const slots = await batched(userIds, (id) =>
        this.slot<Expiring<PresenceRecord>>(s.kv.presence, this.names.presence(id)),
      );
      const now = Date.now();
      const out: PresenceRecord[] = [];
      const expired: Promise<void>[] = [];
      slots.forEach((slot, i) => {
        if (!slot.value) return;
        if (slot.value.e > now) out.push(slot.value.v);
        else
          expired.push(this.deleteIfUnchanged(s.kv.presence, this.names.presence(userIds[i]), slot.revision));
      });
      await Promise.all(expired);
      return out;
    });
  }

  async removePresence(userId: string): Promise<void> {
    await this.exec((s) => this.purge(s, 'presence', this.names.presence(userId)));
  }

  // ------------------------------------------------------------ connection directory

  /*
   * The user's nodes are one value (compare-and-swap); the node's users are one
   * key each (a node may hold many users). Adding writes the node's key first,
   * removing clears the user's value first, so a failure half-way leaves the
   * user listed under the node only: nodeUsers is always a superset, and
   * reaping a dead node (nodeUsers, then removeUserNode for each) misses nobody.
   */

  async addUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec(async (s) => {
      await s.kv.directory.put(this.names.nodeUser(nodeId, userId), utf8('1'));
      await this.cas<string[], void>(s, 'directory', this.names.userNodes(userId), (cur) =>
        cur?.includes(nodeId) ? { result: undefined } : { result: undefined, next: [...(cur ?? []), nodeId] },
      );
    });
  }

  async removeUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec(async (s) => {
      await this.cas<string[], void>(s, 'directory', this.names.userNodes(userId), (cur) => {
        if (!cur?.includes(nodeId)) return { result: undefined };
        const next = cur.filter((n) => n !== nodeId);
        return { result: undefined, next: next.length > 0 ? next : DELETE };
      });
      await this.purge(s, 'directory', this.names.nodeUser(nodeId, userId));
    });
  }

  async userNodes(userId: string): Promise<string[]> {
    return this.exec(
      async (s) => (await this.value<string[]>(s.kv.directory, this.names.userNodes(userId))) ?? [],
    );
  }

  async nodeUsers(nodeId: string): Promise<string[]> {
    return this.exec(async (s) => {
      const keys = await this.listKeys(s.kv.directory, this.names.nodeUsersOf(nodeId));
      return keys.map((k) => decodeToken(k.slice(k.lastIndexOf('.') + 1)));
    });
  }

  async setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits: { max?: number; deadNodes?: readonly string[] } = {},
  ): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Record<string, number>, boolean>(s, 'directory', this.names.userConnections(userId), (cur) => {
        // A Map, so that no node id can be mistaken for an object's own machinery (`__proto__`).
        const next = new Map(Object.entries(cur ?? {}));
        for (const dead of limits.deadNodes ?? []) next.delete(dead);
        if (limits.max !== undefined && count > (next.get(nodeId) ?? 0)) {
          let total = count;
          for (const [n, c] of next) if (n !== nodeId) total += c;
          if (total > limits.max) return { result: false };
        }
        if (count > 0) next.set(nodeId, count);
        else next.delete(nodeId);
        return { result: true, next: next.size > 0 ? Object.fromEntries(next) : DELETE };
      }),
    );
  }

  async userConnections(userId: string): Promise<Record<string, number>> {
    return this.exec(
      async (s) =>
        (await this.value<Record<string, number>>(s.kv.directory, this.names.userConnections(userId))) ?? {},
    );
  }

  // ------------------------------------------------------------ expiring sets

  /* One JSON object per set in the counters bucket; expiry by this node's clock. */

  async touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null> {
    return this.exec((s) =>
      this.cas<Record<string, number>, { expires: number; added: boolean } | null>(
        s,
        'counters',
        this.names.expiringSet(key),
        (cur) => {
          const now = Date.now();
          const next = new Map<string, number>();
          let live = 0;
          for (const [m, e] of Object.entries(cur ?? {})) {
            if (m !== member && e <= now - EXPIRED_MEMBER_GRACE_MS) continue;
            next.set(m, e);
            if (m !== member && e > now) live++;
          }
          const current = next.get(member);
          const added = current === undefined || current <= now;
          if (added && live >= max) return { result: null };
          const expires = Math.max(now + Math.max(1, Math.ceil(ttlMs) || 1), (current ?? 0) + 1);
          next.set(member, expires);
          return { result: { expires, added }, next: Object.fromEntries(next) };
        },
      ),
    );
  }

  async removeExpiring(key: string, member: string, stamp?: number): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Record<string, number>, boolean>(s, 'counters', this.names.expiringSet(key), (cur) => {
        const next = new Map(Object.entries(cur ?? {}));
        const current = next.get(member);
        if (current === undefined || (stamp !== undefined && current !== stamp)) return { result: false };
        next.delete(member);
        return { result: true, next: next.size > 0 ? Object.fromEntries(next) : DELETE };
      }),
    );
  }

  async listExpiring(key: string): Promise<string[]> {
    return this.exec(async (s) => {
      const set = await this.value<Record<string, number>>(s.kv.counters, this.names.expiringSet(key));
      const now = Date.now();
      return Object.entries(set ?? {})
        .filter(([, e]) => e > now)
        .map(([m]) => m);
    });
  }

  // ------------------------------------------------------------ counters

  async incrementCounter(key: string, by: number, ttlMs: number): Promise<number> {
    if (!Number.isFinite(by)) throw new Error(`cannot increment a counter by ${by}`);
    const ttl = Number.isNaN(ttlMs) ? 0 : Math.max(0, Math.min(Math.ceil(ttlMs), Number.MAX_SAFE_INTEGER));
    return this.exec((s) =>
      this.cas<Expiring<number>, number>(s, 'counters', this.names.counter(key), (cur) => {
        const now = Date.now();
        // The expiry runs from the counter's creation; increments keep it.
        const next: Expiring<number> =
          cur && cur.e > now ? { v: cur.v + by, e: cur.e } : { v: by, e: now + ttl };
        return { result: next.v, next };
      }),
    );
  }

  async getCounter(key: string): Promise<number> {
    return this.exec(async (s) => {
      const c = await this.value<Expiring<number>>(s.kv.counters, this.names.counter(key));
      return c && c.e > Date.now() ? c.v : 0;
    });
  }

  // ------------------------------------------------------------ node registry

  async registerNode(info: NodeInfo, ttlSeconds: number): Promise<void> {
    await this.exec(async (s) => {
      const value: Expiring<NodeInfo> = { v: info, e: Date.now() + ttlMsFromSeconds(ttlSeconds) };
      await s.kv.nodes.put(this.names.node(info.nodeId), jsonBytes(value));
    });
  }

  async listNodes(): Promise<NodeInfo[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<Expiring<NodeInfo>>(s.kv.nodes, '>');
      const now = Date.now();
      const expired = entries.filter((e) => e.value.e <= now);
      if (expired.length > 0) {
        await Promise.all(expired.map((e) => this.deleteIfUnchanged(s.kv.nodes, e.key, e.revision)));
      }
      return entries.filter((e) => e.value.e > now).map((e) => e.value.v);
    });
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.exec((s) => this.purge(s, 'nodes', this.names.node(nodeId)));
  }
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const isExpired = (r: Restriction): boolean => r.until !== null && r.until <= Date.now();

/** `fn` over `items`, at most READ_BATCH at a time; results in order. */
async function batched<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_BATCH) {
    out.push(...(await Promise.all(items.slice(i, i + READ_BATCH).map(fn))));
  }
  return out;
}

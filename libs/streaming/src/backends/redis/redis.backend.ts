import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { StreamingOptions } from '../../config/streaming-options.interface';
import { StreamingError } from '../../protocol/streaming-error';
import {
  FIELD_SEP,
  decodeMember,
  decodeMessageRecord,
  decodeRestriction,
  encodeMember,
  encodeMessageTail,
  encodeRestriction,
  jsonLiteral,
  restrictionField,
  roomFromHash,
  roomToHashArgs,
  splitMessageEnvelope,
  timestampMs,
} from './redis-codec';
import {
  ConnectionSettings,
  commandConnectionOptions,
  createCluster,
  createSentinel,
  createStandalone,
  reconnectBackoff,
  subscriberConnectionOptions,
} from './redis-connection';
import { RedisKeys } from './redis-keys';
import {
  ADD_MEMBER,
  APPEND_MESSAGE,
  APPEND_MODLOG,
  CREATE_ROOM,
  DELETE_ROOM,
  GET_HISTORY,
  GET_RESTRICTION,
  HSET_IF_ROOM,
  INCREMENT_COUNTER,
  LIST_EXPIRING,
  REMOVE_EXPIRING,
  SET_USER_CONNECTIONS,
  TOUCH_EXPIRING,
  LIST_NODES,
  LIST_RESTRICTIONS,
  LuaScript,
  OLDEST_SEQ,
  PUBLISH_ROUTED,
  PRUNE_USER_ROOMS,
  REGISTER_NODE,
  REMOVE_NODE,
  RESERVE_USER_ROOM,
  SET_MEMBER_ROLE,
  TRIM_HISTORY,
  UPDATE_MESSAGE,
  UPDATE_ROOM,
  runScript,
} from './redis-scripts';
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

/** A standalone / sentinel connection or a cluster client. */
export type RedisClient = Redis | Cluster;

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

/** Reply errors that mean "the server cannot serve now", not "the command is wrong". */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|NOREPLICAS|MISCONF|OOM|NOAUTH|WRONGPASS|NOPERM)\b/;

/** A user-index entry this old whose room does not list the user is a leftover of a failed step. */
const STALE_RESERVATION_MS = 30_000;

const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** A finite non-negative integer for Lua (which cannot read "Infinity" / "NaN"): Infinity clamps, NaN is 0. */
const count = (n: number): number =>
  n === Infinity ? MAX_COUNT : Number.isFinite(n) ? Math.max(0, Math.min(Math.floor(n), MAX_COUNT)) : 0;

/**
 * The Redis backend: rooms, history, presence, counters and the node registry
 * in Redis, fan-out through Redis pub/sub, so that any number of nodes share
 * them. Works with a standalone server, a sentinel-managed master or a Redis
 * Cluster (see redis-keys.ts for the hash-tagged key layout; redis-codec.ts
 * for the value layouts; redis-scripts.ts for the Lua scripts).
 *
 * History: per room, a stream `hist` with one entry `<seq>-0 {id, ts}` per
 * message keeps the order (paging by seq is XRANGE / XREVRANGE, trimming is
 * XRANGE from the start), and a hash `msgs` messageId -> record holds each
 * message's current state, so edits, deletes and reactions rewrite the record
 * in place (one Lua script) and never duplicate a message in history.
 *
 * Operations spanning a room and a user (or the room index) cannot be one
 * script in a cluster, because those keys live on different slots. They are
 * ordered single-slot steps, chosen so that a failure half-way leaves at worst
 * a stale entry in an index, never a member missing from the room:
 * - addMember: (1) reserve the room in the user's index, checking
 *   `maxRoomsPerUser` there (atomic per user: concurrent joins cannot exceed
 *   it); (2) add to the room, checking `maxMembers` (atomic per room). If the
 *   room refuses (`no_room` / `full`), the reservation is undone. A
 *   reservation stranded by a crash or an outage between the steps is pruned
 *   once it is older than 30 s and the room does not list the user (checked
 *   when the user hits the limit).
 * - createRoom: (1) create the room with its owner (refuses a duplicate id);
 *   (2) add it to the owner's index and to the room index; if (2) fails,
 *   (1) is undone.
 * - removeMember / deleteRoom: the room first (the source of truth), then the
 *   indexes. `listRooms` drops index entries whose room is gone.
 * - addUserNode / removeUserNode: the node's set first on add, the user's set
 *   first on remove, so `nodeUsers` is always a superset (reaping a dead node
 *   misses nobody).
 *
 * Pub/sub order: appendMessage PUBLISHes inside its script, on the room's
 * node, so a room's messages reach every subscriber in seq order. In a
 * cluster, `publish()` also runs as a script routed by the topic (a room topic
 * routes to the room's slot), because a keyless PUBLISH would go to a random
 * node and two publishes on one topic could overtake each other.
 *
 * Failures to reach Redis reject quickly with `StreamingError('backend_unavailable')`:
 * commands are never queued while disconnected, a command without a reply
 * fails after `commandTimeoutMs`, and reconnection is automatic (capped
 * backoff), with pub/sub subscriptions restored after a reconnect.
 */
export class RedisBackend implements StreamingBackend {
  readonly kind = 'redis';
  readonly distributed = true;
  /** Prefix of every key and channel. */
  readonly keyPrefix: string;

  private readonly keys: RedisKeys;
  private readonly client: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly ownsClient: boolean;
  private readonly ownsSubscriber: boolean;
  private readonly connectTimeoutMs: number;
  private readonly onError: (err: unknown) => void;
  /** channel -> handler */
  private readonly handlers = new Map<string, TopicHandler>();
  private listening = false;

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
    this.keyPrefix = options.keyPrefix ?? 'fs:';
    this.keys = new RedisKeys(this.keyPrefix);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.onError = options.onError ?? (() => undefined);
    const settings: ConnectionSettings = {
      username: options.username,
      password: options.password,
      commandTimeoutMs: options.commandTimeoutMs ?? 5000,
      connectTimeoutMs: this.connectTimeoutMs,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 2000,
      connectionName: options.connectionName,
      redisOptions: options.redisOptions,
      clusterOptions: options.clusterOptions,
    };

    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      this.client = this.create(options, settings, commandConnectionOptions(settings));
      this.ownsClient = true;
    }

    if (options.subscriber) {
      this.subscriber = options.subscriber;
      this.ownsSubscriber = false;
    } else if (options.client) {
      this.subscriber = this.duplicate(options.client, settings);
      this.ownsSubscriber = true;
    } else {
      this.subscriber = this.create(options, settings, subscriberConnectionOptions(settings));
      this.ownsSubscriber = true;
    }

    // ioredis reports connection problems as 'error' events; ours go to onError
    // (commands still reject on their own). A caller's connection keeps its own handling.
    if (this.ownsClient) this.client.on('error', (err) => this.onError(err));
    if (this.ownsSubscriber) this.subscriber.on('error', (err) => this.onError(err));
  }

  private create(
    options: RedisBackendOptions,
    settings: ConnectionSettings,
    base: RedisOptions,
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
    if (urls.length > 1 || options.cluster) return createCluster(urls, settings, base);
    return createStandalone(urls[0], settings, base);
  }

  private duplicate(client: RedisClient, settings: ConnectionSettings): RedisClient {
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

  // ------------------------------------------------------------ lifecycle

  async connect(): Promise<void> {
    if (!this.listening) {
      this.subscriber.on('message', this.onMessage);
      // Belt and braces next to ioredis' autoResubscribe: after any reconnect, (re)subscribe
      // every topic this node wants, including ones whose SUBSCRIBE failed during an outage.
      this.subscriber.on('ready', () => {
        const channels = [...this.handlers.keys()];
        if (channels.length > 0)
          this.subscriber.subscribe(...channels).catch((err: unknown) => this.onError(err));
      });
      this.listening = true;
    }
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
    const channels = [...this.handlers.keys()];
    this.handlers.clear();
    if (this.listening) {
      this.subscriber.off('message', this.onMessage);
      this.listening = false;
    }
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

  // ------------------------------------------------------------ plumbing

  private unavailable(cause: unknown): StreamingError {
    const err = new StreamingError('backend_unavailable', 'The streaming backend (Redis) is unavailable.');
    err.cause = cause;
    return err;
  }

  /** Connection-level failures become `backend_unavailable`; a Redis error about the command itself is rethrown as is. */
  private mapError(err: unknown): Error {
    if (err instanceof StreamingError) return err;
    if (err instanceof Error && err.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(err.message)) return err;
    return this.unavailable(err);
  }

  /** Run commands on the command connection; fails at once when it is not ready (no queueing). */
  private async exec<T>(fn: (c: Redis) => Promise<T>): Promise<T> {
    const c = this.client;
    if (c.status !== 'ready') throw this.unavailable(new Error(`Redis connection is ${c.status}`));
    try {
      // Cluster exposes the same command API as Redis.
      return await fn(c as Redis);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  private run(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.exec((c) => runScript(c, script, keys, args));
  }

  // ------------------------------------------------------------ pub/sub

  private readonly onMessage = (channel: string, message: string): void => {
    const handler = this.handlers.get(channel);
    if (!handler) return;
    try {
      handler(message, channel.slice(this.keyPrefix.length));
    } catch (err) {
      this.onError(err);
    }
  };

  async publish(topic: string, payload: string): Promise<void> {
    const channel = this.keys.channel(topic);
    if (this.client.isCluster) {
      // Per-topic order: every publish on a topic leaves from the node of its routing slot.
      await this.run(PUBLISH_ROUTED, [this.keys.publishRoute(topic)], [channel, payload]);
    } else {
      await this.exec((c) => c.publish(channel, payload));
    }
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    const channel = this.keys.channel(topic);
    const sub = this.subscriber;
    // Kept even when Redis is down: the subscription is made when the subscriber is ready again.
    this.handlers.set(channel, handler);
    if (sub.status !== 'ready') throw this.unavailable(new Error(`Redis subscriber is ${sub.status}`));
    try {
      await sub.subscribe(channel);
    } catch (err) {
      const mapped = this.mapError(err);
      if (
        !(mapped instanceof StreamingError && mapped.code === 'backend_unavailable') &&
        this.handlers.get(channel) === handler
      ) {
        this.handlers.delete(channel);
      }
      throw mapped;
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    const channel = this.keys.channel(topic);
    // Delivery stops now; the UNSUBSCRIBE below confirms it server-side.
    this.handlers.delete(channel);
    const sub = this.subscriber;
    if (sub.status !== 'ready') throw this.unavailable(new Error(`Redis subscriber is ${sub.status}`));
    try {
      await sub.unsubscribe(channel);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  // ------------------------------------------------------------ rooms

  async createRoom(room: RoomRecord, owner: MemberRecord): Promise<void> {
    const created = await this.run(CREATE_ROOM, this.keys.roomKeyList(room.id), [
      owner.userId,
      encodeMember(owner),
      ...roomToHashArgs(room),
    ]);
    if (created !== 1) throw new Error(`room ${room.id} already exists`);
    // Other slots: the owner's room index and the room index. Undo the room if they fail.
    try {
      await Promise.all([
        this.run(RESERVE_USER_ROOM, [this.keys.userRooms(owner.userId)], [room.id, '']),
        this.exec((c) => c.sadd(this.keys.roomIndex(), room.id)),
      ]);
    } catch (err) {
      await this.undoCreateRoom(room.id, owner.userId);
      throw err;
    }
  }

  private async undoCreateRoom(roomId: string, ownerId: string): Promise<void> {
    try {
      await this.run(DELETE_ROOM, this.keys.roomKeyList(roomId), []);
      await Promise.all([
        this.exec((c) => c.zrem(this.keys.userRooms(ownerId), roomId)),
        this.exec((c) => c.srem(this.keys.roomIndex(), roomId)),
      ]);
    } catch (err) {
      // The original failure is what the caller gets; this one is reported.
      this.onError(err);
    }
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    const hash = await this.exec((c) => c.hgetall(this.keys.room(roomId).room));
    return roomFromHash(hash);
  }

  async updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null> {
    const { id: _id, ...fields } = patch as Partial<RoomRecord>;
    const res = await this.run(UPDATE_ROOM, [this.keys.room(roomId).room], roomToHashArgs(fields));
    return Array.isArray(res) ? roomFromHash(res as string[]) : null;
  }

  async deleteRoom(roomId: string): Promise<boolean> {
    const res = (await this.run(DELETE_ROOM, this.keys.roomKeyList(roomId), [])) as [number, ...string[]];
    const [existed, ...members] = res;
    await Promise.all([
      ...members.map((userId) => this.exec((c) => c.zrem(this.keys.userRooms(userId), roomId))),
      this.exec((c) => c.srem(this.keys.roomIndex(), roomId)),
    ]);
    return existed === 1;
  }

  async listRooms(): Promise<RoomRecord[]> {
    const ids = await this.exec((c) => c.smembers(this.keys.roomIndex()));
    const rooms = await Promise.all(ids.map((id) => this.getRoom(id)));
    const gone = ids.filter((_, i) => rooms[i] === null);
    if (gone.length > 0) await this.exec((c) => c.srem(this.keys.roomIndex(), ...gone));
    return rooms
      .filter((r): r is RoomRecord => r !== null)
      .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.id, b.id));
  }

  async countRooms(): Promise<number> {
    return this.exec((c) => c.scard(this.keys.roomIndex()));
  }

  // ------------------------------------------------------------ membership

  async addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult> {
    return this.addMemberOnce(roomId, member, limits, false);
  }

  private async addMemberOnce(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
    repaired: boolean,
  ): Promise<AddMemberResult> {
    const k = this.keys.room(roomId);
    const userKey = this.keys.userRooms(member.userId);
    const limit = limits.maxRoomsPerUser === undefined ? '' : count(limits.maxRoomsPerUser);
    // Step 1, the user's slot: reserve (checks maxRoomsPerUser atomically).
    const reserved = (await this.run(RESERVE_USER_ROOM, [userKey], [roomId, limit])) as string;
    if (reserved === 'user_limit') {
      // The local backend's order of answers: no_room, exists, full, then user_limit.
      const pre = (await this.run(ADD_MEMBER, [k.room, k.members], [member.userId, '', '1'])) as string;
      if (pre !== 'ok') return pre as AddMemberResult;
      if (!repaired && (await this.pruneStaleUserRooms(member.userId)) > 0) {
        return this.addMemberOnce(roomId, member, limits, true);
      }
      return 'user_limit';
    }
    // Step 2, the room's slot: add (checks maxMembers atomically). If this step
    // fails without an answer, the reservation stays (it may have succeeded);
    // pruneStaleUserRooms cleans it up later if it did not.
    const result = (await this.run(
      ADD_MEMBER,
      [k.room, k.members],
      [member.userId, encodeMember(member), '0'],
    )) as AddMemberResult;
    // Compensation: the room refused, so the reservation made in step 1 goes.
    if (reserved === 'reserved' && (result === 'no_room' || result === 'full')) {
      await this.exec((c) => c.zrem(userKey, roomId));
    }
    return result;
  }

  /** Drop user-index entries older than STALE_RESERVATION_MS whose room does not list the user. */
  private async pruneStaleUserRooms(userId: string): Promise<number> {
    const userKey = this.keys.userRooms(userId);
    const ids = await this.exec((c) => c.zrange(userKey, 0, '-1'));
    const present = await Promise.all(
      ids.map((id) => this.exec((c) => c.hexists(this.keys.room(id).members, userId))),
    );
    const stale = ids.filter((_, i) => present[i] === 0);
    if (stale.length === 0) return 0;
    return (await this.run(PRUNE_USER_ROOMS, [userKey], [STALE_RESERVATION_MS, ...stale])) as number;
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    const removed = await this.exec((c) => c.hdel(this.keys.room(roomId).members, userId));
    if (removed === 0) return false;
    await this.exec((c) => c.zrem(this.keys.userRooms(userId), roomId));
    return true;
  }

  async getMember(roomId: string, userId: string): Promise<MemberRecord | null> {
    const v = await this.exec((c) => c.hget(this.keys.room(roomId).members, userId));
    return v === null ? null : decodeMember(v);
  }

  async setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean> {
    return (await this.run(SET_MEMBER_ROLE, [this.keys.room(roomId).members], [userId, role])) === 1;
  }

  async listMembers(roomId: string): Promise<MemberRecord[]> {
    const values = await this.exec((c) => c.hvals(this.keys.room(roomId).members));
    return values
      .map(decodeMember)
      .sort((a, b) => compare(a.joinedAt, b.joinedAt) || compare(a.userId, b.userId));
  }

  async countMembers(roomId: string): Promise<number> {
    return this.exec((c) => c.hlen(this.keys.room(roomId).members));
  }

  async userRooms(userId: string): Promise<string[]> {
    return this.exec((c) => c.zrange(this.keys.userRooms(userId), 0, '-1'));
  }

  // ------------------------------------------------------------ bans and mutes

  async setRestriction(roomId: string, restriction: Restriction): Promise<void> {
    const k = this.keys.room(roomId);
    await this.run(
      HSET_IF_ROOM,
      [k.room, k.restrictions],
      [restrictionField(restriction.kind, restriction.userId), encodeRestriction(restriction)],
    );
  }

  async getRestriction(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
  ): Promise<Restriction | null> {
    const v = await this.run(
      GET_RESTRICTION,
      [this.keys.room(roomId).restrictions],
      [restrictionField(kind, userId), Date.now()],
    );
    return typeof v === 'string' ? decodeRestriction(v) : null;
  }

  async clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean> {
    const n = await this.exec((c) =>
      c.hdel(this.keys.room(roomId).restrictions, restrictionField(kind, userId)),
    );
    return n > 0;
  }

  async listRestrictions(roomId: string): Promise<Restriction[]> {
    const values = (await this.run(
      LIST_RESTRICTIONS,
      [this.keys.room(roomId).restrictions],
      [Date.now()],
    )) as string[];
    return values.map(decodeRestriction);
  }

  // ------------------------------------------------------------ invitations

  async addInvitation(roomId: string, invitation: Invitation): Promise<void> {
    const k = this.keys.room(roomId);
    await this.run(HSET_IF_ROOM, [k.room, k.invitations], [invitation.userId, JSON.stringify(invitation)]);
  }

  async getInvitation(roomId: string, userId: string): Promise<Invitation | null> {
    const v = await this.exec((c) => c.hget(this.keys.room(roomId).invitations, userId));
    return v === null ? null : (JSON.parse(v) as Invitation);
  }

  async removeInvitation(roomId: string, userId: string): Promise<boolean> {
    return (await this.exec((c) => c.hdel(this.keys.room(roomId).invitations, userId))) > 0;
  }

  // ------------------------------------------------------------ moderation log

  async appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void> {
    const k = this.keys.room(roomId);
    await this.run(APPEND_MODLOG, [k.room, k.modlog], [JSON.stringify(entry), count(maxEntries)]);
  }

  async getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]> {
    const n = count(limit);
    if (n === 0) return [];
    const values = await this.exec((c) => c.lrange(this.keys.room(roomId).modlog, -n, -1));
    return values.map((v) => JSON.parse(v) as ModerationLogEntry);
  }

  // ------------------------------------------------------------ history

  async appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage> {
    const msg: MessageDraft = { ...draft, metadata: draft.metadata ?? {}, reactions: draft.reactions ?? {} };
    const tail = encodeMessageTail(msg);
    const publish = Boolean(options.publishTopic);
    const envelope = publish ? splitMessageEnvelope(msg) : { prefix: '', suffix: '' };
    const k = this.keys.room(roomId);
    const seq = (await this.run(
      APPEND_MESSAGE,
      [k.room, k.seq, k.hist, k.msgs],
      [
        msg.id,
        timestampMs(msg.timestamp),
        tail,
        count(options.maxHistory),
        publish ? this.keys.channel(options.publishTopic!) : '',
        envelope.prefix,
        envelope.suffix,
      ],
    )) as number;
    if (seq === -1) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    if (seq === -2) throw new Error(`message ${msg.id} already exists in room ${roomId}`);
    return decodeMessageRecord(`${seq}${FIELD_SEP}${tail}`);
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    const { after, before } = query;
    const limit = count(query.limit);
    if (limit === 0 || Number.isNaN(after) || Number.isNaN(before)) return [];
    // Stream ids are `<seq>-0`: "n" as a start means n-0, as an end n-<max>.
    let start = '-';
    if (after !== undefined) {
      if (after === Infinity) return [];
      const s = Math.floor(after) + 1;
      if (s > 0) start = String(s);
    }
    let end = '+';
    if (before !== undefined && before !== Infinity) {
      const e = Math.ceil(before) - 1;
      if (e < 1) return [];
      end = String(e);
    }
    const dir = after !== undefined ? 'asc' : 'desc';
    const k = this.keys.room(roomId);
    const records = (await this.run(GET_HISTORY, [k.hist, k.msgs], [dir, start, end, limit])) as string[];
    const messages = records.map(decodeMessageRecord);
    return dir === 'desc' ? messages.reverse() : messages;
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    const v = await this.exec((c) => c.hget(this.keys.room(roomId).msgs, messageId));
    return v === null ? null : decodeMessageRecord(v);
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    let args: string[];
    switch (mutation.kind) {
      case 'edit':
        args = [
          'edit',
          jsonLiteral(mutation.content),
          jsonLiteral(mutation.by),
          jsonLiteral(mutation.at),
          String(mutation.keepVersions),
        ];
        break;
      case 'delete':
        args = ['delete', jsonLiteral(mutation.by), jsonLiteral(mutation.at), String(mutation.keepVersions)];
        break;
      case 'react':
        args = [
          'react',
          jsonLiteral(mutation.reaction),
          jsonLiteral(mutation.userId),
          mutation.add ? '1' : '0',
          String(mutation.maxReactions),
        ];
        break;
      default:
        throw new Error(`unknown mutation kind ${(mutation as { kind: string }).kind}`);
    }
    const res = await this.run(UPDATE_MESSAGE, [this.keys.room(roomId).msgs], [messageId, ...args]);
    if (!Array.isArray(res)) return null;
    const [changed, record] = res as [number, string];
    const message = decodeMessageRecord(record);
    return changed === -1 ? { message, changed: false, limited: true } : { message, changed: changed === 1 };
  }

  async latestSeq(roomId: string): Promise<number> {
    const v = await this.exec((c) => c.get(this.keys.room(roomId).seq));
    return v === null ? 0 : Number(v);
  }

  async oldestSeq(roomId: string): Promise<number> {
    const k = this.keys.room(roomId);
    return (await this.run(OLDEST_SEQ, [k.hist, k.seq], [])) as number;
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    const k = this.keys.room(roomId);
    const { olderThan } = limits;
    let cutoff = '';
    if (olderThan !== undefined && !Number.isNaN(olderThan)) {
      cutoff = String(Math.max(-MAX_COUNT, Math.min(olderThan, MAX_COUNT)));
    }
    return (await this.run(TRIM_HISTORY, [k.hist, k.msgs], [count(limits.maxCount), cutoff])) as number;
  }

  // ------------------------------------------------------------ presence

  async setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void> {
    const px = Math.max(1, Math.min(Math.round(ttlSeconds * 1000), MAX_COUNT) || 1);
    await this.exec((c) => c.set(this.keys.presence(record.userId), JSON.stringify(record), 'PX', px));
  }

  async getPresence(userIds: string[]): Promise<PresenceRecord[]> {
    const values = await Promise.all(userIds.map((id) => this.exec((c) => c.get(this.keys.presence(id)))));
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as PresenceRecord);
  }

  async removePresence(userId: string): Promise<void> {
    await this.exec((c) => c.del(this.keys.presence(userId)));
  }

  // ------------------------------------------------------------ connection directory

  /*
   * Two sets on two slots: the node's users and the user's nodes. Adding
   * writes the node's set first, removing clears the user's set first, so a
   * failure half-way leaves the user listed under the node only: nodeUsers is
   * always a superset, and reaping a dead node (nodeUsers, then
   * removeUserNode for each) never misses a user.
   */

  async addUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec((c) => c.sadd(this.keys.nodeUsers(nodeId), userId));
    await this.exec((c) => c.sadd(this.keys.userNodes(userId), nodeId));
  }

  async removeUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec((c) => c.srem(this.keys.userNodes(userId), nodeId));
    await this.exec((c) => c.srem(this.keys.nodeUsers(nodeId), userId));
  }

  async userNodes(userId: string): Promise<string[]> {
    return this.exec((c) => c.smembers(this.keys.userNodes(userId)));
  }

  async nodeUsers(nodeId: string): Promise<string[]> {
    return this.exec((c) => c.smembers(this.keys.nodeUsers(nodeId)));
  }

  async setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits: { max?: number; deadNodes?: readonly string[] } = {},
  ): Promise<boolean> {
    const v = await this.run(
      SET_USER_CONNECTIONS,
      [this.keys.userConnections(userId)],
      [nodeId, Math.max(0, Math.floor(count)), limits.max ?? '', ...(limits.deadNodes ?? [])],
    );
    return Number(v) === 1;
  }

  async userConnections(userId: string): Promise<Record<string, number>> {
    const all = await this.exec((c) => c.hgetall(this.keys.userConnections(userId)));
    return Object.fromEntries(Object.entries(all).map(([n, v]) => [n, Number(v)]));
  }

  // ------------------------------------------------------------ expiring sets

  async touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null> {
    const ttl = Math.max(1, Math.min(Math.ceil(ttlMs) || 1, MAX_COUNT));
    const v = (await this.run(
      TOUCH_EXPIRING,
      [this.keys.expiringSet(key)],
      [member, ttl, max, EXPIRED_MEMBER_GRACE_MS],
    )) as [string, number] | null;
    return v ? { expires: Number(v[0]), added: Number(v[1]) === 1 } : null;
  }

  async removeExpiring(key: string, member: string, stamp?: number): Promise<boolean> {
    const v = await this.run(REMOVE_EXPIRING, [this.keys.expiringSet(key)], [member, stamp ?? '']);
    return Number(v) === 1;
  }

  async listExpiring(key: string): Promise<string[]> {
    return (await this.run(LIST_EXPIRING, [this.keys.expiringSet(key)], [])) as string[];
  }

  // ------------------------------------------------------------ counters

  async incrementCounter(key: string, by: number, ttlMs: number): Promise<number> {
    if (!Number.isFinite(by)) throw new Error(`cannot increment a counter by ${by}`);
    const ttl = Number.isNaN(ttlMs) ? 0 : Math.max(0, Math.min(Math.ceil(ttlMs), MAX_COUNT));
    const v = await this.run(
      INCREMENT_COUNTER,
      [this.keys.counter(key)],
      [by, ttl, Number.isInteger(by) ? '0' : '1'],
    );
    return Number(v);
  }

  async getCounter(key: string): Promise<number> {
    const v = await this.exec((c) => c.get(this.keys.counter(key)));
    return v === null ? 0 : Number(v);
  }

  // ------------------------------------------------------------ node registry

  async registerNode(info: NodeInfo, ttlSeconds: number): Promise<void> {
    const ttl = Math.max(1, Math.min(Math.round(ttlSeconds * 1000), MAX_COUNT) || 1);
    await this.run(
      REGISTER_NODE,
      [this.keys.nodeInfo(), this.keys.nodeExpiry()],
      [info.nodeId, JSON.stringify(info), ttl],
    );
  }

  async listNodes(): Promise<NodeInfo[]> {
    const values = (await this.run(
      LIST_NODES,
      [this.keys.nodeInfo(), this.keys.nodeExpiry()],
      [],
    )) as string[];
    return values.map((v) => JSON.parse(v) as NodeInfo);
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.run(REMOVE_NODE, [this.keys.nodeInfo(), this.keys.nodeExpiry()], [nodeId]);
  }
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

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

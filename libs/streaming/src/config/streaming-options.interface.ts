import type { CanActivate, Type } from '@nestjs/common';
import type {
  Authenticator,
  ChannelAuthorizer,
  ChannelStore,
  ContentFilter,
  RateLimiter,
  StreamingBackend,
} from '../interfaces';

/** Which backend carries state and fan-out between nodes. */
export type BackendKind = 'local' | 'redis' | 'nats';

/** Rate limiting algorithm (`rate_limit.algorithm`). */
export type RateLimitAlgorithm = 'token_bucket' | 'sliding_window' | 'adaptive';

/** The `rate_limit` block. */
export interface RateLimitOptions {
  /** Turn rate limiting on or off. Default `true`. */
  enabled: boolean;
  /** Default `token_bucket`. */
  algorithm: RateLimitAlgorithm;
  /** Sustained requests per second per user. Default 10. */
  requestsPerSecond: number;
  /** Burst allowance. Default 20. */
  burstSize: number;
  /** Apply limits per connection instead of per user. Default `false`. */
  perConnection: boolean;
}

/** The `auth` block, with the bundled JWT authenticator's settings. */
export interface AuthOptions {
  /** Refuse connections without a valid token (HTTP 401). Default `true`. */
  requireAuth: boolean;
  /** Header that carries the token (`Bearer <jwt>`); `?token=` always works too. Default `Authorization`. */
  tokenHeader: string;
  /** Validate the token at the upgrade. Default `true`. */
  validateOnConnect: boolean;
  /** Re-check the token's expiry on each message; close with 4401 at `exp`. Default `false`. */
  validateOnMessage: boolean;
  /**
   * Refuse tokens without an `exp` claim (HTTP 401, like any invalid token). Applies to the
   * bundled JWT authenticator only; a custom authenticator decides for itself. Default `true`.
   */
  requireExp: boolean;
  /**
   * HS256 secret of the bundled JWT authenticator (env `FORGE_STREAMING_AUTH_JWT_SECRET` or
   * `JWT_SECRET`); at least 32 bytes, shorter ones fail start-up.
   */
  jwtSecret?: string;
  /** Accepted JWT algorithms. Default `['HS256']`. */
  jwtAlgorithms: string[];
  /** RS/ES/PS public key of the bundled JWT authenticator: a PEM or a path to one. */
  jwtPublicKey?: string;
  /** JWKS URL of the bundled JWT authenticator: https, or http to a loopback host only. */
  jwksUrl?: string;
}

/**
 * Every configuration key (`extensions.streaming` in YAML), camelCased; units
 * are seconds, hours for `messageRetention`, and bytes.
 */
export interface StreamingOptions {
  backend: BackendKind;
  backendUrls: string[];
  backendUsername: string;
  backendPassword: string;
  /**
   * Redis backend pub/sub: `auto` = sharded (SPUBLISH / SSUBSCRIBE) on a Redis
   * Cluster of Redis 7+, classic on a single server; `on` = sharded on a single
   * Redis 7 too; `off` = classic everywhere. The same on every node.
   */
  redisShardedPubsub: 'auto' | 'on' | 'off';
  /**
   * Redis backend: replicas a message must reach (WAIT) before it is
   * acknowledged and delivered, at most those its master has (not failed). 0 = off.
   */
  redisWaitReplicas: number;
  /** Seconds a message waits for `redisWaitReplicas`; fewer in time: `backend_unavailable`. */
  redisWaitTimeout: number;

  enableRooms: boolean;
  enableChannels: boolean;
  enablePresence: boolean;
  enableTypingIndicators: boolean;
  enableMessageHistory: boolean;
  enableDistributed: boolean;

  maxConnectionsPerUser: number;
  maxRoomsPerUser: number;
  /** Rooms one user may own (create, or hold by transfer), left or not; `limit_exceeded` beyond. */
  maxRoomsOwnedPerUser: number;
  /** Hours a room with no member and no new message is kept before it is deleted (0: kept forever). */
  emptyRoomTtl: number;
  maxChannelsPerUser: number;
  /** Bytes. */
  maxMessageSize: number;
  /** Connections this node accepts in total (0 = no limit). */
  maxConnections: number;
  /** Anonymous connections this node accepts when `auth.requireAuth` is off. */
  maxAnonymousConnections: number;
  maxMessagesPerSecond: number;

  /** Seconds. */
  pingInterval: number;
  pongTimeout: number;
  /** A reader that takes nothing, or stays over `sendQueueBytes`, this long is closed with 1013. */
  writeTimeout: number;
  readTimeout: number;

  presenceTimeout: number;
  presenceCleanup: number;

  typingTimeout: number;
  typingCleanup: number;
  maxTypingUsersPerRoom: number;

  /** Hours. */
  messageRetention: number;
  maxHistoryMessages: number;
  /** Earlier versions an edited or deleted message keeps in its audit trail (the oldest are dropped). */
  maxMessageVersions: number;
  /** Different reactions one message may carry; a new one beyond is `limit_exceeded`. */
  maxReactionsPerMessage: number;

  /** Generated when empty. */
  nodeId: string;
  /** Seconds between node heartbeats (clusters). */
  heartbeatInterval: number;
  /** Seconds after which a silent node counts as dead. */
  nodeTimeout: number;

  tlsEnabled: boolean;
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsCaFile: string;

  rateLimit: RateLimitOptions;
  auth: AuthOptions;

  /**
   * The older `send_queue_size` key: when `sendQueueBytes` is 0, the
   * byte budget is this many KiB (1024 → 1 MiB).
   */
  sendQueueSize: number;
  /**
   * Bytes a connection may leave unread (queued plus its socket's buffer). A
   * reader over this budget for `writeTimeout`, or past four times it at any
   * moment, is closed with 1013. 0 = `sendQueueSize` KiB.
   */
  sendQueueBytes: number;
  /** Where the local backend keeps rooms and history: `memory`, or `sqlite` (durable across restarts). */
  historyStore: 'memory' | 'sqlite';
  /** SQLite file of the `sqlite` history store. */
  historyPath: string;
  /**
   * `sqlite` history store: entries the local backend holds in memory in front
   * of the file (one per cached room record, member, ban or mute, invitation
   * and message: the newest messages of recently used rooms); the least
   * recently used rooms are dropped first. The file stays the source of truth.
   * Default 20000.
   */
  historyCacheEntries: number;
  /** How `GET /_/streaming/route` picks a node). */
  loadBalancer: 'consistent_hash' | 'least_connections' | 'round_robin' | 'geographic';
  /** This node's region, for geographic routing. */
  region: string;
  /** The URL clients should use to reach this node (advertised in the node registry). */
  advertiseUrl: string;
  /** Path of the WebSocket endpoint (served through `StreamingWsAdapter`). Default `/ws`. */
  wsPath: string;
  /**
   * Keys of the server API (PROTOCOL.md §10), sent as `Authorization: apikey <key>`.
   * Several keys are accepted at once, so one can be rotated; none (the
   * default) turns the API off. Each at least 16 characters.
   */
  apiKey: string[];
  /** Seconds a hook (`@BeforeSendMessage` and the others) may take before its request fails with `internal`. Default 5. */
  hookTimeout: number;
  /** The role claim (`roles` of the token) that opens the admin console (`routes.admin`). Default `admin`. */
  adminRole: string;
  /** URLs that receive the webhooks (POST, JSON, signed). None (the default): no webhooks. */
  webhookUrls: string[];
  /** HMAC-SHA256 key of the webhook signatures; required (16+ characters) with `webhookUrls`. */
  webhookSecret: string;
  /** Events sent: `connect`, `disconnect`, `room_message`, `presence`. Default all. */
  webhookEvents: Array<'connect' | 'disconnect' | 'room_message' | 'presence'>;
  /** Deliveries waiting or retrying, at most (per node); past it the newest is dropped and counted. Default 10000. */
  webhookQueueSize: number;
  /** Tries per delivery (the first included), with exponential backoff. Default 8. */
  webhookMaxAttempts: number;
  /** Seconds a receiver may take to answer one try. Default 5. */
  webhookTimeout: number;
  /** Level of the module's loggers (`error`, `warn`, `log`, `debug`, `verbose`). Default `log`. */
  logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  /** Per-logger levels, `<logger>=<level>` (`streaming.rooms=debug`); they win over `logLevel`. */
  logLevels: string[];
  /** `text` (Nest's console format) or `json` (one JSON object per line). Default `text`. */
  logFormat: 'text' | 'json';
}

/** Deep-partial options as given by users; defaults fill the rest. */
export type StreamingOptionsInput = Partial<Omit<StreamingOptions, 'rateLimit' | 'auth'>> & {
  rateLimit?: Partial<RateLimitOptions>;
  auth?: Partial<AuthOptions>;
};

/**
 * What `StreamingModule.forRoot()` takes: the configuration plus pluggable parts.
 */
export interface StreamingModuleOptions extends StreamingOptionsInput, ChannelModuleOptions {
  /** A custom authenticator instead of the bundled JWT one. */
  authenticator?: Authenticator;
  /** An already built backend (for example one sharing an app's Redis client). */
  backendInstance?: StreamingBackend;
  /** Replaces the limiter built from `rateLimit`. */
  rateLimiter?: RateLimiter;
  /** Replaces the per-user message cap built from `maxMessagesPerSecond`. */
  messageRateLimiter?: RateLimiter;
  /** Run in order on `send_message`, `edit_message` and `publish`. */
  contentFilters?: ContentFilter[];
}

/** Module options the channel providers read (fields to add to `StreamingModuleOptions`). */
export interface ChannelModuleOptions {
  /** Authorization of private channels; default: only the creator. */
  channelAuthorizer?: ChannelAuthorizer;
  /** Where the channel registry lives; default: in this process. */
  channelStore?: ChannelStore;
}

/**
 * The HTTP routes `StreamingModule` adds to the app. Fixed when the module is
 * imported (they are `forRoot` / `forRootAsync` options, not resolved
 * configuration). Each route is a path, `true` for its default path, or
 * `false` / absent for none; an unset key falls back to its environment
 * variable (`FORGE_STREAMING_ROUTES_<KEY>`: `true`, `false` or a path).
 * The WebSocket path is the `wsPath` option.
 */
export interface StreamingRoutesOptions {
  /** Put before every route below, e.g. `api/realtime`. Default none. */
  prefix?: string;
  /** Server-Sent Events (`GET`, plus `POST <sse>/:connectionId/subscriptions|unsubscribe`). Default on, at `sse`. */
  sse?: boolean | string;
  /** Terminus health checks (`GET`, `/backend`, `/distributed`). Default off; `true` = `_/health/streaming`. */
  health?: boolean | string;
  /** Node and cluster counters. Default off; `true` = `_/streaming/stats`. */
  stats?: boolean | string;
  /** Which node a room or user should use. Default off; `true` = `_/streaming/route`. */
  route?: boolean | string;
  /** Prometheus metrics. Default off; `true` = `metrics`. */
  metrics?: boolean | string;
  /**
   * The server API (PROTOCOL.md §10) at `_/streaming/api`. Default: on when
   * `forRoot` sees an `apiKey` (in code, environment or YAML); with
   * `forRootAsync` set it to mount the routes (they answer 404 while no key
   * is configured).
   */
  api?: boolean | string;
  /**
   * The AsyncAPI 3 document of the socket protocol (JSON, generated from the
   * request handlers and the server events; see `buildAsyncApiDocument`).
   * Default off; `true` = `_/streaming/asyncapi.json`.
   */
  asyncapi?: boolean | string;
  /**
   * The admin console (a page, and the JSON API it reads at `<admin>/api`).
   * Default off; `true` = `_/streaming/admin`. Its API needs a token with the
   * `adminRole` role, unless `adminGuards` replace that check.
   */
  admin?: boolean | string;
  /** Guards in front of `stats`, `route` and `metrics` (e.g. the app's admin guard). */
  guards?: Array<Type<CanActivate> | CanActivate>;
  /** Guards in front of the admin console's API instead of the `adminRole` check. */
  adminGuards?: Array<Type<CanActivate> | CanActivate>;
}

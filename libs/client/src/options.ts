import type { WireCodec } from '@nest-streaming/protocol';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import type { EventSourceConstructor, FetchLike, WebSocketConstructor } from './transports';
import { countOr } from './util';

/** Connection state: `closed` before connect() and after close() or an auth expiry. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** `ws`: full duplex over WebSocket. `sse`: receive only over Server-Sent Events. */
export type TransportKind = 'ws' | 'sse';

/** Options of {@link StreamingClient}. */
export interface StreamingClientOptions {
  /**
   * Server address: the WebSocket endpoint (`ws://host:3000/ws`) or the HTTP
   * origin (`http://host:3000`); the other one is derived (see `httpUrl`).
   */
  url: string;
  /** HTTP origin for SSE and REST (default: derived from `url`, `ws` -> `http`, `/ws` dropped). */
  httpUrl?: string;
  /** A fixed JWT, sent as `?token=`. */
  token?: string;
  /**
   * Called before every (re)connection attempt; wins over `token`. Use it to refresh expired
   * tokens: with it, the client also refreshes a JWT with `exp` on the open WebSocket before it
   * expires (see `refreshBeforeExpMs`), and reconnects with a new token after a 4401 close.
   */
  getToken?: () => string | Promise<string>;
  /**
   * WebSocket with `getToken` only: when to send `refresh_token` with a new token from
   * `getToken()` before the current JWT's `exp`: at 80% of its remaining lifetime, or this many
   * ms before `exp` if that is earlier (at least 1 s after the previous refresh). A failed refresh
   * is reported as an `error` event and tried again later. Default 5000; `false` turns it off.
   */
  refreshBeforeExpMs?: number | false;
  /** WebSocket constructor (default `globalThis.WebSocket`; pass the `ws` package in Node < 22). */
  WebSocket?: WebSocketConstructor;
  /** EventSource constructor for `transport: 'sse'` (default `globalThis.EventSource`). */
  EventSource?: EventSourceConstructor;
  /** fetch for the REST helpers (default `globalThis.fetch`). */
  fetch?: FetchLike;
  /** Transport. Default `ws`. */
  transport?: TransportKind;
  /**
   * WebSocket only: the wire codec. `msgpack` asks for the `nest-streaming.msgpack` subprotocol
   * and sends and receives MessagePack in binary frames (the same envelopes, fewer bytes). A
   * server without MessagePack that accepts the upgrade anyway answers in JSON text: the client
   * then goes on in JSON. Default `json` (newline-delimited JSON text, no subprotocol).
   */
  codec?: WireCodec;
  /** How long a request waits for its ack (and a connection attempt for `connected`). Default 10000 ms. */
  ackTimeoutMs?: number;
  /** Reconnect backoff: delay = random(0, min(maxDelayMs, initialDelayMs * factor^attempt)). */
  reconnect?: Partial<BackoffOptions> & {
    /** Set false to never reconnect by itself. Default true. */
    enabled?: boolean;
  };
  /** Requests queued while (re)connecting, at most. Default 100; beyond: `offline_buffer_full`. */
  offlineBufferSize?: number;
  /**
   * WebSocket only: send an application `ping` this often (ms) and reconnect when no `pong`
   * comes within ackTimeoutMs. Default 0 (off: pings count as activity for presence).
   */
  heartbeatIntervalMs?: number;
  /** SSE only: rooms to join (`rooms=`), channels to subscribe (`channels=`), extra event names to listen to. */
  sse?: { rooms?: string[]; channels?: string[]; eventTypes?: string[] };
  /**
   * Ask the server which node to use before each (re)connection
   * (`GET /_/streaming/route`): consistent hashing by room or user, or the
   * server's configured strategy. The answer's `address` (a node's advertised
   * URL) replaces `url` for the WebSocket; without one, `url` is used.
   */
  route?: { room?: string; user?: string; region?: string };
  /**
   * Paths of the server's HTTP routes, relative to the HTTP origin, when the
   * app moved them (the module's `routes` option). Default `{ sse: '/sse',
   * route: '/_/streaming/route' }`.
   */
  paths?: { sse?: string; route?: string };
  /**
   * How many times a request refused with `rate_limited` is sent again, each time after the
   * server's `retry_after_ms`, before it rejects with that error. Default 3; 0 rejects at once.
   * Retries happen only within the request's timeout. See {@link StreamingClient.request}.
   */
  retryRateLimited?: number;
  /** Random source in [0, 1) for the jitter (tests). Default Math.random. */
  random?: () => number;
}

/** Per-request options. */
export interface RequestOptions {
  /** Overrides the client's ackTimeoutMs. */
  timeoutMs?: number;
  /** Overrides the client's retryRateLimited for this request. */
  retryRateLimited?: number;
}

/** The options the client's parts read, with their defaults applied. */
export interface ResolvedOptions {
  readonly ackTimeoutMs: number;
  readonly backoff: BackoffOptions;
  readonly reconnectEnabled: boolean;
  readonly offlineBufferSize: number;
  readonly heartbeatIntervalMs: number;
  readonly transport: TransportKind;
  readonly codec: WireCodec;
  readonly retryRateLimited: number;
  /** Lead of the proactive token refresh; null when off. */
  readonly refreshBeforeExpMs: number | null;
  readonly random: () => number;
}

/** Apply the defaults documented on {@link StreamingClientOptions}. */
export function resolveOptions(options: StreamingClientOptions): ResolvedOptions {
  const r = options.reconnect ?? {};
  return {
    ackTimeoutMs: options.ackTimeoutMs ?? 10000,
    backoff: {
      initialDelayMs: r.initialDelayMs ?? DEFAULT_BACKOFF.initialDelayMs,
      maxDelayMs: r.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs,
      factor: r.factor ?? DEFAULT_BACKOFF.factor,
    },
    reconnectEnabled: r.enabled ?? true,
    offlineBufferSize: options.offlineBufferSize ?? 100,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 0,
    transport: options.transport ?? 'ws',
    codec: options.codec === 'msgpack' ? 'msgpack' : 'json',
    retryRateLimited: countOr(options.retryRateLimited, 3),
    refreshBeforeExpMs:
      options.refreshBeforeExpMs === false ? null : countOr(options.refreshBeforeExpMs, 5000),
    random: options.random ?? Math.random,
  };
}

/** The token of the next connection attempt or HTTP request: `getToken()` when given, else `token`. */
export async function resolveToken(options: StreamingClientOptions): Promise<string | undefined> {
  if (options.getToken) return await options.getToken();
  return options.token;
}

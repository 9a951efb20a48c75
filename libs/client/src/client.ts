import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import { TypedEmitter, type Listener } from './emitter';
import { StreamingClientError } from './errors';
import { parseFrame } from './ndjson';
import {
  toHttpBase,
  toWsUrl,
  type CloseEventLike,
  type ErrorEventLike,
  type EventSourceConstructor,
  type EventSourceLike,
  type FetchLike,
  type SseMessageEventLike,
  type WebSocketConstructor,
  type WebSocketLike,
} from './transports';
import type {
  ChannelFilters,
  ChannelMessageEvent,
  Connected,
  CreateRoomInput,
  CreateRoomResult,
  DeleteMessageResult,
  EditMessageResult,
  ErrorData,
  GetPresenceInput,
  GetPresenceResult,
  HeartbeatEvent,
  HistoryQuery,
  HistoryResult,
  InviteResult,
  JoinRoomResult,
  MessageDeletedEvent,
  MessageEditedEvent,
  ModerateInput,
  ModerationEvent,
  PongResult,
  PresenceStatus,
  PublishResult,
  ReactionEvent,
  ReactionResult,
  ResumedEvent,
  RoleChangedEvent,
  RoomCreatedEvent,
  RoomDeletedEvent,
  RoomIdResult,
  RoomInvitationEvent,
  RoomJoinedEvent,
  RoomLeftEvent,
  RoomRole,
  RoomUpdatedEvent,
  RoomUserEvent,
  SendMessageResult,
  ServerEnvelope,
  SetPresenceResult,
  SetRoleResult,
  SubscribeResult,
  TypingEvent,
  TypingResult,
  UnsubscribeResult,
  UpdateRoomInput,
  WireMessage,
  WirePresence,
  WireRoom,
} from '@nest-streaming/protocol';

/** What a resume found: the `resumed` data, rooms whose resume failed, rooms the server no longer has. */
interface ResumeOutcome {
  resumed: ResumedEvent;
  failed: string[];
  gone: string[];
}

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
  /** Called before every (re)connection attempt; wins over `token`. Use it to refresh expired tokens. */
  getToken?: () => string | Promise<string>;
  /** WebSocket constructor (default `globalThis.WebSocket`; pass the `ws` package in Node < 22). */
  WebSocket?: WebSocketConstructor;
  /** EventSource constructor for `transport: 'sse'` (default `globalThis.EventSource`). */
  EventSource?: EventSourceConstructor;
  /** fetch for the REST helpers (default `globalThis.fetch`). */
  fetch?: FetchLike;
  /** Transport. Default `ws`. */
  transport?: TransportKind;
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

/** `state` listener payload. */
export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
}

/** `disconnected`: the transport closed (`will_reconnect` false after close() or an auth expiry). */
export interface DisconnectedEvent {
  code: number;
  reason: string;
  will_reconnect: boolean;
}

/** `reconnecting`: the next attempt is scheduled (`attempt` counts from 1). */
export interface ReconnectingEvent {
  attempt: number;
  delay_ms: number;
}

/** `auth_expired`: the server closed with 4401 (or refused the token with 401); the client stopped. */
export interface AuthExpiredEvent {
  code: number;
  reason: string;
}

/**
 * `gap`: messages of a room were missed and cannot be replayed; reload its
 * history. `retention`: the server listed the room in `resumed.gaps`;
 * `resume_failed`: the resume request failed for it; `seq_jump`: a live
 * message skipped seqs.
 */
export interface GapEvent {
  room_id: string;
  reason: 'retention' | 'resume_failed' | 'seq_jump';
  /** Last seq the client had delivered for the room (if any). */
  last_seq?: number;
  /** Latest seq on the server, when known. */
  latest_seq?: number;
}

/**
 * `rooms_gone`: rooms the server no longer has (found while resuming after a reconnect, e.g.
 * the server lost its in-memory rooms in a restart). The client has stopped tracking them:
 * the next reconnect does not resume them.
 */
export interface RoomsGoneEvent {
  room_ids: string[];
}

/** Every event a client emits, with its payload type. Unknown (custom) event names carry `unknown`. */
export interface StreamingClientEvents {
  message: WireMessage;
  message_edited: MessageEditedEvent;
  message_deleted: MessageDeletedEvent;
  reaction_added: ReactionEvent;
  reaction_removed: ReactionEvent;
  typing: TypingEvent;
  presence: WirePresence;
  user_joined: RoomUserEvent;
  user_left: RoomUserEvent;
  room_joined: RoomJoinedEvent;
  room_left: RoomLeftEvent;
  room_created: RoomCreatedEvent;
  room_updated: RoomUpdatedEvent;
  room_deleted: RoomDeletedEvent;
  channel_message: ChannelMessageEvent;
  member_banned: ModerationEvent;
  member_unbanned: ModerationEvent;
  member_kicked: ModerationEvent;
  member_muted: ModerationEvent;
  member_unmuted: ModerationEvent;
  room_invitation: RoomInvitationEvent;
  role_changed: RoleChangedEvent;
  /** Server errors not tied to a request, and client-side failures (e.g. a re-subscribe refused). */
  error: ErrorData;
  heartbeat: HeartbeatEvent;
  resumed: ResumedEvent;
  connected: Connected;
  /** Every server event delivered to listeners (after ordering and de-duplication); not acks. */
  '*': ServerEnvelope;
  state: StateChange;
  disconnected: DisconnectedEvent;
  reconnecting: ReconnectingEvent;
  auth_expired: AuthExpiredEvent;
  gap: GapEvent;
  rooms_gone: RoomsGoneEvent;
}

/** Event map with a fallback for custom server events. */
type EventMap = StreamingClientEvents & { [custom: string]: unknown };

/** Per-request options. */
export interface RequestOptions {
  /** Overrides the client's ackTimeoutMs. */
  timeoutMs?: number;
  /** Overrides the client's retryRateLimited for this request. */
  retryRateLimited?: number;
}

/** The error codes that mean "this room is no longer yours": resume drops it. */
const MEMBERSHIP_CODES = new Set(['not_room_member', 'room_not_found', 'forbidden', 'banned']);

/** SSE event names listened to by default. */
const SSE_EVENT_TYPES = [
  'connected',
  'message',
  'message_edited',
  'message_deleted',
  'reaction_added',
  'reaction_removed',
  'typing',
  'presence',
  'user_joined',
  'user_left',
  'room_joined',
  'room_left',
  'room_created',
  'room_updated',
  'room_deleted',
  'channel_message',
  'member_banned',
  'member_unbanned',
  'member_kicked',
  'member_muted',
  'member_unmuted',
  'room_invitation',
  'role_changed',
  'error',
  'heartbeat',
  'resumed',
];

/** Event types never held back while a resume is in progress. */
const NOT_BUFFERED = new Set(['connected', 'resumed', 'heartbeat', 'ack', 'pong']);

interface Pending {
  type: string;
  resolve: (value: unknown) => void;
  reject: (err: StreamingClientError) => void;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A request on its way: in the offline buffer, in the outbox, or sent and waiting for its answer. */
interface Outgoing {
  type: string;
  data: Record<string, unknown>;
  timeoutMs: number;
  /** Rate-limit retries left. */
  retriesLeft: number;
  resolve: (value: unknown) => void;
  reject: (err: StreamingClientError) => void;
  /** Sent by the client itself (re-subscribe, resume): rejected, not buffered, when the connection drops. */
  internal?: boolean;
  /** Position in issue order, given when it is handed to the connection. */
  order?: number;
  /** When its timeout ends (epoch ms; Infinity without one), set when it is handed to the connection. */
  deadline?: number;
  /** Rejects it at its deadline while it waits in the outbox. */
  timer?: ReturnType<typeof setTimeout> | null;
}

interface Waiter {
  resolve: (c: Connected) => void;
  reject: (err: StreamingClientError) => void;
}

/** What one transport attempt knows about itself. */
interface Attempt {
  gen: number;
  gotConnected: boolean;
  /** SSE: the attempt asked the server to replay (`last_event_id`), so a `resumed` event will come. */
  sseResume: Record<string, number> | null;
  lastError: string;
  httpStatus: number | undefined;
}

const errorOf = (err: unknown): StreamingClientError =>
  err instanceof StreamingClientError
    ? err
    : new StreamingClientError('internal', err instanceof Error ? err.message : String(err));

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** A whole, non-negative count; `fallback` for anything else. */
const countOr = (v: number | undefined, fallback: number): number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : fallback;

/** The wait a `rate_limited` refusal asks for: its `retry_after_ms`, or 1000 ms when it has none. */
const retryAfterOf = (e: StreamingClientError): number => {
  const v = e.data.retry_after_ms;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 1000;
};

const timeoutError = (type: string, timeoutMs: number): StreamingClientError =>
  new StreamingClientError('timeout', `${type}: no answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs });

/**
 * A typed client of the streaming protocol for browsers and Node.
 *
 * - `connect()` opens the transport and resolves with the `connected` data.
 * - `request()` and the typed helpers send requests and resolve with their ack.
 * - `on(event, listener)` receives typed events; `on('*')` every event.
 * - When the transport drops it reconnects with exponential backoff and full
 *   jitter, re-subscribes its channels, resumes every room from the last seq
 *   it delivered (replayed messages arrive through `message`, in seq order,
 *   without duplicates), then sends the requests queued meanwhile. Rooms the
 *   server no longer has are reported with `rooms_gone` and no longer resumed.
 * - A request refused with `rate_limited` is sent again after the server's
 *   `retry_after_ms` (`retryRateLimited` times at most, within its timeout),
 *   later requests waiting behind it so that order is kept.
 */
export class StreamingClient {
  private readonly opts: {
    ackTimeoutMs: number;
    backoff: BackoffOptions;
    reconnectEnabled: boolean;
    offlineBufferSize: number;
    heartbeatIntervalMs: number;
    transport: TransportKind;
    retryRateLimited: number;
    random: () => number;
  };
  private readonly emitter = new TypedEmitter<EventMap>((err, event) => this.reportListenerError(err, event));

  private _state: ConnectionState = 'closed';
  private socket: WebSocketLike | null = null;
  private source: EventSourceLike | null = null;
  private attempt: Attempt | null = null;
  private generation = 0;
  private reconnectAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private sseWatchdog: ReturnType<typeof setTimeout> | null = null;
  private waiters: Waiter[] = [];
  private readonly pending = new Map<string, Pending>();
  /** The offline buffer: requests issued while not connected, sent after the (re)connect. */
  private queue: Outgoing[] = [];
  /**
   * Requests of the current connection held back after a `rate_limited` refusal (the refused
   * ones and every later one), in issue order. While it is not empty the client is throttled:
   * it waits out the server's `retry_after_ms`, then sends one request at a time.
   */
  private outbox: Outgoing[] = [];
  private throttled = false;
  /** The one request sent from the outbox, until it is answered. */
  private inFlight: Outgoing | null = null;
  /** Nothing leaves the outbox before this time (epoch ms). */
  private pausedUntil = 0;
  private pauseTimer: ReturnType<typeof setTimeout> | null = null;
  private nextOrder = 0;
  private nextId = 0;
  private readonly idPrefix = Math.random().toString(36).slice(2, 8);

  /** Last seq delivered through `message`, per room (the de-duplication mark). */
  private readonly lastSeq = new Map<string, number>();
  /** Seq known to be held by the app without a delivered message (history pages): resume starts there. */
  private readonly floor = new Map<string, number>();
  private readonly subs = new Map<string, ChannelFilters | undefined>();

  /** Set between `connected` and the end of the resume: events are held here, then delivered in order. */
  private recoveryBuffer: ServerEnvelope[] | null = null;
  private hadSession = false;
  private authExpired = false;
  private _connected: Connected | null = null;

  /** The node address `GET /_/streaming/route` named for the current attempt. */
  private routedUrl: string | undefined;

  constructor(private readonly options: StreamingClientOptions) {
    const r = options.reconnect ?? {};
    this.opts = {
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
      retryRateLimited: countOr(options.retryRateLimited, 3),
      random: options.random ?? Math.random,
    };
  }

  // ------------------------------------------------------------------ state

  /** Current connection state. */
  get state(): ConnectionState {
    return this._state;
  }

  /** The transport in use. */
  get transport(): TransportKind {
    return this.opts.transport;
  }

  /** Data of the last `connected` envelope (null before the first). */
  get connection(): Connected | null {
    return this._connected;
  }

  /** Last seq delivered per room (what the next resume starts from, unless a history page went further). */
  get lastSeqs(): Record<string, number> {
    return Object.fromEntries(this.lastSeq);
  }

  /** Channel subscriptions restored after every reconnect: pattern -> filters. */
  get subscriptions(): ReadonlyMap<string, ChannelFilters | undefined> {
    return this.subs;
  }

  /** Requests waiting to be sent: in the offline buffer, or held back after a `rate_limited` refusal. */
  get queuedRequests(): number {
    return this.queue.length + this.outbox.length;
  }

  /** Listen to an event; returns a function that removes the listener. */
  on<K extends keyof EventMap & string>(event: K, listener: Listener<EventMap[K]>): () => void {
    return this.emitter.on(event, listener);
  }

  /** Listen to the next occurrence of an event only. */
  once<K extends keyof EventMap & string>(event: K, listener: Listener<EventMap[K]>): () => void {
    return this.emitter.once(event, listener);
  }

  /** Remove a listener (or every listener of the event when none is given). */
  off<K extends keyof EventMap & string>(event: K, listener?: Listener<EventMap[K]>): void {
    this.emitter.off(event, listener);
  }

  // ------------------------------------------------------------ connecting

  /**
   * Connect. Resolves with the `connected` data once the connection is usable
   * (after re-subscribing and resuming when the client had a session before).
   * The first attempt does not retry: it rejects (`connect_failed`,
   * `unauthorized`) and the state returns to `closed`. While reconnecting it
   * skips the backoff wait and tries at once.
   */
  connect(): Promise<Connected> {
    if (this._state === 'open' && this._connected) return Promise.resolve(this._connected);
    const p = new Promise<Connected>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this._state === 'connecting') return p;
    if (this._state === 'reconnecting') {
      if (this.reconnectTimer !== null) {
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        void this.startAttempt();
      }
      return p;
    }
    this.authExpired = false;
    this.setState('connecting');
    void this.startAttempt();
    return p;
  }

  /**
   * Close for good: no reconnect. Requests waiting for an ack or in the
   * offline buffer reject with `closed`. Subscriptions and seqs are kept, so a
   * later connect() resumes where this connection stopped.
   */
  close(): void {
    const was = this._state;
    this.generation++;
    this.clearTimers();
    this.detachTransport(1000, 'client closed');
    this.attempt = null;
    this.recoveryBuffer = null;
    const err = new StreamingClientError('closed', 'the client was closed');
    this.rejectPending(err);
    this.resetOutbox(err);
    this.rejectQueue(err);
    this.rejectWaiters(err);
    this.authExpired = false;
    this.setState('closed');
    if (was === 'open')
      this.emitter.emit('disconnected', { code: 1000, reason: 'client closed', will_reconnect: false });
  }

  private setState(next: ConnectionState): void {
    const previous = this._state;
    if (previous === next) return;
    this._state = next;
    this.emitter.emit('state', { state: next, previous });
  }

  private async resolveToken(): Promise<string | undefined> {
    if (this.options.getToken) return await this.options.getToken();
    return this.options.token;
  }

  /** The node `GET /_/streaming/route` names, or undefined (then `url` is used). Never throws. */
  private async lookUpRoute(token: string | undefined): Promise<string | undefined> {
    const f = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    const route = this.options.route;
    if (!f || !route) return undefined;
    const params = Object.entries(route)
      .filter(([, v]) => typeof v === 'string' && v !== '')
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
    try {
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (token !== undefined) headers.Authorization = `Bearer ${token}`;
      const res = await f(
        `${this.httpBase}${this.routePath('route', '/_/streaming/route')}${params.length ? `?${params.join('&')}` : ''}`,
        {
          method: 'GET',
          headers,
        },
      );
      if (!res.ok) return undefined;
      const body = JSON.parse(await res.text()) as { address?: unknown };
      return typeof body.address === 'string' && body.address !== '' ? body.address : undefined;
    } catch {
      return undefined;
    }
  }

  /** A server route's path: the `paths` option's, with a leading slash, or the default. */
  private routePath(which: 'sse' | 'route', fallback: string): string {
    const p = this.options.paths?.[which];
    if (!p) return fallback;
    return p.startsWith('/') ? p : `/${p}`;
  }

  private get httpBase(): string {
    return toHttpBase(this.options.httpUrl ?? this.options.url);
  }

  /** Open one transport attempt. */
  private async startAttempt(): Promise<void> {
    const gen = ++this.generation;
    const attempt: Attempt = {
      gen,
      gotConnected: false,
      sseResume: null,
      lastError: '',
      httpStatus: undefined,
    };
    this.attempt = attempt;
    let token: string | undefined;
    try {
      token = await this.resolveToken();
    } catch (err) {
      if (gen !== this.generation) return;
      // A failed token refresh is a failed attempt: retried with backoff (the first connect() rejects).
      attempt.lastError = `getToken failed: ${errorOf(err).message}`;
      this.transportClosed(attempt, 1006, attempt.lastError);
      return;
    }
    if (gen !== this.generation) return;
    if (this.options.route && this.opts.transport !== 'sse') {
      this.routedUrl = await this.lookUpRoute(token);
      if (gen !== this.generation) return;
    }
    try {
      if (this.opts.transport === 'sse') this.openSse(attempt, token);
      else this.openWs(attempt, token);
    } catch (err) {
      const e = errorOf(err);
      if (e.code === 'no_transport') {
        this.failHard(e);
        return;
      }
      attempt.lastError = e.message;
      this.transportClosed(attempt, 1006, e.message);
      return;
    }
    this.connectTimer = setTimeout(() => {
      if (gen !== this.generation || attempt.gotConnected) return;
      this.dropTransport(attempt, `no connected envelope within ${this.opts.ackTimeoutMs} ms`);
    }, this.opts.ackTimeoutMs);
  }

  /** A configuration problem that no retry fixes. */
  private failHard(err: StreamingClientError): void {
    this.generation++;
    this.clearTimers();
    this.attempt = null;
    this.resetOutbox(err);
    this.rejectWaiters(err);
    this.rejectQueue(err);
    this.setState('closed');
  }

  private openWs(attempt: Attempt, token: string | undefined): void {
    const Ctor =
      this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
    if (!Ctor) {
      throw new StreamingClientError(
        'no_transport',
        'no WebSocket implementation: pass the `WebSocket` option (e.g. the ws package in Node)',
      );
    }
    const url = toWsUrl(this.routedUrl ?? this.options.url);
    if (token !== undefined) url.searchParams.set('token', token);
    const socket = new Ctor(url.toString());
    this.socket = socket;
    const live = () => attempt.gen === this.generation && this.socket === socket;
    socket.onmessage = (ev: { data: unknown }) => {
      if (!live()) return;
      const text = typeof ev.data === 'string' ? ev.data : null;
      if (text === null) return;
      for (const env of parseFrame(text)) {
        if (!live()) return;
        this.handleEnvelope(attempt, env);
      }
    };
    socket.onerror = (ev: ErrorEventLike) => {
      if (!live()) return;
      attempt.lastError = ev?.message ?? 'WebSocket error';
      const m = /Unexpected server response: (\d{3})/.exec(attempt.lastError);
      if (m) attempt.httpStatus = Number(m[1]);
    };
    socket.onclose = (ev: CloseEventLike) => {
      if (!live()) return;
      this.socket = null;
      this.transportClosed(attempt, ev?.code ?? 1006, ev?.reason || attempt.lastError);
    };
  }

  private sseUrl(token: string | undefined, resumeFrom: Record<string, number> | null): string {
    const q: string[] = [];
    if (token !== undefined) q.push(`token=${encodeURIComponent(token)}`);
    const rooms = this.options.sse?.rooms ?? [];
    if (rooms.length > 0) q.push(`rooms=${rooms.map(encodeURIComponent).join(',')}`);
    const channels = this.options.sse?.channels ?? [];
    if (channels.length > 0) q.push(`channels=${channels.map(encodeURIComponent).join(',')}`);
    if (resumeFrom && Object.keys(resumeFrom).length > 0) {
      const last = Object.entries(resumeFrom)
        .map(([room, seq]) => `${room}:${seq}`)
        .join(',');
      q.push(`last_event_id=${encodeURIComponent(last)}`);
    }
    return `${this.httpBase}${this.routePath('sse', '/sse')}${q.length > 0 ? `?${q.join('&')}` : ''}`;
  }

  private openSse(attempt: Attempt, token: string | undefined): void {
    const Ctor =
      this.options.EventSource ??
      (globalThis as { EventSource?: EventSourceConstructor }).EventSource ??
      undefined;
    if (!Ctor) {
      throw new StreamingClientError(
        'no_transport',
        'no EventSource implementation: pass the `EventSource` option (e.g. the eventsource package in Node)',
      );
    }
    const resumeFrom = this.hadSession ? this.resumePoints() : {};
    attempt.sseResume = Object.keys(resumeFrom).length > 0 ? resumeFrom : null;
    const source = new Ctor(this.sseUrl(token, attempt.sseResume));
    this.source = source;
    const live = () => attempt.gen === this.generation && this.source === source;
    const types = new Set([...SSE_EVENT_TYPES, ...(this.options.sse?.eventTypes ?? [])]);
    for (const type of types) {
      source.addEventListener(type, (ev: SseMessageEventLike) => {
        if (!live()) return;
        let data: unknown;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        this.armSseWatchdog(attempt);
        this.handleEnvelope(attempt, { type, data: data ?? {} });
      });
    }
    source.onerror = (ev: ErrorEventLike) => {
      if (!live()) return;
      // Never let EventSource reconnect by itself: it would resend one Last-Event-ID, not every room's.
      attempt.httpStatus = ev?.code ?? ev?.status;
      attempt.lastError = ev?.message ?? 'EventSource error';
      this.source = null;
      source.close();
      this.transportClosed(attempt, 1006, attempt.lastError);
    };
  }

  /** SSE: without any event for 3 heartbeat intervals the stream is considered dead. */
  private armSseWatchdog(attempt: Attempt): void {
    const every = this._connected?.ping_interval_ms;
    if (!attempt.gotConnected || !every) return;
    if (this.sseWatchdog !== null) clearTimeout(this.sseWatchdog);
    this.sseWatchdog = setTimeout(
      () => {
        if (attempt.gen === this.generation) this.dropTransport(attempt, 'no SSE event for 3 heartbeats');
      },
      Math.max(3 * every, 3000),
    );
  }

  /** Abandon the current transport (dead, or no `connected` in time) as if it had closed. */
  private dropTransport(attempt: Attempt, reason: string): void {
    this.detachTransport(4000, reason);
    this.transportClosed(attempt, 1006, reason);
  }

  private detachTransport(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      socket.onopen = null;
      try {
        if (socket.readyState === 0 || socket.readyState === 1) socket.close(code, reason);
      } catch {
        // A socket still connecting may refuse close codes on some platforms; it is abandoned anyway.
      }
    }
    const source = this.source;
    this.source = null;
    if (source) {
      source.onerror = null;
      source.close();
    }
  }

  private clearTimers(): void {
    for (const t of [this.reconnectTimer, this.connectTimer, this.sseWatchdog, this.pauseTimer])
      if (t !== null) clearTimeout(t);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.reconnectTimer = this.connectTimer = this.sseWatchdog = this.heartbeatTimer = this.pauseTimer = null;
  }

  /** The transport of `attempt` closed (or failed to open). */
  private transportClosed(attempt: Attempt, code: number, reason: string): void {
    if (attempt.gen !== this.generation) return;
    this.generation++;
    this.clearTimers();
    this.detachTransport(1000, 'closing');
    this.attempt = null;
    this.recoveryBuffer = null;
    const dropped = new StreamingClientError(
      'disconnected',
      `connection closed before the ack (${code} ${reason})`.trim(),
      { close_code: code },
    );
    this.rejectPending(dropped);
    this.resetOutbox(dropped);
    const wasOpen = this._state === 'open';
    if (code === 4401 || attempt.httpStatus === 401) {
      this.authExpired = true;
      const err = new StreamingClientError('unauthorized', reason || 'token expired or refused', {
        close_code: code,
      });
      this.rejectWaiters(err);
      this.setState('closed');
      this.emitter.emit('disconnected', { code, reason, will_reconnect: false });
      this.emitter.emit('auth_expired', { code: code === 4401 ? 4401 : 401, reason });
      return;
    }
    if (this._state === 'connecting' && !attempt.gotConnected) {
      // The first attempt does not retry: the caller of connect() decides.
      const err = new StreamingClientError('connect_failed', `could not connect: ${reason || code}`, {
        close_code: code,
        ...(attempt.httpStatus !== undefined ? { status: attempt.httpStatus } : {}),
      });
      this.rejectWaiters(err);
      this.rejectQueue(err);
      this.setState('closed');
      return;
    }
    if (!this.opts.reconnectEnabled) {
      const err = new StreamingClientError('disconnected', `connection closed (${code} ${reason})`.trim());
      this.rejectWaiters(err);
      this.rejectQueue(err);
      this.setState('closed');
      this.emitter.emit('disconnected', { code, reason, will_reconnect: false });
      return;
    }
    if (wasOpen || attempt.gotConnected)
      this.emitter.emit('disconnected', { code, reason, will_reconnect: true });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.setState('reconnecting');
    const delay = backoffDelay(this.reconnectAttempts, this.opts.backoff, this.opts.random);
    this.reconnectAttempts++;
    this.emitter.emit('reconnecting', { attempt: this.reconnectAttempts, delay_ms: delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.startAttempt();
    }, delay);
  }

  // ------------------------------------------------------------ inbound

  private handleEnvelope(attempt: Attempt, env: ServerEnvelope): void {
    if (env.type === 'connected') {
      this.onConnected(attempt, env);
      return;
    }
    if (env.id !== undefined && (env.type === 'ack' || env.type === 'error' || env.type === 'pong')) {
      const p = this.pending.get(env.id);
      if (p) {
        this.pending.delete(env.id);
        if (p.timer !== null) clearTimeout(p.timer);
        if (env.type === 'error') {
          const data = isRecord(env.data) ? env.data : {};
          p.reject(
            new StreamingClientError(
              typeof data.code === 'string' ? data.code : 'internal',
              typeof data.message === 'string' ? data.message : `${p.type} failed`,
              data,
            ),
          );
        } else {
          p.resolve(env.data);
        }
      }
      // An answer to a request that already timed out: nobody waits for it.
      return;
    }
    if (env.type === 'ack' || env.type === 'pong') return;
    if (env.type === 'resumed' && this.recoveryBuffer) {
      // SSE: the server's replay is complete. WebSocket: the ack of `resume` completes it (and emits `resumed`).
      if (attempt.sseResume) {
        this.finishRecovery(
          attempt,
          isRecord(env.data) ? (env.data as unknown as ResumedEvent) : { rooms: {} },
          [],
        );
      }
      return;
    }
    if (this.recoveryBuffer && !NOT_BUFFERED.has(env.type)) {
      this.recoveryBuffer.push(env);
      return;
    }
    this.dispatch(env);
  }

  /** Deliver one server event to listeners (messages de-duplicated by seq). */
  private dispatch(env: ServerEnvelope, noJumpRooms?: ReadonlySet<string>): void {
    const data = env.data;
    if (env.type === 'message') {
      if (!isRecord(data)) return;
      const m = data as unknown as WireMessage;
      if (typeof m.room_id !== 'string' || typeof m.seq !== 'number') return;
      const last = this.lastSeq.get(m.room_id);
      if (last !== undefined && m.seq <= last) return;
      if (last !== undefined && m.seq > last + 1 && !noJumpRooms?.has(m.room_id)) {
        const floor = this.floor.get(m.room_id);
        if (floor === undefined || m.seq > floor + 1) {
          this.emitter.emit('gap', { room_id: m.room_id, reason: 'seq_jump', last_seq: last });
        }
      }
      this.lastSeq.set(m.room_id, m.seq);
    } else if ((env.type === 'room_left' || env.type === 'room_deleted') && isRecord(data)) {
      const room = data.room_id;
      if (typeof room === 'string') {
        this.lastSeq.delete(room);
        this.floor.delete(room);
      }
    } else if (env.type === 'room_created' && isRecord(data) && typeof data.room_id === 'string') {
      // A new room has no messages yet: resume it from 0.
      if (!this.lastSeq.has(data.room_id)) this.lastSeq.set(data.room_id, 0);
    }
    this.emitter.emit(env.type, data);
    this.emitter.emit('*', env);
  }

  private onConnected(attempt: Attempt, env: ServerEnvelope): void {
    if (attempt.gotConnected) return;
    attempt.gotConnected = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this._connected = env.data as Connected;
    this.emitter.emit('connected', this._connected);
    this.emitter.emit('*', env);
    if (this.opts.transport === 'sse') {
      this.armSseWatchdog(attempt);
      if (attempt.sseResume) {
        // The server replays after `connected`, then sends `resumed`; hold events until then.
        this.recoveryBuffer = [];
        this.connectTimer = setTimeout(() => {
          if (attempt.gen !== this.generation || !this.recoveryBuffer) return;
          this.finishRecovery(attempt, { rooms: {} }, Object.keys(attempt.sseResume ?? {}));
        }, this.opts.ackTimeoutMs);
      } else {
        this.becomeOpen();
      }
      return;
    }
    if (this.hadSession && (this.subs.size > 0 || Object.keys(this.resumePoints()).length > 0)) {
      void this.recoverWs(attempt);
    } else {
      this.becomeOpen();
    }
  }

  /** Where each room's resume starts: the last delivered seq, or further when a history page went further. */
  private resumePoints(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [room, seq] of this.lastSeq) out[room] = seq;
    for (const [room, seq] of this.floor) if (out[room] === undefined || seq > out[room]) out[room] = seq;
    return out;
  }

  /** After a reconnect: re-subscribe every channel, resume every room, then open. */
  private async recoverWs(attempt: Attempt): Promise<void> {
    this.recoveryBuffer = [];
    const live = () => attempt.gen === this.generation;
    const subscribing = [...this.subs].map(async ([channel, filters]) => {
      try {
        await this.sendInternal('subscribe', filters === undefined ? { channel } : { channel, filters });
      } catch (err) {
        const e = errorOf(err);
        if (e.code === 'disconnected' || !live()) return;
        this.emitter.emit('error', {
          ...e.data,
          code: e.code,
          message: `re-subscribing to ${channel} failed: ${e.message}`,
          channel,
        });
      }
    });
    const points = this.resumePoints();
    let outcome: ResumeOutcome = { resumed: { rooms: {} }, failed: [], gone: [] };
    if (Object.keys(points).length > 0) {
      // Messages delivered before the disconnect up to the resume point count as seen.
      for (const [room, seq] of Object.entries(points)) this.lastSeq.set(room, seq);
      outcome = await this.resume(points, live);
    }
    await Promise.all(subscribing);
    if (!live()) return;
    this.finishRecovery(attempt, outcome.resumed, outcome.failed, outcome.gone);
  }

  /** `resume` all rooms at once; when that fails, room by room (a room no longer ours must not block the others). */
  private async resume(points: Record<string, number>, live: () => boolean): Promise<ResumeOutcome> {
    try {
      const resumed = (await this.sendInternal('resume', { rooms: points })) as ResumedEvent;
      return { resumed, failed: [], gone: [] };
    } catch (err) {
      const e = errorOf(err);
      if (!live() || e.code === 'disconnected') return { resumed: { rooms: {} }, failed: [], gone: [] };
      const rooms = Object.keys(points);
      if (rooms.length === 1 || !MEMBERSHIP_CODES.has(e.code)) return this.resumeFailed(rooms, e);
    }
    // The whole request failed (servers without `resumed.errors` fail it for one bad room): room by room.
    const merged: ResumedEvent = { rooms: {}, gaps: [], errors: {} };
    const failed: string[] = [];
    const gone: string[] = [];
    for (const [room, seq] of Object.entries(points)) {
      if (!live()) break;
      try {
        const r = (await this.sendInternal('resume', { rooms: { [room]: seq } })) as ResumedEvent;
        Object.assign(merged.rooms, r.rooms);
        merged.gaps!.push(...(r.gaps ?? []));
        if (isRecord(r.errors)) Object.assign(merged.errors!, r.errors);
        if (Array.isArray(r.gone)) gone.push(...r.gone);
      } catch (err) {
        const e = errorOf(err);
        if (e.code === 'disconnected') break;
        const one = this.resumeFailed([room], e);
        failed.push(...one.failed);
        gone.push(...one.gone);
      }
    }
    return { resumed: merged, failed, gone };
  }

  /**
   * Rooms whose resume failed: forgotten when they are no longer ours (and reported as gone when
   * the server does not have them), otherwise reported as gaps.
   */
  private resumeFailed(rooms: string[], e: StreamingClientError): ResumeOutcome {
    if (MEMBERSHIP_CODES.has(e.code) && rooms.length === 1) {
      this.forgetRoom(rooms[0]);
      return { resumed: { rooms: {} }, failed: [], gone: e.code === 'room_not_found' ? [rooms[0]] : [] };
    }
    this.emitter.emit('error', { ...e.data, code: e.code, message: `resume failed: ${e.message}` });
    return { resumed: { rooms: {} }, failed: rooms, gone: [] };
  }

  /** Stop tracking a room: it is no longer resumed. */
  private forgetRoom(room: string): void {
    this.lastSeq.delete(room);
    this.floor.delete(room);
  }

  /**
   * The resume is done: forget the rooms that are gone or no longer ours, report them and the
   * gaps, deliver the held events in seq order, open, send the offline buffer.
   */
  private finishRecovery(
    attempt: Attempt,
    resumed: ResumedEvent,
    resumeFailed: string[],
    alsoGone: string[] = [],
  ): void {
    if (attempt.gen !== this.generation) return;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    const held = this.recoveryBuffer ?? [];
    this.recoveryBuffer = null;
    const gone = new Set([...alsoGone, ...(Array.isArray(resumed.gone) ? resumed.gone : [])]);
    const failed = [...resumeFailed];
    for (const [room, code] of Object.entries(isRecord(resumed.errors) ? resumed.errors : {})) {
      // `room_not_found` is a room the server no longer has (servers without `gone` say only this).
      if (code === 'room_not_found') gone.add(room);
      else if (MEMBERSHIP_CODES.has(code)) this.forgetRoom(room);
      else failed.push(room);
    }
    for (const room of gone) this.forgetRoom(room);
    const gaps = new Set(resumed.gaps ?? []);
    this.emitter.emit('resumed', resumed);
    this.emitter.emit('*', { type: 'resumed', data: resumed });
    if (gone.size > 0) this.emitter.emit('rooms_gone', { room_ids: [...gone] });
    for (const room of gaps) {
      this.emitter.emit('gap', {
        room_id: room,
        reason: 'retention',
        last_seq: this.lastSeq.get(room),
        latest_seq: resumed.rooms?.[room],
      });
    }
    for (const room of failed) {
      this.emitter.emit('gap', { room_id: room, reason: 'resume_failed', last_seq: this.lastSeq.get(room) });
    }
    const noJump = new Set([...gaps, ...failed]);
    for (const env of orderMessages(held)) this.dispatch(env, noJump);
    for (const room of gaps) {
      const latest = resumed.rooms?.[room];
      if (typeof latest === 'number' && latest > (this.lastSeq.get(room) ?? -1))
        this.lastSeq.set(room, latest);
    }
    this.becomeOpen();
  }

  private becomeOpen(): void {
    this.reconnectAttempts = 0;
    this.hadSession = true;
    this.setState('open');
    const c = this._connected!;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(c);
    this.startHeartbeat();
    this.flushQueue();
  }

  private startHeartbeat(): void {
    if (this.opts.transport !== 'ws' || this.opts.heartbeatIntervalMs <= 0) return;
    const attempt = this.attempt;
    if (!attempt) return;
    this.heartbeatTimer = setInterval(() => {
      if (this._state !== 'open' || attempt.gen !== this.generation) return;
      this.sendNow('ping', {}).catch((err: unknown) => {
        if (errorOf(err).code === 'timeout' && attempt.gen === this.generation) {
          this.dropTransport(attempt, 'no pong');
        }
      });
    }, this.opts.heartbeatIntervalMs);
  }

  private flushQueue(): void {
    while (this.queue.length > 0 && this._state === 'open') this.transmit(this.queue.shift()!);
  }

  private reportListenerError(err: unknown, event: string): void {
    if (event === 'error') return;
    this.emitter.emit('error', {
      code: 'listener_error',
      message: `a "${event}" listener threw: ${err instanceof Error ? err.message : String(err)}`,
    });
  }

  private rejectPending(err: StreamingClientError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(err);
    }
  }

  private rejectQueue(err: StreamingClientError): void {
    const all = this.queue;
    this.queue = [];
    for (const q of all) q.reject(err);
  }

  /**
   * The connection is gone: the outbox's requests (refused or held back, so not carried out)
   * go back to the front of the offline buffer, in order; the client's own are rejected with `err`.
   */
  private resetOutbox(err: StreamingClientError): void {
    if (this.pauseTimer !== null) clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
    this.throttled = false;
    this.inFlight = null;
    this.pausedUntil = 0;
    const waiting = this.outbox;
    this.outbox = [];
    const requeue: Outgoing[] = [];
    for (const out of waiting) {
      if (out.timer) clearTimeout(out.timer);
      out.timer = null;
      if (out.internal) out.reject(err);
      else requeue.push(out);
    }
    this.queue.unshift(...requeue);
  }

  private rejectWaiters(err: StreamingClientError): void {
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) w.reject(err);
  }

  // ------------------------------------------------------------ outbound

  /**
   * Send a request and resolve with its ack data. Rejects with a
   * {@link StreamingClientError}: the server's error code, `timeout` after
   * ackTimeoutMs, `disconnected` when the connection dropped before the ack,
   * `offline_buffer_full`, `receive_only` (SSE), `closed` or `not_connected`.
   * While (re)connecting, requests wait in the offline buffer and are sent
   * after the resume.
   *
   * A request refused with `rate_limited` is sent again after the server's
   * `retry_after_ms`, at most `retryRateLimited` times and only while its
   * timeout (counted from its first send) allows the wait; otherwise it
   * rejects with that `rate_limited` error. Until every refused request is
   * through, later requests wait behind them and the client sends one request
   * at a time, so requests keep their order (except those already sent when
   * the first refusal came back).
   */
  request<T = Record<string, unknown>>(
    type: string,
    data: Record<string, unknown> = {},
    options: RequestOptions = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.opts.ackTimeoutMs;
    if (this.opts.transport === 'sse') {
      return Promise.reject(
        new StreamingClientError('receive_only', `${type}: the SSE transport is receive-only`),
      );
    }
    const open = this._state === 'open';
    const buffering =
      this._state === 'connecting' ||
      this._state === 'reconnecting' ||
      (this._state === 'closed' && this.authExpired);
    if (!open && !buffering) {
      return Promise.reject(new StreamingClientError('not_connected', `${type}: call connect() first`));
    }
    if (!open && this.queue.length >= this.opts.offlineBufferSize) {
      return Promise.reject(
        new StreamingClientError(
          'offline_buffer_full',
          `${type}: ${this.opts.offlineBufferSize} requests are already waiting for the connection`,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const out: Outgoing = {
        type,
        data,
        timeoutMs,
        retriesLeft: countOr(options.retryRateLimited, this.opts.retryRateLimited),
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      if (open) this.transmit(out);
      else this.queue.push(out);
    });
  }

  /** A request of the client itself (re-subscribe, resume) on the current connection, with rate-limit retries. */
  private sendInternal(type: string, data: Record<string, unknown>): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) =>
      this.transmit({
        type,
        data,
        timeoutMs: this.opts.ackTimeoutMs,
        retriesLeft: this.opts.retryRateLimited,
        resolve,
        reject,
        internal: true,
      }),
    );
  }

  /** Hand a request to the current connection: sent now, or held in the outbox while throttled. */
  private transmit(out: Outgoing): void {
    out.order = ++this.nextOrder;
    out.deadline =
      out.timeoutMs > 0 && Number.isFinite(out.timeoutMs) ? Date.now() + out.timeoutMs : Infinity;
    if (this.throttled || Date.now() < this.pausedUntil) {
      this.throttled = true;
      this.hold(out);
      this.pump();
    } else {
      this.fire(out);
    }
  }

  /** Send a request with what is left of its timeout; its answer is handled synchronously. */
  private fire(out: Outgoing): void {
    const gen = this.generation;
    this.sendRaw(
      out.type,
      out.data,
      Math.max(1, (out.deadline ?? Infinity) - Date.now()),
      (value) => {
        out.resolve(value);
        this.answered(out);
      },
      (err) => this.failed(out, err, gen),
    );
  }

  private answered(out: Outgoing): void {
    if (this.inFlight !== out) return;
    this.inFlight = null;
    this.pump();
  }

  /**
   * A sent request failed. A `rate_limited` refusal retries it when it has retries left and the
   * wait fits in its timeout, and throttles the client (unless retries are off and it is not retried).
   */
  private failed(out: Outgoing, e: StreamingClientError, gen: number): void {
    // A resend waits for what is left of the timeout; its error names the whole timeout.
    if (e.code === 'timeout') e = timeoutError(out.type, out.timeoutMs);
    const now = Date.now();
    const wait = e.code === 'rate_limited' ? retryAfterOf(e) : 0;
    const retry =
      e.code === 'rate_limited' &&
      gen === this.generation &&
      out.retriesLeft > 0 &&
      now + wait < (out.deadline ?? Infinity);
    if (
      !retry &&
      (e.code !== 'rate_limited' || gen !== this.generation || this.opts.retryRateLimited === 0)
    ) {
      out.reject(e);
      this.answered(out);
      return;
    }
    this.pausedUntil = Math.max(this.pausedUntil, now + wait);
    this.throttled = true;
    if (this.inFlight === out) this.inFlight = null;
    if (retry) {
      out.retriesLeft--;
      this.hold(out);
    } else {
      out.reject(e);
    }
    this.pump();
  }

  /** Put a request in the outbox at its place in issue order; it times out there at its deadline. */
  private hold(out: Outgoing): void {
    let i = this.outbox.length;
    while (i > 0 && (this.outbox[i - 1].order ?? 0) > (out.order ?? 0)) i--;
    this.outbox.splice(i, 0, out);
    const deadline = out.deadline ?? Infinity;
    if (deadline === Infinity) return;
    out.timer = setTimeout(
      () => {
        out.timer = null;
        const at = this.outbox.indexOf(out);
        if (at < 0) return;
        this.outbox.splice(at, 1);
        out.reject(timeoutError(out.type, out.timeoutMs));
        this.pump();
      },
      Math.max(0, deadline - Date.now()),
    );
  }

  /** While throttled: after the pause, send the outbox's first request, the next once it is answered. */
  private pump(): void {
    while (this.throttled && this.inFlight === null) {
      if (this.outbox.length === 0) {
        this.throttled = false;
        return;
      }
      if (!this.socket || this.socket.readyState !== 1) return; // the drop moves the outbox to the buffer
      const wait = this.pausedUntil - Date.now();
      if (wait > 0) {
        if (this.pauseTimer === null) {
          this.pauseTimer = setTimeout(() => {
            this.pauseTimer = null;
            this.pump();
          }, wait);
        }
        return;
      }
      const out = this.outbox.shift()!;
      if (out.timer) clearTimeout(out.timer);
      out.timer = null;
      if (Date.now() >= (out.deadline ?? Infinity)) {
        out.reject(timeoutError(out.type, out.timeoutMs));
        continue;
      }
      this.inFlight = out;
      this.fire(out);
    }
  }

  /** Send now on the current socket (no buffering, no retries). */
  private sendNow(
    type: string,
    data: Record<string, unknown>,
    timeoutMs = this.opts.ackTimeoutMs,
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => this.sendRaw(type, data, timeoutMs, resolve, reject));
  }

  /** Write one request on the current socket; exactly one of `resolve` and `reject` is called, once. */
  private sendRaw(
    type: string,
    data: Record<string, unknown>,
    timeoutMs: number,
    resolve: (value: unknown) => void,
    reject: (err: StreamingClientError) => void,
  ): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) {
      reject(new StreamingClientError('disconnected', `${type}: not connected`));
      return;
    }
    const id = `${this.idPrefix}-${++this.nextId}`;
    const p: Pending = { type, resolve, reject, timer: null };
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      p.timer = setTimeout(() => {
        if (this.pending.get(id) !== p) return;
        this.pending.delete(id);
        reject(timeoutError(type, timeoutMs));
      }, timeoutMs);
    }
    this.pending.set(id, p);
    try {
      socket.send(JSON.stringify({ type, id, data }));
    } catch (err) {
      this.pending.delete(id);
      if (p.timer !== null) clearTimeout(p.timer);
      reject(new StreamingClientError('disconnected', `${type}: send failed: ${errorOf(err).message}`));
    }
  }

  // ------------------------------------------------------------ typed requests

  /** `ping`: resolves with the `pong` data. */
  ping(): Promise<PongResult> {
    return this.request<PongResult>('ping');
  }

  /** `create_room`: the caller becomes owner and member. */
  createRoom(input: CreateRoomInput): Promise<CreateRoomResult> {
    return this.request<CreateRoomResult>('create_room', { ...input });
  }

  /** `join_room` (idempotent for members). */
  joinRoom(roomId: string): Promise<JoinRoomResult> {
    return this.request<JoinRoomResult>('join_room', { room_id: roomId });
  }

  /** `leave_room` */
  leaveRoom(roomId: string): Promise<RoomIdResult> {
    return this.request<RoomIdResult>('leave_room', { room_id: roomId });
  }

  /** `update_room` (admins and the owner). */
  updateRoom(roomId: string, patch: UpdateRoomInput): Promise<{ room: WireRoom }> {
    return this.request<{ room: WireRoom }>('update_room', { room_id: roomId, ...patch });
  }

  /** `send_message`: acks `{message_id, seq}`; the `message` event reaches every member, the sender too. */
  sendMessage(
    roomId: string,
    content: string,
    metadata?: Record<string, unknown>,
  ): Promise<SendMessageResult> {
    return this.request<SendMessageResult>('send_message', {
      room_id: roomId,
      content,
      ...(metadata !== undefined ? { metadata } : {}),
    });
  }

  /** `edit_message` (author or moderator+). */
  editMessage(roomId: string, messageId: string, content: string): Promise<EditMessageResult> {
    return this.request<EditMessageResult>('edit_message', {
      room_id: roomId,
      message_id: messageId,
      content,
    });
  }

  /** `delete_message` (author or moderator+). */
  deleteMessage(roomId: string, messageId: string): Promise<DeleteMessageResult> {
    return this.request<DeleteMessageResult>('delete_message', { room_id: roomId, message_id: messageId });
  }

  /** `add_reaction` */
  addReaction(roomId: string, messageId: string, reaction: string): Promise<ReactionResult> {
    return this.request<ReactionResult>('add_reaction', { room_id: roomId, message_id: messageId, reaction });
  }

  /** `remove_reaction` */
  removeReaction(roomId: string, messageId: string, reaction: string): Promise<ReactionResult> {
    return this.request<ReactionResult>('remove_reaction', {
      room_id: roomId,
      message_id: messageId,
      reaction,
    });
  }

  /**
   * `get_history`, oldest first. The newest seq of the page also becomes the
   * room's resume point if it is beyond what the client delivered.
   */
  async getHistory(roomId: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const result = await this.request<HistoryResult>('get_history', { room_id: roomId, ...query });
    this.noteHistory(roomId, result.messages);
    return result;
  }

  /** `start_typing` */
  startTyping(roomId: string): Promise<TypingResult> {
    return this.request<TypingResult>('start_typing', { room_id: roomId });
  }

  /** `stop_typing` */
  stopTyping(roomId: string): Promise<TypingResult> {
    return this.request<TypingResult>('stop_typing', { room_id: roomId });
  }

  /** `set_presence` */
  setPresence(status: PresenceStatus, custom?: string): Promise<SetPresenceResult> {
    return this.request<SetPresenceResult>('set_presence', {
      status,
      ...(custom !== undefined ? { custom } : {}),
    });
  }

  /** `get_presence` of a room's members or of some users. */
  getPresence(query: GetPresenceInput): Promise<GetPresenceResult> {
    return this.request<GetPresenceResult>('get_presence', { ...query });
  }

  /** `subscribe` to a channel or pattern (`*` one token, `>` the rest); restored after every reconnect. */
  async subscribe(channel: string, filters?: ChannelFilters): Promise<SubscribeResult> {
    const result = await this.request<SubscribeResult>(
      'subscribe',
      filters === undefined ? { channel } : { channel, filters },
    );
    this.subs.set(channel, filters);
    return result;
  }

  /** `unsubscribe` (it is no longer restored after a reconnect). */
  unsubscribe(channel: string): Promise<UnsubscribeResult> {
    this.subs.delete(channel);
    return this.request<UnsubscribeResult>('unsubscribe', { channel });
  }

  /** `publish` to a channel: `channel_message` to every matching subscriber. */
  publish(
    channel: string,
    data: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ): Promise<PublishResult> {
    return this.request<PublishResult>('publish', {
      channel,
      data,
      ...(metadata !== undefined ? { metadata } : {}),
    });
  }

  /** `invite` a user to a (private) room. */
  invite(roomId: string, userId: string): Promise<InviteResult> {
    return this.request<InviteResult>('invite', { room_id: roomId, user_id: userId });
  }

  /** `set_role` of a member. */
  setRole(roomId: string, userId: string, role: RoomRole): Promise<SetRoleResult> {
    return this.request<SetRoleResult>('set_role', { room_id: roomId, user_id: userId, role });
  }

  /** `moderate`: ban, unban, kick, mute or unmute. */
  moderate(input: ModerateInput): Promise<ModerationEvent> {
    return this.request<ModerationEvent>('moderate', { ...input });
  }

  // ------------------------------------------------------------ REST

  /**
   * `GET /api/rooms/:id/history` over HTTP (works in SSE mode too, e.g. to
   * reload a room after a `gap`). Like getHistory it moves the resume point.
   */
  async fetchHistory(roomId: string, query: HistoryQuery = {}): Promise<WireMessage[]> {
    const params = Object.entries(query)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
    const path = `/api/rooms/${encodeURIComponent(roomId)}/history${params.length > 0 ? `?${params.join('&')}` : ''}`;
    const body = await this.http<HistoryResult>('GET', path);
    this.noteHistory(roomId, body.messages);
    return body.messages;
  }

  /** An authenticated JSON request to the server's HTTP API (`Authorization: Bearer <token>`). */
  async http<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const f = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f)
      throw new StreamingClientError('no_transport', 'no fetch implementation: pass the `fetch` option');
    const token = await this.resolveToken();
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await f(`${this.httpBase}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const data = isRecord(json) ? json : {};
      const code =
        typeof data.code === 'string'
          ? data.code
          : typeof data.error === 'string'
            ? data.error
            : 'http_error';
      const message =
        typeof data.message === 'string' ? data.message : `${method} ${path} answered ${res.status}`;
      throw new StreamingClientError(code, message, { ...data, status: res.status });
    }
    return json as T;
  }

  private noteHistory(roomId: string, messages: WireMessage[] | undefined): void {
    if (!Array.isArray(messages)) return;
    let max = -1;
    for (const m of messages) if (typeof m?.seq === 'number' && m.seq > max) max = m.seq;
    if (max >= 0 && max > (this.floor.get(roomId) ?? -1)) this.floor.set(roomId, max);
  }
}

/**
 * Held events in arrival order, except that each room's `message` events are
 * put in seq order: the i-th message slot of a room gets that room's i-th
 * smallest seq (duplicates stay; dispatch drops them).
 */
export function orderMessages(held: ServerEnvelope[]): ServerEnvelope[] {
  const byRoom = new Map<string, ServerEnvelope[]>();
  const roomOf = (env: ServerEnvelope): string | null => {
    if (env.type !== 'message' || !isRecord(env.data)) return null;
    const r = env.data.room_id;
    return typeof r === 'string' ? r : null;
  };
  for (const env of held) {
    const room = roomOf(env);
    if (room === null) continue;
    let list = byRoom.get(room);
    if (!list) byRoom.set(room, (list = []));
    list.push(env);
  }
  for (const list of byRoom.values()) {
    list.sort((a, b) => ((a.data as { seq: number }).seq ?? 0) - ((b.data as { seq: number }).seq ?? 0));
  }
  const next = new Map<string, number>();
  return held.map((env) => {
    const room = roomOf(env);
    if (room === null) return env;
    const i = next.get(room) ?? 0;
    next.set(room, i + 1);
    return byRoom.get(room)![i];
  });
}

import type { Connected, ResumedEvent, ServerEnvelope } from '@nest-streaming/protocol';
import { backoffDelay } from './backoff';
import type { ChannelSubscriptions } from './channels';
import type { RoomCursors } from './cursors';
import { StreamingClientError } from './errors';
import type { ClientEmitter } from './events';
import {
  resolveToken,
  type ConnectionState,
  type ResolvedOptions,
  type StreamingClientOptions,
} from './options';
import { Recovery } from './recovery';
import { RequestPipeline } from './requests';
import type { HttpApi } from './rest';
import { TokenRefresher } from './token-refresh';
import { TransportSlot, type Attempt } from './transport-attach';
import { errorOf, isRecord } from './util';

interface Waiter {
  resolve: (c: Connected) => void;
  reject: (err: StreamingClientError) => void;
}

/** The parts of a client the connection works with (owned by the StreamingClient). */
export interface ConnectionParts {
  options: StreamingClientOptions;
  opts: ResolvedOptions;
  emitter: ClientEmitter;
  cursors: RoomCursors;
  channels: ChannelSubscriptions;
  http: HttpApi;
}

/**
 * The connection state machine: one transport attempt at a time (each a new generation; events
 * of older ones are ignored), the `connected` handshake, reconnects with backoff, the optional
 * heartbeat and the SSE watchdog, and the recovery after a reconnect. It owns the transport,
 * the request pipeline and the recovery, and tells them when the connection opens or ends.
 */
export class Connection {
  /** The request/ack pipeline: offline buffer, pending acks, rate-limit retries. */
  readonly requests: RequestPipeline;
  private readonly transport: TransportSlot;
  private readonly recovery: Recovery;
  /** Proactive `refresh_token` on the open WebSocket (with `getToken` only). */
  private readonly refresher: TokenRefresher | null;

  private _state: ConnectionState = 'closed';
  private attempt: Attempt | null = null;
  private generation = 0;
  private reconnectAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private sseWatchdog: ReturnType<typeof setTimeout> | null = null;
  private waiters: Waiter[] = [];
  private hadSession = false;
  private authExpired = false;
  private _connected: Connected | null = null;
  /** The node address `GET /_/streaming/route` named for the current attempt. */
  private routedUrl: string | undefined;

  private readonly options: StreamingClientOptions;
  private readonly opts: ResolvedOptions;
  private readonly emitter: ClientEmitter;
  private readonly cursors: RoomCursors;
  private readonly channels: ChannelSubscriptions;
  private readonly http: HttpApi;

  constructor(parts: ConnectionParts) {
    this.options = parts.options;
    this.opts = parts.opts;
    this.emitter = parts.emitter;
    this.cursors = parts.cursors;
    this.channels = parts.channels;
    this.http = parts.http;
    this.requests = new RequestPipeline(this.opts, {
      state: () => this._state,
      authExpired: () => this.authExpired,
      generation: () => this.generation,
      socket: () => this.transport.socket,
      encode: (env) => this.transport.encode(env),
    });
    this.transport = new TransportSlot(this.options, this.http, {
      generation: () => this.generation,
      envelope: (attempt, env) => this.handleEnvelope(attempt, env),
      sseActivity: (attempt) => this.armSseWatchdog(attempt),
      closed: (attempt, code, reason) => this.transportClosed(attempt, code, reason),
    });
    this.recovery = new Recovery(this.emitter, this.cursors, this.channels, (type, data) =>
      this.requests.sendInternal(type, data),
    );
    const getToken = this.options.getToken;
    this.refresher =
      getToken && this.opts.transport === 'ws' && this.opts.refreshBeforeExpMs !== null
        ? new TokenRefresher(
            {
              getToken: () => getToken(),
              send: (token) => this.requests.sendInternal('refresh_token', { token }),
              error: (data) => this.emitter.emit('error', data),
            },
            this.opts.refreshBeforeExpMs,
          )
        : null;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Data of the last `connected` envelope (null before the first). */
  get connected(): Connected | null {
    return this._connected;
  }

  /** See {@link StreamingClient.connect}. */
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

  /** See {@link StreamingClient.close}. */
  close(): void {
    const was = this._state;
    this.generation++;
    this.clearTimers();
    this.transport.detach(1000, 'client closed');
    this.attempt = null;
    this.recovery.abort();
    const err = new StreamingClientError('closed', 'the client was closed');
    this.requests.rejectPending(err);
    this.requests.resetOutbox(err);
    this.requests.rejectQueue(err);
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

  /** Open one transport attempt. */
  private async startAttempt(): Promise<void> {
    const gen = ++this.generation;
    const attempt: Attempt = {
      gen,
      gotConnected: false,
      sseResume: null,
      lastError: '',
      httpStatus: undefined,
      token: undefined,
    };
    this.attempt = attempt;
    let token: string | undefined;
    try {
      token = await resolveToken(this.options);
    } catch (err) {
      if (gen !== this.generation) return;
      // A failed token refresh is a failed attempt: retried with backoff (the first connect() rejects).
      attempt.lastError = `getToken failed: ${errorOf(err).message}`;
      this.transportClosed(attempt, 1006, attempt.lastError);
      return;
    }
    if (gen !== this.generation) return;
    attempt.token = token;
    if (this.options.route && this.opts.transport !== 'sse') {
      this.routedUrl = await this.http.lookUpRoute(token);
      if (gen !== this.generation) return;
    }
    try {
      if (this.opts.transport === 'sse')
        this.transport.openSse(attempt, token, this.hadSession ? this.cursors.resumePoints() : {});
      else this.transport.openWs(attempt, token, this.routedUrl);
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
    this.requests.resetOutbox(err);
    this.rejectWaiters(err);
    this.requests.rejectQueue(err);
    this.setState('closed');
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
    this.transport.detach(4000, reason);
    this.transportClosed(attempt, 1006, reason);
  }

  private clearTimers(): void {
    for (const t of [this.reconnectTimer, this.connectTimer, this.sseWatchdog])
      if (t !== null) clearTimeout(t);
    this.requests.clearPauseTimer();
    this.refresher?.stop();
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.reconnectTimer = this.connectTimer = this.sseWatchdog = this.heartbeatTimer = null;
  }

  /** The transport of `attempt` closed (or failed to open). */
  private transportClosed(attempt: Attempt, code: number, reason: string): void {
    if (attempt.gen !== this.generation) return;
    this.generation++;
    this.clearTimers();
    this.transport.detach(1000, 'closing');
    this.attempt = null;
    this.recovery.abort();
    const dropped = new StreamingClientError(
      'disconnected',
      `connection closed before the ack (${code} ${reason})`.trim(),
      { close_code: code },
    );
    this.requests.rejectPending(dropped);
    this.requests.resetOutbox(dropped);
    const wasOpen = this._state === 'open';
    // An expired token (4401) with getToken: reconnect below with a fresh one (a refused one stops here).
    const renewable =
      code === 4401 &&
      attempt.gotConnected &&
      this.options.getToken !== undefined &&
      this.opts.reconnectEnabled;
    if ((code === 4401 || attempt.httpStatus === 401) && !renewable) {
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
      this.requests.rejectQueue(err);
      this.setState('closed');
      return;
    }
    // 4403: the server disconnected this user on purpose (server API, admin console): no reconnect,
    // as Socket.IO's client after "io server disconnect".
    if (!this.opts.reconnectEnabled || code === 4403) {
      const err = new StreamingClientError('disconnected', `connection closed (${code} ${reason})`.trim());
      this.rejectWaiters(err);
      this.requests.rejectQueue(err);
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
      this.requests.settle(env.id, env);
      return;
    }
    if (env.type === 'ack' || env.type === 'pong') return;
    if (env.type === 'resumed' && this.recovery.active) {
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
    if (this.recovery.hold(env)) return;
    this.cursors.deliver(env);
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
        this.recovery.begin();
        this.connectTimer = setTimeout(() => {
          if (attempt.gen !== this.generation || !this.recovery.active) return;
          this.finishRecovery(attempt, { rooms: {} }, Object.keys(attempt.sseResume ?? {}));
        }, this.opts.ackTimeoutMs);
      } else {
        this.becomeOpen();
      }
      return;
    }
    if (this.hadSession && (this.channels.size > 0 || Object.keys(this.cursors.resumePoints()).length > 0)) {
      // After a reconnect: re-subscribe every channel, resume every room, then open.
      void this.recovery.resubscribeAndResume(
        () => attempt.gen === this.generation,
        (outcome) => this.finishRecovery(attempt, outcome.resumed, outcome.failed, outcome.gone),
      );
    } else {
      this.becomeOpen();
    }
  }

  /** The resume is done: deliver what was held (see Recovery.finish), open, send the offline buffer. */
  private finishRecovery(
    attempt: Attempt,
    resumed: ResumedEvent,
    resumeFailed: string[],
    alsoGone: string[] = [],
  ): void {
    if (attempt.gen !== this.generation) return;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.recovery.finish(resumed, resumeFailed, alsoGone);
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
    this.refresher?.start(this.attempt?.token);
    this.requests.flush();
  }

  private startHeartbeat(): void {
    if (this.opts.transport !== 'ws' || this.opts.heartbeatIntervalMs <= 0) return;
    const attempt = this.attempt;
    if (!attempt) return;
    this.heartbeatTimer = setInterval(() => {
      if (this._state !== 'open' || attempt.gen !== this.generation) return;
      this.requests.sendNow('ping', {}).catch((err: unknown) => {
        if (errorOf(err).code === 'timeout' && attempt.gen === this.generation) {
          this.dropTransport(attempt, 'no pong');
        }
      });
    }, this.opts.heartbeatIntervalMs);
  }

  private rejectWaiters(err: StreamingClientError): void {
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) w.reject(err);
  }
}

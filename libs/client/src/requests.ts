import type { ServerEnvelope } from '@nest-streaming/protocol';
import { StreamingClientError } from './errors';
import type { ConnectionState, RequestOptions, ResolvedOptions } from './options';
import type { EnvelopeEncoder } from './msgpack';
import { PendingRequests } from './pending';
import type { WebSocketLike } from './transports';
import { countOr, retryAfterOf, timeoutError } from './util';

/** What the pipeline reads of the connection it sends on. */
export interface RequestLink {
  state(): ConnectionState;
  /** The connection stopped on an auth expiry: requests wait in the offline buffer for connect(). */
  authExpired(): boolean;
  /** Changes whenever a connection ends: a refusal from an older connection does not throttle the current one. */
  generation(): number;
  /** The current connection's socket (null between connections). */
  socket(): WebSocketLike | null;
  /** Writes a request envelope in the codec the current connection speaks. */
  encode: EnvelopeEncoder;
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

/**
 * The request/ack pipeline: the offline buffer (requests issued while not connected, sent after
 * the (re)connect), the pending acks, and rate-limit retries. After a `rate_limited` refusal the
 * refused request and every later one wait in the outbox, in issue order; the pipeline waits out
 * the server's `retry_after_ms`, then sends one request at a time until the outbox is empty.
 */
export class RequestPipeline {
  private readonly pending: PendingRequests;
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

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly link: RequestLink,
  ) {
    this.pending = new PendingRequests(
      () => link.socket(),
      (env) => link.encode(env),
    );
  }

  /** Requests waiting to be sent: in the offline buffer, or held back after a `rate_limited` refusal. */
  get queued(): number {
    return this.queue.length + this.outbox.length;
  }

  /** A request of the app: see {@link StreamingClient.request}. */
  submit<T>(type: string, data: Record<string, unknown>, options: RequestOptions): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.opts.ackTimeoutMs;
    if (this.opts.transport === 'sse') {
      return Promise.reject(
        new StreamingClientError('receive_only', `${type}: the SSE transport is receive-only`),
      );
    }
    const state = this.link.state();
    const open = state === 'open';
    const buffering =
      state === 'connecting' || state === 'reconnecting' || (state === 'closed' && this.link.authExpired());
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
  sendInternal(type: string, data: Record<string, unknown>): Promise<unknown> {
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

  /** Send now on the current socket (no buffering, no retries). */
  sendNow(type: string, data: Record<string, unknown>, timeoutMs = this.opts.ackTimeoutMs): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) =>
      this.pending.send(type, data, timeoutMs, resolve, reject),
    );
  }

  /** The answer (`ack`, `error` or `pong`) carrying `id`. */
  settle(id: string, env: ServerEnvelope): void {
    this.pending.settle(id, env);
  }

  /** The connection is open: send the offline buffer, in order. */
  flush(): void {
    while (this.queue.length > 0 && this.link.state() === 'open') this.transmit(this.queue.shift()!);
  }

  /** Reject every request sent and waiting for its answer. */
  rejectPending(err: StreamingClientError): void {
    this.pending.rejectAll(err);
  }

  /** Reject every request of the offline buffer. */
  rejectQueue(err: StreamingClientError): void {
    const all = this.queue;
    this.queue = [];
    for (const q of all) q.reject(err);
  }

  /**
   * The connection is gone: the outbox's requests (refused or held back, so not carried out)
   * go back to the front of the offline buffer, in order; the client's own are rejected with `err`.
   */
  resetOutbox(err: StreamingClientError): void {
    this.clearPauseTimer();
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

  /** Stop waiting out a rate-limit pause. */
  clearPauseTimer(): void {
    if (this.pauseTimer !== null) clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
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
    const gen = this.link.generation();
    this.pending.send(
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
    const current = gen === this.link.generation();
    const retry =
      e.code === 'rate_limited' && current && out.retriesLeft > 0 && now + wait < (out.deadline ?? Infinity);
    if (!retry && (e.code !== 'rate_limited' || !current || this.opts.retryRateLimited === 0)) {
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
      const socket = this.link.socket();
      if (!socket || socket.readyState !== 1) return; // the drop moves the outbox to the buffer
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
}

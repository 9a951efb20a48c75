import { WEBHOOK_HEADERS, signWebhook } from './webhook-signature';

/** Outcome of one POST (one try of a delivery). */
export type WebhookAttemptResult = 'success' | 'http_error' | 'network_error' | 'timeout';
/** Why a delivery was given up: the queue was full, every try failed, or the app shut down. */
export type WebhookDropReason = 'queue_full' | 'max_attempts' | 'shutdown';

/**
 * Sends one POST and resolves with the HTTP status; rejects on a network error
 * or when `signal` aborts (timeout, shutdown).
 */
export type WebhookPost = (
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
) => Promise<number>;

/** Internal knobs (not configuration keys): tests and the provider `WEBHOOK_TUNING` may change them. */
export interface WebhookTuning {
  /** Nominal wait before the second try, ms; doubled for each further try. Default 500. */
  backoffBaseMs: number;
  /** Longest nominal wait between two tries, ms. Default 60 000. */
  backoffMaxMs: number;
  /** POSTs in flight at once (all URLs together). Default 8. */
  concurrency: number;
  /** At most one log line about dropped deliveries per this many ms. Default 5 000. */
  dropLogIntervalMs: number;
  /** How a POST is sent. Default: the global `fetch`. */
  post: WebhookPost;
  /** Random source of the jitter, in [0, 1). Default `Math.random`. */
  random: () => number;
}

/** The settings from the module options. */
export interface WebhookDispatcherConfig {
  urls: readonly string[];
  secret: string;
  /** Deliveries waiting, in flight or waiting for a retry, at most. */
  queueSize: number;
  /** Tries per delivery, the first included. */
  maxAttempts: number;
  /** Time one try may take, ms. */
  timeoutMs: number;
}

/** Where the dispatcher reports what happens (metrics). */
export interface WebhookObserver {
  attempt?(result: WebhookAttemptResult): void;
  /** A delivery ended: answered 2xx, or failed on its last try. */
  settled?(result: 'success' | 'failed'): void;
  dropped?(reason: WebhookDropReason, count: number): void;
  /** Deliveries now waiting, in flight or waiting for a retry. */
  pending?(count: number): void;
}

/** The log lines the dispatcher writes (a Nest `Logger` fits). */
export interface WebhookLog {
  warn(message: string): void;
  debug?(message: string): void;
}

/** `POST` with the global `fetch`; redirects are not followed (a 3xx is a failed try). */
export const fetchWebhookPost: WebhookPost = async (url, body, headers, signal) => {
  const res = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
  // The answer's body means nothing to us: release it without reading it.
  res.body?.cancel().catch(() => undefined);
  return res.status;
};

export const DEFAULT_WEBHOOK_TUNING: WebhookTuning = {
  backoffBaseMs: 500,
  backoffMaxMs: 60_000,
  concurrency: 8,
  dropLogIntervalMs: 5_000,
  post: fetchWebhookPost,
  random: Math.random,
};

/**
 * Wait before the next try after `failedTries` failed ones: exponential
 * (`baseMs`, 2 × `baseMs`, 4 × `baseMs`, ... capped at `maxMs`) with "equal
 * jitter" (a random half of it taken off), so a given wait is in
 * [nominal / 2, nominal]: spread out, and still growing from try to try.
 */
export function webhookBackoffMs(
  failedTries: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const nominal = Math.min(maxMs, baseMs * 2 ** Math.max(0, failedTries - 1));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(nominal / 2 + (r * nominal) / 2);
}

interface Delivery {
  /** The event's id: the idempotency key. */
  id: string;
  url: string;
  body: string;
  tries: number;
}

const REASON_TEXT: Record<WebhookDropReason, string> = {
  queue_full: 'queue full',
  max_attempts: 'every try failed',
  shutdown: 'shutdown',
};

const describe = (err: unknown): string => {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const why = cause && (typeof cause.code === 'string' ? cause.code : cause.message);
  return typeof why === 'string' && why !== '' ? `${err.message} (${why})` : err.message;
};

/**
 * The delivery engine of the webhooks: a bounded queue of deliveries (one per
 * event and URL), at most `concurrency` POSTs at once, retries after
 * exponential backoff with jitter, at least once. `send` only queues and
 * returns: no caller ever waits for a receiver.
 *
 * A delivery counts against `queueSize` from the moment it is queued until it
 * ends (2xx, last failed try, shutdown), retries included; a new delivery
 * past it is dropped (and counted). Drops are logged at most once per
 * `dropLogIntervalMs`, with how many since the last line. {@link close} stops
 * everything at once (timers cleared, POSTs aborted), dropping what is
 * pending.
 */
export class WebhookDispatcher {
  private readonly tuning: WebhookTuning;
  /** Deliveries waiting for a slot, FIFO (`head` is the next one). */
  private ready: Array<Delivery | undefined> = [];
  private head = 0;
  private readonly inFlight = new Map<Delivery, AbortController>();
  private readonly retrying = new Map<Delivery, NodeJS.Timeout>();
  private closed = false;
  private readonly unlogged = new Map<WebhookDropReason, { count: number; detail?: string }>();
  private lastDropLog = -Infinity;
  private dropLogTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: WebhookDispatcherConfig,
    tuning: Partial<WebhookTuning> = {},
    private readonly observer: WebhookObserver = {},
    private readonly log: WebhookLog = { warn: () => undefined },
  ) {
    this.tuning = { ...DEFAULT_WEBHOOK_TUNING, ...tuning };
  }

  /** Deliveries waiting, in flight or waiting for a retry. */
  get pending(): number {
    return this.ready.length - this.head + this.inFlight.size + this.retrying.size;
  }

  /** POSTs under way. */
  get active(): number {
    return this.inFlight.size;
  }

  /**
   * Queue `body` (the JSON of one event, idempotency key `id`) for every URL
   * and return at once; returns how many deliveries were queued (the others
   * were dropped: queue full, or closed).
   */
  send(id: string, body: string): number {
    if (this.closed) return 0;
    let queued = 0;
    for (const url of this.config.urls) {
      if (this.pending >= this.config.queueSize) {
        this.drop('queue_full', 1, `${this.config.queueSize} pending`);
        continue;
      }
      this.ready.push({ id, url, body, tries: 0 });
      queued++;
    }
    if (queued > 0) {
      this.pump();
      this.observer.pending?.(this.pending);
    }
    return queued;
  }

  /** Stop: clear retry timers, abort POSTs, drop what is pending. Returns how many were dropped. */
  close(): number {
    if (this.closed) return 0;
    this.closed = true;
    for (const timer of this.retrying.values()) clearTimeout(timer);
    for (const controller of this.inFlight.values()) controller.abort();
    const dropped = this.pending;
    this.ready = [];
    this.head = 0;
    this.retrying.clear();
    this.inFlight.clear();
    if (dropped > 0) this.observer.dropped?.('shutdown', dropped);
    if (this.dropLogTimer) clearTimeout(this.dropLogTimer);
    this.dropLogTimer = undefined;
    this.flushDropLog();
    this.observer.pending?.(0);
    return dropped;
  }

  /** Start tries while slots are free. */
  private pump(): void {
    while (!this.closed && this.inFlight.size < this.tuning.concurrency) {
      const next = this.take();
      if (!next) return;
      const controller = new AbortController();
      this.inFlight.set(next, controller);
      void this.attempt(next, controller);
    }
  }

  private take(): Delivery | undefined {
    if (this.head >= this.ready.length) return undefined;
    const d = this.ready[this.head];
    this.ready[this.head++] = undefined;
    if (this.head === this.ready.length) {
      this.ready = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.ready.length) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
    return d;
  }

  private async attempt(d: Delivery, controller: AbortController): Promise<void> {
    d.tries++;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.config.timeoutMs);
    timer.unref();
    let result: WebhookAttemptResult;
    let detail: string;
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'User-Agent': 'nest-streaming-webhooks',
        [WEBHOOK_HEADERS.id]: d.id,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signWebhook(this.config.secret, timestamp, d.body),
      };
      // Raced with the abort, so a `post` that ignores its signal still frees its slot in time.
      const aborted = new Promise<never>((_, reject) =>
        controller.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
      );
      const status = await Promise.race([
        this.tuning.post(d.url, d.body, headers, controller.signal),
        aborted,
      ]);
      result = status >= 200 && status < 300 ? 'success' : 'http_error';
      detail = `HTTP ${status}`;
    } catch (err) {
      result = timedOut ? 'timeout' : 'network_error';
      detail = timedOut ? `no answer within ${this.config.timeoutMs} ms` : describe(err);
    } finally {
      clearTimeout(timer);
    }
    if (this.closed || !this.inFlight.delete(d)) return; // counted by close()
    this.observer.attempt?.(result);
    if (result === 'success') {
      this.observer.settled?.('success');
    } else if (d.tries >= this.config.maxAttempts) {
      this.observer.settled?.('failed');
      this.drop('max_attempts', 1, `${d.url}: ${detail}`);
    } else {
      const wait = webhookBackoffMs(
        d.tries,
        this.tuning.backoffBaseMs,
        this.tuning.backoffMaxMs,
        this.tuning.random,
      );
      this.log.debug?.(`webhook ${d.id} to ${d.url}: try ${d.tries} failed (${detail}); next in ${wait} ms`);
      const retry = setTimeout(() => {
        if (!this.retrying.delete(d)) return;
        this.ready.push(d);
        this.pump();
      }, wait);
      retry.unref();
      this.retrying.set(d, retry);
    }
    this.pump();
    this.observer.pending?.(this.pending);
  }

  /** Count a drop; log the drops at most once per `dropLogIntervalMs` (the rest on a later line). */
  private drop(reason: WebhookDropReason, count: number, detail: string): void {
    this.observer.dropped?.(reason, count);
    const entry = this.unlogged.get(reason);
    if (entry) {
      entry.count += count;
      entry.detail = detail;
    } else this.unlogged.set(reason, { count, detail });
    const wait = this.lastDropLog + this.tuning.dropLogIntervalMs - Date.now();
    if (wait <= 0) this.flushDropLog();
    else if (!this.dropLogTimer && !this.closed) {
      this.dropLogTimer = setTimeout(() => {
        this.dropLogTimer = undefined;
        this.flushDropLog();
      }, wait);
      this.dropLogTimer.unref();
    }
  }

  private flushDropLog(): void {
    if (this.unlogged.size === 0) return;
    const parts = [...this.unlogged].map(
      ([reason, { count, detail }]) =>
        `${count} (${REASON_TEXT[reason]}${detail ? `; last: ${detail}` : ''})`,
    );
    this.unlogged.clear();
    this.lastDropLog = Date.now();
    this.log.warn(`webhook deliveries dropped: ${parts.join(', ')}`);
  }
}

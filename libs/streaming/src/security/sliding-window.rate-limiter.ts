import { actionCost, ALLOWED, budgetKey, clampScale, RateLimitKeyingOptions, refused } from './rate-limiter';
import { CounterStore } from '../interfaces';
import type { RateLimitDecision, ScalableRateLimiter } from '../interfaces';

/** Options of {@link SlidingWindowRateLimiter}. */
export interface SlidingWindowOptions extends RateLimitKeyingOptions {
  /** Where the window counters live: a `BackendCounterStore` to share limits across nodes. */
  store: CounterStore;
  /** Requests allowed in any window (≥ 1; fractions are floored). */
  limit: number;
  /** Window length, ms. */
  windowMs: number;
  /** Counter key prefix; limiters sharing a store need distinct prefixes. Default `rl:sw`. */
  prefix?: string;
  /** Clock (epoch ms) that places requests in windows; tests inject a fake one. Default `Date.now`. */
  now?: () => number;
}

/** Options of {@link SlidingWindowRateLimiter.perSecond}. */
export type PerSecondOptions = Omit<SlidingWindowOptions, 'limit' | 'windowMs'> & {
  requestsPerSecond: number;
};

const EPSILON = 1e-6;

/**
 * Two-bucket weighted sliding window counter (as used by Cloudflare and nginx-style
 * limiters), over atomic counters so that it holds across nodes.
 *
 * Semantics, per budget key (the user or connection id, plus the action when
 * `keyByAction` is on): time is cut into fixed windows of `windowMs` (aligned to the
 * epoch on each node's clock). A request at `elapsed` ms into window *i* is allowed
 * iff `prev × (1 − elapsed / windowMs) + cur ≤ limit`, where `cur` is the cost of the
 * requests allowed so far in window *i* including this one, and `prev` that of window
 * *i − 1*: the previous window's requests are assumed evenly spread, so the estimate
 * slides smoothly instead of resetting at window boundaries. An idle key gets exactly
 * `limit`; steady traffic gets `limit` per `windowMs`; a burst just before a boundary
 * does not earn a fresh `limit` just after it (capacity returns linearly over the next
 * window). It is an estimate: in the worst case (previous window's traffic all at its
 * end, this window's all at its end) a span of `windowMs` can hold up to ~2 × `limit`.
 *
 * Concurrency: a request first increments `cur` atomically and reads `prev`; if the
 * estimate is over the limit it refunds its increment and is refused. Because each
 * increment returns a distinct running total, N concurrent requests against a
 * budget of B allow exactly min(N, B), on one node or many. Refused requests do not
 * count. Window counters expire two windows (plus 1 s of clock slack) after creation.
 *
 * `retryAfterMs` is the time until a request of the same cost would pass if nobody
 * else used the budget: later in this window as `prev` fades, else in the next one.
 */
export class SlidingWindowRateLimiter implements ScalableRateLimiter {
  protected readonly limit: number;
  protected readonly windowMs: number;
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(private readonly opts: SlidingWindowOptions) {
    if (!(opts.limit >= 1)) throw new RangeError('limit must be ≥ 1');
    if (!(opts.windowMs > 0) || !Number.isFinite(opts.windowMs)) throw new RangeError('windowMs must be > 0');
    this.limit = Math.floor(opts.limit);
    this.windowMs = opts.windowMs;
    this.prefix = opts.prefix ?? 'rl:sw';
    this.now = opts.now ?? Date.now;
    this.ttlMs = Math.ceil(2 * this.windowMs) + 1000;
  }

  /**
   * `requestsPerSecond` on average: `max(1, floor(rps))` requests per window of
   * `limit / rps` seconds (10 rps → 10 per 1 s; 2.5 rps → 2 per 800 ms; 0.5 rps → 1 per 2 s).
   */
  static perSecond(opts: PerSecondOptions): SlidingWindowRateLimiter {
    const { requestsPerSecond: rps, ...rest } = opts;
    if (!(rps > 0)) throw new RangeError('requestsPerSecond must be > 0');
    const limit = Math.max(1, Math.floor(rps));
    return new SlidingWindowRateLimiter({ ...rest, limit, windowMs: (limit / rps) * 1000 });
  }

  async checkLimit(key: string, action = '', scale?: number): Promise<RateLimitDecision> {
    const limit = Math.max(1, Math.floor(this.limit * clampScale(scale) + EPSILON));
    let cost = actionCost(this.opts.costs, action);
    if (cost === 0) return ALLOWED;
    cost = Math.min(cost, limit);

    const t = this.now();
    const w = this.windowMs;
    const idx = Math.floor(t / w);
    const elapsed = t - idx * w;
    const id = budgetKey(key, action, this.opts.keyByAction);
    const curKey = `${this.prefix}:${idx}:${id}`;
    const [cur, prevRaw] = await Promise.all([
      this.opts.store.increment(curKey, cost, this.ttlMs),
      this.opts.store.get(`${this.prefix}:${idx - 1}:${id}`),
    ]);
    const prev = Math.max(0, prevRaw);
    if (prev * (1 - elapsed / w) + cur <= limit + EPSILON) return ALLOWED;

    // Refused requests do not count; a failed refund only makes the limit stricter.
    await this.opts.store.increment(curKey, -cost, this.ttlMs).catch(() => undefined);
    return refused(this.retryAfter(limit, cost, Math.min(Math.max(0, cur - cost), limit), prev, elapsed));
  }

  /** Time until `prev × weight + counted + cost ≤ limit`, assuming no other traffic. */
  private retryAfter(limit: number, cost: number, counted: number, prev: number, elapsed: number): number {
    const w = this.windowMs;
    const room = limit - counted - cost;
    if (prev > 0 && room >= 0) {
      const at = w * (1 - room / prev);
      if (at < w) return at - elapsed;
    }
    const atNext = counted > 0 ? Math.max(0, w * (1 - (limit - cost) / counted)) : 0;
    return w - elapsed + atNext;
  }
}

/** Options of {@link DistributedTokenBucketRateLimiter}. */
export type DistributedTokenBucketOptions = Omit<SlidingWindowOptions, 'limit' | 'windowMs'> & {
  requestsPerSecond: number;
  burstSize: number;
};

/**
 * Token bucket semantics across nodes, built on atomic counters only (no
 * compare-and-set is available, so exact GCRA is out of reach): a
 * {@link SlidingWindowRateLimiter} allowing `burstSize` requests per window of
 * `burstSize / requestsPerSecond` seconds.
 *
 * What holds exactly: an idle key may burst `burstSize` requests at once (exactly
 * that many even when they race across nodes), and the sustained rate is
 * `requestsPerSecond` (`burstSize` per window). Where it differs from the in-process
 * {@link TokenBucketRateLimiter}: capacity used in a window comes back linearly over
 * the *next* window (at `requestsPerSecond`) rather than immediately, so right after
 * a burst it can be up to one window stricter; and since the previous window's
 * requests are assumed evenly spread, bursty traffic at window edges can see up to
 * ~2 × `burstSize` in one span of a window (see {@link SlidingWindowRateLimiter}).
 * With 10 rps and a burst of 20 the window is 2 s: 20 at once, then 10 per second.
 */
export class DistributedTokenBucketRateLimiter extends SlidingWindowRateLimiter {
  constructor(opts: DistributedTokenBucketOptions) {
    const { requestsPerSecond: rps, burstSize, ...rest } = opts;
    if (!(rps > 0)) throw new RangeError('requestsPerSecond must be > 0');
    if (!(burstSize >= 1)) throw new RangeError('burstSize must be ≥ 1');
    const limit = Math.floor(burstSize);
    super({ prefix: 'rl:tb', ...rest, limit, windowMs: (limit / rps) * 1000 });
  }
}

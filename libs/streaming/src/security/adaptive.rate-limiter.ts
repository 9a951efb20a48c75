import { CounterStore } from '../interfaces';
import type { RateLimitDecision, ScalableRateLimiter } from '../interfaces';

/** Options of {@link AdaptiveRateLimiter}. */
export interface AdaptiveRateLimiterOptions {
  /** The algorithm whose limit is tightened (token bucket or sliding window). */
  base: ScalableRateLimiter;
  /** Where the penalty state lives: a `BackendCounterStore` to share it across nodes. */
  store: CounterStore;
  /** The base limit's rate, to know where the floor is. */
  requestsPerSecond: number;
  /** The penalty never takes a key below this rate. Default 1. */
  minRequestsPerSecond?: number;
  /** Refusals within one violation window that raise the penalty one level. Default 10. */
  violationThreshold?: number;
  /** Violation window, ms. Default 1000: at most one level more per second. */
  violationWindowMs?: number;
  /** Length of the quiet period that lowers the penalty one level, ms. Default 10 000. */
  relaxAfterMs?: number;
  /**
   * Highest penalty level (the limit is divided by 2^level). Default: the first level
   * that reaches the floor, `ceil(log2(requestsPerSecond / minRequestsPerSecond))`.
   */
  maxLevel?: number;
  /** Lifetime of the level counter from its creation, ms. Default 1 hour. */
  stateTtlMs?: number;
  /** Counter key prefix. Default `rl:ad`. */
  prefix?: string;
  /** Clock (epoch ms); tests inject a fake one. Default `Date.now`. */
  now?: () => number;
}

/**
 * Adaptive rate limiting: a key that keeps hitting
 * the limit gets a penalty; good behaviour earns it back.
 *
 * - **Penalty level** *L* (0 = none): the base limit (rate and burst) is divided by
 *   2^L, but never below `minRequestsPerSecond` (default 1 rps). *L* ≤ `maxLevel`.
 * - **Tightening**: every `violationThreshold` refusals within one fixed
 *   `violationWindowMs` window raise *L* by one (at most once per window: the request
 *   whose refusal count reaches exactly the threshold does it, so concurrent refusals
 *   on any number of nodes raise it once).
 * - **Relaxing**: time is cut into aligned periods of `relaxAfterMs`; every full period
 *   without a refusal lowers *L* by one (halving the divisor), down to 0. The first step
 *   down therefore comes between `relaxAfterMs` and 2 × `relaxAfterMs` after the last
 *   refusal, then one per period. Idle periods count as quiet: a key coming back after
 *   a long silence has its penalty reduced by every quiet period it missed.
 *
 * All state is in atomic counters (the level, refusals per violation window, refusals
 * per relax period, and a once-per-period claim so that exactly one request applies a
 * period's relaxation), so with a shared store it holds across nodes. The level
 * counter expires `stateTtlMs` after its creation; under abuse that outlives it the
 * key simply re-escalates within a few violation windows.
 */
export class AdaptiveRateLimiter implements ScalableRateLimiter {
  private readonly minScale: number;
  private readonly threshold: number;
  private readonly violationWindowMs: number;
  private readonly relaxAfterMs: number;
  private readonly maxLevel: number;
  private readonly stateTtlMs: number;
  private readonly periodTtlMs: number;
  private readonly prefix: string;
  private readonly now: () => number;
  /** Relax periods this node already tried to claim, per key (bounded, best effort). */
  private readonly claimed = new Map<string, number>();

  constructor(private readonly opts: AdaptiveRateLimiterOptions) {
    const rps = opts.requestsPerSecond;
    const minRps = opts.minRequestsPerSecond ?? 1;
    if (!(rps > 0)) throw new RangeError('requestsPerSecond must be > 0');
    if (!(minRps > 0)) throw new RangeError('minRequestsPerSecond must be > 0');
    this.minScale = Math.min(1, minRps / rps);
    this.threshold = Math.max(1, Math.floor(opts.violationThreshold ?? 10));
    this.violationWindowMs = Math.max(1, opts.violationWindowMs ?? 1000);
    this.relaxAfterMs = Math.max(1, opts.relaxAfterMs ?? 10_000);
    this.maxLevel = Math.max(
      0,
      Math.floor(opts.maxLevel ?? Math.ceil(Math.log2(Math.max(1, rps / minRps)) - 1e-9)),
    );
    this.periodTtlMs = (this.maxLevel + 2) * this.relaxAfterMs + 1000;
    this.stateTtlMs = Math.max(opts.stateTtlMs ?? 3_600_000, this.periodTtlMs);
    this.prefix = opts.prefix ?? 'rl:ad';
    this.now = opts.now ?? Date.now;
  }

  /** Current penalty level of a key (0 = none), after any due relaxation. */
  async level(key: string): Promise<number> {
    const level = this.clamp(await this.opts.store.get(this.levelKey(key)));
    return level > 0 ? this.relax(key, Math.floor(this.now() / this.relaxAfterMs), level) : 0;
  }

  /** The factor applied to the base limit at a level. */
  scaleFor(level: number): number {
    return Math.max(this.minScale, 2 ** -level);
  }

  async checkLimit(key: string, action = '', scale?: number): Promise<RateLimitDecision> {
    const t = this.now();
    const period = Math.floor(t / this.relaxAfterMs);
    let level = this.clamp(await this.opts.store.get(this.levelKey(key)));
    if (level > 0) level = await this.relax(key, period, level);
    const decision = await this.opts.base.checkLimit(key, action, this.scaleFor(level) * (scale ?? 1));
    if (!decision.allowed && (await this.recordRefusal(key, t, period))) {
      // This refusal halved the limit: the earliest retry is twice as far as the old rate said.
      return { allowed: false, retryAfterMs: decision.retryAfterMs * 2 };
    }
    return decision;
  }

  private levelKey(key: string): string {
    return `${this.prefix}:lvl:${key}`;
  }

  private refusalsKey(period: number, key: string): string {
    return `${this.prefix}:f:${period}:${key}`;
  }

  private claimKey(period: number, key: string): string {
    return `${this.prefix}:rx:${period}:${key}`;
  }

  private clamp(level: number): number {
    return Math.min(this.maxLevel, Math.max(0, Math.floor(level)));
  }

  /**
   * Once per relax period (the first request of the period to claim it, on any node):
   * lower the level by the number of full quiet periods since the last one handled.
   */
  private async relax(key: string, period: number, level: number): Promise<number> {
    if (this.claimed.get(key) === period) return level;
    if (this.claimed.size >= 10_000) this.claimed.clear();
    this.claimed.set(key, period);
    const { store } = this.opts;
    if ((await store.increment(this.claimKey(period, key), 1, this.periodTtlMs)) !== 1) return level;
    // Count full periods after the last refusal: none if this period already had one.
    let quiet = 0;
    if ((await store.get(this.refusalsKey(period, key))) === 0) {
      for (let back = 1; back <= this.maxLevel && quiet < level; back++) {
        const p = period - back;
        const [refusals, claims] = await Promise.all([
          store.get(this.refusalsKey(p, key)),
          store.get(this.claimKey(p, key)),
        ]);
        if (refusals > 0) break;
        quiet++;
        // That period's claimant already handled the periods before it.
        if (claims > 0) break;
      }
    }
    if (quiet === 0) return level;
    let v = await store.increment(this.levelKey(key), -quiet, this.stateTtlMs);
    if (v < 0) {
      // Never below 0: undo our overshoot (concurrent escalations keep theirs).
      v = await store.increment(this.levelKey(key), Math.min(quiet, -v), this.stateTtlMs);
    }
    return this.clamp(v);
  }

  /** Count a refusal; the threshold-crossing refusal of a violation window raises the level. */
  /** Count a refusal; returns true when it raised the penalty level. */
  private async recordRefusal(key: string, t: number, period: number): Promise<boolean> {
    const { store } = this.opts;
    const win = Math.floor(t / this.violationWindowMs);
    const [, strikes] = await Promise.all([
      store.increment(this.refusalsKey(period, key), 1, this.periodTtlMs),
      store.increment(`${this.prefix}:s:${win}:${key}`, 1, 2 * this.violationWindowMs + 1000),
    ]);
    if (strikes !== this.threshold || this.maxLevel === 0) return false;
    const v = await store.increment(this.levelKey(key), 1, this.stateTtlMs);
    // Already at the top: give our step back (each racer gives back its own).
    if (v > this.maxLevel) {
      await store.increment(this.levelKey(key), -1, this.stateTtlMs);
      return false;
    }
    return true;
  }
}

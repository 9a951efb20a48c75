import { RateLimitOptions } from '../config/streaming-options.interface';
import type { RateLimitDecision, ScalableRateLimiter } from '../interfaces';

/** How requests map to budgets, shared by every bundled limiter. */
export interface RateLimitKeyingOptions {
  /**
   * Cost of a request by action (request type), in requests/tokens. Default 1 for
   * every action; 0 exempts an action. A cost above the allowance is clamped to it,
   * so an expensive action is still possible from a full budget.
   */
  costs?: Record<string, number>;
  /** Give every action its own budget instead of one budget per key. Default `false`. */
  keyByAction?: boolean;
}

/** Verdict of an allowed request. */
export const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true, retryAfterMs: 0 });

/** A refusal with a sane, positive, whole-millisecond `retryAfterMs`. */
export function refused(retryAfterMs: number): RateLimitDecision {
  // Shave float noise (1.0000000001 ms is 1 ms), then round up to whole ms.
  const ms = Number.isFinite(retryAfterMs) ? Math.ceil(retryAfterMs - 1e-6) : 1000;
  return { allowed: false, retryAfterMs: Math.max(1, ms) };
}

/** Cost of `action` under `costs` (default 1; negative or non-finite costs count as 1). */
export function actionCost(costs: Record<string, number> | undefined, action: string): number {
  const c = costs && Object.prototype.hasOwnProperty.call(costs, action) ? costs[action] : 1;
  return Number.isFinite(c) && c >= 0 ? c : 1;
}

/** The budget key of a request. */
export function budgetKey(key: string, action: string, keyByAction: boolean | undefined): string {
  return keyByAction ? `${action}|${key}` : key;
}

/** Clamp a scale factor into (0, 1]. */
export function clampScale(scale: number | undefined): number {
  if (scale === undefined || !Number.isFinite(scale) || scale >= 1) return 1;
  return scale > 0 ? scale : Number.MIN_VALUE;
}

/** Options of {@link TokenBucketRateLimiter}. */
export interface TokenBucketOptions
  extends Pick<RateLimitOptions, 'requestsPerSecond' | 'burstSize'>, RateLimitKeyingOptions {
  /** Clock (epoch ms); tests inject a fake one. Default `Date.now`. */
  now?: () => number;
}

/**
 * In-process token bucket: each key has `burstSize` tokens, refilled continuously at
 * `requestsPerSecond`; a request takes `cost` tokens (default 1) or is refused with the
 * exact time until enough tokens are back. State lives in this process only: use
 * {@link DistributedTokenBucketRateLimiter} (via `createRateLimiter`) when several
 * nodes share a backend.
 */
export class TokenBucketRateLimiter implements ScalableRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;
  private lastSweep: number;

  constructor(private readonly opts: TokenBucketOptions) {
    if (!(opts.requestsPerSecond > 0)) throw new RangeError('requestsPerSecond must be > 0');
    if (!(opts.burstSize >= 1)) throw new RangeError('burstSize must be ≥ 1');
    this.now = opts.now ?? Date.now;
    this.lastSweep = this.now();
  }

  checkLimit(key: string, action = '', scale?: number): RateLimitDecision {
    const s = clampScale(scale);
    const rate = Math.max(this.opts.requestsPerSecond * s, Number.MIN_VALUE);
    const burst = Math.max(1, this.opts.burstSize * s);
    let cost = actionCost(this.opts.costs, action);
    if (cost === 0) return ALLOWED;
    cost = Math.min(cost, burst);
    const now = this.now();
    this.sweep(now);
    const id = budgetKey(key, action, this.opts.keyByAction);
    let b = this.buckets.get(id);
    if (!b) this.buckets.set(id, (b = { tokens: burst, at: now }));
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rate);
    b.at = Math.max(b.at, now);
    if (b.tokens >= cost - 1e-9) {
      b.tokens -= cost;
      return ALLOWED;
    }
    return refused(((cost - b.tokens) / rate) * 1000);
  }

  /** Forget full buckets now and then so the map stays bounded by active keys. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    const { burstSize: full, requestsPerSecond: rate } = this.opts;
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * rate >= full) this.buckets.delete(k);
    }
  }
}

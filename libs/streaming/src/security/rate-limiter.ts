import { RateLimitOptions } from '../config/streaming-options.interface';

/** Injection token of the active {@link RateLimiter}. */
export const STREAMING_RATE_LIMITER = Symbol('STREAMING_RATE_LIMITER');

/** Verdict of a rate limiter. */
export interface RateLimitDecision {
  allowed: boolean;
  /** When refused: how long until a request would be allowed. */
  retryAfterMs: number;
}

/** Pluggable rate limiter (the seed's CheckLimit): `key` is a user or connection id. */
export interface RateLimiter {
  checkLimit(key: string, action: string): Promise<RateLimitDecision> | RateLimitDecision;
}

/**
 * In-process token bucket: `burstSize` tokens, refilled at
 * `requestsPerSecond`; one token per request, per key.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = Date.now();

  constructor(private readonly opts: Pick<RateLimitOptions, 'requestsPerSecond' | 'burstSize'>) {}

  checkLimit(key: string): RateLimitDecision {
    const now = Date.now();
    const { requestsPerSecond: rate, burstSize: burst } = this.opts;
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = { tokens: burst, at: now }));
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.sweep(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfterMs: 0 };
    }
    return { allowed: false, retryAfterMs: Math.ceil(((1 - b.tokens) / rate) * 1000) };
  }

  /** Forget full buckets now and then so the map stays bounded by active keys. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    const full = this.opts.burstSize;
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.opts.requestsPerSecond >= full) this.buckets.delete(k);
    }
  }
}

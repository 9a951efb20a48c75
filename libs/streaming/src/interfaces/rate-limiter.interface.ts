/** Verdict of a rate limiter. */
export interface RateLimitDecision {
  allowed: boolean;
  /** When refused: how long until a request would be allowed (ms, at least 1). 0 when allowed. */
  retryAfterMs: number;
}

/** Pluggable rate limiter: `key` is a user or connection id, `action` the request type. */
export interface RateLimiter {
  checkLimit(key: string, action: string): Promise<RateLimitDecision> | RateLimitDecision;
}

/**
 * A rate limiter whose limit can be scaled down per call. The
 * {@link AdaptiveRateLimiter} uses it to tighten the limit of a misbehaving key.
 */
export interface ScalableRateLimiter extends RateLimiter {
  /**
   * Like {@link RateLimiter.checkLimit}, with the limit (rate and burst) multiplied
   * by `scale` (0 < scale ≤ 1; default 1). The effective allowance never drops below
   * one request per window or bucket.
   */
  checkLimit(key: string, action: string, scale?: number): Promise<RateLimitDecision> | RateLimitDecision;
}

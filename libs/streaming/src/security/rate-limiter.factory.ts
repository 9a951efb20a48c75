import type { StreamingOptions } from '../config/streaming-options.interface';
import { AdaptiveRateLimiter } from './adaptive.rate-limiter';
import { BackendCounterStore, MemoryCounterStore } from './counter-store';
import { MessageRateLimiter } from './message-rate-limiter';
import { TokenBucketRateLimiter } from './rate-limiter';
import { DistributedTokenBucketRateLimiter, SlidingWindowRateLimiter } from './sliding-window.rate-limiter';
import { type StreamingBackend, CounterStore } from '../interfaces';
import type { RateLimiter, ScalableRateLimiter } from '../interfaces';

/** Optional overrides of the factories (tests, custom stores). */
export interface RateLimiterFactoryOverrides {
  /** Counters to use instead of the default choice (see {@link createCounterStore}). */
  store?: CounterStore;
  /**
   * Whether `store` is shared by several nodes, so the token bucket must
   * live in it too. Default: true when a store is given or the backend is
   * distributed.
   */
  shared?: boolean;
  /** Clock (epoch ms). Default `Date.now`. */
  now?: () => number;
}

/**
 * Counters for the limiters: the backend's when it is shared between nodes
 * (`backend.distributed`, e.g. Redis), so limits hold cluster-wide; otherwise an
 * in-process {@link MemoryCounterStore} (same semantics, and it sweeps expired
 * window counters, which a process-local backend has no reason to share).
 */
export function createCounterStore(backend: StreamingBackend, now?: () => number): CounterStore {
  return backend.distributed ? new BackendCounterStore(backend) : new MemoryCounterStore({ now });
}

/**
 * The rate limiter the options ask for (`rateLimit.algorithm`):
 *
 * - `token_bucket`: a bucket of `burstSize` refilled at `requestsPerSecond`; in process
 *   ({@link TokenBucketRateLimiter}) on a single-node backend, the counter-based
 *   {@link DistributedTokenBucketRateLimiter} on a distributed one.
 * - `sliding_window`: `requestsPerSecond` per sliding second ({@link SlidingWindowRateLimiter}).
 * - `adaptive`: the token bucket above, tightened for keys that keep hitting it
 *   ({@link AdaptiveRateLimiter}, default penalty settings).
 *
 * Every request type counts one against one budget per key.
 */
export function createRateLimiter(
  options: StreamingOptions,
  backend: StreamingBackend,
  overrides: RateLimiterFactoryOverrides = {},
): RateLimiter {
  const { algorithm, requestsPerSecond, burstSize } = options.rateLimit;
  const { now } = overrides;
  const shared = overrides.shared ?? (overrides.store !== undefined || backend.distributed);
  const store = overrides.store ?? createCounterStore(backend, now);
  const tokenBucket = (): ScalableRateLimiter =>
    shared
      ? new DistributedTokenBucketRateLimiter({ store, requestsPerSecond, burstSize, now })
      : new TokenBucketRateLimiter({ requestsPerSecond, burstSize, now });
  switch (algorithm) {
    case 'sliding_window':
      return SlidingWindowRateLimiter.perSecond({ store, requestsPerSecond, now });
    case 'adaptive':
      return new AdaptiveRateLimiter({ base: tokenBucket(), store, requestsPerSecond, now });
    case 'token_bucket':
      return tokenBucket();
    default:
      throw new Error(`unknown rate limit algorithm "${String(algorithm)}"`);
  }
}

/** The per-user message cap of `maxMessagesPerSecond` (see {@link MessageRateLimiter}). */
export function createMessageRateLimiter(
  options: StreamingOptions,
  backend: StreamingBackend,
  overrides: RateLimiterFactoryOverrides = {},
): MessageRateLimiter {
  return new MessageRateLimiter({
    maxMessagesPerSecond: options.maxMessagesPerSecond,
    store: overrides.store ?? createCounterStore(backend, overrides.now),
    now: overrides.now,
  });
}

import { ALLOWED } from './rate-limiter';
import { SlidingWindowRateLimiter } from './sliding-window.rate-limiter';
import { CounterStore } from '../interfaces';
import type { RateLimitDecision, RateLimiter } from '../interfaces';

/** Request types that count as messages by default: those that deliver content to others. */
export const MESSAGE_ACTIONS: readonly string[] = Object.freeze(['send_message', 'publish']);

/** Options of {@link MessageRateLimiter}. */
export interface MessageRateLimiterOptions {
  /** `max_messages_per_second`, per user. */
  maxMessagesPerSecond: number;
  /** Where the counters live: a `BackendCounterStore` to share the limit across nodes. */
  store: CounterStore;
  /** Request types the limit applies to; they share one budget. Default {@link MESSAGE_ACTIONS}. */
  actions?: readonly string[];
  /** Counter key prefix. Default `rl:msg`. */
  prefix?: string;
  /** Clock (epoch ms); tests inject a fake one. Default `Date.now`. */
  now?: () => number;
}

/**
 * The per-user message cap (`max_messages_per_second`), checked on top of the
 * general request limit: at most `maxMessagesPerSecond` messages (all
 * {@link MessageRateLimiterOptions.actions} together) in any sliding second, with the
 * semantics of {@link SlidingWindowRateLimiter}. Other actions are always allowed.
 */
export class MessageRateLimiter implements RateLimiter {
  private readonly actions: ReadonlySet<string>;
  private readonly window: SlidingWindowRateLimiter;

  constructor(opts: MessageRateLimiterOptions) {
    this.actions = new Set(opts.actions ?? MESSAGE_ACTIONS);
    this.window = SlidingWindowRateLimiter.perSecond({
      store: opts.store,
      requestsPerSecond: opts.maxMessagesPerSecond,
      prefix: opts.prefix ?? 'rl:msg',
      now: opts.now,
    });
  }

  /** Whether `action` counts as a message. */
  applies(action: string): boolean {
    return this.actions.has(action);
  }

  /** `key` is the user id. */
  async checkLimit(key: string, action: string): Promise<RateLimitDecision> {
    return this.applies(action) ? this.window.checkLimit(key, action) : ALLOWED;
  }
}

import { LocalBackend } from '../backends/local/local.backend';
import { defaultStreamingOptions } from '../config/streaming-defaults';
import { RateLimitAlgorithm, StreamingOptions } from '../config/streaming-options.interface';
import { AdaptiveRateLimiter } from './adaptive.rate-limiter';
import { BackendCounterStore, MemoryCounterStore } from './counter-store';
import { MESSAGE_ACTIONS, MessageRateLimiter } from './message-rate-limiter';
import { TokenBucketRateLimiter } from './rate-limiter';
import { createCounterStore, createMessageRateLimiter, createRateLimiter } from './rate-limiter.factory';
import { DistributedTokenBucketRateLimiter, SlidingWindowRateLimiter } from './sliding-window.rate-limiter';
import { StreamingBackend } from '../interfaces';
import type { RateLimitDecision } from '../interfaces';

const countAllowed = (ds: RateLimitDecision[]) => ds.filter((d) => d.allowed).length;

function options(algorithm: RateLimitAlgorithm, extra: Partial<StreamingOptions> = {}): StreamingOptions {
  const o = defaultStreamingOptions();
  return { ...o, ...extra, rateLimit: { ...o.rateLimit, algorithm, requestsPerSecond: 10, burstSize: 20 } };
}

/** The local backend's counters, presented as a backend shared between nodes (as Redis is). */
function sharedBackend(local: LocalBackend): StreamingBackend {
  return {
    kind: 'shared-local',
    distributed: true,
    incrementCounter: (k: string, by: number, ttl: number) => local.incrementCounter(k, by, ttl),
    getCounter: (k: string) => local.getCounter(k),
  } as unknown as StreamingBackend;
}

describe('createRateLimiter', () => {
  let local: LocalBackend;
  beforeEach(async () => {
    local = new LocalBackend();
    await local.connect();
  });
  afterEach(() => local.close());

  it('picks the algorithm, in process on a single-node backend', () => {
    expect(createRateLimiter(options('token_bucket'), local)).toBeInstanceOf(TokenBucketRateLimiter);
    expect(createRateLimiter(options('sliding_window'), local)).toBeInstanceOf(SlidingWindowRateLimiter);
    const adaptive = createRateLimiter(options('adaptive'), local);
    expect(adaptive).toBeInstanceOf(AdaptiveRateLimiter);
    expect((adaptive as unknown as { opts: { base: unknown } }).opts.base).toBeInstanceOf(
      TokenBucketRateLimiter,
    );
    expect(() => createRateLimiter(options('leaky' as RateLimitAlgorithm), local)).toThrow(/leaky/);
  });

  it('uses the backend counters when the backend is distributed', () => {
    const shared = sharedBackend(local);
    expect(createRateLimiter(options('token_bucket'), shared)).toBeInstanceOf(
      DistributedTokenBucketRateLimiter,
    );
    const adaptive = createRateLimiter(options('adaptive'), shared) as unknown as {
      opts: { base: unknown; store: unknown };
    };
    expect(adaptive.opts.base).toBeInstanceOf(DistributedTokenBucketRateLimiter);
    expect(adaptive.opts.store).toBeInstanceOf(BackendCounterStore);
    expect(createCounterStore(shared)).toBeInstanceOf(BackendCounterStore);
    expect(createCounterStore(local)).toBeInstanceOf(MemoryCounterStore);
  });

  it.each<RateLimitAlgorithm>(['token_bucket', 'sliding_window', 'adaptive'])(
    '%s: two nodes on one shared backend enforce one limit',
    async (algorithm) => {
      const shared = sharedBackend(local);
      const [a, b] = [
        createRateLimiter(options(algorithm), shared),
        createRateLimiter(options(algorithm), shared),
      ];
      const ds = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => (i % 2 ? a : b).checkLimit('u', 'x')),
      );
      expect(countAllowed(ds)).toBe(algorithm === 'sliding_window' ? 10 : 20);
    },
  );

  it('honours an injected clock and store', async () => {
    let t = 0;
    const rl = createRateLimiter(options('sliding_window'), local, {
      store: new MemoryCounterStore({ now: () => t }),
      now: () => t,
    });
    for (let i = 0; i < 10; i++) await rl.checkLimit('u', 'x');
    expect((await rl.checkLimit('u', 'x')).allowed).toBe(false);
    t += 2000;
    expect((await rl.checkLimit('u', 'x')).allowed).toBe(true);
  });
});

describe('MessageRateLimiter', () => {
  let t: number;
  const now = () => t;
  beforeEach(() => (t = 1_000_000));

  it('caps messages per user per second, all message actions together', async () => {
    const ml = new MessageRateLimiter({
      maxMessagesPerSecond: 3,
      store: new MemoryCounterStore({ now }),
      now,
    });
    expect(MESSAGE_ACTIONS).toEqual(['send_message', 'publish']);
    expect(ml.applies('send_message')).toBe(true);
    expect(ml.applies('join_room')).toBe(false);
    expect((await ml.checkLimit('u', 'send_message')).allowed).toBe(true);
    expect((await ml.checkLimit('u', 'send_message')).allowed).toBe(true);
    expect((await ml.checkLimit('u', 'publish')).allowed).toBe(true);
    const d = await ml.checkLimit('u', 'send_message');
    expect(d.allowed).toBe(false);
    expect(d.retryAfterMs).toBeGreaterThan(0);
    expect((await ml.checkLimit('u', 'join_room')).allowed).toBe(true);
    expect((await ml.checkLimit('v', 'send_message')).allowed).toBe(true);
    t += 2000;
    expect((await ml.checkLimit('u', 'send_message')).allowed).toBe(true);
  });

  it('takes custom actions', async () => {
    const ml = new MessageRateLimiter({
      maxMessagesPerSecond: 1,
      store: new MemoryCounterStore({ now }),
      actions: ['edit_message'],
      now,
    });
    expect((await ml.checkLimit('u', 'edit_message')).allowed).toBe(true);
    expect((await ml.checkLimit('u', 'edit_message')).allowed).toBe(false);
    expect((await ml.checkLimit('u', 'send_message')).allowed).toBe(true);
  });

  it('is built from maxMessagesPerSecond and exact under a concurrent burst on the LocalBackend', async () => {
    const local = new LocalBackend();
    await local.connect();
    const ml = createMessageRateLimiter(
      options('token_bucket', { maxMessagesPerSecond: 7 }),
      sharedBackend(local),
    );
    const ds = await Promise.all(Array.from({ length: 30 }, () => ml.checkLimit('u', 'send_message')));
    expect(countAllowed(ds)).toBe(7);
    expect(createMessageRateLimiter(options('token_bucket'), local)).toBeInstanceOf(MessageRateLimiter);
    await local.close();
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { LocalBackend } from '../backends/local/local.backend';
import { BackendCounterStore, MemoryCounterStore } from './counter-store';
import { DistributedTokenBucketRateLimiter, SlidingWindowRateLimiter } from './sliding-window.rate-limiter';
import { CounterStore } from '../interfaces';
import type { RateLimitDecision } from '../interfaces';

/** Counters whose every call takes a random 0-2 ms before and after, so racing calls interleave. */
function jittered(inner: CounterStore): CounterStore {
  const pause = () => sleep(Math.floor(Math.random() * 3));
  return {
    increment: async (k, by, ttl) => {
      await pause();
      const v = await inner.increment(k, by, ttl);
      await pause();
      return v;
    },
    get: async (k) => {
      await pause();
      return inner.get(k);
    },
  };
}

const countAllowed = (ds: RateLimitDecision[]) => ds.filter((d) => d.allowed).length;

describe('SlidingWindowRateLimiter', () => {
  let t: number;
  const now = () => t;
  let store: MemoryCounterStore;
  beforeEach(() => {
    t = 1_000_000; // a window boundary for 1 s windows
    store = new MemoryCounterStore({ now });
  });
  const limiter = (limit = 10, windowMs = 1000, extra = {}) =>
    new SlidingWindowRateLimiter({ store, limit, windowMs, now, ...extra });

  it('allows `limit` requests in a window, then refuses', async () => {
    const rl = limiter();
    for (let i = 0; i < 10; i++) expect((await rl.checkLimit('u', 'x')).allowed).toBe(true);
    const d = await rl.checkLimit('u', 'x');
    expect(d.allowed).toBe(false);
    // This window is full: the next chance is in the next one, once the weight of this one fades.
    expect(d.retryAfterMs).toBe(1100);
    expect((await rl.checkLimit('v', 'x')).allowed).toBe(true);
  });

  it('slides: the previous window counts by its remaining weight', async () => {
    const rl = limiter();
    for (let i = 0; i < 10; i++) await rl.checkLimit('u', 'x');
    t += 1000; // next window, elapsed 0: previous weighs 100 %
    const d = await rl.checkLimit('u', 'x');
    expect(d).toEqual({ allowed: false, retryAfterMs: 100 });
    t += 99;
    expect((await rl.checkLimit('u', 'x')).allowed).toBe(false);
    t += 1; // 10 × 0.9 + 1 = 10
    expect((await rl.checkLimit('u', 'x')).allowed).toBe(true);
    expect((await rl.checkLimit('u', 'x')).allowed).toBe(false);
    t += 400; // elapsed 500: 10 × 0.5 + 1 counted → 4 more
    const more = await Promise.all(Array.from({ length: 6 }, () => rl.checkLimit('u', 'x')));
    expect(countAllowed(more)).toBe(4);
  });

  it('does not hand out a fresh burst right after a boundary burst (unlike a fixed window)', async () => {
    const rl = limiter();
    t += 999;
    for (let i = 0; i < 10; i++) expect((await rl.checkLimit('u', 'x')).allowed).toBe(true);
    t += 1;
    expect((await rl.checkLimit('u', 'x')).allowed).toBe(false);
  });

  it('does not count refused requests, so hammering does not extend the block', async () => {
    const rl = limiter(2, 1000);
    await rl.checkLimit('u', 'x');
    await rl.checkLimit('u', 'x');
    for (let i = 0; i < 50; i++) await rl.checkLimit('u', 'x');
    t += 2000; // two windows later: everything faded
    expect(countAllowed(await Promise.all([1, 2, 3].map(() => rl.checkLimit('u', 'x'))))).toBe(2);
  });

  it('gives a retryAfterMs after which the request passes (randomized traffic)', async () => {
    const rl = limiter(7, 1000);
    let refusals = 0;
    for (let step = 0; step < 400; step++) {
      t += Math.floor(Math.random() * 120);
      const d = await rl.checkLimit('u', 'x');
      if (d.allowed) continue;
      refusals++;
      expect(Number.isInteger(d.retryAfterMs)).toBe(true);
      expect(d.retryAfterMs).toBeGreaterThan(0);
      expect(d.retryAfterMs).toBeLessThanOrEqual(2000);
      if (d.retryAfterMs > 1) {
        t += d.retryAfterMs - 1;
        expect((await rl.checkLimit('u', 'x')).allowed).toBe(false);
        t += 1;
      } else {
        t += d.retryAfterMs;
      }
      expect((await rl.checkLimit('u', 'x')).allowed).toBe(true);
    }
    expect(refusals).toBeGreaterThan(10);
  });

  it('supports costs, per-action budgets and scaling', async () => {
    const rl = limiter(10, 1000, { costs: { publish: 4, ping: 0 } });
    expect((await rl.checkLimit('u', 'publish')).allowed).toBe(true);
    expect((await rl.checkLimit('u', 'publish')).allowed).toBe(true);
    expect((await rl.checkLimit('u', 'publish')).allowed).toBe(false);
    expect((await rl.checkLimit('u', 'send')).allowed).toBe(true);
    expect((await rl.checkLimit('u', 'send')).allowed).toBe(true);
    expect((await rl.checkLimit('u', 'send')).allowed).toBe(false);
    expect((await rl.checkLimit('u', 'ping')).allowed).toBe(true);

    const split = limiter(1, 1000, { keyByAction: true, prefix: 'split' });
    expect((await split.checkLimit('u', 'a')).allowed).toBe(true);
    expect((await split.checkLimit('u', 'b')).allowed).toBe(true);
    expect((await split.checkLimit('u', 'a')).allowed).toBe(false);

    const scaled = limiter(10, 1000, { prefix: 'scaled' });
    const ds = await Promise.all(Array.from({ length: 10 }, () => scaled.checkLimit('u', 'x', 0.25)));
    expect(countAllowed(ds)).toBe(2);
    const floor = await Promise.all(Array.from({ length: 3 }, () => scaled.checkLimit('w', 'x', 0.001)));
    expect(countAllowed(floor)).toBe(1);
  });

  it('perSecond maps a rate to a limit and a window', async () => {
    const sw = (rps: number) =>
      SlidingWindowRateLimiter.perSecond({ store, requestsPerSecond: rps, now }) as unknown as {
        limit: number;
        windowMs: number;
      };
    expect(sw(10)).toMatchObject({ limit: 10, windowMs: 1000 });
    expect(sw(2.5)).toMatchObject({ limit: 2, windowMs: 800 });
    expect(sw(0.5)).toMatchObject({ limit: 1, windowMs: 2000 });
    expect(() => sw(0)).toThrow(RangeError);
    expect(() => new SlidingWindowRateLimiter({ store, limit: 0, windowMs: 1 })).toThrow(RangeError);
  });

  describe('against the real LocalBackend', () => {
    let backend: LocalBackend;
    beforeEach(async () => {
      backend = new LocalBackend();
      await backend.connect();
    });
    afterEach(() => backend.close());

    it('lets exactly `limit` through a concurrent burst', async () => {
      const rl = new SlidingWindowRateLimiter({
        store: new BackendCounterStore(backend),
        limit: 10,
        windowMs: 60_000,
      });
      const ds = await Promise.all(Array.from({ length: 50 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(ds)).toBe(10);
      expect(ds.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0)).toBe(true);
    });

    it('stays exact when calls interleave arbitrarily and two nodes share the counters', async () => {
      const shared = new BackendCounterStore(backend);
      const nodeA = new SlidingWindowRateLimiter({ store: jittered(shared), limit: 15, windowMs: 60_000 });
      const nodeB = new SlidingWindowRateLimiter({ store: jittered(shared), limit: 15, windowMs: 60_000 });
      for (let round = 0; round < 5; round++) {
        const key = `u${round}`;
        const ds = await Promise.all(
          Array.from({ length: 60 }, (_, i) => (i % 2 ? nodeA : nodeB).checkLimit(key, 'x')),
        );
        expect(countAllowed(ds)).toBe(15);
      }
    });

    it('counts the previous window exactly under concurrency', async () => {
      let clock = 3_000_000;
      const rl = new SlidingWindowRateLimiter({
        store: new BackendCounterStore(backend),
        limit: 10,
        windowMs: 1000,
        now: () => clock,
      });
      await Promise.all(Array.from({ length: 4 }, () => rl.checkLimit('u', 'x')));
      clock += 1500; // elapsed 500 in the next window: 4 × 0.5 = 2 used
      const ds = await Promise.all(Array.from({ length: 30 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(ds)).toBe(8);
    });

    it('limits and recovers in real time', async () => {
      const rl = new SlidingWindowRateLimiter({
        store: new BackendCounterStore(backend),
        limit: 3,
        windowMs: 100,
      });
      const first = await Promise.all([1, 2, 3, 4, 5].map(() => rl.checkLimit('u', 'x')));
      expect(countAllowed(first)).toBe(3);
      const d = first.find((x) => !x.allowed)!;
      expect(d.retryAfterMs).toBeGreaterThan(0);
      expect(d.retryAfterMs).toBeLessThanOrEqual(200);
      await sleep(250); // two windows: fully recovered
      const again = await Promise.all([1, 2, 3, 4].map(() => rl.checkLimit('u', 'x')));
      expect(countAllowed(again)).toBe(3);
    });
  });
});

describe('DistributedTokenBucketRateLimiter', () => {
  let t: number;
  const now = () => t;
  beforeEach(() => (t = 2_000_000)); // a window boundary for 2 s windows

  it('allows burstSize at once, then requestsPerSecond', async () => {
    const store = new MemoryCounterStore({ now });
    const rl = new DistributedTokenBucketRateLimiter({ store, requestsPerSecond: 10, burstSize: 20, now });
    const burst = await Promise.all(Array.from({ length: 25 }, () => rl.checkLimit('u', 'x')));
    expect(countAllowed(burst)).toBe(20);
    t += 2000; // next window: the burst still weighs fully
    expect(await rl.checkLimit('u', 'x')).toEqual({ allowed: false, retryAfterMs: 100 });
    t += 1000; // half the window: 10 tokens back
    const later = await Promise.all(Array.from({ length: 15 }, () => rl.checkLimit('u', 'x')));
    expect(countAllowed(later)).toBe(10);
    // Sustained: about requestsPerSecond over a long run.
    let allowed = 0;
    for (let ms = 0; ms < 20_000; ms += 20) {
      t += 20;
      if ((await rl.checkLimit('steady', 'x')).allowed) allowed++;
    }
    expect(allowed).toBeGreaterThanOrEqual(200);
    expect(allowed).toBeLessThanOrEqual(220);
  });

  it('uses its own key prefix and validates its settings', async () => {
    const store = new MemoryCounterStore({ now });
    const spy = jest.spyOn(store, 'increment');
    const rl = new DistributedTokenBucketRateLimiter({ store, requestsPerSecond: 1, burstSize: 1, now });
    await rl.checkLimit('u', 'x');
    expect(spy.mock.calls[0][0]).toMatch(/^rl:tb:\d+:u$/);
    expect(
      () => new DistributedTokenBucketRateLimiter({ store, requestsPerSecond: 0, burstSize: 1 }),
    ).toThrow();
    expect(
      () => new DistributedTokenBucketRateLimiter({ store, requestsPerSecond: 1, burstSize: 0 }),
    ).toThrow();
  });

  it('lets exactly burstSize through a concurrent burst on the LocalBackend, across two nodes', async () => {
    const backend = new LocalBackend();
    await backend.connect();
    const shared = new BackendCounterStore(backend);
    const mk = () =>
      new DistributedTokenBucketRateLimiter({ store: jittered(shared), requestsPerSecond: 5, burstSize: 12 });
    const [a, b] = [mk(), mk()];
    const ds = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 3 ? a : b).checkLimit('u', 'x')));
    expect(countAllowed(ds)).toBe(12);
    await backend.close();
  });

  it('limits and recovers in real time', async () => {
    const backend = new LocalBackend();
    await backend.connect();
    const rl = new DistributedTokenBucketRateLimiter({
      store: new BackendCounterStore(backend),
      requestsPerSecond: 30,
      burstSize: 3, // 100 ms windows
    });
    const first = await Promise.all([1, 2, 3, 4].map(() => rl.checkLimit('u', 'x')));
    expect(countAllowed(first)).toBe(3);
    await sleep(250);
    expect(countAllowed(await Promise.all([1, 2, 3, 4].map(() => rl.checkLimit('u', 'x'))))).toBe(3);
    await backend.close();
  });
});

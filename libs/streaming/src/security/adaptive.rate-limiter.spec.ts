import { setTimeout as sleep } from 'node:timers/promises';
import { LocalBackend } from '../backends/local/local.backend';
import { AdaptiveRateLimiter, AdaptiveRateLimiterOptions } from './adaptive.rate-limiter';
import { BackendCounterStore, MemoryCounterStore } from './counter-store';
import { TokenBucketRateLimiter } from './rate-limiter';
import { SlidingWindowRateLimiter } from './sliding-window.rate-limiter';
import { CounterStore } from '../interfaces';
import type { RateLimitDecision } from '../interfaces';

const countAllowed = (ds: RateLimitDecision[]) => ds.filter((d) => d.allowed).length;

describe('AdaptiveRateLimiter', () => {
  let t: number;
  const now = () => t;
  let store: MemoryCounterStore;
  beforeEach(() => {
    t = 1_000_000; // aligned with 1 s windows and 5 s relax periods
    store = new MemoryCounterStore({ now });
  });

  /** 8 per second (sliding), 3 refusals in a second raise the penalty, 5 s quiet periods relax it. */
  const adaptive = (s: CounterStore = store, extra: Partial<AdaptiveRateLimiterOptions> = {}) =>
    new AdaptiveRateLimiter({
      base: new SlidingWindowRateLimiter({ store: s, limit: 8, windowMs: 1000, now }),
      store: s,
      requestsPerSecond: 8,
      violationThreshold: 3,
      violationWindowMs: 1000,
      relaxAfterMs: 5000,
      now,
      ...extra,
    });

  /** Send `n` requests one after the other; how many passed. */
  const send = async (rl: AdaptiveRateLimiter, n: number, key = 'u') => {
    let ok = 0;
    for (let i = 0; i < n; i++) if ((await rl.checkLimit(key, 'x')).allowed) ok++;
    return ok;
  };

  it('behaves like its base for a well-behaved key', async () => {
    const rl = adaptive();
    expect(await send(rl, 8)).toBe(8);
    expect(await rl.level('u')).toBe(0);
    t += 2000;
    expect(await send(rl, 8)).toBe(8);
  });

  it('tightens a key that keeps hitting the limit: 8 → 4 → 2 → 1 per second, never below 1', async () => {
    const rl = adaptive();
    expect(await send(rl, 11)).toBe(8); // 3 refusals: level 1
    expect(await rl.level('u')).toBe(1);
    t += 2000; // fresh windows
    expect(await send(rl, 7)).toBe(4); // level 2
    expect(await rl.level('u')).toBe(2);
    t += 2000;
    expect(await send(rl, 5)).toBe(2); // level 3 (the floor: 1 rps)
    expect(await rl.level('u')).toBe(3);
    t += 2000;
    expect(await send(rl, 10)).toBe(1);
    expect(await rl.level('u')).toBe(3); // capped at maxLevel
    // Other keys are unaffected.
    expect(await send(rl, 8, 'other')).toBe(8);
  });

  it('raises the level at most once per violation window', async () => {
    const rl = adaptive();
    expect(await send(rl, 40)).toBe(8); // 32 refusals in one window
    expect(await rl.level('u')).toBe(1);
  });

  it('relaxes one level per quiet period, back to the full limit', async () => {
    const rl = adaptive();
    await send(rl, 11);
    t += 2000;
    await send(rl, 7); // level 2, last refusal in period [1 000 000, 1 005 000)
    expect(await rl.level('u')).toBe(2);
    t = 1_005_000; // the period of the last refusal is over, but is not a full quiet one yet
    expect(await send(rl, 2)).toBe(2);
    expect(await rl.level('u')).toBe(2);
    t = 1_010_000; // one full quiet period: level 1
    expect(await rl.level('u')).toBe(1);
    expect(await send(rl, 5)).toBe(4);
    t = 1_020_000; // a refusal happened at 1 010 000: that period does not count, the next one does
    expect(await rl.level('u')).toBe(0);
    expect(await send(rl, 9)).toBe(8);
  });

  it('credits idle periods to a key that comes back', async () => {
    const rl = adaptive();
    for (let i = 0; i < 3; i++) {
      await send(rl, 12);
      t += 2000;
    }
    expect(await rl.level('u')).toBe(3);
    t = 1_015_000; // periods [1 005 000, 1 010 000) and [1 010 000, 1 015 000) were idle
    expect(await rl.level('u')).toBe(1);
    t = 1_060_000;
    expect(await rl.level('u')).toBe(0);
  });

  it('a refusal restarts the quiet clock', async () => {
    const rl = adaptive();
    await send(rl, 11); // level 1
    t = 1_009_000;
    expect(await send(rl, 6)).toBe(4); // limit 4 at level 1: 2 refusals (below the threshold) in period 1
    expect(await rl.level('u')).toBe(1);
    t = 1_010_000;
    expect(await rl.level('u')).toBe(1);
    t = 1_015_000;
    expect(await rl.level('u')).toBe(0);
  });

  it('keeps a penalty earned right after quiet periods', async () => {
    const rl = adaptive();
    t = 1_012_000; // periods 0 and 1 were quiet, then the key misbehaves in period 2
    await send(rl, 11);
    expect(await rl.level('u')).toBe(1);
    expect(await send(rl, 1)).toBe(0);
    expect(await rl.level('u')).toBe(1);
  });

  it('tightens an in-process token bucket too (rate and burst scale)', async () => {
    const rl = new AdaptiveRateLimiter({
      base: new TokenBucketRateLimiter({ requestsPerSecond: 8, burstSize: 8, now }),
      store,
      requestsPerSecond: 8,
      violationThreshold: 2,
      now,
    });
    expect(await send(rl, 10)).toBe(8);
    t += 5000;
    expect(await send(rl, 5)).toBe(4);
    const d = await rl.checkLimit('u', 'x');
    expect(d.allowed).toBe(false);
    // This second strike in the window raises the level to 2 (2 per second): the retry says so.
    expect(d.retryAfterMs).toBe(500);
  });

  it('does nothing when the base rate is already at the floor', async () => {
    const rl = new AdaptiveRateLimiter({
      base: new SlidingWindowRateLimiter({ store, limit: 1, windowMs: 1000, now }),
      store,
      requestsPerSecond: 1,
      violationThreshold: 1,
      now,
    });
    expect(await send(rl, 5)).toBe(1);
    expect(await rl.level('u')).toBe(0);
    expect(rl.scaleFor(5)).toBe(1);
  });

  it('validates its settings', () => {
    const base = new SlidingWindowRateLimiter({ store, limit: 1, windowMs: 1000 });
    expect(() => new AdaptiveRateLimiter({ base, store, requestsPerSecond: 0 })).toThrow(RangeError);
    expect(
      () => new AdaptiveRateLimiter({ base, store, requestsPerSecond: 1, minRequestsPerSecond: 0 }),
    ).toThrow(RangeError);
  });

  describe('against the real LocalBackend', () => {
    let backend: LocalBackend;
    beforeEach(async () => {
      backend = new LocalBackend();
      await backend.connect();
    });
    afterEach(() => backend.close());

    it('a concurrent burst gets exactly the limit and raises the level exactly once', async () => {
      const rl = adaptive(new BackendCounterStore(backend));
      const ds = await Promise.all(Array.from({ length: 40 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(ds)).toBe(8);
      expect(ds.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0)).toBe(true);
      expect(await rl.level('u')).toBe(1);
      t += 2000;
      const next = await Promise.all(Array.from({ length: 40 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(next)).toBe(4);
      expect(await rl.level('u')).toBe(2);
    });

    it('shares the penalty across nodes and relaxes it once per period, not once per node', async () => {
      const shared = new BackendCounterStore(backend);
      const [a, b] = [adaptive(shared), adaptive(shared)];
      await Promise.all(Array.from({ length: 12 }, () => a.checkLimit('u', 'x')));
      t += 2000;
      await Promise.all(Array.from({ length: 12 }, () => b.checkLimit('u', 'x')));
      expect(await a.level('u')).toBe(2);
      expect(await b.level('u')).toBe(2);
      t = 1_010_000;
      await Promise.all([a.checkLimit('u', 'x'), b.checkLimit('u', 'x'), a.level('u'), b.level('u')]);
      expect(await a.level('u')).toBe(1);
      expect(await b.level('u')).toBe(1);
    });

    it('tightens and relaxes in real time', async () => {
      const s = new BackendCounterStore(backend);
      const rl = new AdaptiveRateLimiter({
        base: new SlidingWindowRateLimiter({ store: s, limit: 4, windowMs: 100 }),
        store: s,
        requestsPerSecond: 40,
        violationThreshold: 2,
        violationWindowMs: 100,
        relaxAfterMs: 500,
        maxLevel: 1,
      });
      const burst = await Promise.all(Array.from({ length: 10 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(burst)).toBe(4);
      expect(await rl.level('u')).toBe(1);
      // Windows have faded, but no full quiet period has passed: half the limit.
      await sleep(210);
      const tight = await Promise.all(Array.from({ length: 3 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(tight)).toBe(2);
      expect(await rl.level('u')).toBe(1);
      // A full quiet period after the last refusal's period: back to the full limit.
      await sleep(1100);
      expect(await rl.level('u')).toBe(0);
      const relaxed = await Promise.all(Array.from({ length: 5 }, () => rl.checkLimit('u', 'x')));
      expect(countAllowed(relaxed)).toBe(4);
    });
  });
});

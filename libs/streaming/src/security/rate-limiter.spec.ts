import { setTimeout as sleep } from 'node:timers/promises';
import { actionCost, budgetKey, clampScale, refused, TokenBucketRateLimiter } from './rate-limiter';

describe('TokenBucketRateLimiter (in process)', () => {
  let t: number;
  const now = () => t;
  beforeEach(() => (t = 1_000_000));

  it('allows a burst of burstSize, then refuses with the time to the next token', () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 10, burstSize: 5, now });
    for (let i = 0; i < 5; i++)
      expect(rl.checkLimit('u', 'send_message')).toEqual({ allowed: true, retryAfterMs: 0 });
    expect(rl.checkLimit('u', 'send_message')).toEqual({ allowed: false, retryAfterMs: 100 });
    // Another key has its own bucket.
    expect(rl.checkLimit('v', 'send_message').allowed).toBe(true);
  });

  it('refills at requestsPerSecond and recovers at exactly retryAfterMs', () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 4, burstSize: 2, now });
    rl.checkLimit('u', 'x');
    rl.checkLimit('u', 'x');
    const d = rl.checkLimit('u', 'x');
    expect(d).toEqual({ allowed: false, retryAfterMs: 250 });
    t += 249;
    const early = rl.checkLimit('u', 'x');
    expect(early.allowed).toBe(false);
    expect(early.retryAfterMs).toBe(1);
    t += 1;
    expect(rl.checkLimit('u', 'x').allowed).toBe(true);
    expect(rl.checkLimit('u', 'x').allowed).toBe(false);
  });

  it('never holds more than burstSize tokens after a long idle', () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 100, burstSize: 3, now });
    rl.checkLimit('u', 'x');
    t += 3_600_000;
    const verdicts = Array.from({ length: 5 }, () => rl.checkLimit('u', 'x').allowed);
    expect(verdicts).toEqual([true, true, true, false, false]);
  });

  it('supports per-action costs (0 exempts) and per-action budgets', () => {
    const rl = new TokenBucketRateLimiter({
      requestsPerSecond: 1,
      burstSize: 4,
      costs: { publish: 3, get_history: 0 },
      now,
    });
    expect(rl.checkLimit('u', 'publish').allowed).toBe(true);
    expect(rl.checkLimit('u', 'publish')).toEqual({ allowed: false, retryAfterMs: 2000 });
    expect(rl.checkLimit('u', 'send_message').allowed).toBe(true);
    for (let i = 0; i < 10; i++) expect(rl.checkLimit('u', 'get_history').allowed).toBe(true);

    const split = new TokenBucketRateLimiter({ requestsPerSecond: 1, burstSize: 1, keyByAction: true, now });
    expect(split.checkLimit('u', 'a').allowed).toBe(true);
    expect(split.checkLimit('u', 'b').allowed).toBe(true);
    expect(split.checkLimit('u', 'a').allowed).toBe(false);
  });

  it('clamps a cost above the burst so the action stays possible from a full bucket', () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 1, burstSize: 2, costs: { big: 10 }, now });
    expect(rl.checkLimit('u', 'big').allowed).toBe(true);
    expect(rl.checkLimit('u', 'big')).toEqual({ allowed: false, retryAfterMs: 2000 });
  });

  it('scales rate and burst down when asked (adaptive penalty)', () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 8, burstSize: 8, now });
    const allowed = Array.from({ length: 6 }, () => rl.checkLimit('u', 'x', 0.5).allowed);
    expect(allowed).toEqual([true, true, true, true, false, false]);
    expect(rl.checkLimit('u', 'x', 0.5).retryAfterMs).toBe(250);
  });

  it('rejects nonsensical settings', () => {
    expect(() => new TokenBucketRateLimiter({ requestsPerSecond: 0, burstSize: 1 })).toThrow(RangeError);
    expect(() => new TokenBucketRateLimiter({ requestsPerSecond: 1, burstSize: 0 })).toThrow(RangeError);
  });

  it('forgets full buckets on its periodic sweep', () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 10, burstSize: 2, now });
    for (let i = 0; i < 100; i++) rl.checkLimit(`k${i}`, 'x');
    t += 61_000;
    rl.checkLimit('fresh', 'x');
    expect((rl as unknown as { buckets: Map<string, unknown> }).buckets.size).toBe(1);
  });

  it('limits and recovers in real time', async () => {
    const rl = new TokenBucketRateLimiter({ requestsPerSecond: 20, burstSize: 2 });
    expect(rl.checkLimit('u', 'x').allowed).toBe(true);
    expect(rl.checkLimit('u', 'x').allowed).toBe(true);
    const d = rl.checkLimit('u', 'x');
    expect(d.allowed).toBe(false);
    expect(d.retryAfterMs).toBeGreaterThan(0);
    expect(d.retryAfterMs).toBeLessThanOrEqual(50);
    await sleep(d.retryAfterMs + 5);
    expect(rl.checkLimit('u', 'x').allowed).toBe(true);
  });
});

describe('rate limiter helpers', () => {
  it('refused() always yields a positive whole number of ms', () => {
    expect(refused(0.2)).toEqual({ allowed: false, retryAfterMs: 1 });
    expect(refused(-5).retryAfterMs).toBe(1);
    expect(refused(12.1).retryAfterMs).toBe(13);
    expect(refused(Number.NaN).retryAfterMs).toBe(1000);
  });

  it('actionCost, budgetKey and clampScale', () => {
    expect(actionCost(undefined, 'x')).toBe(1);
    expect(actionCost({ x: 0, y: -1, z: 2.5 }, 'x')).toBe(0);
    expect(actionCost({ y: -1 }, 'y')).toBe(1);
    expect(actionCost({ z: 2.5 }, 'z')).toBe(2.5);
    expect(actionCost({}, 'toString')).toBe(1);
    expect(budgetKey('u', 'a', false)).toBe('u');
    expect(budgetKey('u', 'a', true)).toBe('a|u');
    expect(clampScale(undefined)).toBe(1);
    expect(clampScale(2)).toBe(1);
    expect(clampScale(0.25)).toBe(0.25);
    expect(clampScale(0)).toBeGreaterThan(0);
  });
});

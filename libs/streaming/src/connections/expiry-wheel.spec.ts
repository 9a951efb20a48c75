import { ExpiryWheel } from './expiry-wheel';

describe('ExpiryWheel', () => {
  const T0 = 1_700_000_000_000;

  it('returns the items whose time came, and only them, each once', () => {
    const w = new ExpiryWheel<string>(1000, T0);
    w.set('a', T0 + 1500);
    w.set('b', T0 + 2500);
    w.set('c', T0 + 2600);
    expect(w.expire(T0 + 1000)).toEqual([]);
    expect(w.expire(T0 + 1499)).toEqual([]);
    expect(w.expire(T0 + 1500)).toEqual(['a']);
    expect(w.expire(T0 + 2550)).toEqual(['b']);
    expect(w.size).toBe(1);
    expect(w.expire(T0 + 9000)).toEqual(['c']);
    expect(w.expire(T0 + 9000)).toEqual([]);
    expect(w.size).toBe(0);
    expect(w.bucketCount).toBe(0);
  });

  it('moves an item to its new time and forgets deleted ones', () => {
    const w = new ExpiryWheel<string>(1000, T0);
    w.set('a', T0 + 1000);
    w.set('b', T0 + 1000);
    w.set('a', T0 + 5000); // a refreshed token
    expect(w.expiresAt('a')).toBe(T0 + 5000);
    expect(w.delete('b')).toBe(true);
    expect(w.delete('b')).toBe(false);
    expect(w.expire(T0 + 4999)).toEqual([]);
    expect(w.expire(T0 + 5000)).toEqual(['a']);
    expect(w.bucketCount).toBe(0);
  });

  it('an item added already due goes out at the next tick', () => {
    const w = new ExpiryWheel<string>(1000, T0);
    w.expire(T0 + 10_000);
    w.set('late', T0 + 1);
    expect(w.has('late')).toBe(true);
    expect(w.expire(T0 + 10_001)).toEqual(['late']);
    // Deleting one that sits in the cursor's bucket works too.
    w.set('late2', T0 + 2);
    expect(w.delete('late2')).toBe(true);
    expect(w.bucketCount).toBe(0);
  });

  it('a tick touches only the due buckets, not every item', () => {
    const w = new ExpiryWheel<number>(1000, T0);
    for (let i = 0; i < 100_000; i++) w.set(i, T0 + 3_600_000 + i); // an hour away
    w.set(-1, T0 + 1000);
    const spy = jest.spyOn(Map.prototype, 'get');
    try {
      expect(w.expire(T0 + 1000)).toEqual([-1]);
      // Two buckets looked up (the cursor's and the next one), one item read: not 100,000.
      expect(spy.mock.calls.length).toBeLessThan(10);
    } finally {
      spy.mockRestore();
    }
  });

  it('a clock far ahead walks the buckets, not the seconds; a clock going back expires nothing', () => {
    const w = new ExpiryWheel<string>(1000, T0);
    w.set('a', T0 + 2000);
    w.set('b', T0 + 10 * 365 * 86_400_000);
    expect(w.expire(T0 - 5000)).toEqual([]);
    expect(w.expire(T0 + 5 * 365 * 86_400_000)).toEqual(['a']);
    expect(w.size).toBe(1);
    expect(w.expire(T0 + 20 * 365 * 86_400_000)).toEqual(['b']);
  });

  it('stays bounded by the items it holds', () => {
    const w = new ExpiryWheel<number>(1000, T0);
    for (let i = 0; i < 1000; i++) w.set(i, T0 + i * 1000);
    for (let i = 0; i < 1000; i++) w.delete(i);
    expect(w.size).toBe(0);
    expect(w.bucketCount).toBe(0);
  });
});

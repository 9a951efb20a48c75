/**
 * The {@link CounterStore} contract: atomic counters whose time to live runs
 * from their creation. A whole backend is tested through
 * `new BackendCounterStore(backend)` (its `incrementCounter` / `getCounter`).
 */
import type { CounterStore } from '../interfaces';
import { eventually, uid, useSubject, type ContractSubjectFactory } from './contract-helpers';

/**
 * Declares the behaviour every {@link CounterStore} must show, against a fresh
 * subject per test (`connect()`ed before and `close()`d after it, when it has them).
 */
export function describeCounterStoreContract(
  name: string,
  factory: ContractSubjectFactory<CounterStore>,
): void {
  describe(`CounterStore contract: ${name}`, () => {
    declareCounterStoreTests(useSubject(factory));
  });
}

/** The counter store's tests, in the current `describe`, against `subject()`. */
export function declareCounterStoreTests(subject: () => CounterStore): void {
  describe('counters', () => {
    it('increment returns running totals and get reads them', async () => {
      const counters = subject();
      const key = uid('counter');
      expect(await counters.get(key)).toBe(0);
      expect(await counters.increment(key, 1, 60_000)).toBe(1);
      expect(await counters.increment(key, 2, 60_000)).toBe(3);
      expect(await counters.increment(key, 3, 60_000)).toBe(6);
      expect(await counters.get(key)).toBe(6);
      expect(await counters.get(uid('other'))).toBe(0);
    });

    it('increment is atomic under concurrency', async () => {
      const counters = subject();
      const key = uid('counter');
      const results = await Promise.all(Array.from({ length: 30 }, () => counters.increment(key, 1, 60_000)));
      expect([...results].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(await counters.get(key)).toBe(30);
    });

    it('a counter resets after its ttlMs', async () => {
      const counters = subject();
      const key = uid('counter');
      expect(await counters.increment(key, 5, 150)).toBe(5);
      expect(await counters.get(key)).toBe(5);
      await eventually(async () => expect(await counters.get(key)).toBe(0));
      expect(await counters.increment(key, 2, 150)).toBe(2);
    });

    it('the counter ttl runs from its creation, not from the last increment', async () => {
      const counters = subject();
      const key = uid('counter');
      await counters.increment(key, 1, 200);
      // Incrementing every 20 ms: a sliding ttl would never let the counter reset.
      await eventually(async () => expect(await counters.increment(key, 1, 200)).toBe(1), 2000, 20);
    });
  });
}

/**
 * The counter port the rate limiters use: atomic counters with a time to
 * live. A counter is created at 0 by the first increment, expires `ttlMs`
 * after its creation (later increments do not extend it), and each increment
 * returns the new value atomically, so concurrent callers (on any node sharing
 * the store) see distinct running totals.
 */
export interface CounterStore {
  increment(key: string, by: number, ttlMs: number): Promise<number>;
  /** Current value; 0 when absent or expired. */
  get(key: string): Promise<number>;
}

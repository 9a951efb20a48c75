import type { CounterStore } from '../interfaces';
import { type StreamingBackend } from '../interfaces';

/**
 * Counters kept by the streaming backend (Redis: one Lua script per increment), so
 * limits hold across every node sharing it.
 */
export class BackendCounterStore implements CounterStore {
  constructor(private readonly backend: Pick<StreamingBackend, 'incrementCounter' | 'getCounter'>) {}

  increment(key: string, by: number, ttlMs: number): Promise<number> {
    return this.backend.incrementCounter(key, by, ttlMs);
  }

  get(key: string): Promise<number> {
    return this.backend.getCounter(key);
  }
}

/** Options of {@link MemoryCounterStore}. */
export interface MemoryCounterStoreOptions {
  /** Clock (epoch ms) for expiry; tests inject a fake one. Default `Date.now`. */
  now?: () => number;
  /** How often expired counters are dropped, ms of the store's clock. Default 10 000. */
  sweepIntervalMs?: number;
}

/**
 * In-process counters with the {@link CounterStore} contract. Expired counters are
 * swept regularly, so a limiter keying counters by time window stays bounded by
 * the keys active in the last few windows. Used when the backend is not shared
 * between nodes (there is nothing to agree with) and by tests with a fake clock.
 */
export class MemoryCounterStore implements CounterStore {
  private readonly counters = new Map<string, { value: number; expires: number }>();
  private readonly now: () => number;
  private readonly sweepIntervalMs: number;
  private lastSweep: number;

  constructor(opts: MemoryCounterStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? 10_000;
    this.lastSweep = this.now();
  }

  /** Live counters (expired ones not yet swept included). */
  get size(): number {
    return this.counters.size;
  }

  async increment(key: string, by: number, ttlMs: number): Promise<number> {
    const now = this.now();
    this.sweep(now);
    let c = this.counters.get(key);
    if (!c || c.expires <= now) this.counters.set(key, (c = { value: 0, expires: now + Math.max(0, ttlMs) }));
    c.value += by;
    return c.value;
  }

  async get(key: string): Promise<number> {
    const c = this.counters.get(key);
    return !c || c.expires <= this.now() ? 0 : c.value;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.sweepIntervalMs) return;
    this.lastSweep = now;
    for (const [k, c] of this.counters) if (c.expires <= now) this.counters.delete(k);
  }
}

import { LocalBackend } from '../backends/local/local.backend';
import { BackendCounterStore, MemoryCounterStore } from './counter-store';

describe('MemoryCounterStore', () => {
  let t: number;
  const now = () => t;
  beforeEach(() => (t = 5_000));

  it('adds atomically and expires ttl after creation (not after the last increment)', async () => {
    const s = new MemoryCounterStore({ now });
    expect(await s.increment('k', 1, 100)).toBe(1);
    t += 60;
    expect(await s.increment('k', 2, 100)).toBe(3);
    expect(await s.get('k')).toBe(3);
    t += 40;
    expect(await s.get('k')).toBe(0);
    expect(await s.increment('k', 1, 100)).toBe(1);
    expect(await s.get('missing')).toBe(0);
  });

  it('returns distinct running totals under concurrency', async () => {
    const s = new MemoryCounterStore({ now });
    const values = await Promise.all(Array.from({ length: 50 }, () => s.increment('k', 1, 1000)));
    expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('sweeps expired counters so time-keyed counters stay bounded', async () => {
    const s = new MemoryCounterStore({ now, sweepIntervalMs: 1000 });
    for (let i = 0; i < 100; i++) await s.increment(`w:${i}`, 1, 500);
    expect(s.size).toBe(100);
    t += 1000;
    await s.increment('live', 1, 500);
    expect(s.size).toBe(1);
  });
});

describe('BackendCounterStore', () => {
  it('delegates to the backend counters', async () => {
    const backend = new LocalBackend();
    await backend.connect();
    const s = new BackendCounterStore(backend);
    expect(await s.increment('k', 2, 10_000)).toBe(2);
    expect(await backend.getCounter('k')).toBe(2);
    expect(await s.get('k')).toBe(2);
    await backend.close();
  });
});

import { SpreadSweep, SWEEP_SLICE_MS } from './spread-sweep';

function source(n: number): Map<number, number> & { all(): IterableIterator<number> } {
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) m.set(i, i);
  return Object.assign(m, { all: () => m.values() });
}

describe('SpreadSweep', () => {
  it('visits every item once per period, in even slices', () => {
    const items = source(1000);
    const slices: number[][] = [];
    const s = new SpreadSweep(items, 30_000, (batch) => slices.push(batch));
    expect(s.slices).toBe(30);
    for (let i = 0; i < 30; i++) s.tick();
    expect(slices).toHaveLength(30);
    expect(Math.max(...slices.map((b) => b.length))).toBeLessThanOrEqual(34);
    expect(slices.flat().sort((a, b) => a - b)).toEqual([...items.keys()]);
    // The next round starts over.
    s.tick();
    expect(slices[30][0]).toBe(0);
  });

  it('skips items removed before their turn and visits items added during the round', () => {
    const items = source(100);
    const seen: number[] = [];
    const s = new SpreadSweep(items, 10_000, (batch) => seen.push(...batch));
    s.tick(); // 0..9
    items.delete(50);
    items.set(1000, 1000);
    for (let i = 1; i < 10; i++) s.tick();
    expect(seen).toHaveLength(100);
    expect(seen).not.toContain(50);
    expect(seen).toContain(1000);
  });

  it('a short period is one slice: everything at every tick', () => {
    const items = source(10);
    const batches: number[][] = [];
    const s = new SpreadSweep(items, SWEEP_SLICE_MS, (batch) => batches.push(batch));
    expect(s.slices).toBe(1);
    s.tick();
    s.tick();
    expect(batches).toEqual([[...items.keys()], [...items.keys()]]);
  });

  it('an empty source visits nothing', () => {
    const visit = jest.fn();
    const s = new SpreadSweep(source(0), 5000, visit);
    for (let i = 0; i < 12; i++) s.tick();
    expect(visit).not.toHaveBeenCalled();
  });

  it('runs on its timer and stops', () => {
    jest.useFakeTimers();
    try {
      const items = source(20);
      const seen: number[] = [];
      const s = new SpreadSweep(items, 4000, (batch) => seen.push(...batch));
      s.start();
      jest.advanceTimersByTime(1000);
      expect(seen).toEqual([0, 1, 2, 3, 4]);
      jest.advanceTimersByTime(3000);
      expect(seen).toHaveLength(20);
      s.stop();
      jest.advanceTimersByTime(10_000);
      expect(seen).toHaveLength(20);
    } finally {
      jest.useRealTimers();
    }
  });
});

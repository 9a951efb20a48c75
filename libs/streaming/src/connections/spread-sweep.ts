/** What a {@link SpreadSweep} walks: a live collection (a `Map`'s values iterate live). */
export interface SweepSource<T> {
  readonly size: number;
  all(): IterableIterator<T>;
}

/** Longest pause between two slices of a sweep. */
export const SWEEP_SLICE_MS = 1000;

/**
 * Visits every item of a live collection once per period, in slices spread
 * over the period (one slice per `SWEEP_SLICE_MS` at most) instead of all
 * at once: the periodic work per item (a keep-alive ping) costs the same,
 * but the event loop is held for 1/slices of it at a time, not for the
 * whole node at once.
 *
 * The round walks one live iterator of the source: items removed before
 * their turn are skipped, items added during the round are visited in its
 * last slice at the latest. A period of `SWEEP_SLICE_MS` or less is one
 * slice, exactly the plain `setInterval` over everything.
 */
export class SpreadSweep<T> {
  /** Slices per period. */
  readonly slices: number;
  private timer: NodeJS.Timeout | null = null;
  private iterator: Iterator<T> | null = null;
  /** Slice of the current round that runs next. */
  private slice = 0;
  private roundSize = 0;
  private visited = 0;

  constructor(
    private readonly source: SweepSource<T>,
    readonly periodMs: number,
    /** Called with the items of each slice (never empty). */
    private readonly visit: (items: T[]) => void,
  ) {
    this.slices = Math.max(1, Math.min(600, Math.round(periodMs / SWEEP_SLICE_MS)));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.periodMs / this.slices);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.iterator = null;
    this.slice = 0;
  }

  /** Run the next slice now (the timer calls this). */
  tick(): void {
    if (this.slice === 0 || !this.iterator) {
      this.iterator = this.source.all();
      this.roundSize = this.source.size;
      this.visited = 0;
      this.slice = 0;
    }
    this.slice++;
    const last = this.slice >= this.slices;
    // The share of the round's size due by the end of this slice; the last slice takes what is left.
    const target = last ? Infinity : Math.ceil((this.roundSize * this.slice) / this.slices);
    const items: T[] = [];
    while (this.visited < target) {
      const next = this.iterator.next();
      if (next.done) break;
      items.push(next.value);
      this.visited++;
    }
    if (last) {
      this.slice = 0;
      this.iterator = null;
    }
    if (items.length > 0) this.visit(items);
  }
}

import { Connection, FlushScheduler } from './connection';

/**
 * Batches outbound frames: every connection with queued frames is flushed once
 * per event-loop turn, so a socket gets one write per tick however many
 * broadcasts reached it. Congested sockets are retried on a shared timer.
 */
export class TickFlushScheduler implements FlushScheduler {
  private dirty = new Set<Connection>();
  private after: Array<() => void> = [];
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    /** Bytes a socket may have buffered before we stop writing to it. */
    private readonly maxBuffered: number,
    private readonly retryMs = 25,
  ) {}

  markDirty(conn: Connection): void {
    this.dirty.add(conn);
    this.schedule();
  }

  afterFlush(fn: () => void): void {
    this.after.push(fn);
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Flush everything now (used at shutdown). */
  readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.dirty;
    this.dirty = new Set();
    let congested = false;
    for (const conn of batch) {
      if (!conn.flush(this.maxBuffered)) {
        this.dirty.add(conn);
        congested = true;
      }
    }
    if (this.after.length > 0) {
      const callbacks = this.after;
      this.after = [];
      for (const fn of callbacks) fn(); // frames they queue go out with the next flush
    }
    if (congested && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (this.dirty.size > 0 && !this.scheduled) this.flush();
      }, this.retryMs);
      this.retryTimer.unref();
    }
  };

  dispose(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.dirty.clear();
    this.after = [];
  }
}

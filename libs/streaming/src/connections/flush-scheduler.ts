import { Connection, FlushScheduler } from './connection';

/**
 * Batches outbound frames and watches readers.
 *
 * A connection that wrote during an event-loop turn queues what else reaches
 * it in that turn; at the end of the turn (`setImmediate`) each such queue goes
 * out as one write. A connection that wrote in the last flush keeps batching
 * for one more turn, so a stream gets one write per turn, and a trickle one
 * write per message, without waiting for a turn.
 *
 * Readers with unread bytes are checked on one shared timer (never a timer per
 * connection): congested sockets are retried, slow readers closed, producers
 * waiting for room woken.
 */
export class TickFlushScheduler implements FlushScheduler {
  private dirty = new Set<Connection>();
  /** Incremented by every flush; a connection that wrote in the current turn batches (see `Connection.send`). */
  turn = 0;
  private readonly watched = new Set<Connection>();
  private after: Array<() => void> = [];
  private scheduled = false;
  private watchTimer: NodeJS.Timeout | null = null;

  constructor(
    /** Bytes a socket may have buffered before queued frames wait here instead. */
    private readonly maxBuffered: number,
    private readonly watchEveryMs = 20,
    private readonly now: () => number = Date.now,
  ) {}

  markDirty(conn: Connection): void {
    this.dirty.add(conn);
    this.schedule();
  }

  touch(): void {
    this.schedule();
  }

  watch(conn: Connection): void {
    if (conn.closed) return;
    if (!conn.watched) {
      conn.checkReader(this.now()); // not yet watched: this starts the reader's clocks
      if (conn.closed) return;
      conn.watched = true;
      this.watched.add(conn);
    }
    if (!this.watchTimer) {
      this.watchTimer = setInterval(this.sweep, this.watchEveryMs);
      this.watchTimer.unref();
    }
  }

  afterFlush(fn: () => void): void {
    this.after.push(fn);
    this.schedule();
  }

  /** Settles after the next flush (right away in the same turn when nothing is pending). */
  flushed(): Promise<void> {
    return new Promise((resolve) => this.afterFlush(resolve));
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Write every queued batch now (also used at shutdown). */
  readonly flush = (): void => {
    this.scheduled = false;
    const turn = ++this.turn;
    const batch = this.dirty;
    this.dirty = new Set();
    let wrote = false;
    let now = 0;
    for (const conn of batch) {
      if (conn.flush(this.maxBuffered)) {
        conn.lastWriteTurn = turn; // keeps batching in the coming turn
        wrote = true;
      }
      if (conn.closed) continue;
      if (conn.watched)
        conn.checkReader((now ||= this.now())); // wakes producers waiting for room
      else if (conn.queued > 0 || conn.transport.bufferedAmount() > 0) this.watch(conn);
    }
    if (wrote) this.schedule(); // ends the coming turn, so the next frame to an idle socket goes at once
    if (this.after.length > 0) {
      const callbacks = this.after;
      this.after = [];
      for (const fn of callbacks) fn(); // frames they queue go out with the next flush
    }
  };

  /** The shared timer: retry congested writes, close slow readers, wake waiting producers. */
  private readonly sweep = (): void => {
    const now = this.now();
    for (const conn of this.watched) {
      if (!conn.closed && conn.queued > 0 && conn.flush(this.maxBuffered)) {
        conn.lastWriteTurn = this.turn;
        this.schedule();
      }
      if (!conn.checkReader(now) && (conn.closed || conn.queued === 0)) {
        conn.watched = false;
        this.watched.delete(conn);
      }
    }
    if (this.watched.size === 0 && this.watchTimer) {
      clearInterval(this.watchTimer);
      this.watchTimer = null;
    }
  };

  dispose(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
    this.dirty.clear();
    this.watched.clear();
    this.after = [];
  }
}

import { encodeEnvelope } from '../protocol/envelope';
import { msgpack, type WireCodec } from '../protocol/msgpack';
import type { ConnectionIdentity } from '../interfaces';

/**
 * One serialized envelope as a connection queues it: a JSON string, or its
 * MessagePack bytes on a connection whose codec is `msgpack`.
 */
export type WireFrame = string | Uint8Array;

/** The two ends a connection can have. Services never see them. */
export interface ConnectionTransport {
  readonly kind: 'ws' | 'sse';
  /**
   * How the envelopes written to it are encoded (default `json`): a `json`
   * transport is only given strings, a `msgpack` one only MessagePack bytes.
   */
  readonly codec?: WireCodec;
  /** Write frames (already serialized envelopes, oldest first) as one write. */
  write(frames: readonly WireFrame[]): void;
  /** Bytes written but not yet handed to the kernel. */
  bufferedAmount(): number;
  /** Close the underlying socket/stream with a WebSocket close code. */
  close(code: number, reason: string): void;
}

/** Called, with the reason, by a connection whose reader stayed behind its budget. */
export type SlowConsumerHandler = (conn: Connection, reason: string) => void;

/** Outbound flow control of one connection (from `send_queue_bytes` and `write_timeout`). */
export interface SendLimits {
  /** Unread bytes (queued here plus the socket's buffer) a reader may hold without a clock running. */
  budgetBytes: number;
  /** Unread bytes past which the connection is closed at once. */
  hardCapBytes: number;
  /** Milliseconds a reader may stay over its budget, or take nothing, before it is closed. */
  writeTimeoutMs: number;
}

/** Flush scheduling shared by the connections of a node (see `TickFlushScheduler`). */
export interface FlushScheduler {
  /** The connection has queued frames: write them at the end of this event-loop turn. */
  markDirty(conn: Connection): void;
  /** Event-loop turns counted by the flushes: a connection that wrote in the current one batches. */
  readonly turn: number;
  /** Something was written at once this turn: make sure the turn ends with a flush. */
  touch(): void;
  /** Check the connection's reader periodically until it has taken everything. */
  watch(conn: Connection): void;
  /** Run `fn` right after the next flush has written every queued frame. */
  afterFlush(fn: () => void): void;
}

/** The MessagePack bytes of a JSON envelope; null (it is not sent) when the string is not JSON. */
function toMsgpack(json: string): Buffer | null {
  try {
    return msgpack.fromJson(json);
  } catch {
    return null;
  }
}

/** Bytes between two envelopes of one write: `\n` for JSON, none for concatenated MessagePack values. */
const SEPARATOR_BYTES: Record<WireCodec, number> = { json: 1, msgpack: 0 };

/**
 * One live client connection, independent of its transport: identity, the
 * rooms it receives, and outbound flow control.
 *
 * Outbound: a frame is written at once when the socket is idle; what arrives
 * while a write of this turn is pending is batched into one write at the end
 * of the turn. A reader is slow (closed with 1013) when the bytes it has not
 * taken stay above its budget for `write_timeout`, when it takes nothing for
 * `write_timeout`, or at once past the hard cap. A burst the server produced
 * in one turn is not, by itself, a slow reader.
 *
 * Frames are queued in the connection's codec: JSON strings, or MessagePack
 * bytes for a `msgpack` WebSocket. Envelopes given as JSON strings are
 * converted for such a connection when sent (frames to this connection
 * only); a broadcast hands it the bytes it encoded once for every receiver
 * (see `StreamingHub.deliver`). Byte counts are those of the queued frames.
 */
export class Connection {
  /** The codec of the transport: what {@link send} queues and counts. */
  readonly codec: WireCodec;
  /** Rooms whose events this connection receives (the user's rooms). */
  readonly rooms = new Set<string>();
  readonly connectedAt = Date.now();
  lastActivity = Date.now();
  /** When the peer was last heard from: a pong or any frame (`performance.now()`, a monotonic clock; the keep-alive reads it). */
  heardAt = performance.now();
  /** Set while the transport stopped reading the peer's requests (inbound backpressure). */
  readPaused = false;
  closed = false;
  /** The scheduler's turn of this connection's last write: in that turn further frames batch. */
  lastWriteTurn = -1;
  /** Set while the scheduler checks this connection's reader on its timer. */
  watched = false;
  /**
   * Set while one of this connection's requests runs: what it is sent meanwhile
   * (its own events, then the ack) is batched into one write at the end of the
   * turn instead of a write per frame.
   */
  answering = false;
  /** False until `connected` is queued: events that arrive while the connection is set up wait behind it. */
  private ready = false;
  private queue: WireFrame[] = [];
  private queuedBytes = 0;
  /** Rooms whose live events are held back while a resume replays their history. */
  private held: Map<string, { frames: string[]; bytes: number }> | null = null;
  private heldBytes = 0;
  /** Bytes handed to the transport so far; minus its buffer, what the kernel took. */
  private written = 0;
  private taken = 0;
  /** When the reader last took bytes, or when it last had nothing unread (epoch ms). */
  private progressAt = 0;
  /** Since when the unread bytes are over the budget (0 when they are not). */
  private overSince = 0;
  private waiters: Array<() => void> | null = null;
  private recent: string[] | null = null;

  constructor(
    readonly id: string,
    private current: ConnectionIdentity,
    readonly transport: ConnectionTransport,
    private readonly scheduler: FlushScheduler,
    private readonly limits: SendLimits,
    private readonly onSlowConsumer: SlowConsumerHandler,
    /** Called after `reauthenticate` replaced the identity (its `expiresAt` may have moved). */
    private readonly onReauthenticated?: (conn: Connection) => void,
  ) {
    this.codec = transport.codec ?? 'json';
  }

  /** Who is connected: the token's claims (replaced by `refresh_token`; the user never changes). */
  get identity(): ConnectionIdentity {
    return this.current;
  }

  /** Continue under a fresh token of the same user (see `StreamingAuthService.refresh`). */
  reauthenticate(identity: ConnectionIdentity): void {
    if (identity.userId !== this.current.userId) throw new Error('a connection cannot change user');
    this.current = identity;
    this.onReauthenticated?.(this);
  }

  get userId(): string {
    return this.current.userId;
  }

  get sessionId(): string {
    return this.current.sessionId;
  }

  /** Frames waiting for the next flush. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Send one serialized envelope of `bytes` bytes (pass the size when the same
   * envelope goes to many connections: it is measured once); `batch` queues it
   * for the end of the turn even when the socket is idle. A string is a JSON
   * envelope (converted here, and measured again, on a `msgpack`
   * connection); bytes are a MessagePack envelope, for a `msgpack` connection
   * only. Returns false when the connection is closed, or is closed now for
   * being past its hard cap.
   */
  send(frame: WireFrame, bytes?: number, batch = false): boolean {
    if (this.closed) return false;
    if (typeof frame !== 'string') bytes ??= frame.length;
    else if (this.codec === 'json') bytes ??= Buffer.byteLength(frame);
    else {
      const packed = toMsgpack(frame);
      if (packed === null) return false;
      frame = packed;
      bytes = packed.length;
    }
    if (
      !batch &&
      !this.answering &&
      this.queue.length === 0 &&
      this.ready &&
      this.lastWriteTurn < this.scheduler.turn &&
      this.transport.bufferedAmount() === 0
    ) {
      // Idle socket: write at once; what follows this turn is batched behind it.
      this.transport.write([frame]);
      this.written += bytes;
      this.lastWriteTurn = this.scheduler.turn;
      this.scheduler.touch();
      // The kernel did not take it all: check this reader on the timer.
      if (this.transport.bufferedAmount() > 0) this.scheduler.watch(this);
      return true;
    }
    if (this.overHardCap(bytes)) return false;
    this.queue.push(frame);
    this.queuedBytes += bytes;
    if (this.ready && this.queue.length === 1) this.scheduler.markDirty(this);
    return true;
  }

  /** Queue the first envelope (`connected`, JSON) ahead of anything that arrived during set-up, and start writing. */
  sendFirst(frame: string): void {
    if (this.closed) return;
    const first = this.codec === 'json' ? frame : toMsgpack(frame);
    if (first === null) return;
    this.queue.unshift(first);
    this.queuedBytes += typeof first === 'string' ? Buffer.byteLength(first) : first.length;
    this.ready = true;
    this.scheduler.markDirty(this);
  }

  /**
   * Undefined when the reader has room (at most half the budget queued or in
   * the socket; events held back for a resume do not count); otherwise a
   * promise that settles once it has, or once the connection closes.
   * Producers that can wait (request handling, replays, server-side senders)
   * await it instead of queueing without bound.
   */
  whenWritable(): Promise<void> | undefined {
    if (this.closed || this.queuedBytes + this.transport.bufferedAmount() <= this.limits.budgetBytes / 2) {
      return undefined;
    }
    return new Promise((resolve) => {
      (this.waiters ??= []).push(resolve);
      this.scheduler.watch(this);
    });
  }

  /** False when this connection already saw an event with this dedupe key (bounded memory of recent keys). */
  firstSight(key: string): boolean {
    const recent = (this.recent ??= []);
    if (recent.includes(key)) return false;
    recent.push(key);
    if (recent.length > 16) recent.shift();
    return true;
  }

  /** Hold back live events of a room (during a resume) instead of sending them. */
  hold(roomId: string): void {
    const held = (this.held ??= new Map());
    if (!held.has(roomId)) held.set(roomId, { frames: [], bytes: 0 });
  }

  /**
   * True (and the envelope kept, within the same byte limits) when the room's
   * live events are held. Held envelopes stay JSON (a resume reads their seq);
   * {@link send} converts them for a `msgpack` connection when they are released.
   */
  holdIfHeld(roomId: string, envelope: string, knownBytes?: number): boolean {
    const buf = this.held?.get(roomId);
    if (!buf) return false;
    const bytes = knownBytes ?? Buffer.byteLength(envelope);
    if (this.overHardCap(bytes)) return true;
    buf.frames.push(envelope);
    buf.bytes += bytes;
    this.heldBytes += bytes;
    return true;
  }

  /** Stop holding a room; returns what was held, oldest first. */
  release(roomId: string): string[] {
    const buf = this.held?.get(roomId);
    if (!buf) return [];
    this.held!.delete(roomId);
    if (this.held!.size === 0) this.held = null;
    this.heldBytes -= buf.bytes;
    return buf.frames;
  }

  /** Serialize and send one envelope (for frames addressed to this connection only). */
  sendEvent(type: string, data: unknown, id?: string): boolean {
    return this.send(encodeEnvelope(type, data, id));
  }

  /**
   * Hand the queued frames to the transport as one write, unless the socket
   * still holds more than `maxBuffered` bytes (then they wait here, where a
   * broadcast costs a reference, not a copy). Returns true when it wrote.
   */
  flush(maxBuffered: number): boolean {
    if (this.closed || this.queue.length === 0) return false;
    if (this.transport.bufferedAmount() > maxBuffered) return false;
    const frames = this.queue;
    const bytes = this.queuedBytes + (frames.length - 1) * SEPARATOR_BYTES[this.codec];
    this.queue = [];
    this.queuedBytes = 0;
    this.transport.write(frames);
    this.written += bytes;
    return true;
  }

  /**
   * Check the reader at `now`: closes a slow one, wakes producers waiting for
   * room. Returns true while something is unread (keep checking).
   */
  checkReader(now: number): boolean {
    if (this.closed) return false;
    const buffered = this.transport.bufferedAmount();
    const pipe = this.queuedBytes + buffered;
    const unread = pipe + this.heldBytes;
    const taken = this.written - buffered;
    if (unread === 0 || !this.watched) {
      // A new episode: the clocks start now.
      this.overSince = 0;
      this.progressAt = now;
    } else if (taken > this.taken || pipe === 0) {
      this.progressAt = now; // it took bytes, or owes none (only events held for a resume)
    }
    this.taken = taken;
    if (pipe <= this.limits.budgetBytes / 2) this.wake();
    if (unread === 0) return false;
    if (unread > this.limits.budgetBytes) {
      if (this.overSince === 0) this.overSince = now;
      else if (now - this.overSince >= this.limits.writeTimeoutMs) {
        this.slow(`over ${this.limits.budgetBytes} unread bytes for ${this.limits.writeTimeoutMs} ms`);
        return false;
      }
    } else this.overSince = 0;
    if (now - this.progressAt >= this.limits.writeTimeoutMs) {
      this.slow(`nothing read for ${this.limits.writeTimeoutMs} ms`);
      return false;
    }
    return true;
  }

  /**
   * The memory bound: what waits here (queued and held) may not pass the hard
   * cap; a single frame into an empty queue always goes (the socket's own
   * buffer only ever takes one batch past a quarter of the budget).
   */
  private overHardCap(bytes: number): boolean {
    const waiting = this.queuedBytes + this.heldBytes;
    if (waiting === 0 || waiting + bytes <= this.limits.hardCapBytes) return false;
    this.slow(`over ${this.limits.hardCapBytes} bytes waiting to be written`);
    return true;
  }

  private slow(reason: string): void {
    if (this.closed) return;
    this.onSlowConsumer(this, reason);
    this.discard();
  }

  private wake(): void {
    const waiters = this.waiters;
    if (!waiters) return;
    this.waiters = null;
    for (const fn of waiters) fn();
  }

  /** Release what is queued and held, and wake anyone waiting for room. */
  private discard(): void {
    this.queue = [];
    this.queuedBytes = 0;
    this.held = null;
    this.heldBytes = 0;
    this.wake();
  }

  /** Close the transport (after writing what is queued when `flush` is set). */
  close(code: number, reason: string, flush = false): void {
    if (this.closed) return;
    if (flush && this.queue.length > 0) this.transport.write(this.queue);
    this.closed = true;
    this.discard();
    this.transport.close(code, reason);
  }

  /** Mark closed by the peer: nothing more is written; producers waiting for room go on. */
  markClosed(): void {
    this.closed = true;
    this.discard();
  }
}

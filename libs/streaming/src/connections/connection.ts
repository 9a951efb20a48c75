import { encodeEnvelope } from '../protocol/envelope';

/** The two ends a connection can have. Services never see them. */
export interface ConnectionTransport {
  readonly kind: 'ws' | 'sse';
  /** Write the frames of one tick (already serialized envelopes, oldest first). */
  write(frames: readonly string[]): void;
  /** Bytes written but not yet handed to the kernel. */
  bufferedAmount(): number;
  /** Close the underlying socket/stream with a WebSocket close code. */
  close(code: number, reason: string): void;
}

/** Who is behind a connection, as the authenticator found. */
export interface ConnectionIdentity {
  userId: string;
  sessionId: string;
  name?: string;
  roles: string[];
  /** Token expiry, epoch ms. */
  expiresAt?: number;
  anonymous: boolean;
  metadata: Record<string, unknown>;
}

/** Called by a connection whose bounded queue overflowed or whose writes stalled. */
export type SlowConsumerHandler = (conn: Connection) => void;

/** Schedules the flush of connections with queued frames (one write per socket per tick). */
export interface FlushScheduler {
  markDirty(conn: Connection): void;
  /** Run `fn` right after the next flush has written every queued frame. */
  afterFlush(fn: () => void): void;
}

/**
 * One live client connection, independent of its transport: identity, the
 * rooms and channels it receives, and a bounded outbound queue.
 */
export class Connection {
  /** Rooms whose events this connection receives (the user's rooms). */
  readonly rooms = new Set<string>();
  /** Channel subscriptions: pattern -> filters. */
  readonly channels = new Map<string, Record<string, unknown> | undefined>();
  readonly connectedAt = Date.now();
  lastActivity = Date.now();
  /** Set while the peer answered the last transport-level ping. */
  alive = true;
  closed = false;
  /** False until `connected` is queued: events that arrive while the connection is set up wait behind it. */
  private ready = false;
  private queue: string[] = [];
  /** Rooms whose live events are held back while a resume replays their history. */
  private held: Map<string, string[]> | null = null;

  constructor(
    readonly id: string,
    readonly identity: ConnectionIdentity,
    readonly transport: ConnectionTransport,
    private readonly scheduler: FlushScheduler,
    private readonly maxQueue: number,
    private readonly onSlowConsumer: SlowConsumerHandler,
  ) {}

  get userId(): string {
    return this.identity.userId;
  }

  get sessionId(): string {
    return this.identity.sessionId;
  }

  /** Frames waiting for the next flush. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queue one serialized envelope. Returns false (and reports a slow consumer)
   * when the bounded queue is full; the frame is then dropped.
   */
  send(frame: string): boolean {
    if (this.closed) return false;
    if (this.queue.length >= this.maxQueue) {
      this.onSlowConsumer(this);
      return false;
    }
    this.queue.push(frame);
    if (this.ready && this.queue.length === 1) this.scheduler.markDirty(this);
    return true;
  }

  /** Queue the first envelope (`connected`) ahead of anything that arrived during set-up, and start writing. */
  sendFirst(frame: string): void {
    if (this.closed) return;
    this.queue.unshift(frame);
    this.ready = true;
    this.scheduler.markDirty(this);
  }

  private recent: string[] | null = null;

  /** False when this connection already saw an event with this dedupe key (bounded memory of recent keys). */
  firstSight(key: string): boolean {
    const recent = (this.recent ??= []);
    if (recent.includes(key)) return false;
    recent.push(key);
    if (recent.length > 16) recent.shift();
    return true;
  }

  /** Hold back live events of a room (during a resume) instead of queueing them. */
  hold(roomId: string): void {
    const held = (this.held ??= new Map());
    if (!held.has(roomId)) held.set(roomId, []);
  }

  /** True (and the envelope kept) when the room's live events are held. */
  holdIfHeld(roomId: string, envelope: string): boolean {
    const buf = this.held?.get(roomId);
    if (!buf) return false;
    if (buf.length >= this.maxQueue) {
      this.onSlowConsumer(this);
      return true;
    }
    buf.push(envelope);
    return true;
  }

  /** Stop holding a room; returns what was held, oldest first. */
  release(roomId: string): string[] {
    const buf = this.held?.get(roomId) ?? [];
    this.held?.delete(roomId);
    if (this.held?.size === 0) this.held = null;
    return buf;
  }

  /**
   * Queue a frame once everything queued so far, on every connection, has been
   * written: a request's ack reaches its sender after the events it caused
   * reached the other sockets, without holding up the sender's next request.
   */
  sendAfterFlush(frame: string): void {
    this.scheduler.afterFlush(() => this.send(frame));
  }

  /** Serialize and queue one envelope (for frames addressed to this connection only). */
  sendEvent(type: string, data: unknown, id?: string): boolean {
    return this.send(encodeEnvelope(type, data, id));
  }

  /** Hand queued frames to the transport. Returns false when the transport is still congested. */
  flush(maxBuffered: number): boolean {
    if (this.closed || this.queue.length === 0) return true;
    if (this.transport.bufferedAmount() > maxBuffered) return false;
    const frames = this.queue;
    this.queue = [];
    this.transport.write(frames);
    return true;
  }

  /** Close the transport (after flushing what is queued when `flush` is set). */
  close(code: number, reason: string, flush = false): void {
    if (this.closed) return;
    if (flush && this.queue.length > 0) {
      const frames = this.queue;
      this.queue = [];
      this.transport.write(frames);
    }
    this.closed = true;
    this.queue = [];
    this.transport.close(code, reason);
  }
}

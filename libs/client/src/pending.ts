import type { ServerEnvelope } from '@nest-streaming/protocol';
import { StreamingClientError } from './errors';
import type { EnvelopeEncoder } from './msgpack';
import type { WebSocketLike } from './transports';
import { errorOf, isRecord, timeoutError } from './util';

interface Pending {
  type: string;
  resolve: (value: unknown) => void;
  reject: (err: StreamingClientError) => void;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * Requests written on the socket and waiting for their answer. Each gets an id; the `ack` (or
 * `pong`) with that id resolves it, an `error` with that id rejects it, and its timer rejects it
 * with `timeout`. No buffering and no retries here (see RequestPipeline).
 */
export class PendingRequests {
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private readonly idPrefix = Math.random().toString(36).slice(2, 8);

  /**
   * `socket` returns the current connection's socket (null between connections); `encode`
   * writes an envelope in its codec (default JSON).
   */
  constructor(
    private readonly socket: () => WebSocketLike | null,
    private readonly encode: EnvelopeEncoder = (env) => JSON.stringify(env),
  ) {}

  /** Write one request on the current socket; exactly one of `resolve` and `reject` is called, once. */
  send(
    type: string,
    data: Record<string, unknown>,
    timeoutMs: number,
    resolve: (value: unknown) => void,
    reject: (err: StreamingClientError) => void,
  ): void {
    const socket = this.socket();
    if (!socket || socket.readyState !== 1) {
      reject(new StreamingClientError('disconnected', `${type}: not connected`));
      return;
    }
    const id = `${this.idPrefix}-${++this.nextId}`;
    const p: Pending = { type, resolve, reject, timer: null };
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      p.timer = setTimeout(() => {
        if (this.pending.get(id) !== p) return;
        this.pending.delete(id);
        reject(timeoutError(type, timeoutMs));
      }, timeoutMs);
    }
    this.pending.set(id, p);
    try {
      socket.send(this.encode({ type, id, data }));
    } catch (err) {
      this.pending.delete(id);
      if (p.timer !== null) clearTimeout(p.timer);
      reject(new StreamingClientError('disconnected', `${type}: send failed: ${errorOf(err).message}`));
    }
  }

  /**
   * The answer (`ack`, `error` or `pong`) carrying `id`: settles its request. An answer to a
   * request that already timed out is dropped: nobody waits for it.
   */
  settle(id: string, env: ServerEnvelope): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer !== null) clearTimeout(p.timer);
    if (env.type === 'error') {
      const data = isRecord(env.data) ? env.data : {};
      p.reject(
        new StreamingClientError(
          typeof data.code === 'string' ? data.code : 'internal',
          typeof data.message === 'string' ? data.message : `${p.type} failed`,
          data,
        ),
      );
    } else {
      p.resolve(env.data);
    }
  }

  /** Reject every request still waiting for its answer (the connection is gone). */
  rejectAll(err: StreamingClientError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

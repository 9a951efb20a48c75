import type { JetStreamClient, JetStreamManager, KV, NatsConnection, Subscription } from 'nats';
import { StreamingError } from '../../protocol/streaming-error';
import { jsonBytes, parseJson } from './nats-codec';
import { BucketId, NatsNames } from './nats-keys';
import { KeyedQueue, batched, casBackoff, isConflict, isUnavailableError } from './nats-util';

/** The live connection: JetStream clients and every bucket, opened by `NatsBackend.connect()`. */
export interface Session {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: Record<BucketId, KV>;
  owns: boolean;
}

/** A KV key's current value (null when absent or deleted) and revision (0 when never written). */
export interface Slot<T> {
  value: T | null;
  revision: number;
}

/** Returned by a compare-and-swap step to delete the key. */
export const DELETE = Symbol('delete');

/** What a compare-and-swap step decides: the result, and the new value if it writes one. */
export type CasStep<T, R> = { result: R; next?: T | typeof DELETE };

/** Attempts of a compare-and-swap loop before giving up with `backend_unavailable`. */
export const MAX_CAS_ATTEMPTS = 100;

/** What the base layer reads from `NatsBackendOptions`. */
export interface NatsCoreSettings {
  prefix?: string;
  requestTimeoutMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * The base of the NATS backend's layers (nats-nodes.ts, nats-presence.ts,
 * nats-rooms.ts, nats-moderation.ts, nats-broker.ts, nats-read-state.ts, then nats.backend.ts,
 * each one extending the one before): the session and what every layer does
 * with it, namely key names, reads, compare-and-swap, purges and error mapping.
 * `NatsBackend` opens and closes the session.
 *
 * Atomicity: every read-modify-write is a compare-and-swap loop (KV update with
 * the expected revision, create when absent), retried on conflicts up to
 * {@link MAX_CAS_ATTEMPTS} times. Within one node, the cycles on one key are
 * queued ({@link KeyedQueue}), so conflicts only arise between nodes.
 *
 * Failures to reach NATS reject quickly with `StreamingError('backend_unavailable')`:
 * while disconnected every call fails at once, calls in flight when the
 * connection drops fail at that moment, and a request without a reply fails
 * after `requestTimeoutMs`. Reconnection is automatic and never gives up;
 * core subscriptions (topics and the room log) are restored by nats.js.
 */
export abstract class NatsCore {
  /** True: every node connected to the same NATS (and prefix) shares the state. */
  readonly distributed = true;
  /** Prefix of every bucket and subject. */
  readonly prefix: string;

  protected readonly names: NatsNames;
  protected readonly requestTimeoutMs: number;
  protected readonly onError: (err: unknown) => void;
  protected readonly queue = new KeyedQueue();
  /** Clean-ups running after the call that scheduled them returned. */
  private readonly background = new Set<Promise<void>>();
  protected session: Session | null = null;
  protected connected = false;
  /** Rejects when the current connection drops: calls in flight race it. */
  private lost!: Promise<never>;
  private rejectLost: (err: unknown) => void = () => undefined;

  constructor(settings: NatsCoreSettings) {
    this.prefix = settings.prefix ?? 'fs';
    this.names = new NatsNames(this.prefix);
    this.requestTimeoutMs = settings.requestTimeoutMs ?? 5000;
    this.onError = settings.onError ?? (() => undefined);
    this.resetLost();
  }

  // ------------------------------------------------------------ connection state

  /** A fresh "connection lost" promise for the calls that start from now on. */
  protected resetLost(): void {
    this.lost = new Promise<never>((_, reject) => {
      this.rejectLost = reject;
    });
    this.lost.catch(() => undefined);
  }

  /** Fail every call in flight with `err` (the connection dropped or the backend closes). */
  protected failInFlight(err: unknown): void {
    this.rejectLost(err);
    this.resetLost();
  }

  /** Wait for the clean-ups scheduled by {@link later}. */
  protected async settleBackground(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  protected unavailable(cause: unknown): StreamingError {
    if (cause instanceof StreamingError) return cause;
    const err = new StreamingError('backend_unavailable', 'The streaming backend (NATS) is unavailable.');
    err.cause = cause;
    return err;
  }

  /** Connection-level failures become `backend_unavailable`; anything about the request itself is rethrown as is. */
  protected mapError(err: unknown): Error {
    if (err instanceof StreamingError) return err;
    if (isUnavailableError(err)) return this.unavailable(err);
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Run `fn` on the live session; fails at once when disconnected, and when the connection drops meanwhile. */
  protected async exec<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    const s = this.session;
    if (!s) throw this.unavailable(new Error('not connected: call connect() first'));
    if (!this.connected) throw this.unavailable(new Error('NATS connection lost, reconnecting'));
    try {
      return await Promise.race([fn(s), this.lost]);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /** Run a clean-up after the current call returns; failures are reported, close() waits for it. */
  protected later(task: () => Promise<void>): void {
    // Raced with the connection like a call, so that close() never waits for a request timeout.
    const p: Promise<void> = Promise.race([task(), this.lost])
      .catch((err) => this.onError(err))
      .finally(() => this.background.delete(p));
    this.background.add(p);
  }

  protected unsub(sub: Subscription): void {
    try {
      sub.unsubscribe();
    } catch (err) {
      this.onError(err);
    }
  }

  // ------------------------------------------------------------ keys and values

  protected async slot<T>(kv: KV, key: string): Promise<Slot<T>> {
    const e = await kv.get(key);
    if (!e) return { value: null, revision: 0 };
    if (e.operation !== 'PUT') return { value: null, revision: e.revision };
    return { value: parseJson<T>(e.value), revision: e.revision };
  }

  protected async value<T>(kv: KV, key: string): Promise<T | null> {
    return (await this.slot<T>(kv, key)).value;
  }

  /**
   * Compare-and-swap loop on one key: `step` sees the current value (null when
   * absent) and decides the result and, optionally, the value to write (or
   * DELETE). The write only succeeds if nobody wrote the key in between;
   * otherwise the loop reads again.
   */
  protected cas<T, R>(
    s: Session,
    bucket: BucketId,
    key: string,
    step: (current: T | null) => CasStep<T, R>,
  ): Promise<R> {
    const kv = s.kv[bucket];
    return this.queue.run(`${bucket}/${key}`, async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const cur = await this.slot<T>(kv, key);
        const d = step(cur.value);
        if (d.next === undefined) return d.result;
        try {
          if (d.next === DELETE) {
            if (cur.value !== null) await kv.delete(key, { previousSeq: cur.revision });
          } else {
            await kv.put(key, jsonBytes(d.next), { previousSeq: cur.revision });
          }
          return d.result;
        } catch (err) {
          if (!isConflict(err)) throw err;
          await casBackoff(attempt);
        }
      }
      throw this.contention(bucket, key);
    });
  }

  protected contention(bucket: string, key: string): StreamingError {
    return new StreamingError(
      'backend_unavailable',
      `Too much contention on NATS key ${bucket}/${key}: gave up after ${MAX_CAS_ATTEMPTS} attempts.`,
    );
  }

  /** Remove every message of a bucket's stream on a subject (a key or a filter); leaves no delete marker. */
  protected async purge(s: Session, bucket: BucketId, keyOrFilter: string): Promise<void> {
    await s.jsm.streams.purge(this.names.stream(bucket), {
      filter: this.names.keySubject(bucket, keyOrFilter),
    });
  }

  /** Remove a key only if it is still at `revision` (stream purge up to that revision: no marker left). */
  protected async purgeRevision(s: Session, bucket: BucketId, key: string, revision: number): Promise<void> {
    await s.jsm.streams.purge(this.names.stream(bucket), {
      filter: this.names.keySubject(bucket, key),
      seq: revision + 1,
    });
  }

  /** Delete a key if it is still at `revision`; a newer write wins silently. */
  protected async deleteIfUnchanged(kv: KV, key: string, revision: number): Promise<void> {
    try {
      await kv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  /** Keys of a bucket matching a filter (`a.*`, `a.>`, `>`), with a deadline. */
  protected async listKeys(kv: KV, filter: string): Promise<string[]> {
    const it = await kv.keys(filter);
    const out: string[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        it.stop();
        reject(this.unavailable(new Error(`listing ${filter} timed out`)));
      }, this.requestTimeoutMs * 2);
    });
    try {
      await Promise.race([
        (async () => {
          for await (const k of it) out.push(k);
        })(),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
    return out;
  }

  /** Current values of the keys matching a filter (keys deleted in between are skipped). */
  protected async listValues<T>(
    kv: KV,
    filter: string,
  ): Promise<{ key: string; value: T; revision: number }[]> {
    const keys = await this.listKeys(kv, filter);
    const slots = await batched(keys, (k) => this.slot<T>(kv, k));
    const out: { key: string; value: T; revision: number }[] = [];
    slots.forEach((slot, i) => {
      if (slot.value !== null) out.push({ key: keys[i], value: slot.value, revision: slot.revision });
    });
    return out;
  }
}

import { loadOptionalPackage } from '../../common/optional-package';

/** The nats module, loaded when the NATS backend is first used. */
export const natsModule = (): typeof import('nats') =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loadOptionalPackage('nats', 'NATS backend', () => require('nats') as typeof import('nats'));

/** JetStream error code of "wrong last sequence": a compare-and-swap lost the race. */
export const JS_WRONG_LAST_SEQUENCE = 10071;

/** Whether `err` is a failed compare-and-swap (expected last subject sequence not met). */
export function isConflict(err: unknown): boolean {
  if (!(err instanceof natsModule().NatsError)) return false;
  if (err.api_error?.err_code === JS_WRONG_LAST_SEQUENCE) return true;
  return /wrong last sequence/i.test(err.message);
}

/** nats.js error codes that mean "the server cannot be reached or cannot serve now". */
const UNAVAILABLE_CODES = new Set([
  'TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DRAINING',
  'CONNECTION_REFUSED',
  'CONNECTION_TIMEOUT',
  'DISCONNECT',
  '503', // no responders: JetStream not (yet) available
  '408',
  'AUTHORIZATION_VIOLATION',
  'AUTHENTICATION_EXPIRED',
  'AUTHENTICATION_TIMEOUT',
  'BAD_AUTHENTICATION',
  'BAD_CREDS',
  'ACCOUNT_EXPIRED',
  'TLS',
  'NATS_PROTOCOL_ERR',
]);

/**
 * Whether a nats.js error is about reaching the server (→ `backend_unavailable`)
 * rather than about the request itself (a bad subject, a too large value, ...).
 */
export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof natsModule().NatsError)) return false;
  const api = err.api_error;
  if (api) return api.code === 503 || api.code === 408;
  return UNAVAILABLE_CODES.has(err.code);
}

/**
 * Runs async tasks one after the other per key (tasks of different keys run
 * concurrently). The backend funnels each node's read-modify-write cycles on
 * one KV key through it, so compare-and-swap retries only happen between
 * nodes; correctness never depends on it.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with queued or running tasks (for tests). */
  get size(): number {
    return this.tails.size;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Jittered pause before the next compare-and-swap attempt (none for the first few). */
export function casBackoff(attempt: number): Promise<void> {
  if (attempt < 2) return Promise.resolve();
  return sleep(Math.random() * Math.min(50, 2 ** attempt));
}

const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** A finite non-negative integer: Infinity clamps, NaN is 0 (as the Redis backend reads counts). */
export const count = (n: number): number =>
  n === Infinity ? MAX_COUNT : Number.isFinite(n) ? Math.max(0, Math.min(Math.floor(n), MAX_COUNT)) : 0;

/** A TTL in ms from seconds: at least 1 ms (NaN too), at most MAX_SAFE_INTEGER. */
export const ttlMsFromSeconds = (seconds: number): number =>
  Math.max(1, Math.min(Math.round(seconds * 1000), MAX_COUNT) || 1);

/** How many KV reads a history page, a listing or a trim issues at once. */
export const READ_BATCH = 64;

/** `fn` over `items`, at most READ_BATCH at a time; results in order. */
export async function batched<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_BATCH) {
    out.push(...(await Promise.all(items.slice(i, i + READ_BATCH).map(fn))));
  }
  return out;
}

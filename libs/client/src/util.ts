/** Small helpers shared by the client's internal parts (not exported from the package). */
import { StreamingClientError } from './errors';

/** Sends a request of the client itself (re-subscribe, resume) on the current connection. */
export type SendInternal = (type: string, data: Record<string, unknown>) => Promise<unknown>;

/** Anything thrown, as a StreamingClientError (`internal` unless it already is one). */
export const errorOf = (err: unknown): StreamingClientError =>
  err instanceof StreamingClientError
    ? err
    : new StreamingClientError('internal', err instanceof Error ? err.message : String(err));

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** A whole, non-negative count; `fallback` for anything else. */
export const countOr = (v: number | undefined, fallback: number): number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : fallback;

/** The wait a `rate_limited` refusal asks for: its `retry_after_ms`, or 1000 ms when it has none. */
export const retryAfterOf = (e: StreamingClientError): number => {
  const v = e.data.retry_after_ms;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 1000;
};

export const timeoutError = (type: string, timeoutMs: number): StreamingClientError =>
  new StreamingClientError('timeout', `${type}: no answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs });

/** Reconnect backoff settings: exponential growth with full jitter. */
export interface BackoffOptions {
  /** Ceiling of the first delay. Default 500 ms. */
  initialDelayMs: number;
  /** Cap of every delay. Default 15000 ms. */
  maxDelayMs: number;
  /** Growth per attempt. Default 2. */
  factor: number;
}

/** The defaults of {@link BackoffOptions}. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialDelayMs: 500,
  maxDelayMs: 15000,
  factor: 2,
});

/** Upper bound of the delay before reconnect attempt `attempt` (0-based): `min(max, initial * factor^attempt)`. */
export function backoffCeiling(attempt: number, o: BackoffOptions): number {
  const raw = o.initialDelayMs * Math.pow(o.factor, Math.max(0, attempt));
  return Math.max(0, Math.min(o.maxDelayMs, Number.isFinite(raw) ? raw : o.maxDelayMs));
}

/**
 * Delay before reconnect attempt `attempt` (0-based) with FULL jitter:
 * `random(0, min(max, initial * factor^attempt))`. `random` returns [0, 1).
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, o));
}

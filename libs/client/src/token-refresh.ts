import type { ErrorData } from '@nest-streaming/protocol';
import { StreamingClientError } from './errors';
import { errorOf, isRecord } from './util';

/** The earliest a refresh runs after the previous one (or after connecting): no tight loops. */
export const MIN_REFRESH_DELAY_MS = 1000;
/** After a failed refresh the next try waits 1 s, 2 s, 4 s, ... up to this. */
export const MAX_REFRESH_RETRY_MS = 30_000;
/** setTimeout's longest delay; a later `exp` is refreshed early (harmless). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The `exp` claim of a JWT in epoch ms, read from its payload without verifying it;
 * undefined when `token` is not a JWT or has no numeric `exp`.
 */
export function jwtExpiryMs(token: string | undefined): number | undefined {
  if (typeof token !== 'string') return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === '') return undefined;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
    const exp = isRecord(payload) ? payload.exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When to refresh a token that expires in `remainingMs`: at 80% of that, or `leadMs` before
 * the expiry if that is earlier; never sooner than {@link MIN_REFRESH_DELAY_MS}.
 */
export function refreshDelay(remainingMs: number, leadMs: number): number {
  const at = Math.min(remainingMs * 0.8, remainingMs - leadMs);
  return Math.min(MAX_TIMER_MS, Math.max(MIN_REFRESH_DELAY_MS, at));
}

/** The wait before retry `failures` (from 1) of a failed refresh. */
export function refreshRetryDelay(failures: number): number {
  return Math.min(MAX_REFRESH_RETRY_MS, MIN_REFRESH_DELAY_MS * 2 ** Math.max(0, failures - 1));
}

/** What the refresher needs of the connection. */
export interface TokenRefreshHost {
  /** The app's `getToken` option. */
  getToken(): string | Promise<string>;
  /** Send `refresh_token` with `token` on the current connection; resolves with the ack data. */
  send(token: string): Promise<unknown>;
  /** Report a failed refresh (the client's `error` event). */
  error(data: ErrorData): void;
}

/** Error codes that mean the connection ended: the reconnect takes a fresh token anyway. */
const CONNECTION_GONE = new Set(['disconnected', 'closed', 'not_connected']);

/**
 * Proactive token refresh on an open WebSocket: before the current token's `exp` it asks
 * `getToken()` for a new one and sends `refresh_token`, then waits for the new token's expiry.
 * A failure is reported and retried later with a growing wait. Its timer never keeps Node alive.
 */
export class TokenRefresher {
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped by start() and stop(): a refresh of an earlier run does nothing when it completes. */
  private run = 0;
  private failures = 0;
  /** The token the connection runs under now. */
  private current: string | undefined;

  constructor(
    private readonly host: TokenRefreshHost,
    /** See `refreshBeforeExpMs` of StreamingClientOptions. */
    private readonly leadMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A connection opened with `token`: schedule its refresh (nothing when it has no `exp`). */
  start(token: string | undefined): void {
    this.stop();
    this.current = token;
    this.scheduleFor(jwtExpiryMs(token));
  }

  /** The connection ended: cancel the timer and ignore a refresh in progress. */
  stop(): void {
    this.run++;
    this.failures = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private scheduleFor(expiresAtMs: number | undefined): void {
    if (expiresAtMs === undefined) return;
    this.arm(refreshDelay(expiresAtMs - this.now(), this.leadMs));
  }

  private arm(delayMs: number): void {
    const run = this.run;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (run === this.run) void this.refresh(run);
    }, delayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private async refresh(run: number): Promise<void> {
    let token: string;
    try {
      token = await this.host.getToken();
      if (typeof token !== 'string' || token === '') throw new Error('it returned no token');
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.failed(run, new StreamingClientError('token_refresh_failed', `getToken() failed: ${why}`));
      return;
    }
    if (run !== this.run) return;
    if (token === this.current) {
      // getToken() still hands out the same token (e.g. from a cache): nothing to send, ask again later.
      this.scheduleFor(jwtExpiryMs(token));
      return;
    }
    let ack: unknown;
    try {
      ack = await this.host.send(token);
    } catch (err) {
      this.failed(run, errorOf(err));
      return;
    }
    if (run !== this.run) return;
    this.failures = 0;
    this.current = token;
    // The server's word on the new expiry wins; else the token's own `exp`.
    const at = isRecord(ack) && typeof ack.expires_at === 'string' ? Date.parse(ack.expires_at) : NaN;
    this.scheduleFor(Number.isFinite(at) ? at : jwtExpiryMs(token));
  }

  /** Report a failed refresh and try again later (unless the connection is gone). */
  private failed(run: number, e: StreamingClientError): void {
    if (run !== this.run || CONNECTION_GONE.has(e.code)) return;
    this.failures++;
    this.host.error({ ...e.data, code: e.code, message: `token refresh failed: ${e.message}` });
    // A server without `refresh_token` will not have it later: stop asking on this connection.
    if (e.code !== 'unknown_type') this.arm(refreshRetryDelay(this.failures));
  }
}

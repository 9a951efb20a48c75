/**
 * Codes the client itself uses besides the server's (PROTOCOL.md section 6):
 * `timeout` (no ack within ackTimeoutMs), `disconnected` (the socket closed
 * before the ack: the request may or may not have been carried out),
 * `offline_buffer_full`, `receive_only` (a request in SSE mode), `closed`
 * (close() was called), `not_connected` (a request before connect()),
 * `connect_failed`, `unauthorized` (the server refused the token),
 * `no_transport` (no WebSocket / EventSource / fetch available).
 */
export type ClientErrorCode =
  | 'timeout'
  | 'disconnected'
  | 'offline_buffer_full'
  | 'receive_only'
  | 'closed'
  | 'not_connected'
  | 'connect_failed'
  | 'unauthorized'
  | 'no_transport'
  | 'http_error';

/** A failed request: a server `error` envelope (`code` from PROTOCOL.md section 6) or a client-side failure. */
export class StreamingClientError extends Error {
  override readonly name = 'StreamingClientError';

  constructor(
    /** A server error code (`room_not_found`, `rate_limited`, ...) or a {@link ClientErrorCode}. */
    readonly code: string,
    message: string,
    /** The whole `data` of the server's error envelope (extra fields such as `retry_after_ms`), or details. */
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

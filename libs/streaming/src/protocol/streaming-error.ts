import { ErrorCode } from '@nest-streaming/protocol';

/**
 * The one error type of the module. Services throw it; the transports map it
 * to a WebSocket `error` frame, an SSE `error` event or an HTTP status.
 */
export class StreamingError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields copied into the error frame's `data` (e.g. `retry_after_ms`). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'StreamingError';
  }

  /** The `data` object of an `error` frame. */
  toData(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details };
  }
}

/** Wrap anything thrown into a StreamingError (unknown errors become `internal`). */
export function toStreamingError(err: unknown): StreamingError {
  if (err instanceof StreamingError) return err;
  return new StreamingError('internal', 'internal server error');
}

import { HttpException } from '@nestjs/common';
import { ErrorCode, HTTP_STATUS_BY_CODE } from '@nest-streaming/protocol';

/** Reason phrases of the statuses the module answers with. */
export const HTTP_REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * The one error type of the module. Services throw it; the transports map it
 * to a WebSocket `error` frame or an SSE `error` event. It is an
 * `HttpException` with the status of its code (PROTOCOL.md section 6), so in
 * an app's own controllers Nest answers `{statusCode, error, message, code}`
 * without any filter.
 */
export class StreamingError extends HttpException {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields copied into the error frame's `data` (e.g. `retry_after_ms`). */
    readonly details: Record<string, unknown> = {},
  ) {
    const status = HTTP_STATUS_BY_CODE[code] ?? 500;
    super({ statusCode: status, error: HTTP_REASONS[status] ?? 'Error', message, code, ...details }, status);
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

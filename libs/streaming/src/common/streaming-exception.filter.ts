import { StreamingLogger } from './streaming-logger';
import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { Response } from 'express';
import { HTTP_STATUS_BY_CODE } from '@nest-streaming/protocol';
import { HTTP_REASONS, StreamingError } from '../protocol/streaming-error';

export { HTTP_REASONS };

/**
 * Maps a {@link StreamingError} thrown in an HTTP route to Nest's error shape
 * `{statusCode, error, message, code}` with the status of its code.
 */
@Catch(StreamingError)
export class StreamingExceptionFilter implements ExceptionFilter {
  catch(err: StreamingError, host: ArgumentsHost): void {
    sendStreamingError(err, host);
  }
}

/** Write a {@link StreamingError} as an HTTP response. */
export function sendStreamingError(err: StreamingError, host: ArgumentsHost): void {
  const res = host.switchToHttp().getResponse<Response>();
  const status = HTTP_STATUS_BY_CODE[err.code];
  if (err.code === 'rate_limited' && typeof err.details.retry_after_ms === 'number') {
    res.setHeader('Retry-After', String(Math.ceil(err.details.retry_after_ms / 1000)));
  }
  res.status(status).json({
    statusCode: status,
    error: HTTP_REASONS[status] ?? 'Error',
    message: err.message,
    ...err.toData(),
  });
}

/**
 * Opt-in catch-all for apps that want every HTTP error in Nest's JSON shape
 * with `error` always present: StreamingErrors as above, HttpExceptions and
 * body-parser errors (400 bad JSON, 413 too large) with their status, anything
 * else as 500. `{ provide: APP_FILTER, useClass: StreamingHttpErrorFilter }`.
 */
@Catch()
export class StreamingHttpErrorFilter implements ExceptionFilter {
  catch(err: unknown, host: ArgumentsHost): void {
    if (err instanceof StreamingError) return sendStreamingError(err, host);
    const res = host.switchToHttp().getResponse<Response>();
    if (err instanceof HttpException) {
      const status = err.getStatus();
      const body = err.getResponse();
      const fields = typeof body === 'string' ? { message: body } : (body as Record<string, unknown>);
      res.status(status).json({ statusCode: status, error: HTTP_REASONS[status] ?? err.name, ...fields });
      return;
    }
    const e = err as { status?: unknown; statusCode?: unknown; message?: unknown; expose?: unknown };
    const raw =
      typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
    const status = raw >= 400 && raw < 600 ? raw : 500;
    const message = status < 500 && typeof e.message === 'string' ? e.message : 'internal server error';
    if (status >= 500)
      new StreamingLogger('streaming.http').error(
        err instanceof Error ? (err.stack ?? err.message) : String(err),
      );
    res.status(status).json({ statusCode: status, error: HTTP_REASONS[status] ?? 'Error', message });
  }
}

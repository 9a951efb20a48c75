import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { HTTP_STATUS_BY_CODE } from '../protocol/error-codes';
import { StreamingError } from '../protocol/streaming-error';

const REASONS: Record<number, string> = {
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
 * Maps a {@link StreamingError} thrown in an HTTP route to Nest's error shape
 * `{statusCode, error, message, code}` with the status of its code.
 */
@Catch(StreamingError)
export class StreamingExceptionFilter implements ExceptionFilter {
  catch(err: StreamingError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const status = HTTP_STATUS_BY_CODE[err.code];
    if (err.code === 'rate_limited' && typeof err.details.retry_after_ms === 'number') {
      res.setHeader('Retry-After', String(Math.ceil(err.details.retry_after_ms / 1000)));
    }
    res
      .status(status)
      .json({ statusCode: status, error: REASONS[status] ?? 'Error', message: err.message, ...err.toData() });
  }
}

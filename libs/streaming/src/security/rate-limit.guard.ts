import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingRequest } from './streaming-auth.guard';
import { InjectStreamingOptions, STREAMING_RATE_LIMITER } from '../streaming.constants';
import type { RateLimiter } from '../interfaces';

/**
 * REST guard: the same rate limiter and limits as socket requests
 * (`rate_limit.*`, or the module's `rateLimiter`), with a budget per user of
 * its own when {@link StreamingAuthGuard} ran first, else per client address. A refused request is
 * `rate_limited`: HTTP 429 with a `Retry-After` header. Use after the auth guard:
 * `@UseGuards(StreamingAuthGuard, StreamingRateLimitGuard)`.
 */
@Injectable()
export class StreamingRateLimitGuard implements CanActivate {
  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    @Inject(STREAMING_RATE_LIMITER) private readonly limiter: RateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.options.rateLimit.enabled) return true;
    const req = context.switchToHttp().getRequest<StreamingRequest>();
    // A budget of its own per user (the same limits as the socket's): REST calls never eat into it.
    const user = req.streamingIdentity?.userId;
    const key =
      user !== undefined ? `rest:${user}` : `rest-ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
    const verdict = await this.limiter.checkLimit(key, `rest:${req.method}`);
    if (!verdict.allowed) {
      const res = context.switchToHttp().getResponse<{ setHeader?(name: string, value: string): void }>();
      res.setHeader?.('Retry-After', String(Math.ceil(verdict.retryAfterMs / 1000)));
      throw new StreamingError('rate_limited', 'too many requests, slow down', {
        retry_after_ms: verdict.retryAfterMs,
      });
    }
    return true;
  }
}

import { createHash, timingSafeEqual } from 'node:crypto';
import { CanActivate, ExecutionContext, Injectable, NotFoundException } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { InjectStreamingOptions } from '../streaming.constants';
import type { StreamingRequest } from './streaming-auth.guard';

const SCHEME = /^apikey\s+(\S+)\s*$/i;
const digest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/**
 * Guard of the server API (PROTOCOL.md §10): `Authorization: apikey <key>`
 * with one of the configured `apiKey`s, else 401; with no key configured
 * the routes do not exist (404). Keys are compared as SHA-256 digests in
 * constant time, every configured key each time. The request's identity is
 * `apikey:<n>` (the key's position), which the REST rate limiter counts by.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: Buffer[];

  constructor(@InjectStreamingOptions() options: StreamingOptions) {
    this.keys = options.apiKey.map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<StreamingRequest>();
    if (this.keys.length === 0) throw new NotFoundException(`Cannot ${req.method} ${req.path ?? req.url}`);
    const header = req.headers.authorization;
    const given = typeof header === 'string' ? SCHEME.exec(header)?.[1] : undefined;
    if (given === undefined) {
      throw new StreamingError(
        'unauthorized',
        'the server API needs an "Authorization: apikey <key>" header',
      );
    }
    const hash = digest(given);
    let match = -1;
    for (let i = 0; i < this.keys.length; i++) {
      if (timingSafeEqual(hash, this.keys[i]) && match < 0) match = i;
    }
    if (match < 0) throw new StreamingError('unauthorized', 'invalid API key');
    req.streamingIdentity = {
      userId: `apikey:${match}`,
      sessionId: '',
      roles: ['server'],
      anonymous: false,
      metadata: {},
    };
    return true;
  }
}

import { CanActivate, ExecutionContext, Injectable, createParamDecorator } from '@nestjs/common';
import type { Request } from 'express';
import { StreamingAuthService } from './auth.service';
import type { ConnectionIdentity } from '../interfaces';

/** A request that passed {@link StreamingAuthGuard}. */
export interface StreamingRequest extends Request {
  streamingIdentity?: ConnectionIdentity;
}

/**
 * REST guard: the same token rules as the WebSocket upgrade (Bearer header
 * or `?token=`); 401 otherwise. The identity is available via `@StreamingUser()`.
 */
@Injectable()
export class StreamingAuthGuard implements CanActivate {
  constructor(private readonly auth: StreamingAuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<StreamingRequest>();
    req.streamingIdentity = await this.auth.authenticate({ url: req.url, headers: req.headers });
    return true;
  }
}

/** Parameter decorator: the {@link ConnectionIdentity} of a request that passed {@link StreamingAuthGuard}. */
export const StreamingUser = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): ConnectionIdentity => {
    const identity = ctx.switchToHttp().getRequest<StreamingRequest>().streamingIdentity;
    if (!identity) throw new Error('@StreamingUser() needs StreamingAuthGuard on the route');
    return identity;
  },
);

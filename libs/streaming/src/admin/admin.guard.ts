import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingAuthService } from '../security/auth.service';
import type { StreamingRequest } from '../security/streaming-auth.guard';
import { InjectStreamingOptions } from '../streaming.constants';

/**
 * The admin console's default guard: a valid token (Bearer header or
 * `?token=`, as for `/ws`) whose `roles` include `adminRole` (default
 * `admin`); 401 without a valid token, 403 without the role. Replaced by
 * `routes.adminGuards` when the app supplies its own.
 */
@Injectable()
export class StreamingAdminGuard implements CanActivate {
  constructor(
    private readonly auth: StreamingAuthService,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<StreamingRequest>();
    const identity = await this.auth.authenticate({ url: req.url, headers: req.headers });
    if (identity.anonymous) throw new StreamingError('unauthorized', 'the admin console needs a token');
    if (!identity.roles.includes(this.options.adminRole)) {
      throw new StreamingError('forbidden', `the admin console needs the "${this.options.adminRole}" role`);
    }
    req.streamingIdentity = identity;
    return true;
  }
}

import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingAuthGuard, type StreamingRequest } from '../security/streaming-auth.guard';
import { InjectStreamingOptions } from '../streaming.constants';

/**
 * The admin console's default guard: {@link StreamingAuthGuard}'s token
 * rules (Bearer header or `?token=`, as for `/ws`), then a token whose
 * `roles` include `adminRole` (default `admin`); 401 without a valid token,
 * 403 without the role. Replaced by `routes.adminGuards` when the app
 * supplies its own.
 */
@Injectable()
export class StreamingAdminGuard implements CanActivate {
  constructor(
    private readonly authGuard: StreamingAuthGuard,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await this.authGuard.canActivate(context);
    const identity = context.switchToHttp().getRequest<StreamingRequest>().streamingIdentity!;
    if (identity.anonymous) throw new StreamingError('unauthorized', 'the admin console needs a token');
    if (!identity.roles.includes(this.options.adminRole)) {
      throw new StreamingError('forbidden', `the admin console needs the "${this.options.adminRole}" role`);
    }
    return true;
  }
}

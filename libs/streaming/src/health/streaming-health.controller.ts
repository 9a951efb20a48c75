import { Get, Injectable } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { StreamingHealthIndicators } from './streaming-health.indicators';

/**
 * `GET <routes.health>`, `/backend` and `/distributed` (200 up, 503 down).
 * Mounted by `StreamingModule` when `routes.health` is set; an app with its
 * own Terminus controller can use the exported `StreamingHealthIndicators`.
 */
@Injectable()
export class StreamingHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: StreamingHealthIndicators,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.indicators.streaming(), () => this.indicators.backendHealth()]);
  }

  @Get('backend')
  @HealthCheck()
  backend() {
    return this.health.check([() => this.indicators.backendHealth()]);
  }

  @Get('distributed')
  @HealthCheck()
  distributed() {
    return this.health.check([() => this.indicators.distributed()]);
  }
}

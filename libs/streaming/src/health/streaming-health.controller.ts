import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { StreamingHealthIndicators } from './streaming-health.indicators';

/** `GET /_/health/streaming`, `/backend` and `/distributed` (200 up, 503 down). */
@Controller('_/health/streaming')
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

import { Get, Injectable } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { StreamingHealthIndicators } from './streaming-health.indicators';
import { ApiOperation, ApiTags } from '../docs/swagger';

/**
 * `GET <routes.health>`, `/backend` and `/distributed` (200 up, 503 down).
 * Mounted by `StreamingModule` when `routes.health` is set; an app with its
 * own Terminus controller can use the exported `StreamingHealthIndicators`.
 */
@Injectable()
@ApiTags('streaming health')
export class StreamingHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: StreamingHealthIndicators,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Streaming health (module and backend): 200 up, 503 down' })
  check() {
    return this.health.check([() => this.indicators.streaming(), () => this.indicators.backendHealth()]);
  }

  @Get('backend')
  @HealthCheck()
  @ApiOperation({ summary: 'Backend health: 200 up, 503 down' })
  backend() {
    return this.health.check([() => this.indicators.backendHealth()]);
  }

  @Get('distributed')
  @HealthCheck()
  @ApiOperation({ summary: "Cluster health: every live node's `node_id`; 200 up, 503 down" })
  distributed() {
    return this.health.check([() => this.indicators.distributed()]);
  }
}

import { Controller, Get, Header, Query } from '@nestjs/common';
import { IsIn, IsOptional, IsString } from 'class-validator';
import { LoadBalancerService, LoadBalancerStrategy, RouteDecision } from '../cluster/load-balancer.service';
import { StreamingError } from '../protocol/streaming-error';
import { validateDto } from '../protocol/request-dispatcher.service';
import { StreamingManager, StreamingStatsSnapshot } from '../streaming-manager.service';
import { StreamingMetrics } from './streaming-metrics.service';

class RouteQuery {
  @IsOptional() @IsString() room?: string;
  @IsOptional() @IsString() user?: string;
  @IsOptional() @IsString() region?: string;
  @IsOptional()
  @IsIn(['consistent_hash', 'least_connections', 'round_robin', 'geographic'])
  strategy?: LoadBalancerStrategy;
}

/** `GET /_/streaming/stats`, `GET /_/streaming/route` and `GET /metrics` (Prometheus text). */
@Controller()
export class StreamingObservabilityController {
  constructor(
    private readonly manager: StreamingManager,
    private readonly metrics: StreamingMetrics,
    private readonly balancer: LoadBalancerService,
  ) {}

  /** Which node a room or user should connect to (`?room=` or `?user=`, optional `region`, `strategy`). */
  @Get('_/streaming/route')
  route(@Query() query: Record<string, unknown>): Promise<RouteDecision> {
    let q: RouteQuery;
    try {
      q = validateDto(RouteQuery, query);
    } catch (err) {
      throw err instanceof StreamingError ? err : new StreamingError('invalid_message', 'bad query');
    }
    return this.balancer.route(q);
  }

  @Get('_/streaming/stats')
  stats(): Promise<StreamingStatsSnapshot> {
    return this.manager.getStats();
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  prometheus(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

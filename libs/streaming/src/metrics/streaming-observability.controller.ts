import { Get, Header, Injectable, Query } from '@nestjs/common';
import { IsIn, IsOptional, IsString } from 'class-validator';
import { LoadBalancerService, LoadBalancerStrategy, RouteDecision } from '../cluster/load-balancer.service';
import { StreamingError } from '../protocol/streaming-error';
import { validateDto } from '../protocol/request-dispatcher.service';
import { StreamingManager, StreamingStatsSnapshot } from '../streaming-manager.service';
import { StreamingMetricsService } from './streaming-metrics.service';

class RouteQuery {
  @IsOptional() @IsString() room?: string;
  @IsOptional() @IsString() user?: string;
  @IsOptional() @IsString() region?: string;
  @IsOptional()
  @IsIn(['consistent_hash', 'least_connections', 'round_robin', 'geographic'])
  strategy?: LoadBalancerStrategy;
}

/** `GET <routes.route>`: which node a room or user should connect to (`?room=` or `?user=`, optional `region`, `strategy`). */
@Injectable()
export class StreamingRouteController {
  constructor(private readonly balancer: LoadBalancerService) {}

  @Get()
  route(@Query() query: Record<string, unknown>): Promise<RouteDecision> {
    let q: RouteQuery;
    try {
      q = validateDto(RouteQuery, query);
    } catch (err) {
      throw err instanceof StreamingError ? err : new StreamingError('invalid_message', 'bad query');
    }
    return this.balancer.route(q);
  }
}

/** `GET <routes.stats>`: this node's and the cluster's counters. */
@Injectable()
export class StreamingStatsController {
  constructor(private readonly manager: StreamingManager) {}

  @Get()
  stats(): Promise<StreamingStatsSnapshot> {
    return this.manager.getStats();
  }
}

/** `GET <routes.metrics>`: Prometheus text. */
@Injectable()
export class StreamingMetricsController {
  constructor(private readonly metrics: StreamingMetricsService) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  prometheus(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

import { Get, Header, Injectable, Query } from '@nestjs/common';
import { IsIn, IsOptional, IsString } from 'class-validator';
import { LoadBalancerService, LoadBalancerStrategy, RouteDecision } from '../cluster/load-balancer.service';
import { StreamingError } from '../protocol/streaming-error';
import { validateDto } from '../protocol/request-dispatcher.service';
import { StreamingManager, StreamingStatsSnapshot } from '../streaming-manager.service';
import { StreamingMetricsService } from './streaming-metrics.service';
import { s } from '@nest-streaming/protocol';
import { ApiErrorResponses, ApiSchemaResponse } from '../docs/openapi';
import { ApiOperation, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '../docs/swagger';

const STRATEGIES = ['consistent_hash', 'least_connections', 'round_robin', 'geographic'] as const;

class RouteQuery {
  @IsOptional() @IsString() room?: string;
  @IsOptional() @IsString() user?: string;
  @IsOptional() @IsString() region?: string;
  @IsOptional()
  @IsIn(STRATEGIES)
  strategy?: LoadBalancerStrategy;
}

/** `GET <routes.route>`: which node a room or user should connect to (`?room=` or `?user=`, optional `region`, `strategy`). */
@Injectable()
@ApiTags('streaming')
export class StreamingRouteController {
  constructor(private readonly balancer: LoadBalancerService) {}

  @Get()
  @ApiOperation({ summary: 'Which node a room or user should connect to' })
  @ApiQuery({ type: String, name: 'room', required: false, description: 'Route by room id.' })
  @ApiQuery({ type: String, name: 'user', required: false, description: 'Route by user id.' })
  @ApiQuery({ type: String, name: 'region', required: false, description: 'Prefer nodes of this region.' })
  @ApiQuery({ name: 'strategy', required: false, enum: STRATEGIES })
  @ApiSchemaResponse(
    200,
    'The chosen node.',
    s.object({
      node_id: s.string(),
      address: s.nullable(s.string()),
      region: s.nullable(s.string()),
      strategy: s.enum(STRATEGIES),
      key: s.nullable(s.string()),
      nodes: s.integer({ description: 'Live nodes considered.' }),
    }),
  )
  @ApiErrorResponses(400)
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
@ApiTags('streaming')
export class StreamingStatsController {
  constructor(private readonly manager: StreamingManager) {}

  @Get()
  @ApiOperation({ summary: "This node's and the cluster's counters" })
  @ApiSchemaResponse(
    200,
    'The counters.',
    s.object({
      node_id: s.string(),
      backend: s.string(),
      active_connections: s.integer(),
      connections_by_transport: s.object({ ws: s.integer(), sse: s.integer() }),
      users_online: s.integer(),
      total_rooms: s.integer(),
      total_channels: s.integer(),
      messages_per_second: s.number(),
      total_messages: s.integer(),
      uptime_s: s.integer(),
    }),
  )
  stats(): Promise<StreamingStatsSnapshot> {
    return this.manager.getStats();
  }
}

/** `GET <routes.metrics>`: Prometheus text. */
@Injectable()
@ApiTags('streaming')
export class StreamingMetricsController {
  constructor(private readonly metrics: StreamingMetricsService) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOperation({ summary: 'Prometheus metrics (names start with `streaming_`)' })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'Prometheus text format.', schema: { type: 'string' } })
  prometheus(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

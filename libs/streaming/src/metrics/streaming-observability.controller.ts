import { Controller, Get, Header } from '@nestjs/common';
import { StreamingManager, StreamingStatsSnapshot } from '../streaming-manager.service';
import { StreamingMetrics } from './streaming-metrics.service';

/** `GET /_/streaming/stats` and `GET /metrics` (Prometheus text). */
@Controller()
export class StreamingObservabilityController {
  constructor(
    private readonly manager: StreamingManager,
    private readonly metrics: StreamingMetrics,
  ) {}

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

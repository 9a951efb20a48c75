import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { BackendLifecycle, backendProviders } from './backends/backend.providers';
import { NodeRegistryService } from './cluster/node-registry.service';
import { LoadBalancerService } from './cluster/load-balancer.service';
import { ConnectionRegistry } from './connections/connection-registry';
import { FanoutService } from './connections/fanout.service';
import { TopicTable } from './connections/topic-table';
import { StreamingHub } from './connections/hub';
import { MessageSearchService } from './history/message-search';
import { StreamingHooks } from './hooks/streaming-hooks.service';
import { ConnectionLifecycleService } from './connections/connection-lifecycle.service';
import { StreamingHealthIndicators } from './health/streaming-health.indicators';
import { HistoryService } from './history/history.service';
import { ChannelService, channelProviders } from './channels';
import { ModerationService } from './moderation/moderation.service';
import { StreamingMetricsService } from './metrics/streaming-metrics.service';
import { StreamingStatsService } from './metrics/streaming-stats.service';
import { StreamingEvents } from './events/streaming-events';
import { PresenceService } from './presence/presence.service';
import { RequestDispatcherService } from './protocol/request-dispatcher.service';
import { RoomService } from './rooms/room.service';
import { ReadStateService } from './rooms/read-state.service';
import { StreamingAuthService } from './security/auth.service';
import { StreamingAuthGuard } from './security/streaming-auth.guard';
import { StreamingRateLimitGuard } from './security/rate-limit.guard';
import { ApiKeyGuard } from './security/api-key.guard';
import { StreamingManager } from './streaming-manager.service';
import {
  STREAMING_ASYNC_OPTIONS_TYPE,
  STREAMING_OPTIONS_TYPE,
  StreamingConfigurableModule,
} from './streaming.module-definition';
import { loadStreamingConfig } from './config/streaming-config.loader';
import { routeControllers, routeProviders } from './streaming-routes';
import { optionsProviders } from './streaming.providers';
import { StreamingGateway } from './transports/ws/streaming.gateway';
import { TypingService } from './typing/typing.service';
import { WebhookService } from './webhooks/webhook.service';
import { StreamingHandlersExplorer } from './decorators/streaming-handlers.explorer';
import { STREAMING_BACKEND, STREAMING_OPTIONS, STREAMING_RATE_LIMITER } from './streaming.constants';

/**
 * Real-time streaming for a Nest app: WebSocket gateway at `/ws`, rooms with
 * history, presence, typing, health and metrics, over a pluggable backend.
 *
 * ```ts
 * StreamingModule.forRoot({ auth: { jwtSecret: process.env.JWT_SECRET } })
 * ```
 */
@Module({
  imports: [TerminusModule, DiscoveryModule],
  providers: [
    ...optionsProviders,
    ...backendProviders,
    BackendLifecycle,
    StreamingMetricsService,
    StreamingStatsService,
    StreamingEvents,
    ConnectionRegistry,
    TopicTable,
    StreamingHub,
    StreamingHooks,
    ...channelProviders,
    FanoutService,
    StreamingAuthService,
    StreamingAuthGuard,
    StreamingRateLimitGuard,
    ApiKeyGuard,
    PresenceService,
    TypingService,
    RoomService,
    ReadStateService,
    HistoryService,
    MessageSearchService,
    ModerationService,
    StreamingManager,
    RequestDispatcherService,
    ConnectionLifecycleService,
    NodeRegistryService,
    LoadBalancerService,
    StreamingHealthIndicators,
    StreamingGateway,
    StreamingHandlersExplorer,
    WebhookService,
  ],
  exports: [
    STREAMING_OPTIONS,
    STREAMING_BACKEND,
    StreamingMetricsService,
    StreamingEvents,
    ConnectionRegistry,
    StreamingAuthService,
    StreamingAuthGuard,
    StreamingRateLimitGuard,
    STREAMING_RATE_LIMITER,
    PresenceService,
    TypingService,
    RoomService,
    ReadStateService,
    HistoryService,
    MessageSearchService,
    ModerationService,
    ChannelService,
    StreamingManager,
    StreamingHooks,
    ApiKeyGuard,
    WebhookService,
    StreamingHealthIndicators,
  ],
})
export class StreamingModule extends StreamingConfigurableModule {
  /** The module with its configuration, and the routes of `routes` (SSE only by default). */
  static forRoot(options: typeof STREAMING_OPTIONS_TYPE): DynamicModule {
    // The server API is mounted when a key is configured (in code, the environment or YAML).
    const keys = options.apiKey ?? loadStreamingConfig().apiKey ?? [];
    const base = super.forRoot(options);
    return {
      ...base,
      providers: [...(base.providers ?? []), ...routeProviders(options.routes)],
      controllers: routeControllers(options.routes, { apiKeyConfigured: keys.length > 0 }),
    };
  }

  /**
   * As {@link forRoot}, with the configuration from a factory; `routes` stays
   * static (the server API is mounted only with `routes.api` set, as the keys
   * are not known yet).
   */
  static forRootAsync(options: typeof STREAMING_ASYNC_OPTIONS_TYPE): DynamicModule {
    const base = super.forRootAsync(options);
    return {
      ...base,
      providers: [...(base.providers ?? []), ...routeProviders(options.routes)],
      controllers: routeControllers(options.routes),
    };
  }
}

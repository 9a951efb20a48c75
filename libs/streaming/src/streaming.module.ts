import { randomBytes } from 'node:crypto';
import { DynamicModule, Module, Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { BackendLifecycle, backendProviders } from './backends/backend.providers';
import { NodeRegistryService } from './cluster/node-registry.service';
import { LoadBalancerService } from './cluster/load-balancer.service';
import { StreamingConfigError } from './config/streaming-config.error';
import { StreamingModuleOptions, StreamingOptions } from './config/streaming-options.interface';
import { mergeStreamingInput, resolveStreamingOptions } from './config/streaming-options.validation';
import { loadStreamingConfig } from './config/streaming-config.loader';
import { ConnectionRegistry } from './connections/connection-registry';
import { FanoutService } from './connections/fanout.service';
import { TopicTable } from './connections/topic-table';
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
import { StreamingAuthService } from './security/auth.service';
import { JwtAuthenticator } from './security/jwt.authenticator';
import { createMessageRateLimiter, createRateLimiter } from './security/rate-limiter.factory';
import { StreamingAuthGuard } from './security/streaming-auth.guard';
import { StreamingRateLimitGuard } from './security/rate-limit.guard';
import { StreamingManager } from './streaming-manager.service';
import {
  STREAMING_ASYNC_OPTIONS_TYPE,
  STREAMING_MODULE_OPTIONS,
  STREAMING_OPTIONS_TYPE,
  StreamingConfigurableModule,
} from './streaming.module-definition';
import { routeControllers } from './streaming-routes';
import { StreamingGateway } from './transports/ws/streaming.gateway';
import { TypingService } from './typing/typing.service';
import { StreamingHandlersExplorer } from './decorators/streaming-handlers.explorer';
import {
  STREAMING_BACKEND,
  STREAMING_AUTHENTICATOR,
  STREAMING_RATE_LIMITER,
  STREAMING_MESSAGE_RATE_LIMITER,
  STREAMING_CONTENT_FILTERS,
  STREAMING_OPTIONS,
} from './streaming.constants';
import { StreamingBackend } from './interfaces';

const optionsProviders: Provider[] = [
  {
    provide: STREAMING_OPTIONS,
    inject: [STREAMING_MODULE_OPTIONS],
    useFactory: (raw: StreamingModuleOptions & { isGlobal?: boolean }): StreamingOptions => {
      const {
        authenticator: _a,
        backendInstance: _b,
        isGlobal: _g,
        channelAuthorizer: _c,
        channelStore: _s,
        rateLimiter: _r,
        messageRateLimiter: _m,
        contentFilters: _f,
        ...config
      } = raw;
      // The environment (and FORGE_STREAMING_CONFIG_FILE) first, the options given in code over it.
      return resolveStreamingOptions(mergeStreamingInput(loadStreamingConfig(), config));
    },
  },
  {
    provide: STREAMING_AUTHENTICATOR,
    inject: [STREAMING_MODULE_OPTIONS, STREAMING_OPTIONS],
    useFactory: (raw: StreamingModuleOptions, options: StreamingOptions) => {
      if (raw.authenticator) return raw.authenticator;
      const {
        jwtSecret: secret,
        jwtPublicKey,
        jwksUrl,
        jwtAlgorithms: algorithms,
        requireExp,
      } = options.auth;
      if (jwtPublicKey || jwksUrl)
        return new JwtAuthenticator({ publicKey: jwtPublicKey, jwksUrl, algorithms, requireExp });
      if (!secret) {
        // Anonymous mode without a secret: no token can verify, every connection is anonymous.
        if (!options.auth.requireAuth)
          return new JwtAuthenticator({ secret: randomBytes(32).toString('hex'), algorithms, requireExp });
        throw new StreamingConfigError(
          'Invalid streaming configuration: auth.jwtSecret (auth.jwt_secret, FORGE_STREAMING_AUTH_JWT_SECRET or JWT_SECRET) is empty: the bundled JWT authenticator needs a secret (or pass an authenticator, or turn auth.requireAuth off)',
        );
      }
      return new JwtAuthenticator({ secret, algorithms, requireExp });
    },
  },
  {
    provide: STREAMING_RATE_LIMITER,
    inject: [STREAMING_MODULE_OPTIONS, STREAMING_OPTIONS, STREAMING_BACKEND],
    useFactory: (raw: StreamingModuleOptions, options: StreamingOptions, backend: StreamingBackend) =>
      raw.rateLimiter ?? createRateLimiter(options, backend),
  },
  {
    provide: STREAMING_MESSAGE_RATE_LIMITER,
    inject: [STREAMING_MODULE_OPTIONS, STREAMING_OPTIONS, STREAMING_BACKEND],
    useFactory: (raw: StreamingModuleOptions, options: StreamingOptions, backend: StreamingBackend) =>
      raw.messageRateLimiter ?? createMessageRateLimiter(options, backend),
  },
  {
    provide: STREAMING_CONTENT_FILTERS,
    inject: [STREAMING_MODULE_OPTIONS],
    useFactory: (raw: StreamingModuleOptions) => raw.contentFilters ?? [],
  },
];

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
    ...channelProviders,
    FanoutService,
    StreamingAuthService,
    StreamingAuthGuard,
    StreamingRateLimitGuard,
    PresenceService,
    TypingService,
    RoomService,
    HistoryService,
    ModerationService,
    StreamingManager,
    RequestDispatcherService,
    ConnectionLifecycleService,
    NodeRegistryService,
    LoadBalancerService,
    StreamingHealthIndicators,
    StreamingGateway,
    StreamingHandlersExplorer,
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
    HistoryService,
    ModerationService,
    ChannelService,
    StreamingManager,
    StreamingHealthIndicators,
  ],
})
export class StreamingModule extends StreamingConfigurableModule {
  /** The module with its configuration, and the routes of `routes` (SSE only by default). */
  static forRoot(options: typeof STREAMING_OPTIONS_TYPE): DynamicModule {
    return { ...super.forRoot(options), controllers: routeControllers(options.routes) };
  }

  /** As {@link forRoot}, with the configuration from a factory; `routes` stays static. */
  static forRootAsync(options: typeof STREAMING_ASYNC_OPTIONS_TYPE): DynamicModule {
    return { ...super.forRootAsync(options), controllers: routeControllers(options.routes) };
  }
}

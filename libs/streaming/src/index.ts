/**
 * nest-streaming: real-time WebSocket streaming for NestJS.
 * Everything a user needs is exported here by name.
 */
export * from './config';
export { StreamingModule } from './streaming.module';
export {
  STREAMING_MODULE_OPTIONS,
  STREAMING_OPTIONS_TYPE,
  STREAMING_ASYNC_OPTIONS_TYPE,
} from './streaming.module-definition';
export type { StreamingModuleExtras } from './streaming.module-definition';
export type { StreamingRoutesOptions } from './streaming-routes';
export * from './streaming.constants';
export * from './interfaces';
export { LocalBackend } from './backends/local/local.backend';
export { SqlitePersistence } from './backends/local/sqlite-persistence';
export type { LocalPersistence, PersistedRoom } from './backends/local/local-persistence.interface';
export { createStreamingBackend } from './backends/backend.providers';
export { RedisBackend } from './backends/redis/redis.backend';
export { NatsBackend } from './backends/nats/nats.backend';
export type { NatsBackendOptions, NatsStreamingOptions } from './backends/nats/nats.backend';
export type { RedisBackendOptions, RedisClient, RedisStreamingOptions } from './backends/redis/redis.backend';

export { ERROR_CODES, HTTP_STATUS_BY_CODE } from '@nest-streaming/protocol';
export type { ErrorCode } from '@nest-streaming/protocol';
export { StreamingError } from './protocol/streaming-error';
export type { ClientEnvelope, ServerEnvelope } from './protocol/envelope';
export { encodeEnvelope } from './protocol/envelope';
export { decodeFrame, MAX_DATA_DEPTH } from './protocol/codec';
export type { DecodedLine } from './protocol/codec';
export type { WireMessage, WireRoom, WireMember, WirePresence, WireModerationEntry } from './protocol/wire';
export { messageToWire, roomToWire, moderationEntryToWire } from './protocol/wire';
export * from './protocol/requests.dto';

export { Connection } from './connections/connection';
export type { ConnectionIdentity, ConnectionTransport } from './connections/connection';
export { ConnectionRegistry } from './connections/connection-registry';

export { RoomService } from './rooms/room.service';
export type { CreateRoomInput, RoomDetails, RoomJoinedEvent } from './rooms/room.service';
export { ROLE_PERMISSIONS, ROLE_RANK, roleHas, outranks } from './rooms/room-permissions';
export type { RoomPermission } from './rooms/room-permissions';
export { HistoryService, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT } from './history/history.service';
export type { HistoryPage, ResumePlan, ResumeTarget } from './history/history.service';
export { ModerationService, MODERATION_LOG_SIZE } from './moderation/moderation.service';
export type { ModerationAction, ModerationRequest } from './moderation/moderation.service';
export { PresenceService } from './presence/presence.service';
export type { PresenceStatus } from './presence/presence.service';
export { TypingService } from './typing/typing.service';
export * from './channels';
export { StreamingEvents } from './events/streaming-events';
export type {
  StreamingEventMap,
  RoomMessageEvent,
  ChannelMessageEventPayload,
  PresenceEvent,
  TypingEvent,
  ConnectionEvent,
} from './events/streaming-events';
export * from './decorators';
export { StreamingManager } from './streaming-manager.service';
export type { StreamingStatsSnapshot } from './streaming-manager.service';

export type { Authenticator, AuthResult } from './security/authenticator.interface';
export { JwtAuthenticator } from './security/jwt.authenticator';
export { StreamingAuthService } from './security/auth.service';
export { StreamingAuthGuard, StreamingUser } from './security/streaming-auth.guard';
export { StreamingRateLimitGuard } from './security/rate-limit.guard';
export type { StreamingRequest } from './security/streaming-auth.guard';
export { TokenBucketRateLimiter } from './security/rate-limiter';
export type {
  RateLimiter,
  RateLimitDecision,
  ScalableRateLimiter,
  TokenBucketOptions,
} from './security/rate-limiter';
export { BackendCounterStore, MemoryCounterStore } from './security/counter-store';
export {
  SlidingWindowRateLimiter,
  DistributedTokenBucketRateLimiter,
} from './security/sliding-window.rate-limiter';
export { AdaptiveRateLimiter } from './security/adaptive.rate-limiter';
export type { AdaptiveRateLimiterOptions } from './security/adaptive.rate-limiter';
export { MessageRateLimiter } from './security/message-rate-limiter';
export {
  createRateLimiter,
  createMessageRateLimiter,
  createCounterStore,
} from './security/rate-limiter.factory';
export { ContentFilterChain, contentFiltered } from './security/content-filter';
export type { ContentFilter, ContentFilterContext, FilteredContent } from './security/content-filter';
export {
  BannedWordsFilter,
  WhitespaceNormalizer,
  HtmlSanitizer,
  UrlFilter,
} from './security/content-filters';
export type {
  BannedWordsOptions,
  WhitespaceNormalizerOptions,
  HtmlSanitizerOptions,
  UrlFilterOptions,
} from './security/content-filters';
export { MetadataValidator, createMetadataValidator } from './security/message-validation';
export type { MetadataValidatorOptions } from './security/message-validation';
export { streamingHttpsOptions } from './security/tls';
export {
  StreamingExceptionFilter,
  StreamingHttpErrorFilter,
  HTTP_REASONS,
} from './common/streaming-exception.filter';

export { StreamingWsAdapter } from './transports/ws/streaming-ws.adapter';
export { StreamingGateway, STREAMING_WS_PATH } from './transports/ws/streaming.gateway';
export { SseController, envelopeToSse, parseLastEventId } from './transports/sse/sse.controller';
export { LoadBalancerService, consistentPick, leastConnectionsPick } from './cluster/load-balancer.service';
export type { LoadBalancerStrategy, RouteDecision } from './cluster/load-balancer.service';
export { NodeRegistryService } from './cluster/node-registry.service';
export { StreamingMetrics } from './metrics/streaming-metrics.service';

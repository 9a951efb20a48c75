/**
 * `@nest-streaming/streaming`: what a Nest app uses. The module and its
 * options, the services, the handler decorators, the plugin contracts
 * (authenticator, rate limiter, content filter, channel authorizer, backend
 * ports) with their tokens, and the errors. Transport internals stay inside.
 * The Redis and NATS backends are at `@nest-streaming/streaming/redis` and
 * `/nats`; the backend contract suite at `@nest-streaming/streaming/testing`.
 */

// The module and its options.
export { StreamingModule } from './streaming.module';
export type { StreamingModuleExtras } from './streaming.module-definition';
export * from './config';
export { StreamingWsAdapter } from './transports/ws/streaming-ws.adapter';

// Tokens, parameter decorators and plugin contracts.
export * from './streaming.constants';
export * from './interfaces';
export { LocalBackend } from './backends/local/local.backend';
export { SqlitePersistence } from './backends/local/sqlite-persistence';
export type { SqlitePersistenceOptions } from './backends/local/sqlite-persistence';
export type { LocalBackendOptions } from './backends/local/local-rooms';
export type { LocalPersistence, PersistedRoom } from './backends/local/local-persistence.interface';

// Errors.
export { ERROR_CODES, HTTP_STATUS_BY_CODE } from '@nest-streaming/protocol';
export type { ClientEnvelope, ErrorCode, ServerEnvelope } from '@nest-streaming/protocol';
export { StreamingError } from './protocol/streaming-error';
export { StreamingExceptionFilter, StreamingHttpErrorFilter } from './common/streaming-exception.filter';

// Services.
export { StreamingManager } from './streaming-manager.service';
export type { StreamingStatsSnapshot } from './streaming-manager.service';
export { RoomService } from './rooms/room.service';
export { ReadStateService, type ReadStateEvent, type UnreadRoom } from './rooms/read-state.service';
export type { CreateRoomInput, RoomDetails, RoomJoinedEvent } from './rooms/room.service';
export { ROLE_PERMISSIONS, ROLE_RANK, roleHas, outranks } from './rooms/room-permissions';
export type { RoomPermission } from './rooms/room-permissions';
export { HistoryService, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT } from './history/history.service';
export type { HistoryPage } from './history/history.service';
export { ModerationService, MODERATION_LOG_SIZE } from './moderation/moderation.service';
export type { ModerationAction, ModerationRequest } from './moderation/moderation.service';
export { PresenceService } from './presence/presence.service';
export type { PresenceStatus } from './presence/presence.service';
export { TypingService } from './typing/typing.service';
export { StreamingMetricsService } from './metrics/streaming-metrics.service';
export { StreamingHealthIndicators } from './health/streaming-health.indicators';
export type { WireMessage, WireRoom, WireMember, WirePresence, WireModerationEntry } from './protocol/wire';
export { messageToWire, roomToWire, moderationEntryToWire } from './protocol/wire';

// Channels.
export { ChannelService, CHANNEL_MESSAGE_EVENT } from './channels/channel.service';
export type {
  ChannelMessageEvent,
  ChannelStats,
  CreateChannelInput,
  PublishResult,
  SubscribeResult,
  UnsubscribeResult,
} from './channels/channel.service';
export { InMemoryChannelStore } from './channels/channel-store';
export { CreatorOnlyChannelAuthorizer } from './channels/channel-authorizer';
export type { ChannelFilters, FilterScalar } from './channels/channel-filters';
export { userToken } from './channels/channel-bus';

// Events and handler decorators.
export { StreamingEvents } from './events/streaming-events';
export type {
  StreamingEventMap,
  RoomMessageEvent,
  ChannelMessageEventPayload,
  PresenceEvent,
  TypingEvent,
  ConnectionEvent,
  ModerationEvent,
} from './events/streaming-events';
export { SubscribeRoom } from './decorators/subscribe-room.decorator';
export { OnChannel } from './decorators/on-channel.decorator';
export { OnPresence } from './decorators/on-presence.decorator';
export { OnTyping } from './decorators/on-typing.decorator';
export { OnConnect, OnDisconnect } from './decorators/on-connection.decorator';
export { OnModeration } from './decorators/on-moderation.decorator';
export type { StreamingHandlerDecorator } from './decorators/streaming-handler.metadata';

// Hooks: allow, refuse or rewrite requests.
export * from './hooks';
export * from './docs'; // API documents: buildAsyncApiDocument, the OpenAPI security schemes

// Webhooks: events POSTed to other apps, signed.
export { WebhookService, type WebhookBody } from './webhooks/webhook.service';
export { verifyWebhookSignature } from './webhooks/webhook-signature';

// Authentication, rate limits, content filters.
export { JwtAuthenticator } from './security/jwt.authenticator';
export type { JwtAuthenticatorOptions } from './security/jwt.authenticator';
export { StreamingAuthGuard, StreamingUser } from './security/streaming-auth.guard';
export type { StreamingRequest } from './security/streaming-auth.guard';
export { StreamingRateLimitGuard } from './security/rate-limit.guard';
export { ApiKeyGuard } from './security/api-key.guard';
export { TokenBucketRateLimiter } from './security/rate-limiter';
export type { TokenBucketOptions } from './security/rate-limiter';
export { BackendCounterStore, MemoryCounterStore } from './security/counter-store';
export type { MemoryCounterStoreOptions } from './security/counter-store';
export {
  SlidingWindowRateLimiter,
  DistributedTokenBucketRateLimiter,
} from './security/sliding-window.rate-limiter';
export type {
  DistributedTokenBucketOptions,
  PerSecondOptions,
  SlidingWindowOptions,
} from './security/sliding-window.rate-limiter';
export type { RateLimitKeyingOptions } from './security/rate-limiter';
export { AdaptiveRateLimiter } from './security/adaptive.rate-limiter';
export type { AdaptiveRateLimiterOptions } from './security/adaptive.rate-limiter';
export { MessageRateLimiter } from './security/message-rate-limiter';
export type { MessageRateLimiterOptions } from './security/message-rate-limiter';
export { createRateLimiter, createMessageRateLimiter } from './security/rate-limiter.factory';
export type { RateLimiterFactoryOverrides } from './security/rate-limiter.factory';
export { contentFiltered } from './security/content-filter';
export { BannedWordsFilter, WhitespaceNormalizer, HtmlSanitizer, UrlFilter } from './security/filters';
export type {
  BannedWordsOptions,
  WhitespaceNormalizerOptions,
  HtmlSanitizerOptions,
  UrlFilterOptions,
} from './security/filters';
export { MetadataValidator, createMetadataValidator } from './security/message-validation';
export type { MetadataValidatorOptions } from './security/message-validation';
export { streamingHttpsOptions } from './security/tls';
export type {
  ConnectionIdentity,
  ChannelRecord,
  ChannelStore,
  WireChannel,
  ChannelAction,
  ChannelActor,
  ChannelAuthorizer,
  Authenticator,
  AuthResult,
  RateLimiter,
  RateLimitDecision,
  ScalableRateLimiter,
  ContentFilter,
  ContentFilterContext,
  FilteredContent,
} from './interfaces';

// Admin console (`routes.admin`).
export { StreamingAdminGuard } from './admin/admin.guard';
export type {
  AdminConnections,
  AdminModerationEntry,
  AdminNode,
  AdminOverview,
  AdminRoom,
  AdminRooms,
} from './admin/admin-console.types';

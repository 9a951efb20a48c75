export { RedisBackend } from './redis.backend';
export type {
  RedisBackendOptions,
  RedisClient,
  RedisShardedPubSub,
  RedisStreamingOptions,
} from './redis.backend';
export { parseRedisUrl, redactUrl } from './redis-connection';
export type { ParsedRedisUrl } from './redis-connection';

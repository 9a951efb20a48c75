import { StreamingConfigError } from '../../config/streaming-config.error';
import { readStreamingEnv } from '../../config/streaming-env';
import { resolveStreamingOptions } from '../../config/streaming-options.validation';
import { RedisBackend } from './redis.backend';

const errorOf = (fn: () => unknown): StreamingConfigError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof StreamingConfigError) return err;
    throw err;
  }
  throw new Error('did not throw');
};

describe('Redis Cluster options (redis_sharded_pubsub, redis_wait_replicas, redis_wait_timeout)', () => {
  it('default to sharded pub/sub where it applies and no replica wait', () => {
    expect(resolveStreamingOptions({})).toMatchObject({
      redisShardedPubsub: 'auto',
      redisWaitReplicas: 0,
      redisWaitTimeout: 1,
    });
  });

  it('are read from FORGE_STREAMING_* variables', () => {
    expect(
      readStreamingEnv({
        FORGE_STREAMING_REDIS_SHARDED_PUBSUB: 'off',
        FORGE_STREAMING_REDIS_WAIT_REPLICAS: '1',
        FORGE_STREAMING_REDIS_WAIT_TIMEOUT: '0.25',
      }),
    ).toEqual({ redisShardedPubsub: 'off', redisWaitReplicas: 1, redisWaitTimeout: 0.25 });
  });

  it('refuse bad values, naming the key under its three names', () => {
    expect(
      errorOf(() =>
        resolveStreamingOptions({
          redisShardedPubsub: 'yes' as 'on',
          redisWaitReplicas: -1,
          redisWaitTimeout: 0,
        }),
      ).issues,
    ).toEqual([
      'redisShardedPubsub (redis_sharded_pubsub, FORGE_STREAMING_REDIS_SHARDED_PUBSUB) = "yes": must be one of auto, on, off',
      'redisWaitReplicas (redis_wait_replicas, FORGE_STREAMING_REDIS_WAIT_REPLICAS) = -1: must be an integer >= 0',
      'redisWaitTimeout (redis_wait_timeout, FORGE_STREAMING_REDIS_WAIT_TIMEOUT) = 0: must be a positive number',
    ]);
    expect(errorOf(() => readStreamingEnv({ FORGE_STREAMING_REDIS_WAIT_REPLICAS: '1.5' })).message).toBe(
      'FORGE_STREAMING_REDIS_WAIT_REPLICAS="1.5" is not an integer',
    );
  });

  it('reach the backend: fromOptions takes them (seconds to ms) without connecting', async () => {
    const backend = RedisBackend.fromOptions({
      ...resolveStreamingOptions({ redisShardedPubsub: 'off', redisWaitReplicas: 2, redisWaitTimeout: 0.25 }),
      backendUrls: ['redis://127.0.0.1:1'],
    });
    const seen = backend as unknown as {
      shardedMode: string;
      durability: { waitReplicas: number; waitTimeoutMs: number };
    };
    expect(seen.shardedMode).toBe('off');
    expect(seen.durability).toEqual({ waitReplicas: 2, waitTimeoutMs: 250 });
    expect(backend.shardedPubSub).toBe(false); // decided at connect
    await backend.close();
  });
});

import type { StreamingModuleOptions } from '@nest-streaming/streaming';
import { startStreamingApp, type TestApp } from './app';
import { startNatsServer, type NatsServerHandle } from './nats-server';
import { startRedisServer, type RedisServerHandle } from './redis-server';

/** A backend that nodes share: a real redis-server, or a nats-server with JetStream. */
export type SharedBackend = 'redis' | 'nats';

export interface BackendNodes {
  /** The backend's options for a node: `backend` and `backendUrls`. */
  backendOptions: () => Partial<StreamingModuleOptions>;
  /**
   * Two bare StreamingModule apps (`startStreamingApp`) on the backend, with
   * node ids no other call uses: `base` with `options` over it.
   */
  twoNodes: (options?: Partial<StreamingModuleOptions>) => Promise<[TestApp, TestApp]>;
}

/**
 * For the `describe` block it is called in: starts the server of `kind`
 * before its tests and stops it after them. The apps `twoNodes` starts are
 * pushed to `apps`, which the spec closes after each test.
 */
export function backendNodes(
  kind: SharedBackend,
  base: StreamingModuleOptions,
  apps: TestApp[],
  idPrefix = 'node',
): BackendNodes {
  let redis: RedisServerHandle | undefined;
  let nats: NatsServerHandle | undefined;
  let run = 0;

  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
    else nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    await redis?.dispose();
    await nats?.dispose();
  });

  const backendOptions = (): Partial<StreamingModuleOptions> =>
    kind === 'redis'
      ? { backend: 'redis', backendUrls: [redis!.url] }
      : { backend: 'nats', backendUrls: [nats!.url] };

  return {
    backendOptions,
    twoNodes: async (options = {}) => {
      const prefix = `${idPrefix}${++run}-${Date.now()}`;
      const start = async (nodeId: string): Promise<TestApp> => {
        const t = await startStreamingApp({ ...base, nodeId, ...backendOptions(), ...options });
        apps.push(t);
        return t;
      };
      return [await start(`${prefix}-a`), await start(`${prefix}-b`)];
    },
  };
}

import { StreamingLogger } from '../common/streaming-logger';
import { tracedBackend } from '../common/tracing';
import { Inject, Injectable, OnApplicationShutdown, OnModuleInit, Provider } from '@nestjs/common';
import { StreamingModuleOptions, StreamingOptions } from '../config/streaming-options.interface';
import { StreamingConfigError } from '../config/streaming-config.error';
import { LocalBackend } from './local/local.backend';
import { SqlitePersistence } from './local/sqlite-persistence';
import { RedisBackend } from './redis/redis.backend';
import { NatsBackend } from './nats/nats.backend';
import {
  STREAMING_BACKEND,
  STREAMING_BROKER,
  STREAMING_COUNTER_STORE,
  STREAMING_MODULE_OPTIONS,
  STREAMING_NODE_DIRECTORY,
  STREAMING_OPTIONS,
  STREAMING_PRESENCE_STORE,
  STREAMING_READ_STATE_STORE,
  STREAMING_ROOM_STORE,
} from '../streaming.constants';
import { createCounterStore } from '../security/rate-limiter.factory';
import { StreamingBackend } from '../interfaces';

/** Build the backend the options ask for. */
export function createStreamingBackend(options: StreamingOptions): StreamingBackend {
  switch (options.backend) {
    case 'local':
      return new LocalBackend(
        options.historyStore === 'sqlite' ? new SqlitePersistence(options.historyPath) : undefined,
        { cacheEntries: options.historyCacheEntries },
      );
    case 'redis':
      return RedisBackend.fromOptions(options, {
        onError: (err: unknown) =>
          new StreamingLogger('streaming.backend').warn(
            `redis: ${err instanceof Error ? err.message : String(err)}`,
          ),
      });
    case 'nats':
      return NatsBackend.fromOptions(options, {
        onError: (err: unknown) =>
          new StreamingLogger('streaming.backend').warn(
            `nats: ${err instanceof Error ? err.message : String(err)}`,
          ),
      });
    default:
      throw new StreamingConfigError(
        `Invalid streaming configuration: backend (backend, FORGE_STREAMING_BACKEND) = "${String(options.backend)}": this build supports "local", "redis" and "nats"`,
      );
  }
}

/** Whether the module built the backend itself (then it also closes it). */
const OWNS_BACKEND = Symbol('OWNS_BACKEND');

export const backendProviders: Provider[] = [
  {
    provide: OWNS_BACKEND,
    inject: [STREAMING_MODULE_OPTIONS],
    useFactory: (raw: StreamingModuleOptions) => !raw.backendInstance,
  },
  {
    provide: STREAMING_BACKEND,
    inject: [STREAMING_MODULE_OPTIONS, STREAMING_OPTIONS],
    useFactory: (raw: StreamingModuleOptions, options: StreamingOptions) => {
      const backend = raw.backendInstance ?? createStreamingBackend(options);
      return tracedBackend(backend, backend.kind);
    },
  },
  // Each port is the one backend; services inject only the ports they use.
  { provide: STREAMING_BROKER, useExisting: STREAMING_BACKEND },
  { provide: STREAMING_ROOM_STORE, useExisting: STREAMING_BACKEND },
  { provide: STREAMING_PRESENCE_STORE, useExisting: STREAMING_BACKEND },
  { provide: STREAMING_NODE_DIRECTORY, useExisting: STREAMING_BACKEND },
  { provide: STREAMING_READ_STATE_STORE, useExisting: STREAMING_BACKEND },
  {
    provide: STREAMING_COUNTER_STORE,
    inject: [STREAMING_BACKEND],
    useFactory: (backend: StreamingBackend) => createCounterStore(backend),
  },
];

/** Connects the backend at start-up and closes it (if the module created it) at shutdown. */
@Injectable()
export class BackendLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(
    @Inject(STREAMING_BACKEND) private readonly backend: StreamingBackend,
    @Inject(OWNS_BACKEND) private readonly owns: boolean,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.backend.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.owns) await this.backend.close();
  }
}

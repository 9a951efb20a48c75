import { randomBytes } from 'node:crypto';
import { Provider } from '@nestjs/common';
import { StreamingConfigError } from './config/streaming-config.error';
import { loadStreamingConfig } from './config/streaming-config.loader';
import { StreamingModuleOptions, StreamingOptions } from './config/streaming-options.interface';
import { mergeStreamingInput, resolveStreamingOptions } from './config/streaming-options.validation';
import { CounterStore, StreamingBackend } from './interfaces';
import { JwtAuthenticator } from './security/jwt.authenticator';
import { configureStreamingLogs, parseLogLevels } from './common/streaming-logger';
import { createMessageRateLimiter, createRateLimiter } from './security/rate-limiter.factory';
import {
  STREAMING_AUTHENTICATOR,
  STREAMING_BACKEND,
  STREAMING_COUNTER_STORE,
  STREAMING_CONTENT_FILTERS,
  STREAMING_MESSAGE_RATE_LIMITER,
  STREAMING_MODULE_OPTIONS,
  STREAMING_OPTIONS,
  STREAMING_RATE_LIMITER,
} from './streaming.constants';

/**
 * The option factories of `StreamingModule`: the resolved options (environment
 * first, code over it, validated), and the pluggable parts built from them
 * unless the module options pass their own (authenticator, rate limiters,
 * content filters).
 */
export const optionsProviders: Provider[] = [
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
      const options = resolveStreamingOptions(mergeStreamingInput(loadStreamingConfig(), config));
      configureStreamingLogs({
        level: options.logLevel,
        levels: parseLogLevels(options.logLevels),
        format: options.logFormat,
        nodeId: options.nodeId,
      });
      return options;
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
    inject: [STREAMING_MODULE_OPTIONS, STREAMING_OPTIONS, STREAMING_BACKEND, STREAMING_COUNTER_STORE],
    useFactory: (
      raw: StreamingModuleOptions,
      options: StreamingOptions,
      backend: StreamingBackend,
      counters: CounterStore,
    ) =>
      raw.rateLimiter ??
      createRateLimiter(options, backend, { store: counters, shared: backend.distributed }),
  },
  {
    provide: STREAMING_MESSAGE_RATE_LIMITER,
    inject: [STREAMING_MODULE_OPTIONS, STREAMING_OPTIONS, STREAMING_BACKEND, STREAMING_COUNTER_STORE],
    useFactory: (
      raw: StreamingModuleOptions,
      options: StreamingOptions,
      backend: StreamingBackend,
      counters: CounterStore,
    ) => raw.messageRateLimiter ?? createMessageRateLimiter(options, backend, { store: counters }),
  },
  {
    provide: STREAMING_CONTENT_FILTERS,
    inject: [STREAMING_MODULE_OPTIONS],
    useFactory: (raw: StreamingModuleOptions) => raw.contentFilters ?? [],
  },
];

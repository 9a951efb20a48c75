export { StreamingConfigError } from './streaming-config.error';
export { loadStreamingConfig, streamingConfig } from './streaming-config.loader';
export { defaultStreamingOptions } from './streaming-defaults';
export { readStreamingEnv } from './streaming-env';
export { resolveStreamingOptions } from './streaming-options.validation';
export { readStreamingYaml } from './streaming-yaml';
export type {
  ChannelModuleOptions,
  StreamingRoutesOptions,
  AuthOptions,
  BackendKind,
  RateLimitAlgorithm,
  RateLimitOptions,
  StreamingModuleOptions,
  StreamingOptions,
  StreamingOptionsInput,
} from './streaming-options.interface';

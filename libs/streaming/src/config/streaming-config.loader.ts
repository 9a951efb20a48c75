import { registerAs } from '@nestjs/config';
import { CONFIG_FILE_ENV, readStreamingEnv } from './streaming-env';
import type { StreamingOptionsInput } from './streaming-options.interface';
import { mergeStreamingInput } from './streaming-options.validation';
import { readStreamingYaml } from './streaming-yaml';

/**
 * Reads the streaming configuration: the YAML file (`file`, else env
 * `FORGE_STREAMING_CONFIG_FILE`, else none) overlaid by `FORGE_STREAMING_*`
 * variables (env wins; `rateLimit` and `auth` merged key by key).
 * The result is unvalidated input for {@link resolveStreamingOptions}.
 */
export function loadStreamingConfig({
  env = process.env,
  file,
}: { env?: NodeJS.ProcessEnv; file?: string } = {}): StreamingOptionsInput {
  const path = file ?? (env[CONFIG_FILE_ENV] || undefined);
  return mergeStreamingInput(path ? readStreamingYaml(path) : {}, readStreamingEnv(env));
}

/**
 * `@nestjs/config` namespace `streaming`: use with `ConfigModule.forFeature(streamingConfig)`
 * and `StreamingModule.forRootAsync({ inject: [streamingConfig.KEY], useFactory: (c) => c })`.
 */
export const streamingConfig = registerAs('streaming', () => loadStreamingConfig());

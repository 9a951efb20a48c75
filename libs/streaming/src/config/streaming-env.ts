import { StreamingConfigError } from './streaming-config.error';
import type { StreamingOptionsInput } from './streaming-options.interface';

/** How an option's textual value (env variable, YAML string) is converted. */
export type OptionKind = 'string' | 'number' | 'integer' | 'boolean' | 'list' | 'enum';

/** One configuration key, under its three names. */
export interface OptionDescriptor {
  /** YAML name, nested keys joined with `.`: `rate_limit.burst_size`. */
  snake: string;
  /** Option path, camelCased: `rateLimit.burstSize`. */
  path: string;
  /** Environment variable: `FORGE_STREAMING_RATE_LIMIT_BURST_SIZE`. */
  env: string;
  kind: OptionKind;
  /** Allowed values of an `enum`. */
  values?: readonly string[];
  /** A second variable read when {@link env} is unset or empty (`JWT_SECRET`). */
  fallbackEnv?: string;
  /** Never shown in messages (the value of a secret or password). */
  secret?: boolean;
}

/** Accepted `backend` values. */
export const BACKEND_KINDS = ['local', 'redis', 'nats'] as const;
/** Accepted `redis_sharded_pubsub` values. */
export const REDIS_SHARDED_PUBSUB_MODES = ['auto', 'on', 'off'] as const;
/** Accepted `history_store` values. */
export const HISTORY_STORES = ['memory', 'sqlite'] as const;
/** Accepted `load_balancer` values. */
export const LOAD_BALANCERS = ['consistent_hash', 'least_connections', 'round_robin', 'geographic'] as const;
/** Events a webhook can carry (`webhook_events`). */
export const WEBHOOK_EVENTS = ['connect', 'disconnect', 'room_message', 'presence'] as const;
/** Accepted `log_level` values (Nest's levels). */
export const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
/** Accepted `log_format` values. */
export const LOG_FORMATS = ['text', 'json'] as const;
/** Accepted `rate_limit.algorithm` values. */
export const RATE_LIMIT_ALGORITHMS = ['token_bucket', 'sliding_window', 'adaptive'] as const;
/** Accepted `auth.jwt_algorithms` entries. */
export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
] as const;

/** Env variable prefix. */
export const ENV_PREFIX = 'FORGE_STREAMING_';
/** Env variable naming a YAML file to read before the environment. */
export const CONFIG_FILE_ENV = 'FORGE_STREAMING_CONFIG_FILE';

const camel = (snake: string): string => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

const describe = (
  snake: string,
  kind: OptionKind,
  values?: readonly string[],
  extra: Pick<OptionDescriptor, 'fallbackEnv' | 'secret'> = {},
): OptionDescriptor => ({
  snake,
  path: camel(snake),
  env: ENV_PREFIX + snake.replace(/\./g, '_').toUpperCase(),
  kind,
  values,
  ...extra,
});

/** Every option of {@link StreamingOptions}: the single source for env, YAML and validation messages. */
export const STREAMING_OPTION_TABLE: readonly OptionDescriptor[] = [
  describe('backend', 'enum', BACKEND_KINDS),
  describe('backend_urls', 'list'),
  describe('backend_username', 'string'),
  describe('backend_password', 'string', undefined, { secret: true }),
  describe('redis_sharded_pubsub', 'enum', REDIS_SHARDED_PUBSUB_MODES),
  describe('redis_wait_replicas', 'integer'),
  describe('redis_wait_timeout', 'number'),
  ...['rooms', 'channels', 'presence', 'typing_indicators', 'message_history', 'distributed'].map((f) =>
    describe(`enable_${f}`, 'boolean'),
  ),
  describe('max_connections_per_user', 'integer'),
  describe('max_rooms_per_user', 'integer'),
  describe('max_rooms_owned_per_user', 'integer'),
  describe('empty_room_ttl', 'number'),
  describe('max_channels_per_user', 'integer'),
  describe('max_message_size', 'integer'),
  describe('max_messages_per_second', 'integer'),
  describe('ping_interval', 'number'),
  describe('pong_timeout', 'number'),
  describe('write_timeout', 'number'),
  describe('read_timeout', 'number'),
  describe('presence_timeout', 'number'),
  describe('presence_cleanup', 'number'),
  describe('typing_timeout', 'number'),
  describe('typing_cleanup', 'number'),
  describe('max_typing_users_per_room', 'integer'),
  describe('message_retention', 'number'),
  describe('max_history_messages', 'integer'),
  describe('max_message_versions', 'integer'),
  describe('max_reactions_per_message', 'integer'),
  describe('node_id', 'string'),
  describe('heartbeat_interval', 'number'),
  describe('node_timeout', 'number'),
  describe('tls_enabled', 'boolean'),
  describe('tls_cert_file', 'string'),
  describe('tls_key_file', 'string'),
  describe('tls_ca_file', 'string'),
  describe('send_queue_size', 'integer'),
  describe('send_queue_bytes', 'integer'),
  describe('history_store', 'enum', HISTORY_STORES),
  describe('max_connections', 'integer'),
  describe('max_anonymous_connections', 'integer'),
  describe('auth.jwt_public_key', 'string'),
  describe('auth.jwks_url', 'string'),
  describe('history_path', 'string'),
  describe('history_cache_entries', 'integer'),
  describe('load_balancer', 'enum', LOAD_BALANCERS),
  describe('region', 'string'),
  describe('advertise_url', 'string'),
  describe('ws_path', 'string'),
  describe('api_key', 'list', undefined, { secret: true }),
  describe('hook_timeout', 'number'),
  describe('admin_role', 'string'),
  describe('webhook_urls', 'list'),
  describe('webhook_secret', 'string', undefined, { secret: true }),
  describe('webhook_events', 'list'),
  describe('webhook_queue_size', 'integer'),
  describe('webhook_max_attempts', 'integer'),
  describe('webhook_timeout', 'number'),
  describe('log_level', 'enum', LOG_LEVELS),
  describe('log_levels', 'list'),
  describe('log_format', 'enum', LOG_FORMATS),
  describe('rate_limit.enabled', 'boolean'),
  describe('rate_limit.algorithm', 'enum', RATE_LIMIT_ALGORITHMS),
  describe('rate_limit.requests_per_second', 'number'),
  describe('rate_limit.burst_size', 'integer'),
  describe('rate_limit.per_connection', 'boolean'),
  describe('auth.require_auth', 'boolean'),
  describe('auth.token_header', 'string'),
  describe('auth.validate_on_connect', 'boolean'),
  describe('auth.validate_on_message', 'boolean'),
  describe('auth.require_exp', 'boolean'),
  describe('auth.jwt_secret', 'string', undefined, { fallbackEnv: 'JWT_SECRET', secret: true }),
  describe('auth.jwt_algorithms', 'list'),
];

/** Option groups nested one level deep (`rateLimit`, `auth`), by camel and snake name. */
export const NESTED_GROUPS: Readonly<Record<string, string>> = { rateLimit: 'rate_limit', auth: 'auth' };

/** Descriptor for a camel path (`rateLimit.burstSize`), if any. */
export const descriptorByPath = (path: string): OptionDescriptor | undefined =>
  STREAMING_OPTION_TABLE.find((d) => d.path === path);

const BOOLEANS: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

/**
 * Converts a textual value for `d`. Empty text means "unset" for scalar
 * non-string kinds; lists split on commas. Returns `{ error }` (e.g.
 * `is not a number`) when the text cannot be converted.
 */
export function parseOptionText(d: OptionDescriptor, text: string): { value?: unknown; error?: string } {
  const t = text.trim();
  switch (d.kind) {
    case 'string':
      return { value: text };
    case 'list':
      return {
        value: t
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      };
    case 'enum':
      return { value: t || undefined };
    case 'boolean':
      if (!t) return {};
      return t.toLowerCase() in BOOLEANS
        ? { value: BOOLEANS[t.toLowerCase()] }
        : { error: 'is not a boolean (true/false/1/0/yes/no)' };
    case 'number':
    case 'integer': {
      if (!t) return {};
      const n = Number(t);
      if (!Number.isFinite(n)) return { error: 'is not a number' };
      return d.kind === 'integer' && !Number.isInteger(n) ? { error: 'is not an integer' } : { value: n };
    }
  }
}

/** Sets `value` at a camel path (one level of nesting) in `target`, unless undefined. */
export function setOptionPath(target: Record<string, unknown>, path: string, value: unknown): void {
  if (value === undefined) return;
  const [head, leaf] = path.split('.');
  if (leaf === undefined) target[head] = value;
  else target[head] = { ...(target[head] as Record<string, unknown> | undefined), [leaf]: value };
}

/**
 * Reads every `FORGE_STREAMING_<SNAKE_KEY>` variable of `env` into options.
 * Booleans accept true/false/1/0/yes/no (any case), lists are comma separated,
 * empty values of number/boolean/enum options count as unset.
 * `auth.jwtSecret` falls back to `JWT_SECRET` (a descriptor's `fallbackEnv`).
 * Unknown variables are ignored.
 * @throws StreamingConfigError naming each variable and value that cannot be converted.
 */
export function readStreamingEnv(env: NodeJS.ProcessEnv): StreamingOptionsInput {
  const out: Record<string, unknown> = {};
  const issues: string[] = [];
  for (const d of STREAMING_OPTION_TABLE) {
    let raw = env[d.env];
    if (!raw && d.fallbackEnv) raw = env[d.fallbackEnv];
    if (raw === undefined) continue;
    const { value, error } = parseOptionText(d, raw);
    if (error) issues.push(`${d.env}=${JSON.stringify(raw)} ${error}`);
    else setOptionPath(out, d.path, value);
  }
  if (issues.length) throw new StreamingConfigError(issues.join('; '), issues);
  return out;
}

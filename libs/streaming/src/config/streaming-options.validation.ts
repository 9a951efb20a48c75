import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { plainToInstance, Type } from 'class-transformer';
import {
  ArrayNotEmpty,
  IsArray,
  Matches,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsPositive,
  IsString,
  Min,
  MinLength,
  ValidateBy,
  ValidateNested,
  validateSync,
  ValidationError,
  ValidationOptions,
} from 'class-validator';
import { hsSecretProblem, jwksUrlProblem } from '../security/jwt-key-rules';
import { StreamingConfigError } from './streaming-config.error';
import { defaultStreamingOptions } from './streaming-defaults';
import {
  BACKEND_KINDS,
  HISTORY_STORES,
  LOAD_BALANCERS,
  descriptorByPath,
  JWT_ALGORITHMS,
  LOG_FORMATS,
  LOG_LEVELS,
  WEBHOOK_EVENTS,
  NESTED_GROUPS,
  RATE_LIMIT_ALGORITHMS,
  REDIS_SHARDED_PUBSUB_MODES,
} from './streaming-env';
import type {
  BackendKind,
  RateLimitAlgorithm,
  StreamingOptions,
  StreamingOptionsInput,
} from './streaming-options.interface';

type Decorator = (target: object, key: string) => void;
type Check = (o: ValidationOptions) => Decorator;

/** Several class-validator checks sharing one message. */
const rule =
  (message: string, ...checks: Check[]): Decorator =>
  (target, key) =>
    checks.forEach((c) => c({ message })(target, key));

const Bool = () => rule('must be a boolean', IsBoolean);
const Str = () => rule('must be a string', IsString);
const NonEmptyStr = () => rule('must be a non-empty string', IsString, (o) => MinLength(1, o));
const OneOf = (values: readonly string[]) =>
  rule(`must be one of ${values.join(', ')}`, (o) => IsIn([...values], o));
const IntAtLeast = (min: number) =>
  rule(min === 1 ? 'must be a positive integer' : `must be an integer >= ${min}`, IsInt, (o) => Min(min, o));
const PositiveInt = () => IntAtLeast(1);
const PositiveNumber = () =>
  rule(
    'must be a positive number',
    (o) => IsNumber({ allowNaN: false, allowInfinity: false }, o),
    IsPositive,
  );
const NonNegativeNumber = () =>
  rule(
    'must be a number >= 0',
    (o) => IsNumber({ allowNaN: false, allowInfinity: false }, o),
    (o) => Min(0, o),
  );
const StrList = () => rule('must be an array of strings', IsArray, (o) => IsString({ ...o, each: true }));
const Nested = () => rule('must be an object', IsObject, ValidateNested);
const RequiredWhenTls = () =>
  rule('is required when tlsEnabled is true', (o) =>
    ValidateBy(
      {
        name: 'requiredWhenTls',
        validator: {
          validate: (v, args) =>
            (args?.object as { tlsEnabled?: unknown }).tlsEnabled !== true ||
            (typeof v === 'string' && v.trim() !== ''),
        },
      },
      o,
    ),
  );

/** A non-empty string must pass `problem` (which says what is wrong); other values are left to other checks. */
const NoProblem =
  (name: string, problem: (v: string) => string | undefined): Decorator =>
  (target, key) =>
    ValidateBy({
      name,
      validator: {
        validate: (v) => typeof v !== 'string' || v === '' || problem(v) === undefined,
        defaultMessage: (args) => problem(String(args?.value)) ?? '',
      },
    })(target, key);

class RateLimitDto {
  @Bool() enabled!: boolean;
  @OneOf(RATE_LIMIT_ALGORITHMS) algorithm!: RateLimitAlgorithm;
  @PositiveNumber() requestsPerSecond!: number;
  @PositiveInt() burstSize!: number;
  @Bool() perConnection!: boolean;
}

class AuthDto {
  @Bool() requireAuth!: boolean;
  @NonEmptyStr() tokenHeader!: string;
  @Bool() validateOnConnect!: boolean;
  @Bool() validateOnMessage!: boolean;
  @Bool() requireExp!: boolean;
  @IsOptional() @Str() @NoProblem('hsSecretLength', hsSecretProblem) jwtSecret?: string;
  @IsOptional() @Str() jwtPublicKey?: string;
  @IsOptional() @Str() @NoProblem('jwksUrl', jwksUrlProblem) jwksUrl?: string;
  @rule(`must be a non-empty array of ${JWT_ALGORITHMS.join(', ')}`, IsArray, ArrayNotEmpty, (o) =>
    IsIn([...JWT_ALGORITHMS], { ...o, each: true }),
  )
  jwtAlgorithms!: string[];
}

class StreamingOptionsDto {
  @OneOf(BACKEND_KINDS) backend!: BackendKind;
  @StrList() backendUrls!: string[];
  @Str() backendUsername!: string;
  @Str() backendPassword!: string;
  @OneOf(REDIS_SHARDED_PUBSUB_MODES) redisShardedPubsub!: (typeof REDIS_SHARDED_PUBSUB_MODES)[number];
  @IntAtLeast(0) redisWaitReplicas!: number;
  @PositiveNumber() redisWaitTimeout!: number;
  @Bool() enableRooms!: boolean;
  @Bool() enableChannels!: boolean;
  @Bool() enablePresence!: boolean;
  @Bool() enableTypingIndicators!: boolean;
  @Bool() enableMessageHistory!: boolean;
  @Bool() enableDistributed!: boolean;
  @PositiveInt() maxConnectionsPerUser!: number;
  @PositiveInt() maxRoomsPerUser!: number;
  @PositiveInt() maxRoomsOwnedPerUser!: number;
  @NonNegativeNumber() emptyRoomTtl!: number;
  @PositiveInt() maxChannelsPerUser!: number;
  @IntAtLeast(64) maxMessageSize!: number;
  @IntAtLeast(0) maxConnections!: number;
  @IntAtLeast(0) maxAnonymousConnections!: number;
  @PositiveInt() maxMessagesPerSecond!: number;
  @PositiveNumber() pingInterval!: number;
  @PositiveNumber() pongTimeout!: number;
  @PositiveNumber() writeTimeout!: number;
  @PositiveNumber() readTimeout!: number;
  @PositiveNumber() presenceTimeout!: number;
  @PositiveNumber() presenceCleanup!: number;
  @PositiveNumber() typingTimeout!: number;
  @PositiveNumber() typingCleanup!: number;
  @PositiveInt() maxTypingUsersPerRoom!: number;
  @PositiveNumber() messageRetention!: number;
  @PositiveInt() maxHistoryMessages!: number;
  @PositiveInt() maxMessageVersions!: number;
  @PositiveInt() maxReactionsPerMessage!: number;
  @Str() nodeId!: string;
  @PositiveNumber() heartbeatInterval!: number;
  @PositiveNumber() nodeTimeout!: number;
  @Bool() tlsEnabled!: boolean;
  @Str() @RequiredWhenTls() tlsCertFile!: string;
  @Str() @RequiredWhenTls() tlsKeyFile!: string;
  @Str() tlsCaFile!: string;
  @Nested() @Type(() => RateLimitDto) rateLimit!: RateLimitDto;
  @Nested() @Type(() => AuthDto) auth!: AuthDto;
  @PositiveInt() sendQueueSize!: number;
  @IntAtLeast(0) sendQueueBytes!: number;
  @OneOf(HISTORY_STORES) historyStore!: 'memory' | 'sqlite';
  @Str() historyPath!: string;
  @IntAtLeast(0) historyCacheEntries!: number;
  @OneOf(LOAD_BALANCERS) loadBalancer!:
    'consistent_hash' | 'least_connections' | 'round_robin' | 'geographic';
  @Str() region!: string;
  @Str() advertiseUrl!: string;
  @Matches(/^\/[A-Za-z0-9_\-./~]*$/, { message: 'must be a path starting with /' }) wsPath!: string;
  @rule('must be an array of keys of at least 16 characters', IsArray, (o) =>
    MinLength(16, { ...o, each: true }),
  )
  apiKey!: string[];
  @PositiveNumber() hookTimeout!: number;
  @rule('must be a non-empty string', IsString, (o) => MinLength(1, o)) adminRole!: string;
  @rule('must be an array of http(s) URLs', IsArray, (o) => Matches(/^https?:\/\/\S+$/, { ...o, each: true }))
  webhookUrls!: string[];
  @rule('must be at least 16 characters when webhookUrls is set', (o) =>
    ValidateBy(
      {
        name: 'webhookSecret',
        validator: {
          validate: (v, args) =>
            ((args?.object as { webhookUrls?: unknown[] }).webhookUrls ?? []).length === 0 ||
            (typeof v === 'string' && v.length >= 16),
        },
      },
      o,
    ),
  )
  webhookSecret!: string;
  @rule(`must be an array of ${WEBHOOK_EVENTS.join(', ')}`, IsArray, (o) =>
    IsIn([...WEBHOOK_EVENTS], { ...o, each: true }),
  )
  webhookEvents!: Array<(typeof WEBHOOK_EVENTS)[number]>;
  @PositiveInt() webhookQueueSize!: number;
  @PositiveInt() webhookMaxAttempts!: number;
  @PositiveNumber() webhookTimeout!: number;
  @OneOf(LOG_LEVELS) logLevel!: (typeof LOG_LEVELS)[number];
  @rule(`must be an array of <logger>=<level> (levels: ${LOG_LEVELS.join(', ')})`, IsArray, (o) =>
    Matches(new RegExp(`^[A-Za-z0-9_.\\-]+=(${LOG_LEVELS.join('|')})$`), { ...o, each: true }),
  )
  logLevels!: string[];
  @OneOf(LOG_FORMATS) logFormat!: (typeof LOG_FORMATS)[number];
}

/** Module options that are not configuration; ignored by {@link resolveStreamingOptions}. */
const PASS_THROUGH = new Set([
  'authenticator',
  'backendInstance',
  'isGlobal',
  'channelAuthorizer',
  'channelStore',
  'rateLimiter',
  'messageRateLimiter',
  'contentFilters',
]);

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * Overlays option layers left to right: later layers win, `undefined` never
 * overrides, `rateLimit` and `auth` are merged key by key.
 */
export function mergeStreamingInput<T extends StreamingOptionsInput>(
  base: T,
  ...layers: StreamingOptionsInput[]
): T {
  const out: Record<string, unknown> = { ...base };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(defined(layer))) {
      out[k] = k in NESTED_GROUPS && isMap(v) ? { ...(isMap(out[k]) ? out[k] : {}), ...defined(v) } : v;
    }
  }
  return out as T;
}

const json = (v: unknown): string => {
  try {
    return (typeof v === 'number' && !Number.isFinite(v)) || v === undefined ? String(v) : JSON.stringify(v);
  } catch {
    return String(v);
  }
};

/**
 * `maxMessageSize (max_message_size, FORGE_STREAMING_MAX_MESSAGE_SIZE)` for a camel path
 * (`... or JWT_SECRET` where a second variable is read).
 */
const label = (path: string): string => {
  const d = descriptorByPath(path);
  if (d) return `${path} (${d.snake}, ${d.env}${d.fallbackEnv ? ` or ${d.fallbackEnv}` : ''})`;
  return path in NESTED_GROUPS ? `${path} (${NESTED_GROUPS[path]})` : path;
};

const flatten = (errors: ValidationError[], prefix = ''): string[] =>
  errors.flatMap((e) => {
    const path = prefix + e.property;
    const shown = descriptorByPath(path)?.secret ? '<hidden>' : json(e.value);
    const own = e.constraints
      ? [`${label(path)} = ${shown}: ${[...new Set(Object.values(e.constraints))].join('; ')}`]
      : [];
    return [...own, ...flatten(e.children ?? [], `${path}.`)];
  });

const unknownKeys = (input: Record<string, unknown>): string[] =>
  Object.entries(input).flatMap(([k, v]) => {
    if (PASS_THROUGH.has(k) || descriptorByPath(k)) return [];
    if (!(k in NESTED_GROUPS)) return [`${k} = ${json(v)}: is not a known option`];
    return isMap(v)
      ? unknownKeys(Object.fromEntries(Object.entries(v).map(([s, x]) => [`${k}.${s}`, x])))
      : [];
  });

/**
 * Merges `input` over {@link defaultStreamingOptions} (nested groups key by
 * key, `undefined` ignored), validates the result and fills an empty `nodeId`
 * with `node-<hostname>-<6 hex>`. `authenticator`, `backendInstance` and
 * `isGlobal` are ignored.
 * @throws StreamingConfigError starting `Invalid streaming configuration:` that
 * lists every bad or unknown key with its names and value.
 */
export function resolveStreamingOptions(input: StreamingOptionsInput = {}): StreamingOptions {
  const own = Object.fromEntries(Object.entries(input).filter(([k]) => !PASS_THROUGH.has(k)));
  const merged = mergeStreamingInput(defaultStreamingOptions(), own);
  const issues = [
    ...unknownKeys(own),
    ...flatten(validateSync(plainToInstance(StreamingOptionsDto, merged))),
  ];
  if (issues.length) {
    throw new StreamingConfigError(`Invalid streaming configuration:\n  - ${issues.join('\n  - ')}`, issues);
  }
  if (!merged.nodeId.trim()) merged.nodeId = `node-${hostname()}-${randomBytes(3).toString('hex')}`;
  return merged;
}

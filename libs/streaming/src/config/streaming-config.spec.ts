import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultStreamingOptions,
  loadStreamingConfig,
  readStreamingEnv,
  readStreamingYaml,
  resolveStreamingOptions,
  streamingConfig,
  StreamingConfigError,
} from './index';
import { STREAMING_OPTION_TABLE } from './streaming-env';

/** The seed's YAML block, verbatim. */
const SEED_YAML = `
extensions:
  streaming:
    backend: "redis"
    backend_urls:
      - "redis://localhost:6379"
    backend_username: ""
    backend_password: ""
    enable_rooms: true
    enable_channels: true
    enable_presence: true
    enable_typing_indicators: true
    enable_message_history: true
    enable_distributed: true
    max_connections_per_user: 5
    max_rooms_per_user: 50
    max_channels_per_user: 100
    max_message_size: 65536             # 64KB
    max_messages_per_second: 100
    ping_interval: 30
    pong_timeout: 10
    write_timeout: 10
    read_timeout: 60
    presence_timeout: 300
    presence_cleanup: 60
    typing_timeout: 5
    typing_cleanup: 10
    max_typing_users_per_room: 10
    message_retention: 720
    max_history_messages: 1000
    node_id: "node-1"
    tls_enabled: false
    tls_cert_file: ""
    tls_key_file: ""
    tls_ca_file: ""
    rate_limit:
      enabled: true
      algorithm: "token_bucket"
      requests_per_second: 10
      burst_size: 20
    auth:
      require_auth: true
      token_header: "Authorization"
      validate_on_connect: true
      validate_on_message: false
`;

/** HS secrets of the minimum length (32 bytes). */
const SECRET_A = 'a'.repeat(32);
const SECRET_B = 'b'.repeat(32);

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'streaming-config-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const yamlFile = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const errorOf = (fn: () => unknown): StreamingConfigError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StreamingConfigError);
    return e as StreamingConfigError;
  }
  throw new Error('expected a StreamingConfigError');
};

describe('defaults', () => {
  it('equal the seed (backend local, no URLs, generated node id) plus cluster/queue/JWT extras', () => {
    const seed = readStreamingYaml(yamlFile('seed.yaml', SEED_YAML));
    const { rateLimit, auth, ...rest } = defaultStreamingOptions();
    expect({ ...rest, backend: 'redis', backendUrls: ['redis://localhost:6379'], nodeId: 'node-1' }).toEqual({
      ...seed,
      rateLimit: undefined,
      auth: undefined,
      heartbeatInterval: 10,
      nodeTimeout: 30,
      redisShardedPubsub: 'auto',
      redisWaitReplicas: 0,
      redisWaitTimeout: 1,
      sendQueueSize: 1024,
      sendQueueBytes: 0,
      maxMessageVersions: 20,
      maxRoomsOwnedPerUser: 50,
      emptyRoomTtl: 24,
      maxReactionsPerMessage: 50,
      maxConnections: 0,
      maxAnonymousConnections: 1000,
      historyStore: 'memory',
      historyPath: 'data/streaming.sqlite',
      historyCacheEntries: 20_000,
      loadBalancer: 'consistent_hash',
      region: '',
      advertiseUrl: '',
      wsPath: '/ws',
      apiKey: [],
      hookTimeout: 5,
      adminRole: 'admin',
      webhookUrls: [],
      webhookSecret: '',
      webhookEvents: ['connect', 'disconnect', 'room_message', 'presence'],
      webhookQueueSize: 10000,
      webhookMaxAttempts: 8,
      webhookTimeout: 5,
      logLevel: 'log',
      logLevels: [],
      logFormat: 'text',
    });
    expect(rateLimit).toEqual({ ...seed.rateLimit, perConnection: false });
    expect(auth).toEqual({ ...seed.auth, requireExp: true, jwtAlgorithms: ['HS256'] });
  });

  it('resolve without input and generate a node id', () => {
    const o = resolveStreamingOptions();
    expect({ ...o, nodeId: '' }).toEqual(defaultStreamingOptions());
    expect(o.nodeId).toMatch(/^node-.+-[0-9a-f]{6}$/);
  });

  it('table covers every option', () => {
    const { rateLimit, auth, ...top } = defaultStreamingOptions();
    const paths = [
      ...Object.keys(top),
      ...Object.keys(rateLimit).map((k) => `rateLimit.${k}`),
      ...Object.keys(auth).map((k) => `auth.${k}`),
      'auth.jwtSecret',
      'auth.jwtPublicKey',
      'auth.jwksUrl',
    ].sort();
    expect(STREAMING_OPTION_TABLE.map((d) => d.path).sort()).toEqual(paths);
  });
});

describe('readStreamingEnv', () => {
  it('parses each kind, nested RATE_LIMIT_ and AUTH_ keys', () => {
    expect(
      readStreamingEnv({
        FORGE_STREAMING_BACKEND: 'nats',
        FORGE_STREAMING_BACKEND_URLS: 'nats://a:4222, nats://b:4222,',
        FORGE_STREAMING_BACKEND_USERNAME: '',
        FORGE_STREAMING_MAX_MESSAGE_SIZE: '1024',
        FORGE_STREAMING_PING_INTERVAL: '0.5',
        FORGE_STREAMING_ENABLE_TYPING_INDICATORS: 'No',
        FORGE_STREAMING_TLS_ENABLED: 'YES',
        FORGE_STREAMING_ENABLE_ROOMS: '0',
        FORGE_STREAMING_NODE_ID: 'node-7',
        FORGE_STREAMING_HEARTBEAT_INTERVAL: '2',
        FORGE_STREAMING_SEND_QUEUE_SIZE: '64',
        FORGE_STREAMING_RATE_LIMIT_ALGORITHM: 'sliding_window',
        FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '2.5',
        FORGE_STREAMING_RATE_LIMIT_PER_CONNECTION: 'true',
        FORGE_STREAMING_AUTH_VALIDATE_ON_MESSAGE: '1',
        FORGE_STREAMING_AUTH_REQUIRE_EXP: 'no',
        FORGE_STREAMING_AUTH_JWT_ALGORITHMS: 'HS256,RS256',
        FORGE_STREAMING_SOMETHING_ELSE: 'ignored',
      }),
    ).toEqual({
      backend: 'nats',
      backendUrls: ['nats://a:4222', 'nats://b:4222'],
      backendUsername: '',
      maxMessageSize: 1024,
      pingInterval: 0.5,
      enableTypingIndicators: false,
      tlsEnabled: true,
      enableRooms: false,
      nodeId: 'node-7',
      heartbeatInterval: 2,
      sendQueueSize: 64,
      rateLimit: { algorithm: 'sliding_window', requestsPerSecond: 2.5, perConnection: true },
      auth: { validateOnMessage: true, requireExp: false, jwtAlgorithms: ['HS256', 'RS256'] },
    });
  });

  it('falls back to JWT_SECRET', () => {
    const [s1, s2] = [SECRET_A, SECRET_B];
    expect(readStreamingEnv({ JWT_SECRET: s1 })).toEqual({ auth: { jwtSecret: s1 } });
    expect(readStreamingEnv({ JWT_SECRET: s1, FORGE_STREAMING_AUTH_JWT_SECRET: s2 })).toEqual({
      auth: { jwtSecret: s2 },
    });
    expect(readStreamingEnv({ JWT_SECRET: s1, FORGE_STREAMING_AUTH_JWT_SECRET: '' })).toEqual({
      auth: { jwtSecret: s1 },
    });
  });

  it('names the variable and value it cannot convert', () => {
    expect(errorOf(() => readStreamingEnv({ FORGE_STREAMING_MAX_MESSAGE_SIZE: 'abc' })).message).toBe(
      'FORGE_STREAMING_MAX_MESSAGE_SIZE="abc" is not a number',
    );
    const e = errorOf(() =>
      readStreamingEnv({
        FORGE_STREAMING_RATE_LIMIT_ENABLED: 'maybe',
        FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1.5',
      }),
    );
    expect(e.issues).toEqual([
      'FORGE_STREAMING_RATE_LIMIT_ENABLED="maybe" is not a boolean (true/false/1/0/yes/no)',
      'FORGE_STREAMING_RATE_LIMIT_BURST_SIZE="1.5" is not an integer',
    ]);
  });

  it('bad enum is reported by validation with all its names', () => {
    const input = readStreamingEnv({ FORGE_STREAMING_BACKEND: 'mongo' });
    expect(errorOf(() => resolveStreamingOptions(input)).message).toContain(
      'backend (backend, FORGE_STREAMING_BACKEND) = "mongo": must be one of local, redis, nats',
    );
  });
});

describe('YAML and loader', () => {
  const yaml = `
extensions:
  other: { x: 1 }
  streaming:
    backend: redis
    backend_urls: [ "redis://r1:6379" ]
    max_message_size: 4096
    node_id: yaml-node
    rate_limit:
      algorithm: adaptive
      burst_size: 5
    auth:
      token_header: X-Token
      require_auth: false
`;

  it('reads nested blocks into camelCase options', () => {
    expect(readStreamingYaml(yamlFile('a.yaml', yaml))).toEqual({
      backend: 'redis',
      backendUrls: ['redis://r1:6379'],
      maxMessageSize: 4096,
      nodeId: 'yaml-node',
      rateLimit: { algorithm: 'adaptive', burstSize: 5 },
      auth: { tokenHeader: 'X-Token', requireAuth: false },
    });
  });

  it('env overrides YAML key by key (file from argument or FORGE_STREAMING_CONFIG_FILE)', () => {
    const file = yamlFile('b.yaml', yaml);
    const env = {
      FORGE_STREAMING_CONFIG_FILE: file,
      FORGE_STREAMING_MAX_MESSAGE_SIZE: '8192',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '7',
      FORGE_STREAMING_AUTH_VALIDATE_ON_MESSAGE: 'true',
    };
    const expected = {
      backend: 'redis',
      backendUrls: ['redis://r1:6379'],
      maxMessageSize: 8192,
      nodeId: 'yaml-node',
      rateLimit: { algorithm: 'adaptive', burstSize: 7 },
      auth: { tokenHeader: 'X-Token', requireAuth: false, validateOnMessage: true },
    };
    expect(loadStreamingConfig({ env })).toEqual(expected);
    expect(loadStreamingConfig({ env: { ...env, FORGE_STREAMING_CONFIG_FILE: undefined }, file })).toEqual(
      expected,
    );
    const o = resolveStreamingOptions(loadStreamingConfig({ env }));
    expect(o.rateLimit).toEqual({
      enabled: true,
      algorithm: 'adaptive',
      requestsPerSecond: 10,
      burstSize: 7,
      perConnection: false,
    });
    expect(o.nodeId).toBe('yaml-node');
  });

  it('reads several server API keys from FORGE_STREAMING_API_KEY and refuses a short one by name', () => {
    const keys = 'first-key-0123456789, second-key-9876543210';
    const o = resolveStreamingOptions(loadStreamingConfig({ env: { FORGE_STREAMING_API_KEY: keys } }));
    expect(o.apiKey).toEqual(['first-key-0123456789', 'second-key-9876543210']);
    const message = errorOf(() =>
      resolveStreamingOptions(loadStreamingConfig({ env: { FORGE_STREAMING_API_KEY: 'short-secret' } })),
    ).message;
    expect(message).toContain('apiKey');
    expect(message).not.toContain('short-secret');
  });

  it('registers the "streaming" namespace', () => {
    expect(streamingConfig.KEY).toBe('CONFIGURATION(streaming)');
  });

  it('rejects unknown keys, missing files and missing blocks', () => {
    const bad = yamlFile('c.yaml', 'extensions:\n  streaming:\n    foo: 1\n    rate_limit:\n      bar: 2\n');
    expect(errorOf(() => readStreamingYaml(bad)).issues).toEqual([
      'extensions.streaming.foo is not a known option',
      'extensions.streaming.rate_limit.bar is not a known option',
    ]);
    expect(errorOf(() => readStreamingYaml(join(dir, 'nope.yaml'))).message).toMatch(
      /Cannot read streaming config file .*nope\.yaml/,
    );
    expect(
      errorOf(() => readStreamingYaml(yamlFile('d.yaml', 'extensions:\n  other: {}\n'))).message,
    ).toMatch(/has no extensions\.streaming mapping/);
  });
});

describe('resolveStreamingOptions', () => {
  it('merges nested groups key by key, undefined does not override', () => {
    const o = resolveStreamingOptions({
      backend: undefined,
      rateLimit: { burstSize: 3, enabled: undefined },
      auth: { jwtSecret: SECRET_A },
    });
    expect(o.backend).toBe('local');
    expect(o.rateLimit).toEqual({ ...defaultStreamingOptions().rateLimit, burstSize: 3 });
    expect(o.auth.jwtSecret).toBe(SECRET_A);
  });

  it('ignores module-only keys', () => {
    expect(() =>
      resolveStreamingOptions({ authenticator: {}, backendInstance: {}, isGlobal: true } as never),
    ).not.toThrow();
  });

  it('rejects a negative size naming the key, env variable and value', () => {
    expect(errorOf(() => resolveStreamingOptions({ maxMessageSize: -5 })).message).toBe(
      'Invalid streaming configuration:\n  - maxMessageSize (max_message_size, FORGE_STREAMING_MAX_MESSAGE_SIZE) = -5: must be an integer >= 64',
    );
  });

  it('reads history_cache_entries (env, YAML) and refuses a negative or fractional one by name', () => {
    expect(readStreamingEnv({ FORGE_STREAMING_HISTORY_CACHE_ENTRIES: '50' })).toEqual({
      historyCacheEntries: 50,
    });
    const yaml = yamlFile('cache.yaml', 'extensions:\n  streaming:\n    history_cache_entries: 10\n');
    expect(readStreamingYaml(yaml)).toEqual({ historyCacheEntries: 10 });
    expect(
      resolveStreamingOptions({ historyStore: 'sqlite', historyCacheEntries: 0 }).historyCacheEntries,
    ).toBe(0);
    expect(errorOf(() => resolveStreamingOptions({ historyCacheEntries: -1 })).message).toBe(
      'Invalid streaming configuration:\n  - historyCacheEntries (history_cache_entries, FORGE_STREAMING_HISTORY_CACHE_ENTRIES) = -1: must be an integer >= 0',
    );
    expect(errorOf(() => readStreamingEnv({ FORGE_STREAMING_HISTORY_CACHE_ENTRIES: '1.5' })).message).toBe(
      'FORGE_STREAMING_HISTORY_CACHE_ENTRIES="1.5" is not an integer',
    );
  });

  it('requires TLS files when TLS is enabled', () => {
    expect(errorOf(() => resolveStreamingOptions({ tlsEnabled: true, tlsKeyFile: 'k.pem' })).issues).toEqual([
      'tlsCertFile (tls_cert_file, FORGE_STREAMING_TLS_CERT_FILE) = "": is required when tlsEnabled is true',
    ]);
    expect(() =>
      resolveStreamingOptions({ tlsEnabled: true, tlsCertFile: 'c.pem', tlsKeyFile: 'k.pem' }),
    ).not.toThrow();
  });

  it('reports every bad key at once', () => {
    const e = errorOf(() =>
      resolveStreamingOptions({
        backend: 'mongo',
        pingInterval: 0,
        sendQueueSize: 1.5,
        rateLimit: { algorithm: 'leaky' as never, requestsPerSecond: -1 },
        auth: { tokenHeader: '', jwtAlgorithms: ['none'] },
        bogus: 1,
      } as never),
    );
    expect(e.message.startsWith('Invalid streaming configuration:')).toBe(true);
    expect(e.issues).toEqual([
      'bogus = 1: is not a known option',
      'backend (backend, FORGE_STREAMING_BACKEND) = "mongo": must be one of local, redis, nats',
      'pingInterval (ping_interval, FORGE_STREAMING_PING_INTERVAL) = 0: must be a positive number',
      'rateLimit.algorithm (rate_limit.algorithm, FORGE_STREAMING_RATE_LIMIT_ALGORITHM) = "leaky": must be one of token_bucket, sliding_window, adaptive',
      'rateLimit.requestsPerSecond (rate_limit.requests_per_second, FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND) = -1: must be a positive number',
      'auth.tokenHeader (auth.token_header, FORGE_STREAMING_AUTH_TOKEN_HEADER) = "": must be a non-empty string',
      'auth.jwtAlgorithms (auth.jwt_algorithms, FORGE_STREAMING_AUTH_JWT_ALGORITHMS) = ["none"]: must be a non-empty array of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256',
      'sendQueueSize (send_queue_size, FORGE_STREAMING_SEND_QUEUE_SIZE) = 1.5: must be a positive integer',
    ]);
  });

  it('rejects unknown nested keys and non-object groups', () => {
    expect(errorOf(() => resolveStreamingOptions({ rateLimit: { burst: 1 } } as never)).issues).toEqual([
      'rateLimit.burst = 1: is not a known option',
    ]);
    expect(errorOf(() => resolveStreamingOptions({ auth: 'x' } as never)).issues).toEqual([
      'auth (auth) = "x": must be an object',
    ]);
  });
});

describe('auth defaults', () => {
  const SECRET_LABEL = 'auth.jwtSecret (auth.jwt_secret, FORGE_STREAMING_AUTH_JWT_SECRET or JWT_SECRET)';
  const JWKS_LABEL = 'auth.jwksUrl (auth.jwks_url, FORGE_STREAMING_AUTH_JWKS_URL)';

  it('auth.requireExp defaults to true and is read from FORGE_STREAMING_AUTH_REQUIRE_EXP and YAML', () => {
    expect(resolveStreamingOptions().auth.requireExp).toBe(true);
    const env = { FORGE_STREAMING_AUTH_REQUIRE_EXP: 'false' };
    expect(resolveStreamingOptions(readStreamingEnv(env)).auth.requireExp).toBe(false);
    const file = yamlFile('exp.yaml', 'extensions:\n  streaming:\n    auth:\n      require_exp: false\n');
    expect(readStreamingYaml(file)).toEqual({ auth: { requireExp: false } });
    expect(errorOf(() => resolveStreamingOptions({ auth: { requireExp: 'no' as never } })).issues).toEqual([
      'auth.requireExp (auth.require_exp, FORGE_STREAMING_AUTH_REQUIRE_EXP) = "no": must be a boolean',
    ]);
  });

  it('refuses an HS secret shorter than 32 bytes, naming the key and both variables, without showing it', () => {
    const e = errorOf(() => resolveStreamingOptions(readStreamingEnv({ JWT_SECRET: 'change-me' })));
    expect(e.issues).toEqual([
      `${SECRET_LABEL} = <hidden>: must be at least 32 bytes long (it is 9); generate one with \`openssl rand -hex 32\``,
    ]);
    expect(e.message).not.toContain('change-me');
    // Bytes, not characters: 16 two-byte characters are enough, 31 ASCII ones are not.
    expect(resolveStreamingOptions({ auth: { jwtSecret: 'é'.repeat(16) } }).auth.jwtSecret).toBe(
      'é'.repeat(16),
    );
    expect(errorOf(() => resolveStreamingOptions({ auth: { jwtSecret: 'x'.repeat(31) } })).issues).toEqual([
      expect.stringContaining(`${SECRET_LABEL} = <hidden>: must be at least 32 bytes long (it is 31)`),
    ]);
    expect(resolveStreamingOptions({ auth: { jwtSecret: SECRET_A } }).auth.jwtSecret).toBe(SECRET_A);
    // Empty means unset (the module then asks for a secret unless auth is off).
    expect(() => resolveStreamingOptions({ auth: { jwtSecret: '' } })).not.toThrow();
  });

  it('refuses a JWKS URL that is not https, loopback hosts aside', () => {
    for (const url of [
      'http://auth.example.com/.well-known/jwks.json',
      'http://10.0.0.5:8080/jwks',
      'ftp://auth.example.com/jwks',
      'http://localhost.example.com/jwks',
    ]) {
      expect(errorOf(() => resolveStreamingOptions({ auth: { jwksUrl: url } })).issues).toEqual([
        `${JWKS_LABEL} = ${JSON.stringify(url)}: must be an https:// URL (plain http:// only to a loopback host: localhost, 127.0.0.1, ::1)`,
      ]);
    }
    expect(
      errorOf(() => resolveStreamingOptions(readStreamingEnv({ FORGE_STREAMING_AUTH_JWKS_URL: 'jwks.json' })))
        .issues,
    ).toEqual([`${JWKS_LABEL} = "jwks.json": must be a URL`]);
    for (const url of [
      'https://auth.example.com/.well-known/jwks.json',
      'http://127.0.0.1:4000/jwks',
      'http://localhost/jwks',
      'http://[::1]:4000/jwks',
      'HTTP://LOCALHOST:4000/jwks',
    ]) {
      expect(resolveStreamingOptions({ auth: { jwksUrl: url } }).auth.jwksUrl).toBe(url);
    }
  });
});

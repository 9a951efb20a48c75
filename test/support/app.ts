/**
 * End-to-end helpers: boot a Nest app in-process on 127.0.0.1:<random port>,
 * talk to it over real HTTP, and craft JWTs.
 *
 * The streaming module reads `FORGE_STREAMING_*` and `JWT_SECRET` from
 * `process.env` while the app is built, so {@link startNestApp} sets the
 * given variables (after clearing any inherited ones) just for the build and
 * restores the previous environment afterwards, whether the build succeeds
 * or not.
 */
import 'reflect-metadata';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module, type LogLevel, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { StreamingModule, StreamingWsAdapter } from '@nest-streaming/streaming';
import { eventually as retryUntilPasses } from '@nest-streaming/streaming/testing';
import { SignJWT, type JWTPayload } from 'jose';
import { AppModule } from '../../apps/demo-chat/src/app.module';
import type { Json } from './ws-client';
import { configureDemoApp } from '../../apps/demo-chat/src/setup';

/** A running app. `close()` is idempotent. */
export interface TestApp {
  app: NestExpressApplication;
  port: number;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `ws://127.0.0.1:<port>/ws` */
  wsUrl: string;
  close(): Promise<void>;
  /** `POST /api/auth/login` (demo app only): the token for `username`. */
  login(username: string): Promise<string>;
  /** An HTTP request against this app. */
  http(method: string, path: string, options?: HttpOptions): Promise<HttpResponse>;
}

export interface HttpOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** JSON-encoded request body. */
  body?: unknown;
  /** A body sent as is (instead of `body`). */
  rawBody?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Json;
}

export interface StartOptions {
  /** Environment variables visible while the app is built (inherited FORGE_STREAMING_* and JWT_SECRET are hidden). */
  env?: Record<string, string>;
  /** Applied to the app before it listens (defaults to the demo's configureDemoApp). */
  configure?: (app: NestExpressApplication) => NestExpressApplication | void;
}

/** Variables owned by the streaming configuration: hidden during a build unless given. */
const isStreamingVar = (k: string): boolean => k.startsWith('FORGE_STREAMING_') || k === 'JWT_SECRET';

/** Nest log levels for test apps: silent unless E2E_LOG is set (e.g. E2E_LOG=1). */
function logLevels(): LogLevel[] | false {
  return process.env.E2E_LOG ? ['error', 'warn', 'log'] : false;
}

/** Run `fn` with `env` applied to process.env (inherited streaming variables removed), then restore. */
export async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (isStreamingVar(k)) delete process.env[k];
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** `routes` of `StreamingModule.forRoot` turning on every optional route at its default path. */
export const ALL_ROUTES = { health: true, stats: true, route: true, metrics: true } as const;

/** Build `rootModule`, configure it, listen on 127.0.0.1 port 0. Rejects (and cleans up) when init fails. */
export async function startNestApp(rootModule: Type<unknown>, options: StartOptions = {}): Promise<TestApp> {
  const configure = options.configure ?? configureDemoApp;
  const app = await withEnv(options.env ?? {}, async () => {
    let created: NestExpressApplication | undefined;
    try {
      created = await NestFactory.create<NestExpressApplication>(rootModule, {
        logger: logLevels(),
        abortOnError: false,
      });
      configure(created);
      await created.listen(0, '127.0.0.1');
      return created;
    } catch (err) {
      if (created) await created.close().catch(() => undefined);
      throw err;
    }
  });
  const { port } = app.getHttpServer().address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  const http = (method: string, path: string, o?: HttpOptions) => httpCall(baseUrl, method, path, o);
  return {
    app,
    port,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    http,
    close: () => (closing ??= app.close()),
    async login(username: string): Promise<string> {
      const res = await http('POST', '/api/auth/login', { body: { username } });
      if (res.status !== 200 || typeof res.json?.token !== 'string') {
        throw new Error(`login of ${username} failed: ${res.status} ${res.text}`);
      }
      return res.json.token as string;
    },
  };
}

/**
 * The demo chat app (apps/demo-chat AppModule + configureDemoApp). History is
 * kept in memory unless `env` says otherwise (the demo defaults to a SQLite
 * file in the working directory, which would leak state between apps and runs).
 */
export function startDemoApp(env: Record<string, string> = {}): Promise<TestApp> {
  return startNestApp(AppModule, { env: { FORGE_STREAMING_HISTORY_STORE: 'memory', ...env } });
}

/** One HTTP request (no keep-alive, so closing the app never waits on idle sockets). */
export function httpCall(
  baseUrl: string,
  method: string,
  path: string,
  { token, body, rawBody, headers = {}, timeoutMs = 5000 }: HttpOptions = {},
): Promise<HttpResponse> {
  const payload = rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const h: Record<string, string> = { ...headers };
  if (token !== undefined) h.Authorization = `Bearer ${token}`;
  if (payload !== undefined) {
    h['Content-Type'] ??= 'application/json';
    h['Content-Length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, baseUrl), { method, headers: h, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Sign an HS256 JWT with arbitrary claims. `exp`/`iat` are taken as given
 * (epoch seconds), so expired tokens and tokens without `sub` can be crafted.
 */
export async function signToken(secret: string, claims: JWTPayload = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
}

/**
 * Poll `fn` until it returns without throwing (an `expect` inside), or rethrow its last failure at the deadline:
 * `eventually` of `@nest-streaming/streaming/testing`, with the app tests' defaults (3 s, every 25 ms).
 */
export function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 3000, everyMs = 25): Promise<T> {
  return retryUntilPasses(fn, timeoutMs, everyMs);
}

/** `GET /_/streaming/stats` active_connections. */
export async function activeConnections(app: TestApp): Promise<number> {
  const res = await app.http('GET', '/_/streaming/stats');
  if (res.status !== 200) throw new Error(`stats answered ${res.status}`);
  return res.json.active_connections as number;
}

/** Sum of one Prometheus metric's samples (optionally only those whose labels contain `labelFilter`). */
export function metricValue(prometheusText: string, name: string, labelFilter?: string): number {
  let sum = 0;
  for (const line of prometheusText.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labelFilter !== undefined && !(m[2] ?? '').includes(labelFilter)) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/**
 * A bare app with only `StreamingModule.forRoot(config)` and the module's
 * WebSocket adapter (no demo controllers), on 127.0.0.1:<random port>.
 */
export async function startStreamingApp(
  config: Parameters<typeof StreamingModule.forRoot>[0],
): Promise<TestApp> {
  @Module({ imports: [StreamingModule.forRoot(config)] })
  class StreamingTestModule {}
  return startNestApp(StreamingTestModule, {
    configure: (app: NestExpressApplication) => app.useWebSocketAdapter(new StreamingWsAdapter(app)),
  });
}

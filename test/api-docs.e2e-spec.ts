/**
 * Machine-readable API documents (issue 14), over real HTTP:
 * - the demo serves Swagger UI at /api/docs and the OpenAPI document at
 *   /api/docs-json; the document is structurally valid OpenAPI 3 (required
 *   fields, path parameters, resolvable $refs, known security schemes) and
 *   describes every REST route of docs/PROTOCOL.md sections 1 and 10 (read
 *   from the document's tables) and the routes section 11 adds, with their
 *   methods;
 * - the AsyncAPI route is off by default, on with `routes.asyncapi` or
 *   FORGE_STREAMING_ROUTES_ASYNCAPI, and its document (with the request's
 *   host and the app's paths) passes @asyncapi/parser.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Module, type Type } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { StreamingModule, StreamingWsAdapter, type StreamingRoutesOptions } from '@nest-streaming/streaming';
import { startDemoApp, startNestApp, withEnv, type TestApp } from './support/app';
import type { Json } from './support/ws-client';

jest.setTimeout(60_000);

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * `METHOD /path` of every endpoint in the tables of PROTOCOL.md sections 1 and 10, as OpenAPI
 * writes paths (`:id` → `{id}`, no query). A path listed without a method after `·` takes the
 * method before it. `GET /ws` (the WebSocket upgrade, in the AsyncAPI document) and `GET /`
 * (the demo's web page, a static file) are not REST routes.
 */
function protocolRoutes(): string[] {
  const doc = readFileSync(join(__dirname, '..', 'docs', 'PROTOCOL.md'), 'utf8');
  const section = (start: RegExp, end: RegExp): string => {
    const from = doc.search(start);
    const rest = doc.slice(from);
    const to = rest.slice(1).search(end);
    if (from < 0 || to < 0) throw new Error(`PROTOCOL.md: no section ${start}`);
    return rest.slice(0, to + 1);
  };
  const tables = [section(/^## 1\. /m, /^## /m), section(/^### Server API/m, /^### /m)];
  const routes: string[] = [];
  for (const text of tables) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('|')) continue;
      const cell = line.split('|')[1];
      let method = '';
      for (const m of cell.matchAll(/`(?:(GET|POST|PUT|PATCH|DELETE) )?(\/[^`\s?]*)[^`]*`/g)) {
        method = m[1] ?? method;
        if (!method) continue;
        const path = m[2].replace(/:(\w+)/g, '{$1}');
        if (path === '/ws' || path === '/') continue;
        routes.push(`${method} ${path}`);
      }
    }
  }
  return routes;
}

/** Every route of section 11 beyond the tables: the room REST extras, the audit, SSE subscriptions, the optional routes. */
const EXTRA_ROUTES = [
  'PATCH /api/rooms/{id}',
  'DELETE /api/rooms/{id}',
  'GET /api/rooms/{id}/moderation',
  'GET /api/audit/presence',
  'POST /sse/{connectionId}/subscriptions',
  'POST /sse/{connectionId}/unsubscribe',
  'GET /_/streaming/route',
  'GET /_/streaming/asyncapi.json',
];

/** The value at a local JSON pointer (`#/a/b`), or undefined. */
function resolvePointer(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

/** Every `$ref` in `node`, with where it was found. */
function refs(node: unknown, at = '#'): Array<[string, string]> {
  if (node === null || typeof node !== 'object') return [];
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') out.push([at, v]);
    else out.push(...refs(v, `${at}/${k}`));
  }
  return out;
}

/** The structural rules of OpenAPI 3.0 this test checks: a list of violations (empty when valid). */
function openApiProblems(doc: Json): string[] {
  const problems: string[] = [];
  const need = (ok: unknown, what: string) => {
    if (!ok) problems.push(what);
  };
  need(typeof doc.openapi === 'string' && /^3\.\d+\.\d+$/.test(doc.openapi), 'openapi is a 3.x.y version');
  need(typeof doc.info?.title === 'string' && doc.info.title.length > 0, 'info.title');
  need(typeof doc.info?.version === 'string' && doc.info.version.length > 0, 'info.version');
  need(doc.paths && typeof doc.paths === 'object', 'paths');
  const schemes: Record<string, Json> = doc.components?.securitySchemes ?? {};
  for (const [name, scheme] of Object.entries(schemes)) {
    need(['apiKey', 'http', 'oauth2', 'openIdConnect'].includes(scheme.type), `securitySchemes.${name}.type`);
    if (scheme.type === 'apiKey') {
      need(
        typeof scheme.name === 'string' && ['query', 'header', 'cookie'].includes(scheme.in),
        `apiKey ${name}`,
      );
    }
    if (scheme.type === 'http') need(typeof scheme.scheme === 'string', `http scheme ${name}`);
  }
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    need(path.startsWith('/'), `path ${path} starts with /`);
    const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    for (const [method, op] of Object.entries<Json>(item)) {
      if (method === 'parameters' || method === 'summary' || method === 'description') continue;
      const where = `${method.toUpperCase()} ${path}`;
      need(HTTP_METHODS.includes(method), `${where}: a known method`);
      if (op.operationId !== undefined) {
        need(!operationIds.has(op.operationId), `${where}: unique operationId ${op.operationId}`);
        operationIds.add(op.operationId);
      }
      const responses = Object.entries<Json>(op.responses ?? {});
      need(responses.length > 0, `${where}: responses`);
      for (const [status, response] of responses) {
        need(/^([1-5]\d\d|[1-5]XX|default)$/.test(status), `${where}: response key ${status}`);
        need(typeof response.description === 'string', `${where} ${status}: description`);
      }
      const params = (op.parameters ?? []) as Json[];
      for (const p of params) {
        need(
          typeof p.name === 'string' && ['query', 'header', 'path', 'cookie'].includes(p.in),
          `${where}: parameter`,
        );
        if (p.in === 'path')
          need(p.required === true && templated.includes(p.name), `${where}: path parameter ${p.name}`);
        need(p.schema !== undefined || p.content !== undefined, `${where}: parameter ${p.name} schema`);
      }
      for (const name of templated) {
        need(
          params.some((p) => p.in === 'path' && p.name === name),
          `${where}: parameter for {${name}}`,
        );
      }
      if (op.requestBody !== undefined) need(op.requestBody.content, `${where}: requestBody.content`);
      for (const requirement of (op.security ?? []) as Json[]) {
        for (const name of Object.keys(requirement))
          need(name in schemes, `${where}: security scheme ${name}`);
      }
    }
  }
  for (const [at, ref] of refs(doc))
    need(resolvePointer(doc, ref) !== undefined, `${at}: $ref ${ref} resolves`);
  return problems;
}

const described = (doc: Json): string[] =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item as Json)
      .filter((m) => HTTP_METHODS.includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );

describe('OpenAPI document of the demo', () => {
  let app: TestApp;
  let doc: Json;

  beforeAll(async () => {
    app = await startDemoApp();
    const res = await app.http('GET', '/api/docs-json');
    expect(res.status).toBe(200);
    doc = res.json;
  });
  afterAll(() => app?.close());

  it('is structurally valid OpenAPI 3', () => {
    expect(openApiProblems(doc)).toEqual([]);
  });

  it('describes every REST route of PROTOCOL.md sections 1 and 10, and those section 11 adds, with their methods', () => {
    const routes = protocolRoutes();
    // The tables were read: the rooms API, health, stats, metrics, SSE, login and the server API.
    expect(routes).toEqual(
      expect.arrayContaining([
        'GET /sse',
        'POST /api/auth/login',
        'POST /api/rooms',
        'GET /api/rooms',
        'POST /api/rooms/{id}/leave',
        'GET /_/health/streaming/distributed',
        'GET /metrics',
        'POST /_/streaming/api/publish',
        'GET /_/streaming/api/rooms/{id}/history',
      ]),
    );
    expect(routes.length).toBeGreaterThanOrEqual(20);
    expect(described(doc)).toEqual(expect.arrayContaining([...routes, ...EXTRA_ROUTES]));
  });

  it('documents each operation: a summary and a tag, the errors, the security schemes', () => {
    const ops = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item as Json).map(([method, op]) => ({
        route: `${method.toUpperCase()} ${path}`,
        op: op as Json,
      })),
    );
    for (const { route, op } of ops) {
      expect({ route, summary: typeof op.summary, tags: op.tags?.length > 0 }).toEqual({
        route,
        summary: 'string',
        tags: true,
      });
    }
    const op = (route: string): Json => ops.find((o) => o.route === route)!.op;
    const errorBody = { $ref: '#/components/schemas/StreamingHttpErrorBody' };
    // The server API: the API key scheme; 401 and 404 in the REST error shape.
    for (const route of ops.map((o) => o.route).filter((r) => r.includes(' /_/streaming/api/'))) {
      expect(op(route).security).toEqual([{ streaming_api_key: [] }]);
      expect(op(route).responses['401'].content['application/json'].schema).toEqual(errorBody);
      expect(op(route).responses['404']).toBeDefined();
    }
    expect(doc.components.securitySchemes.streaming_api_key).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
    });
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    // The rooms API and SSE subscriptions: bearer JWT.
    for (const route of [
      'POST /api/rooms',
      'GET /api/rooms/{id}/history',
      'POST /sse/{connectionId}/subscriptions',
    ]) {
      expect(op(route).security).toEqual([{ bearer: [] }]);
      expect(Object.keys(op(route).responses)).toEqual(expect.arrayContaining(['401', '429']));
    }
    expect(Object.keys(op('GET /api/rooms/{id}').responses)).toEqual(
      expect.arrayContaining(['200', '403', '404']),
    );
    expect(op('POST /api/rooms').responses['201'].content['application/json'].schema).toMatchObject({
      properties: { max_members: { type: 'integer', nullable: true } },
    });
  });

  it('describes request bodies and queries from the DTOs', () => {
    const schemas = doc.components.schemas;
    expect(doc.paths['/api/rooms'].post.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/CreateRoomBody',
    });
    expect(schemas.CreateRoomBody).toMatchObject({
      required: ['name'],
      properties: { name: { type: 'string' } },
    });
    expect(schemas.ApiPublishBody.required).toEqual(['channel', 'data']);
    expect(schemas.ModerationBody.properties.action.enum).toEqual(['ban', 'unban', 'kick', 'mute', 'unmute']);
    const history = doc.paths['/_/streaming/api/rooms/{id}/history'].get.parameters as Json[];
    const queryNames = history.filter((p) => p.in === 'query').map((p) => String(p.name));
    expect(queryNames.sort()).toEqual(['after', 'before', 'limit']);
    // SSE subscription bodies are the `subscribe` request's DTO, from its class-validator rules.
    expect(
      doc.paths['/sse/{connectionId}/subscriptions'].post.requestBody.content['application/json'].schema,
    ).toMatchObject({
      required: ['channel'],
      properties: { channel: { type: 'string', minLength: 1 } },
    });
  });

  it('serves Swagger UI at /api/docs', async () => {
    const res = await app.http('GET', '/api/docs');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('swagger-ui');
  });

  it('serves the AsyncAPI document (the demo turns it on), valid for @asyncapi/parser', async () => {
    const res = await app.http('GET', '/_/streaming/asyncapi.json');
    expect(res.status).toBe(200);
    const asyncapi = res.json;
    expect(asyncapi.asyncapi).toBe('3.0.0');
    expect(asyncapi.servers.websocket).toMatchObject({ host: `127.0.0.1:${app.port}`, protocol: 'ws' });
    expect(asyncapi.channels.websocket.address).toBe('/ws');
    expect(asyncapi.channels.sse.address).toBe('/sse');
    expect(asyncapi.operations.send_message).toMatchObject({ action: 'receive' });
    const { diagnostics } = await new Parser().parse(asyncapi);
    expect(
      diagnostics
        .filter((d) => Number(d.severity) === Number(DiagnosticSeverity.Error))
        .map((d) => d.message),
    ).toEqual([]);
  });
});

describe('the AsyncAPI route', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  /** An app importing StreamingModule.forRoot with these routes; `env` is seen when forRoot is called. */
  async function start(
    routes: StreamingRoutesOptions | undefined,
    env: Record<string, string> = {},
  ): Promise<TestApp> {
    const module = await withEnv(env, async (): Promise<Type> => {
      @Module({
        imports: [
          StreamingModule.forRoot({
            historyStore: 'memory',
            auth: { jwtSecret: 'api-docs-e2e-secret-7f3a9c1e5b2d4086' },
            ...(routes ? { routes } : {}),
          }),
        ],
      })
      class DocsTestModule {}
      return DocsTestModule;
    });
    const app = await startNestApp(module, {
      env,
      configure: (a: NestExpressApplication) => a.useWebSocketAdapter(new StreamingWsAdapter(a)),
    });
    apps.push(app);
    return app;
  }

  it('is off by default', async () => {
    const app = await start(undefined);
    expect((await app.http('GET', '/_/streaming/asyncapi.json')).status).toBe(404);
  });

  it('is on at _/streaming/asyncapi.json with FORGE_STREAMING_ROUTES_ASYNCAPI=true', async () => {
    const app = await start(undefined, { FORGE_STREAMING_ROUTES_ASYNCAPI: 'true' });
    const res = await app.http('GET', '/_/streaming/asyncapi.json');
    expect(res.status).toBe(200);
    expect(res.json.channels.sse.address).toBe('/sse');
  });

  it('moves with its own path and the prefix, and follows the SSE route', async () => {
    const app = await start({ prefix: 'rt', sse: 'events', asyncapi: 'docs/asyncapi' });
    const res = await app.http('GET', '/rt/docs/asyncapi');
    expect(res.status).toBe(200);
    expect(res.json.channels.sse.address).toBe('/rt/events');
    const noSse = await start({ sse: false, asyncapi: true });
    const doc = (await noSse.http('GET', '/_/streaming/asyncapi.json')).json;
    expect(Object.keys(doc.channels)).toEqual(['websocket']);
  });
});

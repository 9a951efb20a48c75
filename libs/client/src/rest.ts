import type { HistoryQuery } from '@nest-streaming/protocol';
import { StreamingClientError } from './errors';
import { resolveToken, type StreamingClientOptions } from './options';
import { toHttpBase, type FetchLike } from './transports';
import { isRecord } from './util';

/** The server's HTTP side: its origin, its moved routes, the node route look-up and the JSON API. */
export class HttpApi {
  constructor(private readonly options: StreamingClientOptions) {}

  /** The HTTP origin (plus any path prefix) of SSE and REST. */
  get base(): string {
    return toHttpBase(this.options.httpUrl ?? this.options.url);
  }

  /** A server route's path: the `paths` option's, with a leading slash, or the default. */
  routePath(which: 'sse' | 'route', fallback: string): string {
    const p = this.options.paths?.[which];
    if (!p) return fallback;
    return p.startsWith('/') ? p : `/${p}`;
  }

  /** The node `GET /_/streaming/route` names, or undefined (then `url` is used). Never throws. */
  async lookUpRoute(token: string | undefined): Promise<string | undefined> {
    const f = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    const route = this.options.route;
    if (!f || !route) return undefined;
    const params = Object.entries(route)
      .filter(([, v]) => typeof v === 'string' && v !== '')
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
    try {
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (token !== undefined) headers.Authorization = `Bearer ${token}`;
      const res = await f(
        `${this.base}${this.routePath('route', '/_/streaming/route')}${params.length ? `?${params.join('&')}` : ''}`,
        {
          method: 'GET',
          headers,
        },
      );
      if (!res.ok) return undefined;
      const body = JSON.parse(await res.text()) as { address?: unknown };
      return typeof body.address === 'string' && body.address !== '' ? body.address : undefined;
    } catch {
      return undefined;
    }
  }

  /** An authenticated JSON request to the server's HTTP API: see {@link StreamingClient.http}. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const f = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f)
      throw new StreamingClientError('no_transport', 'no fetch implementation: pass the `fetch` option');
    const token = await resolveToken(this.options);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await f(`${this.base}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const data = isRecord(json) ? json : {};
      const code =
        typeof data.code === 'string'
          ? data.code
          : typeof data.error === 'string'
            ? data.error
            : 'http_error';
      const message =
        typeof data.message === 'string' ? data.message : `${method} ${path} answered ${res.status}`;
      throw new StreamingClientError(code, message, { ...data, status: res.status });
    }
    return json as T;
  }
}

/** The path of `GET /api/rooms/:id/history` with its query. */
export function historyPath(roomId: string, query: HistoryQuery): string {
  const params = Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return `/api/rooms/${encodeURIComponent(roomId)}/history${params.length > 0 ? `?${params.join('&')}` : ''}`;
}

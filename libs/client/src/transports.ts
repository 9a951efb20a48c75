/**
 * The minimal shapes of the platform objects the client uses. Browsers'
 * `WebSocket`, `EventSource` and `fetch` fit them, and so do Node's `ws`
 * package, the `eventsource` package and Node's global `fetch`; the client
 * never imports any of them itself.
 */

/** What the client needs of a WebSocket (browser `WebSocket` or the `ws` package). */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** A string (JSON codec) or bytes (MessagePack codec). */
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Set to `arraybuffer` for the MessagePack codec (browsers deliver a `Blob` otherwise). */
  binaryType?: string;
  // Handlers are only assigned by the client; `never` lets any platform's event type fit.
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
}

/**
 * A WebSocket constructor: `globalThis.WebSocket` in browsers, `require('ws')` in Node.
 * `protocols` is only passed with the MessagePack codec.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The part of a `MessageEvent` an SSE listener reads. */
export interface SseMessageEventLike {
  data: string;
  lastEventId?: string;
}

/** What the client needs of an EventSource (browser `EventSource` or the `eventsource` package). */
export interface EventSourceLike {
  /** 0 connecting, 1 open, 2 closed. */
  readonly readyState: number;
  close(): void;
  addEventListener(type: string, listener: (ev: SseMessageEventLike) => void): void;
  onerror: ((ev: never) => void) | null;
  onopen: ((ev: never) => void) | null;
}

/** An EventSource constructor. */
export type EventSourceConstructor = new (url: string) => EventSourceLike;

/** The response fields the client reads. */
export interface FetchResponseLike {
  ok: boolean;
  status: number;
  text(): Promise<string>;
}

/** A `fetch` function (global `fetch` in browsers and Node 18+). */
export type FetchLike = (
  input: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string },
) => Promise<FetchResponseLike>;

/** `ws` close event and browser `CloseEvent` fields. */
export interface CloseEventLike {
  code?: number;
  reason?: string;
}

/** `ws` error event (`message`) and `eventsource` error event (`code`, `message`). */
export interface ErrorEventLike {
  message?: string;
  code?: number;
  status?: number;
}

/** Derive the WebSocket endpoint from `url`: http(s) becomes ws(s), a bare origin gets `/ws`. */
export function toWsUrl(url: string): URL {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/ws';
  return u;
}

/** Derive the HTTP origin (plus any path prefix) from `url`: ws(s) becomes http(s), a trailing `/ws` is dropped. */
export function toHttpBase(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  else if (u.protocol === 'wss:') u.protocol = 'https:';
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/ws')) path = path.slice(0, -3);
  if (path.endsWith('/sse')) path = path.slice(0, -4);
  return `${u.protocol}//${u.host}${path}`;
}

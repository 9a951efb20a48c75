/**
 * Scripted transports for the client's unit specs: the test plays the server. Outside src/ so
 * that it is never built into the package.
 */
import { StreamingClient, type StreamingClientOptions } from '../src/client';
import type { EventSourceLike, SseMessageEventLike, WebSocketLike } from '../src/transports';
import type { WireMessage } from '@nest-streaming/protocol';

/** A scripted WebSocket: the test plays the server. */
export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: Array<{ type: string; id?: string; data?: Record<string, unknown> }> = [];
  onopen: ((ev: never) => void) | null = null;
  onmessage: ((ev: never) => void) | null = null;
  onclose: ((ev: never) => void) | null = null;
  onerror: ((ev: never) => void) | null = null;
  closedWith: { code?: number; reason?: string } | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  static get last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    for (const line of data.split('\n')) this.sent.push(JSON.parse(line) as FakeSocket['sent'][number]);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // ---- server side
  accept(userId = 'alice'): void {
    this.readyState = 1;
    (this.onopen as ((e: unknown) => void) | null)?.({});
    this.push({
      type: 'connected',
      data: {
        connection_id: `c${FakeSocket.all.length}`,
        user_id: userId,
        session_id: 's',
        node_id: 'n',
        ping_interval_ms: 1000,
      },
    });
  }
  push(...envs: Array<{ type: string; id?: string; data: unknown }>): void {
    (this.onmessage as ((e: { data: string }) => void) | null)?.({
      data: envs.map((e) => JSON.stringify(e)).join('\n'),
    });
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    (this.onclose as ((e: unknown) => void) | null)?.({ code, reason });
  }
  fail(message: string): void {
    (this.onerror as ((e: unknown) => void) | null)?.({ message });
    this.drop(1006, '');
  }
  requests(type: string) {
    return this.sent.filter((e) => e.type === type);
  }
  request(type: string) {
    const r = this.requests(type);
    if (r.length === 0)
      throw new Error(`no ${type} request sent (sent: ${this.sent.map((s) => s.type).join(',')})`);
    return r[r.length - 1];
  }
  ack(type: string, data: unknown = {}): void {
    this.push({ type: 'ack', id: this.request(type).id, data });
  }
}

/** A scripted EventSource. */
export class FakeEventSource implements EventSourceLike {
  static all: FakeEventSource[] = [];
  readyState = 0;
  onerror: ((ev: never) => void) | null = null;
  onopen: ((ev: never) => void) | null = null;
  closed = false;
  private readonly listeners = new Map<string, Array<(ev: SseMessageEventLike) => void>>();
  constructor(readonly url: string) {
    FakeEventSource.all.push(this);
  }
  static get last(): FakeEventSource {
    return FakeEventSource.all[FakeEventSource.all.length - 1];
  }
  addEventListener(type: string, listener: (ev: SseMessageEventLike) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l({ data: JSON.stringify(data) });
  }
  fail(code?: number): void {
    (this.onerror as ((e: unknown) => void) | null)?.({ code, message: 'stream error' });
  }
}

export const msg = (room: string, seq: number, content = `m${seq}`): WireMessage => ({
  id: `${room}-${seq}`,
  seq,
  room_id: room,
  user_id: 'bob',
  content,
  metadata: {},
  timestamp: new Date(0).toISOString(),
  reactions: {},
});

export const tick = () => jest.advanceTimersByTimeAsync(0);

/** The server's refusal of a request over the rate limit (PROTOCOL.md section 11, Security). */
export const rateLimited = (id: string | undefined, retryAfterMs: number) => ({
  type: 'error',
  id,
  data: { code: 'rate_limited', message: 'too many requests, slow down', retry_after_ms: retryAfterMs },
});

export function makeClient(extra: Partial<StreamingClientOptions> = {}) {
  const client = new StreamingClient({
    url: 'ws://server:3000/ws',
    token: 'tok',
    WebSocket: FakeSocket,
    random: () => 0.5,
    ...extra,
  });
  const states: string[] = [];
  client.on('state', (s) => states.push(s.state));
  return { client, states };
}

export async function connected(extra: Partial<StreamingClientOptions> = {}) {
  const made = makeClient(extra);
  const p = made.client.connect();
  await tick();
  FakeSocket.last.accept();
  await p;
  return { ...made, socket: FakeSocket.last };
}

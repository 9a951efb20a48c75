import type { ClientEnvelope, ServerEnvelope, WireCodec } from '@nest-streaming/protocol';
import { StreamingClientError } from './errors';
import { bytesOf, envelopeEncoder, parseBinaryFrame, subprotocolOf } from './msgpack';
import { parseFrame } from './ndjson';
import type { StreamingClientOptions } from './options';
import type { HttpApi } from './rest';
import {
  toWsUrl,
  type CloseEventLike,
  type ErrorEventLike,
  type EventSourceConstructor,
  type EventSourceLike,
  type SseMessageEventLike,
  type WebSocketConstructor,
  type WebSocketLike,
} from './transports';

/** What one transport attempt knows about itself. */
export interface Attempt {
  gen: number;
  gotConnected: boolean;
  /** SSE: the attempt asked the server to replay (`last_event_id`), so a `resumed` event will come. */
  sseResume: Record<string, number> | null;
  lastError: string;
  httpStatus: number | undefined;
  /** The token the attempt connected with (the proactive refresh reads its `exp`). */
  token: string | undefined;
}

/** How the transport reports to the connection. Events of an attempt that is not current are dropped. */
export interface TransportEvents {
  /** The generation of the current attempt. */
  generation(): number;
  /** A server envelope arrived on the transport of `attempt`. */
  envelope(attempt: Attempt, env: ServerEnvelope): void;
  /** SSE: an event arrived (the stream is alive). Called before its `envelope`. */
  sseActivity(attempt: Attempt): void;
  /** The transport of `attempt` closed or failed. */
  closed(attempt: Attempt, code: number, reason: string): void;
}

/** SSE event names listened to by default. */
const SSE_EVENT_TYPES = [
  'connected',
  'message',
  'message_edited',
  'message_deleted',
  'reaction_added',
  'reaction_removed',
  'thread_updated',
  'typing',
  'presence',
  'user_joined',
  'user_left',
  'room_joined',
  'room_left',
  'room_created',
  'room_updated',
  'room_deleted',
  'room_listed',
  'room_unlisted',
  'channel_message',
  'member_banned',
  'member_unbanned',
  'member_kicked',
  'member_muted',
  'member_unmuted',
  'room_invitation',
  'role_changed',
  'read_state',
  'error',
  'heartbeat',
  'resumed',
];

/**
 * The platform transport of the current attempt: opens a WebSocket or an EventSource, turns its
 * callbacks into {@link TransportEvents}, and detaches it (no more callbacks) when abandoned.
 */
export class TransportSlot {
  /** The WebSocket of the current attempt (null otherwise, and in SSE mode). */
  socket: WebSocketLike | null = null;
  /**
   * The codec of the current WebSocket: the server's first frame (`connected`) tells it. With
   * `codec: 'msgpack'` that is a binary frame; a JSON text frame instead comes from a server
   * that does not speak MessagePack but accepted the subprotocol anyway (one that echoes any),
   * and the connection goes on in JSON.
   */
  codec: WireCodec = 'json';
  private codecKnown = false;
  private source: EventSourceLike | null = null;

  constructor(
    private readonly options: StreamingClientOptions,
    private readonly http: HttpApi,
    private readonly events: TransportEvents,
  ) {}

  /** Open the WebSocket of `attempt` (at `routedUrl` when a route look-up named one). */
  openWs(attempt: Attempt, token: string | undefined, routedUrl: string | undefined): void {
    const Ctor =
      this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
    if (!Ctor) {
      throw new StreamingClientError(
        'no_transport',
        'no WebSocket implementation: pass the `WebSocket` option (e.g. the ws package in Node)',
      );
    }
    const url = toWsUrl(routedUrl ?? this.options.url);
    if (token !== undefined) url.searchParams.set('token', token);
    const packed = this.options.codec === 'msgpack';
    const subprotocol = subprotocolOf(packed ? 'msgpack' : 'json');
    const socket =
      subprotocol === undefined ? new Ctor(url.toString()) : new Ctor(url.toString(), subprotocol);
    if (packed) socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.codec = packed ? 'msgpack' : 'json';
    this.codecKnown = !packed;
    const live = () => attempt.gen === this.events.generation() && this.socket === socket;
    socket.onmessage = (ev: { data: unknown }) => {
      if (!live()) return;
      const text = typeof ev.data === 'string' ? ev.data : null;
      if (!this.codecKnown) {
        this.codecKnown = true;
        if (text !== null) this.codec = 'json';
      }
      let envelopes: ServerEnvelope[];
      if (this.codec === 'json') {
        if (text === null) return;
        envelopes = parseFrame(text);
      } else {
        const bytes = bytesOf(ev.data);
        if (bytes === null) return;
        envelopes = parseBinaryFrame(bytes);
      }
      for (const env of envelopes) {
        if (!live()) return;
        this.events.envelope(attempt, env);
      }
    };
    socket.onerror = (ev: ErrorEventLike) => {
      if (!live()) return;
      attempt.lastError = ev?.message ?? 'WebSocket error';
      const m = /Unexpected server response: (\d{3})/.exec(attempt.lastError);
      if (m) attempt.httpStatus = Number(m[1]);
    };
    socket.onclose = (ev: CloseEventLike) => {
      if (!live()) return;
      this.socket = null;
      this.events.closed(attempt, ev?.code ?? 1006, ev?.reason || attempt.lastError);
    };
  }

  /** A request envelope in the codec of the current WebSocket. */
  encode(env: ClientEnvelope): string | Uint8Array {
    return envelopeEncoder(this.codec)(env);
  }

  /** Open the event stream of `attempt`, asking for a replay from `resumeFrom` (room -> seq) when not empty. */
  openSse(attempt: Attempt, token: string | undefined, resumeFrom: Record<string, number>): void {
    const Ctor =
      this.options.EventSource ??
      (globalThis as { EventSource?: EventSourceConstructor }).EventSource ??
      undefined;
    if (!Ctor) {
      throw new StreamingClientError(
        'no_transport',
        'no EventSource implementation: pass the `EventSource` option (e.g. the eventsource package in Node)',
      );
    }
    attempt.sseResume = Object.keys(resumeFrom).length > 0 ? resumeFrom : null;
    const source = new Ctor(this.sseUrl(token, attempt.sseResume));
    this.source = source;
    const live = () => attempt.gen === this.events.generation() && this.source === source;
    const types = new Set([...SSE_EVENT_TYPES, ...(this.options.sse?.eventTypes ?? [])]);
    for (const type of types) {
      source.addEventListener(type, (ev: SseMessageEventLike) => {
        if (!live()) return;
        let data: unknown;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        this.events.sseActivity(attempt);
        this.events.envelope(attempt, { type, data: data ?? {} });
      });
    }
    source.onerror = (ev: ErrorEventLike) => {
      if (!live()) return;
      // Never let EventSource reconnect by itself: it would resend one Last-Event-ID, not every room's.
      attempt.httpStatus = ev?.code ?? ev?.status;
      attempt.lastError = ev?.message ?? 'EventSource error';
      this.source = null;
      source.close();
      this.events.closed(attempt, 1006, attempt.lastError);
    };
  }

  /** Abandon the current transport: no more callbacks, and it is closed (with `code` for a WebSocket). */
  detach(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      socket.onopen = null;
      try {
        if (socket.readyState === 0 || socket.readyState === 1) socket.close(code, reason);
      } catch {
        // A socket still connecting may refuse close codes on some platforms; it is abandoned anyway.
      }
    }
    const source = this.source;
    this.source = null;
    if (source) {
      source.onerror = null;
      source.close();
    }
  }

  private sseUrl(token: string | undefined, resumeFrom: Record<string, number> | null): string {
    const q: string[] = [];
    if (token !== undefined) q.push(`token=${encodeURIComponent(token)}`);
    const rooms = this.options.sse?.rooms ?? [];
    if (rooms.length > 0) q.push(`rooms=${rooms.map(encodeURIComponent).join(',')}`);
    const channels = this.options.sse?.channels ?? [];
    if (channels.length > 0) q.push(`channels=${channels.map(encodeURIComponent).join(',')}`);
    if (resumeFrom && Object.keys(resumeFrom).length > 0) {
      const last = Object.entries(resumeFrom)
        .map(([room, seq]) => `${room}:${seq}`)
        .join(',');
      q.push(`last_event_id=${encodeURIComponent(last)}`);
    }
    return `${this.http.base}${this.http.routePath('sse', '/sse')}${q.length > 0 ? `?${q.join('&')}` : ''}`;
  }
}

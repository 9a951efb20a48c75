import { StreamingLogger } from '../../common/streaming-logger';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { OnApplicationShutdown, BeforeApplicationShutdown } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server, WebSocket, RawData, VerifyClientCallbackAsync } from 'ws';
import { StreamingOptions } from '../../config/streaming-options.interface';
import { Connection, ConnectionTransport, type WireFrame } from '../../connections/connection';
import { ConnectionLifecycleService } from '../../connections/connection-lifecycle.service';
import { ConnectionRegistry } from '../../connections/connection-registry';
import { SpreadSweep } from '../../connections/spread-sweep';
import { DecodedLine, decodeFrame, idsOfOversizedFrame } from '../../protocol/codec';
import { codecOfSubprotocol, msgpack, selectSubprotocol, type WireCodec } from '../../protocol/msgpack';
import { RequestDispatcherService } from '../../protocol/request-dispatcher.service';
import { StreamingError } from '../../protocol/streaming-error';
import { HTTP_REASONS } from '../../common/streaming-exception.filter';
import { StreamingAuthService } from '../../security/auth.service';
import { StreamingMetricsService } from '../../metrics/streaming-metrics.service';
import { InjectStreamingOptions } from '../../streaming.constants';
import type { ConnectionIdentity } from '../../interfaces';

/** Path of the WebSocket endpoint. */
export const STREAMING_WS_PATH = '/ws';

/** Requests one connection may have waiting before its socket is no longer read (TCP pushes back). */
const MAX_PENDING_REQUESTS = 256;

/** Bytes of a ws message (a Buffer unless the socket was configured otherwise). */
function rawToBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}

/** Nothing to run: the frame was answered already. */
const ANSWERED: readonly DecodedLine[] = [];

interface AuthedRequest extends IncomingMessage {
  streamingIdentity?: ConnectionIdentity;
  /** Set when admission corked the request's socket (see `WsTransport`). */
  streamingCorked?: boolean;
}

/**
 * UTF-8 bytes of the frame written last. A broadcast writes the same envelope
 * string to socket after socket: it is encoded once, not once per socket.
 */
class FrameEncoder {
  private text: string | null = null;
  private bytes: Buffer | null = null;

  encode(text: string): Buffer {
    if (text === this.text) return this.bytes!;
    const bytes = Buffer.from(text, 'utf8');
    // Large one-off frames (a history page) are not kept alive for the next write.
    this.text = text.length <= 65_536 ? text : null;
    this.bytes = this.text === null ? null : bytes;
    return bytes;
  }
}

const TEXT_FRAME = { binary: false } as const;
const BINARY_FRAME = { binary: true } as const;

/** The WebSocket transport: one `ws` socket per {@link Connection}; JSON text frames. */
class WsTransport implements ConnectionTransport {
  readonly kind = 'ws';
  readonly codec: WireCodec = 'json';
  constructor(
    readonly socket: WebSocket,
    private readonly encoder: FrameEncoder,
    /** The TCP socket, corked at admission: the 101 response waits for `connected` (one write for both). */
    private corked: Duplex | null = null,
  ) {}

  write(frames: readonly WireFrame[]): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    const text = frames as readonly string[]; // a JSON connection queues strings only
    if (text.length === 1) this.socket.send(this.encoder.encode(text[0]), TEXT_FRAME);
    else this.socket.send(text.join('\n'));
    this.uncork();
  }

  /** Let the bytes held since the upgrade go (after the first write, or before a close). */
  uncork(): void {
    if (this.corked === null) return;
    this.corked.uncork();
    this.corked = null;
  }

  bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  close(code: number, reason: string): void {
    this.uncork();
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
      const t = setTimeout(() => this.socket.terminate(), 2000);
      t.unref();
    }
  }
}

/**
 * A `nest-streaming.msgpack` socket: each write is one binary frame holding
 * the MessagePack envelopes of the batch, concatenated. The bytes of a
 * broadcast are shared by every such socket (see `StreamingHub.deliver`).
 */
class MsgpackWsTransport extends WsTransport {
  override readonly codec = 'msgpack';

  override write(frames: readonly WireFrame[]): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    const bytes = frames as readonly Uint8Array[]; // a MessagePack connection queues bytes only
    this.socket.send(bytes.length === 1 ? bytes[0] : Buffer.concat(bytes), BINARY_FRAME);
    this.uncork();
  }
}

/**
 * The WebSocket gateway at `/ws`: authenticates at the upgrade (HTTP 401),
 * picks the codec from the subprotocol (JSON, or MessagePack with
 * `nest-streaming.msgpack`), sends `connected`, splits frames into
 * envelopes, answers bad frames with documented errors, runs each
 * connection's requests in order, and detects dead peers with ping/pong.
 */
@WebSocketGateway({ path: STREAMING_WS_PATH })
export class StreamingGateway
  implements OnGatewayInit, OnGatewayConnection, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new StreamingLogger('streaming.manager.ws');
  private heartbeat: SpreadSweep<Connection> | null = null;
  private server: Server | null = null;
  private readonly encoder = new FrameEncoder();

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly auth: StreamingAuthService,
    private readonly dispatcher: RequestDispatcherService,
    private readonly lifecycle: ConnectionLifecycleService,
    private readonly metrics: StreamingMetricsService,
    private readonly registry: ConnectionRegistry,
  ) {}

  afterInit(server: Server): void {
    this.server = server;
    const opts = (server as unknown as { options: Record<string, unknown> }).options;
    // Frames up to 16x the limit are read and answered `message_too_large`; beyond that ws closes with 1009.
    opts.maxPayload = this.options.maxMessageSize * 16;
    const verify: VerifyClientCallbackAsync<AuthedRequest> = (info, done) => {
      this.lifecycle
        .admit(info.req)
        .then((identity) => {
          info.req.streamingIdentity = identity;
          // Held until `connected` is written: the 101 response and it leave in one write.
          info.req.socket.cork();
          info.req.streamingCorked = true;
          done(true);
        })
        .catch((err: unknown) => {
          const e = err instanceof StreamingError ? err : new StreamingError('unauthorized', 'unauthorized');
          const status = e.getStatus(); // 401, 429 for limits, a hook's refusal by its code
          this.metrics.authFailures.inc({ reason: e.code });
          const body = JSON.stringify({
            statusCode: status,
            error: HTTP_REASONS[status] ?? 'Error',
            message: e.message,
            code: e.code,
          });
          done(false, status, body, { 'Content-Type': 'application/json' });
        });
    };
    opts.verifyClient = verify;
    // The codec: the first subprotocol of the client's list that we speak (none: JSON).
    opts.handleProtocols = (offered: Set<string>) => selectSubprotocol(offered);
    // Every peer is pinged once per ping_interval, in slices spread over the interval
    // (one a second): the cost per connection is the same, the event loop is never held
    // for the whole node at once.
    this.heartbeat = new SpreadSweep(this.registry, this.options.pingInterval * 1000, (conns) =>
      this.checkPeers(conns),
    );
    this.heartbeat.start();
  }

  /**
   * Ping the WebSocket peers of one slice; one shared timer per slice (not
   * one per connection) terminates those not heard from since their ping
   * when `pong_timeout` is over. Compared by time, not by a flag the next
   * ping clears: with a `pong_timeout` longer than `ping_interval`, a peer
   * whose answer to a later ping is still on its way is not dead.
   */
  private checkPeers(slice: readonly Connection[]): void {
    const pinged: Connection[] = [];
    const sentAt = performance.now();
    for (const conn of slice) {
      // Not reading it is our doing (backpressure): its pong may be waiting unread.
      if (conn.transport.kind !== 'ws' || conn.closed || conn.readPaused) continue;
      (conn.transport as WsTransport).socket.ping();
      pinged.push(conn);
    }
    if (pinged.length === 0) return;
    const timer = setTimeout(() => {
      for (const conn of pinged) {
        if (conn.heardAt < sentAt && !conn.closed && !conn.readPaused)
          (conn.transport as WsTransport).socket.terminate();
      }
    }, this.options.pongTimeout * 1000);
    timer.unref();
  }

  handleConnection(socket: WebSocket, req: AuthedRequest): void {
    socket.on('error', (err) => this.logger.debug(`socket error: ${err.message}`));
    const identity = req.streamingIdentity;
    if (!identity) {
      socket.close(4401, 'unauthorized');
      return;
    }
    const corked = req.streamingCorked ? req.socket : null;
    const transport =
      codecOfSubprotocol(socket.protocol) === 'msgpack'
        ? new MsgpackWsTransport(socket, this.encoder, corked)
        : new WsTransport(socket, this.encoder, corked);
    const conn = this.lifecycle.create(randomUUID(), identity, transport);
    const pending: Array<() => Promise<void>> = [];
    let running = false;
    let ready = false;

    // Requests run one at a time, in order. Inbound backpressure: past
    // MAX_PENDING_REQUESTS waiting, the socket is not read until half of them
    // ran; and no request runs while the client has not read enough of what it
    // was sent (its answers wait, then its requests, then TCP stops it).
    const pump = async (): Promise<void> => {
      if (running || !ready) return;
      running = true;
      try {
        while (pending.length > 0 && !conn.closed) {
          const room = conn.whenWritable();
          if (room) await room;
          if (conn.closed) break;
          await pending.shift()!();
          if (conn.readPaused && pending.length <= MAX_PENDING_REQUESTS / 2) {
            conn.readPaused = false;
            socket.resume();
          }
        }
      } finally {
        running = false;
      }
    };

    socket.on('pong', () => {
      conn.heardAt = performance.now();
    });
    socket.on('message', (raw: RawData, isBinary: boolean) => {
      conn.heardAt = performance.now();
      const lines =
        conn.codec === 'json' ? this.readJson(conn, raw, isBinary) : this.readMsgpack(conn, raw, isBinary);
      if (lines === ANSWERED) return;
      for (const line of lines) {
        if (!line.ok) {
          this.dispatcher.sendError(conn, line.error, line.id);
          continue;
        }
        const env = line.envelope;
        pending.push(() => this.dispatcher.dispatch(conn, env));
      }
      if (!conn.readPaused && pending.length >= MAX_PENDING_REQUESTS) {
        conn.readPaused = true;
        socket.pause();
      }
      void pump();
    });
    socket.on('close', () => {
      pending.length = 0;
      void this.lifecycle.closed(conn);
    });

    this.lifecycle
      .open(conn)
      .then(() => {
        ready = true;
        void pump();
      })
      .catch((err: unknown) => {
        transport.uncork();
        this.logger.error(`connection setup failed: ${String(err)}`);
        conn.close(1011, 'setup failed');
      });
  }

  /** The envelopes of a frame of a JSON connection: a text frame of newline-delimited JSON. */
  private readJson(conn: Connection, raw: RawData, isBinary: boolean): readonly DecodedLine[] {
    if (isBinary) {
      this.dispatcher.sendError(
        conn,
        new StreamingError('invalid_message', 'binary frames are not accepted: send JSON text'),
      );
      return ANSWERED;
    }
    const text = rawToBuffer(raw).toString('utf8');
    const size = Buffer.byteLength(text);
    if (size > this.options.maxMessageSize) {
      this.tooLarge(conn, size, idsOfOversizedFrame(text));
      return ANSWERED;
    }
    return decodeFrame(text);
  }

  /** The envelopes of a frame of a MessagePack connection: a binary frame of concatenated MessagePack values. */
  private readMsgpack(conn: Connection, raw: RawData, isBinary: boolean): readonly DecodedLine[] {
    if (!isBinary) {
      this.dispatcher.sendError(
        conn,
        new StreamingError(
          'invalid_message',
          'text frames are not accepted on a nest-streaming.msgpack connection: send MessagePack in binary frames',
        ),
      );
      return ANSWERED;
    }
    const bytes = rawToBuffer(raw);
    if (bytes.length > this.options.maxMessageSize) {
      this.tooLarge(conn, bytes.length, msgpack.idsOfOversizedFrame(bytes));
      return ANSWERED;
    }
    return msgpack.decodeFrame(bytes);
  }

  /** Answer a frame over `max_message_size`: once per request id found in it. */
  private tooLarge(conn: Connection, size: number, ids: ReadonlyArray<string | undefined>): void {
    for (const id of ids) {
      this.dispatcher.sendError(
        conn,
        new StreamingError(
          'message_too_large',
          `frame of ${size} bytes exceeds max_message_size ${this.options.maxMessageSize}`,
        ),
        id,
      );
    }
  }

  /** Graceful shutdown: flush queued frames, then close every socket with 1001. */
  beforeApplicationShutdown(): void {
    this.heartbeat?.stop();
    this.heartbeat = null;
    for (const conn of this.lifecycle.connections('ws')) conn.close(1001, 'server shutting down', true);
  }

  onApplicationShutdown(): void {
    this.server = null;
  }
}

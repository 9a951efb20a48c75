import { StreamingLogger } from '../../common/streaming-logger';
import { randomUUID } from 'node:crypto';
import {
  Body,
  Get,
  HttpCode,
  Injectable,
  OnModuleDestroy,
  Param,
  Post,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ConnectionRegistry } from '../../connections/connection-registry';
import { StreamingError } from '../../protocol/streaming-error';
import { validateDto } from '../../protocol/request-dispatcher.service';
import { SubscribeDto, UnsubscribeDto } from '../../channels/channel-requests.dto';
import { StreamingAuthGuard, StreamingUser } from '../../security/streaming-auth.guard';
import { StreamingRateLimitGuard } from '../../security/rate-limit.guard';
import { SubscribeResult, UnsubscribeResult } from '../../channels/channel.service';
import type { Request, Response } from 'express';
import { StreamingOptions } from '../../config/streaming-options.interface';
import { Connection, ConnectionTransport } from '../../connections/connection';
import { ConnectionLifecycleService } from '../../connections/connection-lifecycle.service';
import { SpreadSweep } from '../../connections/spread-sweep';
import { encodeEnvelope } from '../../protocol/envelope';
import { HistoryService } from '../../history/history.service';
import { HTTP_STATUS_BY_CODE } from '@nest-streaming/protocol';
import { HTTP_REASONS } from '../../common/streaming-exception.filter';
import { toStreamingError } from '../../protocol/streaming-error';
import { RoomService } from '../../rooms/room.service';
import { resumeConnection } from '../../connections/resume-delivery';
import { ChannelService } from '../../channels/channel.service';
import { userToken } from '../../channels/channel-bus';
import { InjectStreamingOptions } from '../../streaming.constants';
import type { ConnectionIdentity } from '../../interfaces';
import { StreamingHooks } from '../../hooks/streaming-hooks.service';
import { s } from '@nest-streaming/protocol';
import { ApiDtoBody, ApiErrorResponses, ApiSchemaResponse } from '../../docs/openapi';
import {
  ApiBearerAuth,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '../../docs/swagger';

/** Turn one serialized envelope into an SSE event (`id: room:seq` on room messages). */
export function envelopeToSse(envelope: string): string {
  const env = JSON.parse(envelope) as { type: string; data: { room_id?: string; seq?: number } };
  const data = JSON.stringify(env.data);
  const id =
    env.type === 'message' && env.data.room_id !== undefined
      ? `id: ${env.data.room_id}:${env.data.seq}\n`
      : '';
  return `${id}event: ${env.type}\ndata: ${data}\n\n`;
}

/** Merge cursor maps, keeping the highest seq per room. */
export function mergeCursors(...maps: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps)
    for (const [room, seq] of Object.entries(m)) out[room] = Math.max(out[room] ?? 0, seq);
  return out;
}

/** Parse `Last-Event-ID` / `last_event_id`: `room:seq`, several joined by commas. */
export function parseLastEventId(value: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (value ?? '').split(',')) {
    const i = part.lastIndexOf(':');
    if (i <= 0) continue;
    const seq = Number(part.slice(i + 1));
    if (Number.isInteger(seq) && seq >= 0) out[part.slice(0, i).trim()] = seq;
  }
  return out;
}

class SseTransport implements ConnectionTransport {
  readonly kind = 'sse';
  constructor(readonly res: Response) {}

  write(frames: readonly string[]): void {
    if (this.res.writableEnded) return;
    let chunk = '';
    for (const f of frames) chunk += envelopeToSse(f);
    this.res.write(chunk);
  }

  bufferedAmount(): number {
    return this.res.writableLength;
  }

  close(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}

const csv = (v: unknown): string[] =>
  typeof v === 'string' && v.length > 0
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

/**
 * Server-Sent Events at `GET <routes.sse>` (default `/sse`): the same events
 * as WebSocket, `id:` cursors per room, `Last-Event-ID` replay, a heartbeat
 * every `ping_interval`. Mounted by `StreamingModule` at the configured path.
 */
@Injectable()
@ApiTags('streaming')
@ApiBearerAuth()
export class SseController implements OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.manager.sse');
  private heartbeat: SpreadSweep<Connection> | null = null;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly lifecycle: ConnectionLifecycleService,
    private readonly rooms: RoomService,
    private readonly history: HistoryService,
    private readonly channels: ChannelService,
    private readonly registry: ConnectionRegistry,
    private readonly hooks: StreamingHooks,
  ) {}

  onModuleDestroy(): void {
    this.heartbeat?.stop();
    for (const c of this.lifecycle.connections('sse')) c.close(1001, 'server shutting down', true);
  }

  @Get()
  @ApiOperation({
    summary: 'Server-Sent Events stream',
    description:
      'The same events as the WebSocket (`event: <type>`, `data: <JSON>`, `id: <room_id>:<seq>` on room messages), ' +
      'a `heartbeat` every `ping_interval`; described in the AsyncAPI document. The token comes from ' +
      '`Authorization: Bearer` or `?token=`.',
  })
  @ApiProduces('text/event-stream')
  @ApiQuery({
    type: String,
    name: 'rooms',
    required: false,
    description: 'Rooms to join, comma separated (like `join_room`).',
  })
  @ApiQuery({
    type: String,
    name: 'channels',
    required: false,
    description: 'Channels or patterns to subscribe to, comma separated (e.g. `x.y,user.*.alerts`).',
  })
  @ApiQuery({ type: String, name: 'token', required: false, description: 'The JWT, instead of the header.' })
  @ApiQuery({
    type: String,
    name: 'last_event_id',
    required: false,
    description:
      'Replay missed room messages first: `<room_id>:<seq>`, comma separated (or `Last-Event-ID`).',
  })
  @ApiResponse({ status: 200, description: 'The event stream.', schema: { type: 'string' } })
  @ApiErrorResponses(401, 429)
  async stream(@Req() req: Request, @Res() res: Response): Promise<void> {
    let conn: Connection;
    try {
      const identity = await this.lifecycle.admit(req, 'sse');
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.write(`retry: 2000\n\n`);
      conn = this.lifecycle.create(randomUUID(), identity, new SseTransport(res));
    } catch (err) {
      const e = toStreamingError(err);
      const status = HTTP_STATUS_BY_CODE[e.code] ?? 500;
      res.status(status).json({
        statusCode: status,
        error: HTTP_REASONS[status] ?? 'Error',
        message: e.message,
        code: e.code,
      });
      return;
    }
    req.on('close', () => void this.lifecycle.closed(conn));
    this.ensureHeartbeat();
    // Cursors from the Last-Event-ID header and ?last_event_id= (the newest per room wins).
    const header = req.headers['last-event-id'];
    const last = mergeCursors(
      parseLastEventId(Array.isArray(header) ? header[0] : header),
      parseLastEventId(typeof req.query.last_event_id === 'string' ? req.query.last_event_id : undefined),
    );
    const resumeRooms = Object.keys(last);
    // Hold live events of the resumed rooms from the first moment, so the replay comes first.
    for (const room of resumeRooms) conn.hold(room);
    await this.lifecycle.open(conn);

    for (const roomId of csv(req.query.rooms)) {
      await this.hooks
        .join({ identity: conn.identity, roomId })
        .then(() => this.rooms.join(conn.userId, roomId))
        .catch((err: unknown) => this.sendError(conn, err));
    }
    if (this.options.enableChannels) {
      const own = `user.${userToken(conn.userId)}.notifications`;
      await this.channels.subscribe(conn, own).catch((err: unknown) => this.sendError(conn, err));
      for (const channel of csv(req.query.channels)) {
        await this.hooks
          .subscribe({ identity: conn.identity, channel })
          .then((filters) => this.channels.subscribe(conn, channel, filters))
          .catch((err: unknown) => this.sendError(conn, err));
      }
    }
    if (resumeRooms.length > 0) {
      await resumeConnection(conn, this.history, last).catch((err: unknown) => this.sendError(conn, err));
    }
  }

  /** The caller's own open SSE stream on this node (its id is in the stream's `connected` event). */
  private ownStream(identity: ConnectionIdentity, connectionId: string): Connection {
    const conn = this.registry.get(connectionId);
    if (!conn || conn.transport.kind !== 'sse') {
      throw new StreamingError('invalid_message', `no open SSE stream ${connectionId} on this node`);
    }
    if (conn.userId !== identity.userId)
      throw new StreamingError('forbidden', 'that stream belongs to another user');
    return conn;
  }

  /** Subscribe an open SSE stream to a channel or pattern: `POST /sse/:connectionId/subscriptions {channel, filters?}`. */
  @Post(':connectionId/subscriptions')
  @HttpCode(200)
  @UseGuards(StreamingAuthGuard, StreamingRateLimitGuard)
  @ApiOperation({ summary: 'Subscribe an open SSE stream to a channel or pattern' })
  @ApiParam({ name: 'connectionId', description: "The stream's `connection_id` (its `connected` event)." })
  @ApiDtoBody(SubscribeDto)
  @ApiSchemaResponse(200, 'Subscribed.', s.object({ channel: s.string({ description: 'As subscribed.' }) }))
  @ApiErrorResponses(400, 401, 403, 429)
  async subscribe(
    @StreamingUser() user: ConnectionIdentity,
    @Param('connectionId') connectionId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<SubscribeResult> {
    const d = validateDto(SubscribeDto, body ?? {});
    const conn = this.ownStream(user, connectionId);
    const filters = await this.hooks.subscribe({
      identity: conn.identity,
      channel: d.channel,
      filters: d.filters,
    });
    return this.channels.subscribe(conn, d.channel, filters);
  }

  /** Unsubscribe an open SSE stream: `POST /sse/:connectionId/unsubscribe {channel}`. */
  @Post(':connectionId/unsubscribe')
  @HttpCode(200)
  @UseGuards(StreamingAuthGuard, StreamingRateLimitGuard)
  @ApiOperation({ summary: 'Unsubscribe an open SSE stream from a channel or pattern' })
  @ApiParam({ name: 'connectionId', description: "The stream's `connection_id` (its `connected` event)." })
  @ApiDtoBody(UnsubscribeDto)
  @ApiSchemaResponse(
    200,
    'Unsubscribed (idempotent).',
    s.object({
      channel: s.string(),
      removed: s.boolean({ description: 'False when the stream was not subscribed to it.' }),
    }),
  )
  @ApiErrorResponses(400, 401, 403, 429)
  unsubscribe(
    @StreamingUser() user: ConnectionIdentity,
    @Param('connectionId') connectionId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<UnsubscribeResult> {
    const d = validateDto(UnsubscribeDto, body ?? {});
    return this.channels.unsubscribe(this.ownStream(user, connectionId), d.channel);
  }

  private sendError(conn: Connection, err: unknown): void {
    conn.sendEvent('error', toStreamingError(err).toData());
  }

  private ensureHeartbeat(): void {
    if (this.heartbeat) return;
    // Once per ping_interval per stream, in slices spread over the interval (see the WebSocket
    // keep-alive); the envelope is encoded and measured once per slice.
    this.heartbeat = new SpreadSweep(this.registry, this.options.pingInterval * 1000, (conns) => {
      const frame = encodeEnvelope('heartbeat', { timestamp: new Date().toISOString() });
      const bytes = Buffer.byteLength(frame);
      for (const c of conns) if (c.transport.kind === 'sse') c.send(frame, bytes);
    });
    this.heartbeat.start();
    this.logger.debug('SSE heartbeat started');
  }
}

import { StreamingLogger } from '../common/streaming-logger';
import { Inject, Injectable } from '@nestjs/common';
import { validateSync } from 'class-validator';
import { StreamingOptions } from '../config/streaming-options.interface';
import { Connection } from '../connections/connection';
import { HistoryService } from '../history/history.service';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import { PresenceService } from '../presence/presence.service';
import { RoomService } from '../rooms/room.service';
import { ReadStateService } from '../rooms/read-state.service';
import { MarkReadDto } from './requests.dto';
import { ModerationService } from '../moderation/moderation.service';
import { ChannelService } from '../channels/channel.service';
import { PublishDto, SubscribeDto, UnsubscribeDto } from '../channels/channel-requests.dto';
import { CreateChannelDto, FindChannelsDto } from './requests.dto';
import { StreamingHooks } from '../hooks/streaming-hooks.service';
import { MessageSearchService } from '../history/message-search';
import { inSpan } from '../common/tracing';
import { TypingService } from '../typing/typing.service';
import { ClientEnvelope } from './envelope';
import {
  CreateRoomDto,
  EditMessageDto,
  GetHistoryDto,
  GetThreadDto,
  GetPresenceDto,
  InviteDto,
  ModerateDto,
  ModerationLogDto,
  UpdateRoomDto,
  MessageRefDto,
  ReactionDto,
  OpenDirectDto,
  SearchMessagesDto,
  RefreshTokenDto,
  ResumeDto,
  RoomRefDto,
  SendMessageDto,
  SetPresenceDto,
  SetRoleDto,
} from './requests.dto';
import { StreamingError, toStreamingError } from './streaming-error';
import { messageToWire, moderationEntryToWire } from './wire';
import { resumeConnection } from '../connections/resume-delivery';
import { encodeEnvelope } from './envelope';
import {
  STREAMING_AUTHENTICATOR,
  STREAMING_RATE_LIMITER,
  STREAMING_MESSAGE_RATE_LIMITER,
  InjectStreamingOptions,
} from '../streaming.constants';
import type { Authenticator, RateLimiter } from '../interfaces';
import { StreamingAuthService } from '../security/auth.service';

/** Returned by a handler that answered by itself (e.g. `ping` answers with `pong`). */
export const NO_ACK = Symbol('NO_ACK');

type Ctor<T> = new () => T;
type HandlerResult = Record<string, unknown> | typeof NO_ACK;
interface RequestHandler<T extends object = object> {
  dto?: Ctor<T>;
  run(conn: Connection, data: T, id: string | undefined): Promise<HandlerResult>;
}

const handler = <T extends object>(
  dto: Ctor<T> | undefined,
  run: (conn: Connection, data: T, id: string | undefined) => Promise<HandlerResult>,
): RequestHandler => ({ dto, run });

/**
 * The one path of a request: type → handler, rate limit, DTO validation,
 * authorization hook, service call, then exactly one `ack` or `error` per id.
 */
@Injectable()
export class RequestDispatcherService {
  private readonly logger = new StreamingLogger('streaming.manager.requests');
  private readonly handlers: Record<string, RequestHandler>;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    @Inject(STREAMING_AUTHENTICATOR) private readonly authenticator: Authenticator,
    @Inject(STREAMING_RATE_LIMITER) private readonly rateLimiter: RateLimiter,
    private readonly rooms: RoomService,
    private readonly history: HistoryService,
    private readonly presence: PresenceService,
    private readonly typing: TypingService,
    private readonly moderation: ModerationService,
    private readonly channels: ChannelService,
    private readonly metrics: StreamingMetricsService,
    @Inject(STREAMING_MESSAGE_RATE_LIMITER) private readonly messageLimiter: RateLimiter,
    private readonly auth: StreamingAuthService,
    private readonly hooks: StreamingHooks,
    private readonly search: MessageSearchService,
    private readonly readState: ReadStateService,
  ) {
    this.handlers = this.buildHandlers();
  }

  /** Known request types. */
  get types(): string[] {
    return Object.keys(this.handlers);
  }

  /** Handle one envelope of a connection; never throws. */
  async dispatch(conn: Connection, env: ClientEnvelope): Promise<void> {
    // What the request sends its own connection, and its ack or error, go out as one write.
    conn.answering = true;
    try {
      await this.run(conn, env);
    } finally {
      conn.answering = false;
    }
  }

  private async run(conn: Connection, env: ClientEnvelope): Promise<void> {
    conn.lastActivity = Date.now();
    this.presence.touch(conn.userId);
    const h = Object.prototype.hasOwnProperty.call(this.handlers, env.type)
      ? this.handlers[env.type]
      : undefined;
    this.metrics.messagesIn.inc({ type: h ? env.type : 'unknown' });
    try {
      if (
        this.options.auth.validateOnMessage &&
        conn.identity.expiresAt !== undefined &&
        conn.identity.expiresAt <= Date.now()
      ) {
        conn.close(4401, 'token expired', true);
        return;
      }
      if (!h) throw new StreamingError('unknown_type', `unknown request type "${env.type}"`);
      if (this.options.rateLimit.enabled && env.type !== 'ping') {
        const key = this.options.rateLimit.perConnection ? conn.id : conn.userId;
        const verdict = await this.rateLimiter.checkLimit(key, env.type);
        if (!verdict.allowed) {
          throw new StreamingError('rate_limited', 'too many requests, slow down', {
            retry_after_ms: verdict.retryAfterMs,
          });
        }
        const msg = await this.messageLimiter.checkLimit(conn.userId, env.type);
        if (!msg.allowed) {
          throw new StreamingError('rate_limited', 'too many messages, slow down', {
            retry_after_ms: msg.retryAfterMs,
          });
        }
      }
      const data = h.dto ? validateDto(h.dto, env.data) : env.data;
      if (this.authenticator.authorizeMessage) await this.authenticator.authorizeMessage(conn.identity, env);
      const result = await inSpan(
        `streaming.request.${env.type}`,
        { 'streaming.user_id': conn.userId, 'streaming.connection_id': conn.id },
        () => h.run(conn, data, env.id),
      );
      if (result !== NO_ACK && env.id !== undefined) {
        // Queued for the end of this turn: the flush that writes it also writes what the
        // request queued for other local sockets (the requester never reads its ack first).
        conn.send(encodeEnvelope('ack', result, env.id), undefined, true);
      }
    } catch (err) {
      const e = toStreamingError(err);
      if (e.code === 'internal')
        this.logger.error(`${env.type} failed: ${err instanceof Error ? err.stack : String(err)}`);
      this.sendError(conn, e, env.id);
    }
  }

  /** Send an error frame (with the request id when there was one). */
  sendError(conn: Connection, e: StreamingError, id?: string): void {
    this.metrics.errors.inc({ code: e.code });
    conn.send(encodeEnvelope('error', e.toData(), id));
  }

  private buildHandlers(): Record<string, RequestHandler> {
    const { rooms, history, presence, typing, moderation, channels } = this;
    return {
      ping: handler(undefined, async (conn, _d, id) => {
        conn.sendEvent('pong', { timestamp: new Date().toISOString() }, id);
        return NO_ACK;
      }),
      refresh_token: handler(RefreshTokenDto, async (conn, d) => {
        conn.reauthenticate(await this.auth.refresh(conn.identity, d.token));
        const exp = conn.identity.expiresAt;
        return { expires_at: exp === undefined ? null : new Date(exp).toISOString() };
      }),
      create_room: handler(CreateRoomDto, async (conn, d) => ({
        room: await rooms.create(conn.userId, {
          name: d.name,
          description: d.description,
          private: d.private,
          maxMembers: d.max_members ?? null,
          metadata: d.metadata,
        }),
      })),
      search_messages: handler(SearchMessagesDto, async (conn, d) => ({
        messages: await this.search.search(conn.userId, d.room_id, d.query, d.limit),
      })),
      open_direct: handler(OpenDirectDto, async (conn, d) => ({
        room: await rooms.openDirect(conn.userId, d.user_id),
      })),
      mark_read: handler(MarkReadDto, async (conn, d) => ({
        ...(await this.readState.markRead(conn.userId, d.room_id, d.seq)),
      })),
      get_unread: handler(undefined, async (conn) => ({ rooms: await this.readState.unread(conn.userId) })),
      join_room: handler(RoomRefDto, async (conn, d) => {
        await this.hooks.join({ identity: conn.identity, roomId: d.room_id });
        const ev = await rooms.join(conn.userId, d.room_id);
        return { room_id: ev.room_id, room: ev.room, latest_seq: ev.latest_seq };
      }),
      leave_room: handler(RoomRefDto, async (conn, d) => {
        await rooms.leave(conn.userId, d.room_id);
        return { room_id: d.room_id };
      }),
      send_message: handler(SendMessageDto, async (conn, d) => {
        const f = await this.hooks.sendMessage({
          identity: conn.identity,
          roomId: d.room_id,
          content: d.content,
          metadata: d.metadata ?? {},
        });
        const m = await history.send(conn.userId, d.room_id, f.content, f.metadata, d.reply_to);
        return { message_id: m.id, seq: m.seq };
      }),
      edit_message: handler(EditMessageDto, async (conn, d) => {
        const content = await this.hooks.editMessage(conn.identity, d.room_id, d.content);
        const m = await history.edit(conn.userId, d.room_id, d.message_id, content);
        return { message: messageToWire(m) };
      }),
      delete_message: handler(MessageRefDto, async (conn, d) => {
        await history.delete(conn.userId, d.room_id, d.message_id);
        return { room_id: d.room_id, message_id: d.message_id };
      }),
      add_reaction: handler(ReactionDto, async (conn, d) => {
        const m = await history.react(conn.userId, d.room_id, d.message_id, d.reaction, true);
        return { reactions: m.reactions };
      }),
      remove_reaction: handler(ReactionDto, async (conn, d) => {
        const m = await history.react(conn.userId, d.room_id, d.message_id, d.reaction, false);
        return { reactions: m.reactions };
      }),
      get_history: handler(GetHistoryDto, async (conn, d) => ({
        messages: await history.page(conn.userId, d.room_id, {
          limit: d.limit,
          before: d.before,
          after: d.after,
        }),
      })),
      get_thread: handler(GetThreadDto, async (conn, d) => ({
        messages: await history.thread(conn.userId, d.room_id, d.thread_id, d.limit),
      })),
      resume: handler(ResumeDto, async (conn, d) => {
        for (const [room, seq] of Object.entries(d.rooms)) {
          if (!Number.isInteger(seq) || seq < 0) {
            throw new StreamingError('invalid_message', `rooms.${room} must be a non-negative integer seq`);
          }
        }
        // Live events of these rooms wait until the replay is written, so seq order holds.
        return (await resumeConnection(conn, history, d.rooms)) ?? NO_ACK;
      }),
      start_typing: handler(RoomRefDto, async (conn, d) => {
        await rooms.requirePermission(d.room_id, conn.userId, 'type');
        await typing.start(conn.userId, d.room_id);
        return { room_id: d.room_id, typing: true };
      }),
      stop_typing: handler(RoomRefDto, async (conn, d) => {
        await rooms.requireMember(d.room_id, conn.userId);
        await typing.stop(conn.userId, d.room_id);
        return { room_id: d.room_id, typing: false };
      }),
      set_role: handler(SetRoleDto, async (conn, d) => {
        await rooms.setRole(conn.userId, d.room_id, d.user_id, d.role);
        return { room_id: d.room_id, user_id: d.user_id, role: d.role };
      }),
      invite: handler(InviteDto, async (conn, d) => {
        await rooms.invite(conn.userId, d.room_id, d.user_id);
        return { room_id: d.room_id, user_id: d.user_id };
      }),
      moderate: handler(ModerateDto, async (conn, d) =>
        moderation.moderate(conn.userId, {
          roomId: d.room_id,
          action: d.action,
          targetId: d.target_id,
          reason: d.reason,
          durationS: d.duration_s,
        }),
      ),
      update_room: handler(UpdateRoomDto, async (conn, d) => ({
        room: await rooms.update(conn.userId, d.room_id, {
          name: d.name,
          description: d.description,
          private: d.private,
          maxMembers: d.max_members,
        }),
      })),
      get_moderation_log: handler(ModerationLogDto, async (conn, d) => ({
        entries: (await moderation.log(conn.userId, d.room_id, d.limit)).map(moderationEntryToWire),
      })),
      subscribe: handler(SubscribeDto, async (conn, d) => {
        const filters = await this.hooks.subscribe({
          identity: conn.identity,
          channel: d.channel,
          filters: d.filters,
        });
        return { ...(await channels.subscribe(conn, d.channel, filters)) };
      }),
      unsubscribe: handler(UnsubscribeDto, async (conn, d) => ({
        ...(await channels.unsubscribe(conn, d.channel)),
      })),
      publish: handler(PublishDto, async (conn, d) => {
        const p = await this.hooks.publish({
          identity: conn.identity,
          channel: d.channel,
          data: d.data,
          metadata: d.metadata,
        });
        return { ...(await channels.publish(conn.identity, d.channel, p.data, p.metadata)) };
      }),
      create_channel: handler(CreateChannelDto, async (conn, d) => ({
        channel: await channels.createChannel(conn.identity, {
          name: d.name,
          private: d.private,
          description: d.description,
        }),
      })),
      list_channels: handler(undefined, async (conn) => ({
        channels: await channels.listChannels(conn.identity),
      })),
      find_channels: handler(FindChannelsDto, async (conn, d) => ({
        channels: await channels.findByPattern(d.pattern, conn.identity),
      })),
      set_presence: handler(SetPresenceDto, async (conn, d) => ({
        presence: await presence.set(conn.userId, d.status, d.custom),
      })),
      get_presence: handler(GetPresenceDto, async (conn, d) => {
        if (!this.options.enablePresence)
          throw new StreamingError('feature_disabled', 'presence is disabled on this server');
        if (d.room_id !== undefined) {
          const members = await rooms.members(d.room_id);
          if (!members.some((m) => m.user_id === conn.userId)) {
            throw new StreamingError('not_room_member', `you are not a member of room ${d.room_id}`);
          }
          return { presence: await presence.presenceOf(members.map((m) => m.user_id)) };
        }
        if (d.user_ids !== undefined) {
          // Only users who share a room with the caller; the others are left out.
          return { presence: await presence.presenceOf(await rooms.sharingRoom(conn.userId, d.user_ids)) };
        }
        throw new StreamingError('invalid_message', 'get_presence needs room_id or user_ids');
      }),
    };
  }
}

/**
 * Validate request data against its DTO class; `invalid_message` lists every
 * violation. The instance gets the data's own keys as plain properties (never
 * by assignment, so no key can change its prototype); keys that name members
 * of `Object.prototype` are refused; an object that is not a DTO instance
 * fails (`forbidUnknownValues`).
 */
export function validateDto<T extends object>(dto: Ctor<T>, data: Record<string, unknown>): T {
  const instance = new dto();
  for (const key of Object.keys(data)) {
    // `constructor`, `__proto__`, `toString`...: would shadow what validation looks up on the instance.
    if (key in Object.prototype)
      throw new StreamingError('invalid_message', `the key "${key}" is not allowed`);
    Object.defineProperty(instance, key, {
      value: data[key],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const errors = validateSync(instance, { forbidUnknownValues: true, validationError: { target: false } });
  if (errors.length > 0) {
    const details = errors.map(
      (e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ') || 'invalid'}`,
    );
    throw new StreamingError('invalid_message', `invalid data: ${details.join('; ')}`);
  }
  return instance;
}

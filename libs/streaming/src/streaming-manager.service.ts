import { Injectable } from '@nestjs/common';
import { StreamingOptions } from './config/streaming-options.interface';
import { FanoutService } from './connections/fanout.service';
import { HistoryService, HistoryPage } from './history/history.service';
import { StreamingStatsService } from './metrics/streaming-stats.service';
import { WireMessage, WireRoom } from './protocol/wire';
import { Connection } from './connections/connection';
import { ModerationService } from './moderation/moderation.service';
import { ChannelService, PublishResult } from './channels/channel.service';
import { CreateRoomInput, RoomService } from './rooms/room.service';
import { InjectPresenceStore, InjectStreamingBackend, InjectStreamingOptions } from './streaming.constants';
import { PresenceStore, StoredMessage, StreamingBackend } from './interfaces';
import { PresenceService } from './presence/presence.service';
import { StreamingError } from './protocol/streaming-error';
import { WirePresence, messageToWire } from './protocol/wire';

/** What `getStats()` returns (also `GET <routes.stats>`). */
export interface StreamingStatsSnapshot {
  node_id: string;
  backend: string;
  active_connections: number;
  connections_by_transport: { ws: number; sse: number };
  users_online: number;
  total_rooms: number;
  total_channels: number;
  messages_per_second: number;
  total_messages: number;
  uptime_s: number;
}

/**
 * Server-side API: what a client does
 * over the wire, an app can do from code.
 */
@Injectable()
export class StreamingManager {
  constructor(
    @InjectStreamingBackend() private readonly backend: StreamingBackend,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly history: HistoryService,
    private readonly rooms: RoomService,
    private readonly moderation: ModerationService,
    private readonly channels: ChannelService,
    private readonly stats: StreamingStatsService,
    private readonly presence: PresenceService,
    @InjectPresenceStore() private readonly presenceStore: PresenceStore,
  ) {}

  /** Statistics of this node (rooms are cluster-wide). */
  async getStats(): Promise<StreamingStatsSnapshot> {
    const reg = this.fanout.registry;
    return {
      node_id: this.options.nodeId,
      backend: this.backend.kind,
      active_connections: reg.size,
      connections_by_transport: reg.transportCounts(),
      users_online: reg.usersOnline,
      total_rooms: await this.backend.countRooms(),
      total_channels: (await this.channels.stats()).total_channels,
      messages_per_second: this.stats.messagesPerSecond(),
      total_messages: this.stats.totalMessages,
      uptime_s: Math.round((Date.now() - this.stats.startedAt.getTime()) / 1000),
    };
  }

  /**
   * Send an event to every member connection of a room, on every node. Like
   * every sending method here, it settles once this node's readers of the
   * room have room again, so a loop of sends is paced by them instead of
   * overrunning their budget.
   */
  async broadcastToRoom(roomId: string, type: string, data: unknown): Promise<void> {
    await this.fanout.publishToRoom(roomId, type, data);
    await this.fanout.roomWritable(roomId);
  }

  /** Send an event to every connection of a user, on every node (paced like {@link broadcastToRoom}). */
  async sendToUser(userId: string, type: string, data: unknown): Promise<void> {
    await this.fanout.publishToUser(userId, type, data);
    await this.fanout.writable(this.fanout.registry.userConnections(userId));
  }

  /**
   * Store and deliver a message as `userId` (no membership checks; paced like
   * {@link broadcastToRoom}); with `replyTo`, a thread reply to that message
   * of the room (`message_not_found` otherwise).
   */
  async saveMessage(
    roomId: string,
    userId: string,
    content: string,
    metadata?: Record<string, unknown>,
    replyTo?: string,
  ): Promise<StoredMessage> {
    const message = await this.history.save(roomId, userId, content, metadata, replyTo);
    await this.fanout.roomWritable(roomId);
    return message;
  }

  /** Edit a message as `by` (no permission checks). */
  editMessage(roomId: string, messageId: string, content: string, by = 'server'): Promise<StoredMessage> {
    return this.history.commitEdit(roomId, messageId, content, by);
  }

  /** Delete a message as `by` (no permission checks); a tombstone stays in history. */
  deleteMessage(roomId: string, messageId: string, by = 'server'): Promise<void> {
    return this.history.commitDelete(roomId, messageId, by);
  }

  /** Add a reaction of `userId`. */
  addReaction(roomId: string, messageId: string, reaction: string, userId: string): Promise<StoredMessage> {
    return this.history.commitReaction(roomId, messageId, reaction, userId, true);
  }

  /** Remove a reaction of `userId`. */
  removeReaction(
    roomId: string,
    messageId: string,
    reaction: string,
    userId: string,
  ): Promise<StoredMessage> {
    return this.history.commitReaction(roomId, messageId, reaction, userId, false);
  }

  /** Ban a user from a room (optionally for `durationS` seconds). */
  banUser(roomId: string, userId: string, reason = '', durationS?: number): Promise<Record<string, unknown>> {
    return this.moderation.moderate(null, { roomId, action: 'ban', targetId: userId, reason, durationS });
  }

  /** Lift a ban. */
  unbanUser(roomId: string, userId: string): Promise<Record<string, unknown>> {
    return this.moderation.moderate(null, { roomId, action: 'unban', targetId: userId });
  }

  /** Remove a member from a room (they may join again). */
  kickUser(roomId: string, userId: string, reason = ''): Promise<Record<string, unknown>> {
    return this.moderation.moderate(null, { roomId, action: 'kick', targetId: userId, reason });
  }

  /** Mute a member (optionally for `durationS` seconds). */
  muteUser(
    roomId: string,
    userId: string,
    reason = '',
    durationS?: number,
  ): Promise<Record<string, unknown>> {
    return this.moderation.moderate(null, { roomId, action: 'mute', targetId: userId, reason, durationS });
  }

  /** Lift a mute. */
  unmuteUser(roomId: string, userId: string): Promise<Record<string, unknown>> {
    return this.moderation.moderate(null, { roomId, action: 'unmute', targetId: userId });
  }

  /** Invite a user to a room. */
  inviteUser(roomId: string, userId: string): Promise<void> {
    return this.rooms.invite(null, roomId, userId);
  }

  /** Create a room owned by `ownerId`. */
  createRoom(ownerId: string, input: CreateRoomInput): Promise<WireRoom> {
    return this.rooms.create(ownerId, input);
  }

  /** Delete a room. */
  deleteRoom(roomId: string): Promise<void> {
    return this.rooms.delete(null, roomId);
  }

  /** Local connections of a user on this node. */
  getUserConnections(userId: string): ReadonlySet<Connection> {
    return this.fanout.registry.userConnections(userId);
  }

  /** Publish on a channel as the server (reaches every matching subscriber on every node). */
  async publishToChannel(
    channel: string,
    data: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ): Promise<PublishResult> {
    const result = await this.channels.publish(null, channel, data, metadata);
    await this.fanout.writable([]); // one write per turn for a loop of publishes
    return result;
  }

  /** A page of a room's history, oldest first, as `get_history` pages it (`room_not_found` for an unknown room). */
  async getHistory(roomId: string, page: HistoryPage = {}): Promise<WireMessage[]> {
    await this.rooms.members(roomId);
    return this.history.read(roomId, page);
  }

  /**
   * Store and deliver a message in an existing room, exactly like
   * `send_message` (seq, history, resume); `room_not_found` otherwise.
   * `userId` defaults to `"system"`; `replyTo` makes it a thread reply. The
   * server API's room message.
   */
  async postMessage(
    roomId: string,
    content: string,
    opts: { userId?: string; metadata?: Record<string, unknown>; replyTo?: string } = {},
  ): Promise<WireMessage> {
    await this.rooms.members(roomId); // room_not_found
    if (Buffer.byteLength(content) > this.options.maxMessageSize) {
      throw new StreamingError('message_too_large', `content is over ${this.options.maxMessageSize} bytes`);
    }
    const stored = await this.saveMessage(
      roomId,
      opts.userId ?? 'system',
      content,
      opts.metadata,
      opts.replyTo,
    );
    return messageToWire(stored);
  }

  /**
   * Close every connection of a user, on every node, with code 4403 and
   * `reason`. Returns how many were open on all nodes, or null when the
   * backend could not say.
   */
  async disconnectUser(userId: string, reason = 'disconnected by the server'): Promise<number | null> {
    // Counted before the close, which makes the nodes drop their counts.
    const total = this.backend.distributed
      ? await this.presenceStore
          .userConnections(userId)
          .then((perNode) => Object.values(perNode).reduce((a, b) => a + b, 0))
          .catch(() => null)
      : null;
    const local = await this.fanout.closeUser(userId, 4403, closeReason(reason));
    return this.backend.distributed ? total : local;
  }

  /** Presence of every member of a room (`room_not_found` for an unknown room). */
  async roomPresence(roomId: string): Promise<WirePresence[]> {
    if (!this.options.enablePresence) {
      throw new StreamingError('feature_disabled', 'presence is disabled on this server');
    }
    const members = await this.rooms.members(roomId);
    return this.presence.presenceOf(members.map((m) => m.user_id));
  }
}

/** A WebSocket close reason: at most 123 bytes of UTF-8, cut on a character boundary. */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  for (const ch of reason) {
    if (Buffer.byteLength(out + ch) > 123) break;
    out += ch;
  }
  return out;
}

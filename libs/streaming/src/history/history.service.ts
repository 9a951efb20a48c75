import { StreamingLogger } from '../common/streaming-logger';
import { randomUUID } from 'node:crypto';
import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import { StreamingError } from '../protocol/streaming-error';
import { WireMessage, messageToWire } from '../protocol/wire';
import { retentionCutoff, retentionMs, trimShare } from './retention';
import { RoomService } from '../rooms/room.service';
import { outranks, roleHas } from '../rooms/room-permissions';
import { StreamingStatsService } from '../metrics/streaming-stats.service';
import { StreamingEvents } from '../events/streaming-events';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import {
  InjectBroker,
  InjectNodeDirectory,
  InjectRoomStore,
  InjectStreamingOptions,
} from '../streaming.constants';
import {
  Broker,
  MessageMutation,
  MutationResult,
  NodeDirectory,
  Restriction,
  RoomStore,
  StoredMessage,
  roomTopic,
} from '../interfaces';

/** The `muted` error of a live mute (with its end, when timed). */
function mutedError(roomId: string, mute: Restriction): StreamingError {
  return new StreamingError(
    'muted',
    `you are muted in room ${roomId}`,
    mute.until ? { until: new Date(mute.until).toISOString() } : {},
  );
}

/** Default and largest page of `get_history`. */
export const DEFAULT_HISTORY_LIMIT = 50;
export const MAX_HISTORY_LIMIT = 1000;

/** A history page request (seq numbers). */
export interface HistoryPage {
  limit?: number;
  before?: number;
  after?: number;
}

/** Default and largest page of `get_thread` (the first message included). */
export const DEFAULT_THREAD_LIMIT = 50;
export const MAX_THREAD_LIMIT = 100;
/** Messages read per backend call while scanning history for a thread's replies. */
const THREAD_SCAN_PAGE = 500;

/** Messages of a resume replay fetched per backend read (the replay is written page by page). */
export const RESUME_PAGE_SIZE = 200;

/** A room to replay: the messages after `after`, up to and including `latest`. */
export interface ResumeTarget {
  roomId: string;
  after: number;
  latest: number;
}

/** What a resume will do for one connection (the messages themselves are read page by page). */
export interface ResumePlan {
  /** Rooms with missed messages to replay, in request order. */
  replay: ResumeTarget[];
  /** room -> latest seq. */
  rooms: Record<string, number>;
  /** Rooms whose missed messages retention already dropped. */
  gaps: string[];
  /** Rooms that could not be resumed at all (no longer a member, unknown room): room -> error code. */
  errors: Record<string, string>;
}

/**
 * Messages of rooms: sending (seq from the backend), edits, deletes and
 * reactions with their audit trail, history pages and resume.
 */
@Injectable()
export class HistoryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.rooms.history');
  private trimTimer: NodeJS.Timeout | null = null;

  constructor(
    @InjectBroker() private readonly broker: Broker,
    @InjectRoomStore() private readonly roomStore: RoomStore,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    @InjectNodeDirectory() private readonly nodes: NodeDirectory,
    private readonly rooms: RoomService,
    private readonly fanout: FanoutService,
    private readonly stats: StreamingStatsService,
    private readonly events: StreamingEvents,
    private readonly metrics: StreamingMetricsService,
  ) {}

  onApplicationBootstrap(): void {
    const emptyMs = this.emptyRoomTtlMs;
    const every = Math.min(
      Math.max(Math.min(this.retentionMs / 10, emptyMs > 0 ? emptyMs / 2 : Infinity), 250),
      60_000,
    );
    this.trimTimer = setInterval(() => {
      this.trimAll().catch((err: unknown) => this.logger.warn(`history trim failed: ${String(err)}`));
    }, every);
    this.trimTimer.unref();
  }

  onModuleDestroy(): void {
    if (this.trimTimer) clearInterval(this.trimTimer);
    this.trimTimer = null;
  }

  /** `empty_room_ttl` in milliseconds (0: empty rooms stay). */
  private get emptyRoomTtlMs(): number {
    return this.options.emptyRoomTtl * 3_600_000;
  }

  /** `message_retention` in milliseconds. */
  private get retentionMs(): number {
    return retentionMs(this.options);
  }

  /**
   * Enforce `message_retention` (age) and `max_history_messages` (count) on
   * every room, and delete rooms that stayed empty (no member, no message)
   * for `empty_room_ttl`; runs on a schedule, each live node taking its share
   * of the rooms. Returns how many messages were dropped.
   */
  async trimAll(): Promise<number> {
    const now = Date.now();
    const olderThan = now - this.retentionMs;
    const emptyMs = this.emptyRoomTtlMs;
    const live = await this.nodes.listNodes().catch(() => []);
    const mine = trimShare(
      live.map((n) => n.nodeId),
      this.options.nodeId,
    );
    let dropped = 0;
    for (const room of await this.roomStore.listRooms()) {
      if (!mine(room.id)) continue;
      dropped += await this.broker.trimHistory(room.id, {
        maxCount: this.options.maxHistoryMessages,
        olderThan,
      });
      if (emptyMs > 0 && (await this.roomStore.countMembers(room.id)) === 0) {
        const [newest] = await this.broker.getHistory(room.id, { limit: 1 });
        const lastActivity = Math.max(Date.parse(room.createdAt), newest ? Date.parse(newest.timestamp) : 0);
        if (now - lastActivity >= emptyMs) {
          await this.rooms.delete(null, room.id).catch((err: unknown) => {
            if (!(err instanceof StreamingError && err.code === 'room_not_found')) throw err; // another node was first
          });
        }
      }
    }
    return dropped;
  }

  private ensureHistoryEnabled(): void {
    if (!this.options.enableMessageHistory) {
      throw new StreamingError('feature_disabled', 'message history is disabled on this server');
    }
  }

  /** A banned user hears `banned` (not `not_room_member`: the ban removed the membership). */
  private async ensureNotBanned(roomId: string, userId: string): Promise<void> {
    await this.rooms.require(roomId);
    if (await this.roomStore.getRestriction(roomId, 'ban', userId)) {
      throw new StreamingError('banned', `you are banned from room ${roomId}`);
    }
  }

  private async ensureMayWrite(roomId: string, userId: string): Promise<void> {
    if (await this.roomStore.getRestriction(roomId, 'ban', userId)) {
      throw new StreamingError('banned', `you are banned from room ${roomId}`);
    }
    await this.ensureNotMuted(roomId, userId);
  }

  private async ensureNotMuted(roomId: string, userId: string): Promise<void> {
    const mute = await this.roomStore.getRestriction(roomId, 'mute', userId);
    if (mute) throw mutedError(roomId, mute);
  }

  /** Store a message, give it the room's next seq and deliver it to every member connection. */
  async send(
    userId: string,
    roomId: string,
    content: string,
    metadata: Record<string, unknown> = {},
    replyTo?: string,
  ): Promise<StoredMessage> {
    // The hot path: one look-up of the room, then ban, membership and mute together.
    await this.rooms.require(roomId);
    const [ban, member, mute] = await Promise.all([
      this.roomStore.getRestriction(roomId, 'ban', userId),
      this.roomStore.getMember(roomId, userId),
      this.roomStore.getRestriction(roomId, 'mute', userId),
    ]);
    if (ban) throw new StreamingError('banned', `you are banned from room ${roomId}`);
    if (!member) throw new StreamingError('not_room_member', `you are not a member of room ${roomId}`);
    if (!roleHas(member.role, 'send'))
      throw new StreamingError('forbidden', `role ${member.role} may not send here`);
    if (mute) throw mutedError(roomId, mute);
    return this.save(roomId, userId, content, metadata, replyTo);
  }

  /**
   * Store and publish a message without membership checks (server-side code).
   * With `replyTo` (threads) the message is a reply: see {@link threadOf} and {@link countReply}.
   */
  async save(
    roomId: string,
    userId: string,
    content: string,
    metadata: Record<string, unknown> = {},
    replyTo?: string,
  ): Promise<StoredMessage> {
    const thread = replyTo === undefined ? undefined : await this.threadOf(roomId, replyTo);
    const stored = await this.broker.appendMessage(
      roomId,
      {
        id: randomUUID(),
        roomId,
        userId,
        content,
        metadata,
        timestamp: new Date().toISOString(),
        reactions: {},
        ...thread,
      },
      {
        maxHistory: this.options.enableMessageHistory ? this.options.maxHistoryMessages : 0,
        publishTopic: roomTopic(roomId),
      },
    );
    this.stats.recordMessage();
    this.metrics.roomMessages.inc();
    if (this.events.has('room_message'))
      this.events.emit('room_message', { roomId, message: messageToWire(stored) });
    if (thread) await this.countReply(roomId, thread.threadId, stored.timestamp);
    return stored;
  }

  /**
   * Threads: `replyTo` and `threadId` of a reply to `replyTo`, a live message
   * of the same room (else `message_not_found`). The thread id is the parent's
   * own thread id, or the parent's id when it starts the thread.
   */
  private async threadOf(roomId: string, replyTo: string): Promise<{ replyTo: string; threadId: string }> {
    const parent = await this.broker.getMessage(roomId, replyTo);
    if (!parent || parent.deleted || parent.roomId !== roomId)
      throw new StreamingError('message_not_found', `message ${replyTo} not found in room ${roomId}`);
    return { replyTo, threadId: parent.threadId ?? parent.id };
  }

  /**
   * Threads: one more reply on the thread's first message (counted atomically
   * by the backend, so replies racing on several nodes all count), then
   * `thread_updated` to the room. Nothing when that message is gone (deleted
   * or trimmed meanwhile): the reply itself stays.
   */
  private async countReply(roomId: string, threadId: string, at: string): Promise<void> {
    const root = await this.broker.addReply(roomId, threadId, at);
    if (!root?.replyCount || !root.lastReplyAt) return;
    await this.fanout.publishToRoom(roomId, 'thread_updated', {
      room_id: roomId,
      thread_id: threadId,
      reply_count: root.replyCount,
      last_reply_at: root.lastReplyAt,
    });
  }

  /**
   * `get_thread` for a member: the thread's first message, then its replies,
   * oldest first, at most `limit` messages in all (default 50, at most 100).
   * Threads have no index of their own: this scans the room's retained
   * history (at most `max_history_messages`) upwards from the first message,
   * page by page, and stops once `limit` messages are found. A thread id that
   * matches nothing in history is `message_not_found`.
   */
  async thread(userId: string, roomId: string, threadId: string, limit?: number): Promise<WireMessage[]> {
    this.ensureHistoryEnabled();
    await this.rooms.requirePermission(roomId, userId, 'read');
    const max = Math.max(1, Math.min(limit ?? DEFAULT_THREAD_LIMIT, MAX_THREAD_LIMIT));
    const root = await this.broker.getMessage(roomId, threadId);
    const found: StoredMessage[] = root && root.roomId === roomId ? [root] : [];
    // Without the first message (trimmed), its replies may still be in history: scan it all.
    let after = found.length > 0 ? found[0].seq : 0;
    while (found.length < max) {
      const page = await this.broker.getHistory(roomId, { after, limit: THREAD_SCAN_PAGE });
      for (const m of page) {
        if (m.threadId === threadId && found.length < max) found.push(m);
      }
      if (page.length < THREAD_SCAN_PAGE) break;
      after = page[page.length - 1].seq;
    }
    const cutoff = retentionCutoff(this.options);
    const messages = found.filter((m) => m.timestamp >= cutoff);
    if (messages.length === 0)
      throw new StreamingError('message_not_found', `thread ${threadId} not found in room ${roomId}`);
    return messages.map(messageToWire);
  }

  private async requireMessage(roomId: string, messageId: string): Promise<StoredMessage> {
    const m = await this.broker.getMessage(roomId, messageId);
    if (!m || m.deleted)
      throw new StreamingError('message_not_found', `message ${messageId} not found in room ${roomId}`);
    return m;
  }

  /** Author, or a moderator+ over a lower role, may change a message. */
  private async ensureMayChange(
    roomId: string,
    userId: string,
    m: StoredMessage,
    own: 'edit_own' | 'delete_own',
  ): Promise<void> {
    const actor = await this.rooms.requireMember(roomId, userId);
    if (m.userId === userId) {
      if (!roleHas(actor.role, own)) throw new StreamingError('forbidden', 'you may not change this message');
      return;
    }
    if (!roleHas(actor.role, 'delete_any'))
      throw new StreamingError('forbidden', 'only the author or a moderator may change this message');
    const author = await this.roomStore.getMember(roomId, m.userId);
    if (author && !outranks(actor.role, author.role)) {
      throw new StreamingError('forbidden', 'you cannot change messages of an equal or higher role');
    }
  }

  private async mutate(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult> {
    const r = await this.broker.updateMessage(roomId, messageId, mutation);
    if (!r) throw new StreamingError('message_not_found', `message ${messageId} not found in room ${roomId}`);
    return r;
  }

  async edit(userId: string, roomId: string, messageId: string, content: string): Promise<StoredMessage> {
    const m = await this.requireMessage(roomId, messageId);
    await this.ensureMayChange(roomId, userId, m, 'edit_own');
    await this.ensureMayWrite(roomId, userId);
    return this.commitEdit(roomId, messageId, content, userId);
  }

  /** Edit without permission checks (server-side code); keeps the previous version in the audit trail. */
  async commitEdit(roomId: string, messageId: string, content: string, by: string): Promise<StoredMessage> {
    await this.requireMessage(roomId, messageId);
    const at = new Date().toISOString();
    const { message } = await this.mutate(roomId, messageId, {
      kind: 'edit',
      content,
      by,
      at,
      keepVersions: this.options.maxMessageVersions,
    });
    await this.fanout.publishToRoom(roomId, 'message_edited', {
      room_id: roomId,
      message_id: messageId,
      content,
      edited_by: by,
      edited_at: at,
    });
    return message;
  }

  async delete(userId: string, roomId: string, messageId: string): Promise<void> {
    const m = await this.requireMessage(roomId, messageId);
    await this.ensureMayChange(roomId, userId, m, 'delete_own');
    await this.commitDelete(roomId, messageId, userId);
  }

  /** Delete without permission checks (server-side code); leaves a tombstone. */
  async commitDelete(roomId: string, messageId: string, by: string): Promise<void> {
    const { changed } = await this.mutate(roomId, messageId, {
      kind: 'delete',
      by,
      at: new Date().toISOString(),
      keepVersions: this.options.maxMessageVersions,
    });
    if (changed) {
      await this.fanout.publishToRoom(roomId, 'message_deleted', {
        room_id: roomId,
        message_id: messageId,
        deleted_by: by,
      });
    }
  }

  async react(
    userId: string,
    roomId: string,
    messageId: string,
    reaction: string,
    add: boolean,
  ): Promise<StoredMessage> {
    await this.ensureNotBanned(roomId, userId);
    await this.rooms.requirePermission(roomId, userId, 'react');
    await this.ensureNotMuted(roomId, userId);
    return this.commitReaction(roomId, messageId, reaction, userId, add);
  }

  /** Add or remove a reaction without permission checks (server-side code). */
  async commitReaction(
    roomId: string,
    messageId: string,
    reaction: string,
    userId: string,
    add: boolean,
  ): Promise<StoredMessage> {
    await this.requireMessage(roomId, messageId);
    const max = this.options.maxReactionsPerMessage;
    const { message, changed, limited } = await this.mutate(roomId, messageId, {
      kind: 'react',
      reaction,
      userId,
      add,
      maxReactions: max,
    });
    if (limited)
      throw new StreamingError('limit_exceeded', `a message holds at most ${max} different reactions`);
    if (changed) {
      await this.fanout.publishToRoom(roomId, add ? 'reaction_added' : 'reaction_removed', {
        room_id: roomId,
        message_id: messageId,
        user_id: userId,
        reaction,
      });
    }
    return message;
  }

  /** A page of history for a member, oldest first. */
  async page(userId: string, roomId: string, page: HistoryPage): Promise<WireMessage[]> {
    this.ensureHistoryEnabled();
    await this.rooms.requirePermission(roomId, userId, 'read');
    return this.read(roomId, page);
  }

  /** A page of history without membership checks (server-side code). */
  async read(roomId: string, page: HistoryPage): Promise<WireMessage[]> {
    const limit = Math.min(page.limit ?? DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT);
    const messages = await this.broker.getHistory(roomId, { limit, before: page.before, after: page.after });
    // Messages past retention are never served, even between two scheduled trims.
    const cutoff = retentionCutoff(this.options);
    return messages.filter((m) => m.timestamp >= cutoff).map(messageToWire);
  }

  /**
   * What a reconnecting client missed: for each room, the range of seqs after
   * its last seen one, or a gap when retention already dropped some of them.
   * The messages are read afterwards with {@link replayPage}.
   */
  async planResume(userId: string, rooms: Record<string, number>): Promise<ResumePlan> {
    this.ensureHistoryEnabled();
    const plan: ResumePlan = { replay: [], rooms: {}, gaps: [], errors: {} };
    for (const [roomId, lastSeen] of Object.entries(rooms)) {
      try {
        await this.rooms.requirePermission(roomId, userId, 'read');
      } catch (err) {
        // One room the user lost (kicked, banned, deleted) does not spoil the others.
        if (err instanceof StreamingError && err.code !== 'backend_unavailable' && err.code !== 'internal') {
          plan.errors[roomId] = err.code;
          continue;
        }
        throw err;
      }
      const latest = await this.broker.latestSeq(roomId);
      plan.rooms[roomId] = latest;
      if (lastSeen >= latest) continue;
      const oldest = await this.broker.oldestSeq(roomId);
      if (oldest > lastSeen + 1) {
        plan.gaps.push(roomId);
        continue;
      }
      plan.replay.push({ roomId, after: lastSeen, latest });
    }
    return plan;
  }

  /**
   * The next page of a replay: the messages after `after`, at most up to
   * `latest`, oldest first; null when history no longer holds the next one
   * (retention trimmed it meanwhile).
   */
  async replayPage(
    target: ResumeTarget,
    after: number,
    limit = RESUME_PAGE_SIZE,
  ): Promise<WireMessage[] | null> {
    const wanted = Math.min(limit, target.latest - after);
    if (wanted <= 0) return [];
    const page = await this.broker.getHistory(target.roomId, {
      after,
      before: target.latest + 1,
      limit: wanted,
    });
    if (page.length !== wanted || page[0].seq !== after + 1) return null;
    return page.map(messageToWire);
  }
}

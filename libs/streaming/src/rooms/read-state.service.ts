import { Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import type { Broker, ReadStateStore, RoomStore } from '../interfaces';
import {
  InjectBroker,
  InjectReadStateStore,
  InjectRoomStore,
  InjectStreamingOptions,
} from '../streaming.constants';
import { RoomService } from './room.service';

/** Ack of `mark_read`, and data of `read_state`. */
export interface ReadStateEvent {
  room_id: string;
  last_read_seq: number;
}

/** One room of the `get_unread` ack. */
export interface UnreadRoom {
  room_id: string;
  last_read_seq: number;
  latest_seq: number;
  unread: number;
}

/** Rooms of a user read at once by `get_unread`. */
const UNREAD_BATCH = 16;

/**
 * Read state (PROTOCOL.md §10): how far each user has read in each room,
 * per user (not per connection), kept by the backend's {@link ReadStateStore}
 * with the room. `mark_read` only moves it forward.
 */
@Injectable()
export class ReadStateService {
  constructor(
    @InjectReadStateStore() private readonly store: ReadStateStore,
    @InjectRoomStore() private readonly roomStore: RoomStore,
    @InjectBroker() private readonly broker: Broker,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly rooms: RoomService,
    private readonly fanout: FanoutService,
  ) {}

  /**
   * Mark `roomId` read up to `seq` for the user (members only). A seq beyond
   * the room's latest counts as the latest; a lower one than stored is
   * ignored. The user's connections on every node get `read_state` when the
   * stored value is the one asked for.
   */
  async markRead(userId: string, roomId: string, seq: number): Promise<ReadStateEvent> {
    await this.rooms.requireMember(roomId, userId);
    const target = Math.min(seq, await this.broker.latestSeq(roomId));
    const stored = await this.store.markRead(roomId, userId, target);
    const event: ReadStateEvent = { room_id: roomId, last_read_seq: stored };
    // Every connection of the user, the sender's included (it already has the ack).
    if (stored === target) await this.fanout.publishToUser(userId, 'read_state', event);
    return event;
  }

  /** How far the user read in `roomId` (0 when never). */
  async lastRead(userId: string, roomId: string): Promise<number> {
    return (await this.store.readSeqs(userId, [roomId]))[roomId] ?? 0;
  }

  /**
   * Every room of the user with its read state and unread count: messages
   * above `last_read_seq` that are neither deleted nor the user's own.
   *
   * Cost: one read-state read for all rooms, then per room one `latestSeq`
   * and, only for a room with messages above the read mark, one history read
   * of those messages (`after: last_read_seq`), at most `max_history_messages`
   * of them (what history keeps anyway). So O(rooms of the user + unread
   * messages retained), rooms read 16 at a time. Messages history no longer
   * keeps are not counted.
   */
  async unread(userId: string): Promise<UnreadRoom[]> {
    const roomIds = await this.roomStore.userRooms(userId);
    const reads = await this.store.readSeqs(userId, roomIds);
    const out: UnreadRoom[] = [];
    for (let i = 0; i < roomIds.length; i += UNREAD_BATCH) {
      const batch = roomIds.slice(i, i + UNREAD_BATCH);
      out.push(
        ...(await Promise.all(batch.map((roomId) => this.roomUnread(userId, roomId, reads[roomId] ?? 0)))),
      );
    }
    return out;
  }

  private async roomUnread(userId: string, roomId: string, lastRead: number): Promise<UnreadRoom> {
    const latest = await this.broker.latestSeq(roomId);
    let unread = 0;
    if (latest > lastRead && this.options.maxHistoryMessages > 0) {
      const messages = await this.broker.getHistory(roomId, {
        after: lastRead,
        limit: this.options.maxHistoryMessages,
      });
      for (const m of messages) if (!m.deleted && m.userId !== userId) unread++;
    }
    return { room_id: roomId, last_read_seq: lastRead, latest_seq: latest, unread };
  }
}

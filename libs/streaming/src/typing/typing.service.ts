import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingEvents } from '../events/streaming-events';
import { InjectPresenceStore, InjectStreamingOptions } from '../streaming.constants';
import { PresenceStore } from '../interfaces';

/** The shared set of a room's typists in the backend. */
const typingKey = (roomId: string): string => `typing:${roomId}`;

/** A typist this node announced or renewed: the backend stamp it holds and when it runs out here. */
interface OwnTypist {
  stamp: number;
  expires: number;
}

/**
 * Typing indicators: `typing {room_id, user_id, typing}` to the other members;
 * an automatic `typing:false` after `typing_timeout`, from one shared sweep timer.
 *
 * Who types in a room is one expiring set in the backend, so
 * `max_typing_users_per_room` counts every node and a user typing from two
 * nodes is announced once. The node that last started (or renewed) a typist
 * ends it when its timeout passes, unless another node renewed it since.
 */
@Injectable()
export class TypingService implements OnModuleDestroy {
  /** roomId -> userId -> what this node holds. */
  private readonly typing = new Map<string, Map<string, OwnTypist>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly events: StreamingEvents,
    @InjectPresenceStore() private readonly presence: PresenceStore,
  ) {}

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private ensureEnabled(): void {
    if (!this.options.enableTypingIndicators) {
      throw new StreamingError('feature_disabled', 'typing indicators are disabled on this server');
    }
  }

  /** Users typing in a room right now, on every node. */
  typists(roomId: string): Promise<string[]> {
    return this.presence.listExpiring(typingKey(roomId));
  }

  async start(userId: string, roomId: string): Promise<void> {
    this.ensureEnabled();
    const ttlMs = this.options.typingTimeout * 1000;
    const touched = await this.presence.touchExpiring(
      typingKey(roomId),
      userId,
      ttlMs,
      this.options.maxTypingUsersPerRoom,
    );
    if (!touched) {
      throw new StreamingError(
        'limit_exceeded',
        `at most ${this.options.maxTypingUsersPerRoom} users may type at once`,
      );
    }
    let room = this.typing.get(roomId);
    if (!room) this.typing.set(roomId, (room = new Map<string, OwnTypist>()));
    room.set(userId, { stamp: touched.expires, expires: Date.now() + ttlMs });
    this.ensureTimer();
    if (touched.added) await this.publish(roomId, userId, true);
  }

  async stop(userId: string, roomId: string): Promise<void> {
    this.ensureEnabled();
    await this.clear(userId, roomId);
  }

  /** Stop typing, wherever it started, without a feature check (stop, leave, kick). */
  async clear(userId: string, roomId: string): Promise<void> {
    this.forget(userId, roomId);
    if (await this.presence.removeExpiring(typingKey(roomId), userId))
      await this.publish(roomId, userId, false);
  }

  /** End what this node started, unless another node renewed it since. */
  private async end(userId: string, roomId: string, own: OwnTypist): Promise<void> {
    this.forget(userId, roomId, own);
    if (await this.presence.removeExpiring(typingKey(roomId), userId, own.stamp)) {
      await this.publish(roomId, userId, false);
    }
  }

  /** Drop the user's entry here (only if it is still `own`, when given: a renewal may have replaced it). */
  private forget(userId: string, roomId: string, own?: OwnTypist): void {
    const room = this.typing.get(roomId);
    if (!room || (own && room.get(userId) !== own)) return;
    if (room.delete(userId) && room.size === 0) this.typing.delete(roomId);
  }

  /** Announce `typing:false` for a user in rooms whose typing state lived on a dead node. */
  async stopEverywhere(userId: string, roomIds: string[]): Promise<void> {
    if (!this.options.enableTypingIndicators) return;
    for (const roomId of roomIds) {
      this.forget(userId, roomId);
      await this.presence.removeExpiring(typingKey(roomId), userId);
      await this.publish(roomId, userId, false);
    }
  }

  /** The user's last connection on this node closed: end what they typed here. */
  async clearUser(userId: string): Promise<void> {
    for (const [roomId, users] of [...this.typing]) {
      const own = users.get(userId);
      if (own) await this.end(userId, roomId, own);
    }
  }

  private publish(roomId: string, userId: string, typing: boolean): Promise<void> {
    this.events.emit('typing', { roomId, userId, typing });
    return this.fanout.publishToRoom(
      roomId,
      'typing',
      { room_id: roomId, user_id: userId, typing },
      { exceptUser: userId },
    );
  }

  private ensureTimer(): void {
    if (this.timer) return;
    const every = Math.min(
      Math.max((this.options.typingTimeout * 1000) / 4, 50),
      this.options.typingCleanup * 1000,
    );
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const [roomId, users] of [...this.typing]) {
      for (const [userId, own] of [...users])
        if (own.expires <= now) await this.end(userId, roomId, own).catch(() => undefined);
    }
    if (this.typing.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import { StreamingError } from '../protocol/streaming-error';
import { InjectStreamingOptions } from '../streaming.module-definition';
import { StreamingEvents } from '../events/streaming-events';

/**
 * Typing indicators: `typing {room_id, user_id, typing}` to the other members;
 * an automatic `typing:false` after `typing_timeout`, from one shared sweep timer.
 */
@Injectable()
export class TypingService implements OnModuleDestroy {
  /** roomId -> userId -> expiry (epoch ms). */
  private readonly typing = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly events: StreamingEvents,
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

  /** Users typing in a room right now. */
  typists(roomId: string): string[] {
    return [...(this.typing.get(roomId)?.keys() ?? [])];
  }

  async start(userId: string, roomId: string): Promise<void> {
    this.ensureEnabled();
    let room = this.typing.get(roomId);
    if (!room) this.typing.set(roomId, (room = new Map<string, number>()));
    const already = room.has(userId);
    if (!already && room.size >= this.options.maxTypingUsersPerRoom) {
      throw new StreamingError(
        'limit_exceeded',
        `at most ${this.options.maxTypingUsersPerRoom} users may type at once`,
      );
    }
    room.set(userId, Date.now() + this.options.typingTimeout * 1000);
    this.ensureTimer();
    if (!already) await this.publish(roomId, userId, true);
  }

  async stop(userId: string, roomId: string): Promise<void> {
    this.ensureEnabled();
    await this.clear(userId, roomId);
  }

  /** Stop typing without a feature check (leave, disconnect). */
  async clear(userId: string, roomId: string): Promise<void> {
    const room = this.typing.get(roomId);
    if (!room?.delete(userId)) return;
    if (room.size === 0) this.typing.delete(roomId);
    await this.publish(roomId, userId, false);
  }

  /** Announce `typing:false` for a user in rooms whose typing state lived on a dead node. */
  async stopEverywhere(userId: string, roomIds: string[]): Promise<void> {
    if (!this.options.enableTypingIndicators) return;
    for (const roomId of roomIds) {
      this.typing.get(roomId)?.delete(userId);
      await this.publish(roomId, userId, false);
    }
  }

  /** Stop the user's typing in every room (their last connection closed). */
  async clearUser(userId: string): Promise<void> {
    for (const roomId of [...this.typing.keys()]) await this.clear(userId, roomId);
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
      for (const [userId, expires] of [...users])
        if (expires <= now) await this.clear(userId, roomId).catch(() => undefined);
    }
    if (this.typing.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

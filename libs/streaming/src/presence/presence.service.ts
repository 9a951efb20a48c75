import { Injectable } from '@nestjs/common';
import {
  InjectStreamingBackend,
  PresenceRecord,
  StreamingBackend,
} from '../backends/streaming-backend.interface';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import { WirePresence, presenceToWire } from '../protocol/wire';
import { InjectStreamingOptions } from '../streaming.module-definition';
import { StreamingEvents } from '../events/streaming-events';

/** Presence statuses a user can be in. */
export type PresenceStatus = PresenceRecord['status'];

/**
 * Per-user presence across all of the user's connections: online with the
 * first connection, offline (with `last_seen`) when the last one closes.
 * Changes go to everyone sharing a room with the user.
 */
@Injectable()
export class PresenceService {
  constructor(
    @InjectStreamingBackend() private readonly backend: StreamingBackend,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly events: StreamingEvents,
  ) {}

  /** TTL of a presence record: live nodes refresh it long before it lapses. */
  private get ttl(): number {
    return Math.max(this.options.presenceTimeout, this.options.nodeTimeout) * 2;
  }

  /** Presence of users; users without a record are `offline`. */
  async presenceOf(userIds: string[]): Promise<WirePresence[]> {
    if (!this.options.enablePresence || userIds.length === 0) return [];
    const found = new Map((await this.backend.getPresence(userIds)).map((p) => [p.userId, p]));
    return userIds.map((id) =>
      presenceToWire(found.get(id) ?? { userId: id, status: 'offline', lastSeen: '' }),
    );
  }

  /** Record a status and tell everyone sharing a room with the user. */
  async set(userId: string, status: PresenceStatus, custom?: string): Promise<WirePresence> {
    const record: PresenceRecord = { userId, status, lastSeen: new Date().toISOString() };
    if (custom !== undefined) record.custom = custom;
    if (!this.options.enablePresence) return presenceToWire(record);
    if (status === 'offline') await this.backend.removePresence(userId);
    else await this.backend.setPresence(record, this.ttl);
    const wire = presenceToWire(record);
    this.events.emit('presence', { userId, presence: wire });
    for (const roomId of await this.backend.userRooms(userId)) {
      await this.fanout.publishToRoom(roomId, 'presence', wire);
    }
    return wire;
  }

  /** First connection of a user on this node. */
  async connected(userId: string): Promise<void> {
    const [current] = await this.backend.getPresence([userId]);
    if (current && current.status !== 'offline') return;
    await this.set(userId, 'online');
  }

  /** Last connection of a user on this node closed. */
  async disconnected(userId: string): Promise<void> {
    if (this.fanout.registry.hasUser(userId)) return;
    await this.set(userId, 'offline');
  }
}
